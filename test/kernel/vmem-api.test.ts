// vmem(9) entry points not covered by vmem.test.ts (limits, reclaim, vmem_init on the caller's
// storage, vmem_roundup_size, vmem_rehash, the quantum caches giving items back), and every
// argument check of the API with the panic text FreeBSD's subr_vmem.c prints.
import { describe, expect, it } from 'vitest';
import { type Cpu, type Task } from '../../emu/index.js';
import {
  ENOMEM, KernelPanic, M_BESTFIT, M_FIRSTFIT, M_NOWAIT, M_WAITOK, type Kernel, VMEM_ADDR_MAX, VMEM_ADDR_MIN, VMEM_ALLOC,
  VMEM_FREE, vmem, vmem_add, vmem_alloc, vmem_create, vmem_free, vmem_init, vmem_rehash, vmem_roundup_size, vmem_set_import,
  vmem_set_limit, vmem_set_reclaim, vmem_size, vmem_startup, vmem_xalloc, vmem_xfree, vmemCount, vmemField, vmemImportXalloc,
  vmemSegments, BT_TYPE_BUSY, BT_TYPE_FREE, BT_TYPE_SPAN, BT_TYPE_SPAN_STATIC, kmem_alloc3,
} from '../../kernel/index.js';
import { bootedMachine, onCpu } from './helpers.js';

const NW = M_NOWAIT | M_BESTFIT;
const K = 0x1000n;

function rig() {
  const { m, k } = bootedMachine({ cpus: 1 });
  onCpu(m, 0, (cpu) => vmem_startup(k, cpu));
  const run = <T>(body: (cpu: Cpu) => Task<T>): T => onCpu(m, 0, body);
  const create = (name: string, base: bigint, size: bigint, quantum = K, qcacheMax = 0n) =>
    run((cpu) => vmem_create(k, cpu, name, base, size, quantum, qcacheMax, M_WAITOK));
  const xalloc = (vm: number, size: bigint, flags = NW, align = 0n, phase = 0n, nocross = 0n, min = VMEM_ADDR_MIN, max = VMEM_ADDR_MAX) =>
    run((cpu) => vmem_xalloc(k, cpu, vm, size, align, phase, nocross, min, max, flags));
  const segs = (vm: number) => run(function* (cpu) {
    return vmemSegments(cpu, vm).map((s): [bigint, bigint, number] => [s.start, s.size, s.type]);
  });
  return { m, k, run, create, xalloc, segs };
}

