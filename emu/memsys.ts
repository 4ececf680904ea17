// The coherent memory hierarchy: per-CPU L1D and L2, a shared LLC, DRAM.
//
// - Physically addressed, 64-byte lines, write-back and write-allocate everywhere.
// - The private L2 includes the private L1D (an L2 eviction removes the L1D copy, as on Zen
//   and Intel cores); both hold the same coherence state for a line, the L1D also a dirty bit
//   of its own (a dirty L1D victim is written into the L2).
// - MESI, or MOESI, across the private caches, kept by a directory of holders
//   (emu/directory.ts). The costs are components (config.ts coherence.*): X = transferLatency
//   (a line from another private cache, load-to-use), V = invalidateLatency (one invalidation
//   round and its acks), P = probeLatency (of X and V, the leg until the request reaches the
//   holder), each its far* twin when a CPU involved sits in another core complex. The
//   transitions:
//
//     requester's event   other holders            requester gets   others become   cost
//     read miss           none                     E                —               LLC hit or DRAM
//     read miss           an M owner               S                S (MESI: data   X (the LLC write
//                                                                   written to LLC)  is off the path)
//                                                                   O (MOESI)
//     read miss           an O or E owner          S                O / S           X
//     read miss           only S                   S                S               LLC hit, else X
//     write miss (RFO)    an owner (M, O, E)       M                I               X, or max(X, V)
//                                                                                     with sharers too
//     write miss (RFO)    only S                   M                I               max(LLC hit or X, V)
//     write hit in S/O    some                     M                I               hit + V
//     write hit in S/O    none                     M                —               hit + llc.hitLatency
//     write hit in E      —                        M (silently)     —               hit
//
// - A line in flight is busy (the home agent's occupancy): each request that involves other
//   holders records the interval from its issue to its completion in the directory, and a
//   locked read-modify-write extends it to the end of the operation. A request whose probe
//   reaches the line (issue + P) inside that interval is served at the interval's end: its
//   cost is then (end − issue) + (its cost − P), the wait counted as coherence.queueCycles.
//   One whose probe arrives before the interval began (a CPU behind in time whose access is
//   applied after a CPU running ahead, see machine.ts) does not wait: it came first.
// - Synchronized accesses (atomics, spin loads, lock releases; cpu.syncAccess) spend P first
//   and take their turn again before the access is applied, so the holder's accesses until
//   the probe reaches it hit in its own cache: contended atomics batch, and a lock holder that
//   re-acquires before a waiter's probe lands keeps the line. Plain accesses are applied at
//   once at their issue time, their P included in the cost.
// - The LLC is either inclusive (fills from DRAM allocate in it; its evictions back-invalidate
//   private copies) or a non-inclusive victim cache as on Zen and Skylake-SP (filled by L2
//   victims, clean or dirty; a DRAM fill goes to the private caches only).
// - Every latency is load-to-use (see config.ts): a hit at a level costs that level's
//   latency, not the sum down the hierarchy. How long the CPU waits for it is core.ts's business.
// - Hardware prefetch (emu/prefetch.ts, the prefetchLine section below) and full-line writes
//   of fast strings (writeFullLine) fill the same arrays as demand accesses.

import type { MachineConfig } from './config.js';
import { Directory } from './directory.js';
import { K } from './counters.js';
import { StrideDetector } from './prefetch.js';
import { TagArray } from './tags.js';

export const ST_I = 0;
export const ST_S = 1;
export const ST_O = 2;
export const ST_E = 3;
export const ST_M = 4;
export const stateNames = ['I', 'S', 'O', 'E', 'M'] as const;

/** onCoherence kinds. */
export const COH_TRANSFER = 0;
export const COH_INVALIDATE = 1;

export const LINE_SHIFT = 6;
export const LINE_SIZE = 64;
const TWO_32 = 4294967296;

/** What the memory system needs of a CPU: its id, clock and counter row. */
export interface AccessContext {
  readonly id: number;
  clock: number;
  readonly ctr: Float64Array;
  cbase: number;
}

const kL1RH = K['l1d.readHit'];
const kL1RM = K['l1d.readMiss'];
const kL1WH = K['l1d.writeHit'];
const kL1WM = K['l1d.writeMiss'];
const kL2RH = K['l2.readHit'];
const kL2RM = K['l2.readMiss'];
const kL2WH = K['l2.writeHit'];
const kL2WM = K['l2.writeMiss'];

