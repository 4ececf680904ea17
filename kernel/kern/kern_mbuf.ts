// mbuma: mbufs and clusters on UMA. The zones, their constructors, destructors and the packet
// zone's init/fini, nmbclusters, and netstat -m.
//
// Models FreeBSD sys/kern/kern_mbuf.c as of mbuma (Bosko Milekic, 2004) and its 2005 follow-ups
// (v1.23 of 2006 for the jumbo zones and the MBUF_*_MEM_NAME zone names), usr.bin/netstat/mbuf.c
// v1.51 (2006) for netstat -m, and sys/kern/subr_param.c for maxusers. Three zones carry the
// common case: "mbuf" (MSIZE items, UMA_ZONE_MAXBUCKET), "mbuf_cluster" (MCLBYTES,
// UMA_ZONE_REFCNT: each cluster's reference count sits in its slab header) and "mbuf_packet",
// a secondary zone on the mbuf keg whose cached items are mbufs with a cluster attached:
// mb_zinit_pack takes a cluster from the cluster zone when an mbuf moves from the keg into the
// packet zone's caches, mb_zfini_pack gives it back when it leaves. The jumbo zones (page
// size, 9k, 16k) are FreeBSD 6's. Deviations:
// - mbuf_init is not run by boot(): whoever needs mbufs runs it once after boot (as
//   SYSINIT(mbuf) would), so that existing boot figures stay as they were. Its globals
//   (zone_mbuf .. zone_jumbo16, nmbclusters, mbstat) sit in a page it takes from kernel_map,
//   not in the kernel's .bss.
// - zone_clust is UMA_ZONE_REFCNT | UMA_ZONE_NOFREE, as the 2004 follow-up to mbuma made it
//   (the commit log in shared/seeds): the slabs and their reference counts are type-stable,
//   which mb_free_ext's atomic_cmpset on a count another CPU may just have dropped relies on.
// - No zone_ext_refcnt / zone_mtag_vlan, m_extadd or m_tags: mb_dtor_mbuf's
//   m_tag_delete_chain is the load of the (always empty) tag list. No MAC labels.
// - The INVARIANTS trash_ctor/dtor/init/fini calls of the mbuf zones are not made (they would
//   fill every mbuf and cluster with junk); the KASSERTs of mb_dtor_pack and mb_dtor_clust run
//   with UMA's INVARIANTS option (on by default) and panic with upstream's text.
// - nmbclusters is 1024 + 64 * maxusers, maxusers from memory as subr_param.c computes it (one
//   per 2 MiB of physical memory, 32 to 384): 3072 on a 32 MiB machine, unless the boot tunable
//   kern.ipc.nmbclusters says otherwise (0: no limit); MbufOptions.nmbclusters overrides both,
//   for tests. The sysctl kern.ipc.nmbclusters is read-only:
//   FreeBSD 6's write changed the integer but not the zone's limit.
// - mb_args, on the caller's stack upstream, is a slot in the CPU's globaldata page.
// - netstat -m is FreeBSD 6's text; without the packet zone (packetZone: false, a what-if:
//   upstream's netstat would stop at "zone mbuf_packet not found") its figures are 0. The sfbuf
//   line is printed as live amd64 would: no sf_bufs (0/0/0).

import { type Cpu, type Task } from '../../emu/index.js';
import { type Kernel, maxusersOf } from './kernel.js';
import { panic } from './panic.js';
import { embed, struct } from './struct.js';
import {
  EXT_CLUSTER, EXT_JUMBO16, EXT_JUMBO9, EXT_JUMBOP, EXT_PACKET, M_EXT, M_PKTHDR, MBUF_CLUSTER_MEM_NAME, MBUF_JUMBO16_MEM_NAME,
  MBUF_JUMBO9_MEM_NAME, MBUF_JUMBOP_MEM_NAME, MBUF_MEM_NAME, MBUF_PACKET_MEM_NAME, MCLBYTES, MHLEN, MINCLSIZE, MJUM16BYTES,
  MJUM9BYTES, MJUMPAGESIZE, MLEN, MSIZE, MT_NOINIT, MT_NTYPES, m_ext, mb_args, mbstat, mbuf, pkthdr,
} from './mbuf.js';
import {
  kmem_alloc3, UMA_ALIGN_PTR, uma_find_refcnt, UMA_ZONE_MAXBUCKET, UMA_ZONE_NOFREE, UMA_ZONE_REFCNT, umaHandle, umaOptions,
  umaZoneStats, type UmaCallback, type UmaZone, type UmaZoneOptions, type UmaZoneStats, uma_zalloc_arg, uma_zcreate, uma_zfree_arg, uma_zone_set_max,
  uma_zsecond_create, vm_lowmem_register,
} from '../vm/index.js';

