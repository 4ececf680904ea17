// Imports Linux kmem tracepoint output into a kmemu trace (FORMAT.md, "Importing Linux kmem
// traces"). Reads what the tracefs `trace` and `trace_pipe` files print (with or without the
// TGID column), `trace-cmd report` and `perf script`, plain, gzip, xz, zstd or bzip2.
//
// Pointers become object ids: every allocation gets a fresh id, so a pointer reused after its
// free is a new object. Slab caches become zones in order of first appearance. Lines are
// processed in timestamp order through a small reordering window (trace_pipe can hand out
// one CPU's events a little after another's); each CPU's own order is kept as read.

import { UserError, defaultPresetName, presetConfig } from '../emu/index.js';
import { LineInput } from './trace-io.js';
import { TraceWriter } from './trace-io.js';
import { TraceStats, type TraceStatsSummary } from './trace-stats.js';
import { type ImportRun, KMEMU_VERSION } from './run.js';
import { MAX_ITEM_SIZE, MAX_MALLOC_SIZE, MAX_PAGE_ORDER, OP_ALLOC, OP_FREE, OP_MALLOC, OP_MFREE, OP_PALLOC, OP_PFREE, OP_THINK, OP_ZONE, newEvent } from './format.js';

export interface LinuxImportOptions {
  /** Count malformed kmem lines and go on instead of failing. */
  lenient?: boolean;
  /** The stream read for `-`; process.stdin by default. */
  stdin?: NodeJS.ReadableStream;
  /** The decompression commands for xz, zstd and bzip2 input (tests point one at a missing command). */
  commands?: Partial<Record<'xz' | 'zstd' | 'bzip2', string>>;
  /** Write the gap before each of a CPU's events as think time (`t CYCLES`). */
  thinkFromTimestamps?: boolean;
  /** The clock that turns gaps into cycles, in GHz (default: the default preset's clock). */
  clockGHz?: number;
  /** Called now and then with the input bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** gzip the output whatever its name (TraceWriterOptions.gzip). */
  gzip?: boolean;
  /** Lines held to restore timestamp order across CPUs (default 4096; 1 keeps file order). */
  window?: number;
}

export const LINUX_IMPORT_SCHEMA = 'kmemu.trace-import/1';

export interface LinuxImportSummary extends TraceStatsSummary {
  schema: typeof LINUX_IMPORT_SCHEMA;
  run: ImportRun;
  input: string;
  output: string;
  /** kmem lines read, by tracepoint. */
  kmemLines: Record<string, number>;
  /** Frees of objects allocated before the capture began (not written), by tracepoint. */
  unmatchedFrees: Record<string, number>;
  /** Frees of NULL (not written), by tracepoint. */
  nullFrees: Record<string, number>;
  /** Allocations that returned NULL (not written), by tracepoint. */
  failedAllocations: Record<string, number>;
  /** Allocations of a pointer that was still live (its free was not captured), by tracepoint. */
  doubleAllocations: Record<string, number>;
  /** Lines that are not kmem allocation events, by tracepoint (or "(not an event)"). */
  skippedLines: Record<string, number>;
  /** Events the kernel reported lost (`[LOST N EVENTS]`). */
  lostEvents: number;
  /** Malformed kmem lines skipped by --lenient. */
  malformedLines: number;
  /** Malformed kmem lines skipped by --lenient, by what was expected. */
  malformedByReason: Record<string, number>;
  /** Allocations with bytes_alloc=0, written as ZERO_SIZE_AS-byte allocations, by tracepoint. */
  zeroSizeAllocations: Record<string, number>;
  /** Think time from timestamps: the clock used (null when off) and the gaps cut to the cap. */
  think: { clockGHz: number | null; cappedGaps: number };
}

/** bytes_alloc=0 (a zero-size cache) becomes this: the smallest Linux kmalloc class, kmalloc-8. */
export const ZERO_SIZE_AS = 8;
/** A gap longer than this (ns) is idle time, not work between allocations: --think-from-timestamps cuts it to this. */
export const MAX_THINK_NS = 10_000_000;

const KIND_CACHE_ALLOC = 1;
const KIND_KMALLOC = 2;
const KIND_FREE = 3;
const KIND_PAGE_ALLOC = 4;
const KIND_PAGE_FREE = 5;

