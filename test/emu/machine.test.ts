// Exact-cycle tests of the machine on the coursework preset:
//   L1D 2, L2 10, LLC 30 (inclusive), DRAM 100, c2c 40, invalidate 30 cycles;
//   L2 TLB hit +5, walk start 2, invlpg 5, locked RMW +10, pause 10, IPI 200.
// Each test states where its figure comes from.
import { describe, expect, it } from 'vitest';
import {
  KERNBASE, Machine, MachineDeadlock, PageFault, spinAcquire, spinRelease, type Cpu, type Task,
} from '../../emu/index.js';
import { VA_1G, VA_2M, VA_4K, testMachine } from './helpers.js';

/** Cycles and counter deltas of `body` run on cpu (a plain, synchronous measurement). */
function measure(cpu: Cpu, m: Machine, body: () => void): { cycles: number; d: (name: Parameters<ReturnType<Machine['snapshot']>['get']>[1]) => number } {
  const before = m.snapshot();
  const t0 = cpu.clock;
  body();
  const cycles = cpu.clock - t0;
  const delta = m.snapshot().minus(before);
  return { cycles, d: (name) => delta.get(cpu.id, name) };
}

function runOne(m: Machine, cpuId: number, body: (cpu: Cpu) => Task | void): void {
  const programs = m.cpus.map((c) =>
    c.id === cpuId
      ? function* (cpu: Cpu): Task {
          const r = body(cpu);
          if (r !== undefined) yield* r;
        }
      : undefined,
  );
  m.run(programs);
}

describe('caches', () => {
  it('a load that misses everywhere costs the DRAM latency, and again an L1D hit', () => {
    const { m } = testMachine();
    runOne(m, 0, (cpu) => {
      cpu.load32(VA_4K); // walks the page tables
      const cold = measure(cpu, m, () => cpu.load32(VA_4K + 64));
      expect(cold.cycles).toBe(100);
      expect([cold.d('l1d.readMiss'), cold.d('l2.readMiss'), cold.d('llc.miss'), cold.d('dram.read')]).toEqual([1, 1, 1, 1]);
      const warm = measure(cpu, m, () => cpu.load32(VA_4K + 64));
      expect(warm.cycles).toBe(2);
      expect([warm.d('l1d.readHit'), warm.d('l1d.readMiss'), warm.d('tlb.l1Hit')]).toEqual([1, 0, 1]);
    });
  });

  it('an L1D miss that hits L2 costs the L2 latency, one that hits the LLC the LLC latency', () => {
    const { m } = testMachine();
    // L1D: 8 sets × 2 ways; L2: 16 sets × 4 ways; LLC: 32 sets × 8 ways (lines of 64 bytes).
    const a = VA_4K;
    runOne(m, 0, (cpu) => {
      cpu.load32(a);
      cpu.load32(a + 8 * 64); // same L1D set, other L2 set
      cpu.load32(a + 16 * 64); // same L1D set and L2 set: a leaves the 2-way L1D
      const l2hit = measure(cpu, m, () => cpu.load32(a));
      expect(l2hit.cycles).toBe(10);
      expect([l2hit.d('l1d.readMiss'), l2hit.d('l2.readHit')]).toEqual([1, 1]);
      // Four more lines in a's L2 set push it out of the 4-way L2; the LLC keeps it.
      for (let i = 2; i <= 5; i++) cpu.load32(a + 16 * 64 * i);
      const llchit = measure(cpu, m, () => cpu.load32(a));
      expect(llchit.cycles).toBe(30);
      expect([llchit.d('l2.readMiss'), llchit.d('llc.hit'), llchit.d('dram.read')]).toEqual([1, 1, 0]);
    });
  });

  it('a reference that crosses a line boundary touches both lines', () => {
    const { m } = testMachine();
    runOne(m, 0, (cpu) => {
      cpu.load32(VA_4K + 0x800);
      const r = measure(cpu, m, () => cpu.load32(VA_4K + 62));
      expect(r.cycles).toBe(200);
      expect(r.d('l1d.readMiss')).toBe(2);
      expect(r.d('mem.loads')).toBe(1);
    });
  });

  it('a store then a load across a page boundary assembles the bytes of both pages', () => {
    const { m } = testMachine();
    runOne(m, 0, (cpu) => {
      cpu.store64(VA_4K + 4092, 0x0123456789abcd);
      expect(cpu.load64(VA_4K + 4092)).toBe(0x0123456789abcd);
      expect(cpu.load32(VA_4K + 4094)).toBe(0x23456789);
    });
  });

  it('a pointer is stored sign-extended and loads back as the 48-bit address', () => {
    const { m } = testMachine();
    const p = KERNBASE + 0x1234;
    runOne(m, 0, (cpu) => {
      cpu.storePtr(VA_4K + 0x100, p);
      expect(cpu.loadPtr(VA_4K + 0x100)).toBe(p);
    });
    expect(m.mem.read32(0x40_0100)).toBe(0x80001234);
    expect(m.mem.read32(0x40_0104)).toBe(0xffffffff);
  });
});

