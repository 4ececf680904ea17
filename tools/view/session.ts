// kmemu view's replay side: a replay that pauses between events, and what the viewer shows
// at each pause, read from the machine with functional reads.
//
// - A Run is one replay (traces/replay.ts) driven through its ReplayControl: it pauses after
//   boot (position 0) and after whichever event the step asks for. The CPU that paused goes on
//   first when the run resumes, so a viewed replay's figures are those of `kmemu replay`
//   (test/view/session.test.ts runs both to the end and compares the reports).
// - Stepping back re-executes: the machine is deterministic, so a new Run from boot to the
//   position wanted reaches exactly the state the first one was in. The boot is the only
//   checkpoint: a pause happens while other CPUs are in the middle of kernel code (suspended
//   coroutines), which JavaScript cannot copy; a machine image that can is issue 15's work.
//   How long a rewind takes is the replay's speed with the hooks below on (README, "Viewer").
// - While a Run is viewed, every CPU reports its data references (cpu.tracer: virtual
//   addresses, pushed into flat arrays), its locked read-modify-writes (who took a lock word),
//   its spin-waits (cycles per line) and the coherence actions its requests cause. None of these
//   hooks charges anything. At a pause the state is computed from them and from the machine:
//   the zones' structures through kernel/vm's db_show_* views, each line's state through
//   memsys.lineState, the TLBs through tlb.probe.
// - The cost of the last event is itemized from its CPU's counters, summed over every label
//   and context, before and after the allocator operation it timed.

import { basename } from 'node:path';
import {
  COH_TRANSFER, CPU_BLOCKED, CPU_DONE, type Cpu, DMAP_BASE, K, LINE_SIZE, type Machine, NCOUNTERS, PAGE_2M, PAGE_4K, TLB_D, TLB_G, TLB_NX, TLB_RW, TLB_US,
  UsageError, probeTranslation,
} from '../../emu/index.js';
import type { Kernel } from '../../kernel/index.js';
import {
  OP_ALLOC, OP_ARENA, OP_FREE, OP_MALLOC, OP_MBUF, OP_MFREE, OP_MFREEM, OP_PALLOC, OP_PFREE, OP_THINK, OP_VALLOC, OP_VFREE, OP_ZONE, TraceReader,
  replay, type ReplayOptions, type ReplayReport, type TraceEvent,
} from '../../traces/index.js';
import { countTraceEvents } from '../progress.js';
import { type ReplayCliOptions, checkOptions, replayOptionsFrom } from '../replay.js';
import { type BootCounts, bootCounts, hex, zoneViews, type ZoneLine } from './zones.js';
import {
  type CpuView, type EventCounts, type LastEventView, type LineState, type LineView, type PathTotal, type TimelineEvent, TIMELINE_CAP, type TlbView,
  type LockEventView, type ViewAnswer, type ViewState, type WalkView, type ZoneView,
} from './state.js';

/** What the server drives: one replay, or compare mode's two. */
export interface ViewBackend {
  /** The current state, without stepping. */
  answer(): ViewAnswer;
  /** n events forward (n ≥ 1). */
  step(n: number): Promise<ViewAnswer>;
  /** To the next event completed on CPU `cpu`. */
  stepCpu(cpu: number): Promise<ViewAnswer>;
  /** To the next event whose allocator operation took `path` (a path label, e.g. uma.alloc.depot). */
  stepPath(path: string): Promise<ViewAnswer>;
  runToEnd(): Promise<ViewAnswer>;
  /** To the next operation on a zone's lock (taken, tried while held, released): a pause inside an event. */
  stepLock(): Promise<ViewAnswer>;
  /** n events back, by re-execution from boot (from inside an event, 1 is to its start). */
  back(n: number): Promise<ViewAnswer>;
  /** To position `position` (events completed), forward or back. */
  goto(position: number): Promise<ViewAnswer>;
  /** Pins the zone whose lines the grid shows (ViewState.focus); null: the one the last event touched most. */
  focus(zone: string | null): ViewAnswer;
  close(): Promise<void>;
}

// --- Counters summed over an event -------------------------------------------------------

/** The counters an event's cost is itemized by (EventCounts), as indices into SUMS. */
const SUMS = [
  K['l1d.readMiss'], K['l1d.writeMiss'], K['l2.readMiss'], K['l2.writeMiss'], K['llc.miss'], K['coherence.c2cTransfer'], K['coherence.c2cClean'],
  K['coherence.invalidationSent'], K['tlb.l1Miss'], K['tlb.walkCycles'], K['lock.spinCycles'], K.idleCycles, K['mem.atomics'],
] as const;

/** Adds up the SUMS counters over every row (label × context) of a CPU's table into `out`. */
function sumCounters(cpu: Cpu, out: Float64Array): void {
  out.fill(0);
  const ctr = cpu.ctr;
  for (let base = 0; base < ctr.length; base += NCOUNTERS) {
    // A row no code ran under (most label × context pairs) has no cycles and no references.
    if (ctr[base + K.cycles] === 0 && ctr[base + K['mem.loads']] === 0 && ctr[base + K['mem.stores']] === 0 && ctr[base + K['mem.atomics']] === 0) continue;
    for (let i = 0; i < SUMS.length; i++) out[i]! += ctr[base + SUMS[i]!]!;
  }
}