const ENOMEM = 12;
/** Where a CPU's mb_args sits in its globaldata page (after UMA's scratch word at 3072). */
const MB_ARGS_OFFSET = 3584;

/** kern_mbuf.c's globals. */
export const mbuf_globals = struct('mbuf_globals', [
  ['zone_mbuf', 'ptr'],
  ['zone_clust', 'ptr'],
  ['zone_pack', 'ptr'],
  ['zone_jumbop', 'ptr'],
  ['zone_jumbo9', 'ptr'],
  ['zone_jumbo16', 'ptr'],
  ['nmbclusters', 'u32'],
  ['nmbjumbop', 'u32'],
  ['nmbjumbo9', 'u32'],
  ['nmbjumbo16', 'u32'],
  ['mbstat', embed(mbstat)],
], 64);

export interface MbufOptions {
  /** The packet secondary zone (default); false: m_getcl is m_gethdr + m_clget (a what-if). */
  packetZone?: boolean;
  /** The cluster limit, over the kern.ipc.nmbclusters tunable (0: no limit). */
  nmbclusters?: number;
  /**
   * kmemu's what-ifs for the mbuf zones, as for any UMA zone (per-CPU buckets off for compare's
   * locked run, the aligned cache, the bucket size, ...); default upstream's.
   */
  zone?: UmaZoneOptions;
}

interface MbufState {
  /** The globals page. */
  readonly g: number;
  readonly packetZone: boolean;
  readonly console: string[];
  /** Per CPU: depth of nested mbuf calls, and the label the outermost one completes on. */
  readonly depth: number[];
  readonly opLabel: number[];
}

const states = new WeakMap<Kernel, MbufState>();
/** The mbuf state of each kernel (machine checkpoints). */
export const mbufJsStates = states as WeakMap<Kernel, object>;

/**
 * mb_reclaim, mbuf_init's vm_lowmem handler: counts the call (mbstat.m_drain, netstat -m's "calls
 * to protocol drain routines") and runs every protocol's pr_drain, of which kmemu has none.
 */
function* mb_reclaim(k: Kernel, cpu: Cpu): Task {
  const at = mbufState(k, cpu).g + mbuf_globals.mbstat + mbstat.m_drain;
  cpu.store64(at, cpu.load64(at) + 1);
}

/** Whether mbuf_init has run on this kernel. */
export function mbuf_started(k: Kernel): boolean {
  return states.has(k);
}

/** The kernel's mbuf state; panics (as a NULL zone would) before mbuf_init. */
export function mbufState(k: Kernel, cpu: Cpu): MbufState {
  const s = states.get(k);
  if (s === undefined) panic(cpu, 'mbuf: mbuf_init has not run');
  return s;
}

/** Lines the mbuf code printed on the console (m_clget's complaint), oldest first. */
export function mbufConsole(k: Kernel): readonly string[] {
  return states.get(k)?.console ?? [];
}

/** The zone whose header pointer is in the global `field` (loaded: upstream reads the global). */
export function mbZone(k: Kernel, cpu: Cpu, s: MbufState, field: 'zone_mbuf' | 'zone_clust' | 'zone_pack' | 'zone_jumbop' | 'zone_jumbo9' | 'zone_jumbo16'): UmaZone {
  return umaHandle(k, cpu.loadPtr(s.g + mbuf_globals[field]));
}

/** This CPU's struct mb_args, set for the ctor of the allocation to come. */
export function mbArgs(k: Kernel, cpu: Cpu, flags: number, type: number): number {
  const a = k.gd(cpu.id) + MB_ARGS_OFFSET;
  cpu.store32(a + mb_args.flags, flags >>> 0);
  cpu.store16(a + mb_args.type, type);
  return a;
}

/** subr_param.c's maxusers when not set: one per 2 MiB of physical memory, 32 to 384. */
export function maxusers(k: Kernel): number {
  return maxusersOf(k.physmem);
}

// --- Constructors, destructors, the packet zone's init and fini ---------------------------------

