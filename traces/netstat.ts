// netstat -m as data: the figures kernel/kern/kern_mbuf.ts's mbufStats computes (as FreeBSD's
// usr.bin/netstat/mbuf.c does from libmemstat's), and the zod schema a report or tool validates
// them with.

import { z } from 'zod';
import { type NetstatM } from '../kernel/index.js';

const n = (what: string) => z.number().int().nonnegative().describe(what);
const ccT = (what: string) => z.object({ current: n(`${what} in use`), cache: n(`${what} free in the caches`), total: n('current + cache') });
const ccTM = (what: string) => ccT(what).extend({ max: n('the zone\'s limit (0: none)') });

export const netstatMZoneSchema = z
  .object({
    count: n('memstat_get_count: items allocated and not freed'),
    free: n('memstat_get_free: free items in the caches (and the keg, for a primary zone)'),
    failures: n('memstat_get_failures: allocations that failed'),
    sleeps: n('memstat_get_sleeps: allocations that slept at the zone\'s limit'),
    limit: n('memstat_get_countlimit: the most items the zone may hold (0: no limit)'),
    size: n('memstat_get_size: item size (bytes)'),
  })
  .describe('one mbuf zone as libmemstat reports it');

export const netstatMSchema = z
  .object({
    mbufs: ccT('mbufs (plain and in packets)').describe('mbufs in use (current/cache/total)'),
    clusters: ccTM('clusters').describe('mbuf clusters in use (current/cache/total/max)'),
    packets: z.object({ current: n('packets in use'), cache: n('packets free in the packet zone\'s caches') })
      .describe('mbuf+clusters out of packet secondary zone in use (current/cache)'),
    jumbop: ccTM('page-size jumbo clusters').extend({ sizeK: n('their size (KiB)') }),
    jumbo9: ccTM('9k jumbo clusters'),
    jumbo16: ccTM('16k jumbo clusters'),
    kbytes: ccT('KiB of network memory').describe('bytes allocated to network (current/cache/total), KiB rounded down'),
    denied: z.object({ mbufs: n('mbuf zone failures'), clusters: n('cluster zone failures'), packets: n('packet zone failures') })
      .describe('requests for mbufs denied (mbufs/clusters/mbuf+clusters)'),
    jumboDenied: z.object({ jumbop: n('page-size'), jumbo9: n('9k'), jumbo16: n('16k') }).describe('requests for jumbo clusters denied'),
    delayed: z.object({ mbufs: n('mbuf zone sleeps'), clusters: n('cluster zone sleeps'), packets: n('packet zone sleeps') })
      .describe('requests for mbufs delayed (FreeBSD 9\'s line)'),
    jumboDelayed: z.object({ jumbop: n('page-size'), jumbo9: n('9k'), jumbo16: n('16k') }).describe('requests for jumbo clusters delayed'),
    sfbufs: z.object({ current: n('in use'), peak: n('peak'), max: n('max') }).describe('sfbufs in use (current/peak/max)'),
    sfbufsDenied: n('requests for sfbufs denied'),
    sfbufsDelayed: n('requests for sfbufs delayed'),
    sendfileIO: n('requests for I/O initiated by sendfile'),
    drains: n('calls to protocol drain routines'),
    zones: z.record(z.string(), netstatMZoneSchema).describe('the mbuf zones by name (mbuf, mbuf_cluster, mbuf_packet, mbuf_jumbo_*)'),
  })
  .describe('netstat -m');

/** A compile-time check that the schema and the kernel's interface agree. */
export const netstatMCheck = (m: NetstatM): z.infer<typeof netstatMSchema> => m;