function countsOf(before: Float64Array, after: Float64Array, cycles: number): EventCounts {
  const d = (i: number) => after[i]! - before[i]!;
  return {
    cycles,
    l1dMisses: d(0) + d(1),
    l2Misses: d(2) + d(3),
    llcMisses: d(4),
    c2cTransfers: d(5) + d(6),
    invalidations: d(7),
    tlbMisses: d(8),
    walkCycles: d(9),
    spinCycles: d(10),
    idleCycles: d(11),
    atomics: d(12),
  };
}

/** A growable list of numbers in a Float64Array. */
class NumList {
  a = new Float64Array(256);
  n = 0;

  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }

  at(i: number): number {
    return this.a[i]!;
  }
}

// --- The session's history of events (the same in every Run: the machine is deterministic) --

class History {
  readonly cpu = new NumList();
  readonly start = new NumList();
  readonly end = new NumList();
  readonly op = new NumList();
  readonly label = new NumList();

  get length(): number {
    return this.cpu.n;
  }

  add(cpu: number, start: number, end: number, op: number, label: number): void {
    this.cpu.push(cpu);
    this.start.push(start);
    this.end.push(end);
    this.op.push(op);
    this.label.push(label);
  }
}

/** A line the last event touched: by which CPUs, whether written, its first address, whether by the page walker. */
interface Touched {
  by: Set<number>;
  written: boolean;
  va: number;
  walk: boolean;
}

/** A stop condition, asked after each event: the event's CPU, its op and its path label. */
type StopWhen = (position: number, cpu: number, label: number) => boolean;

const OP_NAMES: Record<number, string> = {
  [OP_ZONE]: 'zone', [OP_ALLOC]: 'a', [OP_FREE]: 'f', [OP_MALLOC]: 'm', [OP_MFREE]: 'x', [OP_PALLOC]: 'P', [OP_PFREE]: 'Q', [OP_THINK]: 't',
  [OP_ARENA]: 'arena', [OP_VALLOC]: 'v', [OP_VFREE]: 'V', [OP_MBUF]: 'b', [OP_MFREEM]: 'B',
};

