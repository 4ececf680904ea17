import { describe, expect, it } from 'vitest';
import { KERNBASE, PAGE_4K, type Cpu, type Machine, type Task } from '../../emu/index.js';
import { GD_THREAD_OFFSET, globaldata, thread } from '../../kernel/index.js';
import { KernelPanic } from '../../kernel/index.js';
import {
  crit_enter, crit_exit, cv_signal, cv_wait, lockmgr_exclusive, lockmgr_release, lwkt_gettoken, lwkt_reltoken,
  PINTERLOCKED, spin_lock, spin_unlock, tsleep, tsleep_interlock, wakeup, type SyncHost,
} from '../../kernel/index.js';
import { testMachine } from '../emu/helpers.js';

const BASE = KERNBASE + 0x100_0000;

/** A machine with per-CPU globaldata pages, a sleep-queue table and a page of lock words. */
function syncMachine(cpus = 2): { m: Machine; host: SyncHost; word: (i: number) => number } {
  const { m, pt, cr3 } = testMachine({ cpus });
  pt.mapRange(cr3, BASE, 0x200_0000, 64 * 4096, PAGE_4K);
  const host: SyncHost = {
    machine: m,
    gd: (c) => BASE + c * 4096,
    slpqueBase: BASE + 32 * 4096,
    tdToks: (c) => BASE + c * 4096 + 2048,
  };
  m.run(
    m.cpus.map(() =>
      function* (cpu: Cpu): Task {
        const gd = host.gd(cpu.id);
        cpu.storePtr(gd + globaldata.gd_self, gd);
        cpu.storePtr(gd + globaldata.gd_curthread, gd + GD_THREAD_OFFSET);
        cpu.store32(gd + globaldata.gd_cpuid, cpu.id);
        cpu.storePtr(gd + GD_THREAD_OFFSET + thread.td_gd, gd);
      },
    ),
  );
  m.barrier();
  return { m, host, word: (i) => BASE + 40 * 4096 + i * 64 };
}