export class MemorySystem {
  readonly ncpus: number;
  readonly l1: TagArray[] = [];
  readonly l2: TagArray[] = [];
  readonly llc: TagArray;
  private readonly l1State: Uint8Array[] = [];
  private readonly l1Dirty: Uint8Array[] = [];
  private readonly l2State: Uint8Array[] = [];
  private readonly llcDirty: Uint8Array;
  readonly directory: Directory;
  private readonly moesi: boolean;
  private readonly inclusive: boolean;
  private readonly l1Lat: number;
  private readonly l2Lat: number;
  private readonly llcLat: number;
  private readonly dramLat: number;
  private readonly ownLat: number;
  private readonly xferNear: number;
  private readonly xferFar: number;
  private readonly invNear: number;
  private readonly invFar: number;
  private readonly probeNear: number;
  private readonly probeFar: number;
  private readonly complexSize: number;
  /**
   * Per CPU, the request leg a synchronized access already spent waiting for its request to
   * reach the line's holder (see requestLeg), and the line it is for (-1: none).
   */
  readonly prepaid: Float64Array;
  readonly prepaidLine: Float64Array;
  // The in-flight interval of the line the current fetch() obtained, recorded in the directory
  // once the line is installed (pendTo 0: none).
  private pendFrom = 0;
  private pendTo = 0;
  /** When the request served last reached the line's holders (its probe, after any queueing). */
  private pendReach = 0;
  /** The CPUs, for counting events on the CPU they happen to. */
  contexts: AccessContext[] = [];
  /** Per CPU, the line it spins on (-1 for none); an invalidation of it wakes the CPU. */
  readonly watchLine: Float64Array;
  onWatchInvalidated: (cpu: number, time: number) => void = () => {};
  /**
   * When set, told of each coherence action a request causes (for views): COH_TRANSFER, the
   * line coming to the requester from another private cache (`other`: the owner, -1 when a
   * sharer of a clean line served it), or COH_INVALIDATE, another CPU's copy removed for the
   * requester's write. Off the hit paths; nothing is charged.
   */
  onCoherence: ((kind: number, line: number, requester: number, other: number) => void) | undefined;
  private fetchedState = ST_I;
  // Hardware prefetch (emu/prefetch.ts): per slot, whether a prefetch brought the line in and
  // nobody used it yet, and when its data arrives (a cycle; load-to-use, so a hit then waits
  // only for what is left of it).
  private readonly pf1: StrideDetector | undefined;
  private readonly pf2: StrideDetector | undefined;
  private readonly pfOn: boolean;
  private readonly l1Pf: Uint8Array[] = [];
  private readonly l2Pf: Uint8Array[] = [];
  private readonly l1Ready: Float64Array[] = [];
  private readonly l2Ready: Float64Array[] = [];
  private pfL2Hit = false;

  constructor(cfg: MachineConfig) {
    this.ncpus = cfg.cpus;
    const sets = (c: { size: number; ways: number; line: number }) => c.size / (c.ways * c.line);
    for (let c = 0; c < cfg.cpus; c++) {
      const l1 = new TagArray(sets(cfg.l1d), cfg.l1d.ways, cfg.l1d.replacement, cfg.seed * 1009 + c * 2);
      const l2 = new TagArray(sets(cfg.l2), cfg.l2.ways, cfg.l2.replacement, cfg.seed * 1009 + c * 2 + 1);
      this.l1.push(l1);
      this.l2.push(l2);
      this.l1State.push(new Uint8Array(l1.slots));
      this.l1Dirty.push(new Uint8Array(l1.slots));
      this.l2State.push(new Uint8Array(l2.slots));
      this.l1Pf.push(new Uint8Array(l1.slots));
      this.l2Pf.push(new Uint8Array(l2.slots));
      this.l1Ready.push(new Float64Array(l1.slots));
      this.l2Ready.push(new Float64Array(l2.slots));
    }
    this.llc = new TagArray(sets(cfg.llc), cfg.llc.ways, cfg.llc.replacement, cfg.seed * 1009 + 999);
    this.llcDirty = new Uint8Array(this.llc.slots);
    this.directory = new Directory(cfg.cpus * this.l2[0]!.slots);
    this.moesi = cfg.coherence.protocol === 'moesi';
    this.inclusive = cfg.llc.inclusive;
    this.l1Lat = cfg.l1d.hitLatency;
    this.l2Lat = cfg.l2.hitLatency;
    this.llcLat = cfg.llc.hitLatency;
    this.dramLat = cfg.memory.dramLatency;
    this.ownLat = cfg.memory.ownershipLatency ?? cfg.memory.dramLatency;
    this.xferNear = cfg.coherence.transferLatency;
    this.xferFar = cfg.coherence.farTransferLatency;
    this.invNear = cfg.coherence.invalidateLatency;
    this.invFar = cfg.coherence.farInvalidateLatency;
    this.probeNear = cfg.coherence.probeLatency;
    this.probeFar = cfg.coherence.farProbeLatency;
    this.complexSize = cfg.coherence.coresPerComplex;
    this.prepaid = new Float64Array(cfg.cpus);
    this.prepaidLine = new Float64Array(cfg.cpus).fill(-1);
    this.watchLine = new Float64Array(cfg.cpus).fill(-1);
    const pf = cfg.prefetch;
    this.pf1 = pf.l1d.enabled ? new StrideDetector(pf.l1d, cfg.cpus) : undefined;
    this.pf2 = pf.l2.enabled ? new StrideDetector(pf.l2, cfg.cpus) : undefined;
    this.pfOn = pf.l1d.enabled || pf.l2.enabled;
  }

