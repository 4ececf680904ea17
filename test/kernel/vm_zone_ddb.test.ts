import { describe, expect, it } from 'vitest';
import type { Machine } from '../../emu/index.js';
import {
  db_show_vm_zone, db_show_vm_zones, mapentzone, spin_lock, spin_unlock, vm_zone, vm_zone_zpcpu, zalloc, zfree, zinit,
  type Kernel, type VmZone, type ZoneOptions,
} from '../../kernel/index.js';
import { bootedMachine, churnOnTwoCpus, onCpu } from './helpers.js';

/** A zone of 64-byte items, a page (64 items) per zget; zfreemin keeps 64 on the zone list. */
function rig(opts: ZoneOptions = {}): { m: Machine; k: Kernel; z: VmZone } {
  const { m, k } = bootedMachine({ cpus: 2 });
  const z = onCpu(m, 0, (cpu) => zinit(k, cpu, 'obj64', 64, 0, 0, 1, opts));
  if (z === undefined) throw new Error('zinit failed');
  return { m, k, z };
}

function allocs(m: Machine, k: Kernel, z: VmZone, cpuId: number, n: number): number[] {
  return onCpu(m, cpuId, function* (cpu) {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(yield* zalloc(k, cpu, z));
    return out;
  });
}

/** The 64-byte items of a page from item `from` to item `to`, either way. */
const span = (page: number, from: number, to: number) =>
  Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => page + (from + (to > from ? i : -i)) * 64);

describe('vm_zone_ddb', () => {
  it('db_show_vm_zone() shows each CPU\'s free list and the locked list, heads first, with the items zalloc hands out', () => {
    const { m, k, z } = rig();
    // CPU 0: two zgets of a page each (their item 63), then a burst of 32 (page 2's items 62..31)
    // to its list, of which it takes 31 and 32.
    const a = allocs(m, k, z, 0, 4);
    const [p1, p2] = [a[0]! - 63 * 64, a[1]! - 63 * 64];
    expect(a).toEqual([p1 + 63 * 64, p2 + 63 * 64, p2 + 31 * 64, p2 + 32 * 64]);
    // CPU 1: a burst of page 2's items 30..1, stopping when the zone list is down to zfreemin
    // (64); it takes the last one moved.
    const b = allocs(m, k, z, 1, 1);
    expect(b).toEqual([p2 + 64]);
    // CPU 1 frees CPU 0's first item: it heads CPU 1's list.
    onCpu(m, 1, (cpu) => zfree(k, cpu, z, a[0]!));
    const v = db_show_vm_zone(k, z);
    expect(v).toMatchObject({ va: z.z, name: 'obj64', size: 64, pcpu: true, aligned: false, used: 4, freeItems: 124 });
    expect(v.lock).toEqual({ va: z.z + vm_zone.zlock, word: 0 });
    expect(v.caches).toEqual([
      { cpu: 0, count: 30, items: span(p2, 33, 48) },
      { cpu: 1, count: 30, items: [a[0]!, ...span(p2, 2, 16)] },
    ]);
    expect(v.locked).toEqual({ count: 64, items: [p2, ...span(p1, 62, 48)] });
    expect(db_show_vm_zone(k, z.z, 3).locked.items).toEqual([p2, ...span(p1, 62, 61)]);
    expect(db_show_vm_zone(k, z.z, 3)).toEqual(db_show_vm_zone(k, z, 3));
  });

  it('db_show_vm_zone() lines: upstream\'s arrays put both CPUs\' list heads on the lock\'s line and their counts on one more', () => {
    const { k, z } = rig();
    expect(db_show_vm_zone(k, z).lines).toEqual([
      // zitems .. zname_buf: bytes 776..919 of the 920-byte header.
      { va: z.z + 768, what: 'zone header' },
      { va: z.z + 832, what: 'zone header' },
      { va: z.z + 896, what: 'zone header' },
      { va: z.z, what: 'lock, cpu 0-1 free list heads' },
      // zfreecnt_pcpu[] from byte 520.
      { va: z.z + 512, what: 'cpu 0-1 free counts' },
    ]);
  });

  it('db_show_vm_zone() lines: vm_zpcpu slots give the lock and each CPU a line of their own', () => {
    const { m, k, z } = rig({ aligned: true });
    expect(db_show_vm_zone(k, z).lines).toEqual([
      { va: z.z + 4160, what: 'zone header' },
      { va: z.z + 4224, what: 'zone header' },
      { va: z.z + 4288, what: 'zone header' },
      { va: z.z, what: 'lock' },
      { va: z.z + 64, what: 'cpu 0 free list' },
      { va: z.z + 128, what: 'cpu 1 free list' },
    ]);
    expect(vm_zone_zpcpu.zitems).toBe(4160);
    const a = allocs(m, k, z, 1, 3);
    expect(db_show_vm_zone(k, z).caches.map((c) => [c.count, c.items[0]])).toEqual([[0, undefined], [31, a[2]! + 64]]);
  });

  it('db_show_vm_zone() of a zone without per-CPU lists shows no caches, and the spinlock word 1 while held', () => {
    const { m, k, z } = rig({ pcpu: false });
    const a = allocs(m, k, z, 0, 2);
    const v = db_show_vm_zone(k, z);
    expect(v.caches).toEqual([]);
    expect(v.lines.map((l) => l.what)).toEqual(['zone header', 'zone header', 'zone header', 'lock']);
    expect(v.locked.count).toBe(126);
    expect(v.locked.items[0]).toBe(a[1]! - 64);
    const words = onCpu(m, 1, function* (cpu) {
      yield* spin_lock(k, cpu, z.z + vm_zone.zlock);
      const held = db_show_vm_zone(k, z).lock.word;
      yield* spin_unlock(k, cpu, z.z + vm_zone.zlock);
      return [held, db_show_vm_zone(k, z).lock.word];
    });
    expect(words).toEqual([1, 0]);
  });

  it('db_show_vm_zones() shows every zone in the zone list\'s order, newest first', () => {
    const { k, z } = rig();
    const all = db_show_vm_zones(k);
    expect(all.map((s) => s.va)).toEqual([z.z, mapentzone(k).z]);
    expect(all.map((s) => s.name)).toEqual(['obj64', 'MAP ENTRY']);
    expect(all[0]).toEqual(db_show_vm_zone(k, z));
    expect(() => db_show_vm_zone(k, z.z + 64)).toThrow('is not a zone on the zone list');
  });

  it('viewing changes nothing: two CPUs allocating and freeing run to the same counters and clocks with a view after every operation', () => {
    for (const opts of [{}, { aligned: true }, { pcpu: false }]) {
      const run = (view: boolean) => {
        const { m, k, z } = rig(opts);
        const look = () => {
          if (!view) return;
          db_show_vm_zone(k, z);
          db_show_vm_zones(k);
        };
        const got = churnOnTwoCpus(m, 80, (cpu) => zalloc(k, cpu, z), (cpu, a) => zfree(k, cpu, z, a), look);
        return { snap: m.snapshot(), got, after: db_show_vm_zones(k) };
      };
      const plain = run(false);
      const viewed = run(true);
      expect(viewed.got).toEqual(plain.got);
      expect(viewed.snap.clocks).toEqual(plain.snap.clocks);
      expect(viewed.snap.tables).toEqual(plain.snap.tables);
      expect(viewed.after).toEqual(plain.after);
    }
  });
});
