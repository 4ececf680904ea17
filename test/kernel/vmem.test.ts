import { describe, expect, it } from 'vitest';
import { type Cpu, Machine, type Task, loadMachineConfig } from '../../emu/index.js';
import {
  BT_TYPE_BUSY, BT_TYPE_FREE, BT_TYPE_SPAN, BT_TYPE_SPAN_STATIC, ENOMEM, KernelPanic, M_BESTFIT, M_FIRSTFIT, M_NEXTFIT, M_NOWAIT, M_WAITOK,
  VMEM_ADDR_MAX, VMEM_ADDR_MIN, VMEM_ALLOC, VMEM_FREE, VMEM_MAXFREE, boot, type Kernel, hash32_buf64, vmem_add, vmem_alloc, vmem_btag, vmem_check,
  vmem_create, vmem_destroy, vmem_dump, vmem_free, vmem_periodic, vmem_set_import, vmem_size, vmem_startup, vmem_whatis, vmem_xalloc,
  vmem_xfree, vmemCount, vmemField, vmemImportXalloc, vmemLockCount, vmemSegments,
} from '../../kernel/index.js';
import { bootedMachine, onCpu } from './helpers.js';

const BASE = 0xfffffe0000000000n;
const NW = M_NOWAIT | M_BESTFIT;

interface Rig {
  m: Machine;
  k: Kernel;
  run: <T>(body: (cpu: Cpu) => Task<T>) => T;
  create: (name: string, base: bigint, size: bigint, quantum: bigint, qcacheMax?: bigint) => number;
  xalloc: (vm: number, size: bigint, flags?: number, align?: bigint, phase?: bigint, nocross?: bigint, min?: bigint, max?: bigint) => bigint | 'ENOMEM';
  xfree: (vm: number, addr: bigint, size: bigint) => void;
  segs: (vm: number) => [bigint, bigint, number][];
}

function rig(cpus = 1, preset?: string): Rig {
  const { m, k } = preset === undefined ? bootedMachine({ cpus }) : (() => {
    const mm = new Machine(loadMachineConfig(preset, { cpus }));
    return { m: mm, k: boot(mm) };
  })();
  onCpu(m, 0, (cpu) => vmem_startup(k, cpu));
  const run = <T>(body: (cpu: Cpu) => Task<T>): T => onCpu(m, 0, body);
  return {
    m, k, run,
    create: (name, base, size, quantum, qcacheMax = 0n) => run((cpu) => vmem_create(k, cpu, name, base, size, quantum, qcacheMax, M_WAITOK)),
    xalloc: (vm, size, flags = NW, align = 0n, phase = 0n, nocross = 0n, min = VMEM_ADDR_MIN, max = VMEM_ADDR_MAX) => {
      const r = run((cpu) => vmem_xalloc(k, cpu, vm, size, align, phase, nocross, min, max, flags));
      return r.error === 0 ? r.addr : r.error === ENOMEM ? 'ENOMEM' : (() => { throw new Error(`error ${r.error}`); })();
    },
    xfree: (vm, addr, size) => run((cpu) => vmem_xfree(k, cpu, vm, addr, size)),
    segs: (vm) => run(function* (cpu) {
      return vmemSegments(cpu, vm).map((s): [bigint, bigint, number] => [s.start, s.size, s.type]);
    }),
  };
}

