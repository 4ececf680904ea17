import { describe, expect, it } from 'vitest';
import {
  PG_BUSY, PG_ZERO, VM_ALLOC_INTERRUPT, VM_ALLOC_NORMAL, VM_ALLOC_RETRY, VM_ALLOC_SYSTEM, VM_ALLOC_ZERO, kmem_alloc_pageable,
  pmap_kenter, pmap_kenter_quick, pmap_kextract, pmap_kremove, pmap_qenter, pmap_qremove, sysctl, vm_page, vm_page_alloc,
  vm_page_free, vm_page_grab, vm_page_lookup, vm_page_unwire, vm_page_wakeup, vm_page_wire, type Kernel,
} from '../../kernel/index.js';
import type { Cpu } from '../../emu/index.js';
import { bootedMachine, onCpu } from './helpers.js';

const free = (k: Kernel) => sysctl(k, 'vm.stats.vm.v_free_count')!;

/** Allocates pages of `class` until vm_page_alloc says no; returns them. */
function* drain(k: Kernel, cpu: Cpu, cls: number): Generator<number, number[], void> {
  const got: number[] = [];
  for (;;) {
    const m = yield* vm_page_alloc(k, cpu, 0, 0, cls);
    if (m === 0) return got;
    got.push(m);
  }
}

describe('vm_page', () => {
  it('each allocation class stops at its own threshold: NORMAL above v_free_reserved, SYSTEM above v_interrupt_free_min, INTERRUPT above 0', () => {
    const { m, k } = bootedMachine();
    const reserved = sysctl(k, 'vm.stats.vm.v_free_reserved')!;
    const imin = sysctl(k, 'vm.stats.vm.v_interrupt_free_min')!;
    const pages = sysctl(k, 'vm.stats.vm.v_page_count')!;
    // vm_pageout_page_count (16 from 2000 pages) + pageout_free_min (2 × 64K / 4K + 2) + pages/768 + PQ_L2_SIZE
    expect(pages).toBeGreaterThan(2000);
    expect([reserved, imin]).toEqual([16 + 34 + Math.floor(pages / 768) + 256, 2]);
    onCpu(m, 0, function* (cpu) {
      yield* drain(k, cpu, VM_ALLOC_NORMAL);
      expect(free(k)).toBe(reserved);
      yield* drain(k, cpu, VM_ALLOC_NORMAL | VM_ALLOC_SYSTEM);
      expect(free(k)).toBe(imin);
      yield* drain(k, cpu, VM_ALLOC_INTERRUPT);
      expect(free(k)).toBe(0);
    });
  });

  it('a freed page is reused first, and a zeroed one is kept at the tail for VM_ALLOC_ZERO', () => {
    const { m, k } = bootedMachine();
    onCpu(m, 0, function* (cpu) {
      const a = yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL);
      const b = yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL);
      expect(cpu.load32(a + vm_page.flags)).toBe(PG_BUSY);
      yield* vm_page_free(k, cpu, a);
      cpu.store32(b + vm_page.flags, cpu.load32(b + vm_page.flags) | PG_ZERO);
      yield* vm_page_free(k, cpu, b);
      // b sits at the tail (zeroed), a at the head.
      expect(yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL | VM_ALLOC_ZERO)).toBe(b);
      expect(yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL)).toBe(a);
      expect(cpu.load32(b + vm_page.flags)).toBe(PG_BUSY | PG_ZERO);
    });
  });

  it('vm_page_free() panics on a free page, a wired page and a busy page', () => {
    const run = (body: (k: Kernel, cpu: Cpu) => Generator<number, void, void>) => {
      const { m, k } = bootedMachine();
      return () => onCpu(m, 0, (cpu) => body(k, cpu));
    };
    expect(
      run(function* (k, cpu) {
        const p = yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL);
        yield* vm_page_free(k, cpu, p);
        yield* vm_page_free(k, cpu, p);
      }),
    ).toThrow('panic: vm_page_free: freeing free page (cpu0)');
    expect(
      run(function* (k, cpu) {
        const p = yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL);
        vm_page_wire(k, cpu, p);
        yield* vm_page_free(k, cpu, p);
      }),
    ).toThrow('panic: vm_page_free: freeing wired page (cpu0)');
    expect(
      run(function* (k, cpu) {
        const p = yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL);
        cpu.store8(p + vm_page.busy, 1);
        yield* vm_page_free(k, cpu, p);
      }),
    ).toThrow('panic: vm_page_free: freeing busy page (cpu0)');
    expect(
      run(function* (k, cpu) {
        const p = yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL);
        vm_page_unwire(k, cpu, p, true);
      }),
    ).toThrow('panic: vm_page_unwire: invalid wire count: 0 (cpu0)');
  });

  it('wiring counts once per page and unwiring puts the page on the active queue', () => {
    const { m, k } = bootedMachine();
    const wired0 = sysctl(k, 'vm.stats.vm.v_wire_count')!;
    onCpu(m, 0, function* (cpu) {
      const p = yield* vm_page_alloc(k, cpu, 0, 0, VM_ALLOC_NORMAL);
      vm_page_wire(k, cpu, p);
      vm_page_wire(k, cpu, p);
      expect(sysctl(k, 'vm.stats.vm.v_wire_count')).toBe(wired0 + 1);
      vm_page_unwire(k, cpu, p, true);
      vm_page_unwire(k, cpu, p, true);
      expect(sysctl(k, 'vm.stats.vm.v_wire_count')).toBe(wired0);
      expect(sysctl(k, 'vm.stats.vm.v_active_count')).toBe(1);
    });
  });

  it('vm_page_grab() finds a page by (object, pindex), and with RETRY sleeps until memory is freed', () => {
    const { m, k } = bootedMachine({ cpus: 2 });
    let hoard: number[] = [];
    onCpu(m, 0, function* (cpu) {
      const p = yield* vm_page_grab(k, cpu, k.kernel_object, 77, VM_ALLOC_NORMAL);
      expect(vm_page_lookup(k, cpu, k.kernel_object, 77)).toBe(p);
      yield* vm_page_wakeup(k, cpu, p);
      expect(yield* vm_page_grab(k, cpu, k.kernel_object, 77, VM_ALLOC_NORMAL)).toBe(p);
      hoard = yield* drain(k, cpu, VM_ALLOC_NORMAL);
    });
    let grabbed = 0;
    m.run([
      function* (cpu) {
        cpu.compute(100_000);
        for (const p of hoard.splice(0, 2000)) yield* vm_page_free(k, cpu, p);
      },
      function* (cpu) {
        grabbed = yield* vm_page_grab(k, cpu, k.kernel_object, 78, VM_ALLOC_NORMAL | VM_ALLOC_RETRY);
      },
    ]);
    expect(grabbed).not.toBe(0);
    expect(m.snapshot().get(1, 'idleCycles')).toBeGreaterThan(90_000);
  });
});