/** The kernel function a path label's operation is, for the itemized line. */
function functionOf(path: string): string {
  if (path.startsWith('uma.alloc')) return 'uma_zalloc_arg';
  if (path.startsWith('uma.free')) return 'uma_zfree_arg';
  if (path.startsWith('zone.alloc')) return 'zalloc';
  if (path.startsWith('zone.free')) return 'zfree';
  if (path.startsWith('malloc')) return path.includes('free') ? 'free' : 'malloc';
  if (path.startsWith('mbuf.free')) return 'm_freem';
  if (path.startsWith('mbuf.get')) return path === 'mbuf.getcl' ? 'm_getcl' : 'm_get';
  if (path.startsWith('vmem.xalloc')) return 'vmem_xalloc';
  if (path.startsWith('vmem.xfree')) return 'vmem_xfree';
  if (path.startsWith('vm_page')) return path.endsWith('free') ? 'vm_page_free' : 'vm_page_alloc';
  return path;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

// --- One replay in progress ------------------------------------------------------------

/** What a Run's pause rejects with when the viewer abandons it (to step back, or at exit). */
class Abandoned extends Error {}

class Run {
  m!: Machine;
  k!: Kernel;
  position = 0;
  finished = false;
  report: ReplayReport | undefined;
  private error: unknown;
  private readonly done: Promise<void>;
  /** Resolves the pause the replay waits in (after boot, or after an event). */
  private proceed: (() => void) | undefined;
  private abandon: ((err: Error) => void) | undefined;
  /** Settles the advance() under way. */
  private settle: ((err?: unknown) => void) | undefined;
  private stopWhen: StopWhen = () => true;
  private readonly allocator: 'vmzone' | 'uma';

  // Per CPU: when its current event began, its counters then and around its operation.
  private ncpus = 0;
  private eventStart!: Float64Array;
  private eventRetired!: Float64Array;
  private startSums: Float64Array[] = [];
  private opSums: Float64Array[] = [];
  private endSums: Float64Array[] = [];
  private nowSums = new Float64Array(SUMS.length);
  private opCycles!: Float64Array;
  private opLabel!: Int32Array;
  private opStartClock!: Float64Array;
  /** Per CPU: the references of its current event (va, and 1 for a store), and where its operation's begin and end. */
  private refs: NumList[] = [];
  private refWrite: NumList[] = [];
  private refOp!: Int32Array;
  private refOpEnd!: Int32Array;
  /** Per CPU: the coherence actions its requests caused during its current event: (kind, line, other). */
  private coh: NumList[] = [];
  private cohOp!: Int32Array;
  private cohOpEnd!: Int32Array;
  private walkSerial!: Float64Array;
  readonly eventsPerCpu: number[] = [];
  /** Lock words: the CPU whose atomic took each (by physical address), and spin cycles per line. */
  readonly takenBy = new Map<number, number>();
  /** The lock word (physical address) each CPU last tried and found taken, until it takes one. */
  readonly failedOn = new Map<number, number>();
  /** While stepping to the next lock operation: the zones' lock words (physical addresses) by name. */
  lockStop: Map<number, string> | undefined;
  /** The lock operation the run paused at (inside an event), if it did. */
  lockEvent: { cpu: number; pa: number; name: string; kind: LockEventView['kind'] } | undefined;
  readonly spun = new Map<number, number>();
  /** Ops and cycles by path label id. */
  readonly pathOps = new Float64Array(1 << 12);
  readonly pathCycles = new Float64Array(1 << 12);
  /** The last event completed: its CPU, op, trace line and object, and its path and op cycles. */
  last: { cpu: number; op: number; line: number; obj: number; zone: number; size: number; name: string; label: number; opCycles: number; eventCycles: number } | undefined;
  readonly zoneNames = new Map<number, string>();
  private boot: BootCounts = new Map();
  /** The zone the viewer pinned for the lines grid (see ViewState.focus), or null. */
  pinned: string | null = null;

  constructor(
    private readonly reader: TraceReader,
    opts: ReplayOptions,
    private readonly history: History,
  ) {
    this.allocator = opts.allocator ?? 'vmzone';
    this.done = replay(reader, { ...opts, control: this.control() }).then(
      (report) => {
        this.report = report;
        this.finished = true;
        this.settle?.();
      },
      (err: unknown) => {
        if (err instanceof Abandoned) return;
        this.error = err;
        this.finished = true;
        this.settle?.(err);
      },
    );
  }

  /** Runs until `stop` says so after an event, or the trace ends. Resolves at the pause. */
  advance(stop: StopWhen): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.finished) return Promise.resolve();
    this.stopWhen = stop;
    return new Promise<void>((resolve, reject) => {
      this.settle = (err) => {
        this.settle = undefined;
        if (err !== undefined) reject(err);
        else resolve();
      };
      const go = this.proceed;
      this.proceed = undefined;
      this.abandon = undefined;
      go?.();
    });
  }

  /** Waits for the first pause (after boot). */
  started(): Promise<void> {
    if (this.m !== undefined || this.finished) return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.settle = (err) => {
        this.settle = undefined;
        if (err !== undefined) reject(err);
        else resolve();
      };
    });
  }

  /** Abandons the replay where it paused (its pause rejects, and the replay with it), and closes the trace. */
  async close(): Promise<void> {
    const abandon = this.abandon;
    this.proceed = undefined;
    this.abandon = undefined;
    abandon?.(new Abandoned());
    await this.done;
    await this.reader.close();
  }

  private pause(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.proceed = resolve;
      this.abandon = reject;
      this.settle?.();
    });
  }

  private control() {
    return {
      onBoot: (m: Machine, k: Kernel) => {
        this.m = m;
        this.k = k;
        this.hook(m);
        this.boot = bootCounts(k, this.allocator);
        return this.pause();
      },
      onZone: (id: number, name: string) => {
        this.zoneNames.set(id, name);
      },
      beforeEvent: (cpu: Cpu) => {
        const c = cpu.id;
        this.eventStart[c] = cpu.clock;
        this.eventRetired[c] = cpu.retired;
        sumCounters(cpu, this.startSums[c]!);
        this.refs[c]!.n = 0;
        this.refWrite[c]!.n = 0;
        this.coh[c]!.n = 0;
        this.refOp[c] = -1;
        this.cohOp[c] = -1;
        this.opLabel[c] = -1;
        this.walkSerial[c] = cpu.lastWalk.serial;
      },
      onOp: (cpu: Cpu, end: boolean) => {
        const c = cpu.id;
        if (!end) {
          sumCounters(cpu, this.opSums[c]!);
          this.refOp[c] = this.refs[c]!.n;
          this.cohOp[c] = this.coh[c]!.n;
          this.opStartClock[c] = cpu.clock;
        } else {
          sumCounters(cpu, this.endSums[c]!);
          this.refOpEnd[c] = this.refs[c]!.n;
          this.cohOpEnd[c] = this.coh[c]!.n;
        }
      },
      afterEvent: (cpu: Cpu, ev: TraceEvent, label: number, opCycles: number) => {
        const c = cpu.id;
        const position = ++this.position;
        this.eventsPerCpu[c]!++;
        if (label >= 0) {
          this.pathOps[label]!++;
          this.pathCycles[label]! += opCycles;
        }
        this.opLabel[c] = label;
        this.opCycles[c] = opCycles;
        if (position > this.history.length) this.history.add(c, this.eventStart[c]!, cpu.clock, ev.op, label);
        const last = (this.last ??= { cpu: 0, op: 0, line: 0, obj: 0, zone: 0, size: 0, name: '', label: 0, opCycles: 0, eventCycles: 0 });
        last.cpu = c;
        last.op = ev.op;
        last.line = ev.line;
        last.obj = ev.obj;
        last.zone = ev.zone;
        last.size = ev.size;
        last.name = ev.op === OP_ZONE || ev.op === OP_ARENA ? ev.name : ev.op === OP_ALLOC || ev.op === OP_FREE ? this.zoneNames.get(ev.zone) ?? '' : '';
        last.label = label;
        last.opCycles = opCycles;
        last.eventCycles = cpu.retired - this.eventRetired[c]!;
        if (!this.stopWhen(position, c, label)) return false;
        this.lockEvent = undefined;
        return true;
      },
      paused: () => this.pause(),
    };
  }

  /** Installs the viewing hooks on every CPU and the memory system. */
  private hook(m: Machine): void {
    const n = (this.ncpus = m.ncpus);
    this.eventStart = new Float64Array(n);
    this.eventRetired = new Float64Array(n);
    this.opCycles = new Float64Array(n);
    this.opLabel = new Int32Array(n).fill(-1);
    this.opStartClock = new Float64Array(n);
    this.refOp = new Int32Array(n).fill(-1);
    this.refOpEnd = new Int32Array(n);
    this.cohOp = new Int32Array(n).fill(-1);
    this.cohOpEnd = new Int32Array(n);
    this.walkSerial = new Float64Array(n);
    for (const cpu of m.cpus) {
      const c = cpu.id;
      this.startSums.push(new Float64Array(SUMS.length));
      this.opSums.push(new Float64Array(SUMS.length));
      this.endSums.push(new Float64Array(SUMS.length));
      this.refs.push(new NumList());
      this.refWrite.push(new NumList());
      this.coh.push(new NumList());
      this.eventsPerCpu.push(0);
      const refs = this.refs[c]!;
      const writes = this.refWrite[c]!;
      cpu.tracer = (write, va, _size, walk) => {
        refs.push(va);
        writes.push((write ? 1 : 0) | (walk === true ? 2 : 0));
      };
      cpu.onAtomic = (_cpu, _va, pa, old, next) => {
        let kind: LockEventView['kind'] | undefined;
        if (old === 0 && next !== 0) {
          this.takenBy.set(pa, c);
          this.failedOn.delete(c);
          kind = 'acquire';
        } else if (old !== 0 && next === old) {
          // A try that found the word taken: an xchg of 1 on 1, or a compare-exchange that failed.
          this.failedOn.set(c, pa);
          kind = 'fail';
        }
        return kind !== undefined && this.stopAtLock(c, pa, kind);
      };
      cpu.onRelease = (_cpu, _va, pa) => this.stopAtLock(c, pa, 'release');
      cpu.onSpin = (_cpu, line, cycles) => {
        this.spun.set(line, (this.spun.get(line) ?? 0) + cycles);
      };
    }
    m.memsys.onCoherence = (kind, line, requester, other) => {
      const list = this.coh[requester]!;
      list.push(kind);
      list.push(line);
      list.push(other);
    };
  }

  /** Asks for a pause at a zone lock's atomic or release while stepping by lock operations. */
  private stopAtLock(cpu: number, pa: number, kind: LockEventView['kind']): boolean {
    const name = this.lockStop?.get(pa);
    if (name === undefined) return false;
    this.lockEvent = { cpu, pa, name, kind };
    this.lockStop = undefined;
    return true;
  }

  /** The zones' lock words now, by physical address (for lockStop). */
  lockWords(): Map<number, string> {
    return this.k.viewing(() => zoneViews(this.k, this.allocator, this.m, this.boot, this.takenBy, this.spun, this.failedOn).locks);
  }

  // --- The state at a pause ------------------------------------------------------------

  state(total: number, run: ViewState['run']): ViewState {
    return this.k.viewing(() => this.view(total, run));
  }

  private view(total: number, run: ViewState['run']): ViewState {
    const m = this.m;
    const k = this.k;
    const zones = zoneViews(k, run.allocator, m, this.boot, this.takenBy, this.spun, this.failedOn);
    const last = this.last;
    const c = last?.cpu ?? -1;
    // The lines the last event touched (its CPU's references), and the coherence actions it caused.
    const touched = new Map<number, Touched>();
    const transfers = new Map<number, number>();
    const invalidations = new Map<number, number>();
    if (c >= 0) {
      const refs = this.refs[c]!;
      const writes = this.refWrite[c]!;
      const cr3 = m.cpus[c]!.cr3;
      const pageBase = new Map<number, number>();
      for (let i = 0; i < refs.n; i++) {
        const va = refs.at(i);
        const flags = writes.at(i);
        if ((flags & 2) !== 0) {
          // A page-walk reference: the physical address of a page-table entry.
          const line = Math.floor((va - DMAP_BASE) / LINE_SIZE);
          const t = touched.get(line);
          if (t === undefined) touched.set(line, { by: new Set([c]), written: (flags & 1) === 1, va, walk: true });
          else if ((flags & 1) === 1) t.written = true;
          continue;
        }
        const page = Math.floor(va / 4096);
        let base = pageBase.get(page);
        if (base === undefined) {
          base = probeTranslation(m.mem, cr3, page * 4096)?.pa ?? -1;
          pageBase.set(page, base);
        }
        if (base < 0) continue;
        const line = Math.floor((base + (va - page * 4096)) / LINE_SIZE);
        const t = touched.get(line);
        if (t === undefined) touched.set(line, { by: new Set([c]), written: flags === 1, va, walk: false });
        else if (flags === 1) t.written = true;
      }
      const coh = this.coh[c]!;
      for (let i = 0; i < coh.n; i += 3) {
        const map = coh.at(i) === COH_TRANSFER ? transfers : invalidations;
        const line = coh.at(i + 1);
        map.set(line, (map.get(line) ?? 0) + 1);
      }
    }
    // The focused zone: pinned, else the one whose lines the last event touched most, else
    // the last event's zone, else the first shown.
    let focus: string | null = null;
    if (this.pinned !== null && zones.views.some((z) => z.name === this.pinned)) focus = this.pinned;
    else {
      const hits = new Map<string, number>();
      for (const l of zones.lines) if (touched.has(l.line)) hits.set(l.zone, (hits.get(l.zone) ?? 0) + 1);
      let best = 0;
      for (const [zone, n] of hits) if (n > best) [best, focus] = [n, zone];
      if (focus === null && last !== undefined && zones.views.some((z) => z.name === last.name)) focus = last.name;
      if (focus === null && zones.views.length > 0) focus = zones.views[0]!.name;
    }
    const lines = this.lineViews(zones.lines.filter((l) => l.zone === focus), zones.views.filter((z) => z.name === focus), touched, transfers, invalidations);
    const lockNames = new Map<string, ZoneView>();
    for (const z of zones.views) lockNames.set(z.lock.name, z);
    const cpus: CpuView[] = m.cpus.map((cpu) => {
      const reason = cpu.blockReason;
      const waiting = zones.views.some((z) => z.lock.waiters.includes(cpu.id));
      const status: CpuView['status'] = cpu.status === CPU_DONE ? 'done'
        : cpu.status !== CPU_BLOCKED ? (waiting ? 'spin' : 'run')
          : reason.startsWith('spinning') ? 'spin' : reason.startsWith('waiting for') ? 'idle' : 'sleep';
      const watch = m.memsys.watchLine[cpu.id]!;
      const holds: string[] = [];
      let spinsOn: string | null = null;
      for (const z of zones.views) {
        if (z.lock.holder === cpu.id) holds.push(z.lock.name);
        if (z.lock.waiters.includes(cpu.id)) spinsOn = z.lock.name;
        else if (status === 'spin' && watch >= 0 && hex(watch * LINE_SIZE) === z.lock.line) spinsOn = z.lock.name;
      }
      return { id: cpu.id, clock: cpu.clock, status, labels: cpu.labelNames(), events: this.eventsPerCpu[cpu.id]!, holds, spinsOn };
    });
    return {
      position: this.position,
      total,
      done: this.finished,
      run,
      cpus,
      zones: zones.views,
      focus,
      lines,
      tlb: this.tlbViews(touched),
      walk: this.walkView(),
      last: this.lastView(zones.lines, lines),
      lock: this.lockView(),
      timeline: this.timeline(),
      paths: this.paths(),
    };
  }

  /** What a line the event touched outside the zone's structures is: a CPU's globaldata, an item of the zone's slabs, or its address. */
  private nameOf(va: number, zones: readonly ZoneView[]): string {
    const lineVa = hex(va - (va % LINE_SIZE));
    for (let c = 0; c < this.ncpus; c++) {
      const gd = this.k.gd(c);
      if (va >= gd && va < gd + 4096) return `cpu ${c} globaldata ${lineVa}`;
    }
    // An on-page slab's header sits in the page of its items (addresses as 16-digit hex).
    const page = hex(va).slice(0, -3);
    for (const z of zones) {
      const s = z.slabs;
      if (s !== undefined && [s.part, s.full, s.free].some((list) => list.some((slab) => slab.address.slice(0, -3) === page))) {
        return `${z.name}: item line ${lineVa}`;
      }
    }
    return va < 2 ** 47 ? `va ${lineVa}` : `kva ${lineVa}`;
  }

  private lineViews(
    zoneLines: readonly ZoneLine[],
    zones: readonly ZoneView[],
    touched: Map<number, Touched>,
    transfers: Map<number, number>,
    invalidations: Map<number, number>,
  ): LineView[] {
    const memsys = this.m.memsys;
    const out: LineView[] = [];
    const view = (line: number, what: string, zone: string): LineView => {
      const pa = line * LINE_SIZE;
      const l1: LineState[] = [];
      const l2: LineState[] = [];
      let llc = false;
      let llcDirty = false;
      for (let c = 0; c < this.ncpus; c++) {
        const s = memsys.lineState(c, pa);
        l1.push(s.l1 as LineState);
        l2.push(s.l2 as LineState);
        llc = s.llc;
        llcDirty = s.llcDirty;
      }
      const t = touched.get(line);
      return {
        line: hex(pa), what, zone, l1, l2, llc, llcDirty,
        touched: t !== undefined, touchedBy: t === undefined ? [] : [...t.by], written: t?.written ?? false,
        transfers: transfers.get(line) ?? 0, invalidations: invalidations.get(line) ?? 0,
      };
    };
    const seen = new Set<number>();
    for (const z of zoneLines) {
      if (seen.has(z.line)) continue;
      seen.add(z.line);
      out.push(view(z.line, z.what, z.zone));
    }
    // The other lines the event touched (the object itself, page tables, the kernel's own
    // structures), up to 32, in the order of their first reference.
    let others = 0;
    for (const [line, t] of touched) {
      if (seen.has(line) || others >= 32) continue;
      seen.add(line);
      others++;
      out.push(view(line, t.walk ? `page table (pa ${hex(line * LINE_SIZE)})` : this.nameOf(t.va, zones), ''));
    }
    return out;
  }

  private tlbViews(touched: Map<number, Touched>): TlbView[] {
    const pages = new Set<number>();
    for (const t of touched.values()) {
      if (t.walk) continue;
      pages.add(Math.floor(t.va / 4096) * 4096);
      if (pages.size >= 16) break;
    }
    return this.m.cpus.map((cpu) => {
      const entries: TlbView['entries'] = [];
      const seen = new Set<string>();
      for (const va of pages) {
        for (const e of cpu.tlb.probe(va)) {
          const size = e.pageShift === PAGE_4K ? 4096 : e.pageShift === PAGE_2M ? 2 ** 21 : 2 ** 30;
          const page = hex(Math.floor(va / size) * size);
          const key = `${e.level}:${page}:${e.pageShift}`;
          if (seen.has(key)) continue;
          seen.add(key);
          entries.push({ page, pageSize: e.pageShift === PAGE_4K ? '4K' : e.pageShift === PAGE_2M ? '2M' : '1G', level: e.level, frame: hex(e.base), flags: tlbFlags(e.flags) });
        }
      }
      return { cpu: cpu.id, entries };
    });
  }

  private walkView(): WalkView | null {
    const c = this.last?.cpu ?? -1;
    // The last event's CPU's walk if it made one, else the latest walk any CPU made.
    let cpu: Cpu | undefined;
    if (c >= 0 && this.m.cpus[c]!.lastWalk.serial > 0) cpu = this.m.cpus[c];
    else for (const x of this.m.cpus) if (x.lastWalk.serial > 0) cpu = x;
    if (cpu === undefined) return null;
    const w = cpu.lastWalk;
    const steps = [];
    for (let i = 0; i < w.levels; i++) steps.push({ level: 4 - i, entry: hex(w.entry[i]!), value: hex(w.hi[i]! * 2 ** 32 + w.lo[i]!) });
    return { cpu: cpu.id, va: hex(w.va), steps, cycles: w.cycles, ok: w.ok, inLastEvent: cpu.id === c && w.serial !== this.walkSerial[c] };
  }

  private lastView(zoneLines: readonly ZoneLine[], lines: readonly LineView[]): LastEventView | null {
    const last = this.last;
    if (last === undefined) return null;
    const c = last.cpu;
    const labels = this.m.labels.names;
    const path = last.label >= 0 ? labels[last.label]! : null;
    const cpu = this.m.cpus[c]!;
    sumCounters(cpu, this.nowSums);
    const hasOp = path !== null && this.refOp[c]! >= 0;
    const counts = hasOp ? countsOf(this.opSums[c]!, this.endSums[c]!, last.opCycles) : countsOf(this.startSums[c]!, this.nowSums, last.eventCycles);
    // The lines that came to this CPU from another cache during the operation, by name.
    const names = new Map<number, string>();
    for (const z of zoneLines) if (!names.has(z.line)) names.set(z.line, z.what);
    const coh = this.coh[c]!;
    const from = hasOp ? this.cohOp[c]! : 0;
    const to = hasOp ? this.cohOpEnd[c]! : coh.n;
    // The zones' own lines first, then the others the grid names, then the rest by address.
    const ours: string[] = [];
    const theirs: string[] = [];
    for (let i = from; i < to; i += 3) {
      if (coh.at(i) !== COH_TRANSFER) continue;
      const line = coh.at(i + 1);
      const zoneName = names.get(line);
      const name = zoneName ?? lines.find((l) => l.line === hex(line * LINE_SIZE))?.what ?? `line ${hex(line * LINE_SIZE)}`;
      const list = zoneName !== undefined ? ours : theirs;
      if (!list.includes(name)) list.push(name);
    }
    const moved = [...ours, ...theirs];
    const what = describe(last);
    const head = path !== null ? `${functionOf(path)} (${path}): ${plural(counts.cycles, 'cycle')}` : `${what}: ${plural(counts.cycles, 'cycle')}`;
    const parts = [plural(counts.l1dMisses, 'L1D miss', 'L1D misses')];
    // The lines moved, by name: the first four, then how many more.
    const named = moved.length <= 4 ? moved.join(', ') : `${moved.slice(0, 4).join(', ')} and ${moved.length - 4} more lines`;
    if (counts.c2cTransfers > 0) parts.push(`${plural(counts.c2cTransfers, 'cache-to-cache transfer')}${moved.length > 0 ? ` (${named})` : ''}`);
    else parts.push('0 cache-to-cache transfers');
    if (counts.invalidations > 0) parts.push(plural(counts.invalidations, 'invalidation'));
    if (counts.tlbMisses > 0) parts.push(plural(counts.tlbMisses, 'DTLB miss', 'DTLB misses'));
    parts.push(`${counts.spinCycles} spin`);
    if (counts.idleCycles > 0) parts.push(`${counts.idleCycles} idle`);
    return {
      cpu: c, op: OP_NAMES[last.op] ?? String(last.op), what, traceLine: last.line, path, opCycles: path !== null ? last.opCycles : null,
      counts, eventCycles: last.eventCycles, text: `${head} — ${parts.join(', ')}`,
    };
  }

  private lockView(): LockEventView | null {
    const e = this.lockEvent;
    if (e === undefined) return null;
    const holder = this.takenBy.get(e.pa);
    const text = e.kind === 'acquire' ? `CPU ${e.cpu} took the ${e.name} lock`
      : e.kind === 'release' ? `CPU ${e.cpu} released the ${e.name} lock`
        : `CPU ${e.cpu} tried the ${e.name} lock and found it held${holder !== undefined && holder !== e.cpu ? ` by CPU ${holder}` : ''}: it spins until the word changes`;
    return { cpu: e.cpu, lock: e.name, kind: e.kind, text };
  }

  private timeline(): TimelineEvent[] {
    const h = this.history;
    const labels = this.m.labels.names;
    const out: TimelineEvent[] = [];
    for (let i = Math.max(0, this.position - TIMELINE_CAP); i < this.position; i++) {
      const label = h.label.at(i);
      const op = h.op.at(i);
      const path = label >= 0 ? labels[label]! : op === OP_THINK ? 'think' : op === OP_ZONE ? 'zone.create' : op === OP_ARENA ? 'arena.create' : 'other';
      out.push({ n: i + 1, cpu: h.cpu.at(i), start: h.start.at(i), end: h.end.at(i), path });
    }
    return out;
  }

  private paths(): PathTotal[] {
    const names = this.m.labels.names;
    const out: PathTotal[] = [];
    for (let i = 0; i < names.length && i < this.pathOps.length; i++) {
      if (this.pathOps[i]! > 0) out.push({ path: names[i]!, ops: this.pathOps[i]!, cycles: this.pathCycles[i]! });
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

function tlbFlags(f: number): string {
  return [(f & TLB_RW) !== 0 ? 'RW' : 'RO', (f & TLB_US) !== 0 ? 'U' : 'S', (f & TLB_NX) !== 0 ? 'NX' : 'X', ...((f & TLB_G) !== 0 ? ['G'] : []), ...((f & TLB_D) !== 0 ? ['D'] : [])].join(' ');
}

function describe(e: { op: number; obj: number; zone: number; size: number; name: string }): string {
  switch (e.op) {
    case OP_ZONE: return `zone ${e.name} created (${e.size}-byte items)`;
    case OP_ALLOC: return `object ${e.obj} allocated from ${e.name || `zone ${e.zone}`}`;
    case OP_FREE: return `object ${e.obj} freed to ${e.name || `zone ${e.zone}`}`;
    case OP_MALLOC: return `object ${e.obj}: malloc(${e.size})`;
    case OP_MFREE: return `object ${e.obj}: free`;
    case OP_PALLOC: return `object ${e.obj}: 2^${e.size} pages allocated`;
    case OP_PFREE: return `object ${e.obj}: pages freed`;
    case OP_THINK: return `think ${e.size} cycles`;
    case OP_MBUF: return `object ${e.obj}: mbuf allocated`;
    case OP_MFREEM: return `object ${e.obj}: m_freem`;
    case OP_ARENA: return `arena ${e.name} created`;
    case OP_VALLOC: return `object ${e.obj}: vmem_alloc(${e.size})`;
    case OP_VFREE: return `object ${e.obj}: vmem_free`;
    default: return `event ${e.op}`;
  }
}

// --- A viewed replay -----------------------------------------------------------------------

/** One trace replayed under the viewer: its current Run, re-made from boot to step back. */
export class ViewSession {
  private run!: Run;
  private pinned: string | null = null;
  private readonly history = new History();
  private readonly runView: ViewState['run'];

  private constructor(
    private readonly file: string,
    private readonly options: ReplayOptions,
    private readonly lenient: boolean,
    readonly total: number,
    label: string,
  ) {
    const machine = options.machine;
    this.runView = {
      trace: basename(file), machine: options.machineGiven ?? machine.name, allocator: options.allocator ?? 'vmzone', pcpu: options.pcpu ?? true,
      aligned: options.aligned ?? false, cpus: machine.cpus, label,
    };
  }

  static async open(file: string, options: ReplayOptions, { lenient = false, label = '' } = {}): Promise<ViewSession> {
    const total = (await countTraceEvents(file)) ?? 0;
    const s = new ViewSession(file, options, lenient, total, label);
    await s.restart();
    return s;
  }

  get position(): number {
    return this.run.position;
  }

  get done(): boolean {
    return this.run.finished;
  }

  /** The report of a run that reached the end. */
  get report(): ReplayReport | undefined {
    return this.run.report;
  }

  state(): ViewState {
    return this.run.state(this.total, this.runView);
  }

  /** Pins the lines grid's zone (kept across steps back: a new Run gets it too). */
  pin(zone: string | null): void {
    this.pinned = zone;
    this.run.pinned = zone;
  }

  /** The path labels the machine knows so far (for the app's path menu). */
  labels(): string[] {
    return [...this.run.m.labels.names];
  }

  async step(n: number): Promise<void> {
    const target = this.position + n;
    await this.run.advance((p) => p >= target);
  }

  /** Steps to the next event on `cpu`; false when the trace ended first. */
  async stepCpu(cpu: number): Promise<boolean> {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.runView.cpus) throw new UsageError(`step-cpu: expected a CPU from 0 to ${this.runView.cpus - 1}, got ${cpu}`);
    await this.run.advance((_p, c) => c === cpu);
    return !this.done || this.run.last?.cpu === cpu;
  }

  /** Steps to the next event whose operation took `path`; false when none did before the end. */
  async stepPath(path: string): Promise<boolean> {
    const names = this.run.m.labels.names;
    await this.run.advance((_p, _c, label) => label >= 0 && names[label] === path);
    const last = this.run.last;
    return last !== undefined && last.label >= 0 && names[last.label] === path && (!this.done || this.position === this.history.length);
  }

  async runToEnd(): Promise<void> {
    await this.run.advance(() => false);
  }

  /**
   * Steps to the next operation on a zone's lock word: a CPU takes it, tries and finds it
   * held, or releases it. The run pauses inside that event (position is unchanged). False
   * when the trace ended first.
   */
  async stepLock(): Promise<boolean> {
    this.run.lockStop = this.run.lockWords();
    this.run.lockEvent = undefined;
    await this.run.advance(() => false);
    this.run.lockStop = undefined;
    return this.run.lockEvent !== undefined;
  }

  /** Paused inside an event (at a lock operation) rather than between two. */
  get midEvent(): boolean {
    return this.run.lockEvent !== undefined;
  }

  /** To `position`: forward from here, or back by re-executing from boot. */
  async goto(position: number): Promise<void> {
    if (position === this.position && !this.midEvent) return;
    if (position < this.position || (this.midEvent && position === this.position)) await this.restart();
    if (position > 0) {
      // Pause only at the event that reaches the position (the last event's view is of it).
      await this.run.advance((p) => p >= position);
    }
  }

  async close(): Promise<void> {
    await this.run.close();
  }

  private async restart(): Promise<void> {
    if (this.run !== undefined) await this.run.close();
    const reader = await TraceReader.open(this.file, { lenient: this.lenient });
    this.run = new Run(reader, this.options, this.history);
    this.run.pinned = this.pinned;
    await this.run.started();
  }
}

// --- The backend the server drives ------------------------------------------------------

function checkCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${what}: expected a number of events of 1 or more, got ${n}`);
}

/** One session (`--locked` chooses per-CPU caching off), or two side by side (`--compare`). */
class Backend implements ViewBackend {
  constructor(private readonly sessions: ViewSession[]) {}

  answer(message: string | null = null): ViewAnswer {
    if (this.sessions.length === 1) return { mode: 'single', state: this.sessions[0]!.state(), message };
    return { mode: 'compare', states: [this.sessions[0]!.state(), this.sessions[1]!.state()], message };
  }

  async step(n: number): Promise<ViewAnswer> {
    checkCount(n, 'step');
    for (const s of this.sessions) await s.step(n);
    return this.answer();
  }

  async stepCpu(cpu: number): Promise<ViewAnswer> {
    const missed: string[] = [];
    for (const [i, s] of this.sessions.entries()) if (!(await s.stepCpu(cpu))) missed.push(this.side(i));
    return this.answer(missed.length === 0 ? null : `${missed.join(' and ')}no further event on CPU ${cpu}: ran to the end`);
  }

  async stepPath(path: string): Promise<ViewAnswer> {
    if (typeof path !== 'string' || !/^[a-z][a-z0-9_.]*$/.test(path)) throw new UsageError(`step-path: expected a path label such as uma.alloc.depot, got ${JSON.stringify(path)}`);
    const missed: string[] = [];
    for (const [i, s] of this.sessions.entries()) if (!(await s.stepPath(path))) missed.push(this.side(i));
    return this.answer(missed.length === 0 ? null : `${missed.join(' and ')}no further event takes path ${path}: ran to the end`);
  }

  async runToEnd(): Promise<ViewAnswer> {
    for (const s of this.sessions) await s.runToEnd();
    return this.answer();
  }

  async back(n: number): Promise<ViewAnswer> {
    checkCount(n, 'back');
    // Inside an event (at a lock operation), one step back is to the start of that event.
    for (const s of this.sessions) await s.goto(Math.max(0, s.position - n + (s.midEvent ? 1 : 0)));
    return this.answer();
  }

  async stepLock(): Promise<ViewAnswer> {
    const missed: string[] = [];
    for (const [i, s] of this.sessions.entries()) if (!(await s.stepLock())) missed.push(this.side(i));
    return this.answer(missed.length === 0 ? null : `${missed.join(' and ')}no further operation on a zone's lock: ran to the end`);
  }

  async goto(position: number): Promise<ViewAnswer> {
    if (!Number.isSafeInteger(position) || position < 0) throw new UsageError(`goto: expected a position of 0 or more, got ${position}`);
    for (const s of this.sessions) await s.goto(Math.min(position, s.total > 0 ? Math.max(s.total, s.position) : position));
    return this.answer();
  }

  focus(zone: string | null): ViewAnswer {
    if (zone !== null && (typeof zone !== 'string' || zone.length === 0 || zone.length > 64)) throw new UsageError(`focus: expected a zone's name or null, got ${JSON.stringify(zone)}`);
    for (const s of this.sessions) s.pin(zone);
    const unknown = zone !== null && this.sessions.every((s) => !s.state().zones.some((z) => z.name === zone));
    return this.answer(unknown ? `no zone ${zone} in use yet: the grid shows the zone the last event touched most until it is` : null);
  }

  async close(): Promise<void> {
    for (const s of this.sessions) await s.close();
  }

  private side(i: number): string {
    return this.sessions.length === 1 ? '' : `${i === 0 ? 'per-CPU caching on' : 'per-CPU caching off'}: `;
  }
}

/** Opens `kmemu view`'s replay(s) of `file` with the replay command's options. */
export async function openView(file: string, opts: ReplayCliOptions & { compare?: boolean }): Promise<ViewBackend> {
  if (file === '-') throw new UsageError('view: the trace is replayed again to step back, so it must be a file, not "-"');
  checkOptions(opts);
  const lenient = opts.lenient ?? false;
  if (opts.compare === true) {
    const on = await ViewSession.open(file, replayOptionsFrom(file, opts, true), { lenient, label: 'per-CPU caching on' });
    const off = await ViewSession.open(file, replayOptionsFrom(file, opts, false), { lenient, label: 'per-CPU caching off' });
    return new Backend([on, off]);
  }
  const pcpu = !(opts.locked ?? false);
  return new Backend([await ViewSession.open(file, replayOptionsFrom(file, opts, pcpu), { lenient, label: pcpu ? 'per-CPU caching on' : 'per-CPU caching off' })]);
}

