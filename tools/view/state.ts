// What `kmemu view` shows after each step: the JSON the step API returns and the app renders.
// Everything here is read from the emulated machine with functional (cost-free) reads, so a
// viewed replay's figures are those of `kmemu replay` (test/view/session.test.ts checks it).
// Addresses are hex strings ("0xffffffff80a01000"): kernel addresses exceed 2^53.

/**
 * One step API answer: a single replay, or compare mode's two (per-CPU caching on, then off)
 * stepped together. `message`: what the step could not do ("no event after position 412 takes
 * path uma.alloc.depot: ran to the end"), else null.
 */
export type ViewAnswer = { mode: 'single'; state: ViewState; message: string | null } | { mode: 'compare'; states: [ViewState, ViewState]; message: string | null };

export interface ViewState {
  /** Events completed so far (the position; back and forward move it). */
  position: number;
  /** The trace's events, counted when the session opened. */
  total: number;
  /** Every event replayed. */
  done: boolean;
  /** What runs: the trace file's base name, the machine, the allocator and its options. */
  run: { trace: string; machine: string; allocator: 'vmzone' | 'uma'; pcpu: boolean; aligned: boolean; cpus: number; label: string };
  cpus: CpuView[];
  zones: ZoneView[];
  /**
   * The zone whose lines `lines` shows: the one the viewer pinned (focus), else the zone whose
   * structures the last event touched most, else the last event's zone, else the first zone
   * shown; null while there is none.
   */
  focus: string | null;
  /**
   * The cache lines of the focused zone's structures (header, per-CPU caches, lock, keg,
   * buckets, slabs), then the other lines the last event touched (the object, page tables,
   * the kernel's own structures), up to 32.
   */
  lines: LineView[];
  /** Per CPU, its TLB entries for the pages the last step touched. */
  tlb: TlbView[];
  /** The page walk of the last TLB miss (any CPU, during the last step); null before the first. */
  walk: WalkView | null;
  /** The event the last step completed; null at position 0. */
  last: LastEventView | null;
  /** The lock operation a step-lock stopped at, inside an event (position counts the events before it); else null. */
  lock: LockEventView | null;
  /** The most recent events (up to TIMELINE_CAP), oldest first. */
  timeline: TimelineEvent[];
  /** Operations and cycles by path since boot (timed operations only), by path name. */
  paths: PathTotal[];
}

export const TIMELINE_CAP = 500;

export interface CpuView {
  id: number;
  clock: number;
  /** 'run' (between events, runnable), 'spin' (waiting for a lock word's line), 'sleep', 'idle' (waiting for another CPU's event), 'done'. */
  status: 'run' | 'spin' | 'sleep' | 'idle' | 'done';
  /** The path-label stack, outermost first (empty between events). */
  labels: string[];
  /** Events this CPU has completed. */
  events: number;
  /** Names of the locks it holds (ZoneView.lock.name), and the one it spins on. */
  holds: string[];
  spinsOn: string | null;
}

export interface BucketView {
  address: string;
  /** Items in it (ub_cnt), and its capacity (ub_entries). */
  count: number;
  entries: number;
  /** The items, top of stack last (up to 16 shown; count has them all). */
  items: string[];
}

export interface PerCpuCacheView {
  cpu: number;
  /** UMA: uc_allocbucket and uc_freebucket (null when none). */
  alloc?: BucketView | null;
  free?: BucketView | null;
  /** vm_zone: the per-CPU free list, head first (up to 16 shown) and its count. */
  list?: { count: number; items: string[] };
  allocs: number;
  frees: number;
}

export interface SlabView {
  address: string;
  /** Free items in it (us_freecount) of ipers. */
  free: number;
  ipers: number;
}

export interface LockView {
  /** "zone pairs" (vm_zone's zlock), "zone pairs" (UMA's uz_lock / keg lock): unique in the state. */
  name: string;
  address: string;
  /** Its cache line's physical address. */
  line: string;
  /** The lock word as memory holds it (0 free). */
  word: number;
  holder: number | null;
  /** CPUs spinning on its line now. */
  waiters: number[];
  /** Cycles CPUs have spun on it since boot. */
  spinCycles: number;
}

