// The 2005 bucket rules of uma_core.c (rev 1.136, FreeBSD 6) and 2005's struct uma_zone,
// each pinned by a counter delta.
import { describe, expect, it } from 'vitest';
import type { Machine } from '../../emu/index.js';
import {
  M_NOWAIT, M_WAITOK, UMA_ALIGN_PTR, kmem_alloc3, mallocTypeStats, uma_cache, uma_hash, uma_keg, uma_timeout, uma_zalloc, uma_zcreate, uma_zfree, uma_zone, uma_zone_set_allocf,
  umaHandle, umaOptions, umaZoneStats, zoneCacheOffset, type Kernel, type UmaAllocf, type UmaZone, type UmaZoneOptions,
} from '../../kernel/index.js';
import { bootedMachine, onCpu } from './helpers.js';

const UMA_SLAB_KMEM = 0x02;

function zone(m: Machine, k: Kernel, name: string, size: number, opts: UmaZoneOptions = {}): UmaZone {
  return onCpu(m, 0, (cpu) => uma_zcreate(k, cpu, name, size, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, 0, opts));
}

function stats(k: Kernel, name: string) {
  const s = umaZoneStats(k).find((z) => z.name === name);
  if (s === undefined) throw new Error(`no zone ${name}`);
  return s;
}

const fillOps = (m: Machine) => m.snapshot().total('ops', 'uma.alloc.slab') + m.snapshot().total('ops', 'uma.alloc.backend');

/** Allocates `n` items on CPU 0 and keeps them. */
function allocN(m: Machine, k: Kernel, z: UmaZone, n: number): number[] {
  return onCpu(m, 0, function* (cpu) {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(yield* uma_zalloc(k, cpu, z, M_WAITOK));
    return out;
  });
}