  /**
   * One access by CPU `r` to physical line `line`; returns its latency in cycles and counts
   * its events on r's current label. The caller advances r's clock afterwards.
   */
  access(r: AccessContext, line: number, write: boolean): number {
    // The L1D hit of a line nobody prefetched, read or written in M: small enough for V8 to
    // inline into the CPU's access; everything else goes to accessSlow().
    const c = r.id;
    const lo = line >>> 0;
    const hi = (line - lo) / TWO_32;
    const l1 = this.l1[c]!;
    const s1 = l1.find(hi, lo);
    if (s1 >= 0 && this.l1Pf[c]![s1] === 0 && (!write || this.l1State[c]![s1] === ST_M)) {
      l1.touch(s1);
      if (write) this.l1Dirty[c]![s1] = 1;
      r.ctr[r.cbase + (write ? kL1WH : kL1RH)]!++;
      return this.l1Lat;
    }
    return this.accessSlow(r, line, write, hi, lo, s1);
  }

  /** access() past the fast hit: `s1` is the line's L1D slot, or -1. */
  private accessSlow(r: AccessContext, line: number, write: boolean, hi: number, lo: number, s1: number): number {
    const c = r.id;
    const ctr = r.ctr;
    const b = r.cbase;
    const l1 = this.l1[c]!;
    if (s1 >= 0) {
      l1.touch(s1);
      if (this.l1Pf[c]![s1] !== 0) return this.accessPrefetched(r, line, write, s1);
      if (!write) {
        ctr[b + kL1RH]!++;
        return this.l1Lat;
      }
      ctr[b + kL1WH]!++;
      this.l1Dirty[c]![s1] = 1;
      const st = this.l1State[c]![s1]!;
      if (st === ST_M) return this.l1Lat;
      if (st === ST_E) {
        this.l1State[c]![s1] = ST_M;
        this.l2State[c]![this.l2[c]!.find(hi, lo)] = ST_M;
        return this.l1Lat;
      }
      return this.l1Lat + this.upgrade(r, line, hi, lo, this.l1Lat);
    }
    ctr[b + (write ? kL1WM : kL1RM)]!++;
    const l2 = this.l2[c]!;
    const s2 = l2.find(hi, lo);
    let lat: number;
    let state: number;
    if (s2 >= 0) {
      l2.touch(s2);
      ctr[b + (write ? kL2WH : kL2RH)]!++;
      state = this.l2State[c]![s2]!;
      lat = this.l2Lat + this.l2PrefetchWait(r, s2);
      if (write && state !== ST_M) {
        if (state === ST_E) this.l2State[c]![s2] = ST_M;
        else lat += this.upgrade(r, line, hi, lo, this.l2Lat);
        state = ST_M;
      }
    } else {
      ctr[b + (write ? kL2WM : kL2RM)]!++;
      lat = this.fetch(r, line, hi, lo, write);
      state = this.fetchedState;
      this.fillL2(r, line, hi, lo, state);
      if (this.pendTo !== 0) {
        this.directory.occupy(line, this.pendFrom, this.pendTo);
        this.pendTo = 0;
      }
    }
    this.fillL1(r, hi, lo, state, write);
    if (this.pfOn) this.trainOnMiss(r, line, s2 < 0);
    return lat;
  }

  /**
   * A private miss: obtains the line from another CPU, the LLC or DRAM. Returns the access's
   * whole latency (load-to-use, at least l2.hitLatency), waits for the line included, and
   * leaves the requester's new state in fetchedState and the line's in-flight interval in
   * pendFrom/pendTo.
   */
  private fetch(r: AccessContext, line: number, hi: number, lo: number, write: boolean): number {
    const dir = this.directory;
    const mlo = dir.holdersLo(line);
    const mhi = dir.holdersHi(line);
    if (mlo === 0 && mhi === 0) {
      this.fetchedState = write ? ST_M : ST_E;
      const m = this.memoryRead(r, hi, lo);
      return m > this.l2Lat ? m : this.l2Lat;
    }
    const c = r.id;
    let owner = -1;
    let ownerSlot = -1;
    let ownerState = ST_I;
    let sharerFar = true;
    const holders = this.holderList(mlo, mhi);
    for (let i = 0; i < holders.length; i++) {
      const p = holders[i]!;
      const s = this.l2[p]!.find(hi, lo);
      const st = this.l2State[p]![s]!;
      if (st >= ST_O) {
        owner = p;
        ownerSlot = s;
        ownerState = st;
      } else if (!this.far(c, p)) {
        sharerFar = false;
      }
    }
    const ctr = r.ctr;
    const b = r.cbase;
    let lat: number;
    let probe = 0;
    if (owner >= 0) {
      // One transfer from the owner; on a write the other sharers' invalidations go out with
      // it and the slower of the two ends the request.
      const far = this.far(c, owner);
      lat = far ? this.xferFar : this.xferNear;
      probe = far ? this.probeFar : this.probeNear;
      ctr[b + (ownerState === ST_E ? K['coherence.c2cClean'] : K['coherence.c2cTransfer'])]!++;
      if (this.onCoherence !== undefined) this.onCoherence(COH_TRANSFER, line, c, owner);
      if (write && holders.length > 1) lat = Math.max(lat, this.invRound(c, holders, owner));
    } else {
      const ls = this.llc.find(hi, lo);
      if (ls >= 0) {
        this.llc.touch(ls);
        ctr[b + K['llc.hit']]!++;
        lat = this.llcLat;
      } else {
        ctr[b + K['coherence.c2cClean']]!++;
        lat = sharerFar ? this.xferFar : this.xferNear;
        if (this.onCoherence !== undefined) this.onCoherence(COH_TRANSFER, line, c, -1);
        probe = sharerFar ? this.probeFar : this.probeNear;
      }
      if (write) {
        lat = Math.max(lat, this.invRound(c, holders, -1));
        probe = this.probeOf(c, holders);
      }
    }
    if (lat < this.l2Lat) lat = this.l2Lat;
    const done = this.serve(r, line, probe, lat, 0);
    if (write) {
      // Each copy goes when the probe reaches its holder; the acks come back by `done`.
      for (let i = 0; i < holders.length; i++) {
        this.invalidatePrivate(holders[i]!, line, hi, lo, this.pendReach);
        ctr[b + K['coherence.invalidationSent']]!++;
        if (this.onCoherence !== undefined) this.onCoherence(COH_INVALIDATE, line, c, holders[i]!);
      }
      this.fetchedState = ST_M;
    } else {
      if (owner >= 0 && ownerState !== ST_O) {
        let next = ST_S;
        if (ownerState === ST_M) {
          // MESI: the dirty data goes to the LLC beside the transfer, off the requester's path.
          if (this.moesi) next = ST_O;
          else this.writeToLlc(r, hi, lo, true);
        }
        this.setPrivateState(owner, hi, lo, ownerSlot, next);
        const oc = this.contexts[owner];
        if (oc !== undefined) oc.ctr[oc.cbase + K['coherence.downgradeReceived']]!++;
      }
      this.fetchedState = ST_S;
    }
    return done - r.clock;
  }

