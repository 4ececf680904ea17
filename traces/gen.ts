// Workload generators: seeded, deterministic streams of trace events (FORMAT.md, "Generated
// workloads"), produced on the fly so memory is bounded by the live objects, not the length.
//
// Each workload is a set of per-CPU programs (generators) over shared state; a scheduler runs
// them on per-CPU clocks (OP_CYCLES per allocation or free, think time as stated), always
// stepping the CPU whose clock is smallest (ties: lowest id), so the stream is roughly in time
// order and CPUs interleave round-robin when they do the same work. A program that must wait
// (a consumer with nothing to free, a CPU at a barrier) yields null and is woken when another
// program changes shared state (GenState.notify). An object is handed to another CPU only after
// its allocation has been emitted, so every free follows its allocation in the stream.
//
// Event budget: `events` counts allocations and frees (a, f, m, x, P, Q), not zone or think
// events. A run allocates ceil(events/2) objects and then frees everything still live, so it
// ends with no live object when `events` is even (one left when it is odd).

import seedrandom from 'seedrandom';
import { UserError } from '../emu/index.js';
import {
  MLEN, OP_ALLOC, OP_ARENA, OP_FREE, OP_MALLOC, OP_MBUF, OP_MFREE, OP_MFREEM, OP_PALLOC, OP_PFREE, OP_THINK, OP_VALLOC, OP_VFREE, OP_ZONE, newVmemArgs,
  vmemStrategies,
} from './format.js';
import type { MbufKind, TraceEvent, TraceHeader, VmemArgs, VmemStrategy, ZoneFlag } from './format.js';
import type { EventSource } from './replay.js';

export type GenApi = 'zone' | 'malloc';

export interface GenOptions {
  /** CPUs the workload runs on (1–4096). */
  cpus: number;
  /** Allocation and free events to generate (zone and think events are not counted). */
  events: number;
  /** Any string or number; the same options and seed give the same events. */
  seed: string | number;
  /** Object size in bytes (slab-*, xmalloc, cache-*) or packet size (net-*: 1–1500); 0: the workload's own size mix (net-*: IMIX). */
  size?: number;
  /** slab-*: objects per CPU per round (slab_test's TEST_COUNT). */
  count?: number;
  /** Allocate from zones (`a`/`f`, one zone per power-of-two size class) or malloc(9) (`m`/`x`). */
  api?: GenApi;
  /** cache-*: writes to each object between its allocation and free, as think cycles (one per write). */
  writes?: number;
  /** larson: objects per thread. */
  chunks?: number;
  /** larson: a thread does rounds × chunks replacements before its objects pass to the next CPU. */
  rounds?: number;
  /** larson: smallest object size in bytes. */
  minSize?: number;
  /** larson: object sizes are below this (bytes). */
  maxSize?: number;
  /** xmalloc: objects per batch; net-forward: tx completions freed at a time; net-sockbuf: writes the reader lets queue before it reads. */
  batch?: number;
  /** net-forward, net-local: receive descriptors of a NIC ring, each holding a cluster. */
  ring?: number;
  /** Mean think time in cycles after each allocation or free (exponential); 0: none. */
  think?: number;
  /** vmem-frag: free segments the fragmentation phase leaves in the arena. */
  fragments?: number;
  /** vmem-*: the fit strategy of the measured allocations. */
  strategy?: VmemStrategy;
  /** vmem-*: the arena's quantum caches, in quanta (0: none; at most 16). */
  qcacheMax?: number;
}

type OptionName = Exclude<keyof GenOptions, 'cpus' | 'events' | 'seed'>;

export interface WorkloadInfo {
  name: string;
  /** One line: what each CPU does. */
  description: string;
  /** The benchmark or data it follows. */
  source: string;
  /** The workload-specific options it takes, beyond cpus, events and seed. */
  options: readonly OptionName[];
  minCpus: number;
  /** The trace format version it writes: 2 for the vmem and net workloads, 1 otherwise. */
  version: number;
}

/** Nominal cycles of one allocation or free, used only to interleave CPUs. */
export const OP_CYCLES = 100;

const MAX_CPUS = 4096;
const NO_FLAGS = Object.freeze([]) as unknown as ZoneFlag[];

// ---------------------------------------------------------------------------------------------
// Shared state, objects and events

/** A live object: its id and where it came from (zone id; 0 for malloc, -1 for pages). */
interface Held {
  obj: number;
  zone: number;
  /** Bytes (malloc) or order (pages); the zone's item size otherwise. */
  size: number;
}

interface ZoneDef {
  name: string;
  size: number;
  flags: ZoneFlag[];
}

/** null: the program cannot go on until another one changes shared state. */
type Program = Generator<TraceEvent | null, void, undefined>;

class GenState {
  readonly rng: seedrandom.PRNG;
  allocsLeft: number;
  nextObj = 1;
  notified = false;

  constructor(
    readonly cpus: number,
    events: number,
    seed: string,
  ) {
    this.rng = seedrandom.alea(seed);
    this.allocsLeft = Math.ceil(events / 2);
  }

  get exhausted(): boolean {
    return this.allocsLeft === 0;
  }

  /** Claims one allocation from the budget; false once it is spent. */
  take(): boolean {
    if (this.allocsLeft === 0) return false;
    if (--this.allocsLeft === 0) this.notify();
    return true;
  }

  /** Wakes the waiting programs after a change they may be waiting for. */
  notify(): void {
    this.notified = true;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.rng() * n);
  }
}

function event(op: number, zone: number, obj: number, size: number): TraceEvent {
  return { cpu: 0, op, zone, obj, size, name: '', flags: NO_FLAGS, line: 0 };
}

function allocEvent(h: Held): TraceEvent {
  if (h.zone > 0) return event(OP_ALLOC, h.zone, h.obj, 0);
  return h.zone === 0 ? event(OP_MALLOC, 0, h.obj, h.size) : event(OP_PALLOC, 0, h.obj, h.size);
}

function freeEvent(h: Held): TraceEvent {
  if (h.zone > 0) return event(OP_FREE, h.zone, h.obj, 0);
  return event(h.zone === 0 ? OP_MFREE : OP_PFREE, 0, h.obj, 0);
}

function thinkEvent(cycles: number): TraceEvent {
  return event(OP_THINK, 0, 0, cycles);
}

function isCounted(op: number): boolean {
  return (op >= OP_ALLOC && op <= OP_PFREE) || op === OP_VALLOC || op === OP_VFREE || op === OP_MBUF || op === OP_MFREEM;
}

/**
 * Maps requested sizes to zones (api 'zone': one zone `kmalloc-N` per power-of-two class from
 * 8 bytes, as Linux's kmalloc caches) or to malloc(9) of the size itself (api 'malloc').
 */
class SizeMap {
  readonly zones: ZoneDef[] = [];
  private readonly zoneOfClass = new Map<number, number>();

  constructor(
    readonly api: GenApi,
    sizes: readonly number[],
  ) {
    if (api !== 'zone') return;
    const classes = [...new Set(sizes.map(sizeClass))].sort((a, b) => a - b);
    for (const c of classes) {
      this.zones.push({ name: `kmalloc-${c}`, size: c, flags: NO_FLAGS });
      this.zoneOfClass.set(c, this.zones.length);
    }
  }

  hold(g: GenState, size: number): Held {
    const obj = g.nextObj++;
    if (this.api === 'malloc') return { obj, zone: 0, size };
    const c = sizeClass(size);
    const zone = this.zoneOfClass.get(c);
    if (zone === undefined) throw new Error(`no zone for size ${size}`);
    return { obj, zone, size: c };
  }
}

function sizeClass(size: number): number {
  let c = 8;
  while (c < size) c *= 2;
  return c;
}

/** Every CPU waits here; returns whether allocations were left when the last one arrived. */
class Barrier {
  private arrived = 0;
  private generation = 0;
  private more = false;

