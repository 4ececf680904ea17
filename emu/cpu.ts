// One CPU: its cycle clock, TLBs, path-label stack and counters, and the instructions the
// kernel runs on it.
//
// Plain loads and stores are synchronous calls that translate, go through the caches and
// hand their latency to the core's timing model (core.ts: the rules, as a table), which says
// how far the clock advances; cpu.work(n) charges the code's non-memory instructions. Everything that is a synchronization point — atomics,
// spinning on a lock word, blocking, IPIs — is a generator (`yield* cpu.cmpxchg32(...)`) so
// the scheduler can hold the CPU until its clock is the smallest (see machine.ts).
//
// The CPU runs in supervisor mode with CR0.WP set: a write to a read-only page faults.

import { Core } from './core.js';
import { K, LABEL_CAP, NCOUNTERS } from './counters.js';
import type { Machine } from './machine.js';
import { LINE_SIZE, type AccessContext, type MemorySystem } from './memsys.js';
import {
  DMAP_BASE, PAGE_4K, PF_PROT, PF_WRITE, PTE_A, PTE_D, PTE_G, PTE_NX_HI, PTE_P, PTE_PS, PTE_RW, PTE_US,
  entryFrame, hex64, pointerFrom, pointerHi, probeTranslation, tableIndex,
} from './paging.js';
import type { PhysMem } from './physmem.js';
import { Tlb, TLB_D, TLB_G, TLB_NX, TLB_RW, TLB_US } from './tlb.js';

/** What a CPU's coroutine yields to the scheduler. */
export const YIELD_SYNC = 1; // resume me when my clock is the smallest of the runnable CPUs
export const YIELD_BLOCK = 2; // I am blocked; resume me after machine.wake()
export const YIELD_INPUT = 3; // I need input my driver has not read yet: pause the machine

/** A computation that may reach synchronization points; its result is T. */
export type Task<T = void> = Generator<number, T, void>;
/** What a CPU runs. */
export type Program = (cpu: Cpu) => Task<unknown>;

export const CPU_RUNNABLE = 0;
export const CPU_BLOCKED = 1;
export const CPU_DONE = 2;

/** A page fault no handler resolved. */
export class PageFault extends Error {
  constructor(
    readonly cpu: number,
    readonly va: number,
    readonly errorCode: number,
  ) {
    super(`page fault on cpu${cpu} at ${hex64(va)}: ${(errorCode & PF_PROT) !== 0 ? 'protection violation' : 'page not present'} on ${(errorCode & PF_WRITE) !== 0 ? 'write' : 'read'}`);
    this.name = 'PageFault';
  }
}

const TWO_32 = 4294967296;
const OP_CMPXCHG = 0;
const OP_XADD = 1;
const OP_XCHG = 2;
const RW_D = TLB_RW | TLB_D;
const MAX_FAULT_RETRIES = 4;

const kCycles = K.cycles;
const kMemCycles = K['mem.cycles'];
const kLoads = K['mem.loads'];
const kStores = K['mem.stores'];
const kTlbL1Hit = K['tlb.l1Hit'];
const kWork = K['cpu.work'];

export class Cpu implements AccessContext {
  readonly id: number;
  clock = 0;
  ctr: Float64Array;
  cbase = 0;
  status = CPU_DONE;
  /** Physical address of the PML4 this CPU translates through. */
  cr3 = 0;
  readonly tlb: Tlb;
  /** The timing model (core.ts). */
  readonly core: Core;
  /**
   * Called on a fault the walker reports; returns true when it mapped the page (the access is
   * retried) and false to let the fault propagate as a PageFault.
   */
  onPageFault: ((cpu: Cpu, va: number, errorCode: number) => boolean) | undefined;
  /** Set while blocked: when it blocked, why, and (after wake) when it was woken. */
  blockedSince = 0;
  blockReason = '';
  wakeTime = 0;
  /** Cycles of IPI handlers run while the CPU was blocked. */
  stolenWhileBlocked = 0;
  /**
   * When set, told of every memory reference this CPU makes, in program order: data
   * references by virtual address, page-walk loads and A/D updates by their direct-map
   * address (DMAP_BASE + physical), with `walk` true. For recording address traces of the machine.
   */
  tracer: ((write: boolean, va: number, size: number, walk?: boolean) => void) | undefined;
  /**
   * When set, told of every locked read-modify-write once it is done: its address, the
   * physical address, the value before and the value after (equal for a failed
   * compare-exchange). For views of lock words (who took it last). Returning true asks for a
   * pause after it (viewPause).
   */
  onAtomic: ((cpu: Cpu, va: number, pa: number, old: number, next: number) => boolean | void) | undefined;
  /** When set, told of every release store (storeRelease32) once it is done. */
  onRelease: ((cpu: Cpu, va: number, pa: number) => boolean | void) | undefined;
  /**
   * Set when onAtomic or onRelease returned true: the CPU yields YIELD_INPUT right after that
   * atomic or release (a viewer's pause inside an operation); the driver clears it and resumes
   * this CPU first (machine.resume's `proceed`), so the pause changes nothing.
   */
  viewPause = false;
  /** When set, told when a spin-wait ends: the line spun on (physical line number) and the cycles spun. */
  onSpin: ((cpu: Cpu, line: number, cycles: number) => void) | undefined;
  /**
   * The last page walk: its virtual address, the physical address and the value (low and high
   * words) of the entry read at each level (index 0 = PML4), the number of levels read, its
   * cycles, whether it ended in a translation, and a serial number that counts walks. Written
   * by every walk (a few stores, off the TLB-hit path); read by views.
   */
  readonly lastWalk = { va: 0, levels: 0, entry: new Float64Array(4), lo: new Float64Array(4), hi: new Float64Array(4), cycles: 0, ok: false, serial: 0 };