  /**
   * When a coherence request of CPU r for `line` completes. It left `before` cycles into the
   * access, or earlier by the request leg already spent (prepaid); its probe reaches the
   * holder `probe` cycles after it left, and it takes `lat` cycles in all when the line is
   * free. The home agent serves one request per line at a time: if the line is in flight at
   * the request's time, the holder lets it go only when that transfer ends (queueCycles).
   * Records the line's new in-flight interval in pendFrom/pendTo.
   */
  private serve(r: AccessContext, line: number, probe: number, lat: number, before: number): number {
    const c = r.id;
    let t = r.clock + before;
    if (this.prepaidLine[c] === line) {
      t -= this.prepaid[c]!;
      this.prepaidLine[c] = -1;
    }
    const reach = t + probe;
    const leave = this.directory.freeAt(line, reach);
    let done = reach + (lat - probe);
    this.pendReach = reach;
    if (leave > reach) {
      r.ctr[r.cbase + K['coherence.queueCycles']]! += leave - reach;
      done = leave + (lat - probe);
      this.pendReach = leave;
    }
    this.pendFrom = t;
    this.pendTo = done;
    return done;
  }

  /**
   * The request leg a synchronized access to `line` by CPU r must spend before its request
   * reaches the line's holder: 0 when r's own copy serves the access or no other private
   * cache is involved, else the probe latency to the farthest holder the request must reach.
   * The CPU spends it (cpu.ts), letting the holder hit on the line meanwhile, then accesses.
   */
  requestLeg(r: AccessContext, line: number, write: boolean): number {
    const c = r.id;
    const dir = this.directory;
    const lo = line >>> 0;
    const hi = (line - lo) / TWO_32;
    const s2 = this.l2[c]!.find(hi, lo);
    if (s2 >= 0) {
      const st = this.l2State[c]![s2]!;
      if (!write || st >= ST_E || !dir.heldByOthers(line, c)) return 0;
    }
    const mlo = dir.holdersLo(line);
    const mhi = dir.holdersHi(line);
    if (mlo === 0 && mhi === 0) return 0;
    const holders = this.holderList(mlo, mhi);
    if (!write) {
      let owner = -1;
      for (let i = 0; i < holders.length; i++) {
        const p = holders[i]!;
        if (this.l2State[p]![this.l2[p]!.find(hi, lo)]! >= ST_O) owner = p;
      }
      if (owner >= 0) return this.far(c, owner) ? this.probeFar : this.probeNear;
      if (this.llc.find(hi, lo) >= 0) return 0;
    }
    return this.probeOf(c, holders);
  }

  /** The probe latency from c to the farthest of `holders` other than c. */
  private probeOf(c: number, holders: readonly number[]): number {
    let lat = 0;
    for (let i = 0; i < holders.length; i++) {
      const p = holders[i]!;
      if (p === c) continue;
      if (this.far(c, p)) return this.probeFar;
      lat = this.probeNear;
    }
    return lat;
  }

  /** Whether CPUs a and b sit in different core complexes (coherence.coresPerComplex). */
  private far(a: number, b: number): boolean {
    const n = this.complexSize;
    return Math.floor(a / n) !== Math.floor(b / n);
  }