function pkthdrInit(cpu: Cpu, m: number): void {
  const h = m + mbuf.m_pkthdr;
  cpu.storePtr(h + pkthdr.rcvif, 0);
  cpu.store32(h + pkthdr.len, 0);
  cpu.storePtr(h + pkthdr.header, 0);
  cpu.store32(h + pkthdr.csum_flags, 0);
  cpu.store32(h + pkthdr.csum_data, 0);
  cpu.storePtr(h + pkthdr.tags, 0);
}

/** The closures over `k` the mbuf zones and the vm_lowmem event hold (machine checkpoints; the state as installed then). */
export function mbufRestoreFunctions(k: Kernel): ((...args: never[]) => unknown)[] {
  return [...Object.values(callbacks(k, () => states.get(k)!)), mb_reclaim];
}

/** The callbacks of one kernel's mbuf zones (closures over k). */
function callbacks(k: Kernel, s: () => MbufState) {
  const inv = umaOptions(k).invariants;

  /** mb_ctor_mbuf: a plain or packet-header mbuf from the mb_args at arg. */
  const mb_ctor_mbuf: UmaCallback = function* (cpu, m, _size, arg) {
    const flags = cpu.load32(arg + mb_args.flags);
    const type = cpu.load16(arg + mb_args.type);
    if (type === MT_NOINIT) return 0;
    cpu.storePtr(m + mbuf.m_next, 0);
    cpu.storePtr(m + mbuf.m_nextpkt, 0);
    cpu.store32(m + mbuf.m_len, 0);
    cpu.store32(m + mbuf.m_flags, flags);
    cpu.store16(m + mbuf.m_type, type);
    if ((flags & M_PKTHDR) !== 0) {
      cpu.storePtr(m + mbuf.m_data, m + mbuf.m_pktdat);
      pkthdrInit(cpu, m);
    } else {
      cpu.storePtr(m + mbuf.m_data, m + mbuf.m_dat);
    }
    cpu.work(12);
    return 0;
  };

  /** mb_dtor_mbuf: m_tag_delete_chain on a packet header (its empty tag list here). */
  const mb_dtor_mbuf: UmaCallback = function* (cpu, m) {
    if ((cpu.load32(m + mbuf.m_flags) & M_PKTHDR) !== 0) cpu.loadPtr(m + mbuf.m_pkthdr + pkthdr.tags);
    cpu.work(4);
  };

  /** mb_ctor_clust: attaches the cluster to the mbuf at arg (if any), its count set to 1. */
  const mb_ctor_clust: UmaCallback = function* (cpu, mem, size, m) {
    let type: number;
    switch (size) {
      case MCLBYTES: type = EXT_CLUSTER; break;
      case MJUMPAGESIZE: type = EXT_JUMBOP; break;
      case MJUM9BYTES: type = EXT_JUMBO9; break;
      case MJUM16BYTES: type = EXT_JUMBO16; break;
      default: panic(cpu, 'unknown cluster size');
    }
    const refcnt = uma_find_refcnt(k, cpu, mbZone(k, cpu, s(), 'zone_clust'), mem);
    if (m !== 0) {
      const e = m + mbuf.m_ext;
      cpu.storePtr(e + m_ext.ext_buf, mem);
      cpu.storePtr(m + mbuf.m_data, mem);
      cpu.store32(m + mbuf.m_flags, (cpu.load32(m + mbuf.m_flags) | M_EXT) >>> 0);
      cpu.storePtr(e + m_ext.ext_free, 0);
      cpu.storePtr(e + m_ext.ext_args, 0);
      cpu.store32(e + m_ext.ext_size, size);
      cpu.store32(e + m_ext.ext_type, type);
      cpu.storePtr(e + m_ext.ref_cnt, refcnt);
    }
    cpu.store32(refcnt, 1);
    cpu.work(14);
    return 0;
  };

  /** mb_dtor_clust: KASSERT that the count is at most 1. */
  const mb_dtor_clust: UmaCallback = function* (cpu, mem) {
    if (!inv) return;
    const c = cpu.load32(uma_find_refcnt(k, cpu, mbZone(k, cpu, s(), 'zone_clust'), mem));
    if (c > 1) panic(cpu, `mb_dtor_clust: refcnt incorrect ${c}`);
  };

  /** mb_zinit_pack: an mbuf entering the packet zone's caches gets a cluster. */
  const mb_zinit_pack: UmaCallback = function* (cpu, m, _size, _arg, how) {
    const c = yield* uma_zalloc_arg(k, cpu, mbZone(k, cpu, s(), 'zone_clust'), m, how);
    if (c === 0 || cpu.loadPtr(m + mbuf.m_ext + m_ext.ext_buf) === 0) return ENOMEM;
    cpu.store32(m + mbuf.m_ext + m_ext.ext_type, EXT_PACKET);
    return 0;
  };

  /** mb_zfini_pack: an mbuf leaving the packet zone for the keg gives its cluster back. */
  const mb_zfini_pack: UmaCallback = function* (cpu, m) {
    yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, s(), 'zone_clust'), cpu.loadPtr(m + mbuf.m_ext + m_ext.ext_buf), 0);
  };

  /** mb_ctor_pack: the mbuf of a packet, its cluster already attached (m_ext is set). */
  const mb_ctor_pack: UmaCallback = function* (cpu, m, _size, arg) {
    const flags = cpu.load32(arg + mb_args.flags);
    const type = cpu.load16(arg + mb_args.type);
    cpu.storePtr(m + mbuf.m_next, 0);
    cpu.storePtr(m + mbuf.m_nextpkt, 0);
    cpu.storePtr(m + mbuf.m_data, cpu.loadPtr(m + mbuf.m_ext + m_ext.ext_buf));
    cpu.store32(m + mbuf.m_len, 0);
    cpu.store32(m + mbuf.m_flags, (flags | M_EXT) >>> 0);
    cpu.store16(m + mbuf.m_type, type);
    if ((flags & M_PKTHDR) !== 0) pkthdrInit(cpu, m);
    cpu.work(12);
    return 0;
  };

  /** mb_dtor_pack: the tag list, and the KASSERTs that a clean packet comes back. */
  const mb_dtor_pack: UmaCallback = function* (cpu, m) {
    if ((cpu.load32(m + mbuf.m_flags) & M_PKTHDR) !== 0) cpu.loadPtr(m + mbuf.m_pkthdr + pkthdr.tags);
    cpu.work(4);
    if (!inv) return;
    const e = m + mbuf.m_ext;
    if ((cpu.load32(m + mbuf.m_flags) & M_EXT) === 0) panic(cpu, 'mb_dtor_pack: M_EXT not set');
    if (cpu.loadPtr(e + m_ext.ext_buf) === 0) panic(cpu, 'mb_dtor_pack: ext_buf == NULL');
    if (cpu.load32(e + m_ext.ext_type) !== EXT_PACKET) panic(cpu, 'mb_dtor_pack: ext_type != EXT_PACKET');
    if (cpu.load32(cpu.loadPtr(e + m_ext.ref_cnt)) !== 1) panic(cpu, 'mb_dtor_pack: ref_cnt != 1');
  };

  return { mb_ctor_mbuf, mb_dtor_mbuf, mb_ctor_clust, mb_dtor_clust, mb_zinit_pack, mb_zfini_pack, mb_ctor_pack, mb_dtor_pack };
}