describe('TLB and page walks', () => {
  it('a TLB miss walks four levels through the caches and sets the A bits', () => {
    const { m } = testMachine();
    runOne(m, 0, (cpu) => {
      // walk start 2 + 4 × (PTE load from DRAM 100 + A-bit update: L1D hit 2 + locked 10) + data 100
      const first = measure(cpu, m, () => cpu.load32(VA_4K));
      expect(first.cycles).toBe(2 + 4 * (100 + 12) + 100);
      expect([first.d('tlb.l1Miss'), first.d('tlb.l2Miss'), first.d('tlb.walkLoads'), first.d('tlb.adUpdate')]).toEqual([1, 1, 4, 4]);
      expect(first.d('tlb.walkCycles')).toBe(450);
      const hit = measure(cpu, m, () => cpu.load32(VA_4K + 128));
      expect(hit.cycles).toBe(100);
      expect(hit.d('tlb.l1Hit')).toBe(1);
    });
  });

  it('a 2M page walks three levels and a 1G page two', () => {
    const { m } = testMachine();
    runOne(m, 0, (cpu) => {
      expect(measure(cpu, m, () => cpu.load32(VA_2M + 0x1000)).cycles).toBe(2 + 3 * 112 + 100);
    });
    const fresh = testMachine();
    runOne(fresh.m, 0, (cpu) => {
      expect(measure(cpu, fresh.m, () => cpu.load32(VA_1G + 0x5000)).cycles).toBe(2 + 2 * 112 + 100);
      // The rest of the 1G page is translated by the same L1 entry.
      const far = measure(cpu, fresh.m, () => cpu.load32(VA_1G + 0x3000_0000));
      expect(far.d('tlb.l1Hit')).toBe(1);
      expect(far.d('tlb.walkLoads')).toBe(0);
    });
  });

  it('a first store through an entry whose D bit is clear walks again to set D', () => {
    const { m } = testMachine();
    runOne(m, 0, (cpu) => {
      cpu.load32(VA_4K + 0x40);
      // walk start 2 + 4 PTE loads that hit L1D (2 each) + D-bit update (2 + locked 10), then
      // the store's own line (an L1D hit turning E into M, 2)
      const r = measure(cpu, m, () => cpu.store32(VA_4K + 0x40, 1));
      expect(r.cycles).toBe(2 + 4 * 2 + 12 + 2);
      expect([r.d('tlb.walkLoads'), r.d('tlb.adUpdate')]).toEqual([4, 1]);
      expect(measure(cpu, m, () => cpu.store32(VA_4K + 0x44, 1)).cycles).toBe(2);
    });
  });

  it('an L1 DTLB miss that hits the L2 TLB costs its hit latency', () => {
    const { m } = testMachine();
    // L1 4K DTLB: 4 sets × 2 ways, so pages 0, 4 and 8 share a set; the L2 TLB has 8 sets × 4.
    runOne(m, 0, (cpu) => {
      for (const page of [0, 4, 8]) cpu.load32(VA_4K + page * 4096);
      const r = measure(cpu, m, () => cpu.load32(VA_4K + 128));
      expect(r.cycles).toBe(5 + 100);
      expect([r.d('tlb.l1Miss'), r.d('tlb.l2Hit'), r.d('tlb.walkLoads')]).toEqual([1, 1, 0]);
    });
  });

  it('a write to a read-only page faults with a protection error', () => {
    const { m, pt, cr3 } = testMachine();
    pt.map(cr3, VA_4K + 20 * 4096, 0x80_0000, 12, { write: false });
    expect(() => runOne(m, 0, (cpu) => cpu.store32(VA_4K + 20 * 4096, 1))).toThrow(
      'page fault on cpu0 at ffffffff80014000: protection violation on write',
    );
  });

  it('a fault handler that maps the page lets the access retry', () => {
    const { m, pt, cr3 } = testMachine();
    const va = VA_4K + 40 * 4096;
    const faults: string[] = [];
    m.cpus[0]!.onPageFault = (cpu, at, code) => {
      faults.push(`cpu${cpu.id} ${at.toString(16)} ${code}`);
      pt.map(cr3, at - (at % 4096), 0x90_0000, 12);
      return true;
    };
    runOne(m, 0, (cpu) => cpu.store32(va + 8, 5));
    expect(faults).toEqual([`cpu0 ${(va + 8).toString(16)} 2`]);
    expect(m.mem.read32(0x90_0008)).toBe(5);
  });
});