  private readonly machine: Machine;
  private readonly memsys: MemorySystem;
  private readonly mem: PhysMem;
  private readonly stack = new Int32Array(256);
  private depth = 0;
  private label = 0;
  private context = 0;
  // The last 4K page translated: its number, the physical base of that 4K page, the flags.
  // Re-using it skips only lookups that would hit the MRU L1 entry, so LRU order is unchanged.
  private memoVpn = -1;
  private memoBase = 0;
  private memoFlags = 0;
  private faultCode = 0;
  /** Physical address of the last data access (the line a spin-wait then watches). */
  private lastPa = 0;
  /**
   * Translation cycles of the access being made (an L2 TLB hit, a page walk): they start when
   * the address is known and add to the access's latency (core.ts), so a walk of a dependent
   * load waits for the address as the hardware walker does.
   */
  private xlat = 0;
  /** Set while a locked read-modify-write makes its access. */
  private locked = false;
  private readonly l2TlbLatency: number;
  private readonly l1HitLatency: number;
  private readonly walkLatency: number;
  private readonly invlpgLatency: number;
  private readonly lockedOpLatency: number;
  private readonly pauseLatency: number;
  private readonly mispredictPenalty: number;
  private readonly machineClearPenalty: number;
  private readonly mfenceLatency: number;
  private readonly spinIteration: number;
  // Fast strings (storeFill, copyBytes): when each miss buffer frees (absolute cycles), the
  // store port's rate, and the state of the operation in progress.
  private readonly fillBuffers: Float64Array;
  private readonly storeBytesPerCycle: number;
  private bulkIssue = 0;
  private bulkDone = 0;
  private bulkStart = 0;
  private bulkCharged0 = 0;

  constructor(machine: Machine, id: number) {
    this.machine = machine;
    this.memsys = machine.memsys;
    this.mem = machine.mem;
    this.id = id;
    const cfg = machine.config;
    this.tlb = new Tlb(cfg.tlb);
    this.core = new Core(cfg);
    this.ctr = new Float64Array(16 * NCOUNTERS);
    this.l2TlbLatency = cfg.tlb.l2.hitLatency;
    this.l1HitLatency = cfg.l1d.hitLatency;
    this.walkLatency = cfg.tlb.walkLatency;
    this.invlpgLatency = cfg.tlb.invlpgLatency;
    this.lockedOpLatency = cfg.cpu.lockedOpLatency;
    this.pauseLatency = cfg.cpu.pauseLatency;
    this.mispredictPenalty = cfg.cpu.mispredictPenalty;
    this.machineClearPenalty = cfg.cpu.machineClearPenalty;
    this.mfenceLatency = cfg.cpu.mfenceLatency;
    // One turn of a test-and-test-and-set wait loop: pause, then a load that hits L1D.
    this.spinIteration = cfg.cpu.pauseLatency + cfg.l1d.hitLatency;
    this.fillBuffers = new Float64Array(cfg.cpu.fillBuffers);
    this.storeBytesPerCycle = cfg.cpu.storeBytesPerCycle;
  }

  // --- Time and labels ------------------------------------------------------------------

  /** Advances the clock by n cycles of the front end, charged to the current label. */
  tick(n: number): void {
    this.clock += n;
    this.ctr[this.cbase + kCycles]! += n;
    this.core.endCycle();
  }

  /**
   * n instructions of non-memory work (compares, branches, arithmetic) retired at the core's
   * issue width: from a fresh cycle, ceil(n / issueWidth) cycles.
   */
  work(n: number): void {
    const t = this.core.work(this.clock, n);
    this.ctr[this.cbase + kWork]! += n;
    this.advance(t, false);
  }

  /**
   * A branch on the value the latest access returned, mispredicted: the loop that waited for a
   * value exits when the load that saw it completes, and the pipeline refills
   * (cpu.mispredictPenalty) before anything after the loop dispatches.
   */
  mispredict(): void {
    this.advance(this.core.resolve(this.clock, this.mispredictPenalty), true);
  }

  /**
   * The exit of a spin loop without pause: the loads it ran ahead of the one that saw another
   * CPU's write were speculated on the old value and are squashed (a memory-ordering machine
   * clear), costing cpu.machineClearPenalty after that load's value is back. pause exists to
   * avoid this (Intel SDM, PAUSE); a kernel's spin loops pause (spinWhile32).
   */
  machineClear(): void {
    this.advance(this.core.resolve(this.clock, this.machineClearPenalty), true);
  }

