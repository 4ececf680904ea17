// The timing model of one CPU's core: a simple, deterministic out-of-order core that the CPU
// (cpu.ts) asks what each access, each run of non-memory instructions and each drain costs.
//
// The core has a front end that dispatches instructions in program order, `issueWidth` per
// cycle, of which at most `loadPorts` loads and `storePorts` stores; an instruction executes
// when its inputs are ready; accesses that miss the L1D occupy one of `mlp` miss slots until
// their data is back; instructions retire in order, and the front end stalls when the oldest
// not-yet-completed instruction is `robSize` instructions behind it. cpu.clock is the time the
// front end has dispatched up to (the end of the cycle of the latest dispatch); at a drain it
// becomes the completion time of everything before. The rules:
//
//   event                       what it costs
//   ---------------------------------------------------------------------------------------
//   a load or store             one dispatch slot and one load (store) port in the current
//                               cycle; a new cycle when the cycle has no slot or port left.
//                               Dispatched at d (the cycle's start), it executes at
//                               e = max(d, address ready) and completes at e + latency (the
//                               memory system's load-to-use latency); a store that hits L1D
//                               completes at e + 1 (it commits; nothing waits to use it),
//                               but for an in-order core (robSize 1), where it costs its latency.
//   its address                 ready at d, unless it is within [v, v + 4096) of a pointer
//                               value v that one of the last 8 pointer loads returned (the
//                               access dereferences that pointer: a field of the struct it
//                               points to): then ready when that load completes. Several
//                               matches: the latest ready time.
//   its translation             an L1 DTLB hit is free; an L2 TLB hit or a page walk (its
//                               loads through the caches) starts at e and delays it: the
//                               access executes at e + translation. (A walk of a dependent
//                               load waits for the address, as the hardware walker does.)
//   an L1D miss                 (latency above l1d.hitLatency) also needs a miss slot: with
//                               all `mlp` slots busy it executes when the earliest frees.
//   the ROB window              an instruction dispatches no earlier than the completion of
//                               every access `robSize` or more instructions before it.
//   cpu.work(n)                 n slots, in the current cycle's free slots first: from a
//                               fresh cycle ceil(n / issueWidth) cycles; 1-cycle results
//                               nobody waits for.
//   cpu.branch()                a taken branch ends the dispatch cycle (fetch stops at it).
//   cpu.mispredict()            a branch on the latest access's value, mispredicted (a spin
//                               loop's exit): clock = max(clock, that access's completion)
//                               + cpu.mispredictPenalty; a new cycle follows.
//   a drain                     clock = max(clock, completion of every access so far); a
//                               new cycle follows. Locked operations, fences, spin waits,
//                               sleeps and every synchronization point drain first, but for
//                               a lock release (cpu.storeRelease32): a plain store on x86,
//                               which the core does not wait at; it takes its turn at the
//                               front end's clock, early by at most what is still in flight.
//   a locked op, after the      blocking: clock += its access latency + lockedOpLatency.
//   drain
//   tick(n) (pause, think time) n cycles of the front end; a new cycle follows.
//
// A pointer is a loaded 64-bit value in the upper half of the 48-bit address space (kernel
// space; DMAP and KVA alike), so counts, flags and ZENTRY_FREE never look like one. What the
// rule misses: an address more than 4 KiB past, or below, the loaded pointer (container_of,
// a far array index) is taken as independent; an address that merely happens to lie within
// 4 KiB past a recently loaded pointer waits for it needlessly. Data dependencies through
// memory (a load of a word a recent store wrote) are not modeled: this machine forwards them
// at about one cycle a hop (memory renaming, measured), so they rarely bound anything. Ports
// are counted at dispatch, not at execution.
//
// With robSize 1 the core is in order and blocking: every instruction waits for the one
// before it, and the clock is the completion time of the latest access (the coursework
// machine's whiteboard model).
//
// Hot path: plain numbers and preallocated typed arrays only.

