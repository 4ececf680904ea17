// The mbuf allocation API: m_get, m_gethdr, m_getcl, m_clget, m_getm, m_free, m_freem, and
// mb_free_ext with the reference-count protocol of mbuma.
//
// Models the inline allocators of FreeBSD sys/sys/mbuf.h and sys/kern/uipc_mbuf.c of 2004–2005
// (m_getm as v1.165). mb_free_ext is the 2004 follow-up to mbuma, whose commit log is in
// shared/seeds: the count is dropped with atomic_subtract_int (MEXT_REM_REF) and whoever then
// swings it from 0 back to 1 with atomic_cmpset_int frees the storage — a packet back to the
// packet zone whole, a cluster to the cluster zone — while every mbuf goes to the mbuf zone.
// Both are locked instructions on the emulated machine: two CPUs freeing the two mbufs of one
// cluster move the count's cache line between them, and exactly one frees the cluster.
// mb_dupcl (static upstream, m_copym's) shares a cluster, with MEXT_ADD_REF (atomic_add_int).
// Deviations:
// - Each outermost call ends with cpu.completeOp on its path: mbuf.get (m_get, m_gethdr),
//   mbuf.getcl, mbuf.clget, mbuf.getm, mbuf.free (m_free, m_freem), or mbuf.free_ext when storage
//   was released by mb_free_ext. UMA's own completeOp for the zone operation inside runs first,
//   so the operation is filed under the mbuf path and UMA's path still shows in the by-label
//   table.
// - Only cluster, jumbo and packet storage (no m_extadd, so no ext_free): another ext_type
//   panics as an unknown one would.
// - With packetZone: false (a what-if), m_getcl is m_get/m_gethdr and m_clget, freeing the mbuf
//   when no cluster can be had (as m_getjcl does).

import { type Cpu, type Task } from '../../emu/index.js';
import { type Kernel } from './kernel.js';
import { panic } from './panic.js';
import {
  EXT_CLUSTER, EXT_JUMBO16, EXT_JUMBO9, EXT_JUMBOP, EXT_PACKET, M_EXT, M_PKTHDR, MCLBYTES, MINCLSIZE, m_ext, mbuf,
} from './mbuf.js';
import { mbArgs, mbufState, mbZone } from './kern_mbuf.js';
import { uma_zalloc_arg, uma_zfree_arg } from '../vm/index.js';

type MbufLabel = 'mbuf.get' | 'mbuf.getcl' | 'mbuf.clget' | 'mbuf.getm' | 'mbuf.free' | 'mbuf.free_ext';

function opEnter(k: Kernel, cpu: Cpu, label: MbufLabel): void {
  const s = mbufState(k, cpu);
  const d = s.depth[cpu.id] ?? 0;
  const id = k.label[label];
  if (d === 0 || (label === 'mbuf.free_ext' && s.opLabel[cpu.id] === k.label['mbuf.free'])) s.opLabel[cpu.id] = id;
  s.depth[cpu.id] = d + 1;
  cpu.enter(id);
}

function opLeave(k: Kernel, cpu: Cpu): void {
  const s = mbufState(k, cpu);
  const d = s.depth[cpu.id]! - 1;
  s.depth[cpu.id] = d;
  if (d === 0) cpu.completeOp(s.opLabel[cpu.id]!);
  cpu.leave();
}

function* mballoc(k: Kernel, cpu: Cpu, how: number, type: number, flags: number): Task<number> {
  const s = mbufState(k, cpu);
  const args = mbArgs(k, cpu, flags, type);
  return yield* uma_zalloc_arg(k, cpu, mbZone(k, cpu, s, 'zone_mbuf'), args, how);
}

/** m_get: an mbuf of `type` from the mbuf zone; 0 when none can be had (M_DONTWAIT). */
export function* m_get(k: Kernel, cpu: Cpu, how: number, type: number): Task<number> {
  opEnter(k, cpu, 'mbuf.get');
  const m = yield* mballoc(k, cpu, how, type, 0);
  opLeave(k, cpu);
  return m;
}

/** m_gethdr: an mbuf with a packet header. */
export function* m_gethdr(k: Kernel, cpu: Cpu, how: number, type: number): Task<number> {
  opEnter(k, cpu, 'mbuf.get');
  const m = yield* mballoc(k, cpu, how, type, M_PKTHDR);
  opLeave(k, cpu);
  return m;
}