  /** A taken branch (call, return, taken jump): nothing more dispatches in this cycle. */
  branch(): void {
    this.core.branch();
  }

  /**
   * Waits for every access issued so far to complete: afterwards the clock is the completion
   * time of everything before. Every synchronization point drains first.
   */
  drain(): void {
    this.advance(this.core.drain(this.clock), true);
  }

  /**
   * When everything this CPU has issued so far retires (its clock, or later while loads are in
   * flight; stores retire into the store buffer and complete later, a drain waits for them).
   * Operations are timed from retirement to retirement (traces/replay.ts), so a load miss still
   * in flight at an operation's end counts in its operation.
   */
  get retired(): number {
    return this.core.retired(this.clock);
  }

  /** Moves the clock to t (not backwards), charging the cycles to the current label. */
  private advance(t: number, memory: boolean): void {
    const d = t - this.clock;
    if (d <= 0) return;
    this.clock = t;
    this.ctr[this.cbase + kCycles]! += d;
    if (memory) this.ctr[this.cbase + kMemCycles]! += d;
  }

  /** Models n cycles of computation that touches no memory. */
  compute(n: number): void {
    this.tick(n);
  }

  /** Adds to a counter of the current label. */
  count(kind: number, n = 1): void {
    this.ctr[this.cbase + kind]! += n;
  }

  /** The path label the last operation completed on (set by completeOp). */
  lastOpLabel = 0;

  /**
   * Marks the end of an operation (an allocation, say) and the path it took: counts one `ops`
   * under that label and remembers it, so a driver timing the operation knows its path.
   */
  completeOp(labelId: number): void {
    const row = this.context * LABEL_CAP + labelId;
    this.ensureRow(row);
    this.ctr[row * NCOUNTERS + K.ops]!++;
    this.lastOpLabel = labelId;
  }

  /** The counter context (machine.context(name)) every count goes to until changed. */
  setContext(contextId: number): void {
    this.context = contextId;
    this.setLabel(this.label);
  }

  /** Pushes a path label; every cycle and event until leave() is attributed to it. */
  enter(labelId: number): void {
    if (this.depth === this.stack.length) throw new RangeError(`cpu${this.id}: path labels nested deeper than ${this.stack.length}`);
    this.stack[this.depth++] = this.label;
    this.setLabel(labelId);
  }

  leave(): void {
    if (this.depth === 0) throw new RangeError(`cpu${this.id}: leave() without enter()`);
    this.setLabel(this.stack[--this.depth]!);
  }

  /** The path-label stack's names, outermost first, innermost (the current label) last; empty outside any. */
  labelNames(): string[] {
    const names = this.machine.labels.names;
    const out: string[] = [];
    for (let i = 1; i < this.depth; i++) out.push(names[this.stack[i]!]!);
    if (this.depth > 0) out.push(names[this.label]!);
    return out;
  }

  /** The innermost path label's name. */
  get currentLabel(): string {
    return this.machine.labels.names[this.label]!;
  }

  private setLabel(id: number): void {
    const row = this.context * LABEL_CAP + id;
    this.ensureRow(row);
    this.label = id;
    this.cbase = row * NCOUNTERS;
  }

  /** Grows the counter table to hold row `row`. */
  private ensureRow(row: number): void {
    const end = (row + 1) * NCOUNTERS;
    if (end <= this.ctr.length) return;
    const grown = new Float64Array(Math.max(this.ctr.length * 2, end));
    grown.set(this.ctr);
    this.ctr = grown;
  }

  // --- Plain loads and stores -------------------------------------------------------------

  load8(va: number): number {
    this.ctr[this.cbase + kLoads]!++;
    return this.mem.read8(this.access(va, 1, false));
  }

  load16(va: number): number {
    this.ctr[this.cbase + kLoads]!++;
    if ((va & 4095) > 4094) return this.crossPageLoad(va, 2);
    return this.mem.read16(this.access(va, 2, false));
  }

  load32(va: number): number {
    this.ctr[this.cbase + kLoads]!++;
    if ((va & 4095) > 4092) return this.crossPageLoad(va, 4);
    return this.mem.read32(this.access(va, 4, false));
  }

  /** An unsigned 64-bit load, exact below 2^53. */
  load64(va: number): number {
    this.ctr[this.cbase + kLoads]!++;
    if ((va & 4095) > 4088) return this.crossPageLoad(va, 8);
    const v = this.mem.read64(this.access(va, 8, false));
    this.core.loaded(v);
    return v;
  }

  /** Loads a 64-bit pointer and returns the 48-bit address it holds. */
  loadPtr(va: number): number {
    this.ctr[this.cbase + kLoads]!++;
    if ((va & 4095) > 4088) {
      const lo = this.crossPageLoad(va, 4);
      return pointerFrom(lo, this.crossPageLoad(va + 4, 4));
    }
    const pa = this.access(va, 8, false);
    const v = pointerFrom(this.mem.read32(pa), this.mem.read32(pa + 4));
    this.core.loaded(v);
    return v;
  }