// --- SYSINIT(mbuf) ------------------------------------------------------------------------------

/**
 * mbuf_init (SYSINIT(mbuf)): the mbuf, cluster, packet and jumbo zones, the cluster limit, and
 * mbstat. Run once after boot; a second call does nothing.
 */
export function* mbuf_init(k: Kernel, cpu: Cpu, opts: MbufOptions = {}): Task {
  if (states.has(k)) return;
  const nmbclusters = opts.nmbclusters ?? Number(k.tunables['kern.ipc.nmbclusters']);
  if (!Number.isInteger(nmbclusters) || nmbclusters < 0) panic(cpu, `mbuf_init: bad kern.ipc.nmbclusters ${nmbclusters}`);
  const g = yield* kmem_alloc3(k, cpu, k.kernel_map, 4096, 0);
  if (g === 0) panic(cpu, 'mbuf_init: no memory for the mbuf globals');
  const s: MbufState = { g, packetZone: opts.packetZone ?? true, console: [], depth: [], opLabel: [] };
  const cb = callbacks(k, () => s);
  const zopts: UmaZoneOptions = opts.zone ?? {};
  cpu.store32(g + mbuf_globals.nmbclusters, nmbclusters);
  const clusterZone = function* (name: string, size: number, limit: number): Task<UmaZone> {
    const z = yield* uma_zcreate(k, cpu, name, size, cb.mb_ctor_clust, cb.mb_dtor_clust, undefined, undefined, UMA_ALIGN_PTR, UMA_ZONE_REFCNT | UMA_ZONE_NOFREE, zopts);
    if (limit > 0) yield* uma_zone_set_max(k, cpu, z, limit);
    return z;
  };
  const zmbuf = yield* uma_zcreate(k, cpu, MBUF_MEM_NAME, MSIZE, cb.mb_ctor_mbuf, cb.mb_dtor_mbuf, undefined, undefined, MSIZE - 1, UMA_ZONE_MAXBUCKET, zopts);
  cpu.storePtr(g + mbuf_globals.zone_mbuf, zmbuf.z);
  const zclust = yield* clusterZone(MBUF_CLUSTER_MEM_NAME, MCLBYTES, nmbclusters);
  cpu.storePtr(g + mbuf_globals.zone_clust, zclust.z);
  if (s.packetZone) {
    const zpack = yield* uma_zsecond_create(k, cpu, MBUF_PACKET_MEM_NAME, cb.mb_ctor_pack, cb.mb_dtor_pack, cb.mb_zinit_pack, cb.mb_zfini_pack, zmbuf, zopts);
    cpu.storePtr(g + mbuf_globals.zone_pack, zpack.z);
  }
  const jumbo = [
    ['zone_jumbop', 'nmbjumbop', MBUF_JUMBOP_MEM_NAME, MJUMPAGESIZE],
    ['zone_jumbo9', 'nmbjumbo9', MBUF_JUMBO9_MEM_NAME, MJUM9BYTES],
    ['zone_jumbo16', 'nmbjumbo16', MBUF_JUMBO16_MEM_NAME, MJUM16BYTES],
  ] as const;
  for (const [field, limit, name, size] of jumbo) {
    const z = yield* clusterZone(name, size, cpu.load32(g + mbuf_globals[limit]));
    cpu.storePtr(g + mbuf_globals[field], z.z);
  }
  const st = g + mbuf_globals.mbstat;
  cpu.store64(st + mbstat.m_mbufs, 0);
  cpu.store64(st + mbstat.m_mclusts, 0);
  cpu.store64(st + mbstat.m_drain, 0);
  cpu.store64(st + mbstat.m_msize, MSIZE);
  cpu.store64(st + mbstat.m_mclbytes, MCLBYTES);
  cpu.store64(st + mbstat.m_minclsize, MINCLSIZE);
  cpu.store64(st + mbstat.m_mlen, MLEN);
  cpu.store64(st + mbstat.m_mhlen, MHLEN);
  cpu.store16(st + mbstat.m_numtypes, MT_NTYPES);
  cpu.store64(st + mbstat.m_mcfail, 0);
  cpu.store64(st + mbstat.m_mpfail, 0);
  cpu.store64(st + mbstat.sf_iocnt, 0);
  cpu.store64(st + mbstat.sf_allocwait, 0);
  cpu.store64(st + mbstat.sf_allocfail, 0);
  states.set(k, s);
  vm_lowmem_register(k, mb_reclaim);
  yield* cpu.sync();
}

