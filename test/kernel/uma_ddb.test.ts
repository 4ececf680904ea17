import { describe, expect, it } from 'vitest';
import type { Machine } from '../../emu/index.js';
import {
  db_show_uma_zone, db_show_uma_zones, M_WAITOK, p, spin_lock, spin_unlock, UMA_ALIGN_PTR, uma_keg, uma_zalloc, uma_zcreate, uma_zfree,
  type Kernel, type UmaZone, type UmaZoneOptions,
} from '../../kernel/index.js';
import { bootedMachine, churnOnTwoCpus, onCpu } from './helpers.js';

/**
 * 64-byte items: 62 to a slab (4096 - 112 bytes of header and index, / 64). Buckets of 4 by
 * hand, so uz_count starts at 4 and grows by one on each fill; the buckets are 16-entry ones
 * (152 bytes each, from "16 Bucket").
 */
function rig(opts: UmaZoneOptions = {}): { m: Machine; k: Kernel; z: UmaZone } {
  const { m, k } = bootedMachine({ cpus: 2 });
  const z = onCpu(m, 0, (cpu) => uma_zcreate(k, cpu, 'obj64', 64, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, 0, { bucketSize: 4, ...opts }));
  return { m, k, z };
}

function allocs(m: Machine, k: Kernel, z: UmaZone, cpuId: number, n: number): number[] {
  return onCpu(m, cpuId, function* (cpu) {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(yield* uma_zalloc(k, cpu, z, M_WAITOK));
    return out;
  });
}

function frees(m: Machine, k: Kernel, z: UmaZone, cpuId: number, items: readonly number[]): void {
  onCpu(m, cpuId, function* (cpu) {
    for (const a of items) yield* uma_zfree(k, cpu, z, a);
  });
}

const line = (va: number) => va - (va % 64);