  store8(va: number, value: number): void {
    this.ctr[this.cbase + kStores]!++;
    this.mem.write8(this.access(va, 1, true), value);
  }

  store16(va: number, value: number): void {
    this.ctr[this.cbase + kStores]!++;
    if ((va & 4095) > 4094) this.crossPageStore(va, 2, value);
    else this.mem.write16(this.access(va, 2, true), value);
  }

  store32(va: number, value: number): void {
    this.ctr[this.cbase + kStores]!++;
    if ((va & 4095) > 4092) this.crossPageStore(va, 4, value);
    else this.mem.write32(this.access(va, 4, true), value);
  }

  /** An unsigned 64-bit store of a value below 2^53. */
  store64(va: number, value: number): void {
    this.ctr[this.cbase + kStores]!++;
    if ((va & 4095) > 4088) this.crossPageStore(va, 8, value);
    else this.mem.write64(this.access(va, 8, true), value);
  }

  /** Stores a 48-bit address as a sign-extended 64-bit pointer. */
  storePtr(va: number, ptr: number): void {
    this.ctr[this.cbase + kStores]!++;
    const lo = ptr >>> 0;
    const hi = pointerHi(ptr);
    if ((va & 4095) > 4088) {
      this.crossPageStore(va, 4, lo);
      this.crossPageStore(va + 4, 4, hi);
      return;
    }
    const pa = this.access(va, 8, true);
    this.mem.write32(pa, lo);
    this.mem.write32(pa + 4, hi);
  }

  /** pause: one turn of a spin-wait loop. */
  pause(): void {
    this.tick(this.pauseLatency);
  }

  /** mfence drains, then costs its own latency. */
  mfence(): void {
    this.drain();
    this.tick(this.mfenceLatency);
  }

  /**
   * Translates va and charges the cache accesses of a reference of `size` bytes that does not
   * cross a page (it may cross a line: both lines are accessed). Returns the physical address.
   */
  private access(va: number, size: number, write: boolean): number {
    if (this.tracer !== undefined) this.tracer(write, va, size);
    const pa = this.translateData(va, write);
    const xlat = this.xlat;
    this.xlat = 0;
    const line = Math.floor(pa / LINE_SIZE);
    let lat = this.memsys.access(this, line, write);
    if ((pa & (LINE_SIZE - 1)) + size > LINE_SIZE) lat += this.memsys.access(this, line + 1, write);
    // A locked op's access is its load µop to the core: it waits for the value (load-to-use).
    this.advance(this.core.access(this.clock, lat, write && !this.locked, va, xlat), true);
    this.lastPa = pa;
    return pa;
  }

  private crossPageLoad(va: number, size: number): number {
    let value = 0;
    for (let i = 0; i < size; i++) value += this.mem.read8(this.access(va + i, 1, false)) * 2 ** (8 * i);
    return value;
  }

  private crossPageStore(va: number, size: number, value: number): void {
    let lo = value >>> 0;
    let hi = Math.floor(value / TWO_32) >>> 0;
    for (let i = 0; i < size; i++) {
      this.mem.write8(this.access(va + i, 1, true), lo & 0xff);
      lo = ((lo >>> 8) | ((hi & 0xff) << 24)) >>> 0;
      hi >>>= 8;
    }
  }

  // --- Fast strings: rep stosb, rep movsb ------------------------------------------------
  //
  // As an amd64 core runs them for large sizes (fast-string microcode, ERMSB/FSRM):
  // - Each page is translated once, through the TLBs, walking on a miss; the walk stalls the
  //   operation (its cycles are the walk's own, as for any access).
  // - Stores leave at cpu.storeBytesPerCycle. A line the stores cover whole is taken without
  //   its data (memsys.writeFullLine: no read for ownership; invalidating other copies still
  //   costs the invalidation round); a partly covered first or last line is an ordinary store.
  //   A copy reads each source line as an ordinary load.
  // - A line that is not an L1D hit holds one of cpu.fillBuffers miss buffers for its latency;
  //   they overlap, and the stores wait when all are busy. The front end moves on when the last
  //   store has issued; the lines in flight then complete as other stores do (a drain, a locked
  //   op or a fence waits for them; an in-order core, robSize 1, blocks on the last one).
  // - The caches see the lines in program order and at once (the machine is eager); the clock
  //   is the pipeline's. Writes to memory are real: the bytes are zero, filled or copied.

  /** rep stosb: writes `len` bytes of `byte` from va. */
  storeFill(va: number, len: number, byte: number): void {
    if (len <= 0) return;
    this.bulkBegin();
    const value = byte & 0xff;
    let pageVa = -1;
    let pageBase = 0;
    for (let off = 0; off < len; ) {
      const at = va + off;
      const inLine = Math.min(LINE_SIZE - (at % LINE_SIZE), len - off);
      const vpn = Math.floor(at / 4096);
      if (vpn !== pageVa) {
        pageBase = this.bulkTranslate(vpn * 4096, true);
        pageVa = vpn;
      }
      const pa = pageBase + (at - vpn * 4096);
      if (this.tracer !== undefined) this.tracer(true, at, inLine);
      this.bulkLine(Math.floor(pa / LINE_SIZE), true, inLine === LINE_SIZE, inLine);
      this.mem.fillInFrame(pa, inLine, value);
      off += inLine;
    }
    this.bulkEnd(len);
  }

