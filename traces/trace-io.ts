// Streaming reader and writer of kmemu traces (FORMAT.md), and the line input both the reader
// and the importers read through: a file or stdin, plain, gzip or (for importers) xz, zstd or
// bzip2, decided by the magic bytes, handed out as blocks of whole lines.
//
// The reader checks every line's syntax and the Rules of FORMAT.md as it goes; its state is
// the set of live objects and the created zones, so memory does not grow with the length of a
// trace, only with what is live in it.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { UserError } from '../emu/index.js';
import { openAtomic, outputError, writeAll, type AtomicOutput } from './atomic-output.js';
import {
  MAX_ITEM_SIZE, MAX_MALLOC_SIZE, MAX_MBUF_CHAIN, MAX_PAGE_ORDER, MAX_VMEM_NAME, MAX_VMEM_QCACHE_QUANTA, MAX_VMEM_QUANTUM, MAX_VMEM_SIZE, OP_ALLOC,
  OP_ARENA, OP_FREE, OP_MALLOC, OP_MBUF, OP_MFREE, OP_MFREEM, OP_PALLOC, OP_PFREE, OP_THINK, OP_VALLOC, OP_VFREE, OP_ZONE, TRACE_MAGIC, TRACE_VERSION,
  TRACE_VERSION_1, mbufKinds, newEvent, newVmemArgs, opNames, versionOfOp, vmemStrategies, zoneFlags,
} from './format.js';
import type { MbufKind, TraceEvent, TraceHeader, VmemStrategy, ZoneFlag } from './format.js';

// ---------------------------------------------------------------------------------------------
// Line input

export interface LineInputOptions {
  /** The stream read for `-`; process.stdin by default. */
  stdin?: NodeJS.ReadableStream;
  /** Accept xz, zstd and bzip2 input, decompressed by their commands (`xz -dc`, `zstd -dc`, `bzip2 -dc`). */
  decompress?: boolean;
  /** The command run for each of them (tests point one at a missing command). */
  commands?: Partial<Record<ExternalCompression, string>>;
  /** Bytes per read from a file. */
  chunkSize?: number;
}

/** A line longer than this is not text we can read (a binary file, say). */
const MAX_LINE_BYTES = 16 << 20;
const NEWLINE = Buffer.from('\n');

type ExternalCompression = 'xz' | 'zstd' | 'bzip2';
type Compression = 'none' | 'gzip' | ExternalCompression;

/** Magic bytes: gzip RFC 1952; xz file format 1.0.4 §2.1.1.1; zstd RFC 8878 §3.1.1; bzip2 "BZh" and a block size digit. */
function compressionOf(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 6 && head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00) return 'xz';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 4 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68 && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  return 'none';
}

/** The Debian/Ubuntu package that has each command. */
const PACKAGES: Readonly<Record<ExternalCompression, string>> = { xz: 'xz-utils', zstd: 'zstd', bzip2: 'bzip2' };

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield head;
  for (;;) {
    const r = await rest.next();
    if (r.done === true) return;
    yield r.value;
  }
}

/**
 * A file read in chunks. With `reuse` (set when the reader is done with each chunk before it
 * asks for the next: plain text) every chunk is read into the same buffer, so that the input
 * does not pile up as garbage buffers waiting for a GC; otherwise (a decompressor may hold on to
 * chunks) each read gets a buffer of its own.
 */
class FileChunks {
  reuse = false;
  private shared: Buffer | null = null;
  private reading = false;
  private closed = false;

  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {}

  async *read(): AsyncGenerator<Buffer> {
    for (;;) {
      const buf = this.reuse ? (this.shared ??= Buffer.allocUnsafe(this.size)) : Buffer.allocUnsafe(this.size);
      const n = await this.readInto(buf);
      if (n === 0) return;
      yield buf.subarray(0, n);
    }
  }

  /** Bytes read into `buf`; 0 at the end of the file or once closed. */
  private readInto(buf: Buffer): Promise<number> {
    if (this.closed) return Promise.resolve(0);
    this.reading = true;
    return new Promise((resolve, reject) => {
      fs.read(this.fd, buf, 0, buf.length, null, (err, n) => {
        this.reading = false;
        if (this.closed) {
          fs.close(this.fd, () => undefined);
          resolve(0);
        } else if (err !== null) {
          reject(err);
        } else {
          resolve(n);
        }
      });
    });
  }

  /** Closes the file (after a read under way). Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.reading) fs.closeSync(this.fd);
  }
}

/**
 * A text input read as blocks of whole lines, each block ending in "\n" (one is added to a
 * last line without it). Memory is one read chunk plus the longest line.
 */
export class LineInput {
  /** Input bytes read so far (compressed bytes for compressed input). */
  bytesRead = 0;
  private rest: Buffer | null = null;
  /** The rest of a chunk after the line that ended `rest`: the next block's bytes. */
  private pending: Buffer | null = null;
  private done = false;
  private readonly cleanups: (() => void)[] = [];
  private readonly hash = createHash('sha256');
  private rawEnded = false;
  private digest: string | null = null;

  private constructor(
    /** The input's name in messages: the path, or `<stdin>`. */
    readonly name: string,
    private it: AsyncIterator<Buffer>,
  ) {}

