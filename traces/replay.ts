// The replay driver: runs a trace's events through a kernel on the emulated machine, one
// coroutine per CPU, and measures what each operation cost.
//
// - A trace recorded on more CPUs than the machine has is folded: trace CPU c runs on machine
//   CPU c mod N, its events in their order among that CPU's.
// - Each CPU runs its events in order. A free (or a use) of an object another CPU allocates
//   waits, idle, until that allocation has happened in simulated time; the same for a zone
//   another CPU creates. A free is matched, as the trace is read, with the allocation before it
//   in file order (its incarnation: an id may be allocated again after its free, on any CPU),
//   and waits for that one: objects and waits are keyed by the allocation's event number.
// - An allocation that needs more pages than were free after boot fails at once; one that
//   sleeps in vm_wait while every other CPU sleeps too (nothing will free memory) ends the
//   replay with the trace line, the object and the machine's memory.
// - After an allocation the consumer writes the object's first `touch` cache lines, and reads
//   its first line before freeing it (path label `consumer.touch`), so that the cache warmth of
//   LIFO per-CPU caching shows. Think time advances the CPU's clock (`think`).
// - Every operation is timed on its CPU's clock, from when what was issued before it retires to
//   when its own last access does (cpu.retired: load misses still in flight at its end count in it; stores drain later),
//   and filed under the path it completed on
//   (cpu.completeOp) and its zone; every counter it causes goes to its zone's counter context.
// - vmem (format version 2): the first `arena` runs vmem_startup unless the kernel has; `v` is
//   vmem_alloc (vmem_xalloc with restrictions) M_NOWAIT, `V` the matching free, each timed and
//   filed under its arena's context `arena:NAME`, and also apart by op (the report's `vmem`). A
//   failed `v` (ENOMEM) is counted, and the `V` of its object skipped and counted. vmem hands out
//   address ranges, not memory: they are never touched.
// - The trace is read as the CPUs need it: when the CPU whose turn it is has no event queued,
//   the machine pauses, more of the trace is read, and the run resumes.
// - Warm-up (`warmup` N > 0): each CPU's first N events (every kind, counted as the CPU takes
//   them off its queue) run as they would without it; when a CPU has finished its N-th event its
//   measured window starts: a copy of its counter table and its clock. The report is of the
//   windows: each CPU's counters are end minus its copy, and only operations, events and think
//   time of events after a CPU's N-th are recorded. A CPU with N events or fewer contributes
//   nothing. The makespan is the longest of the CPUs' windows (see the end of replay()). With
//   N = 0 every CPU's window starts at the end of boot, as without warm-up.

import { type Cpu, CounterSnapshot, K, LABEL_CAP, Machine, type MachineConfig, MachineDeadlock, type Task, UserError, YIELD_INPUT } from '../emu/index.js';
import {
  M_BESTFIT, M_DONTWAIT, M_FIRSTFIT, M_NEXTFIT, M_NOWAIT, M_PKTHDR, M_WAITOK, MT_DATA, PAGE_SIZE, VMEM_ADDR_MAX, VMEM_ADDR_MIN, boot, m_freem,
  m_get, m_getchain, m_getcl, m_gethdr, mbuf, mbufStats, mbuf_init, mbuf_started, pkthdr as pkthdr_t, type UmaZoneOptions, sysctl, sysctlSet, vm_waiting, vmem_alloc,
  userret, vmem_create, vmem_free, vmem_started, vmem_startup, vmem_xalloc, vmem_xfree, vmemImportFrom, type Kernel, type Tunables,
} from '../kernel/index.js';
import { type AllocatorOptions, type ReplayAllocator, UmaAllocator, VmZoneAllocator } from './allocators.js';
import {
  OP_ALLOC, OP_ARENA, OP_FREE, OP_MALLOC, OP_MBUF, OP_MFREE, OP_MFREEM, OP_PALLOC, OP_PFREE, OP_THINK, OP_VALLOC, OP_VFREE, OP_ZONE, type MbufKind,
  type TraceEvent, type VmemArgs, type VmemStrategy, type ZoneFlag, mbufKinds, newEvent,
} from './format.js';
import { Histogram } from './histogram.js';
import { buildReport, type ReplayReport } from './report.js';
import { checkpointDue, freshMachine, newCheckpointState, restoreOnto, skipEvents, type ReplayCheckpointing } from './checkpoint.js';
import { type AllocatorRun, KMEMU_VERSION, machineRun } from './run.js';

/** Where events come from: batches in trace order; null at the end. */
export interface EventSource {
  next(): Promise<readonly TraceEvent[] | null>;
  /** The sha256 (hex) of the source's bytes, once all are read (TraceReader has it). */
  readonly sha256?: string | null;
  /** The input's name for `NAME:LINE: ` in messages (a TraceReader's file). */
  readonly name?: string;
}

export type AllocatorName = 'vmzone' | 'uma';