// --- Views (functional reads: no cycles, no cache effects) ------------------------------------

/** One zone's figures as libmemstat gives them to netstat -m. */
export interface NetstatMZone {
  /** memstat_get_count: items allocated and not freed. */
  count: number;
  /** memstat_get_free: free items in the caches (and the keg, for a primary zone). */
  free: number;
  /** memstat_get_failures: allocations that failed. */
  failures: number;
  /** memstat_get_sleeps: allocations that slept at the zone's limit. */
  sleeps: number;
  /** memstat_get_countlimit: the most items the zone may hold (0: no limit). */
  limit: number;
  /** memstat_get_size: item size (bytes). */
  size: number;
}

/** netstat -m's figures. */
export interface NetstatM {
  mbufs: { current: number; cache: number; total: number };
  clusters: { current: number; cache: number; total: number; max: number };
  packets: { current: number; cache: number };
  jumbop: { current: number; cache: number; total: number; max: number; sizeK: number };
  jumbo9: { current: number; cache: number; total: number; max: number };
  jumbo16: { current: number; cache: number; total: number; max: number };
  /** KiB (rounded down) of network memory in use, cached, and both. */
  kbytes: { current: number; cache: number; total: number };
  denied: { mbufs: number; clusters: number; packets: number };
  jumboDenied: { jumbop: number; jumbo9: number; jumbo16: number };
  /** Allocations that slept at a limit (FreeBSD 9's "delayed" lines; not in FreeBSD 6's text). */
  delayed: { mbufs: number; clusters: number; packets: number };
  jumboDelayed: { jumbop: number; jumbo9: number; jumbo16: number };
  sfbufs: { current: number; peak: number; max: number };
  sfbufsDenied: number;
  sfbufsDelayed: number;
  sendfileIO: number;
  drains: number;
  /** The zones themselves, by upstream name. */
  zones: Record<string, NetstatMZone>;
}