describe('uma as of 2005', () => {
  it('uma_zalloc_arg() bumps uz_count on every bucket fill miss, up to BUCKET_MAX', () => {
    const { m, k } = bootedMachine();
    const z = zone(m, k, 'grow64', 64);
    expect(k.peek16(z.z + uma_zone.uz_count)).toBe(62);
    const f0 = fillOps(m);
    allocN(m, k, z, 2000);
    // The first fill takes 63 items into a new 64 bucket; the empty alloc bucket then goes to
    // uz_free_bucket at each miss and the next fill reuses it (2005 tries the zone's free list
    // first), so every later fill takes min(64 entries, uz_count) = 64: 63 + 31·64 = 2047 items
    // in 32 fills serve 2000 allocations.
    expect(fillOps(m) - f0).toBe(32);
    expect(k.peek16(z.z + uma_zone.uz_count)).toBe(62 + 32);
    // 66 fills (63 + 65·64 = 4223 items) bring it to 128, where it stays.
    allocN(m, k, z, 4223 - 2000);
    expect(fillOps(m) - f0).toBe(66);
    expect(k.peek16(z.z + uma_zone.uz_count)).toBe(128);
    allocN(m, k, z, 300);
    expect(fillOps(m) - f0).toBe(66 + 5);
    expect(k.peek16(z.z + uma_zone.uz_count)).toBe(128);
  });

  it('with autoTune (2013) uz_count stays put without lock contention', () => {
    const { m, k } = bootedMachine();
    const z = zone(m, k, 'tuned64', 64, { autoTune: true });
    allocN(m, k, z, 2000);
    expect(k.peek16(z.z + uma_zone.uz_count)).toBe(62);
  });

  for (const cpus of [1, 2]) {
    it(`uma_zalloc_bucket() refuses a fill when uz_fills is at mp_ncpus: two fillers on ${cpus} CPU(s)`, () => {
      const { m, k } = bootedMachine({ cpus });
      const z = zone(m, k, 'fills', 64);
      let calls = 0;
      let fillsSeen = -1;
      let nested = 0;
      const allocf: UmaAllocf = function* (c, _zone, bytes) {
        calls++;
        if (calls === 1) {
          // A second filler while the first is in the backend (the zone lock is dropped).
          fillsSeen = c.load16(z.z + uma_zone.uz_fills);
          nested = yield* uma_zalloc(k, c, z, M_WAITOK);
        }
        return { mem: yield* kmem_alloc3(k, c, k.kernel_map, bytes, 0), pflag: UMA_SLAB_KMEM };
      };
      onCpu(m, 0, (cpu) => uma_zone_set_allocf(k, cpu, z, allocf));
      const b64 = () => stats(k, '64 Bucket');
      const before = { b: b64().requests, zoneAllocs: k.peek64(z.z + uma_zone.uz_allocs) };
      const [item] = allocN(m, k, z, 1);
      expect(item).not.toBe(0);
      expect(nested).not.toBe(0);
      expect(fillsSeen).toBe(1);
      expect(k.peek16(z.z + uma_zone.uz_fills)).toBe(0);
      const cache = stats(k, 'fills').cacheFree;
      if (cpus === 1) {
        // Capped: the nested fill's 64 bucket went back, its item came from a slab
        // (uma_zalloc_internal, counted in uz_allocs at once); the outer fill took 63.
        expect(k.peek64(z.z + uma_zone.uz_allocs) - before.zoneAllocs).toBe(1);
        expect(cache).toBe(63 - 1);
      } else {
        // Under the cap: the nested fill filled its own bucket (uz_count 64) and the outer one
        // found it in the depot after its own fill (63).
        expect(k.peek64(z.z + uma_zone.uz_allocs) - before.zoneAllocs).toBe(0);
        expect(cache + stats(k, 'fills').depotFree).toBe(64 - 1 + 63 - 1);
      }
      expect(b64().requests - before.b).toBe(2);
      // The nested fill on 2 CPUs took 64 items: two new slabs.
      expect(calls).toBe(cpus === 1 ? 2 : 3);
    });
  }

  it('uma_zone_slab() gives no item from an internal keg already in slab_zalloc (uk_recurse), but the caller copes', () => {
    const { m, k } = bootedMachine();
    const b16 = umaHandle(k, stats(k, '16 Bucket').zone);
    const keg16 = k.peekPtr(b16.z + uma_zone.uz_keg);
    expect(k.peek32(keg16 + uma_keg.uk_free)).toBe(0);
    const outer = zone(m, k, 'outer', 256); // uz_count 15, 16 at the first fill: "16 Bucket"
    const inner = zone(m, k, 'inner', 256);
    let recurse = -1;
    let innerItem = 0;
    onCpu(m, 0, (cpu) => uma_zone_set_allocf(k, cpu, b16, function* (c, _zone, bytes) {
      recurse = c.load32(keg16 + uma_keg.uk_recurse);
      // The bucket keg's backend needs UMA (as kmem_malloc's map entries would): a bucket of
      // the same keg is asked for while uk_recurse is 1.
      innerItem = yield* uma_zalloc(k, c, umaHandle(k, inner.z), M_WAITOK);
      return { mem: yield* kmem_alloc3(k, c, k.kernel_map, bytes, 0), pflag: UMA_SLAB_KMEM };
    }));
    const fails0 = k.peek64(b16.z + uma_zone.uz_fails);
    allocN(m, k, outer, 1);
    expect(recurse).toBe(1);
    expect(innerItem).not.toBe(0);
    expect(k.peek64(b16.z + uma_zone.uz_fails) - fails0).toBe(1);
    expect(k.peek32(keg16 + uma_keg.uk_recurse)).toBe(0);
    // The inner zone got its item from a slab, without a bucket; the outer zone's bucket filled.
    expect(stats(k, 'inner')).toMatchObject({ used: 1, cacheFree: 0, depotFree: 0 });
    expect(stats(k, 'outer')).toMatchObject({ used: 1, cacheFree: 15 });
  });

  it('M_WAITOK goes round the slab layer again after a failed slab_zalloc; M_NOWAIT gives up', () => {
    const { m, k } = bootedMachine();
    for (const [flags, want] of [[M_WAITOK, { calls: 3, fails: 0 }], [M_NOWAIT, { calls: 1, fails: 1 }]] as const) {
      const z = zone(m, k, `flaky${flags}`, 512, { pcpu: false });
      let calls = 0;
      onCpu(m, 0, (cpu) => uma_zone_set_allocf(k, cpu, z, function* (c, _zone, bytes) {
        calls++;
        if (calls <= 2) return { mem: 0, pflag: 0 }; // the backend found nothing, twice
        return { mem: yield* kmem_alloc3(k, c, k.kernel_map, bytes, 0), pflag: UMA_SLAB_KMEM };
      }));
      const item = onCpu(m, 0, (cpu) => uma_zalloc(k, cpu, z, flags));
      expect(item !== 0).toBe(flags === M_WAITOK);
      expect({ calls, fails: stats(k, `flaky${flags}`).fails }).toEqual(want);
    }
  });

  it('struct uma_zone is 2005\'s 120 bytes with uz_cpu[] after it; a cache hit touches two of its lines', () => {
    expect(uma_zone.sizeof).toBe(120);
    expect([uma_zone.uz_ctor, uma_zone.uz_dtor, uma_zone.uz_allocs, uma_zone.uz_fills, uma_zone.uz_count]).toEqual([56, 64, 88, 112, 114]);
    expect([zoneCacheOffset(false), uma_cache.sizeof, zoneCacheOffset(true)]).toEqual([120, 32, 128]);
    const { m, k } = bootedMachine({ cpus: 2 });
    umaOptions(k).invariants = false;
    const z = zone(m, k, 'lines', 64);
    expect(z.z % 64).toBe(0);
    for (const id of [0, 1]) {
      const lines = new Set<number>();
      onCpu(m, id, function* (cpu) {
        const a = yield* uma_zalloc(k, cpu, z, M_WAITOK); // fills
        cpu.tracer = (_w, va) => {
          if (va >= z.z - 256 && va < z.z + 120 + 2 * 32) lines.add(Math.floor((va - z.z) / 64));
        };
        const b = yield* uma_zalloc(k, cpu, z, M_WAITOK); // a bucket hit
        cpu.tracer = undefined;
        yield* uma_zfree(k, cpu, z, a);
        yield* uma_zfree(k, cpu, z, b);
      });
      // uz_ctor on line 0; uc_allocbucket and uc_allocs of CPU 0 (bytes 128-143) and of CPU 1
      // (160-175) on line 2, which the two CPUs share, as in 2005.
      expect([...lines].sort()).toEqual([0, 2]);
    }
  });

  it('uma_timeout() doubles an off-page hash once the keg has as many slabs as heads (hash_expand), and frees still find their slabs', () => {
    const { m, k } = bootedMachine();
    const odd = zone(m, k, 'odd', 512); // off-page, 8 items a slab
    const keg = k.peekPtr(odd.z + uma_zone.uz_keg);
    const hash = keg + uma_keg.uk_hash;
    const size = () => [k.peek32(hash + uma_hash.uh_hashsize), k.peek32(hash + uma_hash.uh_hashmask)];
    const items = allocN(m, k, odd, 8);
    onCpu(m, 0, (cpu) => uma_timeout(k, cpu));
    expect(k.peek32(keg + uma_keg.uk_pages)).toBeLessThan(32);
    expect(size()).toEqual([32, 31]);
    const hashFrees0 = stats(k, 'UMA Hash').used;
    items.push(...allocN(m, k, odd, 32 * 8));
    const pages = k.peek32(keg + uma_keg.uk_pages);
    expect(pages).toBeGreaterThanOrEqual(32);
    onCpu(m, 0, (cpu) => uma_timeout(k, cpu));
    expect(size()).toEqual([64, 63]);
    // The old table went back to "UMA Hash", the new one is M_UMAHASH's 512 bytes.
    expect(stats(k, 'UMA Hash').used - hashFrees0).toBe(-1);
    expect(mallocTypeStats(k).find((t) => t.name === 'UMAHash')).toMatchObject({ inUse: 1, memUse: 512 });
    onCpu(m, 0, function* (cpu) {
      for (const it of items) yield* uma_zfree(k, cpu, odd, it);
    });
    expect(stats(k, 'odd')).toMatchObject({ used: 0, kegPages: pages });
    // No slab lost in the rehash: every one is found again and drained.
    onCpu(m, 0, (cpu) => uma_timeout(k, cpu));
    expect(size()).toEqual([64, 63]);
  });
});