  static async open(file: string, options: LineInputOptions = {}): Promise<LineInput> {
    const name = file === '-' ? '<stdin>' : file;
    let stream: AsyncIterable<Buffer | string>;
    let chunks: FileChunks | null = null;
    if (file === '-') {
      stream = (options.stdin ?? process.stdin) as AsyncIterable<Buffer | string>;
    } else {
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch (err) {
        throw new UserError(`cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      chunks = new FileChunks(fd, options.chunkSize ?? 1 << 20);
      stream = chunks.read();
    }
    const input = new LineInput(name, (async function* () {})());
    input.cleanups.push(() => (chunks === null ? (stream as Readable).destroy?.() : chunks.close()));
    const raw = (async function* (): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of stream) {
          const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
          input.bytesRead += b.length;
          input.hash.update(b);
          yield b;
        }
        input.rawEnded = true;
      } catch (err) {
        throw new UserError(`cannot read ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    })();
    // Enough bytes to tell the compression by its magic (xz's is 6 bytes long).
    let head: Buffer = Buffer.alloc(0);
    while (head.length < 6) {
      const r = await raw.next();
      if (r.done === true) break;
      head = head.length === 0 ? r.value : Buffer.concat([head, r.value]);
    }
    if (head.length === 0) {
      input.done = true;
      return input;
    }
    const kind = compressionOf(head);
    if (kind === 'none') {
      input.it = prepend(head, raw);
      // nextBytes() is done with each chunk before it reads the next.
      if (chunks !== null) chunks.reuse = true;
    } else if (kind === 'gzip') {
      input.it = input.gunzip(prepend(head, raw));
    } else if (options.decompress === true) {
      input.it = input.external(prepend(head, raw), kind, options.commands?.[kind] ?? kind);
    } else {
      input.close();
      throw new UserError(`${name}: ${kind}-compressed input is not read here; decompress it first (${kind} -d) or compress it with gzip`);
    }
    return input;
  }

  private gunzip(source: AsyncGenerator<Buffer>): AsyncIterator<Buffer> {
    const gunzip = createGunzip({ chunkSize: 1 << 16 });
    const src = Readable.from(source);
    pipeline(src, gunzip, () => undefined);
    this.cleanups.push(() => {
      src.destroy();
      gunzip.destroy();
    });
    const name = this.name;
    return (async function* () {
      try {
        for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk;
      } catch (err) {
        if (err instanceof UserError) throw err;
        throw new UserError(`${name}: cannot decompress (gzip): ${(err as Error).message}`);
      }
    })();
  }

  private external(source: AsyncGenerator<Buffer>, kind: ExternalCompression, command: string): AsyncIterator<Buffer> {
    const child = spawn(command, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let spawnError: NodeJS.ErrnoException | undefined;
    let stderr = '';
    const ended = new Promise<number | null>((resolve) => {
      child.on('error', (err) => {
        spawnError = err;
        resolve(null);
      });
      child.on('close', (code) => resolve(code));
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 1000) stderr += d.toString('utf8');
    });
    const src = Readable.from(source);
    let sourceError: unknown;
    pipeline(src, child.stdin, (err) => {
      // The command stopping early closes its stdin (EPIPE); only a read error of ours matters here.
      if (err !== undefined && err !== null && err instanceof UserError) sourceError = err;
    });
    this.cleanups.push(() => {
      src.destroy();
      child.kill();
    });
    const name = this.name;
    return (async function* () {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
      const code = await ended;
      if (sourceError !== undefined) throw sourceError;
      if (spawnError !== undefined) {
        throw new UserError(spawnError.code === 'ENOENT'
          ? `${name}: reading ${kind}-compressed input needs the ${command} command, which is not installed (or not on PATH); install it (e.g. apt-get install ${PACKAGES[kind]}) or decompress the file first`
          : `${name}: cannot run ${command}: ${spawnError.code ?? spawnError.message}`);
      }
      if (code !== 0) throw new UserError(`${name}: cannot decompress (${kind}): ${stderr.trim().split('\n')[0] || `exit status ${code}`}`);
    })();
  }

  /** The next block of whole lines, or null at the end of the input. */
  async nextBlock(): Promise<string | null> {
    const block = await this.nextBytes();
    return block === null ? null : block.toString('utf8');
  }

  /**
   * The next block of whole lines as bytes (UTF-8 as read), or null at the end of the input.
   * The block is the caller's until the next call; nothing of it is kept here.
   */
  async nextBytes(): Promise<Buffer | null> {
    for (;;) {
      let buf: Buffer;
      if (this.pending !== null) {
        buf = this.pending;
        this.pending = null;
      } else {
        if (this.done) {
          if (this.rest === null) return null;
          const last = Buffer.concat([this.rest, NEWLINE]);
          this.rest = null;
          return last;
        }
        const r = await this.it.next();
        if (r.done === true) {
          this.done = true;
          continue;
        }
        buf = r.value;
        if (this.rest !== null) {
          // The line begun in the last chunk is a block of its own, so that the chunk is not copied.
          const first = buf.indexOf(10);
          if (first >= 0) {
            const line = Buffer.concat([this.rest, buf.subarray(0, first + 1)]);
            this.rest = null;
            if (first < buf.length - 1) this.pending = buf.subarray(first + 1);
            return line;
          }
          buf = Buffer.concat([this.rest, buf]);
          this.rest = null;
        }
      }
      const nl = buf.lastIndexOf(10);
      if (nl < 0) {
        if (buf.length > MAX_LINE_BYTES) throw new UserError(`${this.name}: a line is longer than ${MAX_LINE_BYTES >> 20} MiB; is this a text trace?`);
        // Copied: the chunk's buffer may be read into again.
        this.rest = Buffer.from(buf);
        continue;
      }
      // Copied so that the big chunk it came from can be collected.
      if (nl < buf.length - 1) this.rest = Buffer.from(buf.subarray(nl + 1));
      return buf.subarray(0, nl + 1);
    }
  }

  /**
   * The sha256 (hex) of the input's bytes as read (compressed bytes for compressed input),
   * hashed while streaming; null until the whole input has been read.
   */
  get sha256(): string | null {
    if (!this.rawEnded) return null;
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }

  /** Stops reading and releases the input (any time; safe to call twice). */
  close(): void {
    this.done = true;
    this.rest = null;
    this.pending = null;
    for (const c of this.cleanups.splice(0)) c();
    void this.it.return?.();
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

export interface TraceReaderOptions {
  /** Count and skip events that break the Rules instead of failing (syntax errors still fail). */
  lenient?: boolean;
  /** The stream read for `-`; process.stdin by default. */
  stdin?: NodeJS.ReadableStream;
  /** Events per batch (default 4096). */
  batchSize?: number;
}

/** Why the lenient reader skipped an event: the keys of skipped(). */
export const SKIP_REASONS = {
  zoneTwice: 'zones created twice',
  unknownZone: 'uses of zones not created',
  allocLive: 'allocations of live objects',
  freeNotLive: 'frees of objects not live',
  wrongKind: 'frees of the wrong kind',
  otherZone: 'frees to another zone',
  arenaTwice: 'arenas created twice',
  unknownArena: 'uses of arenas not created',
} as const;
type SkipReason = (typeof SKIP_REASONS)[keyof typeof SKIP_REASONS];

/** A live object's kind in the reader's live set: a zone id (>= 0) for `a`, or one of these. */
const LIVE_MALLOC = -1;
const LIVE_PAGES = -2;
const LIVE_VMEM = -3;
const LIVE_MBUF = -4;

const MAX_CPUS = 4096;
const MAX_FIELDS = 16;
const ITEM_SIZE = `an item size in bytes (1-${MAX_ITEM_SIZE})`;

const SHAPES: readonly string[] = [
  '',
  '"CPU zone ZONE NAME SIZE [FLAG...]"',
  '"CPU a ZONE OBJ"',
  '"CPU f ZONE OBJ"',
  '"CPU m SIZE OBJ"',
  '"CPU x OBJ"',
  '"CPU P ORDER OBJ"',
  '"CPU Q OBJ"',
  '"CPU t CYCLES"',
  '"CPU arena ARENA NAME BASE SIZE QUANTUM QCACHE_MAX [import PARENT [IMPORT_QUANTUM]]"',
  '"CPU v ARENA OBJ SIZE [STRAT] [align=A] [phase=P] [nocross=N]"',
  '"CPU V OBJ"',
  '"CPU b OBJ KIND"',
  '"CPU B OBJ"',
];
/** Fields of each op's line; arena and v have optional ones (checked in parseEvent). */
const ARITY = [0, 5, 4, 4, 4, 3, 4, 3, 3, 8, 5, 3, 4, 3];
const OPS_V1 = 'an op (zone, a, f, m, x, P, Q, t)';
const OPS_V2 = 'an op (zone, a, f, m, x, P, Q, t, arena, v, V, b, B)';
const MBUF_KIND = `an mbuf kind (${mbufKinds.slice(0, -1).join(', ')}, chain:N)`;
const MBUF_CHAIN = `chain:N, a chain of 1 to ${MAX_MBUF_CHAIN} mbufs`;
const U64_MAX = (1n << 64n) - 1n;
const VMEM_OPTIONS = `a vmem option (${vmemStrategies.join(', ')}, align=A, phase=P, nocross=N)`;

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/**
 * Reads a kmemu trace (plain or gzip; `-` for stdin) in batches of events. open() reads and
 * checks the header and the metadata; next() hands out the next batch. Malformed lines, and
 * events that break the Rules unless `lenient`, throw a UserError `FILE:LINE: ...`.
 */
export class TraceReader {
  /** The metadata before the first event. */
  readonly header: TraceHeader = { meta: {} };
  /** Events handed out so far. */
  events = 0;
  /** Lines read so far. */
  lines = 0;
  private text = '';
  private pos = 0;
  private eof = false;
  private readonly lenient: boolean;
  private readonly batchSize: number;
  private readonly pool: TraceEvent[];
  private readonly out: TraceEvent[] = [];
  private readonly fields = new Int32Array(2 * MAX_FIELDS);
  private nfields = 0;
  private readonly live = new Map<number, number>();
  private readonly zones = new Set<number>();
  /** Created arenas and their quantum (for the restrictions of `v`). */
  private readonly arenas = new Map<number, bigint>();
  private version = TRACE_VERSION_1;
  private readonly skips = new Map<SkipReason, number>();

  private constructor(
    private readonly input: LineInput,
    options: TraceReaderOptions,
  ) {
    this.lenient = options.lenient ?? false;
    this.batchSize = Math.max(1, options.batchSize ?? 4096);
    this.pool = Array.from({ length: this.batchSize }, newEvent);
  }

  /** The input's name in messages: the path, or `<stdin>`. */
  get name(): string {
    return this.input.name;
  }

  /** The format version the header states (1 or 2). */
  get formatVersion(): number {
    return this.version;
  }

  /** Input bytes read so far (compressed bytes for gzip input): for a progress bar. */
  get bytesRead(): number {
    return this.input.bytesRead;
  }

  /** The sha256 (hex) of the trace file's bytes as read; null until the whole input is read. */
  get sha256(): string | null {
    return this.input.sha256;
  }

  /** Objects live now (allocated and not yet freed in the events handed out). */
  get liveObjects(): number {
    return this.live.size;
  }

  static async open(file: string, options: TraceReaderOptions = {}): Promise<TraceReader> {
    const input = await LineInput.open(file, options.stdin === undefined ? {} : { stdin: options.stdin });
    const r = new TraceReader(input, options);
    try {
      await r.readHeader();
    } catch (err) {
      input.close();
      throw err;
    }
    return r;
  }

  /** Loads the next block of lines; false at the end of the input. */
  private async fill(): Promise<boolean> {
    if (this.eof) return false;
    const block = await this.input.nextBlock();
    if (block === null) {
      this.eof = true;
      this.text = '';
      this.pos = 0;
      return false;
    }
    this.text = block;
    this.pos = 0;
    return true;
  }

  /** The line at pos without its end (and without a trailing CR), not consumed. */
  private peekLineEnd(): number {
    const nl = this.text.indexOf('\n', this.pos);
    return nl > this.pos && this.text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
  }

  private consumeLine(): void {
    this.pos = this.text.indexOf('\n', this.pos) + 1;
    this.lines++;
  }

  private async readHeader(): Promise<void> {
    const expected = `"${TRACE_MAGIC} ${TRACE_VERSION_1}" or "${TRACE_MAGIC} ${TRACE_VERSION}"`;
    if (this.pos >= this.text.length && !(await this.fill())) throw new UserError(`${this.name}:1: expected ${expected}, got ""`);
    const first = this.text.slice(this.pos, this.peekLineEnd());
    this.consumeLine();
    const m = /^kmemu-trace (\d+)$/.exec(first);
    const v = m === null ? 0 : Number(m[1]);
    if (v > TRACE_VERSION) throw new UserError(`${this.name}:1: trace format version ${m![1]} is newer than this kmemu reads (${TRACE_VERSION})`);
    if (first !== `${TRACE_MAGIC} ${v}` || v < TRACE_VERSION_1) throw new UserError(`${this.name}:1: expected ${expected}, got ${quote(first)}`);
    this.version = v;
    // Metadata: `# key: value` comments before the first event.
    for (;;) {
      if (this.pos >= this.text.length && !(await this.fill())) return;
      const line = this.text.slice(this.pos, this.peekLineEnd()).trim();
      if (line !== '' && !line.startsWith('#')) return;
      this.consumeLine();
      const m = /^#\s*([A-Za-z0-9_.-]+):\s*(.*)$/.exec(line);
      if (m === null) continue;
      const key = m[1]!;
      const value = unescapeComment(m[2]!.trimEnd());
      this.header.meta[key] = value;
      if (key === 'cpus') {
        const n = /^\d{1,4}$/.test(value) ? Number(value) : 0;
        if (n < 1 || n > MAX_CPUS) throw new UserError(`${this.name}:${this.lines}: expected a number of CPUs (1-${MAX_CPUS}), got ${quote(value)}`);
        this.header.cpus = n;
      }
    }
  }

  /**
   * The next batch of events (at most batchSize), or null after the last. The array and its
   * events are reused by the next call: copy what you keep.
   */
  async next(): Promise<readonly TraceEvent[] | null> {
    const out = this.out;
    out.length = 0;
    while (out.length < this.batchSize) {
      if (this.pos >= this.text.length && !(await this.fill())) break;
      this.parseBlock(out);
    }
    this.events += out.length;
    return out.length === 0 ? null : out;
  }

  /** What the lenient reader skipped, by reason (see SKIP_REASONS). */
  skipped(): Record<string, number> {
    return Object.fromEntries(this.skips);
  }

  /** Stops reading (any time; safe to call twice). */
  async close(): Promise<void> {
    this.input.close();
    this.eof = true;
    this.text = '';
    this.pos = 0;
    return Promise.resolve();
  }

  private parseBlock(out: TraceEvent[]): void {
    const text = this.text;
    const pool = this.pool;
    const cap = this.batchSize;
    let pos = this.pos;
    while (pos < text.length && out.length < cap) {
      const nl = text.indexOf('\n', pos);
      const start = pos;
      const end = nl > pos && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      pos = nl + 1;
      this.lines++;
      if (!this.split(text, start, end)) continue;
      const ev = pool[out.length]!;
      this.parseEvent(text, start, end, ev);
      if (this.accept(ev)) out.push(ev);
    }
    this.pos = pos;
  }

  /** Splits a line into fields; false for a blank line or a comment. */
  private split(text: string, start: number, end: number): boolean {
    const f = this.fields;
    let n = 0;
    let i = start;
    while (i < end) {
      let c = text.charCodeAt(i);
      while ((c === 32 || c === 9) && i < end) c = text.charCodeAt(++i);
      if (i >= end) break;
      if (n === 0 && c === 35) return false;
      const s = i;
      while (i < end && c !== 32 && c !== 9) c = text.charCodeAt(++i);
      if (n < MAX_FIELDS) {
        f[2 * n] = s;
        f[2 * n + 1] = i;
      }
      n++;
    }
    this.nfields = n;
    return n > 0;
  }

  private fail(what: string, got: string): never {
    throw new UserError(`${this.name}:${this.lines}: expected ${what}, got ${quote(got)}`);
  }

  private field(text: string, k: number): string {
    return text.slice(this.fields[2 * k]!, this.fields[2 * k + 1]!);
  }

  /** A decimal integer from 0 to `max`; fails with `what` otherwise. */
  private number(text: string, k: number, max: number, what: string): number {
    const s = this.fields[2 * k]!;
    const e = this.fields[2 * k + 1]!;
    let v = 0;
    if (e - s > 16) this.fail(what, this.field(text, k));
    for (let i = s; i < e; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) this.fail(what, this.field(text, k));
      v = v * 10 + d;
    }
    if (v > max) this.fail(what, this.field(text, k));
    return v;
  }

  /** A decimal or 0x-hex integer from 0 to `max` (at most 2^64-1), exact; fails with `what` otherwise. */
  private big(s: string, max: bigint, what: string, got = s): bigint {
    if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(s)) this.fail(what, got);
    const v = BigInt(s);
    if (v > max) this.fail(what, got);
    return v;
  }

  private parseArena(text: string, start: number, end: number, ev: TraceEvent): void {
    const n = this.nfields;
    if (n !== 8 && n !== 10 && n !== 11) this.fail(SHAPES[OP_ARENA]!, text.slice(start, end).trim());
    const a = newVmemArgs();
    ev.vmem = a;
    ev.zone = this.number(text, 2, Number.MAX_SAFE_INTEGER, 'an arena id');
    ev.name = this.field(text, 3);
    if (ev.name.length > MAX_VMEM_NAME) this.fail(`an arena name of at most ${MAX_VMEM_NAME} characters`, ev.name);
    a.base = this.big(this.field(text, 4), U64_MAX, 'an arena base address (0-0xffffffffffffffff, decimal or 0x-hex)');
    a.span = this.big(this.field(text, 5), U64_MAX, 'an arena size in bytes (0-0xffffffffffffffff, decimal or 0x-hex)');
    if (a.base + a.span > U64_MAX + 1n) this.fail('an arena size that ends the span at or below 2^64 (BASE + SIZE)', this.field(text, 5));
    const QUANTUM = `a quantum (a power of two from 1 to ${MAX_VMEM_QUANTUM})`;
    a.quantum = this.big(this.field(text, 6), BigInt(MAX_VMEM_QUANTUM), QUANTUM);
    if (a.quantum === 0n || (a.quantum & (a.quantum - 1n)) !== 0n) this.fail(QUANTUM, this.field(text, 6));
    const QCACHE = `a quantum cache limit (a multiple of the quantum, at most ${MAX_VMEM_QCACHE_QUANTA} quanta)`;
    a.qcacheMax = this.big(this.field(text, 7), a.quantum * BigInt(MAX_VMEM_QCACHE_QUANTA), QCACHE);
    if (a.qcacheMax % a.quantum !== 0n) this.fail(QCACHE, this.field(text, 7));
    if ((a.base % a.quantum !== 0n || a.span % a.quantum !== 0n)) this.fail('an arena span (BASE and SIZE) in whole quanta', `${this.field(text, 4)} ${this.field(text, 5)}`);
    if (n === 8) return;
    if (this.field(text, 8) !== 'import') this.fail('"import PARENT [IMPORT_QUANTUM]"', text.slice(this.fields[16]!, end).trim());
    a.parent = this.number(text, 9, Number.MAX_SAFE_INTEGER, 'an arena id');
    if (n === 11) {
      const IMPORT = 'an import quantum (a multiple of the quantum, at least one)';
      a.importQuantum = this.big(this.field(text, 10), U64_MAX, IMPORT);
      if (a.importQuantum === 0n || a.importQuantum % a.quantum !== 0n) this.fail(IMPORT, this.field(text, 10));
    }
  }

  private parseVmemAlloc(text: string, start: number, end: number, ev: TraceEvent): void {
    const n = this.nfields;
    if (n < 5 || n > 9) this.fail(SHAPES[OP_VALLOC]!, text.slice(start, end).trim());
    ev.zone = this.number(text, 2, Number.MAX_SAFE_INTEGER, 'an arena id');
    ev.obj = this.number(text, 3, Number.MAX_SAFE_INTEGER, 'an object id');
    const SIZE = `a vmem size in bytes (1-${MAX_VMEM_SIZE}, decimal or 0x-hex)`;
    ev.size = Number(this.big(this.field(text, 4), BigInt(MAX_VMEM_SIZE), SIZE));
    if (ev.size === 0) this.fail(SIZE, this.field(text, 4));
    if (n === 5) return;
    const a = newVmemArgs();
    ev.vmem = a;
    const seen = new Set<string>();
    for (let k = 5; k < n; k++) {
      const f = this.field(text, k);
      const eq = f.indexOf('=');
      const key = eq < 0 ? 'strat' : f.slice(0, eq);
      if (key === 'strat' ? !(vmemStrategies as readonly string[]).includes(f) || k !== 5 : key !== 'align' && key !== 'phase' && key !== 'nocross') {
        this.fail(k !== 5 && eq < 0 && (vmemStrategies as readonly string[]).includes(f) ? 'the strategy right after SIZE' : VMEM_OPTIONS, f);
      }
      if (seen.has(key)) this.fail('each vmem option at most once', f);
      seen.add(key);
      if (key === 'strat') {
        a.strat = f as VmemStrategy;
        continue;
      }
      const what = key === 'align' ? 'align=A, a power of two' : key === 'phase' ? 'phase=P, a number of bytes' : 'nocross=N, a power of two';
      const v = this.big(f.slice(eq + 1), BigInt(MAX_VMEM_SIZE), `${what} (up to ${MAX_VMEM_SIZE}, decimal or 0x-hex)`, f);
      if (key !== 'phase' && (v === 0n || (v & (v - 1n)) !== 0n)) this.fail(`${what} (up to ${MAX_VMEM_SIZE}, decimal or 0x-hex)`, f);
      a[key as 'align' | 'phase' | 'nocross'] = v;
    }
  }

  /** KIND of a `b` line: mbuf, pkthdr, cluster, or chain:N with N from 1 to MAX_MBUF_CHAIN (into ev.size). */
  private parseMbufKind(text: string, ev: TraceEvent): void {
    const f = this.field(text, 3);
    if (f.startsWith('chain:')) {
      const n = f.slice(6);
      if (!/^[0-9]{1,3}$/.test(n) || Number(n) < 1 || Number(n) > MAX_MBUF_CHAIN) this.fail(MBUF_CHAIN, f);
      ev.mbuf = 'chain';
      ev.size = Number(n);
      return;
    }
    if (f === 'chain' || !(mbufKinds as readonly string[]).includes(f)) this.fail(f === 'chain' ? MBUF_CHAIN : MBUF_KIND, f);
    ev.mbuf = f as MbufKind;
  }

  private parseEvent(text: string, start: number, end: number, ev: TraceEvent): void {
    const f = this.fields;
    const n = this.nfields;
    ev.line = this.lines;
    ev.cpu = this.number(text, 0, MAX_CPUS - 1, `a CPU number (0-${MAX_CPUS - 1})`);
    if (n < 2) this.fail('"CPU OP ARGS..."', text.slice(start, end).trim());
    const os = f[2]!;
    const oe = f[3]!;
    let op = 0;
    if (oe - os === 1) {
      switch (text.charCodeAt(os)) {
        case 97: op = OP_ALLOC; break; // a
        case 102: op = OP_FREE; break; // f
        case 109: op = OP_MALLOC; break; // m
        case 120: op = OP_MFREE; break; // x
        case 80: op = OP_PALLOC; break; // P
        case 81: op = OP_PFREE; break; // Q
        case 116: op = OP_THINK; break; // t
        case 118: op = OP_VALLOC; break; // v
        case 86: op = OP_VFREE; break; // V
        case 98: op = OP_MBUF; break; // b
        case 66: op = OP_MFREEM; break; // B
      }
    } else if (oe - os === 4 && text.startsWith('zone', os)) {
      op = OP_ZONE;
    } else if (oe - os === 5 && text.startsWith('arena', os)) {
      op = OP_ARENA;
    }
    if (op !== 0 && versionOfOp(op) > this.version) {
      throw new UserError(`${this.name}:${this.lines}: the "${opNames[op]}" op needs format version 2; this trace's header says "${TRACE_MAGIC} ${this.version}"`);
    }
    if (op === 0) this.fail(this.version >= 2 ? OPS_V2 : OPS_V1, this.field(text, 1));
    ev.op = op;
    if (op === OP_ZONE ? n < ARITY[op]! || n > MAX_FIELDS : op !== OP_ARENA && op !== OP_VALLOC && n !== ARITY[op]!) this.fail(SHAPES[op]!, text.slice(start, end).trim());
    if (ev.flags.length > 0) ev.flags = [];
    ev.name = '';
    ev.zone = 0;
    ev.obj = 0;
    ev.size = 0;
    ev.vmem = null;
    ev.mbuf = null;
    const MAX = Number.MAX_SAFE_INTEGER;
    switch (op) {
      case OP_MBUF:
        ev.obj = this.number(text, 2, MAX, 'an object id');
        this.parseMbufKind(text, ev);
        break;
      case OP_MFREEM:
        ev.obj = this.number(text, 2, MAX, 'an object id');
        break;
      case OP_ARENA:
        this.parseArena(text, start, end, ev);
        break;
      case OP_VALLOC:
        this.parseVmemAlloc(text, start, end, ev);
        break;
      case OP_VFREE:
        ev.obj = this.number(text, 2, MAX, 'an object id');
        break;
      case OP_ZONE: {
        ev.zone = this.number(text, 2, MAX, 'a zone id');
        ev.name = this.field(text, 3);
        ev.size = this.number(text, 4, MAX_ITEM_SIZE, ITEM_SIZE);
        if (ev.size === 0) this.fail(ITEM_SIZE, '0');
        for (let k = 5; k < n; k++) {
          const flag = this.field(text, k);
          if (!(zoneFlags as readonly string[]).includes(flag)) this.fail(`a zone flag (${zoneFlags.join(', ')})`, flag);
          ev.flags.push(flag as ZoneFlag);
        }
        break;
      }
      case OP_ALLOC:
      case OP_FREE:
        ev.zone = this.number(text, 2, MAX, 'a zone id');
        ev.obj = this.number(text, 3, MAX, 'an object id');
        break;
      case OP_MALLOC:
        ev.size = this.number(text, 2, MAX_MALLOC_SIZE, `a size in bytes (0-${MAX_MALLOC_SIZE})`);
        ev.obj = this.number(text, 3, MAX, 'an object id');
        break;
      case OP_PALLOC:
        ev.size = this.number(text, 2, MAX_PAGE_ORDER, `a page order (0-${MAX_PAGE_ORDER})`);
        ev.obj = this.number(text, 3, MAX, 'an object id');
        break;
      case OP_MFREE:
      case OP_PFREE:
        ev.obj = this.number(text, 2, MAX, 'an object id');
        break;
      case OP_THINK:
        ev.size = this.number(text, 2, MAX, 'a number of cycles');
        break;
    }
  }

  /** Applies the Rules to `ev`: true to hand it out, false when the lenient reader skips it. */
  private accept(ev: TraceEvent): boolean {
    const live = this.live;
    switch (ev.op) {
      case OP_ZONE:
        if (this.zones.has(ev.zone)) return this.reject(SKIP_REASONS.zoneTwice, `zone ${ev.zone} was already created`);
        this.zones.add(ev.zone);
        return true;
      case OP_ALLOC:
        if (!this.zones.has(ev.zone)) return this.reject(SKIP_REASONS.unknownZone, `zone ${ev.zone} was not created`);
        if (live.has(ev.obj)) return this.reject(SKIP_REASONS.allocLive, `allocation of object ${ev.obj}, which is already live`);
        live.set(ev.obj, ev.zone);
        return true;
      case OP_MALLOC:
      case OP_PALLOC:
      case OP_MBUF:
        if (live.has(ev.obj)) return this.reject(SKIP_REASONS.allocLive, `allocation of object ${ev.obj}, which is already live`);
        live.set(ev.obj, ev.op === OP_MALLOC ? LIVE_MALLOC : ev.op === OP_PALLOC ? LIVE_PAGES : LIVE_MBUF);
        return true;
      case OP_ARENA: {
        if (this.arenas.has(ev.zone)) return this.reject(SKIP_REASONS.arenaTwice, `arena ${ev.zone} was already created`);
        const parent = ev.vmem!.parent;
        if (parent >= 0 && !this.arenas.has(parent)) return this.reject(SKIP_REASONS.unknownArena, `arena ${parent} was not created`);
        this.arenas.set(ev.zone, ev.vmem!.quantum);
        return true;
      }
      case OP_VALLOC: {
        const quantum = this.arenas.get(ev.zone);
        if (quantum === undefined) return this.reject(SKIP_REASONS.unknownArena, `arena ${ev.zone} was not created`);
        if (ev.vmem !== null) this.checkRestrictions(ev, quantum);
        if (live.has(ev.obj)) return this.reject(SKIP_REASONS.allocLive, `allocation of object ${ev.obj}, which is already live`);
        live.set(ev.obj, LIVE_VMEM);
        return true;
      }
      case OP_FREE:
      case OP_MFREE:
      case OP_PFREE:
      case OP_VFREE:
      case OP_MFREEM: {
        if (ev.op === OP_FREE && !this.zones.has(ev.zone)) return this.reject(SKIP_REASONS.unknownZone, `zone ${ev.zone} was not created`);
        const kind = live.get(ev.obj);
        if (kind === undefined) return this.reject(SKIP_REASONS.freeNotLive, `free of object ${ev.obj}, which is not live`);
        const allocOp = kind === LIVE_MALLOC ? OP_MALLOC : kind === LIVE_PAGES ? OP_PALLOC : kind === LIVE_VMEM ? OP_VALLOC : kind === LIVE_MBUF ? OP_MBUF : OP_ALLOC;
        if (allocOp + 1 !== ev.op) {
          return this.reject(SKIP_REASONS.wrongKind, `free of object ${ev.obj} with "${opNames[ev.op]}", which was allocated with "${opNames[allocOp]}"`);
        }
        if (ev.op === OP_FREE && kind !== ev.zone) {
          return this.reject(SKIP_REASONS.otherZone, `free of object ${ev.obj} to zone ${ev.zone}, which was allocated from zone ${kind}`);
        }
        live.delete(ev.obj);
        return true;
      }
      default:
        return true;
    }
  }

  /**
   * vmem_xalloc's assertions on its restrictions, which depend on the arena's quantum: each a
   * multiple of it, phase below align, the segment (SIZE rounded up to the quantum) no larger
   * than nocross and not crossing a nocross boundary at its phase. Errors even with --lenient.
   */
  private checkRestrictions(ev: TraceEvent, quantum: bigint): void {
    const a = ev.vmem!;
    const at = `${this.name}:${this.lines}: expected`;
    for (const key of ['align', 'phase', 'nocross'] as const) {
      if (a[key] % quantum !== 0n) throw new UserError(`${at} ${key}= a multiple of arena ${ev.zone}'s quantum (${quantum}), got "${key}=${a[key]}"`);
    }
    if (a.phase !== 0n && a.phase >= a.align) throw new UserError(`${at} phase= below align=${a.align}, got "phase=${a.phase}"`);
    const size = ((BigInt(ev.size) + quantum - 1n) / quantum) * quantum;
    if (a.nocross !== 0n) {
      if (a.nocross < size) throw new UserError(`${at} nocross= at least the size rounded to the quantum (${size}), got "nocross=${a.nocross}"`);
      if ((a.phase ^ (a.phase + size - 1n)) & -a.nocross) throw new UserError(`${at} a phase= at which the segment does not cross a nocross=${a.nocross} boundary, got "phase=${a.phase}"`);
    }
  }

  private reject(reason: SkipReason, message: string): false {
    if (!this.lenient) throw new UserError(`${this.name}:${this.lines}: ${message}`);
    this.skips.set(reason, (this.skips.get(reason) ?? 0) + 1);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface TraceWriterOptions {
  /** gzip the output; by default when the name ends in `.gz`. */
  gzip?: boolean;
  /**
   * The format version of the header: 1 (the default) for a trace of version-1 ops only, so
   * that such traces stay as they were; 2 for one with `arena`, `v`, `V`, `b` or `B` events.
   */
  version?: number;
}

/**
 * Text buffered before a write, counted in UTF-16 code units as when the buffer was a string:
 * with gzip each flush is one gzip member (readers join them), so where the flushes fall is
 * part of the output's bytes.
 */
const FLUSH_CHARS = 1 << 20;
/** Room for the longest line of numbers an event has: three 16-digit fields, the CPU, the op, spaces and LF. */
const EVENT_BYTES = 96;
/** putEvent()'s b of a two-field event (fields are never negative). */
const NO_FIELD = -1;
/** Bytes of the ops written as a character: a, f, m, x, P, Q, t. */
const CH_A = 0x61;
const CH_F = 0x66;
const CH_M = 0x6d;
const CH_X = 0x78;
const CH_P = 0x50;
const CH_Q = 0x51;
const CH_T = 0x74;

/**
 * Writes a kmemu trace to `file` (`-`: standard output), gzip-compressed when it ends in `.gz`,
 * through openAtomic: a file is complete or absent, renamed into place by close(); a device or
 * FIFO is written directly. It checks
 * the fields it writes, not the Rules. The common events (a, f, m, x, P, Q, t) are written as
 * bytes straight into the buffer, the others as text.
 */
export class TraceWriter {
  /** Events written. */
  events = 0;
  private buf = Buffer.allocUnsafe(FLUSH_CHARS + EVENT_BYTES);
  /** Bytes in buf. */
  private pos = 0;
  /** UTF-16 code units in buf (equal to the bytes for ASCII): when to flush. */
  private chars = 0;
  private readonly gzip: boolean;

  private constructor(
    private readonly out: AtomicOutput,
    gzip: boolean,
    /** The header's format version. */
    readonly version: number,
  ) {
    this.gzip = gzip;
  }

  /** Opens `file` and writes the header: `# key: value` for each of `header.meta`, then `# cpus: N`. */
  static create(file: string, header: Partial<TraceHeader> = {}, options: TraceWriterOptions = {}): TraceWriter {
    const version = options.version ?? TRACE_VERSION_1;
    if (version !== TRACE_VERSION_1 && version !== TRACE_VERSION) throw new Error(`not a trace format version: ${version}`);
    const w = new TraceWriter(openAtomic(file), options.gzip ?? file.endsWith('.gz'), version);
    w.put(`${TRACE_MAGIC} ${version}\n`);
    const meta = header.meta ?? {};
    for (const [key, value] of Object.entries(meta)) w.comment(`${key}: ${value}`);
    if (header.cpus !== undefined && meta.cpus === undefined) w.comment(`cpus: ${header.cpus}`);
    return w;
  }

  /** The file the trace appears as on close(). */
  get path(): string {
    return this.out.path;
  }

  /** Writes `# text` on one line, its backslashes, CRs and LFs escaped (escapeComment). */
  comment(text: string): void {
    this.put(`# ${escapeComment(text)}\n`);
  }

  write(ev: TraceEvent): void {
    switch (ev.op) {
      case OP_ZONE: this.zone(ev.cpu, ev.zone, ev.name, ev.size, ev.flags); break;
      case OP_ALLOC: this.alloc(ev.cpu, ev.zone, ev.obj); break;
      case OP_FREE: this.free(ev.cpu, ev.zone, ev.obj); break;
      case OP_MALLOC: this.malloc(ev.cpu, ev.size, ev.obj); break;
      case OP_MFREE: this.mfree(ev.cpu, ev.obj); break;
      case OP_PALLOC: this.palloc(ev.cpu, ev.size, ev.obj); break;
      case OP_PFREE: this.pfree(ev.cpu, ev.obj); break;
      case OP_THINK: this.think(ev.cpu, ev.size); break;
      case OP_ARENA: {
        const a = ev.vmem!;
        this.arena(ev.cpu, ev.zone, ev.name, a.base, a.span, a.quantum, a.qcacheMax, a.parent < 0 ? undefined : a.parent, a.importQuantum === 0n ? undefined : a.importQuantum);
        break;
      }
      case OP_VALLOC: this.valloc(ev.cpu, ev.zone, ev.obj, ev.size, ev.vmem ?? undefined); break;
      case OP_VFREE: this.vfree(ev.cpu, ev.obj); break;
      case OP_MBUF: this.mbuf(ev.cpu, ev.obj, ev.mbuf ?? 'mbuf', ev.size); break;
      case OP_MFREEM: this.mfreem(ev.cpu, ev.obj); break;
      default: throw new Error(`not a trace event op: ${ev.op}`);
    }
  }

  zone(cpu: number, zone: number, name: string, size: number, flags: readonly ZoneFlag[] = []): void {
    if (!/^\S+$/.test(name)) throw new Error(`a zone name is one word, not ${JSON.stringify(name)}`);
    for (const f of flags) if (!zoneFlags.includes(f)) throw new Error(`not a zone flag: ${JSON.stringify(f)}`);
    this.event(`${check(cpu)} zone ${check(zone)} ${name} ${check(size)}${flags.length > 0 ? ` ${flags.join(' ')}` : ''}\n`);
  }

  alloc(cpu: number, zone: number, obj: number): void {
    this.putEvent(cpu, CH_A, zone, obj);
  }

  free(cpu: number, zone: number, obj: number): void {
    this.putEvent(cpu, CH_F, zone, obj);
  }

  malloc(cpu: number, size: number, obj: number): void {
    this.putEvent(cpu, CH_M, size, obj);
  }

  mfree(cpu: number, obj: number): void {
    this.putEvent(cpu, CH_X, obj, NO_FIELD);
  }

  palloc(cpu: number, order: number, obj: number): void {
    this.putEvent(cpu, CH_P, order, obj);
  }

  pfree(cpu: number, obj: number): void {
    this.putEvent(cpu, CH_Q, obj, NO_FIELD);
  }

  think(cpu: number, cycles: number): void {
    this.putEvent(cpu, CH_T, cycles, NO_FIELD);
  }

  /**
   * `CPU arena ARENA NAME BASE SIZE QUANTUM QCACHE_MAX [import PARENT [IMPORT_QUANTUM]]`; BASE
   * in 0x-hex, the rest decimal.
   */
  arena(cpu: number, arena: number, name: string, base: bigint, size: bigint, quantum: bigint, qcacheMax: bigint, parent?: number, importQuantum?: bigint): void {
    this.needs(OP_ARENA);
    if (!/^\S{1,16}$/.test(name)) throw new Error(`an arena name is one word of at most 16 characters, not ${JSON.stringify(name)}`);
    for (const v of [base, size, quantum, qcacheMax, importQuantum ?? 0n]) if (v < 0n || v >= 1n << 64n) throw new Error(`an arena field is 64-bit, not ${v}`);
    const imp = parent === undefined ? '' : ` import ${check(parent)}${importQuantum === undefined ? '' : ` ${importQuantum}`}`;
    this.event(`${check(cpu)} arena ${check(arena)} ${name} 0x${base.toString(16)} ${size} ${quantum} ${qcacheMax}${imp}\n`);
  }

  /** `CPU v ARENA OBJ SIZE [STRAT] [align=A] [phase=P] [nocross=N]`: the defaults (firstfit, 0) are left out. */
  valloc(cpu: number, arena: number, obj: number, size: number, args?: { strat: VmemStrategy; align: bigint; phase: bigint; nocross: bigint }): void {
    this.needs(OP_VALLOC);
    let opt = '';
    if (args !== undefined) {
      if (args.strat !== 'firstfit') opt += ` ${args.strat}`;
      if (args.align !== 0n) opt += ` align=${args.align}`;
      if (args.phase !== 0n) opt += ` phase=${args.phase}`;
      if (args.nocross !== 0n) opt += ` nocross=${args.nocross}`;
    }
    this.event(`${check(cpu)} v ${check(arena)} ${check(obj)} ${check(size)}${opt}\n`);
  }

  vfree(cpu: number, obj: number): void {
    this.needs(OP_VFREE);
    this.event(`${check(cpu)} V ${check(obj)}\n`);
  }

  /** `CPU b OBJ KIND`: `chain` is written chain:N with N = `chain` mbufs (1 to MAX_MBUF_CHAIN). */
  mbuf(cpu: number, obj: number, kind: MbufKind, chain = 0): void {
    this.needs(OP_MBUF);
    if (!mbufKinds.includes(kind)) throw new Error(`not an mbuf kind: ${JSON.stringify(kind)}`);
    if (kind === 'chain' && !(Number.isInteger(chain) && chain >= 1 && chain <= MAX_MBUF_CHAIN)) throw new Error(`an mbuf chain has 1 to ${MAX_MBUF_CHAIN} mbufs, not ${chain}`);
    this.event(`${check(cpu)} b ${check(obj)} ${kind === 'chain' ? `chain:${chain}` : kind}\n`);
  }

  /** `CPU B OBJ`: m_freem of a `b` object. */
  mfreem(cpu: number, obj: number): void {
    this.needs(OP_MFREEM);
    this.event(`${check(cpu)} B ${check(obj)}\n`);
  }

  private needs(op: number): void {
    if (versionOfOp(op) > this.version) throw new Error(`a version-${this.version} trace cannot hold "${opNames[op]}" events: create the writer with version ${versionOfOp(op)}`);
  }

  private event(line: string): void {
    this.events++;
    this.put(line);
  }

  /** `CPU OP A B`, or `CPU OP A` when b is NO_FIELD; its fields checked before anything is written. */
  private putEvent(cpu: number, op: number, a: number, b: number): void {
    check(cpu);
    check(a);
    if (b !== NO_FIELD) check(b);
    const start = this.reserve(EVENT_BYTES);
    const buf = this.buf;
    let p = putDecimal(buf, start, cpu);
    buf[p++] = 0x20;
    buf[p++] = op;
    buf[p++] = 0x20;
    p = putDecimal(buf, p, a);
    if (b !== NO_FIELD) {
      buf[p++] = 0x20;
      p = putDecimal(buf, p, b);
    }
    buf[p++] = 0x0a;
    this.events++;
    this.written(start, p);
  }

  /** Appends whole lines of text. */
  private put(text: string): void {
    // UTF-8 takes at most 3 bytes for a UTF-16 code unit.
    const start = this.reserve(3 * text.length);
    this.pos = start + this.buf.write(text, start, 'utf8');
    this.chars += text.length;
    if (this.chars >= FLUSH_CHARS) this.flush();
  }

  /** Room for `bytes` more at the end of the buffer; returns where they go. */
  private reserve(bytes: number): number {
    if (this.out.fd < 0) throw new Error(`trace ${this.out.path} written after close`);
    if (this.pos + bytes > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.pos + bytes));
      this.buf.copy(bigger, 0, 0, this.pos);
      this.buf = bigger;
    }
    return this.pos;
  }

  /** ASCII bytes [start, end) of whole lines were put at the end of the buffer. */
  private written(start: number, end: number): void {
    this.pos = end;
    this.chars += end - start;
    if (this.chars >= FLUSH_CHARS) this.flush();
  }

  private flush(): void {
    if (this.pos === 0) return;
    const data = this.buf.subarray(0, this.pos);
    this.pos = 0;
    this.chars = 0;
    try {
      writeAll(this.out.fd, this.gzip ? gzipSync(data) : data);
    } catch (err) {
      this.out.abort();
      throw outputError(this.out.path, err);
    }
  }

  /** Writes what is buffered and renames the file into place. */
  close(): void {
    this.flush();
    this.out.commit();
  }

  /** Removes the temporary file; nothing appears at `path`. Safe after close() (then does nothing). */
  abort(): void {
    this.pos = 0;
    this.chars = 0;
    if (this.out.fd >= 0) this.out.abort();
  }
}

/**
 * A comment's text on one line (FORMAT.md): `\` as `\\`, CR as `\r`, LF as `\n`, so that a
 * file name with a newline can be a `# source:`. Readers undo it in metadata values.
 */
export function escapeComment(text: string): string {
  return /[\\\r\n]/.test(text) ? text.replace(/[\\\r\n]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : '\\r')) : text;
}

/** Undoes escapeComment (a backslash before anything else stays as it is). */
export function unescapeComment(text: string): string {
  return text.includes('\\') ? text.replace(/\\([\\nr])/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : '\\')) : text;
}

/** 10^k for k = 0..16: a safe integer has at most 16 digits. */
const POW10 = Array.from({ length: 17 }, (_, k) => 10 ** k);

/** Writes `n` (a safe integer, at least 0) in decimal at `p` of `buf`; returns the end. */
function putDecimal(buf: Buffer, p: number, n: number): number {
  let digits = 1;
  while (digits < 16 && n >= POW10[digits]!) digits++;
  let q = p + digits;
  const end = q;
  if (n <= 0x7fffffff) {
    for (let v = n; q > p; ) {
      const d = (v / 10) | 0;
      buf[--q] = 0x30 + (v - 10 * d);
      v = d;
    }
  } else {
    for (let v = n; q > p; ) {
      const d = Math.floor(v / 10);
      buf[--q] = 0x30 + (v - 10 * d);
      v = d;
    }
  }
  return end;
}

function check(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`a trace field is an integer from 0 to 2^53-1, not ${n}`);
  return n;
}