function zoneFigures(z: UmaZoneStats | undefined): NetstatMZone {
  if (z === undefined) return { count: 0, free: 0, failures: 0, sleeps: 0, limit: 0, size: 0 };
  return { count: z.used, free: z.free, failures: z.fails, sleeps: z.sleeps, limit: z.limit, size: z.size };
}

/** netstat -m's figures, computed as usr.bin/netstat/mbuf.c does from libmemstat's. */
export function mbufStats(k: Kernel): NetstatM {
  const s = states.get(k);
  if (s === undefined) throw new Error('mbufStats: mbuf_init has not run on this kernel');
  const byZone = new Map(umaZoneStats(k).map((z) => [z.zone, z]));
  const zone = (f: 'zone_mbuf' | 'zone_clust' | 'zone_pack' | 'zone_jumbop' | 'zone_jumbo9' | 'zone_jumbo16') => {
    const z = k.peekPtr(s.g + mbuf_globals[f]);
    return zoneFigures(z === 0 ? undefined : byZone.get(z));
  };
  const mb = zone('zone_mbuf');
  const cl = zone('zone_clust');
  const pk = zone('zone_pack');
  const jp = zone('zone_jumbop');
  const j9 = zone('zone_jumbo9');
  const j16 = zone('zone_jumbo16');
  const pkSize = mb.size; // the packet zone's items are the mbuf keg's
  const inuse = mb.count * mb.size + pk.count * pkSize + pk.count * cl.size + (cl.count - pk.count - pk.free) * cl.size
    + jp.count * jp.size + j9.count * j9.size + j16.count * j16.size;
  const incache = mb.free * mb.size + pk.free * mb.size + pk.free * cl.size + cl.free * cl.size
    + jp.free * jp.size + j9.free * j9.size + j16.free * j16.size;
  const st = s.g + mbuf_globals.mbstat;
  const zones: Record<string, NetstatMZone> = {
    [MBUF_MEM_NAME]: mb, [MBUF_CLUSTER_MEM_NAME]: cl, [MBUF_JUMBOP_MEM_NAME]: jp, [MBUF_JUMBO9_MEM_NAME]: j9, [MBUF_JUMBO16_MEM_NAME]: j16,
  };
  if (s.packetZone) zones[MBUF_PACKET_MEM_NAME] = pk;
  return {
    mbufs: { current: mb.count + pk.count, cache: mb.free + pk.free, total: mb.count + pk.count + mb.free + pk.free },
    clusters: { current: cl.count - pk.free, cache: cl.free + pk.free, total: cl.count + cl.free, max: cl.limit },
    packets: { current: pk.count, cache: pk.free },
    jumbop: { current: jp.count, cache: jp.free, total: jp.count + jp.free, max: jp.limit, sizeK: Math.floor(jp.size / 1024) },
    jumbo9: { current: j9.count, cache: j9.free, total: j9.count + j9.free, max: j9.limit },
    jumbo16: { current: j16.count, cache: j16.free, total: j16.count + j16.free, max: j16.limit },
    kbytes: { current: Math.floor(inuse / 1024), cache: Math.floor(incache / 1024), total: Math.floor((inuse + incache) / 1024) },
    denied: { mbufs: mb.failures, clusters: cl.failures, packets: pk.failures },
    jumboDenied: { jumbop: jp.failures, jumbo9: j9.failures, jumbo16: j16.failures },
    delayed: { mbufs: mb.sleeps, clusters: cl.sleeps, packets: pk.sleeps },
    jumboDelayed: { jumbop: jp.sleeps, jumbo9: j9.sleeps, jumbo16: j16.sleeps },
    sfbufs: { current: 0, peak: 0, max: 0 },
    sfbufsDenied: k.peek64(st + mbstat.sf_allocfail),
    sfbufsDelayed: k.peek64(st + mbstat.sf_allocwait),
    sendfileIO: k.peek64(st + mbstat.sf_iocnt),
    drains: k.peek64(st + mbstat.m_drain),
    zones,
  };
}