  /** rep movsb: copies `len` bytes from src to dst (non-overlapping, forward). */
  copyBytes(dst: number, src: number, len: number): void {
    if (len <= 0) return;
    this.bulkBegin();
    let dPage = -1;
    let dBase = 0;
    let sPage = -1;
    let sBase = 0;
    let lastSrcLine = -1;
    for (let off = 0; off < len; ) {
      const d = dst + off;
      const s = src + off;
      const dLeft = LINE_SIZE - (d % LINE_SIZE);
      const n = Math.min(dLeft, LINE_SIZE - (s % LINE_SIZE), 4096 - (s % 4096), len - off);
      const svpn = Math.floor(s / 4096);
      if (svpn !== sPage) {
        sBase = this.bulkTranslate(svpn * 4096, false);
        sPage = svpn;
      }
      const spa = sBase + (s - svpn * 4096);
      const sLine = Math.floor(spa / LINE_SIZE);
      if (sLine !== lastSrcLine) {
        if (this.tracer !== undefined) this.tracer(false, s, Math.min(LINE_SIZE - (s % LINE_SIZE), len - off));
        this.bulkLine(sLine, false, false, 0);
        lastSrcLine = sLine;
      }
      const dvpn = Math.floor(d / 4096);
      if (dvpn !== dPage) {
        dBase = this.bulkTranslate(dvpn * 4096, true);
        dPage = dvpn;
      }
      const dpa = dBase + (d - dvpn * 4096);
      // A destination line is written once, when the chunk that starts it is reached; it is
      // whole when the copy covers all of it.
      if (d % LINE_SIZE === 0 || off === 0) {
        const lineBytes = Math.min(dLeft, len - off);
        if (this.tracer !== undefined) this.tracer(true, d, lineBytes);
        this.bulkLine(Math.floor(dpa / LINE_SIZE), true, lineBytes === LINE_SIZE, lineBytes);
      }
      for (let i = 0; i < n; i++) this.mem.write8(dpa + i, this.mem.read8(spa + i));
      off += n;
    }
    this.bulkEnd(len);
  }

  /** The physical base of a 4K page for a fast string, translated at the pipeline's time. */
  private bulkTranslate(pageVa: number, write: boolean): number {
    this.clock = this.bulkIssue;
    const pa = this.translateData(pageVa, write);
    this.clock += this.xlat;
    this.xlat = 0;
    this.bulkIssue = this.clock;
    if (this.bulkDone < this.clock) this.bulkDone = this.clock;
    return pa;
  }

  /** One line of a fast string: its access, its miss buffer, its store-port time. */
  private bulkLine(line: number, write: boolean, full: boolean, bytes: number): void {
    this.clock = this.bulkIssue;
    this.ctr[this.cbase + (write ? kStores : kLoads)]!++;
    const lat = full ? this.memsys.writeFullLine(this, line) : this.memsys.access(this, line, write);
    let at = this.bulkIssue;
    if (lat > this.l1HitLatency) {
      const fb = this.fillBuffers;
      let k = 0;
      for (let i = 1; i < fb.length; i++) if (fb[i]! < fb[k]!) k = i;
      if (fb[k]! > at) at = fb[k]!;
      fb[k] = at + lat;
      this.bulkIssue = at;
    }
    if (at + lat > this.bulkDone) this.bulkDone = at + lat;
    if (write) this.bulkIssue += Math.ceil(bytes / this.storeBytesPerCycle);
  }

  /** Starts a fast string at the front end's clock, remembering what is charged so far. */
  private bulkBegin(): void {
    this.bulkStart = this.clock;
    this.bulkCharged0 = this.ctr[this.cbase + kCycles]!;
    this.bulkIssue = this.clock;
    this.bulkDone = this.clock;
  }

  private bulkEnd(len: number): void {
    const start = this.bulkStart;
    const charged0 = this.bulkCharged0;
    // The front end goes on once the last store has issued; the lines still in flight complete
    // as any store does (a drain waits for them), but for an in-order core, which blocks.
    const blocks = this.core.inFlightUntil(this.bulkDone);
    const end = blocks ? Math.max(this.bulkDone, this.bulkIssue) : this.bulkIssue;
    this.core.endCycle();
    const ctr = this.ctr;
    const b = this.cbase;
    const rest = end - start - (ctr[b + kCycles]! - charged0);
    this.clock = end;
    ctr[b + kCycles]! += rest;
    ctr[b + kMemCycles]! += rest;
    ctr[b + K['bulk.bytes']]! += len;
  }

  // --- Translation ------------------------------------------------------------------------

  /**
   * Translates va as an access would, outside one: the TLB and page-walk cycles are spent now
   * (the front end waits for them). Returns the physical address.
   */
  translate(va: number, write: boolean): number {
    const pa = this.translateData(va, write);
    if (this.xlat > 0) {
      this.drain();
      this.tick(this.xlat);
      this.xlat = 0;
    }
    return pa;
  }

