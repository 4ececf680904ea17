// What the report's words mean, and why a comparison came out as it did: the glossary of path
// labels and columns that the tables print as a legend, and the paragraph under a comparison
// that says where the cycles went. Every sentence is derived from the two reports' figures; the
// glossary only names what a label's code does and which lock it takes there.

import type { RegionStats, ReplayReport } from '../traces/index.js';
import { formatInt } from './format.js';

interface LabelInfo {
  /** What the code under the label does, as a phrase. */
  what: string;
  /** The lock a CPU spins on under this label, when there is one. */
  lock?: string;
}

/** Path labels: the kernel's (kernel/*.ts `cpu.enter`) and the replay driver's. */
export const LABELS: Readonly<Record<string, LabelInfo>> = {
  'zone.alloc.pcpu': { what: "zalloc from the CPU's own free list, no lock" },
  'zone.free.pcpu': { what: "zfree to the CPU's own free list, no lock" },
  'zone.alloc.locked': { what: 'zalloc from the zone list under the zone spinlock', lock: 'the zone spinlock' },
  'zone.free.locked': { what: 'zfree to the zone list under the zone spinlock', lock: 'the zone spinlock' },
  'zone.alloc.zget': { what: 'zget: new pages for a zone whose list is empty', lock: 'the zone spinlock' },
  'zone.create': { what: 'creating a zone the trace names (zinit; uma_zcreate)', lock: 'the VM token (vm_zone) or uma_mtx (UMA)' },
  'uma.alloc.cpucache': { what: "uma_zalloc from the CPU's alloc bucket, in a critical section" },
  'uma.free.cpucache': { what: "uma_zfree to the CPU's free bucket, in a critical section" },
  'uma.alloc.depot': { what: 'a full bucket from the zone depot under the zone lock', lock: 'the zone lock' },
  'uma.free.depot': { what: 'a full bucket to the zone depot under the zone lock', lock: 'the zone lock' },
  'uma.alloc.slab': { what: 'an item straight from a slab under the zone (keg) lock', lock: 'the zone (keg) lock' },
  'uma.free.slab': { what: 'an item straight back to its slab under the zone (keg) lock', lock: 'the zone (keg) lock' },
  'uma.alloc.backend': { what: 'new slab pages for a keg (page_alloc)', lock: 'the zone (keg) lock' },
  'uma.free.backend': { what: 'slab pages returned to the VM' },
  'uma.reclaim': { what: 'the working-set reclaim of free buckets and slabs', lock: 'the zone (keg) lock' },
  'uma.startup': { what: 'UMA bootstrap' },
  'kmem.alloc': { what: 'kmem_alloc: kernel_map space and wired pages', lock: 'the kernel_map lock and the VM token' },
  'kmem.free': { what: 'kmem_free', lock: 'the kernel_map lock and the VM token' },
  'kmem.suballoc': { what: 'kmem_suballoc of a submap' },
  'vm_page.alloc': { what: 'vm_page_alloc from the free queues under the VM token', lock: 'the VM token' },
  'vm_page.free': { what: 'vm_page_free to the free queues under the VM token', lock: 'the VM token' },
  'vm_page.zero': { what: 'zeroing a newly allocated page' },
  'vm_map.findspace': { what: 'vm_map_findspace: a free range in a map' },
  'vm_map.insert': { what: 'vm_map_insert of a map entry' },
  'vm_map.delete': { what: 'vm_map_delete of map entries' },
  'vm_map.lookup': { what: 'vm_map_lookup_entry' },
  'vm_map.wire': { what: 'wiring a range of a map' },
  'pmap.enter': { what: 'pmap_enter / kenter: a page-table entry' },
  'pmap.remove': { what: 'pmap_remove / kremove of page-table entries' },
  'pmap.shootdown': { what: 'a TLB shootdown: IPIs and waiting for every acknowledgement' },
  'pmap.growkernel': { what: 'pmap_growkernel: page-table pages for new kernel space' },
  'vmem.qcache': { what: "vmem_alloc / vmem_free served by the arena's quantum cache (a UMA zone), no arena lock" },
  'vmem.xalloc': { what: "vmem_xalloc from the arena's free lists (instant, best or next fit), under the arena lock", lock: 'the arena lock' },
  'vmem.import': { what: 'vmem_xalloc that imported a span from its parent arena', lock: 'the arena locks' },
  'vmem.xfree': { what: 'vmem_xfree: the busy-tag hash lookup and coalescing, under the arena lock', lock: 'the arena lock' },
  'arena.create': { what: 'creating an arena the trace names (vmem_create; vmem_startup for the first)' },
  'replay.wait': { what: "a CPU idle until an object another CPU allocates exists, as the trace's causal order demands" },
  'consumer.touch': { what: 'the consumer writing and reading the object (--touch)' },
  think: { what: "the trace's think time" },
  alloc: { what: "an allocation's own code outside the labelled paths (malloc's size-class lookup, the call)" },
  free: { what: "a free's own code outside the labelled paths" },
  other: { what: 'every other label, summed' },
};