export interface ZoneView {
  allocator: 'vmzone' | 'uma';
  name: string;
  address: string;
  itemSize: number;
  lock: LockView;
  pcpu: PerCpuCacheView[];
  /** UMA: the depot's full and free buckets (uz_full_bucket, uz_free_bucket). */
  depot?: { full: BucketView[]; free: BucketView[] };
  /** UMA: the keg's slabs by list. */
  slabs?: { part: SlabView[]; full: SlabView[]; free: SlabView[] };
  /** vm_zone: the locked free list (zitems) and its count (zfreecnt). */
  locked?: { count: number; items: string[] };
  /** Items in use and free, as vmstat -z / sysctl vm.zone count them. */
  used: number;
  free: number;
}

/** A coherence state: M, O, E, S or I. */
export type LineState = 'M' | 'O' | 'E' | 'S' | 'I';

export interface LineView {
  /** Physical address of the line. */
  line: string;
  /** What lives there: "pairs: zone header", "pairs: cpu1 cache", "pairs: lock", "bucket 0x…". */
  what: string;
  zone: string;
  /** Per CPU, the line's state in its L1D and L2. */
  l1: LineState[];
  l2: LineState[];
  /** In the LLC, and dirty there. */
  llc: boolean;
  llcDirty: boolean;
  /** Touched by the last step, by which CPUs, with stores among them. */
  touched: boolean;
  touchedBy: number[];
  written: boolean;
  /** Copies moved or removed by the last step: cache-to-cache transfers into a CPU, and invalidated copies. */
  transfers: number;
  invalidations: number;
}

export interface TlbEntryView {
  /** The page's virtual base and size (4 KiB, 2 MiB or 1 GiB). */
  page: string;
  pageSize: '4K' | '2M' | '1G';
  /** Where the entry sits: the L1 DTLB or the L2 STLB. */
  level: 'L1' | 'L2';
  frame: string;
  flags: string;
}

export interface TlbView {
  cpu: number;
  entries: TlbEntryView[];
}

export interface WalkStepView {
  /** 4 (PML4) down to 1 (PT). */
  level: number;
  /** The entry's physical address and value. */
  entry: string;
  value: string;
}

export interface WalkView {
  cpu: number;
  va: string;
  steps: WalkStepView[];
  cycles: number;
  /** The walk ended in a translation (else a fault). */
  ok: boolean;
  /** It happened during the last event (else it is the CPU's latest walk, from an earlier one). */
  inLastEvent: boolean;
}

/** The itemized cost of an event, from its CPU's counters over the event. */
export interface EventCounts {
  cycles: number;
  l1dMisses: number;
  l2Misses: number;
  llcMisses: number;
  c2cTransfers: number;
  invalidations: number;
  tlbMisses: number;
  walkCycles: number;
  spinCycles: number;
  idleCycles: number;
  atomics: number;
}

export interface LastEventView {
  cpu: number;
  /** The trace's op letter and a description: "a 0x… from pairs". */
  op: string;
  what: string;
  /** The trace file's line. */
  traceLine: number;
  /** The allocator operation's path (its last path label), and its cycles; null for events without one (think, zone creation). */
  path: string | null;
  opCycles: number | null;
  /** The allocator operation's counts (the whole event's when it timed none). */
  counts: EventCounts;
  /** The whole event on its CPU, from taking it off its queue to its return to user mode (consumer touches and waits included). */
  eventCycles: number;
  /** "uma_zalloc_arg: 163 cycles — 2 L1D misses, 1 cache-to-cache transfer of the pairs: zone header line, 0 spin". */
  text: string;
}

export interface LockEventView {
  cpu: number;
  /** The lock's name (a ZoneView's lock.name). */
  lock: string;
  /** The CPU's atomic took the word, or found it held; or its release store freed it. */
  kind: 'acquire' | 'fail' | 'release';
  /** "CPU 1 tried the kmalloc-64 lock and found it held by CPU 2: it spins until the word changes". */
  text: string;
}

export interface TimelineEvent {
  /** The event's position (1-based: the step that completed it). */
  n: number;
  cpu: number;
  start: number;
  end: number;
  path: string;
}

export interface PathTotal {
  path: string;
  ops: number;
  cycles: number;
}