/** The tracepoints imported, by name, and what they are. */
const TRACEPOINTS: Readonly<Record<string, number>> = {
  kmem_cache_alloc: KIND_CACHE_ALLOC,
  kmem_cache_alloc_node: KIND_CACHE_ALLOC,
  kmalloc: KIND_KMALLOC,
  kmalloc_node: KIND_KMALLOC,
  kmem_cache_free: KIND_FREE,
  kfree: KIND_FREE,
  mm_page_alloc: KIND_PAGE_ALLOC,
  mm_page_free: KIND_PAGE_FREE,
  mm_page_free_batched: KIND_PAGE_FREE,
};

const KMEM_NAMES = 'kmem_cache_alloc_node|kmem_cache_alloc|kmalloc_node|kmalloc|kmem_cache_free|kfree|mm_page_alloc|mm_page_free_batched|mm_page_free';

/**
 * `COMM-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: [SYSTEM:]EVENT: FIELDS` (tracefs, trace-cmd report)
 * or `[COMM] [PID/]TID [CPU] TIMESTAMP: [PERIOD] SYSTEM:EVENT: FIELDS [IP SYM (DSO)]` (perf
 * script). Only spaces and tabs separate. Unanchored so that matching stays linear in the line's
 * length; the command name and the TGID before the CPU are not used.
 */
const EVENT_LINE = /(?:^|[ \t])\[(\d+)\][ \t]+(?:\S{1,8}[ \t]+)?(\d+)(?:\.(\d+))?:[ \t]+(?:\d+[ \t]+)?(?:(\w+):)?(\w+):(?:[ \t]+(.*))?$/;
/** A line naming one of the imported tracepoints as an event (`kfree:`), whatever its shape. */
const LOOKS_KMEM = new RegExp(`(?:^|[^\\w])(?:kmem:)?(?:${KMEM_NAMES}):`);
/** A CPU field (`[001]`). */
const CPU_FIELD = /(?:^|[ \t])\[\d+\][ \t]/;
/** A line with the CPU but no timestamp before the event (perf script `-F` without time). */
const NO_TIME = new RegExp(`\\[\\d+\\][ \\t]+(?:\\S{1,8}[ \\t]+)?(?:kmem:)?(?:${KMEM_NAMES}):`);
const LOST = /\[LOST (\d+) EVENTS\]/;
/** A perf script callchain line (`perf record -g`): a tab, an address, a symbol. */
const CALLCHAIN = /^\t[ \t]*[0-9a-f]+ \S/;
/** Control and invisible format characters, which no tracepoint line holds. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/;

const MAX_CPUS = 4096;
/** Longer lines are no tracepoint's (a kmem line is under 1 KiB) and are not matched. */
const MAX_EVENT_LINE = 4096;
const MAX_ORDER = MAX_PAGE_ORDER;

/** One kmem event as read, waiting in the reordering window. */
interface Rec {
  /** Nanoseconds since the first kmem line's second. */
  ts: number;
  seq: number;
  cpu: number;
  kind: number;
  tracepoint: string;
  /** Normalized pointer or pfn ("" for NULL). */
  key: string;
  /** Zone name for cache allocations ('' when the line has no name=). */
  zone: string;
  /** bytes_alloc, or the page order. */
  size: number;
}

/** A binary min-heap of records by (ts, seq). */
class Window {
  private readonly a: Rec[] = [];

  get size(): number {
    return this.a.length;
  }

  private less(x: Rec, y: Rec): boolean {
    return x.ts < y.ts || (x.ts === y.ts && x.seq < y.seq);
  }