describe('subr_vmem', () => {
  it('hash32_buf64() is sys/hash.h hash32_buf over the 8 little-endian bytes, started from 0 as bt_hashhead does', () => {
    expect(hash32_buf64(1n, 0)).toBe(Number(33n ** 7n % 2n ** 32n));
    let h = 0;
    for (const c of [0, 0x10, 0, 0, 0, 0xfe, 0xff, 0xff]) h = (Math.imul(h, 33) + c) >>> 0;
    expect(hash32_buf64(0xfffffe0000001000n, 0)).toBe(h);
  });

  it('vmem_create() adds a static span before its free segment; vmem_xalloc() clips the lowest fit; vmem_size() reports it', () => {
    const r = rig();
    const vm = r.create('test', BASE, 0x10000n, 0x1000n);
    expect(r.segs(vm)).toEqual([[BASE, 0x10000n, BT_TYPE_SPAN_STATIC], [BASE, 0x10000n, BT_TYPE_FREE]]);
    expect(r.xalloc(vm, 0x1800n)).toBe(BASE);
    expect(r.segs(vm)).toEqual([[BASE, 0x10000n, BT_TYPE_SPAN_STATIC], [BASE, 0x2000n, BT_TYPE_BUSY], [BASE + 0x2000n, 0xe000n, BT_TYPE_FREE]]);
    expect(r.run(function* (cpu) {
      return [
        yield* vmem_size(r.k, cpu, vm, VMEM_ALLOC), yield* vmem_size(r.k, cpu, vm, VMEM_FREE),
        yield* vmem_size(r.k, cpu, vm, VMEM_ALLOC | VMEM_FREE), yield* vmem_size(r.k, cpu, vm, VMEM_MAXFREE),
      ];
    })).toEqual([0x2000n, 0xe000n, 0x10000n, 0xe000n]);
    expect(r.run(function* (cpu) {
      return [vmemCount(cpu, vm, 'vm_nbusytag'), vmemCount(cpu, vm, 'vm_nfreetags')];
    })).toEqual([1, 3]);
  });

  it('vmem_xalloc() honours align/phase, nocross, minaddr and maxaddr; M_NOWAIT fails with ENOMEM', () => {
    const r = rig();
    const vm = r.create('c', 0x1000n, 0xf000n, 0x100n);
    expect(r.xalloc(vm, 0x100n, NW, 0x4000n, 0x200n)).toBe(0x4200n);
    expect(r.xalloc(vm, 0x800n, NW, 0n, 0n, 0x1000n, 0x1c00n)).toBe(0x2000n);
    expect(r.xalloc(vm, 0x100n, NW, 0n, 0n, 0n, 0x8000n)).toBe(0x8000n);
    expect(r.xalloc(vm, 0x200n, NW, 0n, 0n, 0n, 0n, 0x10ffn)).toBe('ENOMEM');
    expect(r.xalloc(vm, 0x100n, NW, 0n, 0n, 0n, 0n, 0x10ffn)).toBe(0x1000n);
    expect(r.xalloc(vm, 0x10000n)).toBe('ENOMEM');
    r.run(function* (cpu) {
      vmem_check(r.k, cpu, vm);
    });
  });

  it('M_BESTFIT and M_FIRSTFIT choose different segments on a crafted freelist', () => {
    // Free segments of 40 quanta (freelist[31]: 33..63) at 0x1000 and 100 (freelist[32]:
    // 64..127) at 0x1030, busy ones between them and after.
    const craft = (): [Rig, number] => {
      const r = rig();
      const vm = r.create('fit', 0x1000n, 0x1000n, 1n);
      const a = r.xalloc(vm, 40n) as bigint;
      r.xalloc(vm, 8n);
      const c = r.xalloc(vm, 100n) as bigint;
      r.xalloc(vm, 8n);
      r.xfree(vm, a, 40n);
      r.xfree(vm, c, 100n);
      expect([a, c]).toEqual([0x1000n, 0x1030n]);
      return [r, vm];
    };
    // Best fit starts at freelist[31], whose 40-quantum segment fits; first fit starts at the
    // first list all of whose segments fit, freelist[32], and takes its head.
    const [r1, vm1] = craft();
    expect(r1.xalloc(vm1, 33n, M_NOWAIT | M_BESTFIT)).toBe(0x1000n);
    const [r2, vm2] = craft();
    expect(r2.xalloc(vm2, 33n, M_NOWAIT | M_FIRSTFIT)).toBe(0x1030n);
    expect(r2.segs(vm2).slice(1, 5)).toEqual([
      [0x1000n, 40n, BT_TYPE_FREE], [0x1028n, 8n, BT_TYPE_BUSY], [0x1030n, 33n, BT_TYPE_BUSY], [0x1051n, 67n, BT_TYPE_FREE],
    ]);
  });

  it('vmem_xfree() coalesces with the free segments before and after', () => {
    const r = rig();
    const vm = r.create('co', BASE, 0x4000n, 0x1000n);
    const [a, b, c] = [r.xalloc(vm, 0x1000n), r.xalloc(vm, 0x1000n), r.xalloc(vm, 0x1000n)] as bigint[];
    r.xfree(vm, a!, 0x1000n);
    r.xfree(vm, c!, 0x1000n);
    expect(r.segs(vm)).toEqual([
      [BASE, 0x4000n, BT_TYPE_SPAN_STATIC], [BASE, 0x1000n, BT_TYPE_FREE], [BASE + 0x1000n, 0x1000n, BT_TYPE_BUSY], [BASE + 0x2000n, 0x2000n, BT_TYPE_FREE],
    ]);
    r.xfree(vm, b!, 0x1000n);
    expect(r.segs(vm)).toEqual([[BASE, 0x4000n, BT_TYPE_SPAN_STATIC], [BASE, 0x4000n, BT_TYPE_FREE]]);
  });

  it('vmem_add() adds a second static span at the tail of the segment list', () => {
    const r = rig();
    const vm = r.create('add', 0n, 0n, 0x1000n);
    expect(r.segs(vm)).toEqual([]);
    expect(r.xalloc(vm, 0x1000n)).toBe('ENOMEM');
    expect(r.run((cpu) => vmem_add(r.k, cpu, vm, 0x10000n, 0x2000n, M_WAITOK))).toBe(0);
    expect(r.xalloc(vm, 0x1000n)).toBe(0x10000n);
  });

  it('an arena imports a span from its parent and releases it when it is wholly free', () => {
    const r = rig();
    const parent = r.create('parent', BASE, 0x100000n, 0x1000n);
    const child = r.create('child', 0n, 0n, 0x1000n);
    const { importfn, releasefn } = vmemImportXalloc(r.k);
    r.run((cpu) => vmem_set_import(r.k, cpu, child, importfn, releasefn, parent, 0x10000n));
    const a = r.xalloc(child, 0x1000n) as bigint;
    expect(a).toBe(BASE);
    expect(r.m.cpu(0).lastOpLabel).toBe(r.k.label['vmem.import']);
    expect(r.segs(child)).toEqual([[BASE, 0x10000n, BT_TYPE_SPAN], [BASE, 0x1000n, BT_TYPE_BUSY], [BASE + 0x1000n, 0xf000n, BT_TYPE_FREE]]);
    expect(r.segs(parent)[1]).toEqual([BASE, 0x10000n, BT_TYPE_BUSY]);
    r.xfree(child, a, 0x1000n);
    expect(r.segs(child)).toEqual([]);
    expect(r.segs(parent)).toEqual([[BASE, 0x100000n, BT_TYPE_SPAN_STATIC], [BASE, 0x100000n, BT_TYPE_FREE]]);
    expect(r.run((cpu) => vmem_size(r.k, cpu, child, VMEM_ALLOC | VMEM_FREE))).toBe(0n);
  });

  it('vmem_periodic() rehashes when the busy tags grow, and lookups still find every tag', () => {
    const r = rig();
    const vm = r.create('hash', 0x100000n, 0x100000n, 0x1000n);
    const addrs: bigint[] = [];
    for (let i = 0; i < 40; i++) addrs.push(r.xalloc(vm, 0x1000n) as bigint);
    expect(r.run(function* (cpu) {
      return vmemField(cpu, vm, 'vm_hashsize');
    })).toBe(16n);
    r.run((cpu) => vmem_periodic(r.k, cpu));
    expect(r.run(function* (cpu) {
      return vmemField(cpu, vm, 'vm_hashsize');
    })).toBe(64n);
    for (const a of addrs) r.xfree(vm, a, 0x1000n);
    expect(r.segs(vm)).toEqual([[0x100000n, 0x100000n, BT_TYPE_SPAN_STATIC], [0x100000n, 0x100000n, BT_TYPE_FREE]]);
    r.run((cpu) => vmem_periodic(r.k, cpu));
    expect(r.run(function* (cpu) {
      return vmemField(cpu, vm, 'vm_hashsize');
    })).toBe(16n);
  });

  it('M_NEXTFIT allocates after the previous allocation, not in the lowest hole', () => {
    const r = rig();
    const vm = r.create('next', 0x10000n, 0x10000n, 0x1000n);
    const NF = M_NOWAIT | M_NEXTFIT;
    const a = r.xalloc(vm, 0x1000n, NF) as bigint;
    expect(a).toBe(0x10000n);
    expect(r.xalloc(vm, 0x1000n, NF)).toBe(0x11000n);
    r.xfree(vm, a, 0x1000n);
    expect(r.xalloc(vm, 0x1000n, NF)).toBe(0x12000n);
    expect(r.xalloc(vm, 0x1000n, M_NOWAIT | M_BESTFIT)).toBe(0x10000n);
    expect(r.xalloc(vm, 0xd000n, NF)).toBe(0x13000n);
    // Everything is busy: the walk wraps round to the cursor and fails.
    expect(r.xalloc(vm, 0x1000n, NF)).toBe('ENOMEM');
    r.run(function* (cpu) {
      vmem_check(r.k, cpu, vm);
    });
  });

  it('an M_WAITOK vmem_xalloc() sleeps on one CPU until another CPU frees', () => {
    const r = rig(2);
    const vm = r.create('wait', 0x1000n, 0x1000n, 0x1000n);
    const a = r.xalloc(vm, 0x1000n) as bigint;
    let freedAt = 0;
    let got: { error: number; addr: bigint; at: number } | undefined;
    r.m.run([
      function* (cpu: Cpu): Task {
        cpu.compute(50_000);
        yield* vmem_xfree(r.k, cpu, vm, a, 0x1000n);
        freedAt = cpu.clock;
      },
      function* (cpu: Cpu): Task {
        const res = yield* vmem_xalloc(r.k, cpu, vm, 0x1000n, 0n, 0n, 0n, VMEM_ADDR_MIN, VMEM_ADDR_MAX, M_WAITOK | M_BESTFIT);
        got = { ...res, at: cpu.clock };
      },
    ]);
    expect(got!.error).toBe(0);
    expect(got!.addr).toBe(0x1000n);
    expect(got!.at).toBeGreaterThan(50_000);
    expect(freedAt).toBeGreaterThan(50_000);
  });

  it('vmem_alloc() of a cached size takes the quantum cache; a second alloc after a free never takes the arena lock', () => {
    const r = rig(1, 'amd64-host');
    const vm = r.create('qc', 0x1000n, 0x10000n, 16n, 64n);
    expect(r.run(function* (cpu) {
      return vmemField(cpu, vm, 'vm_qcache_max');
    })).toBe(64n);
    const first = r.run((cpu) => vmem_alloc(r.k, cpu, vm, 16n, M_NOWAIT | M_BESTFIT));
    // The first fills a bucket of 128 items by qc_import and takes the last of them.
    expect(first).toEqual({ error: 0, addr: 0x1000n + 127n * 16n });
    expect(r.run(function* (cpu) {
      return vmemCount(cpu, vm, 'vm_nbusytag');
    })).toBe(128);
    r.run((cpu) => vmem_free(r.k, cpu, vm, first.addr, 16n));
    const locks = vmemLockCount(r.k);
    const second = r.run((cpu) => vmem_alloc(r.k, cpu, vm, 16n, M_NOWAIT | M_BESTFIT));
    // The freed item went to the free bucket; the next one comes from the alloc bucket.
    expect(second).toEqual({ error: 0, addr: first.addr - 16n });
    expect(vmemLockCount(r.k)).toBe(locks);
    expect(r.m.cpu(0).lastOpLabel).toBe(r.k.label['vmem.qcache']);
    // Above vm_qcache_max the arena itself allocates, under its lock.
    const big = r.run((cpu) => vmem_alloc(r.k, cpu, vm, 80n, M_NOWAIT | M_BESTFIT));
    expect(big.error).toBe(0);
    expect(vmemLockCount(r.k)).toBeGreaterThan(locks);
    expect(r.m.cpu(0).lastOpLabel).toBe(r.k.label['vmem.xalloc']);
  });

  it('vmem_dump(), vmem_whatis() and vmem_destroy()', () => {
    const r = rig();
    const vm = r.create('dump', 0x1000n, 0x2000n, 0x1000n);
    const a = r.xalloc(vm, 0x1000n) as bigint;
    const dump = r.run(function* (cpu) {
      return vmem_dump(cpu, vm);
    });
    expect(dump.split('\n').map((l) => l.replace(/0x[0-9a-f]+:/, 'BT:'))).toEqual([
      expect.stringMatching(/^vmem 0x[0-9a-f]+ 'dump'$/),
      '\tBT: 0 0, 5(cursor)', '\tBT: 1000 2000, 2(static span)', '\tBT: 1000 1000, 4(busy)', '\tBT: 2000 1000, 3(free)',
      'freelist[0]', '\tBT: 2000 1000, 3(free)', '',
    ]);
    expect(r.run(function* (cpu) {
      return vmem_whatis(r.k, cpu, 0x1800n) + vmem_whatis(r.k, cpu, 0x2010n);
    })).toBe("0x1800 is 0x1000+2048 in VMEM 'dump' (allocated)\n0x2010 is 0x2000+16 in VMEM 'dump' (free)\n");
    r.xfree(vm, a, 0x1000n);
    r.run((cpu) => vmem_destroy(r.k, cpu, vm));
  });

  describe('panics', () => {
    it('vmem_xfree() of an address that is not allocated', () => {
      const r = rig();
      const vm = r.create('p', 0x1000n, 0x2000n, 0x1000n);
      expect(() => r.xfree(vm, 0x1000n, 0x1000n)).toThrow(new KernelPanic(0, 'Assertion bt != NULL failed at sys/kern/subr_vmem.c:1289'));
    });

    it('vmem_xfree() with a size that is not the allocation\'s', () => {
      const r = rig();
      const vm = r.create('p', 0x1000n, 0x4000n, 0x1000n);
      const a = r.xalloc(vm, 0x1000n) as bigint;
      expect(() => r.xfree(vm, a, 0x3000n)).toThrow(/Assertion bt->bt_size == vmem_roundup_size\(vm, size\) .* failed at sys\/kern\/subr_vmem.c:1291/);
    });

    it('vmem_xalloc() with M_NEXTFIT and an address range', () => {
      const r = rig();
      const vm = r.create('p', 0x1000n, 0x4000n, 0x1000n);
      expect(() => r.xalloc(vm, 0x1000n, M_NOWAIT | M_NEXTFIT, 0n, 0n, 0n, 0x2000n)).toThrow(
        'panic: Assertion minaddr == VMEM_ADDR_MIN && maxaddr == VMEM_ADDR_MAX failed at sys/kern/subr_vmem.c:1174',
      );
    });

    it('vmem_destroy() of an arena with busy segments', () => {
      const r = rig();
      const vm = r.create('p', 0x1000n, 0x4000n, 0x1000n);
      r.xalloc(vm, 0x1000n);
      expect(() => r.run((cpu) => vmem_destroy(r.k, cpu, vm))).toThrow('panic: Assertion vm->vm_nbusytag == 0 failed at sys/kern/subr_vmem.c:840');
    });

    it('vmem_check() of an arena whose segments overlap: "insanity vmem %p"', () => {
      const r = rig();
      const vm = r.create('p', 0x1000n, 0x4000n, 0x1000n);
      r.xalloc(vm, 0x1000n);
      const dump = r.run(function* (cpu) {
        return vmem_dump(cpu, vm);
      });
      const busy = Number(BigInt(/\t(0x[0-9a-f]+): 1000 1000, 4\(busy\)/.exec(dump)![1]!) & 0xffffffffffffn);
      r.run(function* (cpu) {
        cpu.store32(busy + vmem_btag.bt_size, 0x2000);
      });
      expect(() => r.run(function* (cpu) {
        vmem_check(r.k, cpu, vm);
      })).toThrow(/^panic: insanity vmem 0x[0-9a-f]+ \(cpu0\)$/);
    });
  });
});