  *wait(g: GenState): Generator<null, boolean, undefined> {
    const generation = this.generation;
    if (++this.arrived === g.cpus) {
      this.arrived = 0;
      this.generation++;
      this.more = !g.exhausted;
      g.notify();
      yield null; // so that the CPUs leave the barrier in order of clock and id, not the last one first
      return this.more;
    }
    while (this.generation === generation) yield null;
    return this.more;
  }
}

function* done(): Program {}

// ---------------------------------------------------------------------------------------------
// The scheduler

/** A min-heap of CPU ids by (clock, id). */
class CpuHeap {
  readonly ids: number[] = [];
  constructor(private readonly clock: Float64Array) {}

  private less(a: number, b: number): boolean {
    const ca = this.clock[a]!;
    const cb = this.clock[b]!;
    return ca < cb || (ca === cb && a < b);
  }

  push(cpu: number): void {
    const ids = this.ids;
    let i = ids.length;
    ids.push(cpu);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(cpu, ids[parent]!)) break;
      ids[i] = ids[parent]!;
      i = parent;
    }
    ids[i] = cpu;
  }

  /** Restores order after the top CPU's clock grew. */
  siftTop(): void {
    const ids = this.ids;
    const n = ids.length;
    const cpu = ids[0]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.less(ids[child + 1]!, ids[child]!)) child++;
      if (!this.less(ids[child]!, cpu)) break;
      ids[i] = ids[child]!;
      i = child;
    }
    ids[i] = cpu;
  }

  popTop(): void {
    const last = this.ids.pop()!;
    if (this.ids.length > 0) {
      this.ids[0] = last;
      this.siftTop();
    }
  }
}

function* schedule(g: GenState, setup: Setup, events: number, think: number): Generator<TraceEvent, void, undefined> {
  const { zones, programs } = setup;
  for (let i = 0; i < zones.length; i++) {
    const z = zones[i]!;
    yield { cpu: 0, op: OP_ZONE, zone: i + 1, obj: 0, size: z.size, name: z.name, flags: z.flags, line: 0 };
  }
  // Arenas and the prelude (vmem-frag's fragmentation phase) come next, on CPU 0, not counted.
  for (const a of setup.arenas ?? []) yield a;
  if (setup.prelude !== undefined) for (const ev of setup.prelude) yield ev;
  const n = programs.length;
  const clock = new Float64Array(n);
  const heap = new CpuHeap(clock);
  const blocked: number[] = [];
  for (let cpu = 0; cpu < n; cpu++) heap.push(cpu);
  /** Think time drawn after a CPU's last allocation or free, emitted at its next turn. */
  const pendingThink = new Float64Array(n);
  let counted = 0;
  while (counted < events) {
    if (heap.ids.length === 0) {
      if (blocked.length > 0) throw new Error(`generator deadlock: CPUs ${blocked.join(', ')} wait and none can run`);
      return;
    }
    const cpu = heap.ids[0]!;
    /** When this step happens: CPUs it wakes resume no earlier. */
    const now = clock[cpu]!;
    let ev: TraceEvent | null = null;
    g.notified = false;
    if (pendingThink[cpu]! > 0) {
      ev = thinkEvent(pendingThink[cpu]!);
      pendingThink[cpu] = 0;
    } else {
      const step = programs[cpu]!.next();
      if (step.done) heap.popTop();
      else if (step.value === null) {
        heap.popTop();
        blocked.push(cpu);
      } else ev = step.value;
    }
    if (ev !== null) {
      ev.cpu = cpu;
      clock[cpu] = clock[cpu]! + (ev.op === OP_THINK ? ev.size : OP_CYCLES);
      heap.siftTop();
    }
    if (g.notified && blocked.length > 0) {
      for (const b of blocked) {
        if (clock[b]! < now) clock[b] = now;
        heap.push(b);
      }
      blocked.length = 0;
    }
    if (ev === null) continue;
    if (isCounted(ev.op)) {
      counted++;
      if (think > 0) pendingThink[cpu] = Math.round(-Math.log(1 - g.rng()) * think);
    }
    yield ev;
  }
}

// ---------------------------------------------------------------------------------------------
// slab_test (Christoph Lameter, Linux Foundation 2009): the SLUB benchmark module. Each test
// runs rounds of `count` objects per CPU with sizes 8, 16, ..., 4096 bytes in turn (or --size);
// the concurrent tests start every round and phase on all CPUs together.

const SLAB_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

interface Setup {
  zones: ZoneDef[];
  programs: Program[];
  /** vmem workloads: `arena` events, written after the zones on CPU 0. */
  arenas?: TraceEvent[];
  /** Events written after them on CPU 0 and not counted in the budget (vmem-frag's fragmentation phase). */
  prelude?: Iterable<TraceEvent>;
}

function slabSetup(g: GenState, o: Resolved, perCpu: (cpu: number, sizeOf: (round: number) => number, sm: SizeMap) => Program): Setup {
  const sizes = o.size > 0 ? [o.size] : SLAB_SIZES;
  const sm = new SizeMap(o.api, sizes);
  const sizeOf = (round: number): number => sizes[round % sizes.length]!;
  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) programs.push(perCpu(cpu, sizeOf, sm));
  return { zones: sm.zones, programs };
}

/** Test 1, single thread: `count` allocations, then their frees, on CPU 0. */
function slabBulk(g: GenState, o: Resolved): Setup {
  return slabSetup(g, o, (cpu, sizeOf, sm) => {
    if (cpu !== 0) return done();
    return (function* (): Program {
      for (let round = 0; !g.exhausted; round++) {
        const held: Held[] = [];
        for (let i = 0; i < o.count && g.take(); i++) {
          const h = sm.hold(g, sizeOf(round));
          held.push(h);
          yield allocEvent(h);
        }
        for (const h of held) yield freeEvent(h);
      }
    })();
  });
}

/** Test 2, single thread: `count` allocations each freed at once, on CPU 0. */
function slabPairs(g: GenState, o: Resolved): Setup {
  return slabSetup(g, o, (cpu, sizeOf, sm) => {
    if (cpu !== 0) return done();
    return (function* (): Program {
      for (let round = 0; ; round++) {
        for (let i = 0; i < o.count; i++) {
          if (!g.take()) return;
          const h = sm.hold(g, sizeOf(round));
          yield allocEvent(h);
          yield freeEvent(h);
        }
      }
    })();
  });
}

/** Concurrent test "N*alloc N*free": every CPU allocates `count`, all wait, every CPU frees its own. */
function slabConcurrentBulk(g: GenState, o: Resolved): Setup {
  const barrier = new Barrier();
  return slabSetup(g, o, (_cpu, sizeOf, sm) =>
    (function* (): Program {
      for (let round = 0; yield* barrier.wait(g); round++) {
        const held: Held[] = [];
        for (let i = 0; i < o.count && g.take(); i++) {
          const h = sm.hold(g, sizeOf(round));
          held.push(h);
          yield allocEvent(h);
        }
        yield* barrier.wait(g);
        for (const h of held) yield freeEvent(h);
      }
    })(),
  );
}

/** Concurrent test "N*(alloc free)": every CPU allocates and frees `count` objects in pairs. */
function slabConcurrentPairs(g: GenState, o: Resolved): Setup {
  const barrier = new Barrier();
  return slabSetup(g, o, (_cpu, sizeOf, sm) =>
    (function* (): Program {
      for (let round = 0; yield* barrier.wait(g); round++) {
        for (let i = 0; i < o.count && g.take(); i++) {
          const h = sm.hold(g, sizeOf(round));
          yield allocEvent(h);
          yield freeEvent(h);
        }
      }
    })(),
  );
}