  /** One invalidation round from c to `holders` but c and `skip`: far if any of them is far. */
  private invRound(c: number, holders: readonly number[], skip: number): number {
    let lat = 0;
    for (let i = 0; i < holders.length; i++) {
      const p = holders[i]!;
      if (p === c || p === skip) continue;
      if (this.far(c, p)) return this.invFar;
      lat = this.invNear;
    }
    return lat;
  }

  // The list is scratch storage reused by every call: callers finish with it before anything
  // they call can ask for another.
  private holderList(mlo: number, mhi: number): number[] {
    const out = this.holderScratch;
    out.length = 0;
    while (mlo !== 0) {
      const bit = mlo & -mlo;
      out.push(31 - Math.clz32(bit));
      mlo = (mlo ^ bit) >>> 0;
    }
    while (mhi !== 0) {
      const bit = mhi & -mhi;
      out.push(63 - Math.clz32(bit));
      mhi = (mhi ^ bit) >>> 0;
    }
    return out;
  }
  private readonly holderScratch: number[] = [];

  /**
   * Makes r's S or O copy exclusive for a write, the request leaving `before` cycles into the
   * access; returns the latency beyond `before`. With other sharers it is one invalidation
   * round; with none, a round trip to the directory at the LLC.
   */
  private upgrade(r: AccessContext, line: number, hi: number, lo: number, before: number): number {
    const c = r.id;
    const ctr = r.ctr;
    const b = r.cbase;
    const dir = this.directory;
    ctr[b + K['coherence.upgrade']]!++;
    let done: number;
    if (dir.heldByOthers(line, c)) {
      const holders = this.holderList(dir.holdersLo(line), dir.holdersHi(line));
      done = this.serve(r, line, this.probeOf(c, holders), this.invRound(c, holders, -1), before);
      for (let i = 0; i < holders.length; i++) {
        const p = holders[i]!;
        if (p === c) continue;
        this.invalidatePrivate(p, line, hi, lo, this.pendReach);
        ctr[b + K['coherence.invalidationSent']]!++;
        if (this.onCoherence !== undefined) this.onCoherence(COH_INVALIDATE, line, c, p);
      }
    } else {
      done = this.serve(r, line, 0, this.llcLat, before);
    }
    this.setPrivateState(c, hi, lo, -1, ST_M);
    dir.occupy(line, this.pendFrom, done);
    this.pendTo = 0;
    return done - r.clock - before;
  }

  /**
   * Keeps the line at its holder from `from` until `to` (a locked read-modify-write holds its
   * line until it completes): another CPU's request made in that interval waits for its end.
   */
  hold(line: number, from: number, to: number): void {
    this.directory.occupy(line, from, to);
  }

  /** Reads a line no private cache holds: from the LLC, else DRAM. Returns the latency. */
  private memoryRead(r: AccessContext, hi: number, lo: number, readsData = true): number {
    const ctr = r.ctr;
    const b = r.cbase;
    const s = this.llc.find(hi, lo);
    if (s >= 0) {
      this.llc.touch(s);
      ctr[b + K['llc.hit']]!++;
      return this.llcLat;
    }
    ctr[b + K['llc.miss']]!++;
    if (readsData) ctr[b + K['dram.read']]!++;
    if (this.inclusive) this.llcAllocate(r, hi, lo, false);
    return this.dramLat;
  }

  /** A line written into the LLC: a private writeback, or a clean victim of a victim LLC. */
  private writeToLlc(r: AccessContext, hi: number, lo: number, dirty: boolean): void {
    const s = this.llc.find(hi, lo);
    if (s >= 0) {
      this.llc.touch(s);
      if (dirty) this.llcDirty[s] = 1;
      return;
    }
    this.llcAllocate(r, hi, lo, dirty);
  }

  private llcAllocate(r: AccessContext, hi: number, lo: number, dirty: boolean): void {
    const llc = this.llc;
    const v = llc.victim(llc.setBase(lo));
    if (llc.valid[v] === 1) {
      const ctr = r.ctr;
      const b = r.cbase;
      if (this.llcDirty[v] === 1) {
        ctr[b + K['llc.writeback']]!++;
        ctr[b + K['dram.write']]!++;
      }
      if (this.inclusive) {
        const vhi = llc.blockHi(v);
        const vlo = llc.blockLo(v);
        const vline = llc.blockOf(v);
        const holders = this.holderList(this.directory.holdersLo(vline), this.directory.holdersHi(vline));
        for (let i = 0; i < holders.length; i++) {
          const st = this.invalidatePrivate(holders[i]!, vline, vhi, vlo, r.clock);
          ctr[b + K['llc.backInvalidation']]!++;
          if (st === ST_M || st === ST_O) ctr[b + K['dram.write']]!++;
        }
      }
    }
    llc.install(v, hi, lo);
    this.llcDirty[v] = dirty ? 1 : 0;
  }

