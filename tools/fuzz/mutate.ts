// Seeded mutations of reader inputs: byte-level damage, interesting tokens, line surgery that
// keeps lines event-shaped (a field replaced, a line duplicated or spliced from another input),
// compression magic, and structural edits of JSON. The same seed gives the same mutations.
//
// Text is handled as "binary strings" (latin1: one char per byte), so that any byte sequence
// survives and multi-byte tokens (U+200B, U+FEFF) are inserted as their UTF-8 bytes.

import seedrandom from 'seedrandom';

export type Rng = () => number;

export function makeRng(seed: string): Rng {
  return seedrandom(seed);
}

const bin = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

/** Tokens that have broken readers before: NULL spellings, limits, invisible characters. */
export const INTERESTING_TOKENS: readonly string[] = [
  '(nil)', '(null)', '0', '0x0', '-1', '-0', '1', '2', '7', '8', '63', '64', '65', '4095', '4096',
  '4294967295', '4294967296', '9007199254740991', '9007199254740993', '18446744073709551615',
  '18446744073709551616', '1e308', '1e400', 'NaN', 'Infinity', '0x', '0xffffffffffffffffff', '00000000000000000001',
  '99999999999999999999999999999999', '\r', '\u200b', '\ufeff', '\u00a0', '\u2028', '\t', ' ', '', '\u0000',
  '"', "'", '\\', '#', '=', ':', ',', '{', '}', '[', ']', 'é', '\ud800', '__proto__', 'constructor', 'toString',
];

/** Magic numbers of compressed formats: gzip, xz, zstd, bzip2. */
export const MAGIC: readonly string[] = [
  '\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03',
  '\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46',
  '\x28\xb5\x2f\xfd\x24\x00',
  'BZh91AY&SY',
];

const INTERESTING_BYTES = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x2c, 0x3a, 0x3d, 0x7f, 0x80, 0xc3, 0xe2, 0xef, 0xff];

/** Largest input a mutation may grow to (bytes): keeps each run short. */
export const MAX_INPUT = 1 << 16;

export interface MutationContext {
  rng: Rng;
  /** The other inputs of the corpus, for splicing lines. */
  corpus: readonly string[];
  /** Words of the input's format (op names, field names, tracepoints). */
  dictionary: readonly string[];
}

const pick = <T>(rng: Rng, a: readonly T[]): T => a[Math.floor(rng() * a.length)]!;
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);

function token(c: MutationContext): string {
  return bin(c.rng() < 0.5 ? pick(c.rng, INTERESTING_TOKENS) : pick(c.rng, c.dictionary));
}

function numberVariant(rng: Rng, text: string): string {
  const n = Number(text);
  const options = [String(n + 1), String(n - 1), String(n * 2), String(-n), String(n * 4096), `${text}${text}`, `0${text}`, `${text}.5`, `${text}e3`];
  return pick(rng, options);
}

function splitLines(s: string): string[] {
  return s.split('\n');
}

/** Replaces one field of a line (split at spaces, '=', ':', ','), keeping its separators. */
function replaceField(c: MutationContext, line: string): string {
  const parts = line.split(/([\s=:,]+)/);
  const fields = parts.map((p, i) => [p, i] as const).filter(([p, i]) => i % 2 === 0 && p !== '');
  if (fields.length === 0) return token(c);
  const [text, i] = pick(c.rng, fields);
  const r = c.rng();
  if (/^-?\d+$/.test(text) && r < 0.4) parts[i] = numberVariant(c.rng, text);
  else if (r < 0.7) parts[i] = token(c);
  else {
    const other = splitLines(pick(c.rng, c.corpus)).filter((l) => l.length > 0);
    const words = other.length === 0 ? [] : pick(c.rng, other).split(/[\s=:,]+/).filter((w) => w !== '');
    parts[i] = words.length === 0 ? token(c) : pick(c.rng, words);
  }
  return parts.join('');
}

type LineOp = (c: MutationContext, lines: string[]) => void;

const LINE_OPS: readonly LineOp[] = [
  (c, l) => {
    const i = int(c.rng, l.length);
    l[i] = replaceField(c, l[i]!);
  },
  (c, l) => {
    const i = int(c.rng, l.length);
    l.splice(i, 0, l[i]!);
  },
  (c, l) => {
    if (l.length > 1) l.splice(int(c.rng, l.length), 1);
  },
  (c, l) => {
    const i = int(c.rng, l.length);
    const j = int(c.rng, l.length);
    [l[i], l[j]] = [l[j]!, l[i]!];
  },
  (c, l) => {
    const other = splitLines(pick(c.rng, c.corpus));
    l.splice(int(c.rng, l.length + 1), 0, pick(c.rng, other));
  },
  (c, l) => {
    // A field given twice: `ptr=1 ptr=2`, `0 a 1 1 1`.
    const i = int(c.rng, l.length);
    const words = l[i]!.split(/\s+/).filter((w) => w !== '');
    if (words.length > 0) l[i] = `${l[i]} ${pick(c.rng, words)}`;
  },
  (c, l) => {
    const i = int(c.rng, l.length);
    const times = 2 + int(c.rng, 60);
    l.splice(i, 0, ...Array.from({ length: times }, () => l[i]!));
  },
  (c, l) => {
    for (let i = 0; i < l.length; i++) if (c.rng() < 0.5) l[i] = `${l[i]}\r`;
  },
  (c, l) => {
    const i = int(c.rng, l.length);
    const at = int(c.rng, l[i]!.length + 1);
    l[i] = l[i]!.slice(0, at) + token(c) + l[i]!.slice(at);
  },
  (c, l) => {
    const i = int(c.rng, l.length);
    l[i] = l[i]!.slice(0, int(c.rng, l[i]!.length + 1));
  },
];

