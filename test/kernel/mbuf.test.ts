// mbufs on UMA (mbuma): the refcount slabs under the cluster zone, the packet zone's round trip
// and its zinit/zfini, the reference-count protocol of mb_free_ext with two CPUs freeing one
// cluster at once, the cluster limit (M_DONTWAIT fails, M_TRYWAIT sleeps until a free), netstat -m
// after a known sequence, and the what-if without the packet zone.
import { describe, expect, it } from 'vitest';
import { type Cpu, Machine, type MachineConfigInput, machinePresets, mergeConfig, type Task } from '../../emu/index.js';
import {
  boot, EXT_CLUSTER, EXT_PACKET, M_DONTWAIT, M_EXT, M_PKTHDR, M_TRYWAIT, MCLBYTES, MHLEN, MINCLSIZE, MLEN, MSIZE, MT_DATA, type Kernel,
  UMA_RCNTSLAB_SIZE, UMA_ZONE_HASH, UMA_ZONE_OFFPAGE, UMA_ZONE_REFCNT, UMA_ZONE_VTOSLAB, UMA_ALIGN_PTR, m_clget, m_ext, m_free,
  m_freem, m_get, m_getcl, m_gethdr, m_getm, mb_dupcl, mbuf, mbufStats, mbuf_init, mbuf_started, netstat_m,
  sysctl, uma_find_refcnt, uma_keg, uma_slab, uma_zalloc, uma_zcreate, uma_zone, umaHandle, umaZoneStats, usr_freelist,
  usr_refcnt, zone_drain, type MbufOptions,
} from '../../kernel/index.js';
import { bootedMachine, onCpu } from './helpers.js';

function rig(cpus = 1, opts: MbufOptions = {}) {
  const { m, k } = bootedMachine({ cpus });
  onCpu(m, 0, (cpu) => mbuf_init(k, cpu, opts));
  const run = <T>(body: (cpu: Cpu) => Task<T>, id = 0): T => onCpu(m, id, body);
  return { m, k, run };
}

function stats(k: Kernel, name: string) {
  const z = umaZoneStats(k).find((s) => s.name === name);
  if (z === undefined) return undefined;
  return { used: z.used, free: z.free, requests: z.requests, fails: z.fails, sleeps: z.sleeps, limit: z.limit };
}

/** Cycles of one operation on cpu, retire to retire, and the path it completed on. */
function* timed<T>(k: Kernel, cpu: Cpu, op: Task<T>, out: { cycles: number; path: string }): Task<T> {
  const t0 = cpu.retired;
  const r = yield* op;
  out.cycles = cpu.retired - t0;
  out.path = k.machine.labels.names[cpu.lastOpLabel]!;
  return r;
}

describe('mbuma: struct mbuf and the zones', () => {
  it('struct mbuf is FreeBSD 6 amd64\'s: MLEN 216, MHLEN 176, m_ext at 80', () => {
    expect([MSIZE, MLEN, MHLEN, MINCLSIZE, MCLBYTES]).toEqual([256, 216, 176, 177, 2048]);
    expect([mbuf.m_dat, mbuf.m_pkthdr, mbuf.m_ext, mbuf.m_pktdat]).toEqual([40, 40, 80, 80]);
    expect([m_ext.ext_buf, m_ext.ext_size, m_ext.ref_cnt, m_ext.ext_type]).toEqual([0, 24, 32, 40]);
  });

  it('mbuf_init() makes the zones once, with the upstream names; kern.ipc.nmbclusters is 1024 + 64 * maxusers', () => {
    const { m, k, run } = rig();
    expect(mbuf_started(k)).toBe(true);
    run((cpu) => mbuf_init(k, cpu));
    const names = umaZoneStats(k).map((z) => z.name);
    expect(names.filter((n) => n.startsWith('mbuf') || n === 'UMA RCntSlabs')).toEqual([
      'mbuf', 'mbuf_packet', 'UMA RCntSlabs', 'mbuf_cluster', 'mbuf_jumbo_pagesize', 'mbuf_jumbo_9k', 'mbuf_jumbo_16k',
    ]);
    // 32 MiB: maxusers 16 rounds up to 32, 1024 + 32 * 64.
    expect(sysctl(k, 'kern.ipc.nmbclusters')).toBe(3072);
    expect(stats(k, 'mbuf_cluster')!.limit).toBe(3072);
    const { k: k2 } = bootedMachine({ cpus: 1 });
    expect(sysctl(k2, 'kern.ipc.nmbclusters')).toBeUndefined();
    void m;
  });
});