/** "Remote free test": CPUs 1..N-1 allocate `count` each; after a barrier CPU 0 frees them all. */
function slabRemote(g: GenState, o: Resolved): Setup {
  const barrier = new Barrier();
  const v: Held[][] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) v.push([]);
  return slabSetup(g, o, (cpu, sizeOf, sm) =>
    (function* (): Program {
      for (let round = 0; yield* barrier.wait(g); round++) {
        if (cpu !== 0) {
          const mine: Held[] = [];
          v[cpu] = mine;
          for (let i = 0; i < o.count && g.take(); i++) {
            const h = sm.hold(g, sizeOf(round));
            mine.push(h);
            yield allocEvent(h);
          }
        }
        yield* barrier.wait(g);
        if (cpu === 0) {
          for (let i = 0; i < o.count; i++) {
            for (let c = 1; c < g.cpus; c++) {
              const h = v[c]![i];
              if (h !== undefined) yield freeEvent(h);
            }
          }
        }
      }
    })(),
  );
}

/** "1 alloc N free": CPU 0 allocates `count` objects for each other CPU, which frees them as they come. */
function slabProducer(g: GenState, o: Resolved): Setup {
  const barrier = new Barrier();
  const queues: Held[][] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) queues.push([]);
  let producedRound = -1;
  return slabSetup(g, o, (cpu, sizeOf, sm) =>
    (function* (): Program {
      for (let round = 0; yield* barrier.wait(g); round++) {
        if (cpu === 0) {
          produce: for (let i = 0; i < o.count; i++) {
            for (let c = 1; c < g.cpus; c++) {
              if (!g.take()) break produce;
              const h = sm.hold(g, sizeOf(round));
              queues[c]!.push(h);
              g.notify();
              yield allocEvent(h);
            }
          }
          producedRound = round;
          g.notify();
        } else {
          const q = queues[cpu]!;
          let head = 0;
          for (;;) {
            if (head < q.length) {
              yield freeEvent(q[head++]!);
            } else if (producedRound >= round) {
              break;
            } else {
              yield null;
            }
          }
          q.length = 0;
        }
      }
    })(),
  );
}

// ---------------------------------------------------------------------------------------------
// larson (Larson & Krishnan, "Memory allocation for long-running server applications", ISMM
// 1998; the benchmark as in Hoard and mimalloc-bench): each thread owns `chunks` objects and
// repeatedly frees a random one and allocates a random size in its place; after rounds × chunks
// replacements the thread exits and a new one carries on with its objects, here on the next CPU,
// which frees objects allocated elsewhere ("bleeding"). The main thread (CPU 0) allocates every
// thread's first objects.

function larson(g: GenState, o: Resolved): Setup {
  const zoneSizes: number[] = [];
  for (let c = sizeClass(o.minSize); c <= sizeClass(o.maxSize - 1); c *= 2) zoneSizes.push(c);
  const sizes = new SizeMap(o.api, zoneSizes);
  const randomSize = (): number => o.minSize + g.below(o.maxSize - o.minSize);
  const arrays: (Held | null)[][] = [];
  const handoff: (Held | null)[][][] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) {
    arrays.push(new Array<Held | null>(o.chunks).fill(null));
    handoff.push([]);
  }
  let warm = false;
  const ops = o.rounds * o.chunks;

  function* drain(arr: (Held | null)[]): Program {
    for (let i = 0; i < arr.length; i++) {
      const h = arr[i];
      if (h) {
        arr[i] = null;
        yield freeEvent(h);
      }
    }
  }

  function* thread(cpu: number): Program {
    if (cpu === 0) {
      warmup: for (const arr of arrays) {
        for (let i = 0; i < o.chunks; i++) {
          if (!g.take()) break warmup;
          const h = sizes.hold(g, randomSize());
          arr[i] = h;
          yield allocEvent(h);
        }
      }
      warm = true;
      g.notify();
    }
    while (!warm) yield null;
    let arr = arrays[cpu]!;
    for (;;) {
      let spent = g.exhausted;
      for (let op = 0; op < ops && !spent; op++) {
        const victim = g.below(o.chunks);
        const old = arr[victim];
        if (old) {
          arr[victim] = null;
          yield freeEvent(old);
        }
        if (!g.take()) {
          spent = true;
          break;
        }
        const h = sizes.hold(g, randomSize());
        arr[victim] = h;
        yield allocEvent(h);
      }
      if (spent || g.exhausted) {
        yield* drain(arr);
        for (const other of handoff[cpu]!) yield* drain(other);
        return;
      }
      handoff[(cpu + 1) % g.cpus]!.push(arr);
      g.notify();
      const mine = handoff[cpu]!;
      while (mine.length === 0) {
        if (g.exhausted) return;
        yield null;
      }
      arr = mine.shift()!;
    }
  }

  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) programs.push(thread(cpu));
  return { zones: sizes.zones, programs };
}

// ---------------------------------------------------------------------------------------------
// xmalloc-test (Lever & Boreham, "malloc() Performance in a Multithreaded Linux Environment",
// USENIX 2000; the version in mimalloc-bench): producer threads malloc a batch structure and
// fill it with `batch` objects, then push it on a shared stack of at most 100 batches; consumer
// threads pop a batch and free its objects and then the batch. Odd CPUs produce and even CPUs
// consume (the benchmark starts releaser i, then allocator i); one CPU does both in turn.

/** The benchmark's object sizes when it is given -s -1 (here --size 0). */
const XMALLOC_SIZES = [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048];
/** Shared stack limit (the benchmark's batch_count_limit). */
const XMALLOC_MAX_BATCHES = 100;

function xmalloc(g: GenState, o: Resolved): Setup {
  const batchBytes = 8 + 8 * o.batch; // struct batch: a next pointer and `batch` object pointers
  const sm = new SizeMap(o.api, [batchBytes, ...(o.size > 0 ? [o.size] : XMALLOC_SIZES)]);
  const objectSize = (): number => (o.size > 0 ? o.size : XMALLOC_SIZES[g.below(XMALLOC_SIZES.length)]!);
  const stack: Held[][] = [];
  const producer = (cpu: number): boolean => g.cpus === 1 || cpu % 2 === 1;
  let producers = 0;
  for (let cpu = 0; cpu < g.cpus; cpu++) if (producer(cpu)) producers++;

  /** Fills one batch; its first element is the batch structure. Empty when the budget is spent. */
  function* fill(out: Held[]): Program {
    if (!g.take()) return;
    const b = sm.hold(g, batchBytes);
    out.push(b);
    yield allocEvent(b);
    for (let i = 0; i < o.batch && g.take(); i++) {
      const h = sm.hold(g, objectSize());
      out.push(h);
      yield allocEvent(h);
    }
  }

  function* release(batch: Held[]): Program {
    for (let i = 1; i < batch.length; i++) yield freeEvent(batch[i]!);
    yield freeEvent(batch[0]!);
  }

  function* both(): Program {
    for (;;) {
      const batch: Held[] = [];
      yield* fill(batch);
      if (batch.length === 0) return;
      yield* release(batch);
    }
  }

  function* produce(): Program {
    for (;;) {
      const batch: Held[] = [];
      yield* fill(batch);
      if (batch.length === 0) break;
      while (stack.length >= XMALLOC_MAX_BATCHES) yield null;
      stack.push(batch);
      g.notify();
    }
    producers--;
    g.notify();
  }

  function* consume(): Program {
    for (;;) {
      const batch = stack.pop();
      if (batch) {
        g.notify();
        yield* release(batch);
      } else if (producers === 0) {
        return;
      } else {
        yield null;
      }
    }
  }

  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) programs.push(g.cpus === 1 ? both() : producer(cpu) ? produce() : consume());
  return { zones: sm.zones, programs };
}

// ---------------------------------------------------------------------------------------------
// cache-thrash and cache-scratch (Berger et al., "Hoard: A Scalable Memory Allocator for
// Multithreaded Applications", ASPLOS 2000): objects of `size` bytes written `writes` times
// between allocation and free. The trace has no writes: they are think time (one cycle each)
// and the replayer's --touch makes them; false sharing comes from small objects of different
// CPUs that share cache lines.

/** Active false sharing: every CPU allocates, writes and frees small objects in a loop. */
function cacheThrash(g: GenState, o: Resolved): Setup {
  const sm = new SizeMap(o.api, [o.size]);
  function* thread(): Program {
    while (g.take()) {
      const h = sm.hold(g, o.size);
      yield allocEvent(h);
      if (o.writes > 0) yield thinkEvent(o.writes);
      yield freeEvent(h);
    }
  }
  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) programs.push(thread());
  return { zones: sm.zones, programs };
}