/** kern.ipc.nmbclusters, read functionally. */
export function nmbclusters(k: Kernel): number {
  const s = states.get(k);
  return s === undefined ? 0 : k.peek32(s.g + mbuf_globals.nmbclusters);
}

/** The mbstat counters (kern.ipc.mbstat), read functionally. */
export function mbstatCounters(k: Kernel): Record<string, number> {
  const s = states.get(k);
  if (s === undefined) throw new Error('mbstatCounters: mbuf_init has not run on this kernel');
  const st = s.g + mbuf_globals.mbstat;
  const out: Record<string, number> = {};
  for (const f of ['m_mbufs', 'm_mclusts', 'm_drain', 'm_mcfail', 'm_mpfail', 'm_msize', 'm_mclbytes', 'm_minclsize', 'm_mlen', 'm_mhlen', 'sf_iocnt', 'sf_allocfail', 'sf_allocwait'] as const) {
    out[f] = k.peek64(st + mbstat[f]);
  }
  out.m_numtypes = k.peek16(st + mbstat.m_numtypes);
  return out;
}

/**
 * `netstat -m` as FreeBSD 6's usr.bin/netstat/mbuf.c prints it; with `delayed`, also the
 * "delayed" lines of FreeBSD 9 (after the mbuf "denied" line, as there).
 */
export function netstat_m(k: Kernel, o: { delayed?: boolean } = {}): string {
  const f = mbufStats(k);
  const lines = [
    `${f.mbufs.current}/${f.mbufs.cache}/${f.mbufs.total} mbufs in use (current/cache/total)`,
    `${f.clusters.current}/${f.clusters.cache}/${f.clusters.total}/${f.clusters.max} mbuf clusters in use (current/cache/total/max)`,
    `${f.packets.current}/${f.packets.cache} mbuf+clusters out of packet secondary zone in use (current/cache)`,
    `${f.jumbop.current}/${f.jumbop.cache}/${f.jumbop.total}/${f.jumbop.max} ${f.jumbop.sizeK}k (page size) jumbo clusters in use (current/cache/total/max)`,
    `${f.jumbo9.current}/${f.jumbo9.cache}/${f.jumbo9.total}/${f.jumbo9.max} 9k jumbo clusters in use (current/cache/total/max)`,
    `${f.jumbo16.current}/${f.jumbo16.cache}/${f.jumbo16.total}/${f.jumbo16.max} 16k jumbo clusters in use (current/cache/total/max)`,
    `${f.kbytes.current}K/${f.kbytes.cache}K/${f.kbytes.total}K bytes allocated to network (current/cache/total)`,
    `${f.denied.mbufs}/${f.denied.clusters}/${f.denied.packets} requests for mbufs denied (mbufs/clusters/mbuf+clusters)`,
  ];
  if (o.delayed === true) {
    lines.push(
      `${f.delayed.mbufs}/${f.delayed.clusters}/${f.delayed.packets} requests for mbufs delayed (mbufs/clusters/mbuf+clusters)`,
      `${f.jumboDelayed.jumbop}/${f.jumboDelayed.jumbo9}/${f.jumboDelayed.jumbo16} requests for jumbo clusters delayed (${f.jumbop.sizeK}k/9k/16k)`,
    );
  }
  lines.push(
    `${f.jumboDenied.jumbop}/${f.jumboDenied.jumbo9}/${f.jumboDenied.jumbo16} requests for jumbo clusters denied (${f.jumbop.sizeK}k/9k/16k)`,
    `${f.sfbufs.current}/${f.sfbufs.peak}/${f.sfbufs.max} sfbufs in use (current/peak/max)`,
    `${f.sfbufsDenied} requests for sfbufs denied`,
    `${f.sfbufsDelayed} requests for sfbufs delayed`,
    `${f.sendfileIO} requests for I/O initiated by sendfile`,
    `${f.drains} calls to protocol drain routines`,
  );
  return lines.join('\n') + '\n';
}