describe('memory and TLB management', () => {
  it('a 1 TiB machine costs host memory only for the frames it touches', () => {
    const { m } = testMachine({ memory: { size: '1t' } });
    runOne(m, 0, (cpu) => cpu.store32(VA_4K, 1));
    expect(m.mem.size).toBe(2 ** 40);
    expect(m.mem.touchedFrames).toBeLessThan(8);
  });

  it('a TLB flush keeps global translations and a full flush drops them', () => {
    const { m } = testMachine();
    runOne(m, 0, (cpu) => {
      cpu.load32(VA_4K); // mapped global
      cpu.load32(VA_2M); // not global
      cpu.flushTlb(false);
      expect([cpu.tlb.holds(VA_4K), cpu.tlb.holds(VA_2M)]).toEqual([true, false]);
      cpu.flushTlb(true);
      expect(cpu.tlb.holds(VA_4K)).toBe(false);
    });
  });

  it('invlpg drops the translation and the next access walks again', () => {
    const { m } = testMachine();
    runOne(m, 0, (cpu) => {
      cpu.load32(VA_4K);
      cpu.invlpg(VA_4K);
      const r = measure(cpu, m, () => cpu.load32(VA_4K));
      expect(r.d('tlb.walkLoads')).toBe(4);
    });
  });
});

