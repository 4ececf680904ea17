// Imports Linux kmem tracepoint output into a kmemu trace (FORMAT.md, "Importing Linux kmem
// traces"). Reads what the tracefs `trace` and `trace_pipe` files print (with or without the
// TGID column), `trace-cmd report` and `perf script`, plain, gzip, xz, zstd or bzip2.
//
// Pointers become object ids: every allocation gets a fresh id, so a pointer reused after its
// free is a new object. Slab caches become zones in order of first appearance. Lines are
// processed in timestamp order through a small reordering window (trace_pipe can hand out
// one CPU's events a little after another's); each CPU's own order is kept as read.
//
// The input is read as bytes, a block of whole lines at a time, in three stages:
// - the line scanner (LineParser.readBlock) hands out each line as a byte range of its block;
// - the field parser (LineParser) reads a line's CPU, timestamp, tracepoint and fields by
//   scanning its bytes, pointers as two 32-bit halves, names interned in small tables, and
//   hands the event on as numbers. A line it does not recognize as plainly well formed (any
//   error, non-ASCII or control bytes, the rare shapes that need the regular expression's
//   backtracking) goes to its exact path, which reads the decoded text with the regular
//   expressions and decides every error and its message;
// - the event mapping (EventMapper) orders the events in the window (typed arrays), maps
//   pointers to object ids in open-addressing tables and writes the trace.
// Nothing of an input block is kept after it is read, so memory grows with the objects live
// in the capture (and its distinct names), not with its length.

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

/** What a tracepoint is; KIND_NONE for a name only Object.prototype has (`constructor:`), which maps to nothing. */
const KIND_NONE = 0;
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


// ---------------------------------------------------------------------------------------------
// Tables

/** Names by index, interned: the tracepoints (the imported ones first, in TRACEPOINTS order) or the zones. */
class Names {
  readonly names: string[] = [];
  private readonly index = new Map<string, number>();

  /** The index of `name`, added when new. */
  of(name: string): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(name);
      this.index.set(name, i);
    }
    return i;
  }
}

/**
 * Byte strings by index (zone names, call-site functions): what the field parser
 * meets on every line, found without making a string. Open addressing on an Int32Array of
 * index + 1 by FNV-1a hash; the bytes are copied into a pool. At most `max` entries.
 */
class ByteNames {
  count = 0;
  private slots = new Int32Array(64);
  private start = new Int32Array(32);
  private length = new Int32Array(32);
  private pool = new Uint8Array(1024);
  private used = 0;

  constructor(private readonly max: number) {}

  /** The index of bytes [s, e) of `b` (their fnv1a() hash `h`), added when new; -1 when new and the table is full. */
  intern(b: Uint8Array, s: number, e: number, h = fnv1a(b, s, e)): number {
    const n = e - s;
    const mask = this.slots.length - 1;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const id = this.slots[slot]! - 1;
      if (id < 0) break;
      if (this.length[id] === n && this.equals(id, b, s, n)) return id;
    }
    if (this.count >= this.max) return -1;
    return this.add(b, s, n, h);
  }

  private equals(id: number, b: Uint8Array, s: number, n: number): boolean {
    const pool = this.pool;
    const at = this.start[id]!;
    for (let k = 0; k < n; k++) if (pool[at + k] !== b[s + k]) return false;
    return true;
  }

  private add(b: Uint8Array, s: number, n: number, h: number): number {
    const id = this.count++;
    if (id === this.start.length) {
      this.start = grow(this.start, 2 * id);
      this.length = grow(this.length, 2 * id);
    }
    if (this.used + n > this.pool.length) {
      const pool = new Uint8Array(Math.max(2 * this.pool.length, this.used + n));
      pool.set(this.pool.subarray(0, this.used));
      this.pool = pool;
    }
    this.pool.set(b.subarray(s, s + n), this.used);
    this.start[id] = this.used;
    this.length[id] = n;
    this.used += n;
    if (2 * this.count > this.slots.length) this.rehash();
    else this.place(id, h);
    return id;
  }

  private place(id: number, h: number): void {
    const mask = this.slots.length - 1;
    let slot = h & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = id + 1;
  }

  private rehash(): void {
    this.slots = new Int32Array(2 * this.slots.length);
    for (let id = 0; id < this.count; id++) {
      const at = this.start[id]!;
      this.place(id, fnv1a(this.pool, at, at + this.length[id]!));
    }
  }
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** The FNV-1a hash of bytes [s, e). */
function fnv1a(b: Uint8Array, s: number, e: number): number {
  let h = FNV_OFFSET;
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i]!, FNV_PRIME);
  return h;
}

function grow<T extends Int32Array | Float64Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

/** A pointer's key: which table holds it (or NULL), and its two 32-bit halves (hi, lo). */
const TAG_NULL = 0;
/** An object pointer (ptr=). */
const TAG_OBJ = 1;
/** A page by its struct page pointer (page= without pfn=). */
const TAG_PAGE = 2;
/** A page by pfn=: TAG_PFN + the bits above 64 (a decimal pfn has up to 20 digits, so at most 3 more bits). */
const TAG_PFN = 8;

/**
 * Live pointers and the object id each stands for: open addressing with linear probing on typed
 * arrays, keyed by (tag, hi, lo), deleted by backward shift (no tombstones). It grows with the
 * number of live pointers only.
 */
class PointerMap {
  size = 0;
  private mask = 1023;
  private tag = new Int32Array(1024).fill(-1);
  private hi = new Int32Array(1024);
  private lo = new Int32Array(1024);
  private hash = new Int32Array(1024);
  /** The object id of each slot. */
  id = new Float64Array(1024);
  /** The zone id of each slot's object, -1 for kmalloc and pages. */
  zone = new Int32Array(1024);

  /** The slot of the key, or -1. */
  find(tag: number, hi: number, lo: number): number {
    const mask = this.mask;
    for (let i = hashKey(tag, hi, lo) & mask; ; i = (i + 1) & mask) {
      const t = this.tag[i]!;
      if (t < 0) return -1;
      if (t === tag && this.lo[i] === lo && this.hi[i] === hi) return i;
    }
  }

  /** Adds a key that is not in the map. */
  add(tag: number, hi: number, lo: number, id: number, zone: number): void {
    if (2 * (this.size + 1) > this.mask + 1) this.resize(2 * (this.mask + 1));
    this.put(hashKey(tag, hi, lo), tag, hi, lo, id, zone);
    this.size++;
  }

  private put(h: number, tag: number, hi: number, lo: number, id: number, zone: number): void {
    const mask = this.mask;
    let i = h & mask;
    while (this.tag[i]! >= 0) i = (i + 1) & mask;
    this.tag[i] = tag;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.hash[i] = h;
    this.id[i] = id;
    this.zone[i] = zone;
  }