export interface ReplayOptions {
  machine: MachineConfig;
  allocator?: AllocatorName;
  /** Per-CPU caching on (default) or off. */
  pcpu?: boolean;
  /** Cache-line-aligned per-CPU state instead of upstream's layout (vm_zone and UMA). */
  aligned?: boolean;
  /** UMA: the per-CPU cache under a critical section (default) or a per-CPU mutex (2002). */
  cacheLock?: 'critical' | 'mutex';
  /** UMA: items per bucket (a what-if) instead of upstream's choice. */
  bucketSize?: number;
  /** UMA: the 2013 rule (grow buckets only when the zone lock is contended, shrink on reclaim) instead of 2005's growth on every fill. */
  autoTune?: boolean;
  /** UMA: an INVARIANTS kernel (uma_dbg checks on every operation). */
  invariants?: boolean;
  /** Cache lines the consumer writes after each allocation (default 1). */
  touch?: number;
  /** Events each CPU runs before its measured window starts (default 0: everything is measured). */
  warmup?: number;
  /** Called now and then with the number of events replayed so far. */
  onProgress?: (events: number) => void;
  /** Extra allocators (UMA registers itself here when it exists). */
  allocators?: Partial<Record<AllocatorName, (k: Kernel, o: AllocatorOptions) => ReplayAllocator>>;
  /** A name for the trace in the report. */
  traceName?: string;
  /** The machine as the user gave it (a preset name or a file) for the report's run; default the config's name. */
  machineGiven?: string;
  /** Writable sysctls to set after boot (a what-if knob such as vm.zone_burst). */
  sysctl?: Record<string, number>;
  /** Boot tunables (kernel/kern/kern_environment.ts), e.g. vm.kmem_backend: vmem. */
  tunables?: Tunables;
  /** mbufs (`b` events): m_getcl through the packet zone (default) or, false, an mbuf and a cluster from their own zones. */
  packetZone?: boolean;
  /** Called with the kernel once the trace is replayed (for views of its statistics). */
  onFinish?: (k: Kernel) => void;
  /** A driver that looks at the machine between events and may pause the replay (kmemu view). */
  control?: ReplayControl;
  /** Start from this booted machine (a boot image, traces/checkpoint.ts) instead of booting one of `machine` and `tunables`. */
  booted?: { machine: Machine; kernel: Kernel };
  /** Resumable checkpoints every so many events, and a checkpoint to resume from (traces/checkpoint.ts). */
  checkpoint?: ReplayCheckpointing;
}

/**
 * What a viewer gets from a replay (tools/view/session.ts). Pausing changes nothing: the CPU
 * that paused goes on first when the replay resumes (machine.resume's `proceed`), as if it
 * had not stopped, so a paused replay's figures are those of one that never paused.
 */
export interface ReplayControl {
  /** Once, after boot and the --sysctl settings, before the first event; the replay waits for a returned promise. */
  onBoot?(m: Machine, k: Kernel): void | Promise<void>;
  /** Before and after each allocator operation an event times (`end` false, then true). */
  onOp?(cpu: Cpu, end: boolean): void;
  /** A zone a `z` event created: the trace's zone id, its name and the allocator's handle. */
  onZone?(id: number, name: string, handle: unknown): void;
  /** When `cpu` takes its next event off its queue, before it runs (its clock is the event's start). */
  beforeEvent?(cpu: Cpu, ev: TraceEvent): void;
  /**
   * When `cpu` has finished an event (userret included): the allocator operation's path label
   * (-1 when the event timed none: think, zone creation, a skipped free) and its cycles.
   * Returns true to pause the replay there.
   */
  afterEvent(cpu: Cpu, ev: TraceEvent, opLabel: number, opCycles: number): boolean;
  /** Awaited when afterEvent asked for a pause; the replay goes on when it resolves. */
  paused(): Promise<void>;
}

interface LiveObject {
  va: number;
  kind: number; // OP_ALLOC, OP_MALLOC, OP_PALLOC, OP_VALLOC or OP_MBUF
  zone: number; // the zone, or the arena (v)
  size: number;
  pages: number[] | undefined;
  time: number; // simulated time the allocation completed
  /** v: the segment's address (64-bit), whether vmem_xalloc gave it (else vmem_alloc), and whether it failed. */
  addr?: bigint;
  xalloc?: boolean;
  failed?: boolean;
}

const STRATEGY: Readonly<Record<VmemStrategy, number>> = { firstfit: M_FIRSTFIT, bestfit: M_BESTFIT, nextfit: M_NEXTFIT };

/** Per (counter context, path label): the latencies of the operations that ended there. */
export class OpTable {
  readonly byKey = new Map<number, { context: string; path: string; hist: Histogram }>();

  constructor(private readonly machine: Machine) {}

  add(context: number, label: number, cycles: number): void {
    const key = context * LABEL_CAP + label;
    let e = this.byKey.get(key);
    if (e === undefined) {
      e = { context: this.machine.contexts.names[context]!, path: this.machine.labels.names[label]!, hist: new Histogram() };
      this.byKey.set(key, e);
    }
    e.hist.add(cycles);
  }
}

/**
 * A CPU's queue of events not yet replayed, in flat typed arrays (no object per event); the
 * name and flags of zone events go to a side table.
 */
class EventQueue {
  private op = new Uint8Array(1024);
  private zone = new Float64Array(1024);
  private obj = new Float64Array(1024);
  private size = new Float64Array(1024);
  private line = new Float64Array(1024);
  private key = new Float64Array(1024);
  /** b: 1 + the index of its kind in mbufKinds (0: not a b event); chain:N keeps N in size. */
  private mbuf = new Uint8Array(1024);
  private readonly zoneEvents = new Map<number, { name: string; flags: ZoneFlag[] }>();
  private readonly vmemArgs = new Map<number, { name: string; vmem: VmemArgs }>();
  private head = 0;
  private tail = 0;
  private serial = 0;
  private headSerial = 0;

  get empty(): boolean {
    return this.head === this.tail;
  }

  /** Queues `ev`; `key` is the incarnation of its object (see replay()). */
  push(ev: TraceEvent, key: number): void {
    if (this.tail === this.op.length) this.grow();
    const i = this.tail++;
    this.op[i] = ev.op;
    this.zone[i] = ev.zone;
    this.obj[i] = ev.obj;
    this.size[i] = ev.size;
    this.line[i] = ev.line;
    this.key[i] = key;
    this.mbuf[i] = ev.op === OP_MBUF ? 1 + mbufKinds.indexOf(ev.mbuf ?? 'mbuf') : 0;
    if (ev.op === OP_ZONE) this.zoneEvents.set(this.serial, { name: ev.name, flags: ev.flags.slice() });
    else if (ev.vmem !== undefined && ev.vmem !== null) this.vmemArgs.set(this.serial, { name: ev.name, vmem: { ...ev.vmem } });
    this.serial++;
  }

