// Imports Linux kmem tracepoint output into a kmemu trace (FORMAT.md, "Importing Linux kmem
// traces"). Reads what the tracefs `trace` and `trace_pipe` files print (with or without the
// TGID column), `trace-cmd report` and `perf script`, plain, gzip or xz.
//
// Pointers become object ids: every allocation gets a fresh id, so a pointer reused after its
// free is a new object. Slab caches become zones in order of first appearance. Lines are
// processed in timestamp order through a small reordering window (trace_pipe can hand out
// one CPU's events a little after another's); each CPU's own order is kept as read.

import { UserError } from '../emu/index.js';
import { LineInput } from './trace-io.js';
import { TraceWriter } from './trace-io.js';
import { TraceStats, type TraceStatsSummary } from './trace-stats.js';
import { OP_ALLOC, OP_FREE, OP_MALLOC, OP_MFREE, OP_PALLOC, OP_PFREE, OP_ZONE, newEvent } from './format.js';
import { MAX_PAGE_ORDER } from './format.js';

export interface LinuxImportOptions {
  /** Count malformed kmem lines and go on instead of failing. */
  lenient?: boolean;
  /** The stream read for `-`; process.stdin by default. */
  stdin?: NodeJS.ReadableStream;
  /** The xz command for .xz input (tests point it at a missing one). */
  xzCommand?: string;
  /** Called now and then with the input bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** Lines held to restore timestamp order across CPUs (default 4096; 1 keeps file order). */
  window?: number;
}

export const LINUX_IMPORT_SCHEMA = 'kmemu.trace-import/1';

export interface LinuxImportSummary extends TraceStatsSummary {
  schema: typeof LINUX_IMPORT_SCHEMA;
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
}

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

/**
 * `COMM-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: [SYSTEM:]EVENT: FIELDS` (tracefs, trace-cmd report)
 * or `COMM PID [CPU] TIMESTAMP: [PERIOD] SYSTEM:EVENT: FIELDS` (perf script).
 */