  /** Translates va for a data access, leaving its TLB and page-walk cycles in xlat. */
  private translateData(va: number, write: boolean): number {
    const vpn = Math.floor(va / 4096);
    if (vpn === this.memoVpn && (!write || (this.memoFlags & RW_D) === RW_D)) {
      this.ctr[this.cbase + kTlbL1Hit]!++;
      return this.memoBase + (va - vpn * 4096);
    }
    return this.translateSlow(va, write);
  }

  private translateSlow(va: number, write: boolean): number {
    const tlb = this.tlb;
    const ctr = this.ctr;
    for (let attempt = 0; ; attempt++) {
      const b = this.cbase;
      let ok = true;
      if (tlb.lookupL1(va)) {
        ctr[b + kTlbL1Hit]!++;
      } else {
        ctr[b + K['tlb.l1Miss']]!++;
        if (tlb.lookupL2(va)) {
          ctr[b + K['tlb.l2Hit']]!++;
          this.xlat += this.l2TlbLatency;
        } else {
          ctr[b + K['tlb.l2Miss']]!++;
          ok = this.walk(va, write);
        }
      }
      if (ok && write && (tlb.hitFlags & RW_D) !== RW_D) {
        // A write through an entry whose page is read-only faults; one whose D bit is clear
        // makes the hardware walk again to set it.
        ok = (tlb.hitFlags & TLB_RW) === 0 ? this.fault(PF_PROT | PF_WRITE) : this.walk(va, write);
      }
      if (ok) {
        const pageOffset4k = tlb.hitShift === PAGE_4K ? 0 : Math.floor((va % (tlb.hitShift === 21 ? 2097152 : 1073741824)) / 4096) * 4096;
        this.memoVpn = Math.floor(va / 4096);
        this.memoBase = tlb.hitBase + pageOffset4k;
        this.memoFlags = tlb.hitFlags;
        return this.memoBase + (va % 4096);
      }
      ctr[this.cbase + K['fault.page']]!++;
      // The fault is taken when the translation has failed: its cycles so far first.
      this.drain();
      this.tick(this.xlat);
      this.xlat = 0;
      const handler = this.onPageFault;
      if (handler === undefined || attempt >= MAX_FAULT_RETRIES || !handler(this, va, this.faultCode)) {
        throw new PageFault(this.id, va, this.faultCode);
      }
    }
  }

  private fault(code: number): boolean {
    this.faultCode = code;
    return false;
  }

  /**
   * The hardware page walk: four (three for 2M, two for 1G) loads through this CPU's caches,
   * setting A on each entry used and D on the leaf for a write, as locked updates. Fills the
   * TLBs and tlb.hit* on success; on a fault leaves the error code in faultCode.
   */
  private walk(va: number, write: boolean): boolean {
    const ctr = this.ctr;
    const b = this.cbase;
    let spent = this.walkLatency;
    let table = this.cr3;
    let rw = true;
    let us = true;
    let nx = false;
    let ok = false;
    const record = this.lastWalk;
    record.va = va;
    record.levels = 0;
    for (let level = 4; level >= 1; level--) {
      const at = table + tableIndex(va, level) * 8;
      const line = Math.floor(at / LINE_SIZE);
      if (this.tracer !== undefined) this.tracer(false, DMAP_BASE + at, 8, true);
      spent += this.memsys.access(this, line, false);
      ctr[b + K['tlb.walkLoads']]!++;
      let lo = this.mem.read32(at);
      const hi = this.mem.read32(at + 4);
      record.entry[record.levels] = at;
      record.lo[record.levels] = lo;
      record.hi[record.levels++] = hi;
      if ((lo & PTE_P) === 0) {
        this.faultCode = write ? PF_WRITE : 0;
        break;
      }
      rw &&= (lo & PTE_RW) !== 0;
      us &&= (lo & PTE_US) !== 0;
      nx ||= (hi & PTE_NX_HI) !== 0;
      const leaf = level === 1 || (lo & PTE_PS) !== 0;
      if (leaf && write && !rw) {
        this.faultCode = PF_PROT | PF_WRITE;
        break;
      }
      const want = PTE_A | (leaf && write ? PTE_D : 0);
      if ((lo & want) !== want) {
        lo = (lo | want) >>> 0;
        if (this.tracer !== undefined) this.tracer(true, DMAP_BASE + at, 8, true);
        spent += this.memsys.access(this, line, true) + this.lockedOpLatency;
        this.mem.write32(at, lo);
        ctr[b + K['tlb.adUpdate']]!++;
      }
      if (leaf) {
        const pageShift = PAGE_4K + 9 * (level - 1);
        const flags = (rw ? TLB_RW : 0) | (us ? TLB_US : 0) | (nx ? TLB_NX : 0) | ((lo & PTE_G) !== 0 ? TLB_G : 0) | ((lo & PTE_D) !== 0 ? TLB_D : 0);
        const base = entryFrame(lo, hi);
        this.tlb.fill(va, pageShift, base, flags);
        this.tlb.hitBase = base;
        this.tlb.hitShift = pageShift;
        this.tlb.hitFlags = flags;
        ok = true;
        break;
      }
      table = entryFrame(lo, hi);
    }
    ctr[b + K['tlb.walkCycles']]! += spent;
    this.xlat += spent;
    record.cycles = spent;
    record.ok = ok;
    record.serial++;
    return ok;
  }