  private fillL2(r: AccessContext, line: number, hi: number, lo: number, state: number): number {
    const c = r.id;
    const l2 = this.l2[c]!;
    const v = l2.victim(l2.setBase(lo));
    if (l2.valid[v] === 1) {
      if (this.l2Pf[c]![v] !== 0) r.ctr[r.cbase + K['prefetch.unused']]!++;
      this.evictL2(r, v);
    }
    l2.install(v, hi, lo);
    this.l2State[c]![v] = state;
    this.l2Pf[c]![v] = 0;
    this.l2Ready[c]![v] = 0;
    this.directory.add(line, c);
    return v;
  }

  private evictL2(r: AccessContext, v: number): void {
    const c = r.id;
    const l2 = this.l2[c]!;
    const vhi = l2.blockHi(v);
    const vlo = l2.blockLo(v);
    const st = this.l2State[c]![v]!;
    const l1 = this.l1[c]!;
    const s1 = l1.find(vhi, vlo);
    if (s1 >= 0) {
      if (this.l1Dirty[c]![s1] === 1) r.ctr[r.cbase + K['l1d.writeback']]!++;
      l1.invalidate(s1);
      this.l1State[c]![s1] = ST_I;
      this.l1Dirty[c]![s1] = 0;
    }
    this.directory.remove(l2.blockOf(v), c);
    l2.invalidate(v);
    this.l2State[c]![v] = ST_I;
    if (st === ST_M || st === ST_O) {
      r.ctr[r.cbase + K['l2.writeback']]!++;
      this.writeToLlc(r, vhi, vlo, true);
    } else if (!this.inclusive) {
      this.writeToLlc(r, vhi, vlo, false);
    }
  }

  private fillL1(r: AccessContext, hi: number, lo: number, state: number, write: boolean): number {
    const c = r.id;
    const l1 = this.l1[c]!;
    const v = l1.victim(l1.setBase(lo));
    if (l1.valid[v] === 1 && this.l1Dirty[c]![v] === 1) r.ctr[r.cbase + K['l1d.writeback']]!++;
    if (l1.valid[v] === 1 && this.l1Pf[c]![v] !== 0) r.ctr[r.cbase + K['prefetch.unused']]!++;
    l1.install(v, hi, lo);
    this.l1State[c]![v] = state;
    this.l1Dirty[c]![v] = write ? 1 : 0;
    this.l1Pf[c]![v] = 0;
    return v;
  }

  /** Sets a CPU's state for a line in its L1D (if there) and L2. */
  private setPrivateState(p: number, hi: number, lo: number, l2Slot: number, st: number): void {
    const s2 = l2Slot >= 0 ? l2Slot : this.l2[p]!.find(hi, lo);
    if (s2 >= 0) this.l2State[p]![s2] = st;
    const s1 = this.l1[p]!.find(hi, lo);
    if (s1 >= 0) this.l1State[p]![s1] = st;
  }

  /** Removes CPU p's copies of a line; returns the state it had. */
  private invalidatePrivate(p: number, line: number, hi: number, lo: number, time: number): number {
    const l2 = this.l2[p]!;
    const s2 = l2.find(hi, lo);
    let st = ST_I;
    if (s2 >= 0) {
      st = this.l2State[p]![s2]!;
      l2.invalidate(s2);
      this.l2State[p]![s2] = ST_I;
    }
    const l1 = this.l1[p]!;
    const s1 = l1.find(hi, lo);
    if (s1 >= 0) {
      l1.invalidate(s1);
      this.l1State[p]![s1] = ST_I;
      this.l1Dirty[p]![s1] = 0;
    }
    this.directory.remove(line, p);
    const pc = this.contexts[p];
    if (pc !== undefined) pc.ctr[pc.cbase + K['coherence.invalidationReceived']]!++;
    if (this.watchLine[p] === line) this.onWatchInvalidated(p, time);
    return st;
  }

  // --- Hardware prefetch (emu/prefetch.ts) --------------------------------------------------
  //
  // A prefetch is a read issued at the training access's time: it fills L2 (and L1D for the L1D
  // prefetcher) through fetch() like a read miss, with the same traffic and counters, and
  // costs the CPU no time; a demand access that finds the line pays only what is left of the
  // fill. A line another CPU holds M, O or E is not prefetched (prefetch.skippedOwned): a
  // prefetch never downgrades or transfers a line a CPU owns, so the coherence traffic of
  // shared lines stays the demand accesses' own.

  /** A demand access that hits an L1D line a prefetch brought in and nobody used yet. */
  private accessPrefetched(r: AccessContext, line: number, write: boolean, s1: number): number {
    const c = r.id;
    this.l1Pf[c]![s1] = 0;
    const wait = this.prefetchWait(r, this.l1Ready[c]![s1]! - this.l1Lat);
    const lat = this.access(r, line, write) + wait;
    if (this.pf1 !== undefined) this.issue(r, this.pf1, this.pf1.train(c, line), true);
    return lat;
  }

  /** The wait of an L2 hit on a line still in flight; a first use of an L2 prefetch trains L2. */
  private l2PrefetchWait(r: AccessContext, s2: number): number {
    const c = r.id;
    const usable = this.l2Ready[c]![s2]! - this.l2Lat;
    if (this.l2Pf[c]![s2] !== 0) {
      this.l2Pf[c]![s2] = 0;
      this.pfL2Hit = true;
      return this.prefetchWait(r, usable);
    }
    return usable > r.clock ? usable - r.clock : 0;
  }