/**
 * Passive false sharing: CPU 0 allocates one object per CPU back to back; each CPU frees the one
 * it was given (which its allocator may hand back to it, next to the others'), then allocates,
 * writes and frees in a loop.
 */
function cacheScratch(g: GenState, o: Resolved): Setup {
  const sm = new SizeMap(o.api, [o.size]);
  const given: (Held | undefined)[] = new Array<Held | undefined>(g.cpus);
  let ready = false;
  function* thread(cpu: number): Program {
    if (cpu === 0) {
      for (let c = 0; c < g.cpus && g.take(); c++) {
        const h = sm.hold(g, o.size);
        given[c] = h;
        yield allocEvent(h);
      }
      ready = true;
      g.notify();
    }
    while (!ready) yield null;
    const mine = given[cpu];
    if (mine) yield freeEvent(mine);
    while (g.take()) {
      const h = sm.hold(g, o.size);
      yield allocEvent(h);
      if (o.writes > 0) yield thinkEvent(o.writes);
      yield freeEvent(h);
    }
  }
  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) programs.push(thread(cpu));
  return { zones: sm.zones, programs };
}

// ---------------------------------------------------------------------------------------------
// kernel-mix: the caches, kmalloc sizes, page allocations and lifetimes of a Linux capture.

/**
 * Derived once (not read at run time) from /work/shared/traces/linux-6.18-kmem-ftrace-sample.txt,
 * 5,419 kmem events on 2 CPUs: the kmem_cache_alloc events by name= and bytes_alloc=, kmalloc by
 * bytes_alloc=, mm_page_alloc by order=. Each allocation was matched by address with the next
 * free of that address (kmem_cache_free, kfree, mm_page_free); a free within 16 kmem events of
 * its allocation makes the object short-lived, a later one long-lived; objects not freed within
 * the capture count as long-lived. remote: long-lived objects freed on the other CPU. (Short-lived
 * objects were freed on their own CPU: 1,276 of 1,278.)
 *
 * [kind, name, item size (bytes; order for pages), allocations, short-lived, long-lived freed, of which remote]
 */
export const KERNEL_MIX: readonly (readonly ['zone' | 'malloc' | 'page', string, number, number, number, number, number])[] = [
  ['zone', 'names_cache', 4096, 897, 895, 2, 2],
  ['malloc', 'kmalloc-64', 64, 239, 2, 237, 2],
  ['page', 'page', 0, 238, 3, 149, 59],
  ['malloc', 'kmalloc-256', 256, 236, 236, 0, 0],
  ['zone', 'vm_area_struct', 192, 190, 19, 171, 86],
  ['zone', 'anon_vma_chain', 64, 143, 0, 143, 116],
  ['zone', 'maple_node', 256, 139, 0, 4, 2],
  ['zone', 'filp', 192, 84, 45, 38, 3],
  ['zone', 'lsm_file_cache', 24, 84, 45, 38, 3],
  ['zone', 'anon_vma', 104, 48, 0, 48, 30],
  ['zone', 'signal_cache', 1152, 10, 8, 1, 0],
  ['malloc', 'kmalloc-96', 96, 8, 0, 7, 2],
  ['zone', 'pid', 192, 6, 0, 3, 1],
  ['zone', 'dentry', 192, 5, 4, 0, 0],
  ['malloc', 'kmalloc-16', 16, 4, 0, 2, 1],
  ['zone', 'mm_struct', 1600, 4, 0, 2, 1],
  ['malloc', 'kmalloc-512', 512, 4, 0, 4, 2],
  ['malloc', 'kmalloc-32', 32, 4, 3, 0, 0],
  ['zone', 'sock_inode_cache', 832, 4, 0, 4, 0],
  ['zone', 'lsm_inode_cache', 32, 4, 0, 4, 0],
  ['zone', 'skbuff_head_cache', 256, 4, 4, 0, 0],
  ['zone', 'skbuff_small_head', 576, 4, 4, 0, 0],
  ['zone', 'key_jar', 256, 3, 3, 0, 0],
  ['zone', 'task_struct', 5888, 2, 0, 1, 0],
  ['zone', 'files_cache', 704, 2, 0, 2, 2],
  ['malloc', 'kmalloc-2048', 2048, 2, 0, 2, 2],
  ['zone', 'sighand_cache', 2112, 2, 0, 2, 0],
  ['malloc', 'kmalloc-1024', 1024, 2, 0, 2, 0],
  ['zone', 'sigqueue', 80, 2, 2, 0, 0],
  ['zone', 'vmap_area', 72, 2, 0, 0, 0],
  ['zone', 'bio-184', 192, 2, 2, 0, 0],
  ['zone', 'pde_opener', 40, 1, 1, 0, 0],
  ['zone', 'seq_file', 120, 1, 1, 0, 0],
  ['malloc', 'kmalloc-4096', 4096, 1, 1, 0, 0],
  ['zone', 'pidfs_attr_cache', 32, 1, 0, 1, 1],
];

/** Caches Linux creates with SLAB_RECLAIM_ACCOUNT (fs/dcache.c, net/socket.c). */
const KERNEL_MIX_RECLAIM = new Set(['dentry', 'sock_inode_cache']);
/** Mean lifetime of short-lived objects in the capture: 2.48 kmem events (1 to 16). */
const SHORT_MEAN = 2.48;
const SHORT_MAX = 16;
/** Mean lifetime of long-lived objects freed within the capture: 2,054 kmem events. */
const LONG_MEAN = 2054;

/** Per-CPU frees by due step: a binary min-heap. */
class DueHeap {
  readonly due: number[] = [];
  readonly held: Held[] = [];

  get size(): number {
    return this.due.length;
  }

  push(due: number, h: Held): void {
    let i = this.due.length;
    this.due.push(due);
    this.held.push(h);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.due[p]! <= due) break;
      this.due[i] = this.due[p]!;
      this.held[i] = this.held[p]!;
      i = p;
    }
    this.due[i] = due;
    this.held[i] = h;
  }

  pop(): Held {
    const top = this.held[0]!;
    const due = this.due.pop()!;
    const h = this.held.pop()!;
    const n = this.due.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && this.due[c + 1]! < this.due[c]!) c++;
        if (this.due[c]! >= due) break;
        this.due[i] = this.due[c]!;
        this.held[i] = this.held[c]!;
        i = c;
      }
      this.due[i] = due;
      this.held[i] = h;
    }
    return top;
  }
}

/**
 * Every CPU frees its objects that are due (lifetimes count the freeing CPU's allocations and
 * frees) and otherwise allocates from the table, weighted by its allocation counts; a long-lived
 * object is freed on another CPU with the entry's remote fraction.
 */
function kernelMix(g: GenState): Setup {
  const zones: ZoneDef[] = [];
  const zoneOf: number[] = [];
  const weights: number[] = [];
  let total = 0;
  for (const [kind, name, size, allocs] of KERNEL_MIX) {
    if (kind === 'zone') {
      zones.push({ name, size, flags: KERNEL_MIX_RECLAIM.has(name) ? ['reclaim'] : NO_FLAGS });
      zoneOf.push(zones.length);
    } else {
      zoneOf.push(kind === 'malloc' ? 0 : -1);
    }
    total += allocs;
    weights.push(total);
  }
  const heaps: DueHeap[] = [];
  const steps: number[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) {
    heaps.push(new DueHeap());
    steps.push(0);
  }
  const shortP = 1 / SHORT_MEAN;

  function* thread(cpu: number): Program {
    const heap = heaps[cpu]!;
    for (;;) {
      if (heap.size > 0 && (heap.due[0]! <= steps[cpu]! || g.exhausted)) {
        steps[cpu]!++;
        yield freeEvent(heap.pop());
        continue;
      }
      if (!g.take()) {
        if (heap.size === 0) return;
        continue;
      }
      const x = g.rng() * total;
      let e = 0;
      while (weights[e]! <= x) e++;
      const [, , size, allocs, short, long, remote] = KERNEL_MIX[e]!;
      const h: Held = { obj: g.nextObj++, zone: zoneOf[e]!, size };
      let dest = cpu;
      let life: number;
      if (g.rng() * allocs < short) {
        life = Math.min(SHORT_MAX, 1 + Math.floor(Math.log(1 - g.rng()) / Math.log(1 - shortP)));
      } else {
        life = SHORT_MAX + 1 + Math.floor(-Math.log(1 - g.rng()) * (LONG_MEAN - SHORT_MAX - 1));
        if (g.cpus > 1 && long > 0 && g.rng() * long < remote) dest = (cpu + 1 + g.below(g.cpus - 1)) % g.cpus;
      }
      heaps[dest]!.push(steps[dest]! + life, h);
      steps[cpu]!++;
      yield allocEvent(h);
    }
  }
  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) programs.push(thread(cpu));
  return { zones, programs };
}