describe('kernel synchronization', () => {
  it('tsleep() idles a CPU until another CPU\'s wakeup(), one IPI latency later', () => {
    const { m, host, word } = syncMachine();
    const t0 = m.cpus[0]!.clock;
    let wokeAt = 0;
    m.run([
      function* (cpu) {
        yield* tsleep(host, cpu, word(0), 0, 'test');
        wokeAt = cpu.clock;
      },
      function* (cpu) {
        cpu.compute(5000);
        yield* wakeup(host, cpu, word(0));
      },
    ]);
    const wakerDone = m.cpus[1]!.clock;
    expect(wokeAt).toBeGreaterThan(t0 + 5000 + 200);
    expect(wokeAt).toBeLessThan(wakerDone + 200 + 200);
    expect(m.snapshot().get(0, 'idleCycles')).toBeGreaterThan(5000);
  });

  it('a wakeup between tsleep_interlock and the sleep is not lost', () => {
    const { m, host, word } = syncMachine();
    let returnedAt = 0;
    m.run([
      function* (cpu) {
        yield* tsleep_interlock(host, cpu, word(0));
        cpu.compute(10_000); // CPU1's wakeup lands here
        yield* tsleep(host, cpu, word(0), PINTERLOCKED, 'late');
        returnedAt = cpu.clock;
      },
      function* (cpu) {
        cpu.compute(1000);
        yield* wakeup(host, cpu, word(0));
      },
    ]);
    expect(m.snapshot().get(0, 'idleCycles')).toBe(0);
    expect(returnedAt).toBeLessThan(m.cpus[0]!.clock + 1);
  });

  it('a thread that is never woken is a deadlock the machine reports', () => {
    const { m, host, word } = syncMachine();
    expect(() => m.run([(cpu) => tsleep(host, cpu, word(0), 0, 'forever')])).toThrow(/tsleep "forever"/);
  });

  it('spin_lock() enters a critical section and counts the spinlock held', () => {
    const { m, host, word } = syncMachine();
    m.run([
      function* (cpu) {
        const gd = host.gd(0);
        yield* spin_lock(host, cpu, word(1));
        expect(cpu.load32(gd + globaldata.gd_spinlocks)).toBe(1);
        expect(cpu.load32(gd + GD_THREAD_OFFSET + thread.td_critcount)).toBe(1);
        yield* spin_unlock(host, cpu, word(1));
        expect(cpu.load32(gd + globaldata.gd_spinlocks)).toBe(0);
        expect(cpu.load32(gd + GD_THREAD_OFFSET + thread.td_critcount)).toBe(0);
      },
    ]);
  });

  it('crit_exit() without crit_enter() panics', () => {
    const { m, host } = syncMachine();
    expect(() => m.run([(cpu) => (function* () { crit_exit(host, cpu); })()])).toThrow(KernelPanic);
    const { m: m2, host: h2 } = syncMachine();
    m2.run([(cpu) => (function* () { crit_enter(h2, cpu); crit_exit(h2, cpu); })()]);
  });

  it('lockmgr puts a second locker to sleep until the holder releases', () => {
    const { m, host, word } = syncMachine();
    const order: string[] = [];
    m.run([
      function* (cpu) {
        yield* lockmgr_exclusive(host, cpu, word(2), 'vmmap');
        order.push(`0 got ${cpu.clock}`);
        cpu.compute(20_000);
        yield* lockmgr_release(host, cpu, word(2));
        order.push('0 released');
      },
      function* (cpu) {
        cpu.compute(1000);
        yield* lockmgr_exclusive(host, cpu, word(2), 'vmmap');
        order.push('1 got');
        yield* lockmgr_release(host, cpu, word(2));
      },
    ]);
    expect(order.map((o) => o.replace(/ \d+$/, ''))).toEqual(['0 got', '0 released', '1 got']);
    expect(m.snapshot().get(1, 'idleCycles')).toBeGreaterThan(15_000);
  });

  it('lockmgr panics when a thread locks against itself', () => {
    const { m, host, word } = syncMachine();
    expect(() =>
      m.run([
        function* (cpu) {
          yield* lockmgr_exclusive(host, cpu, word(2), 'vmmap');
          yield* lockmgr_exclusive(host, cpu, word(2), 'vmmap');
        },
      ]),
    ).toThrow('panic: lockmgr: locking against myself (vmmap) (cpu0)');
  });

  it('a token is recursive for its owner and released while the owner sleeps', () => {
    const { m, host, word } = syncMachine();
    const tok = word(3);
    const order: string[] = [];
    m.run([
      function* (cpu) {
        yield* lwkt_gettoken(host, cpu, tok);
        yield* lwkt_gettoken(host, cpu, tok);
        yield* lwkt_reltoken(host, cpu, tok);
        order.push('0 sleeps holding the token');
        yield* tsleep(host, cpu, word(4), 0, 'tok');
        order.push('0 awake with the token');
        expect(cpu.loadPtr(tok)).toBe(host.gd(0) + GD_THREAD_OFFSET);
        yield* lwkt_reltoken(host, cpu, tok);
      },
      function* (cpu) {
        cpu.compute(3000);
        yield* lwkt_gettoken(host, cpu, tok);
        order.push('1 has the token');
        yield* wakeup(host, cpu, word(4));
        yield* lwkt_reltoken(host, cpu, tok);
      },
    ]);
    expect(order).toEqual(['0 sleeps holding the token', '1 has the token', '0 awake with the token']);
  });

  it('tsleep() takes a token held twice back at depth 2 after another CPU held it meanwhile (vm_wait inside kmem_alloc3)', () => {
    const { m, host, word } = syncMachine();
    const tok = word(3);
    const seen: string[] = [];
    m.run([
      function* (cpu) {
        yield* lwkt_gettoken(host, cpu, tok);
        yield* lwkt_gettoken(host, cpu, tok);
        yield* tsleep(host, cpu, word(4), 0, 'vmwait');
        seen.push(`0 awake: owner ${cpu.loadPtr(tok) === host.gd(0) + GD_THREAD_OFFSET}, depth ${cpu.load32(tok + 8)}`);
        yield* lwkt_reltoken(host, cpu, tok);
        yield* lwkt_reltoken(host, cpu, tok);
        seen.push(`0 released: owner ${cpu.loadPtr(tok)}, depth ${cpu.load32(tok + 8)}`);
      },
      function* (cpu) {
        cpu.compute(3000);
        yield* lwkt_gettoken(host, cpu, tok);
        seen.push(`1 has it at depth ${cpu.load32(tok + 8)}`);
        yield* wakeup(host, cpu, word(4));
        yield* lwkt_reltoken(host, cpu, tok);
      },
    ]);
    expect(seen).toEqual(['1 has it at depth 1', '0 awake: owner true, depth 2', '0 released: owner 0, depth 0']);
  });

  it('cv_wait() sleeps until cv_signal(), with the interlock released meanwhile', () => {
    const { m, host, word } = syncMachine();
    const [c, mtx, flag] = [word(5), word(6), word(7)];
    m.run([
      function* (cpu) {
        yield* spin_lock(host, cpu, mtx);
        while (cpu.load32(flag) === 0) yield* cv_wait(host, cpu, c, mtx, 'cv');
        yield* spin_unlock(host, cpu, mtx);
      },
      function* (cpu) {
        cpu.compute(10_000);
        yield* spin_lock(host, cpu, mtx);
        cpu.store32(flag, 1);
        yield* cv_signal(host, cpu, c);
        yield* spin_unlock(host, cpu, mtx);
      },
    ]);
    expect(m.snapshot().get(0, 'idleCycles')).toBeGreaterThan(9000);
  });
});