  /** Cycles an access at r.clock waits for data usable from `usable` on; counts a late use. */
  private prefetchWait(r: AccessContext, usable: number): number {
    const ctr = r.ctr;
    const b = r.cbase;
    ctr[b + K['prefetch.useful']]!++;
    if (usable <= r.clock) return 0;
    const wait = usable - r.clock;
    ctr[b + K['prefetch.late']]!++;
    ctr[b + K['prefetch.lateCycles']]! += wait;
    return wait;
  }

  private trainOnMiss(r: AccessContext, line: number, l2Missed: boolean): void {
    const c = r.id;
    if (this.pf2 !== undefined && (l2Missed || this.pfL2Hit)) this.issue(r, this.pf2, this.pf2.train(c, line), false);
    this.pfL2Hit = false;
    if (this.pf1 !== undefined) this.issue(r, this.pf1, this.pf1.train(c, line), true);
  }

  private issue(r: AccessContext, d: StrideDetector, n: number, toL1: boolean): void {
    for (let i = 0; i < n; i++) this.prefetchLine(r, d.out[i]!, toL1);
  }

  /** Prefetches a line into r's L2 (and L1D when toL1), unless it is there or owned elsewhere. */
  private prefetchLine(r: AccessContext, line: number, toL1: boolean): void {
    const c = r.id;
    const lo = line >>> 0;
    const hi = (line - lo) / TWO_32;
    if (toL1 && this.l1[c]!.find(hi, lo) >= 0) return;
    const l2 = this.l2[c]!;
    const s2 = l2.find(hi, lo);
    const now = r.clock;
    const ctr = r.ctr;
    const b = r.cbase;
    if (s2 >= 0) {
      if (!toL1) return;
      l2.touch(s2);
      const ready = Math.max(now + this.l2Lat, this.l2Ready[c]![s2]!);
      const trainL2 = this.l2Pf[c]![s2] !== 0;
      if (trainL2) {
        this.l2Pf[c]![s2] = 0;
        ctr[b + K['prefetch.useful']]!++;
      }
      const v = this.fillL1(r, hi, lo, this.l2State[c]![s2]!, false);
      this.l1Pf[c]![v] = 1;
      this.l1Ready[c]![v] = ready;
      ctr[b + K['prefetch.issued']]!++;
      if (trainL2 && this.pf2 !== undefined) this.issue(r, this.pf2, this.pf2.train(c, line), false);
      return;
    }
    if (this.ownedElsewhere(line, c, hi, lo)) {
      ctr[b + K['prefetch.skippedOwned']]!++;
      return;
    }
    const ready = now + this.fetch(r, line, hi, lo, false);
    const v2 = this.fillL2(r, line, hi, lo, this.fetchedState);
    if (this.pendTo !== 0) {
      this.directory.occupy(line, this.pendFrom, this.pendTo);
      this.pendTo = 0;
    }
    this.l2Ready[c]![v2] = ready;
    ctr[b + K['prefetch.issued']]!++;
    if (!toL1) {
      this.l2Pf[c]![v2] = 1;
      ctr[b + K['prefetch.issuedL2']]!++;
      return;
    }
    const v1 = this.fillL1(r, hi, lo, this.fetchedState, false);
    this.l1Pf[c]![v1] = 1;
    this.l1Ready[c]![v1] = ready;
    if (this.pf2 !== undefined) this.issue(r, this.pf2, this.pf2.train(c, line), false);
  }

  /** Whether a CPU other than c holds the line M, O or E. */
  private ownedElsewhere(line: number, c: number, hi: number, lo: number): boolean {
    const mlo = this.directory.holdersLo(line);
    const mhi = this.directory.holdersHi(line);
    if (mlo === 0 && mhi === 0) return false;
    const holders = this.holderList(mlo, mhi);
    for (let i = 0; i < holders.length; i++) {
      const p = holders[i]!;
      if (p !== c && this.l2State[p]![this.l2[p]!.find(hi, lo)]! >= ST_O) return true;
    }
    return false;
  }

  // --- Full-line writes (fast-string stores, cpu.storeFill / cpu.copyBytes) ---------------