describe('subr_vmem: the rest of the API', () => {
  it('vmem_set_limit() stops imports that would take the arena past its limit; the parent is untouched', () => {
    const r = rig();
    const parent = r.create('parent', 0x100000n, 0x100000n);
    const child = r.create('child', 0n, 0n);
    const { importfn, releasefn } = vmemImportXalloc(r.k);
    r.run((cpu) => vmem_set_import(r.k, cpu, child, importfn, releasefn, parent, 0x4000n));
    r.run((cpu) => vmem_set_limit(r.k, cpu, child, 0x8000n));
    expect(r.run(function* (cpu) {
      return vmemField(cpu, child, 'vm_limit');
    })).toBe(0x8000n);
    // Two imports of one import quantum each fit under the limit; a third does not.
    expect(r.xalloc(child, 0x4000n)).toEqual({ error: 0, addr: 0x100000n });
    expect(r.xalloc(child, 0x4000n)).toEqual({ error: 0, addr: 0x104000n });
    expect(r.xalloc(child, 0x1000n)).toEqual({ error: ENOMEM, addr: 0n });
    expect(r.run((cpu) => vmem_size(r.k, cpu, child, VMEM_ALLOC | VMEM_FREE))).toBe(0x8000n);
    expect(r.run((cpu) => vmem_size(r.k, cpu, parent, VMEM_ALLOC))).toBe(0x8000n);
  });

  it('vmem_set_reclaim(): when nothing fits the reclaim function runs, and what it frees is allocated', () => {
    const r = rig();
    const vm = r.create('reclaim', 0x10000n, 0x4000n);
    const held = [r.xalloc(vm, 0x2000n).addr, r.xalloc(vm, 0x2000n).addr];
    const calls: number[] = [];
    const k = r.k;
    r.run((cpu) => vmem_set_reclaim(k, cpu, vm, function* (c: Cpu, arena: number, flags: number) {
      calls.push(flags);
      yield* vmem_xfree(k, c, arena, held.pop()!, 0x2000n);
    }));
    expect(r.xalloc(vm, 0x2000n)).toEqual({ error: 0, addr: 0x12000n });
    expect(calls).toEqual([NW]);
    // Without a reclaim function the same request fails at once.
    r.run((cpu) => vmem_set_reclaim(k, cpu, vm, undefined));
    expect(r.xalloc(vm, 0x2000n).error).toBe(ENOMEM);
    expect(calls).toHaveLength(1);
  });

  it('vmem_init() makes an arena in the caller\'s storage, as the kernel\'s static arenas are made', () => {
    const r = rig();
    const store = r.run((cpu) => kmem_alloc3(r.k, cpu, r.k.kernel_map, vmem.sizeof, 0));
    expect(r.run((cpu) => vmem_init(r.k, cpu, store, 'static', 0x200000n, 0x10000n, K, 0n, M_WAITOK))).toBe(store);
    expect(r.segs(store)).toEqual([[0x200000n, 0x10000n, BT_TYPE_SPAN_STATIC], [0x200000n, 0x10000n, BT_TYPE_FREE]]);
    expect(r.xalloc(store, 0x3000n)).toEqual({ error: 0, addr: 0x200000n });
  });

  it('vmem_roundup_size() rounds to the quantum; vmem_add() adds a span at any address', () => {
    const r = rig();
    const vm = r.create('round', 0x10000n, 0x10000n, 0x40n);
    expect(r.run(function* (cpu) {
      return [1n, 0x40n, 0x41n, 0xfffn].map((s) => vmem_roundup_size(cpu, vm, s));
    })).toEqual([0x40n, 0x40n, 0x80n, 0x1000n]);
    expect(r.run((cpu) => vmem_add(r.k, cpu, vm, 0x1000n, 0x400n, M_WAITOK))).toBe(0);
    expect(r.xalloc(vm, 0x400n, NW, 0n, 0n, 0n, 0n, 0x2000n)).toEqual({ error: 0, addr: 0x1000n });
  });

  it('vmem_rehash() moves every busy tag to the new table and frees the old one\'s references', () => {
    const r = rig();
    const vm = r.create('rehash', 0x100000n, 0x100000n);
    const addrs = Array.from({ length: 24 }, () => r.xalloc(vm, K).addr);
    expect(r.run((cpu) => vmem_rehash(r.k, cpu, vm, 128))).toBe(0);
    expect(r.run(function* (cpu) {
      return [vmemField(cpu, vm, 'vm_hashsize'), vmemCount(cpu, vm, 'vm_nbusytag')];
    })).toEqual([128n, 24]);
    for (const a of addrs) r.run((cpu) => vmem_xfree(r.k, cpu, vm, a, K));
    expect(r.segs(vm)).toEqual([[0x100000n, 0x100000n, BT_TYPE_SPAN_STATIC], [0x100000n, 0x100000n, BT_TYPE_FREE]]);
  });

  it('vmem_free() of a cached size goes to the quantum cache, not the arena: the segment stays busy', () => {
    const r = rig();
    const vm = r.create('qc', 0x10000n, 0x10000n, 16n, 32n);
    const a = r.run((cpu) => vmem_alloc(r.k, cpu, vm, 32n, M_NOWAIT | M_FIRSTFIT));
    expect(a.error).toBe(0);
    // qc_import filled a bucket: 128 items of 32 bytes are busy in the arena.
    const busy = r.run((cpu) => vmem_size(r.k, cpu, vm, VMEM_ALLOC));
    expect(busy).toBe(128n * 32n);
    r.run((cpu) => vmem_free(r.k, cpu, vm, a.addr, 32n));
    expect(r.run((cpu) => vmem_size(r.k, cpu, vm, VMEM_ALLOC))).toBe(busy);
    // The same size above the cache's range goes to the arena at once.
    const big = r.xalloc(vm, 0x40n);
    expect(big.error).toBe(0);
    r.run((cpu) => vmem_xfree(r.k, cpu, vm, big.addr, 0x40n));
    expect(r.run((cpu) => vmem_size(r.k, cpu, vm, VMEM_ALLOC))).toBe(busy);
    expect(r.segs(vm).filter(([, , t]) => t === BT_TYPE_BUSY)).toHaveLength(Number(busy / 32n));
    expect(r.segs(vm).some(([, , t]) => t === BT_TYPE_SPAN)).toBe(false);
  });
});