function* clget(k: Kernel, cpu: Cpu, m: number, how: number): Task {
  const s = mbufState(k, cpu);
  if ((cpu.load32(m + mbuf.m_flags) & M_EXT) !== 0) s.console.push(`m_clget: 0x${m.toString(16)} mbuf already has cluster`);
  cpu.storePtr(m + mbuf.m_ext + m_ext.ext_buf, 0);
  yield* uma_zalloc_arg(k, cpu, mbZone(k, cpu, s, 'zone_clust'), m, how);
}

/** m_clget: a cluster attached to m (M_EXT set), or m unchanged when none can be had. */
export function* m_clget(k: Kernel, cpu: Cpu, m: number, how: number): Task {
  opEnter(k, cpu, 'mbuf.clget');
  yield* clget(k, cpu, m, how);
  opLeave(k, cpu);
}

/**
 * m_getcl: an mbuf with a cluster attached, from the packet zone (flags: M_PKTHDR for a packet
 * header); 0 when none can be had.
 */
export function* m_getcl(k: Kernel, cpu: Cpu, how: number, type: number, flags: number): Task<number> {
  opEnter(k, cpu, 'mbuf.getcl');
  const s = mbufState(k, cpu);
  let m: number;
  if (s.packetZone) {
    const args = mbArgs(k, cpu, flags, type);
    m = yield* uma_zalloc_arg(k, cpu, mbZone(k, cpu, s, 'zone_pack'), args, how);
  } else {
    m = yield* mballoc(k, cpu, how, type, flags);
    if (m !== 0) {
      yield* clget(k, cpu, m, how);
      if ((cpu.load32(m + mbuf.m_flags) & M_EXT) === 0) {
        yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, s, 'zone_mbuf'), m, 0);
        m = 0;
      }
    }
  }
  opLeave(k, cpu);
  return m;
}

/**
 * mb_free_ext: drops m's reference to its storage; the CPU that takes the count from 0 to 1
 * frees the storage. A packet goes back to the packet zone whole; otherwise m goes to the mbuf
 * zone.
 */
export function* mb_free_ext(k: Kernel, cpu: Cpu, m: number): Task {
  opEnter(k, cpu, 'mbuf.free_ext');
  const s = mbufState(k, cpu);
  const e = m + mbuf.m_ext;
  const refcnt = cpu.loadPtr(e + m_ext.ref_cnt);
  if (refcnt === 0) panic(cpu, 'mb_free_ext: ref_cnt not set');
  yield* cpu.xadd32(refcnt, -1); // MEXT_REM_REF: atomic_subtract_int
  if ((yield* cpu.cmpxchg32(refcnt, 0, 1)) === 0) {
    const type = cpu.load32(e + m_ext.ext_type);
    const buf = cpu.loadPtr(e + m_ext.ext_buf);
    switch (type) {
      case EXT_PACKET:
        yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, s, 'zone_pack'), m, 0);
        opLeave(k, cpu);
        return;
      case EXT_CLUSTER:
        yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, s, 'zone_clust'), buf, 0);
        break;
      case EXT_JUMBOP:
        yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, s, 'zone_jumbop'), buf, 0);
        break;
      case EXT_JUMBO9:
        yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, s, 'zone_jumbo9'), buf, 0);
        break;
      case EXT_JUMBO16:
        yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, s, 'zone_jumbo16'), buf, 0);
        break;
      default:
        panic(cpu, `mb_free_ext: unknown ext_type ${type}`);
    }
    cpu.storePtr(e + m_ext.ext_buf, 0);
  }
  yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, s, 'zone_mbuf'), m, 0);
  opLeave(k, cpu);
}

/** m_free: frees one mbuf (and its storage, on the last reference); returns m_next. */
export function* m_free(k: Kernel, cpu: Cpu, m: number): Task<number> {
  opEnter(k, cpu, 'mbuf.free');
  const n = cpu.loadPtr(m + mbuf.m_next);
  if ((cpu.load32(m + mbuf.m_flags) & M_EXT) !== 0) yield* mb_free_ext(k, cpu, m);
  else yield* uma_zfree_arg(k, cpu, mbZone(k, cpu, mbufState(k, cpu), 'zone_mbuf'), m, 0);
  opLeave(k, cpu);
  return n;
}

/** m_freem: frees a chain (one operation). */
export function* m_freem(k: Kernel, cpu: Cpu, m: number): Task {
  opEnter(k, cpu, 'mbuf.free');
  while (m !== 0) m = yield* m_free(k, cpu, m);
  opLeave(k, cpu);
}