describe('coherence', () => {
  it('a line dirty in CPU1 read by CPU0 is a cache-to-cache transfer', () => {
    const { m } = testMachine();
    const x = VA_4K + 0x200;
    m.run([
      function* (cpu) {
        cpu.load32(VA_4K + 0x400); // TLB warm
        cpu.compute(5000);
        yield* cpu.sync(); // after CPU1's store in simulated time
        const r = measure(cpu, m, () => expect(cpu.load32(x)).toBe(7));
        expect(r.cycles).toBe(40);
        expect([r.d('coherence.c2cTransfer'), r.d('llc.hit'), r.d('dram.read')]).toEqual([1, 0, 0]);
      },
      function* (cpu) {
        cpu.store32(x, 7);
      },
    ]);
    // MESI: the owner keeps a shared copy and the dirty data goes to the LLC.
    expect(m.memsys.lineState(0, 0x40_0200)).toEqual({ l1: 'S', l2: 'S', llc: true, llcDirty: true });
    expect(m.memsys.lineState(1, 0x40_0200)).toEqual({ l1: 'S', l2: 'S', llc: true, llcDirty: true });
    expect(m.snapshot().get(1, 'coherence.downgradeReceived')).toBe(1);
  });

  it('under MOESI the owner keeps the dirty line as O and the LLC stays clean', () => {
    const { m } = testMachine({ coherence: { protocol: 'moesi' } });
    m.run([
      function* (cpu) {
        cpu.compute(5000);
        yield* cpu.sync();
        cpu.load32(VA_4K);
      },
      function* (cpu) {
        cpu.store32(VA_4K, 1);
      },
    ]);
    expect(m.memsys.lineState(1, 0x40_0000)).toMatchObject({ l2: 'O', llcDirty: false });
    expect(m.memsys.lineState(0, 0x40_0000)).toMatchObject({ l2: 'S' });
  });

  function pingPong(offset1: number) {
    const { m } = testMachine();
    const a0 = VA_4K + 0x300;
    const a1 = VA_4K + 0x300 + offset1;
    // Warm-up stores: the TLBs hold the page with its D bit set (a first store through an entry
    // whose D bit is clear walks again to set it, and that walk has costs of its own).
    m.run([(cpu) => (function* () { cpu.store32(a0, 0); })(), (cpu) => (function* () { cpu.store32(a1, 0); })()]);
    m.barrier();
    const before = m.snapshot();
    const writer = (addr: number) =>
      function* (cpu: Cpu): Task {
        for (let i = 0; i < 50; i++) {
          yield* cpu.checkpoint();
          cpu.store32(addr, i);
          cpu.compute(20);
        }
      };
    m.run([writer(a0), writer(a1)]);
    return { delta: m.snapshot().minus(before), m };
  }

  it('two CPUs writing different words of one line pass it back and forth (false sharing)', () => {
    const { delta } = pingPong(4);
    // After the warm-up CPU1 holds the line modified; every one of the 100 stores takes it,
    // dirty, from the other CPU.
    expect(delta.total('coherence.c2cTransfer')).toBe(100);
    expect(delta.total('coherence.invalidationReceived')).toBe(100);
    expect(delta.total('l1d.writeMiss')).toBe(100);
    // Each store is one transfer (40); one of CPU1's finds the line still in flight to CPU0
    // and queues behind that transfer for 20 cycles.
    expect([delta.get(0, 'coherence.queueCycles'), delta.get(1, 'coherence.queueCycles')]).toEqual([0, 20]);
    expect(delta.total('mem.cycles')).toBe(100 * 40 + 20);
  });

  it('two CPUs writing different lines never disturb each other', () => {
    const { delta } = pingPong(64);
    expect(delta.total('coherence.c2cTransfer')).toBe(0);
    expect(delta.total('coherence.invalidationReceived')).toBe(0);
    expect(delta.total('l1d.writeHit')).toBe(100);
    expect(delta.total('mem.cycles')).toBe(100 * 2);
  });

  it('a read of a line another CPU holds clean (E) is a clean cache-to-cache transfer', () => {
    const { m } = testMachine({ llc: { inclusive: false } });
    m.run([
      function* (cpu) {
        cpu.load32(VA_4K + 0x400);
        cpu.compute(5000);
        yield* cpu.sync();
        const r = measure(cpu, m, () => cpu.load32(VA_4K + 0x200));
        expect(r.cycles).toBe(40);
        expect(r.d('coherence.c2cClean')).toBe(1);
      },
      function* (cpu) {
        cpu.load32(VA_4K + 0x200);
      },
    ]);
    expect(m.memsys.lineState(1, 0x40_0200).l2).toBe('S');
  });

  it('an inclusive LLC that evicts a line takes it from the private caches too', () => {
    const { m } = testMachine();
    // LLC: 32 sets × 8 ways; lines 2048 bytes apart share a set (set 1 here, away from the
    // page-table lines). CPU1 fills it with eight lines while CPU0 holds the first privately.
    m.run([
      function* (cpu) {
        cpu.load32(VA_2M + 64);
      },
      function* (cpu) {
        cpu.compute(10_000);
        yield* cpu.sync();
        for (let i = 1; i <= 8; i++) cpu.load32(VA_2M + 64 + i * 2048);
      },
    ]);
    const s = m.snapshot();
    expect(s.get(1, 'llc.backInvalidation')).toBe(1);
    expect(s.get(0, 'coherence.invalidationReceived')).toBe(1);
    expect(m.memsys.lineState(0, 0x100_0040)).toEqual({ l1: 'I', l2: 'I', llc: false, llcDirty: false });
  });

  it('a non-inclusive LLC is filled by L2 victims, not by DRAM fills', () => {
    const { m } = testMachine({ llc: { inclusive: false } });
    runOne(m, 0, (cpu) => {
      // Set 1 of the L2 (16 sets × 4 ways; lines 1024 bytes apart share a set), away from the
      // page-table lines the walk dirtied.
      const a = VA_2M + 64;
      cpu.store32(a, 1);
      expect(m.memsys.lineState(0, 0x100_0040)).toMatchObject({ l2: 'M', llc: false });
      for (let i = 1; i <= 4; i++) cpu.load32(a + i * 1024);
      expect(m.memsys.lineState(0, 0x100_0040)).toEqual({ l1: 'I', l2: 'I', llc: true, llcDirty: true });
      expect(measure(cpu, m, () => cpu.load32(a)).cycles).toBe(30);
    });
    expect(m.snapshot().get(0, 'l2.writeback')).toBe(1);
  });

  it('the hierarchy keeps its invariants under random traffic from four CPUs', () => {
    for (const variant of [{}, { coherence: { protocol: 'moesi' } }, { llc: { inclusive: false } }, { l1d: { replacement: 'plru' }, l2: { replacement: 'random' } }]) {
      const { m } = testMachine(variant);
      let seed = 12345;
      const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
      const program = function* (cpu: Cpu): Task {
        for (let i = 0; i < 400; i++) {
          yield* cpu.checkpoint();
          const va = VA_4K + Math.floor(rand() * 16 * 64) * 64;
          if (rand() < 0.4) cpu.store32(va, i);
          else cpu.load32(va);
        }
      };
      m.runAll(program);
      expect(m.memsys.check()).toEqual([]);
    }
  });
});