  /** Removes the key in slot `i`: each later entry of its probe run moves back into the gap if its home allows. */
  removeAt(i: number): void {
    const mask = this.mask;
    let gap = i;
    for (let j = (gap + 1) & mask; this.tag[j]! >= 0; j = (j + 1) & mask) {
      const home = this.hash[j]! & mask;
      // Entry j may move to the gap unless its home lies cyclically in (gap, j].
      if (gap <= j ? home > gap && home <= j : home > gap || home <= j) continue;
      this.tag[gap] = this.tag[j]!;
      this.hi[gap] = this.hi[j]!;
      this.lo[gap] = this.lo[j]!;
      this.hash[gap] = this.hash[j]!;
      this.id[gap] = this.id[j]!;
      this.zone[gap] = this.zone[j]!;
      gap = j;
    }
    this.tag[gap] = -1;
    this.size--;
  }

  private resize(capacity: number): void {
    const { tag, hi, lo, hash, id, zone } = this;
    this.mask = capacity - 1;
    this.tag = new Int32Array(capacity).fill(-1);
    this.hi = new Int32Array(capacity);
    this.lo = new Int32Array(capacity);
    this.hash = new Int32Array(capacity);
    this.id = new Float64Array(capacity);
    this.zone = new Int32Array(capacity);
    for (let i = 0; i < tag.length; i++) if (tag[i]! >= 0) this.put(hash[i]!, tag[i]!, hi[i]!, lo[i]!, id[i]!, zone[i]!);
  }
}

/** Mixes a key's three words into a 32-bit hash (murmur3's finalizer). */
function hashKey(tag: number, hi: number, lo: number): number {
  let h = Math.imul(lo, 0xcc9e2d51) ^ Math.imul(hi ^ (tag << 24), 0x1b873593);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

// ---------------------------------------------------------------------------------------------
// Reordering window

/**
 * The events read and not yet processed, in slots of typed arrays (one array per field), taken
 * out in (ts, seq) order. Each CPU's events arrive in that order already (LineParser keeps a
 * CPU's timestamps from going back), so the window is a FIFO queue of slots per CPU and a
 * binary min-heap of the CPUs by their first event: taking one out is a merge step. Slots are
 * reused; the arrays grow up to the window's size.
 */
class Window {
  size = 0;
  private nextSeq = 0;
  private used = 0;
  private freeSlots = new Int32Array(16);
  private nfree = 0;
  /** The next slot of the same CPU's queue, -1 at its tail. */
  private next = new Int32Array(16);
  /** Each CPU's first and last slot, -1 when its queue is empty. */
  private readonly head = new Int32Array(MAX_CPUS).fill(-1);
  private readonly tail = new Int32Array(MAX_CPUS).fill(-1);
  /** The CPUs with events, a min-heap by their first event. */
  private readonly cpus = new Int32Array(MAX_CPUS);
  private ncpus = 0;
  /** Nanoseconds since the first kmem line's second. */
  ts = new Float64Array(16);
  /** Order read (ties of ts). */
  private seq = new Float64Array(16);
  cpu = new Int32Array(16);
  kind = new Int32Array(16);
  /** The tracepoint's index (Tally.tracepoints). */
  tp = new Int32Array(16);
  /** The pointer or pfn: TAG_*, hi, lo. */
  tag = new Int32Array(16);
  hi = new Int32Array(16);
  lo = new Int32Array(16);
  /** The zone name's index for cache allocations, -1 otherwise. */
  zone = new Int32Array(16);
  /** bytes_alloc, or the page order. */
  bytes = new Float64Array(16);

  /** Adds an event; its ts is at least that of its CPU's events before it. */
  push(ts: number, cpu: number, kind: number, tp: number, tag: number, hi: number, lo: number, zone: number, bytes: number): void {
    let slot: number;
    if (this.nfree > 0) slot = this.freeSlots[--this.nfree]!;
    else {
      if (this.used === this.ts.length) this.grow();
      slot = this.used++;
    }
    this.ts[slot] = ts;
    this.seq[slot] = this.nextSeq++;
    this.cpu[slot] = cpu;
    this.kind[slot] = kind;
    this.tp[slot] = tp;
    this.tag[slot] = tag;
    this.hi[slot] = hi;
    this.lo[slot] = lo;
    this.zone[slot] = zone;
    this.bytes[slot] = bytes;
    this.next[slot] = -1;
    this.size++;
    if (this.head[cpu]! >= 0) {
      this.next[this.tail[cpu]!] = slot;
      this.tail[cpu] = slot;
      return;
    }
    this.head[cpu] = slot;
    this.tail[cpu] = slot;
    const heap = this.cpus;
    let i = this.ncpus++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(slot, this.head[heap[p]!]!)) break;
      heap[i] = heap[p]!;
      i = p;
    }
    heap[i] = cpu;
  }

  /** Takes the earliest event out; its slot's fields stay valid until the next push. */
  pop(): number {
    const heap = this.cpus;
    const cpu = heap[0]!;
    const slot = this.head[cpu]!;
    const rest = this.next[slot]!;
    this.head[cpu] = rest;
    this.size--;
    this.freeSlots[this.nfree++] = slot;
    // The CPU goes back in at the root with its next event, or the last CPU of the heap does.
    let moving = cpu;
    if (rest < 0) {
      this.tail[cpu] = -1;
      moving = heap[--this.ncpus]!;
    }
    const n = this.ncpus;
    if (n === 0) return slot;
    const first = this.head[moving]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && this.before(this.head[heap[r]!]!, this.head[heap[l]!]!) ? r : l;
      if (!this.before(this.head[heap[m]!]!, first)) break;
      heap[i] = heap[m]!;
      i = m;
    }
    heap[i] = moving;
    return slot;
  }

  /** Whether the event in slot x comes before the one in slot y. */
  private before(x: number, y: number): boolean {
    const tx = this.ts[x]!;
    const ty = this.ts[y]!;
    return tx < ty || (tx === ty && this.seq[x]! < this.seq[y]!);
  }

  private grow(): void {
    const n = 2 * this.ts.length;
    this.freeSlots = grow(this.freeSlots, n);
    this.next = grow(this.next, n);
    this.ts = grow(this.ts, n);
    this.seq = grow(this.seq, n);
    this.cpu = grow(this.cpu, n);
    this.kind = grow(this.kind, n);
    this.tp = grow(this.tp, n);
    this.tag = grow(this.tag, n);
    this.hi = grow(this.hi, n);
    this.lo = grow(this.lo, n);
    this.zone = grow(this.zone, n);
    this.bytes = grow(this.bytes, n);
  }
}

// ---------------------------------------------------------------------------------------------
// Counts for the summary

/** What the summary counts: by tracepoint index (arrays) or by name. */
class Tally {
  readonly tracepoints = new Names();
  /** The kind of each tracepoint index (KIND_NONE for a name only Object.prototype has). */
  readonly kinds: number[] = [];
  readonly kmemLines: number[] = [];
  readonly unmatched: number[] = [];
  readonly nullFrees: number[] = [];
  readonly failed: number[] = [];
  readonly doubles: number[] = [];
  readonly zeroSize: number[] = [];
  readonly skipped = new Map<string, number>();
  readonly malformedBy = new Map<string, number>();
  lostEvents = 0;
  malformed = 0;
  cappedGaps = 0;

