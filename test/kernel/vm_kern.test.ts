import { describe, expect, it } from 'vitest';
import { Machine, hex64, loadMachineConfig, type Cpu, type Task } from '../../emu/index.js';
import {
  KERNBASE, KernelPanic, KvaEnd, KvaStart, PHYS_TO_DMAP, boot, globaldata, vm_map_entry_krelease, vm_map_entry_kreserve, VM_MAPTYPE_SUBMAP, kmem_alloc3, kmem_alloc_nofault, kmem_alloc_pageable,
  kmem_alloc_wait, kmem_free, kmem_free_wakeup, kmem_suballoc, mapEntries, pmap_kextract, sysctl, type Kernel,
} from '../../kernel/index.js';
import { bootedMachine, onCpu } from './helpers.js';

function vmstat(k: Kernel, name: string): number {
  const v = sysctl(k, `vm.stats.vm.${name}`);
  if (v === undefined) throw new Error(name);
  return v;
}

describe('boot', () => {
  it('enters the regions boot uses in kernel_map, as kmem_init does', () => {
    const { k } = bootedMachine();
    const entries = mapEntries(k, k.kernel_map).map((e) => [hex64(e.start), hex64(e.end)]);
    expect(entries).toEqual([
      [hex64(KvaStart), hex64(k.virtual2_start)],
      [hex64(KERNBASE), hex64(k.virtual_start)],
    ]);
    expect(hex64(KvaStart)).toBe('ffffffe000000000');
    expect(hex64(k.virtual2_end)).toBe('ffffffff80000000');
    expect(k.virtual_start % 0x20_0000).toBe(0);
  });

  it('gives every page of phys_avail to the free count', () => {
    const { k } = bootedMachine();
    const pages = k.phys_avail.reduce((n, s) => n + (s.end - s.start) / 4096, 0);
    expect(vmstat(k, 'v_page_count')).toBe(pages);
    expect(vmstat(k, 'v_free_count')).toBe(pages);
    expect(sysctl(k, 'hw.ncpu')).toBe(4);
    expect(sysctl(k, 'vm.kvm_size')).toBe(KvaEnd - KvaStart);
  });

  it('boots a 4 GiB, 4-CPU amd64-host machine with the direct map and vm_page_array in place', () => {
    const m = new Machine(loadMachineConfig('amd64-host', { cpus: 4 }));
    const k = boot(m);
    expect(sysctl(k, 'hw.physmem')).toBe(k.physmem * 4096);
    expect(k.physmem).toBeGreaterThan(0.99 * 2 ** 20 - 4096);
    expect(k.vm_page_array_size).toBe(2 ** 20 - 0x2_0000 / 4096); // from the first phys_avail page (128 KiB) to 4 GiB
    expect(onCpu(m, 3, function* (cpu) { return cpu.load64(PHYS_TO_DMAP(k.KPML4phys) + 511 * 8) % 4096; })).toBe(0x023); // P|RW|A
  });

  it('is deterministic: two boots give the same clocks and counters', () => {
    const a = bootedMachine({ cpus: 2 });
    const b = bootedMachine({ cpus: 2 });
    expect(b.m.snapshot().nonZero()).toEqual(a.m.snapshot().nonZero());
    expect(b.m.cpus.map((c) => c.clock)).toEqual(a.m.cpus.map((c) => c.clock));
  });
});

