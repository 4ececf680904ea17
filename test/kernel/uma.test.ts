import { describe, expect, it } from 'vitest';
import type { Cpu, Machine, Task } from '../../emu/index.js';
import {
  M_NOVM, M_NOWAIT, M_USE_RESERVE, M_WAITOK, M_ZERO, UMA_ALIGN_CACHE, UMA_ALIGN_PTR, UMA_ZONE_MAXBUCKET, UMA_ZONE_NOBUCKET, UMA_ZONE_NOFREE,
  UMA_ZONE_OFFPAGE, UMA_ZONE_HASH, UMA_ZONE_ZINIT, free, malloc, malloc_init, malloc_vmstat_m, mallocTypeStats, sysctl, uma_keg, uma_prealloc,
  uma_reclaim, uma_timeout, uma_vmstat_z, uma_zalloc, uma_zalloc_arg, uma_zcache_create, uma_zcreate, uma_zdestroy, uma_zfree, uma_zfree_arg,
  uma_zone, uma_zone_reserve, uma_zone_set_allocf, uma_zone_set_freef, uma_zone_set_max, uma_zone_set_obj, uma_zsecond_create, umaOptions,
  umaPages, umaZoneStats, kmem_alloc3, kmem_free, type Kernel, type UmaCallback, type UmaZone, type UmaZoneOptions,
} from '../../kernel/index.js';
import { bootedMachine, onCpu } from './helpers.js';

function zone(m: Machine, k: Kernel, name: string, size: number, flags = 0, opts: UmaZoneOptions = {}, cbs: Partial<Record<'ctor' | 'dtor' | 'init' | 'fini', UmaCallback>> = {}): UmaZone {
  return onCpu(m, 0, (cpu) => uma_zcreate(k, cpu, name, size, cbs.ctor, cbs.dtor, cbs.init, cbs.fini, UMA_ALIGN_PTR, flags, opts));
}

function stats(k: Kernel, name: string) {
  const s = umaZoneStats(k).find((z) => z.name === name);
  if (s === undefined) throw new Error(`no zone ${name}`);
  return s;
}

function counter() {
  const n = { ctor: 0, dtor: 0, init: 0, fini: 0 };
  const cb = (key: keyof typeof n): UmaCallback =>
    function* (cpu, item) {
      n[key]++;
      cpu.load64(item);
      return 0;
    };
  return { n, cbs: { ctor: cb('ctor'), dtor: cb('dtor'), init: cb('init'), fini: cb('fini') } };
}

const ops = (m: Machine, label: string) => m.snapshot().total('ops', label);

