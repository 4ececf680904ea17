// FreeBSD 10's kernel arenas under vm.kmem_backend=vmem: boot, kmem_malloc/kmem_free, the
// KERNBASE cutout, the boundary-tag reserve, the sysctls and vmstat -z.
import { describe, expect, it } from 'vitest';
import { Machine, machinePresets, mergeConfig, type MachineConfigInput } from '../../emu/index.js';
import {
  BT_MAXALLOC, boot, KERNBASE, kmem_free, kmem_malloc, type Kernel, M_NOWAIT, M_USE_RESERVE, M_WAITOK, M_ZERO, PAGE_SIZE, pmap_kextract, sysctl,
  uma_vmstat_z, uma_zalloc, umaHandle, umaZoneStats, VMEM_ALLOC, VMEM_FREE, vmem_create, vmem_size, vmemCount, vmemSegments,
} from '../../kernel/index.js';
import { onCpu } from './helpers.js';

function vmemBoot(cpus = 1): { m: Machine; k: Kernel } {
  const cfg = mergeConfig(mergeConfig(machinePresets['coursework'], { memory: { size: '32m' } }), { cpus }) as MachineConfigInput;
  const m = new Machine(cfg);
  return { m, k: boot(m, { 'vm.kmem_backend': 'vmem' }) };
}

const top = (a: bigint) => Number(a & ((1n << 48n) - 1n));