describe('vm_kern', () => {
  it('kmem_alloc3() returns zero-filled, wired memory mapped in kernel_map', () => {
    const { m, k } = bootedMachine();
    const wiredBefore = vmstat(k, 'v_wire_count');
    const va = onCpu(m, 0, (cpu) => kmem_alloc3(k, cpu, k.kernel_map, 3 * 4096 - 100, 0));
    expect(va).toBe(k.virtual2_start);
    const e = mapEntries(k, k.kernel_map).find((x) => x.start === va)!;
    expect([e.end - e.start, e.object, e.wired]).toEqual([3 * 4096, k.kernel_object, 1]);
    expect(vmstat(k, 'v_wire_count')).toBe(wiredBefore + 3);
    onCpu(m, 1, function* (cpu) {
      for (let off = 0; off < 3 * 4096; off += 512) expect(cpu.load64(va + off)).toBe(0);
      cpu.store64(va + 8, 42);
    });
    expect(onCpu(m, 2, function* (cpu) { return cpu.load64(va + 8); })).toBe(42);
  });

  it('kmem_free() unmaps the memory and another CPU\'s TLB entry for it is gone', () => {
    const { m, k } = bootedMachine({ cpus: 2 });
    const va = onCpu(m, 0, (cpu) => kmem_alloc3(k, cpu, k.kernel_map, 4096, 0));
    onCpu(m, 1, function* (cpu) { cpu.store32(va, 1); });
    expect(m.cpus[1]!.tlb.holds(va)).toBe(true);
    const freeBefore = vmstat(k, 'v_free_count');
    onCpu(m, 0, (cpu) => kmem_free(k, cpu, k.kernel_map, va, 4096));
    expect(m.cpus[1]!.tlb.holds(va)).toBe(false);
    expect(vmstat(k, 'v_free_count')).toBe(freeBefore + 1);
    expect(mapEntries(k, k.kernel_map).some((e) => e.start === va)).toBe(false);
    expect(() => onCpu(m, 1, function* (cpu) { cpu.load32(va); })).toThrow(
      `panic: page fault while in kernel mode: fault virtual address = 0x${hex64(va)}, read, cpuid = 1: no map entry (cpu1)`,
    );
    const s = m.snapshot();
    expect(s.get(0, 'tlb.shootdown', 'pmap.shootdown')).toBe(1);
    expect(s.get(1, 'tlb.invlpg', 'ipi')).toBe(1);
  });

  it('pageable memory faults in zero-filled pages on first touch', () => {
    const { m, k } = bootedMachine();
    const va = onCpu(m, 0, (cpu) => kmem_alloc_pageable(k, cpu, k.kernel_map, 2 * 4096));
    expect(va).not.toBe(0);
    const active = vmstat(k, 'v_active_count');
    onCpu(m, 3, function* (cpu) {
      expect(cpu.load32(va + 4096 + 12)).toBe(0);
      cpu.store32(va + 4096 + 12, 9);
    });
    expect(vmstat(k, 'v_active_count')).toBe(active + 1);
    expect(m.snapshot().get(3, 'fault.page')).toBe(1);
    expect(onCpu(m, 3, function* (cpu) { return pmap_kextract(k, cpu, va); })).toBe(0);
  });

  it('a touch of MAP_NOFAULT memory panics', () => {
    const { m, k } = bootedMachine();
    const va = onCpu(m, 0, (cpu) => kmem_alloc_nofault(k, cpu, k.kernel_map, 4096, 4096));
    expect(() => onCpu(m, 0, function* (cpu) { cpu.load8(va); })).toThrow(`panic: vm_fault: fault on nofault entry, addr: ${hex64(va)} (cpu0)`);
  });

  it('kmem_suballoc() carves a submap out of kernel_map', () => {
    const { m, k } = bootedMachine();
    const result = onCpu(m, 0, function* (cpu: Cpu): Task<{ min: number; max: number; va: number }> {
      const store = yield* kmem_alloc3(k, cpu, k.kernel_map, 4096, 0); // room for the struct vm_map
      const r = yield* kmem_suballoc(k, cpu, k.kernel_map, store, 16 * 4096);
      const va = yield* kmem_alloc3(k, cpu, store, 4096, 0);
      return { ...r, va };
    });
    expect(result.max - result.min).toBe(16 * 4096);
    const entry = mapEntries(k, k.kernel_map).find((e) => e.start === result.min)!;
    expect(entry.maptype).toBe(VM_MAPTYPE_SUBMAP);
    expect(result.va).toBe(result.min);
  });

  it('kmem_alloc_wait() blocks a CPU on a full submap until kmem_free_wakeup() makes room', () => {
    const { m, k } = bootedMachine({ cpus: 2 });
    let sub = 0;
    let first = 0;
    onCpu(m, 0, function* (cpu) {
      sub = yield* kmem_alloc3(k, cpu, k.kernel_map, 4096, 0);
      yield* kmem_suballoc(k, cpu, k.kernel_map, sub, 2 * 4096);
      first = yield* kmem_alloc_wait(k, cpu, sub, 2 * 4096);
    });
    expect(first).not.toBe(0);
    let second = 0;
    const order: string[] = [];
    m.run([
      function* (cpu) {
        cpu.compute(50_000);
        order.push('cpu0 frees');
        yield* kmem_free_wakeup(k, cpu, sub, first, 2 * 4096);
      },
      function* (cpu) {
        second = yield* kmem_alloc_wait(k, cpu, sub, 4096);
        order.push('cpu1 allocated');
      },
    ]);
    expect(order).toEqual(['cpu0 frees', 'cpu1 allocated']);
    expect(second).toBe(first);
    expect(m.snapshot().get(1, 'idleCycles')).toBeGreaterThan(40_000);
  });

  it('exhausting KVA returns 0 where upstream does and panics where it does', () => {
    const { m, k } = bootedMachine();
    onCpu(m, 0, function* (cpu) {
      const sub = yield* kmem_alloc3(k, cpu, k.kernel_map, 4096, 0);
      const r = yield* kmem_suballoc(k, cpu, k.kernel_map, sub, 4 * 4096);
      const got: number[] = [];
      for (let i = 0; i < 5; i++) got.push(yield* kmem_alloc3(k, cpu, sub, 4096, 0));
      expect(got).toEqual([r.min, r.min + 4096, r.min + 8192, r.min + 12288, 0]);
      expect(yield* kmem_alloc_pageable(k, cpu, sub, 4096)).toBe(0);
      expect(yield* kmem_alloc_nofault(k, cpu, sub, 4096, 4096)).toBe(0);
      expect(yield* kmem_alloc_wait(k, cpu, sub, 8 * 4096)).toBe(0); // could never fit
      expect(yield* kmem_alloc3(k, cpu, k.kernel_map, 2 ** 40, 0)).toBe(0); // more than KVA
    });
    expect(() =>
      onCpu(m, 0, function* (cpu) {
        const sub = yield* kmem_alloc3(k, cpu, k.kernel_map, 4096, 0);
        yield* kmem_suballoc(k, cpu, k.kernel_map, sub, 2 ** 40);
      }),
    ).toThrow('panic: kmem_suballoc (cpu0)');
  });

  it('conserves pages across thousands of random allocations and frees on several CPUs', () => {
    const { m, k } = bootedMachine({ cpus: 4 });
    const total = vmstat(k, 'v_page_count');
    const pageTablesBefore = sysctl(k, 'vm.nkpt')!;
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const live: { va: number; size: number }[] = [];
    m.runAll(function* (cpu) {
      for (let i = 0; i < 600; i++) {
        yield* cpu.checkpoint();
        if (live.length > 0 && rand(2) === 0) {
          const { va, size } = live.splice(rand(live.length), 1)[0]!;
          yield* kmem_free(k, cpu, k.kernel_map, va, size);
        } else {
          const size = (1 + rand(4)) * 4096;
          const va = yield* kmem_alloc3(k, cpu, k.kernel_map, size, 0);
          expect(va).not.toBe(0);
          cpu.store64(va + size - 8, i);
          live.push({ va, size });
        }
      }
    });
    const free = vmstat(k, 'v_free_count');
    const wired = vmstat(k, 'v_wire_count');
    const pageTables = sysctl(k, 'vm.nkpt')! - pageTablesBefore;
    const liveBytes = live.reduce((n, x) => n + x.size, 0);
    expect(wired).toBe(liveBytes / 4096 + sysctl(k, 'vm.nkpt')!);
    expect(free + wired + vmstat(k, 'v_active_count') + vmstat(k, 'v_inactive_count')).toBe(total);
    expect(pageTables).toBeGreaterThanOrEqual(0);
    expect(mapEntries(k, k.kernel_map).filter((e) => e.object === k.kernel_object).length).toBeLessThanOrEqual(live.length);
  });

  it('kreserve() dips into the hidden reserve without allocating and panics when it is gone', () => {
    const { m, k } = bootedMachine();
    onCpu(m, 0, function* (cpu) {
      const avail = () => cpu.load32(k.gd(0) + globaldata.gd_vme_avail) | 0;
      const before = avail();
      vm_map_entry_kreserve(k, cpu, 4);
      expect(avail()).toBe(before - 4);
      vm_map_entry_krelease(k, cpu, 4);
      expect(avail()).toBe(before);
    });
    expect(() =>
      onCpu(m, 1, function* (cpu) {
        // Empty CPU1's list, then ask for more.
        cpu.storePtr(k.gd(1) + globaldata.gd_vme_base, 0);
        vm_map_entry_kreserve(k, cpu, 4);
      }),
    ).toThrow(/^panic: no reserved entries left, gd_vme_avail = -12 \(cpu1\)$/);
  });

  it('a touch of an address no map entry covers panics with the address and CPU', () => {
    const { m } = bootedMachine();
    expect(() => onCpu(m, 2, function* (cpu) { cpu.store8(0x1000, 1); })).toThrow(KernelPanic);
    expect(() => onCpu(m, 2, function* (cpu) { cpu.store8(0x1000, 1); })).toThrow(
      'panic: page fault while in kernel mode: fault virtual address = 0x0000000000001000, write, cpuid = 2: no map entry (cpu2)',
    );
  });
});

describe('boot on too little memory', () => {
  it('refuses a machine too small for the kernel with one clear error', () => {
    expect(() => bootedMachine({ memory: { size: '8m' } })).toThrow(
      /^machine memory of 8 MiB is too small for the kernel: its image and bootstrap page tables alone end at \d+\.\d MiB; give it at least 16 MiB$/,
    );
    expect(() => bootedMachine({ memory: { size: '16m' } })).not.toThrow();
  });
});