/**
 * m_getm: a chain with room for `len` bytes (clusters for each MCLBYTES, and for a remainder of
 * MINCLSIZE or more; an mbuf for a smaller one), appended to the chain m when m is not 0.
 * Returns the new chain's first mbuf, or 0 (having freed what it took) on failure.
 */
export function* m_getm(k: Kernel, cpu: Cpu, m: number, len: number, how: number, type: number): Task<number> {
  if (!Number.isInteger(len) || len < 0) panic(cpu, 'm_getm(): len is < 0');
  opEnter(k, cpu, 'mbuf.getm');
  let mtail = 0;
  if (m !== 0) for (mtail = m; cpu.loadPtr(mtail + mbuf.m_next) !== 0; mtail = cpu.loadPtr(mtail + mbuf.m_next));
  let num = Math.floor(len / MCLBYTES);
  const rem = len % MCLBYTES;
  let top = 0;
  let cur = 0;
  let ok = true;
  if (num > 0) {
    top = cur = yield* m_getcl(k, cpu, how, type, 0);
    if (top === 0) ok = false;
    else cpu.store32(top + mbuf.m_len, 0);
  }
  num--;
  for (let i = 0; ok && i < num; i++) {
    const mb = yield* m_getcl(k, cpu, how, type, 0);
    if (mb === 0) {
      ok = false;
      break;
    }
    cpu.store32(mb + mbuf.m_len, 0);
    cpu.storePtr(cur + mbuf.m_next, mb);
    cur = mb;
  }
  if (ok && rem > 0) {
    const mb = rem >= MINCLSIZE ? yield* m_getcl(k, cpu, how, type, 0) : yield* m_get(k, cpu, how, type);
    if (mb === 0) {
      ok = false;
    } else {
      cpu.store32(mb + mbuf.m_len, 0);
      if (cur === 0) top = mb;
      else cpu.storePtr(cur + mbuf.m_next, mb);
    }
  }
  if (!ok) {
    if (top !== 0) yield* m_freem(k, cpu, top);
    opLeave(k, cpu);
    return 0;
  }
  if (mtail !== 0) cpu.storePtr(mtail + mbuf.m_next, top);
  opLeave(k, cpu);
  return top;
}

/**
 * kmemu's, not upstream's: a chain of n plain mbufs (m_get each, linked by m_next), what
 * sosend's copy loop builds for data written in pieces smaller than MINCLSIZE; the trace
 * format's `chain:N`. Completes on mbuf.getm as m_getm does. Returns the first mbuf, or 0
 * (having freed what it took) when an m_get fails.
 */
export function* m_getchain(k: Kernel, cpu: Cpu, n: number, how: number, type: number): Task<number> {
  if (!Number.isInteger(n) || n < 1) panic(cpu, 'm_getchain(): n is < 1');
  opEnter(k, cpu, 'mbuf.getm');
  let top = 0;
  let cur = 0;
  for (let i = 0; i < n; i++) {
    const mb = yield* m_get(k, cpu, how, type);
    if (mb === 0) {
      if (top !== 0) yield* m_freem(k, cpu, top);
      opLeave(k, cpu);
      return 0;
    }
    if (cur === 0) top = mb;
    else cpu.storePtr(cur + mbuf.m_next, mb);
    cur = mb;
  }
  opLeave(k, cpu);
  return top;
}

/** mb_dupcl: n shares m's storage (MEXT_ADD_REF on the count), as m_copym does. */
export function* mb_dupcl(_k: Kernel, cpu: Cpu, n: number, m: number): Task {
  const me = m + mbuf.m_ext;
  const ne = n + mbuf.m_ext;
  const refcnt = cpu.loadPtr(me + m_ext.ref_cnt);
  yield* cpu.xadd32(refcnt, 1);
  cpu.storePtr(ne + m_ext.ext_buf, cpu.loadPtr(me + m_ext.ext_buf));
  cpu.storePtr(ne + m_ext.ext_free, cpu.loadPtr(me + m_ext.ext_free));
  cpu.storePtr(ne + m_ext.ext_args, cpu.loadPtr(me + m_ext.ext_args));
  cpu.store32(ne + m_ext.ext_size, cpu.load32(me + m_ext.ext_size));
  cpu.storePtr(ne + m_ext.ref_cnt, refcnt);
  cpu.store32(ne + m_ext.ext_type, cpu.load32(me + m_ext.ext_type));
  cpu.storePtr(n + mbuf.m_data, cpu.loadPtr(m + mbuf.m_data));
  cpu.store32(n + mbuf.m_flags, (cpu.load32(n + mbuf.m_flags) | M_EXT) >>> 0);
}