describe('kernel arenas (vm.kmem_backend=vmem)', () => {
  it('boot() with vm.kmem_backend=vmem sets up kernel_arena and kmem_arena; the default boot has neither', () => {
    const { m, k } = vmemBoot();
    expect(k.tunables).toEqual({ 'vm.kmem_backend': 'vmem', 'kern.ipc.nmbclusters': '3072' });
    expect(sysctl(k, 'vm.kmem_size')).toBe(PAGE_SIZE * (sysctl(k, 'vm.stats.vm.v_page_count') as number));
    expect(sysctl(k, 'vm.kmem_map_size')).toBe(0);
    expect(sysctl(k, 'vm.kmem_map_free')).toBe(sysctl(k, 'vm.kmem_size'));
    const segs = vmemSegments(m.cpus[0]!, k.kmem_arena);
    expect(segs.map((s) => s.size)).toEqual([BigInt(sysctl(k, 'vm.kmem_size')!), BigInt(sysctl(k, 'vm.kmem_size')!)]);
    const d = boot(new Machine(mergeConfig(machinePresets['coursework'], { memory: { size: '32m' } }) as MachineConfigInput));
    expect([d.kmem_arena, d.kernel_arena, sysctl(d, 'vm.kmem_size')]).toEqual([0, 0, undefined]);
  });

  it('kernel_arena\'s spans come from kernel_map below KERNBASE, never the cutout [KERNBASE, virtual_start)', () => {
    const { m, k } = vmemBoot();
    for (const s of vmemSegments(m.cpus[0]!, k.kernel_arena)) {
      const start = top(s.start);
      const end = start + Number(s.size);
      expect(end <= KERNBASE || start >= k.virtual_start).toBe(true);
    }
  });

  it('kmem_malloc() maps zeroed wired pages inside kmem_arena and kmem_free() gives pages and KVA back', () => {
    const { m, k } = vmemBoot();
    const free0 = sysctl(k, 'vm.stats.vm.v_free_count')!;
    const base = top(vmemSegments(m.cpus[0]!, k.kmem_arena)[0]!.start);
    const c0 = m.cpus[0]!.clock;
    const va = onCpu(m, 0, (cpu) => kmem_malloc(k, cpu, k.kmem_arena, 3 * PAGE_SIZE, M_WAITOK | M_ZERO));
    const allocCycles = m.cpus[0]!.clock - c0;
    expect(va - base).toBe(0);
    expect(sysctl(k, 'vm.kmem_map_size')).toBe(3 * PAGE_SIZE);
    expect(sysctl(k, 'vm.stats.vm.v_free_count')).toBe(free0 - 3);
    expect(sysctl(k, 'vm.stats.vm.v_wire_count')).toBe(3);
    for (let i = 0; i < 3; i++) {
      expect(onCpu(m, 0, function* (cpu) { return pmap_kextract(k, cpu, va + i * PAGE_SIZE); })).not.toBe(0);
      expect(k.peek32(va + i * PAGE_SIZE + 128)).toBe(0);
    }
    const c1 = m.cpus[0]!.clock;
    onCpu(m, 0, (cpu) => kmem_free(k, cpu, k.kmem_arena, va, 3 * PAGE_SIZE));
    const freeCycles = m.cpus[0]!.clock - c1;
    expect(sysctl(k, 'vm.kmem_map_size')).toBe(0);
    expect(sysctl(k, 'vm.kmem_map_free')).toBe(sysctl(k, 'vm.kmem_size'));
    expect(sysctl(k, 'vm.stats.vm.v_free_count')).toBe(free0);
    expect(sysctl(k, 'vm.stats.vm.v_wire_count')).toBe(0);
    expect(onCpu(m, 0, function* (cpu) { return pmap_kextract(k, cpu, va); })).toBe(0);
    expect(onCpu(m, 0, function* (cpu) {
      return [yield* vmem_size(k, cpu, k.kmem_arena, VMEM_ALLOC), yield* vmem_size(k, cpu, k.kmem_arena, VMEM_FREE)];
    })).toEqual([0n, BigInt(sysctl(k, 'vm.kmem_size')!)]);
    expect({ allocCycles, freeCycles }).toEqual(CYCLES);
  });

  it('the btag zone keeps BT_MAXALLOC * (ncpus + 1) / 2 tags for M_USE_RESERVE: kmem_arena\'s tag slab comes from them; exhausted, kmem_malloc fails', () => {
    const drain = (k: Kernel, m: Machine, flags: number) => {
      const h = umaHandle(k, umaZoneStats(k).find((z) => z.name === 'vmem btag')!.zone);
      return onCpu(m, 0, function* (cpu) {
        let n = 0;
        // M_NOVM (0x0200): no new slab.
        while ((yield* uma_zalloc(k, cpu, h, flags | 0x0200)) !== 0) n++;
        return n;
      });
    };
    const bt = (k: Kernel) => umaZoneStats(k).find((z) => z.name === 'vmem btag')!;
    const reserve = Math.floor((BT_MAXALLOC * 3) / 2);
    const a = vmemBoot(2);
    expect(drain(a.k, a.m, M_NOWAIT)).toBe(PLAIN);
    expect(bt(a.k).kegFree).toBe(reserve);
    // The zone is dry but for its reserve: kmem_arena's tags need a new slab, which vmem_bt_alloc
    // takes from kmem_arena itself with M_USE_RESERVE.
    expect(onCpu(a.m, 0, (cpu) => kmem_malloc(a.k, cpu, a.k.kmem_arena, PAGE_SIZE, M_WAITOK))).not.toBe(0);
    expect(bt(a.k).kegPages).toBe(2);
    expect(sysctl(a.k, 'vm.kmem_map_size')).toBe(2 * PAGE_SIZE);
    // The reserve taken as well: nothing can give kmem_arena tags, and an M_NOWAIT kmem_malloc returns 0.
    const b = vmemBoot(2);
    expect([drain(b.k, b.m, M_NOWAIT), drain(b.k, b.m, M_NOWAIT | M_USE_RESERVE)]).toEqual([PLAIN, reserve]);
    expect(onCpu(b.m, 0, (cpu) => kmem_malloc(b.k, cpu, b.k.kmem_arena, PAGE_SIZE, M_NOWAIT))).toBe(0);
    expect(sysctl(b.k, 'vm.kmem_map_size')).toBe(0);
  });

  it('uma_vmstat_z lists "vmem btag", "vmem" and an arena\'s quantum-cache zones', () => {
    const { m, k } = vmemBoot();
    onCpu(m, 0, (cpu) => vmem_create(k, cpu, 'qc', 0x1000n, 0x100000n, 0x1000n, 0x4000n, M_WAITOK));
    const z = uma_vmstat_z(k);
    for (const name of ['vmem btag', 'vmem', 'qc-4096', 'qc-8192', 'qc-12288', 'qc-16384']) expect(z).toContain(`${name}:`);
    expect(vmemCount(m.cpus[0]!, k.kmem_arena, 'vm_quantum_shift')).toBe(12);
  });
});

// 3 pages, M_ZERO, on the 32 MiB coursework machine, 1 CPU.
// 24208 before UMA's 2005 zone layout (the btag zones' header lines moved).
const CYCLES = { allocCycles: 24368, freeCycles: 2082 };
const PLAIN = 55;