// ---------------------------------------------------------------------------------------------
// The workloads

// ---------------------------------------------------------------------------------------------
// vmem workloads (format version 2).

/** A page: the quantum of both vmem workloads' arenas, as of FreeBSD's kernel arenas. */
const VMEM_QUANTUM = 4096;
/** Where the arenas sit: FreeBSD amd64's kernel address space begins at VM_MIN_KERNEL_ADDRESS 0xfffffe0000000000. */
const VMEM_BASE = 0xfffffe0000000000n;

function arenaEvent(id: number, name: string, fields: Partial<VmemArgs>): TraceEvent {
  return { cpu: 0, op: OP_ARENA, zone: id, obj: 0, size: 0, name, flags: NO_FLAGS, line: 0, vmem: { ...newVmemArgs(), ...fields } };
}

function vallocEvent(arena: number, obj: number, bytes: number, vmem: VmemArgs | null): TraceEvent {
  return { cpu: 0, op: OP_VALLOC, zone: arena, obj, size: bytes, name: '', flags: NO_FLAGS, line: 0, vmem };
}

function vfreeEvent(obj: number): TraceEvent {
  return event(OP_VFREE, 0, obj, 0);
}

/** The measured allocations' vmem arguments: null for the default (firstfit, no restrictions). */
function strategyArgs(strat: VmemStrategy): VmemArgs | null {
  return strat === 'firstfit' ? null : { ...newVmemArgs(), strat };
}

/**
 * vmem-frag: fragmentation-phase sizes are 1 … 47 quanta, uniform; the measured phase's common
 * sizes 1, 2, 4, 8 quanta (what quantum caches of 8 quanta hold) and 56 quanta. Sizes of up to
 * 31 quanta have free lists of one size each (VMEM_OPTVALUE), where every strategy takes the
 * list's head; from 32 quanta the lists hold a power-of-two range, [32, 64) quanta here, where
 * the fragments of 32 … 47 quanta are too small for 56: best fit walks them all, instant fit
 * looks one list up ([64, 128)) and takes the head of the first list that is not empty.
 */
const FRAG_MAX_QUANTA = 48;
const FRAG_COMMON_QUANTA = [1, 2, 4, 8, 56];

/**
 * Bonwick & Adams 2001 §4.5: allocation latency as fragmentation grows. One arena, on CPU 0.
 * The fragmentation phase (the prelude, not counted) allocates 3F+1 segments of random sizes,
 * back to back from the arena's start, then frees F of the first 3F, chosen at random, no two
 * adjacent: the arena holds F free segments between busy ones, and the rest of its span. Its
 * allocations carry align=QUANTUM (a no-op restriction) so that they are vmem_xalloc, which
 * never goes through the quantum caches. The measured phase (`events`) is alloc/free pairs of
 * the common sizes, drawn at random, with the strategy given.
 */
function vmemFrag(g: GenState, o: Resolved): Setup {
  const q = VMEM_QUANTUM;
  const arenas = [arenaEvent(1, 'frag', { base: VMEM_BASE, span: 1n << 40n, quantum: BigInt(q), qcacheMax: BigInt(o.qcacheMax * q) })];
  const f = o.fragments;
  const n = 3 * f + 1;
  const prelude: TraceEvent[] = [];
  const ids: number[] = [];
  const xalloc: VmemArgs = { ...newVmemArgs(), strat: o.strategy, align: BigInt(q) };
  for (let i = 0; i < n; i++) {
    const obj = g.nextObj++;
    ids.push(obj);
    prelude.push(vallocEvent(1, obj, (1 + g.below(FRAG_MAX_QUANTA - 1)) * q, xalloc));
  }
  // F of the first 3F positions, no two adjacent: a sorted sample of F from 2F + 1 slots, the
  // i-th shifted by i (the last segment stays busy, apart from the rest of the span).
  const slots = 2 * f + 1;
  const pick = new Uint8Array(slots);
  for (let k = 0, need = f; k < slots && need > 0; k++) {
    if (g.below(slots - k) < need) {
      pick[k] = 1;
      need--;
    }
  }
  for (let k = 0, i = 0; k < slots; k++) {
    if (pick[k] === 1) {
      prelude.push(vfreeEvent(ids[k + i]!));
      i++;
    }
  }
  const measured = strategyArgs(o.strategy);
  const program = (function* (): Program {
    while (g.take()) {
      const obj = g.nextObj++;
      yield vallocEvent(1, obj, FRAG_COMMON_QUANTA[g.below(FRAG_COMMON_QUANTA.length)]! * q, measured);
      yield vfreeEvent(obj);
    }
  })();
  const programs: Program[] = [program];
  for (let cpu = 1; cpu < g.cpus; cpu++) programs.push(done());
  return { zones: [], programs, arenas, prelude };
}

/**
 * vmem-kva: whole-page sizes and weights (invented weights; the sizes are those of kmem_malloc's
 * and kva_alloc's callers on FreeBSD amd64): 1 page (single-page mappings, 40%); 2 pages (slabs
 * of UMA kegs of two pages, 15%); 4 pages (KSTACK_PAGES, a thread's kernel stack, 20%); 16 pages
 * (64 KiB: pipe buffers of BIG_PIPE_SIZE, malloc(9) just above its largest zone, 15%); 32 and 64
 * pages (large malloc(9), 7% and 3%).
 */
export const KVA_MIX: readonly (readonly [pages: number, weight: number])[] = [[1, 40], [2, 15], [4, 20], [16, 15], [32, 7], [64, 3]];
/** Objects a CPU keeps live on average: its frees pick among them at random. */
const KVA_LIVE = 64;
/** KVA_QUANTUM on amd64: the superpage size, 2 MiB (sys/vm/vm_kern.c), what kernel arenas import at a time. */
const KVA_QUANTUM = 2n << 20n;

/**
 * A kernel arena importing from a parent, as FreeBSD's per-domain kernel arena imports from
 * kernel_arena in KVA_QUANTUM units: `kernel_arena` holds 512 GiB at 0xfffffe0000000000;
 * `kmem` starts empty and imports. Every CPU allocates KVA_MIX sizes and frees a random one of
 * its own objects, keeping about KVA_LIVE live; at the end each frees what it holds.
 */