  constructor() {
    for (const name of Object.keys(TRACEPOINTS)) this.tracepoint(name);
  }

  /** The index of tracepoint `name`. */
  tracepoint(name: string): number {
    const i = this.tracepoints.of(name);
    const kind = TRACEPOINTS[name];
    this.kinds[i] = typeof kind === 'number' ? kind : KIND_NONE;
    return i;
  }

  /** Counts by tracepoint as the summary has them: the counted ones, most first. */
  byTracepoint(counts: readonly number[]): Record<string, number> {
    const map = new Map<string, number>();
    counts.forEach((n, i) => {
      if (n > 0) map.set(this.tracepoints.names[i]!, n);
    });
    return sorted(map);
  }
}

function bump(counts: number[], i: number): void {
  counts[i] = (counts[i] ?? 0) + 1;
}

// ---------------------------------------------------------------------------------------------
// Field parser

const LF = 0x0a;
const CR = 0x0d;
const TAB = 0x09;
const SPACE = 0x20;
const HASH = 0x23;
const LPAREN = 0x28;
const RPAREN = 0x29;
const PLUS = 0x2b;
const DOT = 0x2e;
const COLON = 0x3a;
const EQUALS = 0x3d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

/** Byte classes. */
const C_DIGIT = 1;
const C_HEX = 2;
const C_WORD = 4;
const C_BLANK = 8;
/** Control bytes but the tab, DEL and every non-ASCII byte: the line goes to the exact path. */
const C_UNUSUAL = 16;
/** [0-9a-f], the address of a perf callchain line. */
const C_LOWER_HEX = 32;
/** [\w.@-], what a call site's function keeps in a zone name. */
const C_SITE = 64;
const BYTE_CLASS = (() => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) {
    const ch = String.fromCharCode(c);
    if (/[0-9]/.test(ch)) t[c]! |= C_DIGIT;
    if (/[0-9a-fA-F]/.test(ch)) t[c]! |= C_HEX;
    if (/[0-9a-f]/.test(ch)) t[c]! |= C_LOWER_HEX;
    if (/\w/.test(ch)) t[c]! |= C_WORD;
    if (/[\w.@-]/.test(ch)) t[c]! |= C_SITE;
    if (c === SPACE || c === TAB) t[c]! |= C_BLANK;
    if ((c < 0x20 && c !== TAB) || c >= 0x7f) t[c]! |= C_UNUSUAL;
  }
  return t;
})();

/** What ends a word of the fields (a blank, or a byte for the exact path): 1. */
const WORD_END = BYTE_CLASS.map((cls) => ((cls & (C_BLANK | C_UNUSUAL)) !== 0 ? 1 : 0));
/** What ends a field's key: the end of the word or `=`. */
const FIELD_STOP = WORD_END.map((end, c) => (c === EQUALS ? 1 : end));

/** The imported tracepoints' names as bytes, by their index in Tally.tracepoints. */
const TRACEPOINT_BYTES = Object.keys(TRACEPOINTS).map((name) => Buffer.from(name, 'latin1'));
const KMEM = Buffer.from('kmem', 'latin1');
/** NULL as the kernel printed it before 4.15, and as glibc prints it (trace-cmd, perf). */
const NULL_KERNEL = Buffer.from('(null)', 'latin1');
const NULL_GLIBC = Buffer.from('(nil)', 'latin1');

/** The fields the parser reads, by their index in LineParser's key table. */
const F_PTR = 0;
const F_BYTES_ALLOC = 1;
const F_NAME = 2;
const F_CALL_SITE = 3;
const F_PFN = 4;
const F_PAGE = 5;
const F_ORDER = 6;
const FIELD_KEYS = ['ptr', 'bytes_alloc', 'name', 'call_site', 'pfn', 'page', 'order'];
const FIELD_KEY_BYTES = FIELD_KEYS.map((key) => Buffer.from(key, 'latin1'));
const FIELD_KEY_HASH = FIELD_KEY_BYTES.map((key) => fnv1a(key, 0, key.length));
/** FIELD_KEYS by the low bits of their hash (the fewest bits that tell them apart), -1 for none. */
const FIELD_BY_HASH = (() => {
  for (let size = 8; ; size *= 2) {
    const t = new Int8Array(size).fill(-1);
    if (FIELD_KEY_HASH.every((h, f) => t[h & (size - 1)] === -1 && (t[h & (size - 1)] = f) >= 0)) return t;
  }
})();
/** The most fields on a line the fast path reads (a kmem line has at most 8); lines with more go to the exact path. */
const MAX_LINE_FIELDS = 32;
/** Distinct zone names and call-site functions kept as bytes; beyond, lines take the exact path. */
const MAX_BYTE_NAMES = 1 << 16;

/** Results of LineParser.pointer(). */
const PTR_BAD = 0;
const PTR_NULL = 1;
const PTR_SET = 2;

/** 10^k for k = 0..9 (the nanoseconds of a timestamp's fraction). */
const POW10 = Array.from({ length: 10 }, (_, k) => 10 ** k);
/** 2^32, for a decimal pfn's high half. */
const TWO32 = 4294967296;
/** A call-site zone's key: its function's index × 2^28 + bytes_alloc (at most MAX_ITEM_SIZE < 2^28). */
const SITE_SIZE_SPAN = 2 ** 28;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB;
}

/** Whether bytes [s, e) and [t, u) of `b` are the same. */
function equalRange(b: Uint8Array, s: number, e: number, t: number, u: number): boolean {
  if (e - s !== u - t) return false;
  for (let k = 0; k < e - s; k++) if (b[s + k] !== b[t + k]) return false;
  return true;
}