/** The columns and words the tables use. */
const COLUMNS: readonly [string, string][] = [
  ['ops', 'operations that completed on the path'],
  ['mean, p50, p99', "an operation's cycles on its CPU's clock, call to return (lock waits included)"],
  ['L1D / LLC miss', 'data-cache misses at the first and the last level'],
  ['TLB miss', 'L1 DTLB misses; walk cyc: cycles of the page walks they caused'],
  ['c2c', 'cache-to-cache transfers: a line supplied by another CPU\'s cache, not by the LLC or DRAM'],
  ['spin cyc', 'cycles a CPU spun waiting for a lock another CPU held'],
  ['idle cyc', 'cycles a CPU had nothing to run (waiting for causal order, or done)'],
  ['share', "a label's part of all cycles of the run"],
];

/** The legend under a table: the columns, then the meaning of each label shown. */
export function legend(labels: readonly string[]): string {
  const rows: [string, string][] = [...COLUMNS];
  for (const l of labels) {
    const info = LABELS[l];
    if (info !== undefined) rows.push([l, info.what]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  return ['legend:', ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
}

/** The labels whose cost per-CPU caching changes: the cached paths and the locked ones they replace. */
function cachingPath(label: string): boolean {
  return /^(zone\.(alloc|free)\.(pcpu|locked)|uma\.(alloc|free)\.(cpucache|depot|slab))$/.test(label);
}

const pct = (x: number, total: number) => `${((100 * x) / Math.max(1, total)).toFixed(1)}%`;
const int = formatInt;
const sum = (rs: readonly RegionStats[], f: (r: RegionStats) => number) => rs.reduce((n, r) => n + f(r), 0);

function describe(label: string): string {
  return LABELS[label]?.what ?? label;
}

/** The lock on which most spin cycles were counted (labels that spin on one lock summed), and where. */
function spinSite(r: ReplayReport): { lock: string; labels: string[]; share: string } | undefined {
  const total = sum(r.regions, (x) => x.spinCycles);
  if (total === 0) return undefined;
  const byLock = new Map<string, { cycles: number; labels: [string, number][] }>();
  for (const x of r.regions) {
    if (x.spinCycles === 0) continue;
    const lock = LABELS[x.label]?.lock ?? `the lock taken under ${x.label}`;
    const e = byLock.get(lock) ?? { cycles: 0, labels: [] };
    e.cycles += x.spinCycles;
    e.labels.push([x.label, x.spinCycles]);
    byLock.set(lock, e);
  }
  const [lock, top] = [...byLock].sort(([l1, x], [l2, y]) => y.cycles - x.cycles || (l1 < l2 ? -1 : 1))[0]!;
  const labels = top.labels.sort(([l1, x], [l2, y]) => y - x || (l1 < l2 ? -1 : 1)).map(([l]) => l);
  return { lock, labels, share: pct(top.cycles, total) };
}

function zgets(r: ReplayReport): number {
  return r.paths.filter((p) => p.path === 'zone.alloc.zget' || p.path === 'uma.alloc.backend').reduce((n, p) => n + p.ops, 0);
}

/**
 * Why per-CPU caching did or did not pay on this trace, in a paragraph: the verdict, how much of
 * the run the paths it changes take, where the rest went, how the memory it holds moved page
 * allocation, and where the spinning happened in each run.
 */
export function explainCompare(a: ReplayReport, b: ReplayReport): string {
  const perOp = (r: ReplayReport) => r.totals.allocatorCycles / Math.max(1, r.totals.allocatorOps);
  const ratio = perOp(b) / perOp(a);
  const s: string[] = [];
  const costs = `${perOp(a).toFixed(1)} cycles per operation with per-CPU caching, ${perOp(b).toFixed(1)} without`;
  if (ratio >= 1.25) s.push(`Per-CPU caching makes an allocator operation ${ratio.toFixed(2)}× cheaper here (${costs}).`);
  else if (ratio <= 0.8) s.push(`Per-CPU caching makes an allocator operation ${(1 / ratio).toFixed(2)}× dearer here (${costs}).`);
  else s.push(`Per-CPU caching changes the cost of an allocator operation little here (${costs}: ${ratio.toFixed(2)}×).`);

  const totalA = sum(a.regions, (x) => x.cycles);
  const totalB = sum(b.regions, (x) => x.cycles);
  const cachedA = sum(a.regions.filter((x) => cachingPath(x.label)), (x) => x.cycles);
  const cachedB = sum(b.regions.filter((x) => cachingPath(x.label)), (x) => x.cycles);
  s.push(`The paths it changes take ${pct(cachedA, totalA)} of the cycles with it and ${pct(cachedB, totalB)} without.`);
  const rest = a.regions.filter((x) => !cachingPath(x.label) && x.cycles * 50 >= totalA).slice(0, 3);
  if (cachedB * 2 < totalB && rest.length > 0) {
    s.push(`Most of the run is elsewhere: ${rest.map((x) => `${pct(x.cycles, totalA)} ${describe(x.label)} (${x.label})`).join(', ')}.`);
  }

  const lockless = a.regions.filter((x) => /\.(pcpu|cpucache)$/.test(x.label));
  const sharedLines = sum(lockless, (x) => x.c2cTransfers);
  const opsA = Math.max(1, a.totals.allocatorOps);
  if (sharedLines * 10 >= opsA) {
    s.push(
      `The per-CPU paths take no lock, yet they caused ${int(sharedLines)} cache-to-cache transfers (${(sharedLines / opsA).toFixed(2)} per operation): ` +
        `lines shared by several CPUs' per-CPU state or by the zone header${a.allocator.alignedPerCpu ? '' : ' (false sharing; --aligned gives each CPU its own lines)'}.`,
    );
  }

  const za = zgets(a);
  const zb = zgets(b);
  const pa = a.totals.memory.pages;
  const pb = b.totals.memory.pages;
  if (Math.abs(za - zb) * 10 > Math.max(za, zb) && Math.abs(pa - pb) >= 16) {
    s.push(
      `Items parked on per-CPU caches (${int(a.totals.memory.cachedFreeItems)} at the end) made the zones grow ${int(za)} times instead of ${int(zb)}, ` +
        `holding ${int(pa)} pages instead of ${int(pb)}: ${pa > pb ? 'more' : 'less'} page allocation, under the VM token.`,
    );
  }

  const sa = spinSite(a);
  const sb = spinSite(b);
  const spinA = sum(a.regions, (x) => x.spinCycles);
  const spinB = sum(b.regions, (x) => x.spinCycles);
  if (sa === undefined && sb === undefined) s.push('No CPU spun on a lock in either run.');
  else {
    const where = (x: typeof sa) => (x === undefined ? '' : `, ${x.share} of it on ${x.lock} (${x.labels.join(', ')})`);
    s.push(`Spin: ${int(spinA)} cycles with per-CPU caching${where(sa)}; ${int(spinB)} without${where(sb)}.`);
    if (sa !== undefined && sb !== undefined && sa.lock !== sb.lock) s.push(`Turning the caches off moved the spinning from ${sa.lock} to ${sb.lock}.`);
  }
  return wrap(s.join(' '), 100);
}

/** `text` broken into lines of at most `width` columns at spaces. */
export function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}
