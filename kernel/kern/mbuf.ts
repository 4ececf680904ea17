// Network buffers: struct mbuf and its constants, LP64, as they live in emulated memory.
//
// Models FreeBSD sys/sys/mbuf.h of 2004–2006 (mbuma; $FreeBSD: mbuf.h,v 1.189 for the names
// of the zones and the jumbo sizes): struct m_hdr, pkthdr, m_ext (with the ref_cnt pointer of
// mbuma), struct mbuf with its unions, struct mb_args and struct mbstat; MSIZE and MCLBYTES of
// sys/param.h. Deviations: struct mbuf's unions are field offsets (m_dat, m_pktdat, m_ext) on
// one layout; MLEN, MHLEN and MINCLSIZE follow from it as upstream's sizeof expressions do.

import { struct } from './struct.js';

/** sys/param.h: bytes of an mbuf, a power of two (dtom masks with it). */
export const MSIZE = 256;
/** sys/param.h: bytes of a cluster (MCLSHIFT 11). */
export const MCLBYTES = 2048;
/** Jumbo clusters (mbuf.h of 2006): a page, 9 KiB and 16 KiB. */
export const MJUMPAGESIZE = 4096;
export const MJUM9BYTES = 9 * 1024;
export const MJUM16BYTES = 16 * 1024;

/** struct m_hdr: 40 bytes on amd64. */
export const m_hdr = struct('m_hdr', [
  ['mh_next', 'ptr'],
  ['mh_nextpkt', 'ptr'],
  ['mh_data', 'ptr'],
  ['mh_len', 'u32'],
  ['mh_flags', 'u32'],
  ['mh_type', 'u16'],
]);

/** struct pkthdr (M_PKTHDR): 40 bytes on amd64. */
export const pkthdr = struct('pkthdr', [
  ['rcvif', 'ptr'],
  ['len', 'u32'],
  ['header', 'ptr'],
  ['csum_flags', 'u32'],
  ['csum_data', 'u32'],
  ['tags', 'ptr'], // SLIST_HEAD(packet_tags, m_tag)
]);

/** struct m_ext (M_EXT): 48 bytes on amd64. */
export const m_ext = struct('m_ext', [
  ['ext_buf', 'ptr'],
  ['ext_free', 'ptr'],
  ['ext_args', 'ptr'],
  ['ext_size', 'u32'],
  ['ref_cnt', 'ptr'],
  ['ext_type', 'u32'],
]);

/** Data bytes of a plain mbuf: MSIZE - sizeof(struct m_hdr). */
export const MLEN = MSIZE - m_hdr.sizeof;
/** Data bytes of a packet-header mbuf: MLEN - sizeof(struct pkthdr). */
export const MHLEN = MLEN - pkthdr.sizeof;
/** The smallest amount of data put in a cluster. */
export const MINCLSIZE = MHLEN + 1;

/** struct mbuf's fields: m_hdr's, and the offsets of M_dat's union members. */
export const mbuf = Object.freeze({
  m_next: m_hdr.mh_next,
  m_nextpkt: m_hdr.mh_nextpkt,
  m_data: m_hdr.mh_data,
  m_len: m_hdr.mh_len,
  m_flags: m_hdr.mh_flags,
  m_type: m_hdr.mh_type,
  /** M_dat.M_databuf: MLEN bytes (neither M_PKTHDR nor M_EXT). */
  m_dat: m_hdr.sizeof,
  /** M_dat.MH.MH_pkthdr. */
  m_pkthdr: m_hdr.sizeof,
  /** M_dat.MH.MH_dat.MH_ext. */
  m_ext: m_hdr.sizeof + pkthdr.sizeof,
  /** M_dat.MH.MH_dat.MH_databuf: MHLEN bytes. */
  m_pktdat: m_hdr.sizeof + pkthdr.sizeof,
  sizeof: MSIZE,
});

// m_flags
export const M_EXT = 0x0001;
export const M_PKTHDR = 0x0002;
export const M_EOR = 0x0004;
export const M_RDONLY = 0x0008;

// ext_type
export const EXT_CLUSTER = 1;
export const EXT_SFBUF = 2;
export const EXT_JUMBOP = 3;
export const EXT_JUMBO9 = 4;
export const EXT_JUMBO16 = 5;
export const EXT_PACKET = 6;
export const EXT_NET_DRV = 100;
export const EXT_MOD_TYPE = 200;
export const EXT_DISPOSABLE = 300;
export const EXT_EXTREF = 400;

// m_type
export const MT_NOTMBUF = 0;
export const MT_DATA = 1;
export const MT_HEADER = MT_DATA;
export const MT_SONAME = 8;
export const MT_CONTROL = 14;
export const MT_OOBDATA = 15;
export const MT_NTYPES = 16;
/** Not a type: allocate the mbuf without initializing it. */
export const MT_NOINIT = 255;

/** M_DONTWAIT is M_NOWAIT and M_TRYWAIT is M_WAITOK (sys/malloc.h's values). */
export const M_DONTWAIT = 0x0001;
export const M_TRYWAIT = 0x0002;
export const M_WAIT = M_TRYWAIT;

/** UMA zone names (MBUF_*_MEM_NAME), as libmemstat and netstat -m look them up. */
export const MBUF_MEM_NAME = 'mbuf';
export const MBUF_CLUSTER_MEM_NAME = 'mbuf_cluster';
export const MBUF_PACKET_MEM_NAME = 'mbuf_packet';
export const MBUF_JUMBOP_MEM_NAME = 'mbuf_jumbo_pagesize';
export const MBUF_JUMBO9_MEM_NAME = 'mbuf_jumbo_9k';
export const MBUF_JUMBO16_MEM_NAME = 'mbuf_jumbo_16k';

/** struct mb_args: what m_get and friends pass the mbuf and packet ctors. */
export const mb_args = struct('mb_args', [
  ['flags', 'u32'],
  ['type', 'u16'],
]);

/** struct mbstat (u_long counters; m_numtypes a short). */
export const mbstat = struct('mbstat', [
  ['m_mbufs', 'u64'],
  ['m_mclusts', 'u64'],
  ['m_drain', 'u64'],
  ['m_mcfail', 'u64'],
  ['m_mpfail', 'u64'],
  ['m_msize', 'u64'],
  ['m_mclbytes', 'u64'],
  ['m_minclsize', 'u64'],
  ['m_mlen', 'u64'],
  ['m_mhlen', 'u64'],
  ['m_numtypes', 'u16'],
  ['sf_iocnt', 'u64'],
  ['sf_allocfail', 'u64'],
  ['sf_allocwait', 'u64'],
]);