function vmemKva(g: GenState, o: Resolved): Setup {
  const q = BigInt(VMEM_QUANTUM);
  const arenas = [
    arenaEvent(1, 'kernel_arena', { base: VMEM_BASE, span: 512n << 30n, quantum: q }),
    arenaEvent(2, 'kmem', { quantum: q, qcacheMax: BigInt(o.qcacheMax) * q, parent: 1, importQuantum: KVA_QUANTUM }),
  ];
  const total = KVA_MIX.reduce((n, [, w]) => n + w, 0);
  const pages = (): number => {
    let r = g.below(total);
    for (const [p, w] of KVA_MIX) {
      if (r < w) return p;
      r -= w;
    }
    return 1;
  };
  const args = strategyArgs(o.strategy);
  function* cpuProgram(): Program {
    const live: number[] = [];
    for (;;) {
      if (live.length > 0 && (g.exhausted || g.below(2 * KVA_LIVE) < live.length)) {
        const i = g.below(live.length);
        const obj = live[i]!;
        live[i] = live[live.length - 1]!;
        live.pop();
        yield vfreeEvent(obj);
        continue;
      }
      if (!g.take()) {
        if (live.length === 0) return;
        continue;
      }
      const obj = g.nextObj++;
      yield vallocEvent(2, obj, pages() * VMEM_QUANTUM, args);
      live.push(obj);
    }
  }
  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) programs.push(cpuProgram());
  return { zones: [], programs, arenas };
}


// ---------------------------------------------------------------------------------------------
// Network workloads (format version 2): mbufs as a NIC driver and a socket take and free them.

/**
 * Simple IMIX: IP packets of 40 bytes (TCP ACKs), 576 bytes (the IPv4 minimum reassembly size)
 * and 1500 bytes (the Ethernet MTU) in the proportions 7:4:1, the classic trimodal Internet mix
 * of traffic generators (Agilent, Spirent, Ixia; 64-, 594- and 1518-byte frames with the Ethernet
 * header and FCS). Every 12 packets hold exactly this mix, in an order drawn at random (a
 * shuffled 12-packet pattern, as RFC 6985's IMIX Genome writes a mix as a repeated sequence of
 * sizes); the shuffling is ours.
 */
export const IMIX: readonly (readonly [bytes: number, weight: number])[] = [[40, 7], [576, 4], [1500, 1]];
/** Largest --size of the net workloads: an IP packet fits the 1500-byte Ethernet MTU. */
const NET_MAX_PACKET = 1500;
/** The Ethernet header the driver receives with the packet (FCS stripped), and the shortest frame without FCS (ETHER_MIN_LEN 64 - 4). */
const ETHER_HDR_LEN = 14;
const ETHER_MIN_FRAME = 60;
/**
 * FreeBSD iflib (sys/net/iflib.c; em(4) and igb(4) run on it from FreeBSD 12): a received frame
 * of at most MIN(IFLIB_RX_COPY_THRESH, MHLEN) = 128 bytes in one fragment is copied into a new
 * m_gethdr mbuf and the ring keeps its cluster; a longer one goes up the stack in the ring's
 * cluster, and the ring is refilled with m_getcl clusters at most IFLIB_MAX_RX_REFRESH (32) at a time.
 */
const RX_COPY_THRESH = 128;
const RX_REFRESH = 32;

/** Packet sizes in bytes: IMIX (`size` 0) or every packet `size` bytes. */
class PacketSizes {
  private readonly cycle: number[] = [];
  private next = 0;

  constructor(
    private readonly g: GenState,
    private readonly size: number,
  ) {
    for (const [bytes, weight] of IMIX) for (let i = 0; i < weight; i++) this.cycle.push(bytes);
    this.next = this.cycle.length;
  }

  draw(): number {
    if (this.size > 0) return this.size;
    const c = this.cycle;
    if (this.next === c.length) {
      for (let i = c.length - 1; i > 0; i--) {
        const j = this.g.below(i + 1);
        const t = c[i]!;
        c[i] = c[j]!;
        c[j] = t;
      }
      this.next = 0;
    }
    return c[this.next++]!;
  }
}

/** Whether the driver copies a packet of `bytes` into an m_gethdr mbuf (iflib's rx copy) rather than passing up its cluster. */
function rxCopies(bytes: number): boolean {
  return Math.max(ETHER_MIN_FRAME, bytes + ETHER_HDR_LEN) <= RX_COPY_THRESH;
}

function mbufEvent(obj: number, kind: MbufKind, chain = 0): TraceEvent {
  return { cpu: 0, op: OP_MBUF, zone: 0, obj, size: kind === 'chain' ? chain : 0, name: '', flags: NO_FLAGS, line: 0, mbuf: kind };
}

function mfreemEvent(obj: number): TraceEvent {
  return event(OP_MFREEM, 0, obj, 0);
}

