import { describe, expect, it } from 'vitest';
import { M_WAITOK, SMP_MAXCPU, UMA_ALIGN_PTR, sysctl, uma_keg, uma_zalloc, uma_zcreate, uma_zfree, uma_zone, umaZoneStats, zoneHeaderSize } from '../../kernel/index.js';
import { bootedMachine, onCpu } from './helpers.js';

describe('boot on many CPUs', () => {
  it('boot() on 64 CPUs puts "UMA Zones" on two-page slabs with the header on the slab (the zone header is 4352 bytes)', () => {
    const { m, k } = bootedMachine({ cpus: 64 });
    expect(SMP_MAXCPU).toBe(64);
    // 128 bytes of kmemu's zone fields, 128 of uma_zone up to the line-aligned uz_cpu[], then 64 lines of uma_cache.
    expect(zoneHeaderSize(64)).toBe(4352);
    const zones = umaZoneStats(k).find((z) => z.name === 'UMA Zones')!;
    const keg = k.peekPtr(zones.zone + uma_zone.uz_keg);
    expect([k.peek16(keg + uma_keg.uk_ppera), k.peek16(keg + uma_keg.uk_ipers), k.peek16(keg + uma_keg.uk_pgoff)]).toEqual([2, 1, 8136]);
    expect(k.peek32(keg + uma_keg.uk_flags) & 0x8).toBe(0); // not UMA_ZONE_OFFPAGE
    expect([zones.size, zones.used, zones.kegPages]).toEqual([4352, 16, 32]);
    expect(sysctl(k, 'vm.uma_boot_pages_free')).toBe(1);
    const z = onCpu(m, 0, (cpu) => uma_zcreate(k, cpu, 'obj64', 64, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, 0));
    onCpu(m, 63, function* (cpu) {
      const a = yield* uma_zalloc(k, cpu, z, M_WAITOK);
      expect(a).not.toBe(0);
      yield* uma_zfree(k, cpu, z, a);
    });
    expect(umaZoneStats(k).find((s) => s.name === 'obj64')).toMatchObject({ used: 0, requests: 1 });
  });

  it('boot() on 59 CPUs keeps one-page slabs for "UMA Zones" (4032 bytes and its header fit a page)', () => {
    const { k } = bootedMachine({ cpus: 59 });
    const zones = umaZoneStats(k).find((z) => z.name === 'UMA Zones')!;
    const keg = k.peekPtr(zones.zone + uma_zone.uz_keg);
    expect([zones.size, k.peek16(keg + uma_keg.uk_ppera)]).toEqual([4032, 1]);
    expect(sysctl(k, 'vm.uma_boot_pages_free')).toBe(13);
  });
});