describe('subr_vmem: argument checks panic with upstream\'s text', () => {
  const at = (expr: string, line: number) => `Assertion ${expr} failed at sys/kern/subr_vmem.c:${line}`;
  type Case = [string, (k: Kernel, cpu: Cpu, vm: number) => Task<unknown>, string];
  const x = (size: bigint, flags: number, align = 0n, phase = 0n, nocross = 0n, min = VMEM_ADDR_MIN, max = VMEM_ADDR_MAX) =>
    (k: Kernel, cpu: Cpu, vm: number) => vmem_xalloc(k, cpu, vm, size, align, phase, nocross, min, max, flags);
  const cases: Case[] = [
    ['vmem_xalloc of 0 bytes', x(0n, NW), at('size0 > 0', 1159)],
    ['vmem_xalloc with no strategy', x(K, M_NOWAIT), at('strat == M_BESTFIT || strat == M_FIRSTFIT', 1161)],
    ['vmem_xalloc with M_NOWAIT and M_WAITOK', x(K, M_NOWAIT | M_WAITOK | M_BESTFIT), at('(flags & (M_NOWAIT|M_WAITOK)) != (M_NOWAIT|M_WAITOK)', 1162)],
    ['vmem_xalloc aligned below the quantum', x(K, NW, 0x800n), at('(align & vm->vm_quantum_mask) == 0', 1165)],
    ['vmem_xalloc aligned to no power of two', x(K, NW, 0x3000n), at('(align & (align - 1)) == 0', 1166)],
    ['vmem_xalloc with a phase below the quantum', x(K, NW, 0x2000n, 0x800n), at('(phase & vm->vm_quantum_mask) == 0', 1167)],
    ['vmem_xalloc with nocross below the quantum', x(K, NW, 0n, 0n, 0x800n), at('(nocross & vm->vm_quantum_mask) == 0', 1168)],
    ['vmem_xalloc with nocross no power of two', x(K, NW, 0n, 0n, 0x3000n), at('(nocross & (nocross - 1)) == 0', 1169)],
    ['vmem_xalloc with phase ≥ align', x(K, NW, 0x2000n, 0x2000n), at('(align == 0 && phase == 0) || phase < align', 1170)],
    ['vmem_xalloc larger than nocross', x(0x2000n, NW, 0n, 0n, 0x1000n), at('nocross == 0 || nocross >= size', 1171)],
    ['vmem_xalloc with minaddr > maxaddr', x(K, NW, 0n, 0n, 0n, 0x3000n, 0x2000n), at('minaddr <= maxaddr', 1172)],
    ['vmem_xalloc whose phase crosses nocross', x(0x2000n, NW, 0x4000n, 0x1000n, 0x2000n), at('!VMEM_CROSS_P(phase, phase + size - 1, nocross)', 1173)],
    ['vmem_alloc of 0 bytes', (k, cpu, vm) => vmem_alloc(k, cpu, vm, 0n, NW), at('size > 0', 1120)],
    ['vmem_alloc with no strategy', (k, cpu, vm) => vmem_alloc(k, cpu, vm, K, M_NOWAIT), at('strat == M_BESTFIT || strat == M_FIRSTFIT', 1121)],
    ['vmem_free of 0 bytes', (k, cpu, vm) => vmem_free(k, cpu, vm, 0x10000n, 0n), at('size > 0', 1269)],
    ['vmem_xfree of 0 bytes', (k, cpu, vm) => vmem_xfree(k, cpu, vm, 0x10000n, 0n), at('size > 0', 1285)],
    ['vmem_add of a span that is no multiple of the quantum', (k, cpu, vm) => vmem_add(k, cpu, vm, 0x100000n, 0x1800n, M_WAITOK),
      at('(size & vm->vm_quantum_mask) == 0', 808)],
    ['vmem_rehash to no lists', (k, cpu, vm) => vmem_rehash(k, cpu, vm, 0), at('newhashsize > 0', 710)],
    ['vmem_size with no type', (k, cpu, vm) => vmem_size(k, cpu, vm, 0), 'vmem_size'],
    ['vmem_init with a zero quantum', (k, cpu) => vmem_create(k, cpu, 'q0', 0n, 0n, 0n, 0n, M_WAITOK), at('quantum > 0', 1033)],
    ['vmem_init with a quantum no power of two', (k, cpu) => vmem_create(k, cpu, 'q3', 0n, 0n, 0x1800n, 0n, M_WAITOK),
      at('(quantum & (quantum - 1)) == 0', 1034)],
    ['vmem_init with qcache_max no multiple of the quantum', (k, cpu) => vmem_create(k, cpu, 'qc', 0n, 0n, K, 0x1800n, M_WAITOK),
      at('(qcache_max & vm->vm_quantum_mask) == 0', 552)],
    ['vmem_startup twice', (k, cpu) => vmem_startup(k, cpu), 'vmem_startup: called twice'],
  ];
  for (const [what, call, message] of cases) {
    it(what, () => {
      const r = rig();
      const vm = r.create('args', 0x10000n, 0x10000n);
      expect(() => r.run((cpu) => call(r.k, cpu, vm))).toThrow(new KernelPanic(0, message));
    });
  }

  it('vmem before vmem_startup', () => {
    const { m, k } = bootedMachine({ cpus: 1 });
    expect(() => onCpu(m, 0, (cpu) => vmem_create(k, cpu, 'early', 0n, 0n, K, 0n, M_WAITOK)))
      .toThrow(new KernelPanic(0, 'vmem: vmem_startup has not run'));
  });
});