type ByteOp = (c: MutationContext, s: string) => string;

const BYTE_OPS: readonly ByteOp[] = [
  (c, s) => {
    if (s.length === 0) return s;
    const i = int(c.rng, s.length);
    return s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ (1 << int(c.rng, 8))) + s.slice(i + 1);
  },
  (c, s) => {
    const i = int(c.rng, s.length + 1);
    return s.slice(0, i) + String.fromCharCode(pick(c.rng, INTERESTING_BYTES)) + s.slice(i);
  },
  (c, s) => {
    const i = int(c.rng, s.length + 1);
    return s.slice(0, i) + token(c) + s.slice(i);
  },
  (c, s) => {
    const i = int(c.rng, s.length + 1);
    return s.slice(0, i) + s.slice(i + 1 + int(c.rng, 16));
  },
  (c, s) => s.slice(0, int(c.rng, s.length + 1)),
  (c, s) => pick(c.rng, MAGIC) + (c.rng() < 0.5 ? s : s.slice(int(c.rng, s.length + 1))),
  (_c, s) => bin('\ufeff') + s,
  (c, s) => {
    const i = int(c.rng, s.length + 1);
    const n = 1 + int(c.rng, 4096);
    return s.slice(0, i) + pick(c.rng, ['{"a":', '[', '{', '(', '"', '9']).repeat(n) + s.slice(i);
  },
];

/** A mutation of a line-oriented input (a trace, a capture): mostly line surgery, some bytes. */
export function mutateLines(c: MutationContext, input: string): string {
  let s = input;
  const rounds = 1 + int(c.rng, 4);
  for (let r = 0; r < rounds; r++) {
    if (c.rng() < 0.75) {
      const lines = splitLines(s);
      pick(c.rng, LINE_OPS)(c, lines);
      s = lines.join('\n');
    } else {
      s = pick(c.rng, BYTE_OPS)(c, s);
    }
  }
  return s.length > MAX_INPUT ? s.slice(0, MAX_INPUT) : s;
}

const JSON_VALUES: readonly unknown[] = [
  0, -1, 1, 1.5, 63, 64, 65, 4096, 2 ** 32, 2 ** 53 + 2, 1e308, -0, '', '0', '48k', '0k', '1t', '4294967296g', '-1', '1 m',
  'lru', 'plru', 'random', 'mesi', 'moesi', null, true, false, [], {}, [1, 2], { size: '1k' }, '(nil)', '\u200b1', '\ufeff',
  'coursework', 'amd64-host', '__proto__', 'x.json',
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function defineField(o: Record<string, Json>, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Every object in the tree, with its fields, for picking a place to edit. */
function objects(v: Json, out: Record<string, Json>[] = []): Record<string, Json>[] {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    out.push(v);
    for (const k of Object.keys(v)) objects(v[k]!, out);
  }
  return out;
}

/** A structural edit of a JSON object: a field set, removed, added, renamed or nested. */
function mutateJsonValue(c: MutationContext, root: Record<string, Json>): void {
  const target = pick(c.rng, objects(root));
  const keys = Object.keys(target);
  const key = keys.length > 0 ? pick(c.rng, keys) : pick(c.rng, c.dictionary);
  const r = c.rng();
  if (r < 0.45) defineField(target, key, structuredClone(pick(c.rng, JSON_VALUES)) as Json);
  else if (r < 0.6) delete target[key];
  else if (r < 0.75) defineField(target, c.rng() < 0.5 ? pick(c.rng, c.dictionary) : pick(c.rng, ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'base', 'x']), structuredClone(pick(c.rng, JSON_VALUES)) as Json);
  else if (r < 0.85) {
    const v = target[key];
    delete target[key];
    defineField(target, pick(c.rng, c.dictionary), v ?? null);
  } else {
    let v: Json = target[key] ?? 1;
    for (let d = 1 + int(c.rng, 40); d > 0; d--) v = c.rng() < 0.5 ? [v] : { a: v };
    defineField(target, key, v);
  }
}