const EVENT_LINE = /^\s*(.*?)\s*(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+(?:\S{1,8}\s+)?(\d+(?:\.\d+)?):\s+(?:\d+\s+)?(?:(\w+):)?(\w+):(?:\s+(.*))?$/;
/** A line naming one of the imported tracepoints, whatever its shape. */
const LOOKS_KMEM = /(?:^|[\s:])(kmem_cache_alloc|kmem_cache_alloc_node|kmalloc|kmalloc_node|kmem_cache_free|kfree|mm_page_alloc|mm_page_free|mm_page_free_batched):(?:\s|$)/;
const LOST = /\[LOST (\d+) EVENTS\]/;

const MAX_CPUS = 4096;
const MAX_ORDER = MAX_PAGE_ORDER;

/** One kmem event as read, waiting in the reordering window. */
interface Rec {
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
  if (text === '(null)') return '';
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
  lostEvents = 0;
  malformed = 0;
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
  ) {}

  private fail(what: string, got: string): void {
    if (!this.lenient) throw new UserError(`${this.name}:${this.line}: expected ${what}, got ${JSON.stringify(got.length > 120 ? `${got.slice(0, 117)}...` : got)}`);
    this.malformed++;
  }

  /** Reads one line of input (without its end). */
  read(text: string): void {
    this.line++;
    const t = text.trim();
    if (t === '' || t.startsWith('#')) return;
    const m = EVENT_LINE.exec(t);
    if (m === null) {
      const lost = LOST.exec(t);
      if (lost !== null) {
        this.lostEvents += Number(lost[1]);
        return;
      }
      if (LOOKS_KMEM.test(t)) return this.fail('a kmem tracepoint line (tracefs, trace-cmd report or perf script)', t);
      count(this.skipped, '(not an event)');
      return;
    }
    const tracepoint = m[5]!;
    const kind = TRACEPOINTS[tracepoint];
    if (kind === undefined || (m[4] !== undefined && m[4] !== 'kmem')) {
      count(this.skipped, m[4] === undefined ? tracepoint : `${m[4]}:${tracepoint}`);
      return;
    }
    const cpu = Number(m[2]);
    if (cpu >= MAX_CPUS) return this.fail(`a CPU number (0-${MAX_CPUS - 1})`, `[${m[2]}]`);
    const fields = parseFields(m[6] ?? '');
    const rec: Rec = { ts: Number(m[3]), seq: this.seq++, cpu, kind, tracepoint, key: '', zone: '', size: 0 };
    if (kind === KIND_PAGE_ALLOC || kind === KIND_PAGE_FREE) {
      const pfn = fields.get('pfn');
      const page = fields.get('page');
      if (pfn !== undefined) {
        const k = /^0x[0-9a-fA-F]+$|^\d+$/.test(pfn) ? BigInt(pfn).toString(16) : null;
        if (k === null) return this.fail('a pfn (hex with 0x, or decimal)', pfn);
        // A failed allocation prints page=NULL pfn=0.
        rec.key = page !== undefined && normalizePointer(page) === '' ? '' : `p${k}`;
      } else if (page !== undefined) {
        const k = normalizePointer(page);
        if (k === null) return this.fail('a hex page pointer', page);
        rec.key = k === '' ? '' : `g${k}`;
      } else {
        return this.fail(`pfn= or page= in ${tracepoint}`, m[6] ?? '');
      }
      if (kind === KIND_PAGE_ALLOC) {
        const order = fields.get('order');
        if (order === undefined) return this.fail(`order= in ${tracepoint}`, m[6] ?? '');
        if (!/^\d{1,2}$/.test(order) || Number(order) > MAX_ORDER) return this.fail(`a page order (0-${MAX_ORDER})`, order);
        rec.size = Number(order);
      }
    } else {
      const ptr = fields.get('ptr');
      if (ptr === undefined) return this.fail(`ptr= in ${tracepoint}`, m[6] ?? '');
      const k = normalizePointer(ptr);
      if (k === null) return this.fail('a hex pointer', ptr);
      rec.key = k;
      if (kind !== KIND_FREE) {
        const bytes = fields.get('bytes_alloc');
        if (bytes === undefined) return this.fail(`bytes_alloc= in ${tracepoint}`, m[6] ?? '');
        if (!/^\d{1,15}$/.test(bytes)) return this.fail('a decimal bytes_alloc', bytes);
        rec.size = Number(bytes);
      }
      if (kind === KIND_CACHE_ALLOC) {
        const name = fields.get('name');
        if (name !== undefined && name !== '') {
          rec.zone = name.replace(/\s/g, '_');
        } else {
          const site = fields.get('call_site') ?? fields.get('(call_site)');
          if (site === undefined) return this.fail(`name= or call_site= in ${tracepoint}`, m[6] ?? '');
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

  private process(r: Rec): void {
    switch (r.kind) {
      case KIND_CACHE_ALLOC: {
        if (r.key === '') return count(this.failed, r.tracepoint);
        const zone = this.zoneFor(r);
        this.emit(OP_ALLOC, r.cpu, zone, this.open(this.objects, r, zone));
        return;
      }
      case KIND_KMALLOC:
        if (r.key === '') return count(this.failed, r.tracepoint);
        this.emit(OP_MALLOC, r.cpu, r.size, this.open(this.objects, r, -1));
        return;
      case KIND_FREE: {
        if (r.key === '') return count(this.nullFrees, r.tracepoint);
        const o = this.objects.get(r.key);
        if (o === undefined) return count(this.unmatched, r.tracepoint);
        this.objects.delete(r.key);
        // The free matches the allocation: kfree() of a slab object frees it to its cache.
        if (o.zone >= 0) this.emit(OP_FREE, r.cpu, o.zone, o.id);
        else this.emit(OP_MFREE, r.cpu, o.id, 0);
        return;
      }
      case KIND_PAGE_ALLOC:
        if (r.key === '') return count(this.failed, r.tracepoint);
        this.emit(OP_PALLOC, r.cpu, r.size, this.open(this.pages, r, -1));
        return;
      case KIND_PAGE_FREE: {
        if (r.key === '') return count(this.nullFrees, r.tracepoint);
        const o = this.pages.get(r.key);
        if (o === undefined) return count(this.unmatched, r.tracepoint);
        this.pages.delete(r.key);
        this.emit(OP_PFREE, r.cpu, o.id, 0);
        return;
      }
    }
  }
}

function count(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * `key=value` fields; a word without `=` belongs to the value before it (`call_site=f+0x1/0x2
 * [module]`), and a `(func+0x1)` before the first field is trace-cmd's call-site function.
 */
function parseFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let last: string | undefined;
  for (const word of text.split(/\s+/)) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    if (eq > 0) {
      last = word.slice(0, eq);
      out.set(last, word.slice(eq + 1));
    } else if (last !== undefined) {
      out.set(last, `${out.get(last)!} ${word}`);
    } else if (word.startsWith('(') && word.endsWith(')')) {
      out.set('(call_site)', word.slice(1, -1));
    }
  }
  // trace-cmd prints call_site as an address and the function before the fields.
  const site = out.get('call_site');
  const fn = out.get('(call_site)');
  if (fn !== undefined && (site === undefined || /^(?:0x)?[0-9a-fA-F]+$/.test(site))) out.set('call_site', fn);
  return out;
}

function sorted(map: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...map].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
}

/**
 * Imports the Linux kmem trace `input` (`-` for stdin; plain, gzip or xz) into the kmemu
 * trace `output` (gzip when it ends in .gz), complete or not at all.
 */
export async function importLinuxKmem(input: string, output: string, options: LinuxImportOptions = {}): Promise<LinuxImportSummary> {
  const lines = await LineInput.open(input, {
    xz: true,
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    ...(options.xzCommand === undefined ? {} : { xzCommand: options.xzCommand }),
  });
  const source = input === '-' ? 'stdin' : input.split(/[\\/]/).pop()!;
  let writer: TraceWriter | undefined;
  try {
    const first = await lines.nextBlock();
    const cpus = first === null ? undefined : cpuCount(first);
    writer = TraceWriter.create(output, { meta: { source: `linux-kmem, ${source}` }, ...(cpus === undefined ? {} : { cpus }) });
    const imp = new Importer(lines.name, writer, Math.max(1, options.window ?? 4096), options.lenient ?? false);
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
    writer.close();
    const s = imp.stats.summary();
    return {
      schema: LINUX_IMPORT_SCHEMA,
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