  /** Moves the next event into `ev` (a scratch event of the caller's); returns its key. */
  shift(ev: TraceEvent): number {
    const i = this.head++;
    ev.op = this.op[i]!;
    ev.zone = this.zone[i]!;
    ev.obj = this.obj[i]!;
    ev.size = this.size[i]!;
    ev.line = this.line[i]!;
    const key = this.key[i]!;
    const mbuf = this.mbuf[i]!;
    ev.mbuf = mbuf === 0 ? null : (mbufKinds[mbuf - 1] as MbufKind);
    if (ev.op === OP_ZONE) {
      const z = this.zoneEvents.get(this.headSerial)!;
      this.zoneEvents.delete(this.headSerial);
      ev.name = z.name;
      ev.flags = z.flags;
    }
    const v = this.vmemArgs.get(this.headSerial);
    if (v !== undefined) {
      this.vmemArgs.delete(this.headSerial);
      ev.name = v.name;
      ev.vmem = v.vmem;
    } else {
      ev.vmem = null;
    }
    this.headSerial++;
    if (this.head === this.tail) this.head = this.tail = 0;
    return key;
  }

  private grow(): void {
    // Compact first; double only when more than half is live.
    const live = this.tail - this.head;
    const cap = live * 2 > this.op.length ? this.op.length * 2 : this.op.length;
    const move = <T extends Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = cap === a.length ? a : make(cap);
      b.set(a.subarray(this.head, this.tail), 0);
      return b;
    };
    this.op = move(this.op, (n) => new Uint8Array(n));
    this.zone = move(this.zone, (n) => new Float64Array(n));
    this.obj = move(this.obj, (n) => new Float64Array(n));
    this.size = move(this.size, (n) => new Float64Array(n));
    this.line = move(this.line, (n) => new Float64Array(n));
    this.key = move(this.key, (n) => new Float64Array(n));
    this.mbuf = move(this.mbuf, (n) => new Uint8Array(n));
    this.head = 0;
    this.tail = live;
  }
}

export interface ReplayTotals {
  events: number;
  allocations: number;
  frees: number;
  thinkCycles: number;
}

/** What the warm-up part of a replay ran, left out of the report's window. */
export interface WarmupTotals extends ReplayTotals {
  /** Operations timed, and the sum of their latencies (cycles). */
  allocatorOps: number;
  allocatorCycles: number;
}

/** vmem's own figures of a replay (format version 2): its allocations and frees apart, by path. */
export interface VmemTotals {
  /** `v` events by the path they completed on. */
  allocs: OpTable;
  /** `V` events by path. */
  frees: OpTable;
  /** `v` that failed (ENOMEM). */
  failures: number;
  /** `V` of objects whose `v` failed, skipped. */
  skippedFrees: number;
  /** Arenas created. */
  arenas: number;
}

/** The mbuf figures of a replay (format version 2, `b`/`B`). */
export interface MbufTotals {
  /** `b` events by the path they completed on, and `B` events. */
  allocs: OpTable;
  frees: OpTable;
  /** `b` events that failed (M_DONTWAIT at the cluster limit, or no memory). */
  failures: number;
  /** `B` events of objects whose `b` failed, skipped. */
  skippedFrees: number;
  /** Whether m_getcl used the packet zone. */
  packetZone: boolean;
}

/** The allocator's effective options, defaults included, as the report's run states them. */
export function allocatorRun(name: AllocatorName, o: AllocatorOptions): AllocatorRun {
  const aligned = o.aligned ?? false;
  if (name === 'vmzone') return { name, pcpu: o.pcpu, aligned };
  return {
    name,
    pcpu: o.pcpu,
    aligned,
    bucketSize: o.bucketSize ?? null,
    cacheLock: o.cacheLock ?? 'critical',
    autoTune: o.autoTune ?? false,
    invariants: o.invariants ?? false,
  };
}

