import { describe, expect, it } from 'vitest';
import type { Cpu } from '../../emu/index.js';
import {
  M_DONTWAIT, MT_DATA, M_WAITOK, UMA_ALIGN_PTR, m_freem, m_getcl, mbuf_init, mbufStats, netstat_m, vm_pageout, kmem_alloc3, pagedaemon, sysctl, uma_zalloc, uma_zcreate, uma_zfree, umaPages, umaZoneStats, userret,
  vm_paging_needed, type Kernel, type UmaZone,
} from '../../kernel/index.js';
import { bootedMachine, onCpu } from './helpers.js';

const free = (k: Kernel) => sysctl(k, 'vm.stats.vm.v_free_count')!;
const wakeups = (k: Kernel) => sysctl(k, 'vm.stats.vm.v_pdwakeups')!;
const kegPages = (k: Kernel, name: string) => umaZoneStats(k).find((z) => z.name === name)!.kegPages;

/** Fills `pages` slabs of 512-byte items (8 a slab) and frees every item: the keg keeps them. */
function* fillAndFree(k: Kernel, cpu: Cpu, z: UmaZone, pages: number) {
  const items: number[] = [];
  for (let i = 0; i < pages * 8; i++) items.push(yield* uma_zalloc(k, cpu, z, M_WAITOK));
  for (const it of items) yield* uma_zfree(k, cpu, z, it);
}

describe('the pageout daemon', () => {
  it('the thresholds of a 32 MiB machine: paging is needed below v_free_min + v_cache_min', () => {
    const { k } = bootedMachine();
    expect([sysctl(k, 'vm.stats.vm.v_free_min'), sysctl(k, 'vm.stats.vm.v_cache_min'), sysctl(k, 'vm.stats.vm.v_free_target')]).toEqual([336, 984, 984]);
    expect(wakeups(k)).toBe(0);
    expect(pagedaemon(k).runnable).toBe(false);
  });

  it('an M_WAITOK allocation that finds no free page wakes the daemon, whose pass on its CPU drains UMA, and goes on without sleeping', () => {
    const { m, k } = bootedMachine({ memory: { size: '16m' } });
    const z = onCpu(m, 0, (cpu) => uma_zcreate(k, cpu, 'cached', 512, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, 0, { pcpu: false }));
    onCpu(m, 0, (cpu) => fillAndFree(k, cpu, z, 400));
    expect(kegPages(k, 'cached')).toBe(400);
    const slabPages = kegPages(k, 'UMA Slabs');
    const before = free(k);
    // More pages than are free: kmem_alloc3's vm_page_grab runs out, and only UMA's free slabs
    // can give memory back; nothing else runs on the machine.
    const want = before + 100;
    const addr = onCpu(m, 0, (cpu) => kmem_alloc3(k, cpu, k.kernel_map, want * 4096, 0));
    expect(addr).not.toBe(0);
    expect(kegPages(k, 'cached')).toBe(0);
    expect(wakeups(k)).toBe(1);
    // The 400 slabs' pages, and 7 of "UMA Slabs", whose off-page headers they no longer need.
    expect(umaPages(k).reclaimed).toBe(407);
    expect(slabPages - kegPages(k, 'UMA Slabs')).toBe(7);
    expect(m.snapshot().get(0, 'idleCycles')).toBe(0);
    expect(free(k)).toBe(before + 407 - want);
  });

  it('with memory below the paging threshold the daemon is runnable, and userret runs its pass at most once per hz/2', () => {
    const { m, k } = bootedMachine();
    const z = onCpu(m, 0, (cpu) => uma_zcreate(k, cpu, 'cached', 512, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, 0, { pcpu: false }));
    onCpu(m, 0, (cpu) => fillAndFree(k, cpu, z, 5));
    // Take pages until paging is needed (a page allocation wakes the daemon: vm_pages_needed).
    const target = free(k) - 336 - 984 + 20;
    onCpu(m, 0, (cpu) => kmem_alloc3(k, cpu, k.kernel_map, target * 4096, 0));
    expect(pagedaemon(k).runnable).toBe(true);
    expect(k.peek32(k.vm_pages_needed)).toBe(1);
    expect(wakeups(k)).toBe(0);
    onCpu(m, 1, (cpu) => userret(k, cpu));
    expect(wakeups(k)).toBe(1);
    expect(umaPages(k).reclaimed).toBe(5);
    // Still short of the threshold: the daemon sleeps hz/2 (0.5 s at 1 GHz) before its next pass.
    const still = onCpu(m, 0, function* (cpu) {
      return vm_paging_needed(k, cpu);
    });
    expect(still).toBe(true);
    onCpu(m, 1, (cpu) => userret(k, cpu));
    expect(wakeups(k)).toBe(1);
    expect(pagedaemon(k).sleepsUntil - m.cpu(1).clock).toBeGreaterThan(0);
    onCpu(m, 1, function* (cpu) {
      cpu.tick(pagedaemon(k).sleepsUntil - cpu.clock);
      yield* userret(k, cpu);
    });
    expect(wakeups(k)).toBe(2);
  });

  it('a pass calls mb_reclaim (netstat -m counts the drain) before uma_reclaim, which drains the packet zone\'s depot', () => {
    const { m, k } = bootedMachine();
    onCpu(m, 0, (cpu) => mbuf_init(k, cpu));
    // 300 packets out and back: the CPU's buckets hold 256, the depot a bucket of 128 (with
    // its clusters attached: 44 of them past the 300 in use).
    onCpu(m, 0, function* (cpu) {
      const ms: number[] = [];
      for (let i = 0; i < 300; i++) ms.push(yield* m_getcl(k, cpu, M_DONTWAIT, MT_DATA, 0));
      for (const x of ms) yield* m_freem(k, cpu, x);
    });
    const pack = () => umaZoneStats(k).find((z) => z.name === 'mbuf_packet')!.free;
    expect([pack(), mbufStats(k).drains]).toEqual([384, 0]);
    onCpu(m, 0, (cpu) => vm_pageout(k, cpu));
    expect([pack(), mbufStats(k).drains, wakeups(k)]).toEqual([256, 1, 1]);
    expect(netstat_m(k).split('\n').at(-2)).toBe('1 calls to protocol drain routines');
  });
});