describe('locks, IPIs and scheduling', () => {
  it('a spinlock held by CPU0 for H cycles makes CPU1 wait the remaining hold time plus the line transfers', () => {
    const { m } = testMachine();
    const lock = VA_4K + 0x600;
    m.run([(cpu) => (function* () { cpu.store32(lock, 0); })(), (cpu) => (function* () { cpu.store32(VA_4K, 0); })()]);
    m.barrier();
    const t0 = m.cpus[0]!.clock;
    let acquiredAt = 0;
    m.run([
      function* (cpu) {
        yield* spinAcquire(cpu, lock); // line already M: 2 + locked 10
        cpu.compute(1000);
        yield* spinRelease(cpu, lock); // at t0 + 1012: takes the line back from CPU1, 40
      },
      function* (cpu) {
        cpu.compute(300);
        yield* spinAcquire(cpu, lock);
        acquiredAt = cpu.clock;
      },
    ]);
    // CPU1 at t0+300: xchg takes the line from CPU0 (40) + locked 10 → sees it held at t0+350;
    // its next load hits (2) and it spins from t0+352. The release's invalidation reaches it
    // with its probe at t0+1032 (1012 + 20): 680 cycles of spinning, and it notices half a
    // turn of pause+load (12) later, 686 (57 turns). At t0+1038 it loads the line back (40),
    // sees it free, and its xchg upgrades the shared copy (2 + 30) + locked 10.
    expect(acquiredAt - t0).toBe(1038 + 40 + 42);
    const wait = acquiredAt - (t0 + 300);
    const remainingHold = 1012 - 300;
    expect(wait).toBe(remainingHold + 20 /* the release's probe */ + 6 /* half a spin turn */ + 40 + 42);
    const s = m.snapshot();
    expect(s.get(1, 'lock.spinCycles')).toBe(686);
    expect(s.get(1, 'lock.spins')).toBe(57);
  });

  it('a TLB shootdown removes the other CPU\'s entry and the sender pays for the acknowledgement', () => {
    const { m, pt, cr3 } = testMachine();
    const victim = VA_4K + 3 * 4096;
    const ack = VA_4K + 7 * 4096;
    m.run([
      (cpu) => (function* () { cpu.load32(victim); cpu.store32(ack, 0); })(),
      (cpu) => (function* () { cpu.load32(victim); cpu.store32(ack + 64, 0); })(),
    ]);
    m.barrier();
    expect(m.cpus[1]!.tlb.holds(victim)).toBe(true);
    let shootdownCycles = 0;
    const t0 = m.cpus[0]!.clock;
    expect(() =>
      m.run([
        function* (cpu) {
          pt.unmap(cr3, victim);
          yield* m.shootdown(cpu, [1], [victim], ack);
          shootdownCycles = cpu.clock - t0;
        },
        function* (cpu) {
          cpu.compute(100);
          yield* cpu.sync();
          cpu.load32(victim);
        },
      ]),
    ).toThrow(PageFault);
    expect(m.cpus[1]!.tlb.holds(victim)).toBe(false);
    // Sender: local invlpg 5, ack word reset 2 (an L1D hit), IPI 200, the target's invlpg 5 and its
    // locked increment of the ack word (line taken from the sender, 40, + 10), then the
    // sender reads the ack word back from the target (40).
    expect(shootdownCycles).toBe(5 + 2 + 200 + 5 + 50 + 40);
    const s = m.snapshot();
    expect(s.get(0, 'ipi.waitCycles')).toBe(255);
    expect(s.get(1, 'ipi.handlerCycles', 'ipi')).toBe(55);
    expect(s.get(1, 'tlb.invlpg')).toBe(1);
  });

  it('a CPU that nobody will ever wake is reported as a deadlock', () => {
    const { m } = testMachine();
    expect(() =>
      m.run([
        function* (cpu) {
          yield* cpu.sleep('waiting for godot');
        },
      ]),
    ).toThrow(MachineDeadlock);
  });

  it('a sleeping CPU counts idle cycles until it is woken', () => {
    const { m } = testMachine();
    m.run([
      function* (cpu) {
        yield* cpu.sleep('test');
      },
      function* (cpu) {
        cpu.compute(777);
        yield* cpu.sync();
        m.wake(0, cpu.clock);
      },
    ]);
    expect(m.cpus[0]!.clock).toBe(777);
    expect(m.snapshot().get(0, 'idleCycles')).toBe(777);
  });

  it('path labels receive every cycle and event of the code between enter() and leave()', () => {
    const { m } = testMachine();
    const lbl = m.label('test.path');
    runOne(m, 0, (cpu) => {
      cpu.load32(VA_4K);
      cpu.enter(lbl);
      cpu.load32(VA_4K + 64);
      cpu.compute(7);
      cpu.leave();
      cpu.compute(3);
    });
    const s = m.snapshot();
    expect(s.get(0, 'cycles', 'test.path')).toBe(107);
    expect(s.get(0, 'dram.read', 'test.path')).toBe(1);
    expect(s.get(0, 'cycles')).toBe(m.cpus[0]!.clock);
  });

  it('the same run twice gives identical counters', () => {
    const once = () => {
      const { m } = testMachine({ cpus: 4, syncQuantum: 50 });
      const lock = VA_4K + 0x600;
      m.runAll(function* (cpu) {
        for (let i = 0; i < 30; i++) {
          yield* cpu.checkpoint();
          yield* spinAcquire(cpu, lock);
          cpu.store32(VA_4K + 0x1000 + cpu.id * 8, i);
          cpu.compute(10 + cpu.id);
          yield* spinRelease(cpu, lock);
          cpu.load32(VA_4K + ((i * 7 + cpu.id * 3) % 64) * 64);
        }
      });
      return { counters: m.snapshot().nonZero(), clocks: m.cpus.map((c) => c.clock) };
    };
    const a = once();
    expect(once()).toEqual(a);
    expect(a.counters['other/lock.spinCycles']).toBeGreaterThan(0);
  });
});