  /** invlpg: drops this CPU's translations of va. */
  invlpg(va: number): void {
    this.tlb.invalidatePage(va);
    this.memoVpn = -1;
    this.tick(this.invlpgLatency);
    this.count(K['tlb.invlpg']);
  }

  /** Reloads CR3: drops every translation but global ones (all of them when `global`). */
  flushTlb(global = false): void {
    this.tlb.flush(!global);
    this.memoVpn = -1;
    this.count(K['tlb.flush']);
  }

  /** Switches to another page-table root; drops non-global translations as a CR3 load does. */
  setCr3(pml4: number): void {
    this.cr3 = pml4;
    this.flushTlb(false);
  }

  // --- Synchronization points -------------------------------------------------------------

  /** Waits until this CPU's clock is the smallest of the runnable CPUs (ties: lowest id). */
  *sync(): Task {
    yield* this.turn(true);
  }

  /**
   * A kernel entry: yields if this CPU has run more than the sync quantum ahead of the slowest
   * runnable CPU (with quantum 0, whenever it is not the slowest).
   */
  *checkpoint(): Task {
    if (this.machine.aheadOfQuantum(this)) yield YIELD_SYNC;
  }

  /**
   * Waits for this CPU's turn to access va, and when the access needs a line another CPU's
   * cache holds, spends the request's leg to that holder first (memsys.requestLeg) and waits
   * for its turn again: the holder keeps hitting on the line until the probe reaches it, so a
   * holder that takes a lock again before then keeps it (the re-acquire advantage).
   */
  *syncAccess(va: number, write: boolean, drain = true): Task {
    yield* this.turn(drain);
    this.memsys.prepaidLine[this.id] = -1;
    const vpn = Math.floor(va / 4096);
    let pa: number;
    if (vpn === this.memoVpn) pa = this.memoBase + (va - vpn * 4096);
    else {
      const t = probeTranslation(this.mem, this.cr3, va);
      if (t === undefined) return;
      pa = t.pa;
    }
    const line = Math.floor(pa / LINE_SIZE);
    const leg = this.memsys.requestLeg(this, line, write);
    if (leg === 0) return;
    this.clock += leg;
    this.ctr[this.cbase + kCycles]! += leg;
    this.ctr[this.cbase + kMemCycles]! += leg;
    this.memsys.prepaid[this.id] = leg;
    this.memsys.prepaidLine[this.id] = line;
    yield* this.turn(drain);
  }

  /** sync(), or for a release store (which does not drain) only the wait for this CPU's turn. */
  private *turn(drain: boolean): Task {
    if (drain) this.drain();
    if (this.machine.mustWait(this)) yield YIELD_SYNC;
  }

  /** Ends what syncAccess() began: the access it prepared has been made. */
  private settle(): void {
    this.memsys.prepaidLine[this.id] = -1;
  }

  /** A locked read-modify-write at this CPU's turn (syncAccess), as every atomic below is. */
  private *rmw(va: number, size: number, op: number, a: number, b: number): Task<number> {
    yield* this.syncAccess(va, true);
    const old = this.rmwNow(va, size, op, a, b);
    this.settle();
    if (this.viewPause) yield YIELD_INPUT;
    return old;
  }

  *cmpxchg32(va: number, expected: number, value: number): Task<number> {
    return yield* this.rmw(va, 4, OP_CMPXCHG, expected, value);
  }

  /** 64-bit compare-and-exchange of unsigned values below 2^53. */
  *cmpxchg64(va: number, expected: number, value: number): Task<number> {
    return yield* this.rmw(va, 8, OP_CMPXCHG, expected, value);
  }

  /** 64-bit compare-and-exchange of pointers (48-bit addresses, stored sign-extended). */
  *cmpxchgPtr(va: number, expected: number, value: number): Task<number> {
    return yield* this.rmw(va, -8, OP_CMPXCHG, expected, value);
  }

  *xadd32(va: number, delta: number): Task<number> {
    return yield* this.rmw(va, 4, OP_XADD, delta, 0);
  }

  *xadd64(va: number, delta: number): Task<number> {
    return yield* this.rmw(va, 8, OP_XADD, delta, 0);
  }

  *xchg32(va: number, value: number): Task<number> {
    return yield* this.rmw(va, 4, OP_XCHG, value, 0);
  }

  *xchg64(va: number, value: number): Task<number> {
    return yield* this.rmw(va, 8, OP_XCHG, value, 0);
  }

  *xchgPtr(va: number, value: number): Task<number> {
    return yield* this.rmw(va, -8, OP_XCHG, value, 0);
  }