describe('UMA_ZONE_REFCNT slabs', () => {
  it('the cluster keg: two clusters a page, off-page uma_slab_refcnt headers from "UMA RCntSlabs", found by vtoslab', () => {
    const { k, run } = rig();
    const z = umaZoneStats(k).find((s) => s.name === 'mbuf_cluster')!.zone;
    const keg = k.peekPtr(z + uma_zone.uz_keg);
    const flags = k.peek32(keg + uma_keg.uk_flags);
    expect(flags & (UMA_ZONE_REFCNT | UMA_ZONE_OFFPAGE | UMA_ZONE_VTOSLAB | UMA_ZONE_HASH)).toBe(UMA_ZONE_REFCNT | UMA_ZONE_OFFPAGE | UMA_ZONE_VTOSLAB);
    expect([k.peek16(keg + uma_keg.uk_ipers), k.peek32(keg + uma_keg.uk_rsize), k.peek16(keg + uma_keg.uk_ppera)]).toEqual([2, 2048, 1]);
    // uma_max_ipers_ref is 9 (the smallest item that wastes a tenth of a refcount slab is 441
    // bytes): 56 + 9 * 8 bytes.
    expect(UMA_RCNTSLAB_SIZE).toBe(128);
    expect(k.peekPtr(keg + uma_keg.uk_slabzone)).toBe(umaZoneStats(k).find((s) => s.name === 'UMA RCntSlabs')!.zone);
    const j9 = k.peekPtr(umaZoneStats(k).find((s) => s.name === 'mbuf_jumbo_9k')!.zone + uma_zone.uz_keg);
    expect([k.peek16(j9 + uma_keg.uk_ipers), k.peek16(j9 + uma_keg.uk_ppera)]).toEqual([1, 3]);

    // Two mbufs with clusters; each cluster's count sits beside its index in its own slab's
    // off-page header (2005: the first comes straight from a slab, the second from a bucket).
    const [a, b] = run(function* (cpu) {
      const ms = [yield* m_gethdr(k, cpu, M_DONTWAIT, MT_DATA), yield* m_gethdr(k, cpu, M_DONTWAIT, MT_DATA)];
      for (const x of ms) yield* m_clget(k, cpu, x, M_DONTWAIT);
      return ms;
    });
    const ca = k.peekPtr(a! + mbuf.m_ext + m_ext.ext_buf);
    const cb = k.peekPtr(b! + mbuf.m_ext + m_ext.ext_buf);
    const refs = run(function* (cpu) {
      const h = umaHandle(k, z);
      return [uma_find_refcnt(k, cpu, h, ca), uma_find_refcnt(k, cpu, h, cb)];
    });
    for (const [c, ref] of [[ca, refs[0]!], [cb, refs[1]!]] as const) {
      const slab = ref - usr_freelist - ((c % 4096) / MCLBYTES) * 8 - usr_refcnt;
      expect(k.peekPtr(slab + uma_slab.us_data)).toBe(c - (c % 4096));
      expect(k.peekPtr(slab + uma_slab.us_keg)).toBe(keg);
    }
    expect(k.peekPtr(a! + mbuf.m_ext + m_ext.ref_cnt)).toBe(refs[0]);
    expect([k.peek32(refs[0]!), k.peek32(refs[1]!)]).toEqual([1, 1]);
    expect(k.peek32(a! + mbuf.m_ext + m_ext.ext_type)).toBe(EXT_CLUSTER);
  });

  it('a small refcount keg keeps its header on the page: 15 items of 256, the header at 3920', () => {
    const { k, run } = rig();
    const h = run((cpu) => uma_zcreate(k, cpu, 'rc256', 256, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, UMA_ZONE_REFCNT));
    const keg = k.peekPtr(h.z + uma_zone.uz_keg);
    expect([k.peek16(keg + uma_keg.uk_ipers), k.peek16(keg + uma_keg.uk_pgoff), k.peek32(keg + uma_keg.uk_flags) & UMA_ZONE_OFFPAGE]).toEqual([15, 3920, 0]);
    const items = run(function* (cpu) {
      const out: number[] = [];
      for (let i = 0; i < 3; i++) out.push(yield* uma_zalloc(k, cpu, h, M_DONTWAIT));
      return out.map((it) => uma_find_refcnt(k, cpu, h, it) - (it - (it % 4096)));
    });
    // Slab header at 3920, entries 8 bytes from 3968, each count 4 bytes into its entry. The
    // first request of the fresh zone gets item 0 from the slab itself (2005's miss path before
    // the zone has a bucket), then a filled bucket hands out items 14, 13 (LIFO).
    expect(items).toEqual([3968 + 0 * 8 + 4, 3968 + 14 * 8 + 4, 3968 + 13 * 8 + 4]);
  });
});