/** A FIFO of object ids. */
class Fifo {
  private items: number[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(obj: number): void {
    this.items.push(obj);
  }

  shift(): number {
    const obj = this.items[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return obj;
  }
}

/**
 * A NIC's receive ring on one CPU: `ring` descriptors, each holding an m_getcl cluster, filled
 * when the driver attaches. receive() takes one packet: a short one is copied into a new
 * m_gethdr mbuf (the ring keeps its cluster), a longer one leaves in the cluster at the ring's
 * head, and after RX_REFRESH of those (or when the ring runs empty) the ring is refilled. Allocations come out of the budget;
 * once it is spent the ring is not refilled and drain() hands out its clusters, so that every
 * one is freed where the packets go.
 */
class RxRing {
  private readonly posted = new Fifo();
  private taken = 0;

  constructor(
    private readonly g: GenState,
    private readonly depth: number,
    private readonly sizes: PacketSizes,
  ) {}

  /** Fills the ring (the driver's attach); yields the m_getcl events. */
  *attach(): Generator<TraceEvent, void, undefined> {
    while (this.posted.length < this.depth && this.g.take()) yield* this.post();
  }

  /** Receives one packet: its object, after any allocation events; -1 when the budget is spent (and nothing was received). */
  *receive(): Generator<TraceEvent, number, undefined> {
    if (this.g.exhausted) return -1;
    if (rxCopies(this.sizes.draw())) {
      if (!this.g.take()) return -1;
      const obj = this.g.nextObj++;
      yield mbufEvent(obj, 'pkthdr');
      return obj;
    }
    if (this.posted.length === 0) return -1;
    const obj = this.posted.shift();
    if (++this.taken === RX_REFRESH || this.posted.length === 0) {
      for (; this.taken > 0 && this.g.take(); this.taken--) yield* this.post();
      this.taken = 0;
    }
    return obj;
  }

  /** The clusters left in the ring, once no more are allocated: received as the last packets. */
  drain(): number[] {
    const out: number[] = [];
    while (this.posted.length > 0) out.push(this.posted.shift());
    return out;
  }

  private *post(): Generator<TraceEvent, void, undefined> {
    const obj = this.g.nextObj++;
    this.posted.push(obj);
    yield mbufEvent(obj, 'cluster');
  }
}

/**
 * net-forward: pairs of CPUs (0, 1), (2, 3), ... forward packets. The even CPU runs the receive
 * ring (RxRing) and hands each packet to its odd partner, which transmits it and, after the
 * transmit completes, frees it with m_freem, `batch` completions at a time (iflib and em(4)/igb(4)
 * reclaim finished transmit descriptors in passes, not one by one): every free is cross-CPU. An
 * odd CPU out idles.
 */
function netForward(g: GenState, o: Resolved): Setup {
  const sizes = new PacketSizes(g, o.size);
  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) programs.push(done());
  for (let rx = 0; rx + 1 < g.cpus; rx += 2) {
    const queue = new Fifo();
    let rxDone = false;
    const ring = new RxRing(g, o.ring, sizes);
    programs[rx] = (function* (): Program {
      yield* ring.attach();
      for (;;) {
        const obj = yield* ring.receive();
        if (obj < 0) break;
        queue.push(obj);
        g.notify();
      }
      for (const obj of ring.drain()) queue.push(obj);
      rxDone = true;
      g.notify();
    })();
    programs[rx + 1] = (function* (): Program {
      for (;;) {
        if (queue.length >= o.batch || (rxDone && queue.length > 0)) {
          for (let n = Math.min(o.batch, queue.length); n > 0; n--) yield mfreemEvent(queue.shift());
        } else if (rxDone) {
          return;
        } else {
          yield null;
        }
      }
    })();
  }
  return { zones: [], programs };
}

/**
 * net-local: every CPU receives on its own ring (RxRing) and consumes each packet at once on the
 * same CPU (delivered to a local socket or dropped by a filter, m_freem in the receive path).
 */
function netLocal(g: GenState, o: Resolved): Setup {
  const sizes = new PacketSizes(g, o.size);
  const programs: Program[] = [];
  for (let cpu = 0; cpu < g.cpus; cpu++) {
    const ring = new RxRing(g, o.ring, sizes);
    programs.push((function* (): Program {
      yield* ring.attach();
      for (;;) {
        const obj = yield* ring.receive();
        if (obj < 0) break;
        yield mfreemEvent(obj);
      }
      for (const obj of ring.drain()) yield mfreemEvent(obj);
    })());
  }
  return { zones: [], programs };
}

/**
 * net-sockbuf: pairs of CPUs (0, 1), (2, 3), ...: the even CPU writes to a stream socket, each
 * write of S bytes (IMIX, or --size) a chain:N of N = ceil(S / MLEN) plain mbufs appended to the
 * socket buffer; the odd CPU reads once `batch` writes are queued (the buffer's high-water mark:
 * the writer sleeps in sbwait until it drains) and frees everything it read in bulk, as sbdrop
 * does, under the socket buffer's lock: the writer's next sbappend waits for it. An odd CPU out
 * (and a single CPU) writes and reads its own socket.
 */
function netSockbuf(g: GenState, o: Resolved): Setup {
  const sizes = new PacketSizes(g, o.size);
  const programs: Program[] = [];
  const write = (sb: Fifo): TraceEvent => {
    const obj = g.nextObj++;
    sb.push(obj);
    return mbufEvent(obj, 'chain', Math.ceil(sizes.draw() / MLEN));
  };
  function* read(sb: Fifo): Generator<TraceEvent, void, undefined> {
    while (sb.length > 0) yield mfreemEvent(sb.shift());
  }
  for (let w = 0; w < g.cpus; w += 2) {
    const sb = new Fifo();
    if (w + 1 === g.cpus) {
      programs.push((function* (): Program {
        for (;;) {
          while (sb.length < o.batch && g.take()) yield write(sb);
          if (sb.length === 0) return;
          yield* read(sb);
        }
      })());
      break;
    }
    let writerDone = false;
    let reading = false;
    programs.push((function* (): Program {
      for (;;) {
        if (sb.length >= o.batch || reading) {
          yield null;
          continue;
        }
        if (!g.take()) break;
        const ev = write(sb);
        g.notify();
        yield ev;
      }
      writerDone = true;
      g.notify();
    })());
    programs.push((function* (): Program {
      for (;;) {
        if (sb.length >= o.batch || (writerDone && sb.length > 0)) {
          reading = true;
          yield* read(sb);
          reading = false;
          g.notify();
        } else if (writerDone) {
          return;
        } else {
          yield null;
        }
      }
    })());
  }
  return { zones: [], programs };
}

type Resolved = Required<GenOptions>;

interface Workload extends WorkloadInfo {
  defaults: Partial<GenOptions>;
  start(g: GenState, o: Resolved): Setup;
}

const SLAB_OPTIONS: readonly OptionName[] = ['size', 'count', 'api', 'think'];
const SLAB_SOURCE = 'Linux slab_test module (C. Lameter, 2009), the SLUB benchmark';
/** slab_test's TEST_COUNT. */
const SLAB_DEFAULTS: Partial<GenOptions> = { size: 0, count: 10000, api: 'zone' };

const workloadDefs: readonly Workload[] = [
  {
    name: 'slab-bulk',
    description: 'CPU 0 alone: count allocations then their frees, sizes 8..4096 in turn (test 1)',
    source: SLAB_SOURCE,
    options: SLAB_OPTIONS,
    minCpus: 1,
    version: 1,
    defaults: SLAB_DEFAULTS,
    start: slabBulk,
  },
  {
    name: 'slab-pairs',
    description: 'CPU 0 alone: count allocations each freed at once, sizes 8..4096 in turn (test 2)',
    source: SLAB_SOURCE,
    options: SLAB_OPTIONS,
    minCpus: 1,
    version: 1,
    defaults: SLAB_DEFAULTS,
    start: slabPairs,
  },
  {
    name: 'slab-concurrent-bulk',
    description: 'every CPU allocates count, barrier, every CPU frees its own (N*alloc N*free)',
    source: SLAB_SOURCE,
    options: SLAB_OPTIONS,
    minCpus: 1,
    version: 1,
    defaults: SLAB_DEFAULTS,
    start: slabConcurrentBulk,
  },
  {
    name: 'slab-concurrent-pairs',
    description: 'every CPU allocates and frees count objects in pairs (N*(alloc free)); alias pairs',
    source: SLAB_SOURCE,
    options: SLAB_OPTIONS,
    minCpus: 1,
    version: 1,
    defaults: SLAB_DEFAULTS,
    start: slabConcurrentPairs,
  },
  {
    name: 'slab-remote',
    description: 'CPUs 1..N-1 allocate count each, barrier, CPU 0 frees them all (remote free)',
    source: SLAB_SOURCE,
    options: SLAB_OPTIONS,
    minCpus: 2,
    version: 1,
    defaults: SLAB_DEFAULTS,
    start: slabRemote,
  },
  {
    name: 'slab-producer',
    description: 'CPU 0 allocates count objects per other CPU, which free them as they arrive (1 alloc N free)',
    source: SLAB_SOURCE,
    options: SLAB_OPTIONS,
    minCpus: 2,
    version: 1,
    defaults: SLAB_DEFAULTS,
    start: slabProducer,
  },
  {
    name: 'larson',
    description: 'each CPU replaces random ones of its chunks objects with random sizes; objects pass to the next CPU',
    source: 'Larson & Krishnan, ISMM 1998 (larson in Hoard and mimalloc-bench)',
    options: ['minSize', 'maxSize', 'chunks', 'rounds', 'api', 'think'],
    minCpus: 1,
    version: 1,
    defaults: { minSize: 8, maxSize: 1000, chunks: 1000, rounds: 1, api: 'malloc' },
    start: larson,
  },
  {
    name: 'xmalloc',
    description: 'odd CPUs fill batches of objects and hand them over a shared stack to even CPUs, which free them',
    source: 'xmalloc-test, Lever & Boreham, USENIX 2000 (mimalloc-bench)',
    options: ['size', 'batch', 'api', 'think'],
    minCpus: 1,
    version: 1,
    defaults: { size: 1024, batch: 4096, api: 'malloc' },
    start: xmalloc,
  },
  {
    name: 'cache-scratch',
    description: 'CPU 0 allocates one small object per CPU; each frees its own, then allocates, writes, frees (passive false sharing)',
    source: 'Hoard cache-scratch, Berger et al., ASPLOS 2000',
    options: ['size', 'writes', 'api', 'think'],
    minCpus: 1,
    version: 1,
    defaults: { size: 8, writes: 1000, api: 'malloc' },
    start: cacheScratch,
  },
  {
    name: 'cache-thrash',
    description: 'every CPU allocates a small object, writes it, frees it, in a loop (active false sharing)',
    source: 'Hoard cache-thrash, Berger et al., ASPLOS 2000',
    options: ['size', 'writes', 'api', 'think'],
    minCpus: 1,
    version: 1,
    defaults: { size: 8, writes: 1000, api: 'malloc' },
    start: cacheThrash,
  },
  {
    name: 'kernel-mix',
    description: '35 caches, kmalloc sizes and pages with the frequencies and short/long lifetimes of a Linux capture',
    source: 'linux-6.18-kmem-ftrace-sample.txt (table KERNEL_MIX in traces/gen.ts)',
    options: ['think'],
    minCpus: 1,
    version: 1,
    defaults: {},
    start: (g) => kernelMix(g),
  },
  {
    name: 'vmem-frag',
    description: 'CPU 0: one arena fragmented into --fragments free segments, then alloc/free pairs of common sizes (events counts the pairs only)',
    source: 'Bonwick & Adams, Magazines and Vmem, USENIX 2001, §4.5 (allocation latency vs fragmentation)',
    options: ['fragments', 'strategy', 'qcacheMax'],
    minCpus: 1,
    version: 2,
    defaults: { fragments: 1024, strategy: 'firstfit', qcacheMax: 0 },
    start: vmemFrag,
  },
  {
    name: 'vmem-kva',
    description: 'every CPU allocates and frees whole-page KVA from a kernel arena that imports 2 MiB spans from kernel_arena',
    source: "FreeBSD's kernel arenas importing from kernel_arena (sys/vm/vm_kern.c); sizes and weights in KVA_MIX, traces/gen.ts",
    options: ['strategy', 'qcacheMax', 'think'],
    minCpus: 1,
    version: 2,
    defaults: { strategy: 'firstfit', qcacheMax: 0 },
    start: vmemKva,
  },

  {
    name: 'net-forward',
    description: 'CPU pairs forward packets: the even CPU receives (m_getcl ring refills, m_gethdr copies of short packets), the odd one transmits and frees them in batches',
    source: 'FreeBSD iflib rx refill and rx copy (sys/net/iflib.c, em(4)/igb(4)); Simple IMIX 7:4:1 packet sizes (table IMIX in traces/gen.ts)',
    options: ['size', 'ring', 'batch', 'think'],
    minCpus: 2,
    version: 2,
    defaults: { size: 0, ring: 1024, batch: 32 },
    start: netForward,
  },
  {
    name: 'net-local',
    description: 'every CPU receives packets on its own ring and frees each at once on the same CPU (local delivery or drop)',
    source: 'FreeBSD iflib rx refill and rx copy (sys/net/iflib.c, em(4)/igb(4)); Simple IMIX 7:4:1 packet sizes (table IMIX in traces/gen.ts)',
    options: ['size', 'ring', 'think'],
    minCpus: 1,
    version: 2,
    defaults: { size: 0, ring: 1024 },
    start: netLocal,
  },
  {
    name: 'net-sockbuf',
    description: 'CPU pairs: the even CPU writes mbuf chains (ceil(size/MLEN) mbufs) to a socket buffer, the odd one reads and frees batch of them at once',
    source: 'FreeBSD sosend/sbappend and soreceive/sbdrop (sys/kern/uipc_socket.c, uipc_sockbuf.c); Simple IMIX 7:4:1 write sizes (table IMIX in traces/gen.ts)',
    options: ['size', 'batch', 'think'],
    minCpus: 1,
    version: 2,
    defaults: { size: 0, batch: 16 },
    start: netSockbuf,
  },
];

const aliases: Readonly<Record<string, string>> = { pairs: 'slab-concurrent-pairs' };

/** The workloads, in the order `kmemu trace gen --list` prints them. */
export const workloads: readonly WorkloadInfo[] = workloadDefs.map(({ name, description, source, options, minCpus, version }) => ({
  name,
  description,
  source,
  options,
  minCpus,
  version,
}));

export const workloadAliases = aliases;

function findWorkload(name: string): Workload {
  const w = workloadDefs.find((d) => d.name === (aliases[name] ?? name));
  if (!w) {
    throw new UserError(`unknown workload ${JSON.stringify(name)}: expected one of ${[...workloadDefs.map((d) => d.name), ...Object.keys(aliases)].join(', ')}`);
  }
  return w;
}

const BASE_DEFAULTS: Omit<Resolved, 'cpus' | 'events' | 'seed'> = {
  size: 0,
  count: 10000,
  api: 'malloc',
  writes: 1000,
  chunks: 1000,
  rounds: 1,
  minSize: 8,
  maxSize: 1000,
  batch: 4096,
  ring: 1024,
  think: 0,
  fragments: 1024,
  strategy: 'firstfit',
  qcacheMax: 0,
};

/** The command-line spelling of an option: minSize is --min-size. */
export function optionFlag(name: string): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UserError(`option ${optionFlag(name)}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
}

/** The options with the workload's defaults filled in, checked; throws a UserError saying what is wrong. */
export function resolveGenOptions(workload: string, options: GenOptions): Resolved & { workload: string } {
  const w = findWorkload(workload);
  for (const key of Object.keys(options) as (keyof GenOptions)[]) {
    if (key === 'cpus' || key === 'events' || key === 'seed' || options[key] === undefined) continue;
    if (!w.options.includes(key)) throw new UserError(`option ${optionFlag(key)} does not apply to workload ${w.name} (it takes: ${w.options.map(optionFlag).join(' ') || 'none'})`);
  }
  const o: Resolved = { ...BASE_DEFAULTS, ...w.defaults, ...dropUndefined(options) } as Resolved;
  checkInt('cpus', o.cpus, w.minCpus, MAX_CPUS);
  checkInt('events', o.events, 0, Number.MAX_SAFE_INTEGER);
  const limits: Record<Exclude<OptionName, 'api' | 'strategy'>, readonly [number, number]> = {
    size: w.name.startsWith('net-') ? [0, NET_MAX_PACKET] : [w.name.startsWith('slab-') || w.name === 'xmalloc' ? 0 : 1, 1 << 30],
    count: [1, 1 << 30],
    writes: [0, 1 << 30],
    chunks: [1, 1 << 24],
    rounds: [1, 1 << 30],
    minSize: [1, 1 << 30],
    maxSize: [o.minSize + 1, 1 << 30],
    batch: [1, 1 << 24],
    ring: [1, 4096],
    think: [0, 1 << 30],
    fragments: [0, 1 << 20],
    qcacheMax: [0, 16],
  };
  for (const key of w.options) if (key !== 'api' && key !== 'strategy') checkInt(key, o[key], ...limits[key]);
  if (o.api !== 'zone' && o.api !== 'malloc') throw new UserError(`option --api: expected zone or malloc, got ${JSON.stringify(o.api)}`);
  if (!(vmemStrategies as readonly string[]).includes(o.strategy)) {
    throw new UserError(`option --strategy: expected ${vmemStrategies.join(', ')}, got ${JSON.stringify(o.strategy)}`);
  }
  return { ...o, seed: String(o.seed), workload: w.name };
}

function dropUndefined(options: GenOptions): Partial<GenOptions> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out as Partial<GenOptions>;
}

/**
 * The events of `workload`: its zones first (CPU 0), then allocations, frees and think time of
 * every CPU, interleaved in simulated time; exactly `events` allocations and frees (fewer only
 * if the workload cannot go on). Each event is a fresh object. Throws a UserError for an unknown
 * workload or a bad option.
 */
export function generate(workload: string, options: GenOptions): Generator<TraceEvent, void, undefined> {
  const o = resolveGenOptions(workload, options);
  const w = findWorkload(o.workload);
  const g = new GenState(o.cpus, o.events, `${o.workload}:${o.seed}`);
  return schedule(g, w.start(g, o), o.events, o.think);
}

/** The header a generated trace carries: its source command and CPU count. */
export function generatedHeader(workload: string, options: GenOptions): TraceHeader {
  const o = resolveGenOptions(workload, options);
  const w = findWorkload(o.workload);
  const parts = [`kmemu trace gen ${o.workload}`, `--cpus ${o.cpus}`, `--events ${o.events}`, `--seed ${o.seed}`];
  for (const key of w.options) parts.push(`${optionFlag(key)} ${String(o[key])}`);
  return { meta: { source: parts.join(' '), cpus: String(o.cpus) }, cpus: o.cpus };
}

/** The trace format version `workload` writes (2 for the vmem and net workloads). */
export function generatedVersion(workload: string): number {
  return findWorkload(workload).version;
}

/** The generated events in batches, as the replayer reads them (EventSource). */
export function generatedSource(workload: string, options: GenOptions, batch = 4096): EventSource {
  const events = generate(workload, options);
  return {
    next(): Promise<readonly TraceEvent[] | null> {
      const out: TraceEvent[] = [];
      for (let r = events.next(); !r.done; r = events.next()) {
        out.push(r.value);
        if (out.length === batch) break;
      }
      return Promise.resolve(out.length > 0 ? out : null);
    },
  };
}