import type { MachineConfig } from './config.js';

/** Pointer values at or above this are kernel-space addresses (the upper half of 48 bits). */
const POINTER_MIN = 2 ** 47;
/** How far past a loaded pointer an access is taken to dereference it: one page. */
const POINTER_REACH = 4096;
/** Pointer loads remembered for the dependency rule. */
const POINTER_SLOTS = 8;

export class Core {
  private readonly width: number;
  private readonly loadPorts: number;
  private readonly storePorts: number;
  private readonly rob: number;
  private readonly l1Lat: number;
  private readonly blocking: boolean;
  // Free dispatch slots and ports in the last dispatch cycle, [clock - 1, clock).
  private room = 0;
  private loadRoom = 0;
  private storeRoom = 0;
  /** Instructions dispatched so far. */
  private seq = 0;
  /** Completion time of every access so far (the drain time). */
  private done = 0;
  /** Completion time of the latest access. */
  private lastDone = 0;
  /** Completion time of every load so far: what retirement waits for (stores drain later). */
  private loadsDone = 0;
  // Miss slots: the completion time of each one's miss.
  private readonly miss: Float64Array;
  // The ROB window: accesses in flight, oldest first, as (seq, completion) in a ring.
  private readonly winSeq: Float64Array;
  private readonly winDone: Float64Array;
  private winHead = 0;
  private winLen = 0;
  // Recent pointer loads: the value and when it is ready, in a ring.
  private readonly ptrValue = new Float64Array(POINTER_SLOTS).fill(-Infinity);
  private readonly ptrReady = new Float64Array(POINTER_SLOTS);
  private ptrNext = 0;
  /** The latest ready time in ptrReady (no scan needed when the dispatch time is past it). */
  private ptrLatest = 0;

  constructor(cfg: MachineConfig) {
    const c = cfg.cpu;
    this.width = c.issueWidth;
    this.loadPorts = Math.min(c.loadPorts, c.issueWidth);
    this.storePorts = Math.min(c.storePorts, c.issueWidth);
    this.rob = c.robSize;
    this.blocking = c.robSize === 1;
    this.l1Lat = cfg.l1d.hitLatency;
    this.miss = new Float64Array(c.mlp);
    this.winSeq = new Float64Array(c.robSize);
    this.winDone = new Float64Array(c.robSize);
  }

  /** Opens a new dispatch cycle at `clock` when the last one has no room for this instruction. */
  private slot(clock: number, write: boolean): number {
    if (this.room === 0 || (write ? this.storeRoom : this.loadRoom) === 0) {
      clock += 1;
      this.room = this.width;
      this.loadRoom = this.loadPorts;
      this.storeRoom = this.storePorts;
    }
    this.room--;
    if (write) this.storeRoom--;
    else this.loadRoom--;
    return clock;
  }

  /** The earliest dispatch cycle start the ROB window allows for instruction `s`. */
  private windowBound(s: number): number {
    let bound = 0;
    const cap = this.rob;
    while (this.winLen > 0) {
      const h = this.winHead;
      if (this.winSeq[h]! > s - cap && this.winLen < cap) break;
      if (this.winDone[h]! > bound) bound = this.winDone[h]!;
      this.winHead = h + 1 === cap ? 0 : h + 1;
      this.winLen--;
    }
    return bound;
  }