describe('the packet zone', () => {
  it('m_getcl() fills a bucket of 128 packets, each importing a cluster (mb_zinit_pack); m_freem() puts the packet back whole', () => {
    const { k, run } = rig();
    const t1 = { cycles: 0, path: '' };
    const t2 = { cycles: 0, path: '' };
    const m1 = run((cpu) => timed(k, cpu, m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR), t1));
    expect(k.peek32(m1 + mbuf.m_flags)).toBe(M_EXT | M_PKTHDR);
    expect(k.peek32(m1 + mbuf.m_ext + m_ext.ext_type)).toBe(EXT_PACKET);
    expect(k.peekPtr(m1 + mbuf.m_data)).toBe(k.peekPtr(m1 + mbuf.m_ext + m_ext.ext_buf));
    expect(stats(k, 'mbuf_packet')).toEqual({ used: 1, free: 127, requests: 1, fails: 0, sleeps: 0, limit: 0 });
    // 128 clusters went into the packets; 2005's fill of the cluster zone's own bucket left 6 cached.
    expect(stats(k, 'mbuf_cluster')).toEqual({ used: 128, free: 6, requests: 128, fails: 0, sleeps: 0, limit: 3072 });
    run((cpu) => timed(k, cpu, m_freem(k, cpu, m1), t2));
    expect(stats(k, 'mbuf_packet')).toEqual({ used: 0, free: 128, requests: 1, fails: 0, sleeps: 0, limit: 0 });
    expect(stats(k, 'mbuf_cluster')!.used).toBe(128);
    // Warm: a packet-zone hit and its free.
    const t3 = { cycles: 0, path: '' };
    const t4 = { cycles: 0, path: '' };
    const m2 = run((cpu) => timed(k, cpu, m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR), t3));
    run((cpu) => timed(k, cpu, m_freem(k, cpu, m2), t4));
    expect(k.peek32(m2 + mbuf.m_ext + m_ext.ext_type)).toBe(EXT_PACKET);
    expect([t1, t2, t3, t4]).toMatchInlineSnapshot(`
      [
        {
          "cycles": 1109473,
          "path": "mbuf.getcl",
        },
        {
          "cycles": 1425,
          "path": "mbuf.free_ext",
        },
        {
          "cycles": 307,
          "path": "mbuf.getcl",
        },
        {
          "cycles": 254,
          "path": "mbuf.free_ext",
        },
      ]
    `);
  });

  it('zone_drain() of the packet zone runs mb_zfini_pack: the clusters go back to the cluster zone', () => {
    const { k, run } = rig();
    // 300 packets out (three bucket fills: 384 packets, 384 clusters) and back: the CPU's two
    // buckets hold 256, the third full bucket goes to the depot.
    run(function* (cpu) {
      const ms: number[] = [];
      for (let i = 0; i < 300; i++) ms.push(yield* m_getcl(k, cpu, M_DONTWAIT, MT_DATA, 0));
      for (const x of ms) yield* m_freem(k, cpu, x);
    });
    const before = { pack: stats(k, 'mbuf_packet')!, clust: stats(k, 'mbuf_cluster')! };
    const pz = umaZoneStats(k).find((s) => s.name === 'mbuf_packet')!.zone;
    run((cpu) => zone_drain(k, cpu, umaHandle(k, pz)));
    const after = { pack: stats(k, 'mbuf_packet')!, clust: stats(k, 'mbuf_cluster')!, mbuf: stats(k, 'mbuf')! };
    expect({ before, after }).toMatchInlineSnapshot(`
      {
        "after": {
          "clust": {
            "fails": 0,
            "free": 134,
            "limit": 3072,
            "requests": 384,
            "sleeps": 0,
            "used": 256,
          },
          "mbuf": {
            "fails": 0,
            "free": 29,
            "limit": 0,
            "requests": 0,
            "sleeps": 0,
            "used": 0,
          },
          "pack": {
            "fails": 0,
            "free": 256,
            "limit": 0,
            "requests": 300,
            "sleeps": 0,
            "used": 0,
          },
        },
        "before": {
          "clust": {
            "fails": 0,
            "free": 6,
            "limit": 3072,
            "requests": 384,
            "sleeps": 0,
            "used": 384,
          },
          "pack": {
            "fails": 0,
            "free": 384,
            "limit": 0,
            "requests": 300,
            "sleeps": 0,
            "used": 0,
          },
        },
      }
    `);
  });
});