describe('uma', () => {
  it('boots: the boot zones, the bucket zones and the kmemzones are listed by vmstat -z, on the boot pages alone', () => {
    const { k } = bootedMachine({ cpus: 2 });
    const names = umaZoneStats(k).map((z) => z.name);
    expect(names).toEqual([
      'UMA Kegs', 'UMA Zones', 'UMA Slabs', 'UMA Hash', '16 Bucket', '32 Bucket', '64 Bucket', '128 Bucket',
      '16', '32', '64', '128', '256', '512', '1024', '2048', '4096', 'mt_zone',
    ]);
    expect(umaPages(k).kmem).toBe(0);
    expect([sysctl(k, 'vm.zone_count'), sysctl(k, 'vm.uma_kmem_pages'), sysctl(k, 'vm.uma_boot_pages_free')]).toEqual([18, 0, 30 - umaZoneStats(k).reduce((n, z) => n + z.kegPages, 0)]);
    expect(uma_vmstat_z(k).split('\n').slice(0, 3)).toEqual([
      'ITEM                   SIZE  LIMIT     USED     FREE      REQ FAIL SLEEP',
      '',
      'UMA Kegs:               208,      0,      17,       0,      17,   0,   0',
    ]);
  });

  it('uma_zalloc() takes a new slab from the backend, then serves from the per-CPU bucket; uma_zfree() fills the free bucket', () => {
    const { m, k } = bootedMachine();
    const z = zone(m, k, 'obj64', 64);
    onCpu(m, 0, function* (cpu) {
      const a = yield* uma_zalloc(k, cpu, z, M_WAITOK);
      expect(cpu.lastOpLabel).toBe(k.label['uma.alloc.backend']);
      const b = yield* uma_zalloc(k, cpu, z, M_WAITOK);
      expect(cpu.lastOpLabel).toBe(k.label['uma.alloc.cpucache']);
      // The fill took 63 items: a is the one from the second slab, b the last of the first.
      expect(Math.floor(a / 4096)).not.toBe(Math.floor(b / 4096));
      yield* uma_zfree(k, cpu, z, a);
      // The first free has no free bucket yet: it gets one from the bucket zone (depot path).
      expect(cpu.lastOpLabel).toBe(k.label['uma.free.depot']);
      yield* uma_zfree(k, cpu, z, b);
      expect(cpu.lastOpLabel).toBe(k.label['uma.free.cpucache']);
    });
    // 64-byte items: (4096 - 48-byte header) / (64 + 1 index byte) = 62 a slab; uz_count starts
    // at 62 and the fill miss bumps it to 63 (2005) before filling a 64 bucket with 63 items.
    const count = k.machine.mem.read32(k.kvtop(z.z + uma_zone.uz_count));
    expect(count & 0xffff).toBe(63);
    expect(stats(k, 'obj64')).toMatchObject({ size: 64, used: 0, free: 124, requests: 2, kegPages: 2, cacheFree: 63 });
  });

  it('init/fini run when items enter/leave the keg, ctor/dtor on every alloc/free', () => {
    const { m, k } = bootedMachine();
    const { n, cbs } = counter();
    const z = zone(m, k, 'counted', 256, 0, {}, cbs);
    onCpu(m, 0, function* (cpu) {
      const items: number[] = [];
      for (let i = 0; i < 20; i++) items.push(yield* uma_zalloc(k, cpu, z, M_WAITOK));
      for (const it of items) yield* uma_zfree(k, cpu, z, it);
      for (let i = 0; i < 5; i++) items[i] = yield* uma_zalloc(k, cpu, z, M_WAITOK);
      for (let i = 0; i < 5; i++) yield* uma_zfree(k, cpu, z, items[i]!);
    });
    // 256-byte items: 15 a slab (4048 / 257); the fills take 16 then 17 items (uz_count grows
    // on each fill miss), 33 of three slabs of 15 init'ed items.
    expect(n).toEqual({ ctor: 25, dtor: 25, init: 45, fini: 0 });
    onCpu(m, 0, (cpu) => uma_zdestroy(k, cpu, z));
    expect(n.fini).toBe(45);
    expect(umaZoneStats(k).some((s) => s.name === 'counted')).toBe(false);
  });

  it('a secondary zone shares its master\'s keg; its own init/fini run as buckets fill and drain', () => {
    const { m, k } = bootedMachine();
    const kegInit = counter();
    const master = zone(m, k, 'master', 128, 0, {}, { init: kegInit.cbs.init });
    const sec = counter();
    const second = onCpu(m, 0, (cpu) => uma_zsecond_create(k, cpu, 'second', sec.cbs.ctor, sec.cbs.dtor, sec.cbs.init, sec.cbs.fini, master));
    onCpu(m, 0, function* (cpu) {
      const a = yield* uma_zalloc(k, cpu, master, M_WAITOK);
      const b = yield* uma_zalloc(k, cpu, second, M_WAITOK);
      expect(b).not.toBe(a);
      yield* uma_zfree(k, cpu, second, b);
      yield* uma_zfree(k, cpu, master, a);
    });
    onCpu(m, 0, function* (cpu) {
      expect(cpu.loadPtr(second.z + uma_zone.uz_keg)).toBe(cpu.loadPtr(master.z + uma_zone.uz_keg));
    });
    // Slabs of 31 items, all keg-init'ed; each zone's first fill bumps its uz_count to 32: the
    // master's bucket took 31 + 1 of a second slab, the second zone's its 30 and 2 of a third,
    // and zone-init'ed the 32 it took.
    expect(kegInit.n.init).toBe(93);
    expect(sec.n).toEqual({ ctor: 1, dtor: 1, init: 32, fini: 0 });
    expect(stats(k, 'second')).toMatchObject({ secondary: true, kegFree: 0 });
    expect(stats(k, 'master')).toMatchObject({ kegFree: 29, kegPages: 3 });
    onCpu(m, 0, (cpu) => uma_zdestroy(k, cpu, second));
    expect(sec.n.fini).toBe(32);
  });

  it('a cache-only zone (uma_zcache_create) fills buckets with its import and empties them with its release', () => {
    const { m, k } = bootedMachine();
    let imported = 0;
    let released = 0;
    const pool = onCpu(m, 0, (cpu) => kmem_alloc3(k, cpu, k.kernel_map, 4096, 0));
    let next = 0;
    const z = onCpu(m, 0, (cpu) =>
      uma_zcache_create(k, cpu, 'qcache', 64, undefined, undefined, undefined, undefined,
        function* (c: Cpu, _arg: number, store: number, count: number) {
          let i = 0;
          for (; i < count && next < 64; i++) c.storePtr(store + 8 * i, pool + 64 * next++);
          imported += i;
          return i;
        },
        function* (_c: Cpu, _arg: number, _store: number, count: number) {
          released += count;
        }, 0, 0, { bucketSize: 16 }));
    onCpu(m, 0, function* (cpu) {
      const a = yield* uma_zalloc(k, cpu, z, M_WAITOK);
      // A cache zone keeps its uz_count (no 2005 growth): a 16 bucket with 16 imported items.
      expect(a).toBe(pool + 15 * 64);
      yield* uma_zfree(k, cpu, z, a);
      yield* uma_zdestroy(k, cpu, z);
    });
    expect([imported, released]).toEqual([16, 16]);
  });

  it('uma_reclaim() returns the free slabs\' pages to vm_page; a NOFREE keg keeps its own', () => {
    const { m, k } = bootedMachine();
    const z = zone(m, k, 'reclaimable', 512, 0, { pcpu: false });
    const nf = zone(m, k, 'nofree', 512, UMA_ZONE_NOFREE, { pcpu: false });
    const free0 = sysctl(k, 'vm.stats.vm.v_free_count')!;
    onCpu(m, 0, function* (cpu) {
      for (const h of [z, nf]) {
        const items: number[] = [];
        for (let i = 0; i < 40; i++) items.push(yield* uma_zalloc(k, cpu, h, M_WAITOK));
        for (const it of items) yield* uma_zfree(k, cpu, h, it);
      }
    });
    // 512-byte items: 8 a slab with the header off the page, so 40 take 5 slabs in each zone
    // (the headers come from "UMA Slabs", still on boot pages).
    expect(stats(k, 'reclaimable').kegPages).toBe(5);
    expect(free0 - sysctl(k, 'vm.stats.vm.v_free_count')!).toBe(10);
    const pages = onCpu(m, 0, (cpu) => uma_reclaim(k, cpu));
    expect(pages).toBe(5);
    expect(stats(k, 'reclaimable').kegPages).toBe(0);
    expect(stats(k, 'nofree').kegPages).toBe(5);
    expect(free0 - sysctl(k, 'vm.stats.vm.v_free_count')!).toBe(5);
    expect(umaPages(k).reclaimed).toBe(5);
  });

  it('uma_reclaim() drains the depot but leaves the CPUs\' buckets; a trim keeps the working set', () => {
    const { m, k } = bootedMachine();
    const z = zone(m, k, 'depot', 64, 0, { bucketSize: 16 });
    onCpu(m, 0, function* (cpu) {
      const items: number[] = [];
      for (let i = 0; i < 100; i++) items.push(yield* uma_zalloc(k, cpu, z, M_WAITOK));
      for (const it of items) yield* uma_zfree(k, cpu, z, it);
      yield* uma_timeout(k, cpu);
    });
    const before = stats(k, 'depot');
    expect(before.depotFree).toBeGreaterThan(0);
    onCpu(m, 0, (cpu) => uma_reclaim(k, cpu, true));
    expect(stats(k, 'depot').depotFree).toBeGreaterThan(0);
    onCpu(m, 0, (cpu) => uma_reclaim(k, cpu));
    const after = stats(k, 'depot');
    expect(after.depotFree).toBe(0);
    expect(after.cacheFree).toBe(before.cacheFree);
  });

  it('uma_zone_set_max(): M_NOWAIT fails at the limit, M_WAITOK sleeps until a free wakes it', () => {
    const { m, k } = bootedMachine({ cpus: 2 });
    const z = zone(m, k, 'limited', 256);
    expect(onCpu(m, 0, (cpu) => uma_zone_set_max(k, cpu, z, 10))).toBe(15);
    let got = -1;
    m.barrier();
    m.run([
      function* (cpu) {
        const items: number[] = [];
        for (let i = 0; i < 15; i++) items.push(yield* uma_zalloc(k, cpu, z, M_WAITOK));
        expect(yield* uma_zalloc(k, cpu, z, M_NOWAIT)).toBe(0);
        cpu.compute(200_000);
        yield* uma_zfree(k, cpu, z, items[3]!);
      },
      function* (cpu) {
        cpu.compute(100_000);
        got = yield* uma_zalloc(k, cpu, z, M_WAITOK);
      },
    ]);
    expect(got).not.toBe(0);
    const s = stats(k, 'limited');
    expect(s).toMatchObject({ limit: 15, fails: 1, sleeps: 1, used: 15 });
    expect(m.snapshot().get(1, 'idleCycles')).toBeGreaterThan(90_000);
  });

  it('M_ZERO, M_NOVM, uma_prealloc, uma_zone_reserve and M_USE_RESERVE', () => {
    const { m, k } = bootedMachine();
    const z = zone(m, k, 'misc', 128, 0, { pcpu: false });
    onCpu(m, 0, function* (cpu) {
      expect(yield* uma_zalloc(k, cpu, z, M_NOWAIT | M_NOVM)).toBe(0);
      yield* uma_prealloc(k, cpu, z, 40);
      const a = yield* uma_zalloc(k, cpu, z, M_WAITOK);
      cpu.store64(a + 8, 77);
      yield* uma_zfree(k, cpu, z, a);
      const b = yield* uma_zalloc(k, cpu, z, M_WAITOK | M_ZERO);
      expect(b).toBe(a);
      expect(cpu.load64(b + 8)).toBe(0);
      yield* uma_zone_reserve(k, cpu, z, 61);
      // 62 items in two slabs, one allocated: 61 free, all reserved.
      expect(yield* uma_zalloc(k, cpu, z, M_NOWAIT | M_NOVM)).toBe(0);
      expect(yield* uma_zalloc(k, cpu, z, M_NOWAIT | M_NOVM | M_USE_RESERVE)).not.toBe(0);
    });
    expect(stats(k, 'misc')).toMatchObject({ kegPages: 2, fails: 2, used: 2 });
  });

  it('off-page slab headers: a hash finds them for odd sizes; large items span pages', () => {
    const { m, k } = bootedMachine();
    // 512-byte items on the page: 7, wasting 457 bytes (more than a tenth); off the page: 8.
    const odd = zone(m, k, 'odd', 512);
    const big = zone(m, k, 'big', 9000);
    onCpu(m, 0, function* (cpu) {
      for (const h of [odd, big]) {
        const keg = cpu.loadPtr(h.z + uma_zone.uz_keg);
        expect(cpu.load32(keg + uma_keg.uk_flags) & (UMA_ZONE_OFFPAGE | UMA_ZONE_HASH)).toBe(UMA_ZONE_OFFPAGE | UMA_ZONE_HASH);
        const items = [yield* uma_zalloc(k, cpu, h, M_WAITOK), yield* uma_zalloc(k, cpu, h, M_WAITOK)];
        for (const it of items) yield* uma_zfree(k, cpu, h, it);
      }
      const keg = cpu.loadPtr(big.z + uma_zone.uz_keg);
      expect([cpu.load16(keg + uma_keg.uk_ppera), cpu.load16(keg + uma_keg.uk_ipers)]).toEqual([3, 1]);
      const okeg = cpu.loadPtr(odd.z + uma_zone.uz_keg);
      expect(cpu.load16(okeg + uma_keg.uk_ipers)).toBe(8);
    });
    expect(stats(k, 'UMA Slabs').used).toBeGreaterThanOrEqual(3);
  });

  it('ZINIT zeroes items as slabs are made; NOBUCKET and MAXBUCKET set the bucket size', () => {
    const { m, k } = bootedMachine();
    const zi = zone(m, k, 'zinit', 64, UMA_ZONE_ZINIT);
    const nb = zone(m, k, 'nobucket', 64, UMA_ZONE_NOBUCKET);
    const mb = zone(m, k, 'maxbucket', 64, UMA_ZONE_MAXBUCKET);
    const count = (h: UmaZone) => k.machine.mem.read32(k.kvtop(h.z + uma_zone.uz_count)) & 0xffff;
    expect([count(zi), count(nb), count(mb)]).toEqual([62, 0, 128]);
    onCpu(m, 0, function* (cpu) {
      const a = yield* uma_zalloc(k, cpu, zi, M_WAITOK);
      expect(cpu.load64(a)).toBe(0);
      yield* uma_zalloc(k, cpu, nb, M_WAITOK);
      expect(cpu.lastOpLabel).toBe(k.label['uma.alloc.backend']);
      yield* uma_zalloc(k, cpu, nb, M_WAITOK);
      expect(cpu.lastOpLabel).toBe(k.label['uma.alloc.slab']);
    });
  });

  it('uma_zone_set_obj() fills reserved KVA page by page; set_allocf/set_freef replace the backend', () => {
    const { m, k } = bootedMachine();
    const oz = zone(m, k, 'objzone', 256);
    let allocs = 0;
    let frees = 0;
    const custom = zone(m, k, 'custom', 512, 0, { pcpu: false });
    onCpu(m, 0, function* (cpu) {
      expect(yield* uma_zone_set_obj(k, cpu, oz, 0, 30)).toBe(1);
      const a = yield* uma_zalloc(k, cpu, oz, M_WAITOK);
      const keg = cpu.loadPtr(oz.z + uma_zone.uz_keg);
      // The fill took 16 items (uz_count 15 + 1), the last from the object's second page.
      expect(Math.floor(a / 4096) * 4096).toBe(cpu.loadPtr(keg + uma_keg.uk_kva) + 4096);
      expect(cpu.load32(keg + uma_keg.uk_maxpages)).toBe(2);
      yield* uma_zone_set_allocf(k, cpu, custom, function* (c, _zone, bytes) {
        allocs++;
        return { mem: yield* kmem_alloc3(k, c, k.kernel_map, bytes, 0), pflag: 0x04 };
      });
      yield* uma_zone_set_freef(k, cpu, custom, function* (c, mem, bytes) {
        frees++;
        yield* kmem_free(k, c, k.kernel_map, mem, bytes);
      });
      const b = yield* uma_zalloc(k, cpu, custom, M_WAITOK);
      yield* uma_zfree(k, cpu, custom, b);
      yield* uma_reclaim(k, cpu);
    });
    expect([allocs, frees]).toEqual([1, 1]);
    expect(stats(k, 'objzone')).toMatchObject({ limit: 30, kegPages: 2 });
  });

  describe('INVARIANTS (uma_dbg)', () => {
    const attempt = (body: (k: Kernel, cpu: Cpu, z: UmaZone, other: UmaZone) => Task<unknown>, pcpu = true) => {
      const { m, k } = bootedMachine();
      const z = zone(m, k, 'victim', 64, 0, { pcpu });
      const other = zone(m, k, 'other', 64);
      return () => onCpu(m, 0, (cpu) => body(k, cpu, z, other));
    };
    it('a duplicate free panics, through the buckets and without them', () => {
      for (const pcpu of [true, false]) {
        expect(attempt(function* (k, cpu, z) {
          const a = yield* uma_zalloc(k, cpu, z, M_WAITOK);
          yield* uma_zfree(k, cpu, z, a);
          yield* uma_zfree(k, cpu, z, a);
        }, pcpu)).toThrow(/panic: Duplicate free of item 0x[0-9a-f]{16} from zone 0x[0-9a-f]{16}\(victim\) \(cpu0\)/);
      }
    });
    it('a free of another zone\'s item or of a misaligned address panics', () => {
      expect(attempt(function* (k, cpu, z, other) {
        yield* uma_zalloc(k, cpu, z, M_WAITOK);
        const a = yield* uma_zalloc(k, cpu, other, M_WAITOK);
        yield* uma_zfree(k, cpu, z, a);
      })).toThrow(/panic: uma: Freed item 0x[0-9a-f]+ did not belong to zone victim/);
      expect(attempt(function* (k, cpu, z) {
        const a = yield* uma_zalloc(k, cpu, z, M_WAITOK);
        yield* uma_zfree(k, cpu, z, a + 8);
      })).toThrow(/panic: zone: victim\(0x[0-9a-f]+\) slab 0x[0-9a-f]+ freed address 0x[0-9a-f]+ unaligned\. should be 0x[0-9a-f]+/);
    });
    it('free(9) of an address malloc never gave panics; trash catches a write after free', () => {
      const { m, k } = bootedMachine();
      expect(() => onCpu(m, 0, function* (cpu) {
        const t = yield* malloc_init(k, cpu, 'temp');
        yield* free(k, cpu, k.imageEnd - 4096, t);
      })).toThrow(/panic: free: address 0x[0-9a-f]+\(0x[0-9a-f]+\) has not been allocated\./);
      const b = bootedMachine();
      umaOptions(b.k).trash = true;
      const z = zone(b.m, b.k, 'trashed', 64, 0, { pcpu: false });
      expect(() => onCpu(b.m, 0, function* (cpu) {
        const a = yield* uma_zalloc(b.k, cpu, z, M_WAITOK);
        yield* uma_zfree(b.k, cpu, z, a);
        cpu.store32(a + 4, 1);
        yield* uma_zalloc(b.k, cpu, z, M_WAITOK);
      })).toThrow(/panic: Memory modified after free 0x[0-9a-f]+\(64\) val=1 @ 0x[0-9a-f]+/);
    });
  });

  it('malloc(9): size classes, M_ZERO, large allocations by whole pages, free without a size, vmstat -m', () => {
    const { m, k } = bootedMachine();
    onCpu(m, 0, function* (cpu) {
      const t = yield* malloc_init(k, cpu, 'devbuf');
      const a = yield* malloc(k, cpu, 100, t, M_WAITOK | M_ZERO);
      const b = yield* malloc(k, cpu, 20000, t, M_WAITOK);
      expect(cpu.lastOpLabel).toBe(k.label['uma.alloc.backend']);
      const c = yield* malloc(k, cpu, 16, t, M_WAITOK);
      expect(cpu.load64(a + 64)).toBe(0);
      expect(b % 4096).toBe(0);
      yield* free(k, cpu, b, t);
      expect(cpu.lastOpLabel).toBe(k.label['uma.free.backend']);
      yield* free(k, cpu, a, t);
      void c;
    });
    expect(mallocTypeStats(k).find((s) => s.name === 'devbuf')).toEqual({ name: 'devbuf', inUse: 1, memUse: 16, requests: 3, sizes: [16, 128] });
    expect(malloc_vmstat_m(k)).toBe('         Type InUse MemUse HighUse Requests  Size(s)\n       devbuf     1     1K       -        3  16,128\n');
    expect(stats(k, '128')).toMatchObject({ used: 0, requests: 1 });
  });

  it('the per-CPU cache locked by CPU_LOCK costs atomics a critical section does not', () => {
    const atomics = (cacheLock: 'critical' | 'mutex') => {
      const { m, k } = bootedMachine();
      // Without INVARIANTS, whose uma_dbg_alloc/free take the zone lock on every operation.
      umaOptions(k).invariants = false;
      const z = zone(m, k, 'locked', 64, 0, { cacheLock });
      onCpu(m, 0, function* (cpu) { yield* uma_zfree(k, cpu, z, yield* uma_zalloc(k, cpu, z, M_WAITOK)); });
      const before = m.snapshot();
      onCpu(m, 0, function* (cpu) {
        for (let i = 0; i < 10; i++) yield* uma_zfree(k, cpu, z, yield* uma_zalloc(k, cpu, z, M_WAITOK));
      });
      const d = m.snapshot().minus(before);
      return d.total('mem.atomics', 'uma.alloc.cpucache') + d.total('mem.atomics', 'uma.free.cpucache');
    };
    expect(atomics('critical')).toBe(0);
    expect(atomics('mutex')).toBe(20);
  });

  it('with auto-tuning, a contended zone lock grows the buckets and a drain shrinks them', () => {
    const { m, k } = bootedMachine({ cpus: 4 });
    const z = zone(m, k, 'tuned', 64, 0, { bucketSize: 4, autoTune: true });
    m.runAll(function* (cpu) {
      for (let i = 0; i < 200; i++) {
        yield* cpu.checkpoint();
        const a = yield* uma_zalloc(k, cpu, z, M_WAITOK);
        const b = yield* uma_zalloc(k, cpu, z, M_WAITOK);
        yield* uma_zfree(k, cpu, z, a);
        yield* uma_zfree(k, cpu, z, b);
      }
    });
    const count = () => k.machine.mem.read32(k.kvtop(z.z + uma_zone.uz_count)) & 0xffff;
    const grown = count();
    expect(grown).toBeGreaterThan(4);
    onCpu(m, 0, (cpu) => uma_reclaim(k, cpu));
    expect(count()).toBe(grown - 1);
  });

  it('a free bucket is drained to slabs when the depot holds its limit', () => {
    const { m, k } = bootedMachine();
    const z = zone(m, k, 'capped', 64, 0, { bucketSize: 8, depotMax: 8 });
    onCpu(m, 0, function* (cpu) {
      const items: number[] = [];
      for (let i = 0; i < 40; i++) items.push(yield* uma_zalloc(k, cpu, z, M_WAITOK));
      for (const it of items) yield* uma_zfree(k, cpu, z, it);
    });
    expect(ops(m, 'uma.free.slab')).toBeGreaterThan(0);
    expect(stats(k, 'capped').depotFree).toBeLessThanOrEqual(8);
  });

  it('uma_zalloc_arg/uma_zfree_arg pass their argument to ctor and dtor; a failing ctor fails the allocation', () => {
    const { m, k } = bootedMachine();
    const seen: number[] = [];
    const z = zone(m, k, 'args', 64, 0, {}, {
      ctor: function* (_c, _i, _s, arg) { seen.push(arg); return arg === 13 ? 1 : 0; },
      dtor: function* (_c, _i, _s, arg) { seen.push(arg); },
    });
    onCpu(m, 0, function* (cpu) {
      const a = yield* uma_zalloc_arg(k, cpu, z, 7, M_WAITOK);
      yield* uma_zfree_arg(k, cpu, z, a, 8);
      expect(yield* uma_zalloc_arg(k, cpu, z, 13, M_WAITOK)).toBe(0);
    });
    expect(seen).toEqual([7, 8, 13]);
    expect(stats(k, 'args').fails).toBe(1);
  });

  it('UMA_ALIGN_CACHE aligns items to cache lines', () => {
    const { m, k } = bootedMachine();
    const z = onCpu(m, 0, (cpu) => uma_zcreate(k, cpu, 'aligned', 40, undefined, undefined, undefined, undefined, UMA_ALIGN_CACHE, 0));
    onCpu(m, 0, function* (cpu) {
      for (let i = 0; i < 5; i++) expect((yield* uma_zalloc(k, cpu, z, M_WAITOK)) % 64).toBe(0);
    });
  });
});
