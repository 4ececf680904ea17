// The microbenchmarks of `kmemu calibrate` as emulated programs: the same loops as
// tools/calib/calib.c, run on a Machine, timed by the CPUs' clocks. Deterministic and exact:
// every figure is a cycle delta divided by the operations it covers, after a warm-up.

import {
  DMAP_BASE, KERNBASE, Machine, PAGE_1G, PAGE_4K, PageTableEditor, UserError, mergeConfig, pointerHi, spinAcquire, spinRelease,
  validateMachineConfig, type Cpu, type MachineConfig, type Task,
} from '../emu/index.js';
import { CALIBRATE_FIGURES, type CalibrateFigure } from './commands/calibrate.js';

export { CALIBRATE_FIGURES, FIGURE_DESCRIPTIONS, type CalibrateFigure } from './commands/calibrate.js';

export interface CalibrateResult {
  name: CalibrateFigure;
  cycles: number;
}

const LINE = 64;
const PAGE = 4096;
const PT_BASE = 0x10_0000; // page-table frames from 1 MiB up
const PT_LIMIT = 0x400_0000; // ... to 64 MiB
const DATA_PA = 0x400_0000; // every data region from 64 MiB up
const SMALL_VA = KERNBASE; // the 4 KiB-page window of the TLB figures

/** Cycles to two decimals: the figures are exact quotients, printed as such. */
const round2 = (x: number) => Math.round(x * 100) / 100;

const pow2ceil = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Stores the 64-bit pointer to `va` at physical `pa` (functionally, while setting up). */
function writePtr(mem: Machine['mem'], pa: number, va: number): void {
  mem.write32(pa, va >>> 0);
  mem.write32(pa + 4, pointerHi(va));
}

/** Zeroes one 4 KiB page as the kernel's pagezero does (rep stosb: kernel/amd64/support.ts). */
function zeroPage(cpu: Cpu, va: number): void {
  cpu.storeFill(va, PAGE, 0);
}

/** Copies one 4 KiB page as a kernel bcopy does (rep movsb). */
function copyPage(cpu: Cpu, dst: number, src: number): void {
  cpu.copyBytes(dst, src, PAGE);
}

/** A seeded xorshift32: the pointer chase's random cycle, the same in every run. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** A fresh machine of `config` with the physical memory direct-mapped at DMAP_BASE by 1G pages. */
class Bench {
  readonly m: Machine;
  readonly pt: PageTableEditor;
  readonly cr3: number;
  private nextTable = PT_BASE;

  constructor(config: MachineConfig) {
    this.m = new Machine(config);
    this.pt = new PageTableEditor(this.m.mem, () => {
      if (this.nextTable >= PT_LIMIT) throw new RangeError('calibrate: page tables beyond 64 MiB');
      const pa = this.nextTable;
      this.nextTable += PAGE;
      return pa;
    });
    this.cr3 = this.nextTable;
    this.nextTable += PAGE;
    const gigs = Math.ceil(config.memory.size / 2 ** 30);
    for (let g = 0; g < gigs; g++) this.pt.map(this.cr3, DMAP_BASE + g * 2 ** 30, g * 2 ** 30, PAGE_1G, { global: true });
    for (const cpu of this.m.cpus) cpu.setCr3(this.cr3);
  }

  /** Runs `program` on CPU 0 alone. */
  one(program: (cpu: Cpu) => Task<unknown>): void {
    this.m.run([program]);
  }

  /** Runs `program` on CPUs 0 and 1. */
  two(program: (cpu: Cpu) => Task<unknown>): void {
    this.m.run([program, program]);
  }
}

function needMemory(config: MachineConfig, bytes: number, what: string): void {
  if (DATA_PA + bytes > config.memory.size) {
    throw new UserError(`calibrate: ${what} needs ${Math.ceil((DATA_PA + bytes) / 2 ** 20)} MiB of physical memory, the machine has ${Math.floor(config.memory.size / 2 ** 20)} MiB (field memory.size)`);
  }
}