describe('mb_free_ext: the reference-count protocol', () => {
  /** Two mbufs sharing one cluster (refcount 2), made on CPU 0. */
  function shared(k: Kernel, run: <T>(b: (cpu: Cpu) => Task<T>, id?: number) => T, packet: boolean) {
    return run(function* (cpu) {
      let a: number;
      if (packet) {
        a = yield* m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR);
      } else {
        a = yield* m_gethdr(k, cpu, M_DONTWAIT, MT_DATA);
        yield* m_clget(k, cpu, a, M_DONTWAIT);
      }
      const b = yield* m_get(k, cpu, M_DONTWAIT, MT_DATA);
      yield* mb_dupcl(k, cpu, b, a);
      return [a, b] as const;
    });
  }

  function race(packet: boolean) {
    const r = rig(2);
    const { m, k } = r;
    const [a, b] = shared(k, r.run, packet);
    const refcnt = k.peekPtr(a + mbuf.m_ext + m_ext.ref_cnt);
    expect(k.peek32(refcnt)).toBe(2);
    const before = { clust: stats(k, 'mbuf_cluster')!, pack: stats(k, 'mbuf_packet')!, mbuf: stats(k, 'mbuf')! };
    const snap = m.snapshot();
    const t = [{ cycles: 0, path: '' }, { cycles: 0, path: '' }];
    runBoth(m, function* (cpu) {
      yield* cpu.checkpoint();
      yield* timed(k, cpu, m_free(k, cpu, cpu.id === 0 ? a : b), t[cpu.id]!);
    });
    const d = m.snapshot().minus(snap);
    const after = { clust: stats(k, 'mbuf_cluster')!, pack: stats(k, 'mbuf_packet')!, mbuf: stats(k, 'mbuf')! };
    return { k, refcnt, before, after, t, c2c: d.total('coherence.c2cTransfer'), atomics: d.total('mem.atomics') };
  }

  it('two CPUs free the two mbufs of one cluster at once: the count\'s line moves between them, the cluster is freed once', () => {
    const r = race(false);
    // One cluster back to the cluster zone (not two: a second free would panic under INVARIANTS),
    // both mbufs back to the mbuf zone, the count left at 1 for the cluster's next owner.
    expect(r.before.clust.used - r.after.clust.used).toBe(1);
    expect(r.before.mbuf.used - r.after.mbuf.used).toBe(2);
    expect(r.k.peek32(r.refcnt)).toBe(1);
    expect({ t: r.t, c2c: r.c2c, atomics: r.atomics }).toMatchInlineSnapshot(`
      {
        "atomics": 19,
        "c2c": 19,
        "t": [
          {
            "cycles": 3277,
            "path": "mbuf.free_ext",
          },
          {
            "cycles": 2674,
            "path": "mbuf.free_ext",
          },
        ],
      }
    `);
  });

  it('a packet shared by two CPUs goes back to the packet zone whole, once; the other mbuf to the mbuf zone', () => {
    const r = race(true);
    expect(r.before.clust.used - r.after.clust.used).toBe(0);
    expect(r.after.pack.free - r.before.pack.free).toBe(1);
    expect(r.before.mbuf.used - r.after.mbuf.used).toBe(1);
    expect(r.k.peek32(r.refcnt)).toBe(1);
    expect({ t: r.t, c2c: r.c2c, atomics: r.atomics }).toMatchInlineSnapshot(`
      {
        "atomics": 16,
        "c2c": 18,
        "t": [
          {
            "cycles": 2510,
            "path": "mbuf.free_ext",
          },
          {
            "cycles": 2950,
            "path": "mbuf.free_ext",
          },
        ],
      }
    `);
  });
});