describe('pmap', () => {
  it('pmap_kenter() and pmap_kremove() invalidate every CPU; the _quick variant only the local one', () => {
    const { m, k } = bootedMachine({ cpus: 3 });
    const va = onCpu(m, 0, (cpu) => kmem_alloc_pageable(k, cpu, k.kernel_map, 4 * 4096));
    const pa = 0x30_0000 - 0x1000; // a page of the low phys_avail range
    onCpu(m, 0, function* (cpu) {
      yield* pmap_kenter(k, cpu, va, pa);
      pmap_kenter_quick(k, cpu, va + 4096, pa);
      expect(pmap_kextract(k, cpu, va + 12)).toBe(pa + 12);
      yield* pmap_kremove(k, cpu, va);
      expect(pmap_kextract(k, cpu, va)).toBe(0);
    });
    const s = m.snapshot();
    expect(s.get(0, 'ipi.sent', 'pmap.shootdown')).toBe(4); // two shootdowns × two other CPUs
    expect(s.total('tlb.invlpg')).toBe(2 + 4 + 1); // local ×2 (kenter, kremove) + remote ×4 + quick ×1
  });

  it('pmap_qenter() and pmap_qremove() invalidate locally per page and flush the others once', () => {
    const { m, k } = bootedMachine({ cpus: 2 });
    const va = onCpu(m, 0, (cpu) => kmem_alloc_pageable(k, cpu, k.kernel_map, 3 * 4096));
    onCpu(m, 0, function* (cpu) {
      yield* pmap_qenter(k, cpu, va, [0x30_0000, 0x31_0000, 0x32_0000]);
      expect(pmap_kextract(k, cpu, va + 2 * 4096 + 5)).toBe(0x32_0005);
      yield* pmap_qremove(k, cpu, va, 3);
      expect(pmap_kextract(k, cpu, va + 4096)).toBe(0);
    });
    const s = m.snapshot();
    expect(s.get(0, 'tlb.invlpg')).toBe(6);
    expect(s.get(1, 'tlb.flush', 'ipi')).toBe(2);
  });

  it('pmap_growkernel() allocates page-table pages once kernel_map grows past the bootstrap ones', () => {
    const { m, k } = bootedMachine();
    const wired = sysctl(k, 'vm.stats.vm.v_wire_count')!;
    // The bootstrap tables cover nkpt_phys × 2 MiB from KvaStart; reach 16 MiB beyond them.
    const covered = k.nkpt_phys * 0x20_0000 - (k.virtual2_start - 0xffe000000000);
    onCpu(m, 0, (cpu) => kmem_alloc_pageable(k, cpu, k.kernel_map, covered + 16 * 0x10_0000));
    expect(sysctl(k, 'vm.nkpt')).toBe(8);
    expect(sysctl(k, 'vm.stats.vm.v_wire_count')).toBe(wired + 8);
    expect(sysctl(k, 'vm.stats.vm.v_zfod')).toBeGreaterThanOrEqual(8);
  });
});