  push(r: Rec): void {
    const a = this.a;
    let i = a.length;
    a.push(r);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): Rec {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** A pointer as a map key: lower case, no 0x, no leading zeros; "" for NULL. */
function normalizePointer(text: string): string | null {
  // The kernel prints NULL as zeros (or "(null)" before 4.15); libtraceevent (trace-cmd, perf) as glibc's "(nil)".
  if (text === '(null)' || text === '(nil)') return '';
  const m = /^(?:0x)?([0-9a-fA-F]{1,16})$/.exec(text);
  if (m === null) return null;
  return m[1]!.toLowerCase().replace(/^0+/, '');
}

/** The function of a call site: `getname_flags.part.0+0x24/0x1f0 [mod]` is `getname_flags.part.0`. */
function callSiteFunction(site: string): string {
  const f = site.split(/[+\s]/)[0]!;
  return f.replace(/[^\w.@-]/g, '_');
}

interface Live {
  id: number;
  cpu: number;
  /** Zone id for a slab object, -1 for kmalloc. */
  zone: number;
}

class Importer {
  readonly stats = new TraceStats();
  readonly kmemLines = new Map<string, number>();
  readonly unmatched = new Map<string, number>();
  readonly nullFrees = new Map<string, number>();
  readonly failed = new Map<string, number>();
  readonly skipped = new Map<string, number>();
  readonly doubles = new Map<string, number>();
  readonly malformedBy = new Map<string, number>();
  readonly zeroSize = new Map<string, number>();
  lostEvents = 0;
  malformed = 0;
  cappedGaps = 0;
  private baseSec = -1;
  private readonly lastWritten = new Map<number, number>();
  private readonly objects = new Map<string, Live>();
  private readonly pages = new Map<string, Live>();
  private readonly zones = new Map<string, number>();
  private nextObj = 1;
  private nextZone = 1;
  private seq = 0;
  private readonly window = new Window();
  private readonly lastTs = new Map<number, number>();
  private readonly ev = newEvent();
  private line = 0;

  constructor(
    private readonly name: string,
    private readonly out: TraceWriter,
    private readonly windowSize: number,
    private readonly lenient: boolean,
    /** Cycles per nanosecond of gap (the clock in GHz), 0 for no think time. */
    private readonly clockGHz: number,
  ) {}

  private fail(what: string, got: string): void {
    if (!this.lenient) throw new UserError(`${this.name}:${this.line}: expected ${what}, got ${JSON.stringify(got.length > 120 ? `${got.slice(0, 117)}...` : got)}`);
    this.malformed++;
    count(this.malformedBy, what);
  }

  /** Reads one line of input (without its end). */
  read(text: string): void {
    this.line++;
    // A CR before the LF is a CRLF line end (a capture saved on Windows).
    const raw = text.charCodeAt(text.length - 1) === 13 ? text.slice(0, -1) : text;
    const t = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (t === '' || t.startsWith('#')) return;
    if (CALLCHAIN.test(raw)) return count(this.skipped, '(perf callchain)');
    const m = t.length > MAX_EVENT_LINE ? null : EVENT_LINE.exec(t);
    if (m === null) {
      const lost = LOST.exec(t);
      if (lost !== null) {
        this.lostEvents += Number(lost[1]);
        return;
      }
      if (LOOKS_KMEM.test(t)) {
        if (t.length > MAX_EVENT_LINE) return this.fail(`a kmem event line of at most ${MAX_EVENT_LINE} characters`, t);
        if (CONTROL.test(t)) return this.fail('a line without control or invisible characters', t);
        if (!CPU_FIELD.test(t)) return this.fail('the CPU of each event ("[001]"; perf script: include the cpu field, e.g. -F +cpu)', t);
        if (NO_TIME.test(t)) return this.fail('a timestamp after the CPU (perf script: include the time field, e.g. -F +time)', t);
        return this.fail('a kmem event line "COMM-PID [CPU] TIMESTAMP: EVENT: FIELDS" (tracefs, trace-cmd report or perf script)', t);
      }
      count(this.skipped, '(not an event)');
      return;
    }
    const system = m[4];
    const tracepoint = m[5]!;
    const kind = TRACEPOINTS[tracepoint];
    if (kind === undefined || (system !== undefined && system !== 'kmem')) {
      count(this.skipped, system === undefined ? tracepoint : `${system}:${tracepoint}`);
      return;
    }
    const body = m[6] ?? '';
    if (CONTROL.test(t)) return this.fail('a line without control or invisible characters', t);
    const cpu = Number(m[1]);
    if (cpu >= MAX_CPUS) return this.fail(`a CPU number (0-${MAX_CPUS - 1})`, `[${m[1]}]`);
    const fields = this.parseFields(body);
    if (fields === null) return;
    if (this.baseSec < 0) this.baseSec = Number(m[2]);
    const ts = (Number(m[2]) - this.baseSec) * 1e9 + Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
    const rec: Rec = { ts, seq: this.seq++, cpu, kind, tracepoint, key: '', zone: '', size: 0 };
    if (kind === KIND_PAGE_ALLOC || kind === KIND_PAGE_FREE) {
      const pfn = fields.get('pfn');
      const page = fields.get('page');
      if (pfn !== undefined) {
        const k = /^0x[0-9a-fA-F]{1,16}$|^\d{1,20}$/.test(pfn) ? BigInt(pfn).toString(16) : null;
        if (k === null) return this.fail('a pfn (hex with 0x, or decimal)', pfn);
        // A failed allocation prints page=NULL pfn=0.
        rec.key = page !== undefined && normalizePointer(page) === '' ? '' : `p${k}`;
      } else if (page !== undefined) {
        const k = normalizePointer(page);
        if (k === null) return this.fail('a hex page pointer', page);
        rec.key = k === '' ? '' : `g${k}`;
      } else {
        return this.fail(`pfn= or page= in ${tracepoint}`, body);
      }
      if (kind === KIND_PAGE_ALLOC) {
        const order = fields.get('order');
        if (order === undefined) return this.fail(`order= in ${tracepoint}`, body);
        if (!/^\d{1,2}$/.test(order) || Number(order) > MAX_ORDER) return this.fail(`a page order (0-${MAX_ORDER})`, order);
        rec.size = Number(order);
      }
    } else {
      const ptr = fields.get('ptr');
      if (ptr === undefined) return this.fail(`ptr= in ${tracepoint}`, body);
      const k = normalizePointer(ptr);
      if (k === null) return this.fail('a hex pointer, or (nil), (null), 0 for NULL', ptr);
      rec.key = k;
      if (kind !== KIND_FREE) {
        const bytes = fields.get('bytes_alloc');
        if (bytes === undefined) return this.fail(`bytes_alloc= in ${tracepoint}`, body);
        if (!/^\d{1,15}$/.test(bytes)) return this.fail('a decimal bytes_alloc', bytes);
        rec.size = Number(bytes);
        const max = kind === KIND_CACHE_ALLOC ? MAX_ITEM_SIZE : MAX_MALLOC_SIZE;
        if (rec.size > max) return this.fail(`a bytes_alloc of at most ${max} (the largest ${kind === KIND_CACHE_ALLOC ? 'zone item' : 'malloc'} a kmemu trace holds)`, bytes);
        if (rec.size === 0 && k !== '') {
          rec.size = ZERO_SIZE_AS;
          count(this.zeroSize, tracepoint);
        }
      }
      if (kind === KIND_CACHE_ALLOC) {
        const name = fields.get('name');
        if (name !== undefined && name !== '') {
          rec.zone = name.replace(/\s/g, '_');
        } else {
          const site = fields.get('call_site') ?? fields.get('(call_site)');
          if (site === undefined) return this.fail(`name= or call_site= in ${tracepoint}`, body);
          rec.zone = `cache@${callSiteFunction(site)}-${rec.size}`;
        }
      }
    }
    count(this.kmemLines, tracepoint);
    // Each CPU's events keep the order they were read in.
    const last = this.lastTs.get(cpu) ?? -Infinity;
    if (rec.ts < last) rec.ts = last;
    else this.lastTs.set(cpu, rec.ts);
    this.window.push(rec);
    if (this.window.size >= this.windowSize) this.process(this.window.pop());
  }

  /**
   * `key=value` fields, or null after fail(). A `[module]` word belongs to the value before it
   * (tracefs `call_site=f+0x1/0x2 [xfs]`); a `(func+0x1)` before the first field is trace-cmd's
   * call-site function; any other word after the fields ends them (perf script's ip, sym and dso
   * columns). A field given twice is an error.
   */
  private parseFields(text: string): Map<string, string> | null {
    const out = new Map<string, string>();
    let last: string | undefined;
    for (const word of text.split(/[ \t]+/)) {
      if (word === '') continue;
      const eq = word.indexOf('=');
      if (eq > 0) {
        last = word.slice(0, eq);
        if (out.has(last)) {
          this.fail(`each field once (${last}= is given twice)`, text);
          return null;
        }
        out.set(last, word.slice(eq + 1));
      } else if (last !== undefined && word.startsWith('[') && word.endsWith(']')) {
        out.set(last, `${out.get(last)!} ${word}`);
      } else if (last === undefined && word.startsWith('(') && word.endsWith(')') && !out.has('(call_site)')) {
        out.set('(call_site)', word.slice(1, -1));
      } else if (last !== undefined) {
        break;
      } else {
        this.fail('key=value fields after the event name', text);
        return null;
      }
    }
    // trace-cmd prints call_site as an address and the function before the fields.
    const site = out.get('call_site');
    const fn = out.get('(call_site)');
    if (fn !== undefined && (site === undefined || /^(?:0x)?[0-9a-fA-F]+$/.test(site))) out.set('call_site', fn);
    return out;
  }

  /** Processes what is left in the window. */
  end(): void {
    while (this.window.size > 0) this.process(this.window.pop());
  }

  private emit(op: number, cpu: number, a: number, b: number): void {
    const ev = this.ev;
    ev.op = op;
    ev.cpu = cpu;
    ev.zone = 0;
    ev.obj = 0;
    ev.size = 0;
    switch (op) {
      case OP_ALLOC:
      case OP_FREE:
        ev.zone = a;
        ev.obj = b;
        break;
      case OP_MALLOC:
      case OP_PALLOC:
        ev.size = a;
        ev.obj = b;
        break;
      case OP_THINK:
        ev.size = a;
        break;
      default:
        ev.obj = a;
    }
    this.out.write(ev);
    this.stats.add(ev);
  }

  private zoneFor(r: Rec): number {
    let id = this.zones.get(r.zone);
    if (id === undefined) {
      id = this.nextZone++;
      this.zones.set(r.zone, id);
      const ev = this.ev;
      ev.op = OP_ZONE;
      ev.cpu = r.cpu;
      ev.zone = id;
      ev.obj = 0;
      ev.size = r.size;
      ev.name = r.zone;
      this.out.write(ev);
      this.stats.add(ev);
      ev.name = '';
    }
    return id;
  }

  /** A new object for pointer `key`; a live one under the same key lost its free. */
  private open(map: Map<string, Live>, r: Rec, zone: number): number {
    if (map.has(r.key)) count(this.doubles, r.tracepoint);
    const id = this.nextObj++;
    map.set(r.key, { id, cpu: r.cpu, zone });
    return id;
  }

  /** Before an event of `r` is written: the time since its CPU's last written event as think time. */
  private think(r: Rec): void {
    if (this.clockGHz === 0) return;
    const last = this.lastWritten.get(r.cpu);
    this.lastWritten.set(r.cpu, r.ts);
    if (last === undefined || r.ts <= last) return;
    let gap = r.ts - last;
    if (gap > MAX_THINK_NS) {
      gap = MAX_THINK_NS;
      this.cappedGaps++;
    }
    const cycles = Math.round(gap * this.clockGHz);
    if (cycles > 0) this.emit(OP_THINK, r.cpu, cycles, 0);
  }

  private process(r: Rec): void {
    switch (r.kind) {
      case KIND_CACHE_ALLOC: {
        if (r.key === '') return count(this.failed, r.tracepoint);
        this.think(r);
        const zone = this.zoneFor(r);
        this.emit(OP_ALLOC, r.cpu, zone, this.open(this.objects, r, zone));
        return;
      }
      case KIND_KMALLOC:
        if (r.key === '') return count(this.failed, r.tracepoint);
        this.think(r);
        this.emit(OP_MALLOC, r.cpu, r.size, this.open(this.objects, r, -1));
        return;
      case KIND_FREE: {
        if (r.key === '') return count(this.nullFrees, r.tracepoint);
        const o = this.objects.get(r.key);
        if (o === undefined) return count(this.unmatched, r.tracepoint);
        this.objects.delete(r.key);
        this.think(r);
        // The free matches the allocation: kfree() of a slab object frees it to its cache.
        if (o.zone >= 0) this.emit(OP_FREE, r.cpu, o.zone, o.id);
        else this.emit(OP_MFREE, r.cpu, o.id, 0);
        return;
      }
      case KIND_PAGE_ALLOC:
        if (r.key === '') return count(this.failed, r.tracepoint);
        this.think(r);
        this.emit(OP_PALLOC, r.cpu, r.size, this.open(this.pages, r, -1));
        return;
      case KIND_PAGE_FREE: {
        if (r.key === '') return count(this.nullFrees, r.tracepoint);
        const o = this.pages.get(r.key);
        if (o === undefined) return count(this.unmatched, r.tracepoint);
        this.pages.delete(r.key);
        this.think(r);
        this.emit(OP_PFREE, r.cpu, o.id, 0);
        return;
      }
    }
  }
}

function count(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function sorted(map: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...map].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
}

/**
 * Imports the Linux kmem trace `input` (`-` for stdin; plain, gzip, xz, zstd or bzip2) into the
 * kmemu trace `output` (gzip when it ends in .gz), complete or not at all. An input without a
 * kmem event, or with none that can be written, is an error.
 */
export async function importLinuxKmem(input: string, output: string, options: LinuxImportOptions = {}): Promise<LinuxImportSummary> {
  const clockGHz = options.clockGHz ?? presetConfig(defaultPresetName).clockGHz;
  if (!(clockGHz > 0 && clockGHz <= 1000)) throw new UserError(`clock: expected a frequency in GHz above 0 and at most 1000, got ${String(clockGHz)}`);
  const lines = await LineInput.open(input, {
    decompress: true,
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    ...(options.commands === undefined ? {} : { commands: options.commands }),
  });
  const source = input === '-' ? 'stdin' : input.split(/[\\/]/).pop()!;
  let writer: TraceWriter | undefined;
  try {
    const first = await lines.nextBlock();
    const cpus = first === null ? undefined : cpuCount(first);
    const meta: Record<string, string> = { source: `linux-kmem, ${source}` };
    if (options.thinkFromTimestamps === true) meta.think = `gaps between a CPU's events at ${clockGHz} GHz, each at most ${MAX_THINK_NS / 1e6} ms`;
    writer = TraceWriter.create(output, { meta, ...(cpus === undefined ? {} : { cpus }) }, options.gzip === undefined ? {} : { gzip: options.gzip });
    const imp = new Importer(lines.name, writer, Math.max(1, options.window ?? 4096), options.lenient ?? false, options.thinkFromTimestamps === true ? clockGHz : 0);
    for (let block = first; block !== null; block = await lines.nextBlock()) {
      let pos = 0;
      while (pos < block.length) {
        const nl = block.indexOf('\n', pos);
        imp.read(block.slice(pos, nl));
        pos = nl + 1;
      }
      options.onProgress?.(lines.bytesRead);
    }
    imp.end();
    const kmem = [...imp.kmemLines.values()].reduce((a, b) => a + b, 0);
    if (kmem === 0) {
      throw new UserError(`${lines.name}: no kmem events found (expected trace-cmd report, perf script or tracefs output of kmem:* events)${imp.malformed > 0 ? `; ${imp.malformed} malformed kmem lines were skipped (--lenient)` : ''}`);
    }
    if (imp.stats.summary().events === 0) {
      throw new UserError(`${lines.name}: none of the ${kmem} kmem events can be written: all are frees of objects allocated before the capture, frees of NULL or failed allocations`);
    }
    writer.close();
    const s = imp.stats.summary();
    return {
      schema: LINUX_IMPORT_SCHEMA,
      run: {
        kmemu: KMEMU_VERSION,
        from: 'linux-kmem',
        input: { name: source, sha256: lines.sha256 ?? '' },
        lenient: options.lenient ?? false,
        window: Math.max(1, options.window ?? 4096),
      },
      input: source,
      output,
      ...s,
      kmemLines: sorted(imp.kmemLines),
      unmatchedFrees: sorted(imp.unmatched),
      nullFrees: sorted(imp.nullFrees),
      failedAllocations: sorted(imp.failed),
      doubleAllocations: sorted(imp.doubles),
      skippedLines: sorted(imp.skipped),
      lostEvents: imp.lostEvents,
      malformedLines: imp.malformed,
      malformedByReason: sorted(imp.malformedBy),
      zeroSizeAllocations: sorted(imp.zeroSize),
      think: { clockGHz: options.thinkFromTimestamps === true ? clockGHz : null, cappedGaps: imp.cappedGaps },
    };
  } catch (err) {
    writer?.abort();
    throw err;
  } finally {
    lines.close();
  }
}

/** The CPU count a capture's header states: tracefs `#P:2`, trace-cmd `cpus=2`. */
function cpuCount(head: string): number | undefined {
  const m = /^#.*#P:(\d+)\s*$/m.exec(head) ?? /^cpus=(\d+)\s*$/m.exec(head);
  const n = m === null ? 0 : Number(m[1]);
  return n >= 1 && n <= MAX_CPUS ? n : undefined;
}