/** Runs body on every CPU at once. */
function runBoth(m: Machine, body: (cpu: Cpu) => Task): void {
  m.runAll(body);
}

describe('nmbclusters', () => {
  it('the boot tunable kern.ipc.nmbclusters sets the cluster zone\'s limit (0: none); the sysctl reads it back', () => {
    for (const [value, limit] of [['300', 300], ['0', 0]] as const) {
      const m = new Machine(mergeConfig(machinePresets['coursework'], { memory: { size: '32m' } }) as MachineConfigInput);
      const k = boot(m, { 'kern.ipc.nmbclusters': value });
      expect(k.tunables['kern.ipc.nmbclusters']).toBe(value);
      onCpu(m, 0, (cpu) => mbuf_init(k, cpu));
      expect([sysctl(k, 'kern.ipc.nmbclusters'), stats(k, 'mbuf_cluster')!.limit]).toEqual([limit, limit]);
    }
    // Unset, the boot computes it: 1024 + 64 * maxusers, and reports show that value.
    expect(bootedMachine().k.tunables['kern.ipc.nmbclusters']).toBe('3072');
    expect(() => boot(new Machine(machinePresets['coursework'] as MachineConfigInput), { 'kern.ipc.nmbclusters': '-1' })).toThrow(
      'kern.ipc.nmbclusters takes an integer from 0 to 2147483647, not "-1"',
    );
  });

  it('at the limit M_DONTWAIT fails (counted as denied); M_TRYWAIT sleeps until another CPU frees a cluster', () => {
    const { m, k, run } = rig(2, { nmbclusters: 4 });
    expect(sysctl(k, 'kern.ipc.nmbclusters')).toBe(4);
    const ms = run(function* (cpu) {
      const out: number[] = [];
      for (let i = 0; i < 5; i++) {
        const x = yield* m_gethdr(k, cpu, M_DONTWAIT, MT_DATA);
        yield* m_clget(k, cpu, x, M_DONTWAIT);
        out.push(x);
      }
      return out;
    });
    expect(ms.map((x) => k.peek32(x + mbuf.m_flags) & M_EXT)).toEqual([1, 1, 1, 1, 0]);
    expect(mbufStats(k).denied).toEqual({ mbufs: 0, clusters: 1, packets: 0 });
    const waiter = ms[4]!;
    const order: string[] = [];
    m.run([
      function* (cpu: Cpu) {
        cpu.work(20000);
        yield* cpu.sync();
        order.push('free');
        yield* m_free(k, cpu, ms[0]!);
      },
      function* (cpu: Cpu) {
        yield* m_clget(k, cpu, waiter, M_TRYWAIT);
        order.push('got');
      },
    ]);
    expect(order).toEqual(['free', 'got']);
    expect(k.peek32(waiter + mbuf.m_flags) & M_EXT).toBe(M_EXT);
    expect(mbufStats(k).delayed).toEqual({ mbufs: 0, clusters: 1, packets: 0 });
    expect(stats(k, 'mbuf_cluster')).toEqual({ used: 4, free: 0, requests: 5, fails: 1, sleeps: 1, limit: 4 });
  });

  it('m_getcl() through the packet zone fails at the limit: the packet zone counts it', () => {
    const { k, run } = rig(1, { nmbclusters: 4 });
    const got = run(function* (cpu) {
      const out: number[] = [];
      for (let i = 0; i < 5; i++) out.push(yield* m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR));
      return out;
    });
    expect(got.map((x) => x !== 0)).toEqual([true, true, true, true, false]);
    expect(mbufStats(k).denied).toMatchInlineSnapshot(`
      {
        "clusters": 3,
        "mbufs": 0,
        "packets": 1,
      }
    `);
  });
});