/** A mutation of a JSON document: structural edits, then sometimes text-level damage. */
export function mutateJson(c: MutationContext, input: string): string {
  let s = input;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(input, 'latin1').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && c.rng() < 0.7) {
    const root = parsed as Record<string, Json>;
    for (let r = 1 + int(c.rng, 3); r > 0; r--) mutateJsonValue(c, root);
    s = bin(JSON.stringify(root, null, c.rng() < 0.5 ? 2 : undefined));
  }
  if (c.rng() < 0.4) {
    const r = c.rng();
    if (r < 0.25) {
      // A field given twice, as text.
      const m = /"[^"]+"\s*:\s*[^,{}[\]]+/.exec(s.slice(int(c.rng, s.length)));
      const at = s.indexOf('{') + 1;
      if (m !== null && at > 0) s = `${s.slice(0, at)}${m[0]},${s.slice(at)}`;
    } else if (r < 0.5) {
      const lines = splitLines(s);
      pick(c.rng, LINE_OPS)(c, lines);
      s = lines.join('\n');
    } else {
      s = pick(c.rng, BYTE_OPS)(c, s);
    }
  }
  return s.length > MAX_INPUT ? s.slice(0, MAX_INPUT) : s;
}

const SIZES = ['0', '1', '7', '8', '4095', '4096', '4097', '65536', '2147483648', '4294967296', '4294967304', '9007199254740991'];
const ORDERS = ['0', '1', '10', '11', '20', '21', '30', '52', '53', '63', '64', '1000'];
const CYCLES = ['0', '4294967296', '1000000000000000', '9007199254740991'];

/** The index of a random line matching `re`, or -1. */
function lineOf(c: MutationContext, lines: readonly string[], re: RegExp): number {
  const hits = lines.flatMap((l, i) => (re.test(l) ? [i] : []));
  return hits.length === 0 ? -1 : pick(c.rng, hits);
}

/** Edits that keep a kmemu trace's lines well formed, to reach the replay's deep code. */
const TRACE_OPS: readonly LineOp[] = [
  (c, l) => {
    // A size, an order or a think time at a limit.
    const i = lineOf(c, l, /^\d+\s+(zone|m|P|t)\s/);
    if (i < 0) return;
    const w = l[i]!.trim().split(/\s+/);
    if (w[1] === 'zone' && w.length >= 5) w[4] = pick(c.rng, SIZES);
    else if (w[1] === 'm' && w.length >= 3) w[2] = pick(c.rng, SIZES);
    else if (w[1] === 'P' && w.length >= 3) w[2] = pick(c.rng, ORDERS);
    else if (w[1] === 't' && w.length >= 3) w[2] = pick(c.rng, CYCLES);
    l[i] = w.join(' ');
  },
  (c, l) => {
    // An event moved to another CPU.
    const i = lineOf(c, l, /^\d+\s+\S/);
    if (i >= 0) l[i] = l[i]!.replace(/^\d+/, pick(c.rng, ['0', '1', '2', '3', '5', '8', '63', '4095']));
  },
  (c, l) => {
    // An object id reused on another CPU after its free, at the end of the trace.
    const i = lineOf(c, l, /^\d+\s+(a|m|P)\s/);
    if (i < 0) return;
    const w = l[i]!.trim().split(/\s+/);
    const obj = w[w.length - 1]!;
    const cpu = pick(c.rng, ['0', '1', '2', '3']);
    const free = w[1] === 'a' ? `${cpu} f ${w[2]} ${obj}` : `${cpu} ${w[1] === 'm' ? 'x' : 'Q'} ${obj}`;
    l.push(`${cpu} ${w.slice(1).join(' ')}`, free);
  },
  (c, l) => {
    // A free moved before its allocation, or given twice.
    const i = lineOf(c, l, /^\d+\s+(f|x|Q)\s/);
    if (i < 0) return;
    if (c.rng() < 0.5) l.splice(i + 1, 0, l[i]!);
    else l.splice(Math.max(1, i - 1 - int(c.rng, 20)), 0, l.splice(i, 1)[0]!);
  },
  (c, l) => {
    // Memory pressure: many page allocations on one CPU, freed later on another.
    const base = 1_000_000 + int(c.rng, 1000);
    const n = 1 + int(c.rng, 300);
    const order = pick(c.rng, ['0', '4', '8', '10']);
    for (let k = 0; k < n; k++) l.push(`0 P ${order} ${base + k}`);
    for (let k = 0; k < n; k++) l.push(`1 Q ${base + k}`);
  },
];

/** A mutation of a kmemu trace: mostly edits that keep events well formed, else any line surgery. */
export function mutateTrace(c: MutationContext, input: string): string {
  if (c.rng() < 0.4) return mutateLines(c, input);
  const lines = splitLines(input);
  for (let r = 1 + int(c.rng, 2); r > 0; r--) pick(c.rng, TRACE_OPS)(c, lines);
  const s = lines.join('\n');
  return s.length > MAX_INPUT ? s.slice(0, MAX_INPUT) : s;
}