function equalBytes(b: Uint8Array, s: number, e: number, name: Uint8Array): boolean {
  if (e - s !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (b[s + k] !== name[k]) return false;
  return true;
}

/**
 * Reads lines and hands each kmem event to the event mapping as numbers. The fast path reads a
 * line's bytes; anything it does not recognize as plainly well formed goes to exact(), the
 * regular expressions on the decoded text, which decide every error and every odd case.
 */
class LineParser {
  /** Lines read so far: the line number of messages. */
  line = 0;
  private baseSec = -1;
  /** The last timestamp of each CPU's events, to keep each CPU's order as read. */
  private readonly lastTs = new Float64Array(MAX_CPUS).fill(-Infinity);
  /** The keys of the line's fields so far: their hash, start and end (a key given twice is an error). */
  private readonly keyHash = new Int32Array(MAX_LINE_FIELDS);
  private readonly keyStart = new Int32Array(MAX_LINE_FIELDS);
  private readonly keyEnd = new Int32Array(MAX_LINE_FIELDS);
  /** The line each of FIELD_KEYS was last seen on. */
  private readonly keySeen = new Float64Array(FIELD_KEYS.length);
  /** Where the value of each of FIELD_KEYS starts and ends in the line, -1 when absent. */
  private readonly valueStart = new Int32Array(FIELD_KEYS.length);
  private readonly valueEnd = new Int32Array(FIELD_KEYS.length);
  /** call_site= is followed by a `[module]` word. */
  private siteModule = false;
  /** trace-cmd's `(function+0x1)` before the fields: where its inside starts and ends, -1 when absent. */
  private parenStart = -1;
  private parenEnd = -1;
  private readonly zoneBytes = new ByteNames(MAX_BYTE_NAMES);
  /** The zone name's index (Names) of each of zoneBytes. */
  private readonly zoneOfBytes: number[] = [];
  private readonly siteBytes = new ByteNames(MAX_BYTE_NAMES);
  /** The zone name's index by call-site function and size (SITE_SIZE_SPAN). */
  private readonly zoneOfSite = new Map<number, number>();
  /** What pointer() and pfn() read: the halves and the bits above 64. */
  private hi = 0;
  private lo = 0;
  private top = 0;

  constructor(
    private readonly name: string,
    private readonly lenient: boolean,
    private readonly tally: Tally,
    private readonly zones: Names,
    private readonly sink: EventMapper,
  ) {
  }

  /** The line scanner: hands each line of `block` (whole lines, each ending in LF) to read(). */
  readBlock(block: Buffer): void {
    for (let pos = 0; pos < block.length; ) {
      const nl = block.indexOf(LF, pos);
      this.read(block, pos, nl);
      pos = nl + 1;
    }
  }

  /** Reads one line, bytes [s, e) of `b` without its LF. */
  private read(b: Buffer, s: number, e: number): void {
    this.line++;
    if (!this.fast(b, s, e)) this.exact(b.toString('utf8', s, e));
  }

  /**
   * The fast path: true when the line was read. It follows EVENT_LINE's first choice at each
   * alternative and gives up (false) wherever the regular expression would backtrack or fail,
   * so that what it reads is what EVENT_LINE matches; the field checks are exact()'s.
   */
  private fast(b: Buffer, s: number, e: number): boolean {
    let end = e;
    // A CR before the LF is a CRLF line end (a capture saved on Windows).
    if (end > s && b[end - 1] === CR) end--;
    let p = s;
    while (p < end && isBlank(b[p]!)) p++;
    if (p === end || b[p] === HASH) return true;
    let q = end;
    while (isBlank(b[q - 1]!)) q--;
    if (b[s] === TAB) {
      const c = callchain(b, s, end);
      if (c === CALLCHAIN_YES) {
        count(this.tally.skipped, '(perf callchain)');
        return true;
      }
      if (c === CALLCHAIN_UNSURE) return false;
    }
    if (q - p > MAX_EVENT_LINE) return false;
    // Each loop below either checks its bytes for C_UNUSUAL or stops at all but a few ASCII ones.
    // `[CPU]`, at the start or after a blank; then blanks (q - 1 is not one).
    let i = p;
    for (;; i++) {
      if (i === q) return false;
      const c = b[i]!;
      if (c === LBRACKET) {
        if (i === p || isBlank(b[i - 1]!)) break;
      } else if ((BYTE_CLASS[c]! & C_UNUSUAL) !== 0) {
        return false;
      }
    }
    const cpuStart = ++i;
    let cpu = 0;
    for (; i < q && (BYTE_CLASS[b[i]!]! & C_DIGIT) !== 0; i++) {
      cpu = 10 * cpu + b[i]! - 0x30;
      if (cpu >= MAX_CPUS) return false;
    }
    if (i === cpuStart || i + 1 >= q || b[i] !== RBRACKET || !isBlank(b[i + 1]!)) return false;
    i++;
    while (isBlank(b[i]!)) i++;
    // The flags (`.....`), a word of at most 8 before a blank; absent in trace-cmd and perf.
    let j = i;
    for (; j < q; j++) {
      const cls = BYTE_CLASS[b[j]!]!;
      if ((cls & C_BLANK) !== 0) break;
      if ((cls & C_UNUSUAL) !== 0) return false;
    }
    if (j - i <= 8 && j < q) {
      i = j;
      while (isBlank(b[i]!)) i++;
    }
    // `SECONDS[.FRACTION]:` and blanks.
    let sec = 0;
    for (j = i; j < q && (BYTE_CLASS[b[j]!]! & C_DIGIT) !== 0; j++) sec = 10 * sec + b[j]! - 0x30;
    if (j === i || j - i > 15) return false;
    let frac = 0;
    if (j < q && b[j] === DOT) {
      let digits = 0;
      const f = ++j;
      for (; j < q && (BYTE_CLASS[b[j]!]! & C_DIGIT) !== 0; j++) {
        if (digits < 9) {
          frac = 10 * frac + b[j]! - 0x30;
          digits++;
        }
      }
      if (j === f) return false;
      frac *= POW10[9 - digits]!;
    }
    if (j + 1 >= q || b[j] !== COLON || !isBlank(b[j + 1]!)) return false;
    j++;
    while (isBlank(b[j]!)) j++;
    // perf's period.
    let k = j;
    while (k < q && (BYTE_CLASS[b[k]!]! & C_DIGIT) !== 0) k++;
    if (k > j && k < q && isBlank(b[k]!)) {
      j = k;
      while (isBlank(b[j]!)) j++;
    }
    // `[SYSTEM:]EVENT:`, then the end or blanks and the fields.
    const w = j;
    while (j < q && (BYTE_CLASS[b[j]!]! & C_WORD) !== 0) j++;
    if (j === w || j >= q || b[j] !== COLON) return false;
    const we = j;
    for (k = j + 1; k < q && (BYTE_CLASS[b[k]!]! & C_WORD) !== 0; k++);
    let sysStart = -1;
    let evStart = w;
    let evEnd = we;
    if (k > j + 1 && k < q && b[k] === COLON) {
      sysStart = w;
      evStart = j + 1;
      evEnd = k;
      j = k + 1;
    } else {
      j++;
    }
    if (j < q) {
      if (!isBlank(b[j]!)) return false;
      while (isBlank(b[j]!)) j++;
    }
    const tp = kmemTracepoint(b, evStart, evEnd);
    if (tp < 0 || (sysStart >= 0 && !equalBytes(b, sysStart, we, KMEM))) {
      for (k = j; k < q; k++) if ((BYTE_CLASS[b[k]!]! & C_UNUSUAL) !== 0) return false;
      return this.skipFast(b, sysStart, we, evStart, evEnd);
    }
    if (!this.fields(b, j, q)) return false;
    return this.event(b, tp, cpu, sec, frac);
  }

  /** A line of another event than an imported one: counted by name. */
  private skipFast(b: Buffer, sysStart: number, sysEnd: number, evStart: number, evEnd: number): boolean {
    const event = b.toString('latin1', evStart, evEnd);
    if (sysStart >= 0 && !equalBytes(b, sysStart, sysEnd, KMEM)) {
      count(this.tally.skipped, `${b.toString('latin1', sysStart, sysEnd)}:${event}`);
      return true;
    }
    // `constructor:` and the like are found in TRACEPOINTS through its prototype.
    if (event in TRACEPOINTS) return false;
    count(this.tally.skipped, sysStart < 0 ? event : `kmem:${event}`);
    return true;
  }

  /**
   * The `key=value` words of bytes [s, e) (parseFields' rules): where the values of
   * FIELD_KEYS are. False for what exact() must read: an error, a `[module]` after another field
   * than call_site= or an unknown one, a `(...)=` key.
   */
  private fields(b: Buffer, s: number, e: number): boolean {
    const keyHash = this.keyHash;
    const keyStart = this.keyStart;
    const keyEnd = this.keyEnd;
    this.siteModule = false;
    this.parenStart = -1;
    let nkeys = 0;
    /** The last field's index in FIELD_KEYS; -1 for another key, -2 before the first field. */
    let last = -2;
    let i = s;
    while (i < e) {
      const ws = i;
      // The key, up to `=` or the end of the word; then the value, up to the end of the word.
      // The byte at e (a blank, CR or LF) ends both loops.
      let h = FNV_OFFSET;
      let c = b[i]!;
      while (FIELD_STOP[c] === 0) {
        h = Math.imul(h ^ c, FNV_PRIME);
        c = b[++i]!;
      }
      const eq = c === EQUALS ? i : -1;
      if (eq >= 0) {
        do c = b[++i]!;
        while (WORD_END[c] === 0);
      }
      if (i < e && (BYTE_CLASS[c]! & C_UNUSUAL) !== 0) return false;
      const we = i;
      while (i < e && isBlank(b[i]!)) i++;
      if (eq > ws) {
        if (b[ws] === LPAREN) return false;
        for (let k = 0; k < nkeys; k++) if (keyHash[k] === h && equalRange(b, keyStart[k]!, keyEnd[k]!, ws, eq)) return false;
        if (nkeys === MAX_LINE_FIELDS) return false;
        keyHash[nkeys] = h;
        keyStart[nkeys] = ws;
        keyEnd[nkeys] = eq;
        nkeys++;
        const f = FIELD_BY_HASH[h & (FIELD_BY_HASH.length - 1)]!;
        if (f >= 0 && FIELD_KEY_HASH[f] === h && equalBytes(b, ws, eq, FIELD_KEY_BYTES[f]!)) {
          last = f;
          this.keySeen[f] = this.line;
          this.valueStart[f] = eq + 1;
          this.valueEnd[f] = we;
        } else {
          last = -1;
        }
      } else if (last !== -2 && we - ws >= 2 && b[ws] === LBRACKET && b[we - 1] === RBRACKET) {
        if (last >= 0) {
          if (last !== F_CALL_SITE) return false;
          this.siteModule = true;
        }
      } else if (last === -2 && we - ws >= 2 && b[ws] === LPAREN && b[we - 1] === RPAREN && this.parenStart < 0) {
        this.parenStart = ws + 1;
        this.parenEnd = we - 1;
      } else if (last !== -2) {
        break;
      } else {
        return false;
      }
    }
    // What follows the fields (perf script's ip, sym and dso) is not read but must be plain too.
    for (; i < e; i++) if ((BYTE_CLASS[b[i]!]! & C_UNUSUAL) !== 0) return false;
    return true;
  }

  /** Whether field `f` (one of FIELD_KEYS) is on the line fields() read last. */
  private has(f: number): boolean {
    return this.keySeen[f] === this.line;
  }

  /** The checks of exact() on the fields of a kmem line; false when one fails. */
  private event(b: Buffer, tp: number, cpu: number, sec: number, frac: number): boolean {
    const kind = this.tally.kinds[tp]!;
    const vs = this.valueStart;
    const ve = this.valueEnd;
    let tag = TAG_NULL;
    let hi = 0;
    let lo = 0;
    let size = 0;
    let zone = -1;
    let zeroSized = false;
    if (kind === KIND_PAGE_ALLOC || kind === KIND_PAGE_FREE) {
      if (this.has(F_PFN)) {
        if (!this.pfn(b, vs[F_PFN]!, ve[F_PFN]!)) return false;
        tag = TAG_PFN + this.top;
        hi = this.hi;
        lo = this.lo;
        // A failed allocation prints page=NULL pfn=0.
        if (this.has(F_PAGE) && this.pointer(b, vs[F_PAGE]!, ve[F_PAGE]!) === PTR_NULL) tag = TAG_NULL;
      } else if (this.has(F_PAGE)) {
        const r = this.pointer(b, vs[F_PAGE]!, ve[F_PAGE]!);
        if (r === PTR_BAD) return false;
        if (r === PTR_SET) {
          tag = TAG_PAGE;
          hi = this.hi;
          lo = this.lo;
        }
      } else {
        return false;
      }
      if (kind === KIND_PAGE_ALLOC) {
        const os = vs[F_ORDER]!;
        const n = ve[F_ORDER]! - os;
        if (!this.has(F_ORDER) || n < 1 || n > 2) return false;
        for (let i = os; i < os + n; i++) {
          const c = b[i]!;
          if ((BYTE_CLASS[c]! & C_DIGIT) === 0) return false;
          size = 10 * size + c - 0x30;
        }
        if (size > MAX_ORDER) return false;
      }
    } else {
      if (!this.has(F_PTR)) return false;
      const r = this.pointer(b, vs[F_PTR]!, ve[F_PTR]!);
      if (r === PTR_BAD) return false;
      if (r === PTR_SET) {
        tag = TAG_OBJ;
        hi = this.hi;
        lo = this.lo;
      }
      if (kind !== KIND_FREE) {
        const bs = vs[F_BYTES_ALLOC]!;
        const n = ve[F_BYTES_ALLOC]! - bs;
        if (!this.has(F_BYTES_ALLOC) || n < 1 || n > 15) return false;
        for (let i = bs; i < bs + n; i++) {
          const c = b[i]!;
          if ((BYTE_CLASS[c]! & C_DIGIT) === 0) return false;
          size = 10 * size + c - 0x30;
        }
        if (size > (kind === KIND_CACHE_ALLOC ? MAX_ITEM_SIZE : MAX_MALLOC_SIZE)) return false;
        if (size === 0 && tag !== TAG_NULL) {
          size = ZERO_SIZE_AS;
          zeroSized = true;
        }
      }
      if (kind === KIND_CACHE_ALLOC) {
        zone = this.cacheZone(b, size);
        if (zone < 0) return false;
      }
    }
    if (this.baseSec < 0) this.baseSec = sec;
    if (zeroSized) bump(this.tally.zeroSize, tp);
    this.commit((sec - this.baseSec) * 1e9 + frac, cpu, kind, tp, tag, hi, lo, zone, size);
    return true;
  }

  /** The zone name's index of a cache allocation: its name=, or else its call site's function and size; -1 when neither. */
  private cacheZone(b: Buffer, size: number): number {
    const vs = this.valueStart;
    const ve = this.valueEnd;
    const ns = vs[F_NAME]!;
    if (this.has(F_NAME) && ve[F_NAME]! > ns) {
      const id = this.zoneBytes.intern(b, ns, ve[F_NAME]!);
      if (id < 0) return -1;
      return (this.zoneOfBytes[id] ??= this.zones.of(b.toString('latin1', ns, ve[F_NAME]!)));
    }
    // trace-cmd prints call_site as an address and the function before the fields.
    let ss = this.has(F_CALL_SITE) ? vs[F_CALL_SITE]! : -1;
    let se = ve[F_CALL_SITE]!;
    if (this.parenStart >= 0 && (ss < 0 || (!this.siteModule && isHexWord(b, ss, se)))) {
      ss = this.parenStart;
      se = this.parenEnd;
    }
    if (ss < 0) return -1;
    let fe = ss;
    while (fe < se && b[fe] !== PLUS) fe++;
    const id = this.siteBytes.intern(b, ss, fe);
    if (id < 0) return -1;
    const key = id * SITE_SIZE_SPAN + size;
    let zone = this.zoneOfSite.get(key);
    if (zone === undefined) {
      let fn = '';
      for (let i = ss; i < fe; i++) fn += (BYTE_CLASS[b[i]!]! & C_SITE) !== 0 ? String.fromCharCode(b[i]!) : '_';
      zone = this.zones.of(`cache@${fn}-${size}`);
      this.zoneOfSite.set(key, zone);
    }
    return zone;
  }

  /** normalizePointer() on bytes [s, e): PTR_BAD, PTR_NULL, or PTR_SET with the halves in hi and lo. */
  private pointer(b: Buffer, s: number, e: number): number {
    const n = e - s;
    if (b[s] === LPAREN && (equalBytes(b, s, e, NULL_KERNEL) || equalBytes(b, s, e, NULL_GLIBC))) return PTR_NULL;
    const d = n > 2 && b[s] === 0x30 && b[s + 1] === 0x78 ? s + 2 : s;
    if (e - d < 1 || e - d > 16) return PTR_BAD;
    if (!this.hex(b, d, e)) return PTR_BAD;
    return this.hi === 0 && this.lo === 0 ? PTR_NULL : PTR_SET;
  }

  /** A pfn= (0x and 1 to 16 hex digits, or decimal): its value in top, hi and lo; false to leave it to exact(). */
  private pfn(b: Buffer, s: number, e: number): boolean {
    this.top = 0;
    if (e - s > 2 && b[s] === 0x30 && b[s + 1] === 0x78) return e - s - 2 <= 16 && this.hex(b, s + 2, e);
    // Up to 15 digits are exact in a double; longer ones go to exact()'s BigInt.
    if (e - s < 1 || e - s > 15) return false;
    let v = 0;
    for (let i = s; i < e; i++) {
      const c = b[i]!;
      if ((BYTE_CLASS[c]! & C_DIGIT) === 0) return false;
      v = 10 * v + c - 0x30;
    }
    this.hi = Math.floor(v / TWO32) | 0;
    this.lo = v % TWO32 | 0;
    return true;
  }

  /** Hex digits [s, e) (at most 16) into hi and lo; false for a byte that is not one. */
  private hex(b: Buffer, s: number, e: number): boolean {
    let hi = 0;
    let lo = 0;
    for (let i = s; i < e; i++) {
      const c = b[i]!;
      if ((BYTE_CLASS[c]! & C_HEX) === 0) return false;
      hi = (hi << 4) | (lo >>> 28);
      lo = (lo << 4) | (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);
    }
    this.hi = hi;
    this.lo = lo;
    return true;
  }

  private fail(what: string, got: string): void {
    if (!this.lenient) throw new UserError(`${this.name}:${this.line}: expected ${what}, got ${JSON.stringify(got.length > 120 ? `${got.slice(0, 117)}...` : got)}`);
    this.tally.malformed++;
    count(this.tally.malformedBy, what);
  }

  /** The exact path: one line of text (without its end) read with the regular expressions. */
  private exact(text: string): void {
    // A CR before the LF is a CRLF line end (a capture saved on Windows).
    const raw = text.charCodeAt(text.length - 1) === 13 ? text.slice(0, -1) : text;
    const t = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (t === '' || t.startsWith('#')) return;
    if (CALLCHAIN.test(raw)) return count(this.tally.skipped, '(perf callchain)');
    const m = t.length > MAX_EVENT_LINE ? null : EVENT_LINE.exec(t);
    if (m === null) {
      const lost = LOST.exec(t);
      if (lost !== null) {
        this.tally.lostEvents += Number(lost[1]);
        return;
      }
      if (LOOKS_KMEM.test(t)) {
        if (t.length > MAX_EVENT_LINE) return this.fail(`a kmem event line of at most ${MAX_EVENT_LINE} characters`, t);
        if (CONTROL.test(t)) return this.fail('a line without control or invisible characters', t);
        if (!CPU_FIELD.test(t)) return this.fail('the CPU of each event ("[001]"; perf script: include the cpu field, e.g. -F +cpu)', t);
        if (NO_TIME.test(t)) return this.fail('a timestamp after the CPU (perf script: include the time field, e.g. -F +time)', t);
        return this.fail('a kmem event line "COMM-PID [CPU] TIMESTAMP: EVENT: FIELDS" (tracefs, trace-cmd report or perf script)', t);
      }
      count(this.tally.skipped, '(not an event)');
      return;
    }
    const system = m[4];
    const tracepoint = m[5]!;
    if (TRACEPOINTS[tracepoint] === undefined || (system !== undefined && system !== 'kmem')) {
      count(this.tally.skipped, system === undefined ? tracepoint : `${system}:${tracepoint}`);
      return;
    }
    const tp = this.tally.tracepoint(tracepoint);
    const kind = this.tally.kinds[tp]!;
    const body = m[6] ?? '';
    if (CONTROL.test(t)) return this.fail('a line without control or invisible characters', t);
    const cpu = Number(m[1]);
    if (cpu >= MAX_CPUS) return this.fail(`a CPU number (0-${MAX_CPUS - 1})`, `[${m[1]}]`);
    const fields = this.parseFields(body);
    if (fields === null) return;
    if (this.baseSec < 0) this.baseSec = Number(m[2]);
    const ts = (Number(m[2]) - this.baseSec) * 1e9 + Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
    let tag = TAG_NULL;
    let zone = -1;
    let size = 0;
    if (kind === KIND_PAGE_ALLOC || kind === KIND_PAGE_FREE) {
      const pfn = fields.get('pfn');
      const page = fields.get('page');
      if (pfn !== undefined) {
        if (!/^0x[0-9a-fA-F]{1,16}$|^\d{1,20}$/.test(pfn)) return this.fail('a pfn (hex with 0x, or decimal)', pfn);
        const v = BigInt(pfn);
        this.top = Number(v >> 64n);
        this.hi = Number((v >> 32n) & 0xffffffffn) | 0;
        this.lo = Number(v & 0xffffffffn) | 0;
        // A failed allocation prints page=NULL pfn=0.
        tag = page !== undefined && normalizePointer(page) === '' ? TAG_NULL : TAG_PFN + this.top;
      } else if (page !== undefined) {
        const k = normalizePointer(page);
        if (k === null) return this.fail('a hex page pointer', page);
        tag = k === '' ? TAG_NULL : TAG_PAGE;
        this.halves(k);
      } else {
        return this.fail(`pfn= or page= in ${tracepoint}`, body);
      }
      if (kind === KIND_PAGE_ALLOC) {
        const order = fields.get('order');
        if (order === undefined) return this.fail(`order= in ${tracepoint}`, body);
        if (!/^\d{1,2}$/.test(order) || Number(order) > MAX_ORDER) return this.fail(`a page order (0-${MAX_ORDER})`, order);
        size = Number(order);
      }
    } else {
      const ptr = fields.get('ptr');
      if (ptr === undefined) return this.fail(`ptr= in ${tracepoint}`, body);
      const k = normalizePointer(ptr);
      if (k === null) return this.fail('a hex pointer, or (nil), (null), 0 for NULL', ptr);
      tag = k === '' ? TAG_NULL : TAG_OBJ;
      this.halves(k);
      if (kind !== KIND_FREE) {
        const bytes = fields.get('bytes_alloc');
        if (bytes === undefined) return this.fail(`bytes_alloc= in ${tracepoint}`, body);
        if (!/^\d{1,15}$/.test(bytes)) return this.fail('a decimal bytes_alloc', bytes);
        size = Number(bytes);
        const max = kind === KIND_CACHE_ALLOC ? MAX_ITEM_SIZE : MAX_MALLOC_SIZE;
        if (size > max) return this.fail(`a bytes_alloc of at most ${max} (the largest ${kind === KIND_CACHE_ALLOC ? 'zone item' : 'malloc'} a kmemu trace holds)`, bytes);
        if (size === 0 && k !== '') {
          size = ZERO_SIZE_AS;
          bump(this.tally.zeroSize, tp);
        }
      }
      if (kind === KIND_CACHE_ALLOC) {
        const name = fields.get('name');
        if (name !== undefined && name !== '') {
          zone = this.zones.of(name.replace(/\s/g, '_'));
        } else {
          const site = fields.get('call_site') ?? fields.get('(call_site)');
          if (site === undefined) return this.fail(`name= or call_site= in ${tracepoint}`, body);
          zone = this.zones.of(`cache@${callSiteFunction(site)}-${size}`);
        }
      }
    }
    this.commit(ts, cpu, kind, tp, tag, this.hi, this.lo, zone, size);
  }

  /** A normalized pointer's (normalizePointer) halves into hi and lo; 0 for NULL. */
  private halves(k: string): void {
    this.hi = k.length > 8 ? Number.parseInt(k.slice(0, -8), 16) | 0 : 0;
    this.lo = k === '' ? 0 : Number.parseInt(k.slice(-8), 16) | 0;
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

  /** A kmem event read: counted, kept in its CPU's order, handed to the event mapping. */
  private commit(ts: number, cpu: number, kind: number, tp: number, tag: number, hi: number, lo: number, zone: number, size: number): void {
    bump(this.tally.kmemLines, tp);
    // Each CPU's events keep the order they were read in.
    const last = this.lastTs[cpu]!;
    if (ts < last) ts = last;
    else this.lastTs[cpu] = ts;
    this.sink.push(ts, cpu, kind, tp, tag, hi, lo, zone, size);
  }
}

const CALLCHAIN_NO = 0;
const CALLCHAIN_YES = 1;
/** `\S` on a byte that is not plain ASCII: for exact() to decide. */
const CALLCHAIN_UNSURE = 2;

/** CALLCHAIN on bytes [s, e) (a line starting with a tab, without its end). */
function callchain(b: Buffer, s: number, e: number): number {
  let i = s + 1;
  while (i < e && isBlank(b[i]!)) i++;
  let j = i;
  while (j < e && (BYTE_CLASS[b[j]!]! & C_LOWER_HEX) !== 0) j++;
  if (!(j > i && j + 1 < e && b[j] === SPACE)) return CALLCHAIN_NO;
  const c = b[j + 1]!;
  if ((BYTE_CLASS[c]! & C_UNUSUAL) !== 0) return CALLCHAIN_UNSURE;
  return isBlank(c) ? CALLCHAIN_NO : CALLCHAIN_YES;
}

/** The index of the imported tracepoint named by bytes [s, e), or -1. */
function kmemTracepoint(b: Buffer, s: number, e: number): number {
  for (let t = 0; t < TRACEPOINT_BYTES.length; t++) if (equalBytes(b, s, e, TRACEPOINT_BYTES[t]!)) return t;
  return -1;
}

/** `^(?:0x)?[0-9a-fA-F]+$` on bytes [s, e). */
function isHexWord(b: Buffer, s: number, e: number): boolean {
  const d = e - s > 2 && b[s] === 0x30 && b[s + 1] === 0x78 ? s + 2 : s;
  if (d === e) return false;
  for (let i = d; i < e; i++) if ((BYTE_CLASS[b[i]!]! & C_HEX) === 0) return false;
  return true;
}

/** A pointer as the exact path keys it: lower case, no 0x, no leading zeros; "" for NULL. */
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

// ---------------------------------------------------------------------------------------------
// Event mapping

/** Takes the events in timestamp order from the window and writes them as trace events. */
class EventMapper {
  readonly stats = new TraceStats();
  private readonly window = new Window();
  private readonly objects = new PointerMap();
  private readonly pages = new PointerMap();
  /** The zone id of each zone name's index (Names), 0 until its first allocation is written. */
  private readonly zoneIds: number[] = [];
  private nextObj = 1;
  private nextZone = 1;
  /** The timestamp of each CPU's last written event, NaN before the first. */
  private readonly lastWritten = new Float64Array(MAX_CPUS).fill(Number.NaN);
  private readonly ev = newEvent();

  constructor(
    private readonly out: TraceWriter,
    private readonly windowSize: number,
    /** Cycles per nanosecond of gap (the clock in GHz), 0 for no think time. */
    private readonly clockGHz: number,
    private readonly tally: Tally,
    private readonly zones: Names,
  ) {}

  push(ts: number, cpu: number, kind: number, tp: number, tag: number, hi: number, lo: number, zone: number, size: number): void {
    this.window.push(ts, cpu, kind, tp, tag, hi, lo, zone, size);
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
      case OP_THINK:
        ev.size = a;
        break;
      default:
        ev.obj = a;
    }
    this.out.write(ev);
    this.stats.add(ev);
  }

  /** The zone id of the event in `slot`, its zone created on first use. */
  private zoneFor(slot: number): number {
    const w = this.window;
    const name = w.zone[slot]!;
    let id = this.zoneIds[name] ?? 0;
    if (id === 0) {
      id = this.nextZone++;
      this.zoneIds[name] = id;
      const ev = this.ev;
      ev.op = OP_ZONE;
      ev.cpu = w.cpu[slot]!;
      ev.zone = id;
      ev.obj = 0;
      ev.size = w.bytes[slot]!;
      ev.name = this.zones.names[name]!;
      this.out.write(ev);
      this.stats.add(ev);
      ev.name = '';
    }
    return id;
  }

  /** A new object for the pointer of `slot`; a live one under the same pointer lost its free. */
  private open(map: PointerMap, slot: number, zone: number): number {
    const w = this.window;
    const id = this.nextObj++;
    const at = map.find(w.tag[slot]!, w.hi[slot]!, w.lo[slot]!);
    if (at >= 0) {
      bump(this.tally.doubles, w.tp[slot]!);
      map.id[at] = id;
      map.zone[at] = zone;
    } else {
      map.add(w.tag[slot]!, w.hi[slot]!, w.lo[slot]!, id, zone);
    }
    return id;
  }

  /** Before an event of `slot` is written: the time since its CPU's last written event as think time. */
  private think(slot: number): void {
    if (this.clockGHz === 0) return;
    const cpu = this.window.cpu[slot]!;
    const ts = this.window.ts[slot]!;
    const last = this.lastWritten[cpu]!;
    this.lastWritten[cpu] = ts;
    if (Number.isNaN(last) || ts <= last) return;
    let gap = ts - last;
    if (gap > MAX_THINK_NS) {
      gap = MAX_THINK_NS;
      this.tally.cappedGaps++;
    }
    const cycles = Math.round(gap * this.clockGHz);
    if (cycles > 0) this.emit(OP_THINK, cpu, cycles, 0);
  }

  private process(slot: number): void {
    const w = this.window;
    const tally = this.tally;
    const tp = w.tp[slot]!;
    const cpu = w.cpu[slot]!;
    const isNull = w.tag[slot] === TAG_NULL;
    switch (w.kind[slot]) {
      case KIND_CACHE_ALLOC: {
        if (isNull) return bump(tally.failed, tp);
        this.think(slot);
        const zone = this.zoneFor(slot);
        this.emit(OP_ALLOC, cpu, zone, this.open(this.objects, slot, zone));
        return;
      }
      case KIND_KMALLOC:
        if (isNull) return bump(tally.failed, tp);
        this.think(slot);
        this.emit(OP_MALLOC, cpu, w.bytes[slot]!, this.open(this.objects, slot, -1));
        return;
      case KIND_FREE: {
        if (isNull) return bump(tally.nullFrees, tp);
        const at = this.objects.find(w.tag[slot]!, w.hi[slot]!, w.lo[slot]!);
        if (at < 0) return bump(tally.unmatched, tp);
        const id = this.objects.id[at]!;
        const zone = this.objects.zone[at]!;
        this.objects.removeAt(at);
        this.think(slot);
        // The free matches the allocation: kfree() of a slab object frees it to its cache.
        if (zone >= 0) this.emit(OP_FREE, cpu, zone, id);
        else this.emit(OP_MFREE, cpu, id, 0);
        return;
      }
      case KIND_PAGE_ALLOC:
        if (isNull) return bump(tally.failed, tp);
        this.think(slot);
        this.emit(OP_PALLOC, cpu, w.bytes[slot]!, this.open(this.pages, slot, -1));
        return;
      case KIND_PAGE_FREE: {
        if (isNull) return bump(tally.nullFrees, tp);
        const at = this.pages.find(w.tag[slot]!, w.hi[slot]!, w.lo[slot]!);
        if (at < 0) return bump(tally.unmatched, tp);
        const id = this.pages.id[at]!;
        this.pages.removeAt(at);
        this.think(slot);
        this.emit(OP_PFREE, cpu, id, 0);
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

// ---------------------------------------------------------------------------------------------
// Import

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
    let block = await lines.nextBytes();
    const cpus = block === null ? undefined : cpuCount(block.toString('utf8'));
    const meta: Record<string, string> = { source: `linux-kmem, ${source}` };
    if (options.thinkFromTimestamps === true) meta.think = `gaps between a CPU's events at ${clockGHz} GHz, each at most ${MAX_THINK_NS / 1e6} ms`;
    writer = TraceWriter.create(output, { meta, ...(cpus === undefined ? {} : { cpus }) }, options.gzip === undefined ? {} : { gzip: options.gzip });
    const tally = new Tally();
    const zones = new Names();
    const mapper = new EventMapper(writer, Math.max(1, options.window ?? 4096), options.thinkFromTimestamps === true ? clockGHz : 0, tally, zones);
    const parser = new LineParser(lines.name, options.lenient ?? false, tally, zones, mapper);
    for (; block !== null; block = await lines.nextBytes()) {
      parser.readBlock(block);
      options.onProgress?.(lines.bytesRead);
    }
    mapper.end();
    const kmem = tally.kmemLines.reduce((a, b) => a + b, 0);
    if (kmem === 0) {
      throw new UserError(`${lines.name}: no kmem events found (expected trace-cmd report, perf script or tracefs output of kmem:* events)${tally.malformed > 0 ? `; ${tally.malformed} malformed kmem lines were skipped (--lenient)` : ''}`);
    }
    if (mapper.stats.summary().events === 0) {
      throw new UserError(`${lines.name}: none of the ${kmem} kmem events can be written: all are frees of objects allocated before the capture, frees of NULL or failed allocations`);
    }
    writer.close();
    const s = mapper.stats.summary();
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
      kmemLines: tally.byTracepoint(tally.kmemLines),
      unmatchedFrees: tally.byTracepoint(tally.unmatched),
      nullFrees: tally.byTracepoint(tally.nullFrees),
      failedAllocations: tally.byTracepoint(tally.failed),
      doubleAllocations: tally.byTracepoint(tally.doubles),
      skippedLines: sorted(tally.skipped),
      lostEvents: tally.lostEvents,
      malformedLines: tally.malformed,
      malformedByReason: sorted(tally.malformedBy),
      zeroSizeAllocations: tally.byTracepoint(tally.zeroSize),
      think: { clockGHz: options.thinkFromTimestamps === true ? clockGHz : null, cappedGaps: tally.cappedGaps },
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