describe('netstat -m', () => {
  it('prints FreeBSD 6\'s lines after a known sequence', () => {
    const { k, run } = rig();
    run(function* (cpu) {
      const p = [yield* m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR), yield* m_getcl(k, cpu, M_DONTWAIT, MT_DATA, 0)];
      const a = yield* m_get(k, cpu, M_DONTWAIT, MT_DATA);
      const b = yield* m_gethdr(k, cpu, M_DONTWAIT, MT_DATA);
      yield* m_clget(k, cpu, b, M_DONTWAIT);
      const chain = yield* m_getm(k, cpu, 0, 2 * MCLBYTES + 100, M_DONTWAIT, MT_DATA);
      yield* m_freem(k, cpu, p[1]!);
      void a; void chain;
    });
    expect(netstat_m(k)).toMatchInlineSnapshot(`
      "6/264/270 mbufs in use (current/cache/total)
      4/130/134/3072 mbuf clusters in use (current/cache/total/max)
      3/125 mbuf+clusters out of packet secondary zone in use (current/cache)
      0/0/0/0 4k (page size) jumbo clusters in use (current/cache/total/max)
      0/0/0/0 9k jumbo clusters in use (current/cache/total/max)
      0/0/0/0 16k jumbo clusters in use (current/cache/total/max)
      9K/326K/335K bytes allocated to network (current/cache/total)
      0/0/0 requests for mbufs denied (mbufs/clusters/mbuf+clusters)
      0/0/0 requests for jumbo clusters denied (4k/9k/16k)
      0/0/0 sfbufs in use (current/peak/max)
      0 requests for sfbufs denied
      0 requests for sfbufs delayed
      0 requests for I/O initiated by sendfile
      0 calls to protocol drain routines
      "
    `);
    expect(netstat_m(k, { delayed: true }).split('\n')[8]).toBe('0/0/0 requests for mbufs delayed (mbufs/clusters/mbuf+clusters)');
  });
});

describe('the what-if without the packet zone', () => {
  it('packetZone: false: m_getcl() is m_gethdr() + m_clget(), m_freem() frees the cluster to its zone', () => {
    const { k, run } = rig(1, { packetZone: false });
    expect(umaZoneStats(k).some((z) => z.name === 'mbuf_packet')).toBe(false);
    const first = run((cpu) => m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR));
    run((cpu) => m_freem(k, cpu, first));
    const t = [{ cycles: 0, path: '' }, { cycles: 0, path: '' }];
    const x = run((cpu) => timed(k, cpu, m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR), t[0]!));
    expect(k.peek32(x + mbuf.m_ext + m_ext.ext_type)).toBe(EXT_CLUSTER);
    expect(k.peek32(x + mbuf.m_flags)).toBe(M_EXT | M_PKTHDR);
    run((cpu) => timed(k, cpu, m_freem(k, cpu, x), t[1]!));
    expect(stats(k, 'mbuf_cluster')!.used).toBe(0);
    expect(mbufStats(k).packets).toEqual({ current: 0, cache: 0 });
    expect(t).toMatchInlineSnapshot(`
      [
        {
          "cycles": 1411,
          "path": "mbuf.getcl",
        },
        {
          "cycles": 736,
          "path": "mbuf.free_ext",
        },
      ]
    `);
  });
});