  /**
   * A plain store at a synchronization point: a lock release. It does not drain (x86 does not
   * wait at a release store): it takes its turn at the front end's clock, which is early by at
   * most the latency of the critical section's accesses still in flight.
   */
  *storeRelease32(va: number, value: number): Task {
    yield* this.syncAccess(va, true, false);
    this.store32(va, value);
    this.settle();
    if (this.onRelease !== undefined && this.onRelease(this, va, this.lastPa) === true) {
      this.viewPause = true;
      yield YIELD_INPUT;
    }
  }

  /**
   * A locked read-modify-write performed now, without waiting for the CPU's turn: only for
   * code already at a synchronization point (an IPI handler run by the sender's IPI).
   * size -8 is a pointer-valued 64-bit operation.
   */
  rmwNow(va: number, size: number, op: number, a: number, b: number): number {
    const bytes = size < 0 ? 8 : size;
    if (va % bytes !== 0) throw new RangeError(`cpu${this.id}: misaligned ${bytes * 8}-bit atomic at ${hex64(va)}`);
    this.count(K['mem.atomics']);
    this.drain();
    const start = this.clock;
    this.locked = true;
    const pa = this.access(va, bytes, true);
    this.locked = false;
    this.drain();
    this.tick(this.lockedOpLatency);
    // The locked line stays here until the operation completes; requests for it queue.
    this.memsys.hold(Math.floor(pa / LINE_SIZE), start, this.clock);
    const mem = this.mem;
    let old: number;
    if (size === 4) old = mem.read32(pa);
    else if (size === 8) old = mem.read64(pa);
    else old = pointerFrom(mem.read32(pa), mem.read32(pa + 4));
    let next: number;
    if (op === OP_CMPXCHG) {
      if (old !== (size === 4 ? a >>> 0 : a)) {
        if (this.onAtomic !== undefined && this.onAtomic(this, va, pa, old, old) === true) this.viewPause = true;
        return old;
      }
      next = b;
    } else if (op === OP_XADD) {
      next = size === 4 ? (old + a) >>> 0 : old + a;
    } else {
      next = a;
    }
    if (size === 4) mem.write32(pa, next);
    else if (size === 8) mem.write64(pa, next);
    else {
      mem.write32(pa, next >>> 0);
      mem.write32(pa + 4, pointerHi(next));
    }
    if (this.onAtomic !== undefined && this.onAtomic(this, va, pa, old, next) === true) this.viewPause = true;
    return old;
  }

  /**
   * Spins while the 32-bit word at va holds `busy` — the inner loop of test-and-test-and-set:
   * load, and while unchanged, pause and load again. Returns the first other value seen.
   *
   * The loop is not run turn by turn: once the word is seen busy, the line sits in this CPU's
   * L1D and every turn hits there, so the CPU blocks until another CPU's write invalidates the
   * line, then resumes half a turn (on average) after the write reached it. Those turns are
   * counted as lock.spinCycles and lock.spins, not as L1D hits.
   */
  *spinWhile32(va: number, busy: number): Task<number> {
    for (let waited = false; ; waited = true) {
      yield* this.syncAccess(va, false);
      const v = this.load32(va);
      this.settle();
      if (v !== busy >>> 0) {
        // After turns of the loop the exit is mispredicted: it waits for this load's value.
        if (waited) this.mispredict();
        return v;
      }
      yield* this.waitForLineWrite(`spinning on ${hex64(va)}`);
    }
  }

  /** Blocks until another CPU writes the line this CPU accessed last (see spinWhile32). */
  *waitForLineWrite(reason: string): Task {
    this.memsys.watchLine[this.id] = Math.floor(this.lastPa / LINE_SIZE);
    this.block(reason);
    yield YIELD_BLOCK;
    const waited = Math.max(0, this.wakeTime - this.blockedSince) + this.stolenWhileBlocked;
    // The write lands somewhere in a turn of the loop; the CPU notices at that turn's end,
    // on average half a turn later (the loop's phase against another CPU's write is as good
    // as random on real hardware; a fixed phase would make every figure jump by whole turns).
    const noticed = waited + Math.ceil(this.spinIteration / 2);
    const turns = Math.max(1, Math.round(noticed / this.spinIteration));
    const spin = noticed - this.stolenWhileBlocked;
    this.stolenWhileBlocked = 0;
    this.tick(spin);
    this.count(K['lock.spinCycles'], spin);
    this.count(K['lock.spins'], turns);
    if (this.onSpin !== undefined) this.onSpin(this, Math.floor(this.lastPa / LINE_SIZE), spin);
  }

  /** Sleeps until machine.wake(); the time asleep is counted as idle. */
  *sleep(reason: string): Task {
    this.block(reason);
    yield YIELD_BLOCK;
    const idle = Math.max(0, this.wakeTime - this.blockedSince - this.stolenWhileBlocked);
    this.stolenWhileBlocked = 0;
    this.tick(idle);
    this.count(K.idleCycles, idle);
  }

  private block(reason: string): void {
    this.drain();
    this.status = CPU_BLOCKED;
    this.blockedSince = this.clock;
    this.blockReason = reason;
  }
}