/**
 * Dependent pointer chase through `lines` lines in one random cycle (line i at byte i × stride,
 * plus (i mod 64) lines so that strided lines spread over the sets): `warm` loads, then
 * `measured` loads timed. Cycles per load.
 */
function chase(config: MachineConfig, lines: number, stride: number, warm: number, measured: number): number {
  needMemory(config, lines * stride + PAGE, 'the pointer chase');
  const b = new Bench(config);
  const at = (i: number) => DATA_PA + i * stride + (stride > LINE ? (i % 64) * LINE : 0);
  const order = new Uint32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  const rand = xorshift(0x9e3779b9);
  for (let i = lines - 1; i > 0; i--) {
    const j = rand() % i; // Sattolo: one cycle through every line
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const mem = b.m.mem;
  // Each line holds the direct-map pointer to the next, as a linked list in C would.
  for (let i = 0; i < lines; i++) writePtr(mem, at(order[i]!), DMAP_BASE + at(order[(i + 1) % lines]!));
  let cycles = 0;
  b.one(function* (cpu) {
    let va = DMAP_BASE + at(0);
    for (let i = 0; i < warm; i++) va = cpu.loadPtr(va);
    cpu.drain();
    const t0 = cpu.clock;
    for (let i = 0; i < measured; i++) va = cpu.loadPtr(va);
    cpu.drain();
    cycles = cpu.clock - t0;
  });
  return cycles / measured;
}

/** A chase over `bytes` of consecutive lines, warmed by `passes` full passes: cycles per load. */
function chaseResident(config: MachineConfig, bytes: number, passes: number): number {
  const lines = Math.floor(bytes / LINE);
  return chase(config, lines, LINE, passes * lines, Math.min(lines, 10_000));
}

/**
 * A chase through lines no cache has held: 11,000 lines spread over twice the caches, each
 * loaded once (the first 1,000 warm the TLB). Cycles per load.
 */
function chaseCold(config: MachineConfig): number {
  const lines = 11_000;
  const stride = Math.max(LINE, Math.floor(beyondCaches(config) / lines / LINE) * LINE);
  return chase(config, lines, stride, 1000, lines - 1000);
}

/**
 * `npages` lines read in the LCG's full-period order, each address depending on the value the
 * last load returned (0), as tools/calib/calib.c does: sparse, one line in each of `npages`
 * 4 KiB pages (at line (idx + 17 (idx >> 4)) mod 64 of its page, so that the lines of any 1024
 * consecutive pages fall in distinct sets of a 1024-set cache), then dense, the same number of
 * lines packed in consecutive lines. Both are spread evenly over the cache sets and hit the
 * same level: the difference is what
 * translating a new page per load costs. Returns the extra cycles per load of the sparse run.
 */
function tlbExtra(config: MachineConfig, npages: number): number {
  needMemory(config, npages * PAGE, 'the TLB figures');
  const b = new Bench(config);
  b.pt.mapRange(b.cr3, SMALL_VA, DATA_PA, npages * PAGE, PAGE_4K, { global: true });
  for (const cpu of b.m.cpus) cpu.setCr3(b.cr3);
  const mask = npages - 1;
  const perLoad: number[] = [];
  b.one(function* (cpu) {
    for (const sparse of [true, false]) {
      // The lines in the LCG's order, each holding the pointer to the next.
      const offset = (idx: number) => (sparse ? idx * PAGE + ((idx + 17 * (idx >> 4)) & 63) * LINE : idx * LINE);
      for (let i = 0, idx = 0; i < npages; i++) {
        const next = (idx * 5 + 1) & mask;
        writePtr(b.m.mem, DATA_PA + offset(idx), SMALL_VA + offset(next));
        idx = next;
      }
      let va = SMALL_VA + offset(0);
      for (let i = 0; i < 2 * npages; i++) va = cpu.loadPtr(va);
      cpu.drain();
      const t0 = cpu.clock;
      for (let i = 0; i < npages; i++) va = cpu.loadPtr(va);
      cpu.drain();
      perLoad.push((cpu.clock - t0) / npages);
    }
  });
  return perLoad[0]! - perLoad[1]!;
}

/** A run of pause (fence: mfence) instructions on CPU 0: cycles per instruction. */
function perInstruction(config: MachineConfig, fence: boolean): number {
  const b = new Bench(config);
  const n = 1000;
  let cycles = 0;
  b.one(function* (cpu) {
    cpu.drain();
    const t0 = cpu.clock;
    for (let i = 0; i < n; i++) {
      if (fence) cpu.mfence();
      else cpu.pause();
    }
    cpu.drain();
    cycles = cpu.clock - t0;
  });
  return cycles / n;
}

function atomicUncontended(config: MachineConfig): number {
  const b = new Bench(config);
  const va = DMAP_BASE + DATA_PA;
  const ops = 1000;
  let cycles = 0;
  b.one(function* (cpu) {
    for (let i = 0; i < 100; i++) yield* cpu.xadd64(va, 1);
    cpu.drain();
    const t0 = cpu.clock;
    for (let i = 0; i < ops; i++) yield* cpu.xadd64(va, 1);
    cpu.drain();
    cycles = cpu.clock - t0;
  });
  return cycles / ops;
}

/**
 * CPU 0 writes an odd number into the flag, CPU 1 waits for it and writes the next even one,
 * and so on: cycles per one-way handoff on CPU 0's clock. The busy wait re-reads the flag at
 * every turn; with `pause` it is the kernel's spin-wait (cpu.spinWhile32: load, pause, load).
 */
function handoff(config: MachineConfig, pause: boolean): number {
  const b = new Bench(config);
  const va = DMAP_BASE + DATA_PA;
  const warm = 20;
  const rounds = 200;
  let cycles = 0;
  function* waitFor(cpu: Cpu, old: number, want: number): Task {
    if (pause) {
      while ((yield* cpu.spinWhile32(va, old)) !== want);
      return;
    }
    for (let waited = false; ; waited = true) {
      yield* cpu.sync();
      if (cpu.load32(va) === want) {
        if (waited) cpu.machineClear(); // no pause: the loads run ahead are squashed at the exit
        return;
      }
    }
  }
  b.two(function* (cpu) {
    let seq = 0;
    let t0 = 0;
    for (let i = 0; i < warm + rounds; i++) {
      if (i === warm) t0 = cpu.clock;
      if (cpu.id === 0) {
        yield* cpu.storeRelease32(va, seq + 1);
        yield* waitFor(cpu, seq + 1, seq + 2);
      } else {
        yield* waitFor(cpu, seq, seq + 1);
        yield* cpu.storeRelease32(va, seq + 2);
      }
      seq += 2;
    }
    if (cpu.id === 0) cycles = cpu.clock - t0;
  });
  return cycles / (2 * rounds);
}

/** Both CPUs run `op` `ops` times after a warm-up: aggregate cycles per op over the makespan. */
function twoCpuAggregate(config: MachineConfig, op: (cpu: Cpu) => Task): number {
  const b = new Bench(config);
  const warm = 50;
  const ops = 500;
  b.two(function* (cpu) {
    for (let i = 0; i < warm; i++) yield* op(cpu);
  });
  b.m.barrier();
  const t0 = b.m.makespan;
  b.two(function* (cpu) {
    for (let i = 0; i < ops; i++) yield* op(cpu);
  });
  return (b.m.makespan - t0) / (2 * ops);
}

function ttas1(config: MachineConfig): number {
  const b = new Bench(config);
  const va = DMAP_BASE + DATA_PA;
  const pairs = 1000;
  let cycles = 0;
  b.one(function* (cpu) {
    for (let i = 0; i < 100; i++) {
      yield* spinAcquire(cpu, va);
      yield* spinRelease(cpu, va);
    }
    cpu.drain();
    const t0 = cpu.clock;
    for (let i = 0; i < pairs; i++) {
      yield* spinAcquire(cpu, va);
      yield* spinRelease(cpu, va);
    }
    cpu.drain();
    cycles = cpu.clock - t0;
  });
  return cycles / pairs;
}

/** Bytes that no cache level holds after a pass over them: twice all the caches together. */
function beyondCaches(config: MachineConfig): number {
  return 2 * (config.llc.size + config.cpus * config.l2.size);
}

/**
 * Zeroing (copy: copying) 4 KiB pages that no cache holds, as the kernel zeroes a page it takes
 * off the free queue: cycles per page. The first page warms the TLB and is not counted.
 */
function pages(config: MachineConfig, copy: boolean): number {
  const measured = 64;
  const region = (measured + 1) * PAGE;
  needMemory(config, 2 * region, copy ? 'page.copy' : 'page.zero');
  const b = new Bench(config);
  const src = DMAP_BASE + DATA_PA;
  const dst = src + region;
  let cycles = 0;
  b.one(function* (cpu) {
    const one = (p: number) => (copy ? copyPage(cpu, dst + p * PAGE, src + p * PAGE) : zeroPage(cpu, src + p * PAGE));
    one(0);
    cpu.drain();
    const t0 = cpu.clock;
    for (let p = 1; p <= measured; p++) one(p);
    cpu.drain();
    cycles = cpu.clock - t0;
  });
  return cycles / measured;
}

/** Where the two CPUs of the two-CPU figures sit: one core complex (near) or two (far). */
export type Placement = 'near' | 'far';

/**
 * Every figure of `config` (at least 2 CPUs), in CALIBRATE_FIGURES order, or only `only`. The
 * two-CPU figures run on CPUs 0 and 1, in one core complex (`near`) or, for `far`, on the same
 * machine with every CPU its own complex (coherence.coresPerComplex 1: the far* latencies).
 */
export function emulatedFigures(config: MachineConfig, only?: readonly CalibrateFigure[], placement: Placement = 'near'): CalibrateResult[] {
  if (config.cpus < 2) throw new UserError(`calibrate: expected a machine of at least 2 CPUs (the handoff and contention figures use two), got ${config.cpus}`);
  const c = config;
  const two = placement === 'far' ? validateMachineConfig(mergeConfig(config, { coherence: { coresPerComplex: 1 } })) : config;
  const lockVa = DMAP_BASE + DATA_PA;
  const run: Record<CalibrateFigure, () => number> = {
    'load.l1': () => chaseResident(c, c.l1d.size / 2, 1),
    'load.l2': () => chaseResident(c, c.l2.size / 2, 1),
    'load.llc': () => chaseResident(c, Math.max(2 * c.l2.size, Math.min(c.llc.size / 2, 4 * c.l2.size)), 2),
    'load.dram': () => chaseCold(c),
    // Beyond the L1 DTLB, within half the L2 TLB; then twice the L2 TLB (2048 and 8192 pages
    // on amd64-host, as calib.c reads).
    'tlb.l2hit': () => tlbExtra(c, Math.max(pow2ceil(2 * c.tlb.l1Small.entries), pow2ceil(c.tlb.l2.entries) / 2)),
    'tlb.walk': () => tlbExtra(c, pow2ceil(2 * c.tlb.l2.entries)),
    'atomic.uncontended': () => atomicUncontended(c),
    pause: () => perInstruction(c, false),
    mfence: () => perInstruction(c, true),
    'handoff.oneway': () => handoff(two, false),
    'handoff.oneway.pause': () => handoff(two, true),
    'atomic.contended2': () => twoCpuAggregate(two, function* (cpu) {
      yield* cpu.xadd64(lockVa, 1);
    }),
    'ttas.1cpu': () => ttas1(c),
    'ttas.2cpu': () => twoCpuAggregate(two, function* (cpu) {
      yield* spinAcquire(cpu, lockVa);
      yield* spinRelease(cpu, lockVa);
    }),
    'page.zero': () => pages(c, false),
    'page.copy': () => pages(c, true),
  };
  return CALIBRATE_FIGURES.filter((n) => only === undefined || only.includes(n)).map((name) => ({ name, cycles: round2(run[name]()) }));
}