  /**
   * A store that writes all 64 bytes of a line. A line r's L2 holds is written as any store
   * (an S or O copy still pays its upgrade). Otherwise it is taken in M without fetching the
   * data: other copies are invalidated (one invalidation round, no transfer: their data is
   * overwritten), else the point of coherence answers — the LLC when it holds the line, else
   * the memory controller, the line's home (memory.ownershipLatency), without a DRAM read.
   * Returns the latency; the caller overlaps such writes (cpu.ts).
   */
  writeFullLine(r: AccessContext, line: number): number {
    const c = r.id;
    const lo = line >>> 0;
    const hi = (line - lo) / TWO_32;
    const ctr = r.ctr;
    const b = r.cbase;
    ctr[b + K['bulk.fullLines']]!++;
    if (this.l2[c]!.find(hi, lo) >= 0) return this.access(r, line, true);
    ctr[b + kL1WM]!++;
    ctr[b + kL2WM]!++;
    const mlo = this.directory.holdersLo(line);
    const mhi = this.directory.holdersHi(line);
    let lat: number;
    if (mlo !== 0 || mhi !== 0) {
      const holders = this.holderList(mlo, mhi);
      lat = this.invRound(c, holders, -1);
      const wake = r.clock + Math.max(this.l2Lat, lat);
      for (let i = 0; i < holders.length; i++) {
        this.invalidatePrivate(holders[i]!, line, hi, lo, wake);
        ctr[b + K['coherence.invalidationSent']]!++;
        if (this.onCoherence !== undefined) this.onCoherence(COH_INVALIDATE, line, c, holders[i]!);
      }
    } else {
      // Ownership from the point of coherence: the LLC when it holds the line, else the
      // memory controller's grant (memory.ownershipLatency), without a DRAM read.
      const inLlc = this.llc.find(hi, lo) >= 0;
      lat = this.memoryRead(r, hi, lo, false);
      if (!inLlc) lat = this.ownLat;
    }
    this.fillL2(r, line, hi, lo, ST_M);
    this.fillL1(r, hi, lo, ST_M, true);
    return Math.max(this.l2Lat, lat);
  }

  // --- Functional views (charge nothing, change nothing) -------------------------------

  /** Coherence state of a line in a CPU's L1D and L2, and whether the LLC holds it. */
  lineState(cpu: number, pa: number): { l1: string; l2: string; llc: boolean; llcDirty: boolean } {
    const line = Math.floor(pa / LINE_SIZE);
    const lo = line >>> 0;
    const hi = (line - lo) / TWO_32;
    const s1 = this.l1[cpu]!.find(hi, lo);
    const s2 = this.l2[cpu]!.find(hi, lo);
    const sl = this.llc.find(hi, lo);
    return {
      l1: stateNames[s1 >= 0 ? this.l1State[cpu]![s1]! : ST_I]!,
      l2: stateNames[s2 >= 0 ? this.l2State[cpu]![s2]! : ST_I]!,
      llc: sl >= 0,
      llcDirty: sl >= 0 && this.llcDirty[sl] === 1,
    };
  }

  /**
   * Checks the whole hierarchy's invariants (as vmem_check does for vmem): L1D ⊆ L2 with equal
   * states, the directory equal to the actual holders, at most one owner per line and no other
   * holder beside an M or E copy, inclusion when the LLC is inclusive. Returns the violations.
   */
  check(): string[] {
    const problems: string[] = [];
    const holders = new Map<number, number[]>();
    for (let c = 0; c < this.ncpus; c++) {
      const l1 = this.l1[c]!;
      const l2 = this.l2[c]!;
      for (let s = 0; s < l2.slots; s++) {
        if (l2.valid[s] !== 1) continue;
        const line = l2.blockOf(s);
        const list = holders.get(line) ?? [];
        list.push(c);
        holders.set(line, list);
      }
      for (let s = 0; s < l1.slots; s++) {
        if (l1.valid[s] !== 1) continue;
        const s2 = l2.find(l1.blockHi(s), l1.blockLo(s));
        if (s2 < 0) problems.push(`cpu${c}: line 0x${l1.blockOf(s).toString(16)} in L1D but not in L2`);
        else if (this.l2State[c]![s2] !== this.l1State[c]![s]) problems.push(`cpu${c}: line 0x${l1.blockOf(s).toString(16)} L1D state ${stateNames[this.l1State[c]![s]!]} ≠ L2 state ${stateNames[this.l2State[c]![s2]!]}`);
      }
    }
    for (const [line, cpus] of holders) {
      const lo = line >>> 0;
      const hi = (line - lo) / TWO_32;
      const states = cpus.map((c) => this.l2State[c]![this.l2[c]!.find(hi, lo)]!);
      const owners = states.filter((s) => s >= ST_O).length;
      const exclusive = states.filter((s) => s >= ST_E).length;
      if (owners > 1 || (exclusive > 0 && cpus.length > 1)) {
        problems.push(`line 0x${line.toString(16)}: states ${cpus.map((c, i) => `cpu${c}=${stateNames[states[i]!]}`).join(' ')}`);
      }
      let mlo = 0;
      let mhi = 0;
      for (const c of cpus) {
        if (c < 32) mlo = (mlo | (1 << c)) >>> 0;
        else mhi = (mhi | (1 << (c - 32))) >>> 0;
      }
      if (this.directory.holdersLo(line) !== mlo || this.directory.holdersHi(line) !== mhi) problems.push(`line 0x${line.toString(16)}: directory disagrees with the caches`);
      if (this.inclusive && this.llc.find(hi, lo) < 0) problems.push(`line 0x${line.toString(16)}: held privately but not in the inclusive LLC`);
    }
    if (this.directory.size !== holders.size) problems.push(`directory holds ${this.directory.size} lines, caches ${holders.size}`);
    return problems;
  }
}