describe('uma_ddb', () => {
  it('db_show_uma_zone() shows the CPU buckets, the depot after a bucket swap and the slabs, with the items the allocations returned', () => {
    const { m, k, z } = rig();
    // CPU 0 takes 40 items: fills of 5, 6, 7, 8, 9 and 10 (uz_count grows on each), the last
    // bucket left with 5.
    const a = allocs(m, k, z, 0, 40);
    const v1 = db_show_uma_zone(k, z.z);
    expect(v1).toMatchObject({ va: z.z, name: 'obj64', size: 64, flags: 0, internal: false, kegLock: null, full: [], free: [], used: 40, freeItems: 22 });
    expect(v1.caches.map((c) => [c.cpu, c.alloc?.cnt, c.alloc?.entries, c.free, c.allocs, c.frees])).toEqual([[0, 5, 16, null, 5, 0], [1, undefined, undefined, null, 0, 0]]);
    expect(v1.slabs).toEqual({ part: [{ va: a[0]! - (a[0]! % 4096) + 0xf90, freecount: 17, ipers: 62 }], full: [], free: [] });

    // CPU 1 frees them in order: two buckets of 16 go to the depot (newest first), 8 stay.
    frees(m, k, z, 1, a);
    const v2 = db_show_uma_zone(k, z.z);
    expect(v2.caches[1]).toMatchObject({ alloc: null, free: { cnt: 8, entries: 16, items: a.slice(32) }, allocs: 0, frees: 8 });
    expect(v2.full.map((b) => [b.cnt, b.items])).toEqual([[16, a.slice(16, 32)], [16, a.slice(0, 16)]]);
    expect(v2.free).toEqual([]);
    expect([v2.used, v2.freeItems]).toEqual([0, 62]);

    // CPU 0's next six: the five of its bucket, top of stack first; then the bucket swap: the
    // empty bucket goes to the depot's free list and the depot's newest full one comes up.
    const c = allocs(m, k, z, 0, 6);
    expect(c.slice(0, 5)).toEqual([...v1.caches[0]!.alloc!.items].reverse());
    expect(c[5]).toBe(a[31]);
    const v3 = db_show_uma_zone(k, z.z);
    expect(v3.caches[0]!.alloc).toEqual({ va: v2.full[0]!.va, cnt: 15, entries: 16, items: a.slice(16, 31) });
    expect(v3.full).toEqual([v2.full[1]]);
    expect(v3.free).toEqual([{ va: v1.caches[0]!.alloc!.va, cnt: 0, entries: 16, items: [] }]);
    expect(v3.lock).toEqual({ va: v3.lock.va, word: 0 });
    expect(v3.slabs!.part.map((s) => s.freecount)).toEqual([17]);
    expect([v3.used, v3.freeItems]).toEqual([6, 56]);
    // maxItems bounds each bucket's items (the top of the stack is kept: what the next allocations take).
    const whole = db_show_uma_zone(k, z.z).full[0]!;
    expect(whole.cnt).toBeGreaterThan(4);
    expect(db_show_uma_zone(k, z.z, 4).full[0]!.items).toEqual(whole.items.slice(-4));
  });

  it('db_show_uma_zone() lists each line once: the header with CPU 0\'s cache, the packed caches, the keg with its lock, buckets, slab headers', () => {
    const { m, k, z } = rig();
    const a = allocs(m, k, z, 0, 40);
    frees(m, k, z, 1, a);
    const v = db_show_uma_zone(k, z.z);
    const A = v.caches[0]!.alloc!.va;
    const F = v.caches[1]!.free!.va;
    const [D0, D1] = v.full.map((b) => b.va) as [number, number];
    // The bucket zone's items, 152 bytes apart in the order the buckets were made.
    expect([A % 64, D1 - A, D0 - A, F - A]).toEqual([0, 152, 304, 456]);
    const keg = v.lock.va - uma_keg.uk_lock;
    const slab = v.slabs!.part[0]!.va;
    expect(v.lines).toEqual([
      // kmemu's 128-byte block below the zone, the 120-byte header, uz_cpu[] packed after it.
      { va: z.z - 128, what: 'zone header' },
      { va: z.z - 64, what: 'zone header' },
      { va: z.z, what: 'zone header' },
      { va: z.z + 64, what: 'zone header, cpu 0 cache' },
      { va: z.z + 128, what: 'cpu 0-1 caches' },
      // uz_lock is the keg's uk_lock, in the keg's first line.
      { va: keg, what: 'lock, keg header' },
      { va: keg + 64, what: 'keg header' },
      { va: keg + 128, what: 'keg header' },
      { va: keg + 192, what: 'keg header' },
      { va: A, what: `bucket ${p(A)}` },
      { va: A + 64, what: `bucket ${p(A)}` },
      { va: A + 128, what: `bucket ${p(A)}, depot bucket ${p(D1)}` },
      { va: line(F), what: `bucket ${p(F)}, depot bucket ${p(D0)}` },
      { va: line(F) + 64, what: `bucket ${p(F)}` },
      { va: line(F) + 128, what: `bucket ${p(F)}` },
      { va: line(D0), what: `depot bucket ${p(D0)}, depot bucket ${p(D1)}` },
      { va: line(D0) + 64, what: `depot bucket ${p(D0)}` },
      { va: line(D0) + 128, what: `depot bucket ${p(D0)}` },
      { va: line(D1) + 64, what: `depot bucket ${p(D1)}` },
      // The on-page header: 48 bytes and 62 index bytes, 112 rounded, at the end of the page.
      { va: slab - 16, what: `slab ${p(slab)}` },
      { va: slab + 48, what: `slab ${p(slab)}` },
    ]);
  });

  it('db_show_uma_zone() of an aligned zone gives each CPU\'s uma_cache a line of its own', () => {
    const { k, z } = rig({ aligned: true });
    const v = db_show_uma_zone(k, z.z);
    expect(v.caches.map((c) => c.va - z.z)).toEqual([128, 192]);
    expect(v.lines.slice(0, 6)).toEqual([
      { va: z.z - 128, what: 'zone header' },
      { va: z.z - 64, what: 'zone header' },
      { va: z.z, what: 'zone header' },
      { va: z.z + 64, what: 'zone header' },
      { va: z.z + 128, what: 'cpu 0 cache' },
      { va: z.z + 192, what: 'cpu 1 cache' },
    ]);
  });

  it('db_show_uma_zone() shows the lock word 1 while a CPU holds the zone lock, 0 after', () => {
    const { m, k, z } = rig();
    const lk = db_show_uma_zone(k, z.z).lock.va;
    const words = onCpu(m, 1, function* (cpu) {
      yield* spin_lock(k, cpu, lk);
      const held = db_show_uma_zone(k, z.z).lock.word;
      yield* spin_unlock(k, cpu, lk);
      return [held, db_show_uma_zone(k, z.z).lock.word];
    });
    expect(words).toEqual([1, 0]);
  });

  it('db_show_uma_zones() shows every zone in list order, the internal ones without per-CPU caches', () => {
    const { k, z } = rig();
    const all = db_show_uma_zones(k);
    expect(all.map((s) => [s.name, s.internal, s.caches.length])).toEqual([
      ['UMA Kegs', true, 0], ['UMA Zones', true, 0], ['UMA Slabs', true, 0], ['UMA Hash', true, 0], ['16 Bucket', true, 0],
      ['32 Bucket', true, 0], ['64 Bucket', true, 0], ['128 Bucket', true, 0], ['16', false, 2], ['32', false, 2], ['64', false, 2],
      ['128', false, 2], ['256', false, 2], ['512', false, 2], ['1024', false, 2], ['2048', false, 2], ['4096', false, 2], ['mt_zone', false, 2],
      ['obj64', false, 2],
    ]);
    expect(all[18]).toEqual(db_show_uma_zone(k, z.z));
    // An internal zone has no uz_cpu[]: its lines are the header, the lock and its keg.
    expect(all[0]!.lines.some((l) => l.what.includes('cache'))).toBe(false);
    expect(() => db_show_uma_zone(k, z.z + 64)).toThrow(`db_show_uma_zone: ${p(z.z + 64)} is not a zone on UMA's lists`);
  });

  it('viewing changes nothing: two CPUs allocating and freeing run to the same counters and clocks with a view after every operation', () => {
    const run = (view: boolean) => {
      const { m, k, z } = rig();
      const look = () => {
        if (!view) return;
        db_show_uma_zone(k, z.z);
        db_show_uma_zones(k);
      };
      const got = churnOnTwoCpus(m, 60, (cpu) => uma_zalloc(k, cpu, z, M_WAITOK), (cpu, a) => uma_zfree(k, cpu, z, a), look);
      return { snap: m.snapshot(), got, after: db_show_uma_zones(k) };
    };
    const plain = run(false);
    const viewed = run(true);
    expect(viewed.got).toEqual(plain.got);
    expect(viewed.snap.clocks).toEqual(plain.snap.clocks);
    expect(viewed.snap.tables).toEqual(plain.snap.tables);
    expect(viewed.after).toEqual(plain.after);
    expect(plain.snap.clocks.every((c) => c > 0)).toBe(true);
  });
});