/** Replays the events of `source`; returns the report. */
export async function replay(source: EventSource, opts: ReplayOptions): Promise<ReplayReport> {
  const ck = opts.checkpoint;
  const fresh = ck?.from === undefined ? undefined : freshMachine(ck.from.header);
  const m = fresh?.machine ?? opts.booted?.machine ?? new Machine(opts.machine);
  const k = fresh?.kernel ?? opts.booted?.kernel ?? boot(m, opts.tunables ?? {});
  for (const [name, value] of fresh === undefined ? Object.entries(opts.sysctl ?? {}) : []) {
    if (!sysctlSet(k, name, value)) throw new UserError(`--sysctl ${name}=${value}: ${name} is not a writable sysctl of this kernel`);
  }
  const allocOpts: AllocatorOptions = { pcpu: opts.pcpu ?? true, aligned: opts.aligned ?? false };
  if (opts.cacheLock !== undefined) allocOpts.cacheLock = opts.cacheLock;
  if (opts.bucketSize !== undefined) allocOpts.bucketSize = opts.bucketSize;
  if (opts.autoTune !== undefined) allocOpts.autoTune = opts.autoTune;
  if (opts.invariants !== undefined) allocOpts.invariants = opts.invariants;
  const builtin = (opts.allocator ?? 'vmzone') === 'uma' ? (kk: Kernel, o: AllocatorOptions) => new UmaAllocator(kk, o) : (kk: Kernel, o: AllocatorOptions) => new VmZoneAllocator(kk, o);
  const make = opts.allocators?.[opts.allocator ?? 'vmzone'] ?? builtin;
  const allocator = make(k, allocOpts);
  const touch = opts.touch ?? 1;
  const warmup = opts.warmup ?? 0;
  if (!Number.isSafeInteger(warmup) || warmup < 0) throw new UserError(`replay: warmup: expected a number of events per CPU of 0 or more, got ${warmup}`);
  const ncpus = m.ncpus;
  const label = {
    touch: m.label('consumer.touch'),
    think: m.label('think'),
    wait: m.label('replay.wait'),
    zoneCreate: m.label('zone.create'),
    zoneAlloc: m.label('alloc'),
    zoneFree: m.label('free'),
    pageAlloc: k.label['vm_page.alloc'],
    pageFree: k.label['vm_page.free'],
    arenaCreate: m.label('arena.create'),
    vmemXalloc: k.label['vmem.xalloc'],
    vmemXfree: k.label['vmem.xfree'],
    mbufGet: k.label['mbuf.get'],
    mbufFree: k.label['mbuf.free'],
  };
  const queues: EventQueue[] = Array.from({ length: ncpus }, () => new EventQueue());
  /** Live objects by incarnation: the event number of their allocation in the trace. */
  const objects = new Map<number, LiveObject>();
  const zones = new Map<number, { handle: unknown; name: string; size: number; context: number; time: number }>();
  const arenas = new Map<number, { vm: number; name: string; context: number; time: number }>();
  /** vmem_startup done (key 0) or under way on some CPU (vmemStarting). */
  const vmemReady = new Map<number, { time: number }>();
  let vmemStarting = false;
  const vmemTotals: VmemTotals = { allocs: new OpTable(m), frees: new OpTable(m), failures: 0, skippedFrees: 0, arenas: 0 };
  const packetZone = opts.packetZone ?? true;
  const mbufTotals: MbufTotals = { allocs: new OpTable(m), frees: new OpTable(m), failures: 0, skippedFrees: 0, packetZone };
  /** mbuf_init done (key 0), or under way on some CPU (mbufStarting). */
  const mbufReady = new Map<number, { time: number }>();
  let mbufStarting = false;
  const mbufWaiters = new Map<number, number[]>();
  /** The counter context of mbuf events: the zones table's "mbufs" row. */
  let mbufContext = 0;
  /** Who sleeps waiting for an incarnation, or a zone id, to appear. */
  const objectWaiters = new Map<number, number[]>();
  const zoneWaiters = new Map<number, number[]>();
  const arenaWaiters = new Map<number, number[]>();
  const vmemWaiters = new Map<number, number[]>();
  /** The event each CPU runs (its scratch event), for messages. */
  const current: TraceEvent[] = Array.from({ length: ncpus }, newEvent);
  const ops = new OpTable(m);
  const totals: ReplayTotals = { events: 0, allocations: 0, frees: 0, thinkCycles: 0 };
  const warm: WarmupTotals = { events: 0, allocations: 0, frees: 0, thinkCycles: 0, allocatorOps: 0, allocatorCycles: 0 };
  /** Events each CPU has taken off its queue; its event is in the window once this passes `warmup`. */
  const taken = new Float64Array(ncpus);
  /** Each CPU's counter table and clock when its window started (with a warm-up). */
  const windowCtr: (Float64Array | undefined)[] = Array.from({ length: ncpus }, () => undefined);
  const windowClock = new Float64Array(ncpus);
  /** The path label and cycles of the operation each CPU's current event timed (-1: none yet). */
  const opLabel = new Int32Array(ncpus).fill(-1);
  const opCycles = new Float64Array(ncpus);
  const control = opts.control;
  /** The CPU that paused for the control (-1: none). */
  let pausing = -1;
  let eof = false;
  let traceCpus = 0;

  // Pages an allocation may take: what was free after boot, less what the VM keeps for itself
  // (VM_ALLOC_NORMAL stops at v_free_reserved). Whatever the trace frees, no allocation can
  // have more.
  let freeAfterBoot = sysctl(k, 'vm.stats.vm.v_free_count') ?? 0;
  let usablePages = freeAfterBoot - (sysctl(k, 'vm.stats.vm.v_free_reserved') ?? 0);

  if (fresh === undefined) m.barrier();
  let start = m.snapshot();

  function wakeWaiters(waiters: Map<number, number[]>, key: number, time: number): void {
    const list = waiters.get(key);
    if (list === undefined) return;
    waiters.delete(key);
    for (const c of list) m.wake(c, time);
  }

  /** Idles the CPU until `time` (when what it waited for appeared on another CPU). */
  function idleUntil(cpu: Cpu, time: number): void {
    if (time <= cpu.clock) return;
    cpu.enter(label.wait);
    const gap = time - cpu.clock;
    cpu.tick(gap);
    cpu.count(K.idleCycles, gap);
    cpu.leave();
  }

  /** Waits (idle) until `key` appears in `map` (an object incarnation allocated, a zone created). */
  function* waitFor<T extends { time: number }>(cpu: Cpu, map: Map<number, T>, waiters: Map<number, number[]>, key: number, what: string): Task<T> {
    for (;;) {
      const x = map.get(key);
      if (x !== undefined) {
        idleUntil(cpu, x.time);
        return x;
      }
      const list = waiters.get(key);
      if (list === undefined) waiters.set(key, [cpu.id]);
      else list.push(cpu.id);
      cpu.enter(label.wait);
      yield* cpu.sleep(what);
      cpu.leave();
    }
  }

  /** `NAME:LINE: ` for an event read from a file; `replay: ` otherwise. */
  function where(ev: TraceEvent): string {
    return ev.line > 0 && source.name !== undefined ? `${source.name}:${ev.line}: ` : 'replay: ';
  }

  function what(ev: TraceEvent): string {
    switch (ev.op) {
      case OP_MALLOC: return `object ${ev.obj}: malloc of ${ev.size} bytes`;
      case OP_PALLOC: return `object ${ev.obj}: allocation of 2^${ev.size} pages (${bytes(PAGE_SIZE * 2 ** ev.size)})`;
      case OP_ALLOC: {
        const z = zones.get(ev.zone);
        return `object ${ev.obj}: allocation from zone ${z?.name ?? ev.zone}${z === undefined ? '' : ` (${z.size}-byte items)`}`;
      }
      case OP_ZONE: return `creation of zone ${ev.name}`;
      case OP_ARENA: return `creation of arena ${ev.name}`;
      case OP_VALLOC: return `object ${ev.obj}: vmem allocation of ${ev.size} bytes from arena ${arenas.get(ev.zone)?.name ?? ev.zone}`;
      default: return `object ${ev.obj}: the free`;
    }
  }

  const ram = `the machine has ${bytes(opts.machine.memory.size)} of RAM (${opts.machine.name})`;

  /** An allocation bigger than all the memory an allocation may have: fails at once. */
  function impossible(ev: TraceEvent): never {
    throw new UserError(`${where(ev)}${what(ev)} cannot be satisfied: ${ram}, ${bytes(freeAfterBoot * PAGE_SIZE)} free after boot`);
  }

  /** Every CPU asleep and `cpu` in vm_wait: nothing will free the memory it waits for. */
  function outOfMemory(cpu: number): UserError {
    const ev = current[cpu]!;
    let held = 0;
    for (const o of objects.values()) if (o.kind !== OP_VALLOC && o.kind !== OP_MBUF) held += o.kind === OP_PALLOC ? PAGE_SIZE * 2 ** o.size : o.kind === OP_ALLOC ? zones.get(o.zone)!.size : o.size;
    const free = (sysctl(k, 'vm.stats.vm.v_free_count') ?? 0) * PAGE_SIZE;
    let n = 0;
    for (const o of objects.values()) if (o.kind !== OP_VALLOC && o.kind !== OP_MBUF) n++;
    return new UserError(
      `${where(ev)}${what(ev)} cannot be satisfied: ${ram}, ${bytes(free)} free and ${bytes(held)} in ${n} live object${n === 1 ? '' : 's'} of the trace, and no CPU will free any`,
    );
  }

  /** Why the machine stopped with every CPU asleep, as the user's error when it is theirs. */
  function diagnose(err: MachineDeadlock): Error {
    const asleep = err.waiting.map((w) => w.cpu);
    const oom = asleep.find((c) => vm_waiting(k, c));
    if (oom !== undefined) return outOfMemory(oom);
    const waiting = asleep.find((c) => current[c]!.op !== OP_THINK && err.waiting.find((w) => w.cpu === c)!.reason.startsWith('waiting for '));
    if (waiting !== undefined) {
      const ev = current[waiting]!;
      const thing = ev.op === OP_ALLOC ? `zone ${ev.zone}` : ev.op === OP_VALLOC ? `arena ${ev.zone}` : ev.op === OP_ARENA ? `arena ${ev.vmem?.parent ?? ''}` : `object ${ev.obj}`;
      const does = ev.op === OP_ALLOC || ev.op === OP_VALLOC || ev.op === OP_ARENA ? 'creates' : 'allocates';
      return new UserError(`${where(ev)}the trace ended with CPU ${waiting} still waiting for ${thing}, which no CPU ${does}`);
    }
    return err;
  }

  function* timed(cpu: Cpu, context: number, fallbackLabel: number, op: Task<unknown>, also?: OpTable): Task<unknown> {
    cpu.setContext(context);
    cpu.lastOpLabel = fallbackLabel;
    control?.onOp?.(cpu, false);
    const t0 = cpu.retired;
    const r = yield* op;
    const cycles = cpu.retired - t0;
    control?.onOp?.(cpu, true);
    opLabel[cpu.id] = cpu.lastOpLabel;
    opCycles[cpu.id] = cycles;
    if (taken[cpu.id]! > warmup) {
      ops.add(context, cpu.lastOpLabel, cycles);
      also?.add(context, cpu.lastOpLabel, cycles);
    } else {
      warm.allocatorOps++;
      warm.allocatorCycles += cycles;
    }
    return r;
  }

  /** vmem_startup, once, by the first CPU that creates an arena; the others wait for it. */
  function* vmemStart(cpu: Cpu): Task {
    if (vmemReady.has(0)) return;
    if (vmemStarting) {
      yield* waitFor(cpu, vmemReady, vmemWaiters, 0, 'waiting for vmem_startup');
      return;
    }
    vmemStarting = true;
    if (!vmem_started(k)) yield* vmem_startup(k, cpu);
    vmemReady.set(0, { time: cpu.clock });
    wakeWaiters(vmemWaiters, 0, cpu.clock);
  }

  /** mbuf_init (SYSINIT(mbuf) upstream), once, by the first CPU with an mbuf event; the others wait. */
  function* mbufStart(cpu: Cpu): Task {
    if (mbufReady.has(0)) return;
    if (mbufStarting) {
      yield* waitFor(cpu, mbufReady, mbufWaiters, 0, 'waiting for mbuf_init');
      return;
    }
    mbufStarting = true;
    mbufContext = m.context('mbufs');
    if (!mbuf_started(k)) {
      cpu.enter(label.zoneCreate);
      const zone: UmaZoneOptions = { pcpu: allocOpts.pcpu, aligned: allocOpts.aligned ?? false };
      if (allocOpts.cacheLock !== undefined) zone.cacheLock = allocOpts.cacheLock;
      if (allocOpts.bucketSize !== undefined) zone.bucketSize = allocOpts.bucketSize;
      if (allocOpts.autoTune !== undefined) zone.autoTune = allocOpts.autoTune;
      yield* mbuf_init(k, cpu, { packetZone, zone });
      cpu.leave();
    }
    mbufReady.set(0, { time: cpu.clock });
    wakeWaiters(mbufWaiters, 0, cpu.clock);
  }

  /**
   * What a driver does to an mbuf it got: sets m_len (and m_pkthdr.len) and writes the data
   * through m_data, the first `touch` lines of it (a received frame's headers: the cluster's
   * first line, or the mbuf's own data).
   */
  function touchMbuf(cpu: Cpu, mp: number, pkthdr: boolean, bytes: number): void {
    if (touch === 0) return;
    cpu.enter(label.touch);
    cpu.store32(mp + mbuf.m_len, 0);
    if (pkthdr) cpu.store32(mp + mbuf.m_pkthdr + pkthdr_t.len, 0);
    const data = cpu.loadPtr(mp + mbuf.m_data);
    const lines = Math.min(touch, Math.ceil(bytes / 64));
    for (let i = 0; i < lines; i++) cpu.store64(data + i * 64, i);
    cpu.leave();
  }

  /** Before the free: the transmitting side reads the frame's first line through m_data. */
  function touchMbufRead(cpu: Cpu, mp: number): void {
    if (touch === 0) return;
    cpu.enter(label.touch);
    cpu.load64(cpu.loadPtr(mp + mbuf.m_data));
    cpu.leave();
  }

  function touchWrite(cpu: Cpu, va: number, bytes: number): void {
    cpu.enter(label.touch);
    const lines = Math.min(touch, Math.ceil(bytes / 64));
    for (let i = 0; i < lines; i++) cpu.store64(va + i * 64, i);
    cpu.leave();
  }

  function touchRead(cpu: Cpu, va: number): void {
    if (touch === 0) return;
    cpu.enter(label.touch);
    cpu.load64(va);
    cpu.leave();
  }

  function* runEvent(cpu: Cpu, ev: TraceEvent, key: number): Task {
    const measured = taken[cpu.id]! > warmup;
    const t = measured ? totals : warm;
    t.events++;
    switch (ev.op) {
      case OP_ZONE: {
        cpu.setContext(m.context(ev.name));
        cpu.enter(label.zoneCreate);
        const handle = yield* allocator.createZone(cpu, ev.name, ev.size, ev.flags);
        cpu.leave();
        zones.set(ev.zone, { handle, name: ev.name, size: ev.size, context: m.context(ev.name), time: cpu.clock });
        control?.onZone?.(ev.zone, ev.name, handle);
        cpu.setContext(0);
        wakeWaiters(zoneWaiters, ev.zone, cpu.clock);
        return;
      }
      case OP_ALLOC: {
        const z = yield* waitFor(cpu, zones, zoneWaiters, ev.zone, `waiting for zone ${ev.zone}`);
        if (z.size > PAGE_SIZE && Math.ceil(z.size / PAGE_SIZE) > usablePages) impossible(ev);
        const va = (yield* timed(cpu, z.context, label.zoneAlloc, allocator.alloc(cpu, z.handle))) as number;
        if (va === 0) throw new UserError(`${where(ev)}${what(ev)} failed: the kernel is out of memory`);
        touchWrite(cpu, va, z.size);
        cpu.setContext(0);
        t.allocations++;
        objects.set(key, { va, kind: OP_ALLOC, zone: ev.zone, size: z.size, pages: undefined, time: cpu.clock });
        wakeWaiters(objectWaiters, key, cpu.clock);
        return;
      }
      case OP_MALLOC: {
        if (ev.size > PAGE_SIZE && Math.ceil(ev.size / PAGE_SIZE) > usablePages) impossible(ev);
        const ctx = m.context(allocator.mallocContext(ev.size));
        const va = (yield* timed(cpu, ctx, label.zoneAlloc, allocator.malloc(cpu, ev.size))) as number;
        if (va === 0) throw new UserError(`${where(ev)}${what(ev)} failed: the kernel is out of memory`);
        touchWrite(cpu, va, ev.size);
        cpu.setContext(0);
        t.allocations++;
        objects.set(key, { va, kind: OP_MALLOC, zone: -1, size: ev.size, pages: undefined, time: cpu.clock });
        wakeWaiters(objectWaiters, key, cpu.clock);
        return;
      }
      case OP_PALLOC: {
        if (2 ** ev.size > usablePages) impossible(ev);
        const ctx = m.context('pages');
        const r = (yield* timed(cpu, ctx, label.pageAlloc, allocator.pageAlloc(cpu, ev.size))) as { va: number; pages: number[] };
        if (r.va === 0) throw new UserError(`${where(ev)}${what(ev)} failed: the kernel is out of memory`);
        touchWrite(cpu, r.va, 4096 * 2 ** ev.size);
        cpu.setContext(0);
        t.allocations++;
        objects.set(key, { va: r.va, kind: OP_PALLOC, zone: -1, size: ev.size, pages: r.pages, time: cpu.clock });
        wakeWaiters(objectWaiters, key, cpu.clock);
        return;
      }
      case OP_FREE:
      case OP_MFREE:
      case OP_PFREE: {
        const o = yield* waitFor(cpu, objects, objectWaiters, key, `waiting for object ${ev.obj}`);
        objects.delete(key);
        let ctx: number;
        let task: Task;
        let fallback = label.zoneFree;
        if (o.kind === OP_ALLOC) {
          const z = zones.get(o.zone)!;
          ctx = z.context;
          task = allocator.free(cpu, z.handle, o.va);
        } else if (o.kind === OP_MALLOC) {
          ctx = m.context(allocator.mallocContext(o.size));
          task = allocator.mfree(cpu, o.va, o.size);
        } else {
          ctx = m.context('pages');
          task = allocator.pageFree(cpu, o.pages!);
          fallback = label.pageFree;
        }
        cpu.setContext(ctx);
        touchRead(cpu, o.va);
        yield* timed(cpu, ctx, fallback, task);
        cpu.setContext(0);
        t.frees++;
        return;
      }
      case OP_THINK:
        cpu.enter(label.think);
        cpu.compute(ev.size);
        cpu.leave();
        t.thinkCycles += ev.size;
        return;
      case OP_ARENA: {
        const a = ev.vmem!;
        const parent = a.parent < 0 ? undefined : yield* waitFor(cpu, arenas, arenaWaiters, a.parent, `waiting for arena ${a.parent}`);
        const context = m.context(`arena:${ev.name}`);
        cpu.setContext(context);
        cpu.enter(label.arenaCreate);
        yield* vmemStart(cpu);
        const vm = yield* vmem_create(k, cpu, ev.name, a.base, a.span, a.quantum, a.qcacheMax, M_WAITOK);
        if (vm === 0) throw new UserError(`${where(ev)}${what(ev)} failed: vmem_create returned NULL (its span could not be added)`);
        if (parent !== undefined) yield* vmemImportFrom(k, cpu, vm, parent.vm, a.importQuantum === 0n ? undefined : a.importQuantum);
        cpu.leave();
        cpu.setContext(0);
        vmemTotals.arenas++;
        arenas.set(ev.zone, { vm, name: ev.name, context, time: cpu.clock });
        wakeWaiters(arenaWaiters, ev.zone, cpu.clock);
        return;
      }
      case OP_VALLOC: {
        const ar = yield* waitFor(cpu, arenas, arenaWaiters, ev.zone, `waiting for arena ${ev.zone}`);
        const a = ev.vmem;
        const flags = M_NOWAIT | STRATEGY[a?.strat ?? 'firstfit'];
        const xalloc = a !== null && a !== undefined && (a.align !== 0n || a.phase !== 0n || a.nocross !== 0n);
        const size = BigInt(ev.size);
        const task = xalloc
          ? vmem_xalloc(k, cpu, ar.vm, size, a.align, a.phase, a.nocross, VMEM_ADDR_MIN, VMEM_ADDR_MAX, flags)
          : vmem_alloc(k, cpu, ar.vm, size, flags);
        const r = (yield* timed(cpu, ar.context, label.vmemXalloc, task, vmemTotals.allocs)) as { error: number; addr: bigint };
        cpu.setContext(0);
        const failed = r.error !== 0;
        if (!failed) t.allocations++;
        else if (measured) vmemTotals.failures++;
        objects.set(key, { va: 0, kind: OP_VALLOC, zone: ev.zone, size: ev.size, pages: undefined, time: cpu.clock, addr: r.addr, xalloc, failed });
        wakeWaiters(objectWaiters, key, cpu.clock);
        return;
      }
      case OP_VFREE: {
        const o = yield* waitFor(cpu, objects, objectWaiters, key, `waiting for object ${ev.obj}`);
        objects.delete(key);
        if (o.failed === true) {
          if (measured) vmemTotals.skippedFrees++;
          return;
        }
        const ar = arenas.get(o.zone)!;
        const size = BigInt(o.size);
        const task = o.xalloc === true ? vmem_xfree(k, cpu, ar.vm, o.addr!, size) : vmem_free(k, cpu, ar.vm, o.addr!, size);
        yield* timed(cpu, ar.context, label.vmemXfree, task, vmemTotals.frees);
        cpu.setContext(0);
        t.frees++;
        return;
      }
      case OP_MBUF: {
        yield* mbufStart(cpu);
        const kind = ev.mbuf ?? 'mbuf';
        const task = kind === 'mbuf' ? m_get(k, cpu, M_DONTWAIT, MT_DATA)
          : kind === 'pkthdr' ? m_gethdr(k, cpu, M_DONTWAIT, MT_DATA)
            : kind === 'cluster' ? m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR)
              : m_getchain(k, cpu, ev.size, M_DONTWAIT, MT_DATA);
        const mp = (yield* timed(cpu, mbufContext, label.mbufGet, task, mbufTotals.allocs)) as number;
        cpu.setContext(0);
        const failed = mp === 0;
        if (failed) {
          if (measured) mbufTotals.failures++;
        } else {
          t.allocations++;
          touchMbuf(cpu, mp, kind === 'pkthdr' || kind === 'cluster', kind === 'cluster' ? 2048 : 216);
        }
        objects.set(key, { va: mp, kind: OP_MBUF, zone: 0, size: ev.size, pages: undefined, time: cpu.clock, failed });
        wakeWaiters(objectWaiters, key, cpu.clock);
        return;
      }
      case OP_MFREEM: {
        const o = yield* waitFor(cpu, objects, objectWaiters, key, `waiting for object ${ev.obj}`);
        objects.delete(key);
        if (o.failed === true) {
          if (measured) mbufTotals.skippedFrees++;
          return;
        }
        touchMbufRead(cpu, o.va);
        yield* timed(cpu, mbufContext, label.mbufFree, m_freem(k, cpu, o.va), mbufTotals.frees);
        cpu.setContext(0);
        t.frees++;
        return;
      }
    }
  }

  // `resumeKey`: resumed from a checkpoint with the event of that key taken (in `current`) and
  // its start's yield (cpu.checkpoint) done.
  const program = function* (cpu: Cpu, resumeKey = -1): Task {
    const q = queues[cpu.id]!;
    const ev = current[cpu.id]!;
    for (let key = resumeKey; ; key = -1) {
      let n: number;
      if (key < 0) {
        if (q.empty) {
          if (eof) return;
          yield YIELD_INPUT;
          continue;
        }
        key = q.shift(ev);
        n = ++taken[cpu.id]!;
        ev.cpu = cpu.id;
        if (ckState !== undefined) ckState.pending[cpu.id] = key;
        yield* cpu.checkpoint();
        if (ckState !== undefined) ckState.pending[cpu.id] = -1;
      } else {
        n = taken[cpu.id]!;
        ckState!.pending[cpu.id] = -1;
      }
      if (control !== undefined) {
        opLabel[cpu.id] = -1;
        control.beforeEvent?.(cpu, ev);
      }
      yield* runEvent(cpu, ev, key);
      yield* userret(k, cpu);
      if (n === warmup) {
        windowCtr[cpu.id] = cpu.ctr.slice();
        windowClock[cpu.id] = cpu.clock;
      }
      if (control !== undefined && control.afterEvent(cpu, ev, opLabel[cpu.id]!, opCycles[cpu.id]!)) {
        pausing = cpu.id;
        yield YIELD_INPUT;
      }
      if (ckState !== undefined && checkpointDue(ckState, m, cpu.id)) {
        pausing = cpu.id;
        checkpointing = true;
        yield YIELD_INPUT;
      }
    }
  };

  // Incarnations, assigned in file order: an allocation's key is its event number; a free
  // takes the key of the live allocation of its id. A free read before any allocation of its
  // id (a source that breaks FORMAT.md's Rules, as some tests do) takes the next one's.
  const liveKeys = new Map<number, number>();
  const earlyFrees = new Map<number, number>();
  let serial = 0;
  function keyOf(ev: TraceEvent): number {
    const n = serial++;
    switch (ev.op) {
      case OP_ALLOC:
      case OP_MALLOC:
      case OP_PALLOC:
      case OP_VALLOC:
      case OP_MBUF: {
        const early = earlyFrees.get(ev.obj);
        if (early !== undefined) {
          earlyFrees.delete(ev.obj);
          return early;
        }
        liveKeys.set(ev.obj, n);
        return n;
      }
      case OP_FREE:
      case OP_MFREE:
      case OP_PFREE:
      case OP_VFREE:
      case OP_MFREEM: {
        const live = liveKeys.get(ev.obj);
        if (live !== undefined) {
          liveKeys.delete(ev.obj);
          return live;
        }
        earlyFrees.set(ev.obj, n);
        return n;
      }
      default:
        return n;
    }
  }

  let read = 0;
  let lastProgress = 0;
  let proceed = -1;
  // Checkpoints (traces/checkpoint.ts): the driver's state, restored from one or captured in one.
  const ckState = ck === undefined ? undefined : newCheckpointState(ncpus, ck.every);
  let checkpointing = false;
  const driver = () => ({
    queues, objects, zones, arenas, vmemReady, vmemStarting, vmemTotals, mbufTotals, mbufReady, mbufStarting, mbufContext, mbufWaiters,
    objectWaiters, zoneWaiters, arenaWaiters, vmemWaiters, current, ops, totals, warm, taken, windowCtr, windowClock, opLabel, opCycles,
    eof, traceCpus, freeAfterBoot, usablePages, start, liveKeys, earlyFrees, serial, read, allocator, ckState,
  });
  if (fresh !== undefined) {
    const d = driver();
    restoreOnto(fresh, ck!.from!.graph, d, [Histogram, CounterSnapshot], ck!.from!.file);
    ({ vmemStarting, mbufStarting, mbufContext, eof, traceCpus, freeAfterBoot, usablePages, start, serial, read } = d);
    source = await skipEvents(source, read, eof);
    m.restart(m.cpus.map((c) => (cpu: Cpu) => program(cpu, ckState!.pending[c.id]!)));
    proceed = ckState!.cpu;
  } else {
    if (control?.onBoot !== undefined) await control.onBoot(m, k);
    m.start(m.cpus.map(() => program));
  }
  for (;;) {
    let r: ReturnType<Machine['resume']>;
    try {
      r = m.resume(proceed);
    } catch (err) {
      throw err instanceof MachineDeadlock ? diagnose(err) : err;
    }
    proceed = -1;
    if (r.state === 'done') break;
    // A pause the control asked for: after an event (pausing), or inside one, after an
    // atomic or a release it was told of (cpu.viewPause).
    const paused = m.cpus[r.cpu]!;
    if (r.cpu === pausing || paused.viewPause) {
      pausing = -1;
      paused.viewPause = false;
      proceed = r.cpu;
      if (checkpointing) {
        checkpointing = false;
        ckState!.cpu = r.cpu;
        ck!.save(m, k, driver(), ckState!.completed);
        continue;
      }
      await control!.paused();
      continue;
    }
    // The CPU whose turn it is needs its next event: read until it has one or the trace ends.
    const q = queues[r.cpu]!;
    while (!eof && q.empty) {
      const batch = await source.next();
      if (batch === null) {
        eof = true;
        break;
      }
      for (const ev of batch) {
        if (ev.cpu >= traceCpus) traceCpus = ev.cpu + 1;
        queues[ev.cpu % ncpus]!.push(ev, keyOf(ev));
      }
      read += batch.length;
      if (opts.onProgress !== undefined && read - lastProgress >= 16384) {
        lastProgress = read;
        opts.onProgress(totals.events + warm.events);
      }
    }
  }
  opts.onProgress?.(totals.events + warm.events);
  opts.onFinish?.(k);
  const sha256 = source.sha256 ?? null;
  const end = m.snapshot();
  // A CPU's window: from boot's end without a warm-up; with one, from its copy after its N-th
  // event, or none (end minus end) when it had no event after that.
  const inWindow = (c: number) => warmup === 0 || taken[c]! > warmup;
  const from = warmup === 0
    ? start
    : new CounterSnapshot(end.labels, end.tables.map((t, c) => (inWindow(c) ? windowCtr[c]! : t)), end.clocks.map((t, c) => (inWindow(c) ? windowClock[c]! : t)), end.contexts);
  // The makespan: from the end of boot to the last CPU's end; with a warm-up, the longest of
  // the CPUs' windows. The windows start when each CPU is past its own warm-up, at different
  // times, so the span from the earliest start to the latest end would measure how the warm-ups
  // were staggered rather than the steady state (16 CPUs of pairs: every window ~15k cycles
  // long, that span 80k); over the longest window, operations per cycle are the rate of the
  // CPUs working at once in their steady states.
  let first = Infinity;
  let last = 0;
  let longest = 0;
  for (let c = 0; c < ncpus; c++) {
    if (!inWindow(c)) continue;
    first = Math.min(first, from.clocks[c]!);
    last = Math.max(last, end.clocks[c]!);
    longest = Math.max(longest, end.clocks[c]! - from.clocks[c]!);
  }
  if (warmup > 0) {
    first = 0;
    last = longest;
  }
  return buildReport({
    run: {
      kmemu: KMEMU_VERSION,
      machine: machineRun(opts.machineGiven ?? opts.machine.name, m.config),
      allocator: allocatorRun(opts.allocator ?? 'vmzone', allocOpts),
      sysctl: { ...(opts.sysctl ?? {}) },
      tunables: { ...k.tunables },
      touch,
      trace: sha256 === null ? null : { name: opts.traceName ?? '', sha256 },
      ...(warmup > 0 ? { warmup } : {}),
    },
    machine: m,
    kernel: k,
    allocator,
    options: { pcpu: allocOpts.pcpu, aligned: allocOpts.aligned ?? false, touch },
    traceName: opts.traceName ?? '',
    traceCpus,
    totals,
    ...(warmup > 0 ? { warmup: warm } : {}),
    makespanCycles: last > first ? last - first : 0,
    ops,
    counters: end.minus(from),
    zoneNames: [...zones.values()].map((z) => z.name),
    vmem: vmemTotals.arenas > 0 ? vmemTotals : undefined,
    mbuf: mbuf_started(k) ? { totals: mbufTotals, netstat: mbufStats(k) } : undefined,
  });
}

/** Bytes as MiB (GiB from 1 GiB up), one decimal unless whole. */
function bytes(n: number): string {
  const [v, unit] = n >= 2 ** 30 ? [n / 2 ** 30, 'GiB'] : [n / 2 ** 20, 'MiB'];
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
}