  /**
   * One load or store of `latency` cycles to va, dispatched by a front end at `clock`, whose
   * translation (an L2 TLB hit, a page walk) takes `xlat` cycles once its address is ready;
   * returns the front end's new clock.
   */
  access(clock: number, latency: number, write: boolean, va: number, xlat = 0): number {
    const s = this.seq++;
    const bound = this.windowBound(s);
    if (bound > clock - 1 || this.blocking) {
      if (bound > clock) clock = bound;
      this.room = 0;
    }
    clock = this.slot(clock, write);
    let e = clock - 1;
    if (this.ptrLatest > e) {
      for (let i = 0; i < POINTER_SLOTS; i++) {
        const off = va - this.ptrValue[i]!;
        if (off >= 0 && off < POINTER_REACH && this.ptrReady[i]! > e) e = this.ptrReady[i]!;
      }
    }
    e += xlat;
    if (latency > this.l1Lat) {
      const miss = this.miss;
      let best = 0;
      for (let i = 1; i < miss.length; i++) if (miss[i]! < miss[best]!) best = i;
      if (miss[best]! > e) e = miss[best]!;
      miss[best] = e + latency;
    }
    // A store that hits L1D is done when it commits (a cycle); it has no load-to-use latency.
    const c = e + (write && latency <= this.l1Lat && !this.blocking ? 1 : latency);
    this.lastDone = c;
    if (c > this.done) this.done = c;
    if (!write && c > this.loadsDone) this.loadsDone = c;
    if (this.blocking) {
      this.room = 0;
      return c;
    }
    const cap = this.rob;
    let t = this.winHead + this.winLen;
    if (t >= cap) t -= cap;
    this.winSeq[t] = s;
    this.winDone[t] = c;
    this.winLen++;
    return clock;
  }

  /** The latest access was a load that returned `value`: remember it if it is a pointer. */
  loaded(value: number): void {
    if (value < POINTER_MIN) return;
    const i = this.ptrNext;
    this.ptrValue[i] = value;
    this.ptrReady[i] = this.lastDone;
    this.ptrNext = i + 1 === POINTER_SLOTS ? 0 : i + 1;
    if (this.lastDone > this.ptrLatest) this.ptrLatest = this.lastDone;
  }

  /** n instructions of non-memory work dispatched at `clock`; returns the new clock. */
  work(clock: number, n: number): number {
    if (n <= 0) return clock;
    this.seq += n;
    const bound = this.windowBound(this.seq - 1);
    if (bound > clock - 1) {
      if (bound > clock) clock = bound;
      this.room = 0;
    }
    if (n <= this.room) {
      this.room -= n;
      return clock;
    }
    const rest = n - this.room;
    const cycles = Math.ceil(rest / this.width);
    this.room = cycles * this.width - rest;
    this.loadRoom = this.loadPorts;
    this.storeRoom = this.storePorts;
    return clock + cycles;
  }

  /**
   * A branch on the latest access's value that was mispredicted (a spin loop's exit): what
   * follows it dispatches `penalty` cycles after that value is back. Returns the new clock.
   */
  resolve(clock: number, penalty: number): number {
    this.room = 0;
    const t = (this.lastDone > clock ? this.lastDone : clock) + penalty;
    return t;
  }

  /** A taken branch: nothing more dispatches in this cycle. */
  branch(): void {
    this.room = 0;
  }

  /** Ends the current dispatch cycle (the front end was busy for whole cycles). */
  endCycle(): void {
    this.room = 0;
  }

  /**
   * Work outside the pipeline's accesses (a fast string's lines) completes at t: a drain waits
   * for it. Returns whether the core blocks on it (robSize 1).
   */
  inFlightUntil(t: number): boolean {
    if (t > this.done) this.done = t;
    if (t > this.lastDone) this.lastDone = t;
    if (t > this.loadsDone) this.loadsDone = t;
    return this.blocking;
  }

  /**
   * When everything dispatched by `clock` has retired, without waiting for it (no drain): the
   * loads' data is back. Stores retire into the store buffer and complete later; a drain (a
   * locked op, a fence) waits for them.
   */
  retired(clock: number): number {
    return this.loadsDone > clock ? this.loadsDone : clock;
  }

  /** The clock at which every access so far has completed (at least `clock`); a new cycle follows. */
  drain(clock: number): number {
    this.room = 0;
    this.winLen = 0;
    return this.done > clock ? this.done : clock;
  }
}
