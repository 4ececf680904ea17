// The replay report (schema kmemu.report/1): what a replay measured, as plain data, and its
// zod schema (the one definition: the types below are inferred from it, and
// docs/schemas/kmemu.report-1.schema.json is generated from it). Printing it is the CLI's
// business (tools/report.ts).

import { z } from 'zod';
import type { CounterSnapshot, Machine } from '../emu/index.js';
import type { Kernel } from '../kernel/index.js';
import type { ReplayAllocator } from './allocators.js';
import { Histogram } from './histogram.js';
import type { MbufTotals, OpTable, ReplayTotals, VmemTotals, WarmupTotals } from './replay.js';
import { netstatMSchema } from './netstat.js';
import type { NetstatM } from '../kernel/index.js';
import { replayRunSchema, type ReplayRun } from './run.js';
import { vmstatSchema } from './vmstat.js';

export const REPORT_SCHEMA = 'kmemu.report/1';

const count = (what: string) => z.number().int().min(0).describe(what);

export const pathStatsSchema = z
  .object({
    path: z.string().describe('the path label the operations completed on (zone.alloc.pcpu, uma.free.depot, vm_page.alloc, ...)'),
    ops: count('operations that completed on the path'),
    cycles: z
      .object({
        total: count('sum of their latencies (cycles)'),
        mean: z.number().min(0).describe('mean latency (cycles, two decimals)'),
        p50: count('median latency (cycles; exact below 4096 cycles, within 1.1% above)'),
        p99: count('99th percentile latency (cycles; exact below 4096 cycles, within 1.1% above)'),
        max: count('largest latency (cycles)'),
      })
      .describe('latencies of the operations, each timed on its CPU\'s clock from call to return, so a lock wait is in it'),
    l1dMisses: count('L1D read and write misses counted under the path label (the path\'s own code, not the whole operation)'),
    l2Misses: count('L2 read and write misses under the path label'),
    llcMisses: count('LLC misses under the path label'),
    tlbMisses: count('L1 DTLB misses under the path label'),
    walkCycles: count('page-walk cycles under the path label'),
    c2cTransfers: count('cache-to-cache transfers (dirty and clean) under the path label'),
    invalidations: count('invalidations sent under the path label'),
    spinCycles: count('cycles spent spinning on locks under the path label'),
  })
  .describe('one path an operation completed on, and the counters of its own code')
  .meta({ id: 'PathStats' });
export type PathStats = z.infer<typeof pathStatsSchema>;

const latencySchema = z
  .object({
    total: count('sum of their latencies (cycles)'),
    mean: z.number().min(0).describe('mean latency (cycles, two decimals)'),
    p50: count('median latency (cycles; exact below 4096 cycles, within 1.1% above)'),
    p99: count('99th percentile latency (cycles; exact below 4096 cycles, within 1.1% above)'),
    max: count('largest latency (cycles)'),
  })
  .describe('latencies of the operations, each timed on its CPU\'s clock from call to return, so a lock wait is in it');

export const vmemPathSchema = z
  .object({
    path: z.string().describe('the path the operations completed on: vmem.qcache (a quantum cache), vmem.xalloc (the arena\'s free lists), vmem.import (an import from the parent arena), vmem.xfree'),
    ops: count('operations that completed on the path'),
    cycles: latencySchema,
  })
  .describe('vmem operations of one kind (v or V) on one path');
export type VmemPathStats = z.infer<typeof vmemPathSchema>;

export const regionStatsSchema = z
  .object({
    label: z.string().describe('a path label with cycles, whether or not operations end there (vm_map.findspace, pmap.shootdown, consumer.touch, ...)'),
    cycles: count('cycles spent under the label'),
    l1dMisses: count('L1D misses under the label'),
    llcMisses: count('LLC misses under the label'),
    tlbMisses: count('L1 DTLB misses under the label'),
    c2cTransfers: count('cache-to-cache transfers under the label'),
    spinCycles: count('lock spin cycles under the label'),
    idleCycles: count('idle cycles under the label (waiting for causal order: replay.wait)'),
  })
  .describe('where the cycles went: one path label');
export type RegionStats = z.infer<typeof regionStatsSchema>;

export const replayReportSchema = z
  .object({
    schema: z.literal(REPORT_SCHEMA).describe('this document\'s schema and version'),
    run: replayRunSchema,
    trace: z
      .object({
        name: z.string().describe('the trace\'s name (its file\'s base name, "stdin", or what the caller gave)'),
        cpus: count('the CPUs the trace was recorded on (more than the machine\'s: folded, trace CPU c on machine CPU c mod N)'),
      })
      .describe('the trace and the CPUs it was recorded on'),
    machine: z
      .object({
        name: z.string().describe('the machine config\'s name'),
        cpus: count('CPUs of the machine'),
        clockGHz: z.number().positive().describe('clock rate (GHz), used only to print times'),
      })
      .describe('the machine'),
    allocator: z
      .object({
        name: z.string().describe('the allocator (vmzone or uma)'),
        perCpuCaching: z.boolean().describe('per-CPU caching on'),
        alignedPerCpu: z.boolean().describe('per-CPU state in cache-line-aligned slots'),
        touchLines: count('cache lines the consumer writes after each allocation'),
      })
      .describe('the allocator (run.allocator has every option)'),
    totals: z
      .object({
        events: count('events replayed (with a warm-up: in the window)'),
        allocations: count('allocations (zone, malloc, page and vmem; a failed vmem allocation is not one)'),
        frees: count('frees (zone, malloc, page and vmem)'),
        thinkCycles: count('think time of the trace (cycles)'),
        makespanCycles: count(
          'the largest CPU clock at the end (cycles), from the end of boot; with a warm-up, the longest CPU window (a CPU\'s end clock less its clock when its warm-up ended), so that operations over it are the steady-state rate of the CPUs at once',
        ),
        allocatorCycles: count('sum of every operation\'s latency (cycles)'),
        allocatorOps: count('operations timed'),
        memory: z
          .object({
            pages: count('pages the allocator took from the VM and holds at the end'),
            cachedFreeItems: count('free items cached by the allocator at the end'),
          })
          .describe('memory held by the allocator at the end (the end state: the same with or without a warm-up)'),
        warmup: z
          .object({
            events: count('events of the warm-up (run.warmup per CPU, or all of a CPU\'s when it had fewer)'),
            allocations: count('allocations of the warm-up'),
            frees: count('frees of the warm-up'),
            thinkCycles: count('think time of the warm-up (cycles)'),
            allocatorOps: count('operations timed in the warm-up'),
            allocatorCycles: count('sum of their latencies (cycles)'),
          })
          .optional()
          .describe('with run.warmup: what the warm-up ran, left out of every other figure of the report'),
      })
      .describe(
        'the whole run from the end of boot; with run.warmup N, the measured window: each CPU\'s starts when it has finished its N-th event (a CPU with N events or fewer has none), ' +
          'and every figure of the report but the end state (memory, vmem.arenas, netstat, vmstat) is the windows\': counters are each CPU\'s end less its value at its window\'s start, and only operations, events and think time of events after a CPU\'s N-th are counted',
      ),
    paths: z.array(pathStatsSchema).describe('one row per path an operation completed on, costliest first'),
    zones: z
      .array(
        z.object({
          zone: z.string().describe('the zone, malloc size class or "pages"'),
          ops: count('operations on it'),
          cycles: count('their cycles'),
          paths: z.array(pathStatsSchema).describe('the path rows restricted to this zone\'s operations'),
        }),
      )
      .describe('per zone (or malloc size class, "pages"), costliest first'),
    regions: z.array(regionStatsSchema).describe('where the cycles went: every path label with cycles, costliest first'),
    cpus: z
      .array(
        z.object({
          cpu: count('the CPU'),
          busyCycles: count('cycles neither idle nor spinning'),
          spinCycles: count('cycles spinning on locks'),
          idleCycles: count('idle cycles'),
        }),
      )
      .describe('per CPU'),
    vmstat: vmstatSchema.optional().describe('with --vmstat: the kernel\'s own allocator statistics at the end of the run'),
    vmem: z
      .object({
        arenas: count('arenas the trace created'),
        allocs: z.array(vmemPathSchema).describe('the v events (vmem_alloc, vmem_xalloc) by the path they completed on, costliest first'),
        frees: z.array(vmemPathSchema).describe('the V events (vmem_free, vmem_xfree) by path, costliest first'),
        failures: count('v events that failed (ENOMEM), not counted as allocations'),
        skippedFrees: count('V events of objects whose v failed, skipped'),
      })
      .optional()
      .describe('format-version-2 traces with arenas: vmem\'s allocations and frees apart, by path (the paths table mixes them: a quantum-cache hit and a quantum-cache free both end on vmem.qcache)'),
    mbuf: z
      .object({
        packetZone: z.boolean().describe('whether m_getcl took packets from the packet zone (false: --no-packet-zone, an mbuf and a cluster from their own zones)'),
        allocs: z.array(vmemPathSchema).describe('the b events (m_get, m_gethdr, m_getcl, chains) by the path they completed on, costliest first'),
        frees: z.array(vmemPathSchema).describe('the B events (m_freem) by path, costliest first'),
        failures: count('b events that failed (M_DONTWAIT: the cluster limit or no memory), not counted as allocations'),
        skippedFrees: count('B events of objects whose b failed, skipped'),
        netstat: netstatMSchema.describe('netstat -m at the end of the run'),
      })
      .optional()
      .describe('format-version-2 traces with mbuf events: their allocations and frees by path, and netstat -m'),
  })
  .describe('a replay: what each allocation cost, by path, zone, label and CPU');
export type ReplayReport = z.infer<typeof replayReportSchema>;

function counters(s: CounterSnapshot, label: string, context?: string) {
  const t = (name: Parameters<CounterSnapshot['total']>[0]) => s.total(name, label, context);
  return {
    l1dMisses: t('l1d.readMiss') + t('l1d.writeMiss'),
    l2Misses: t('l2.readMiss') + t('l2.writeMiss'),
    llcMisses: t('llc.miss'),
    tlbMisses: t('tlb.l1Miss'),
    walkCycles: t('tlb.walkCycles'),
    c2cTransfers: t('coherence.c2cTransfer') + t('coherence.c2cClean'),
    invalidations: t('coherence.invalidationSent'),
    spinCycles: t('lock.spinCycles'),
  };
}

function pathStats(path: string, h: Histogram, s: CounterSnapshot, context?: string): PathStats {
  return {
    path,
    ops: h.count,
    cycles: { total: h.total, mean: Math.round(h.mean * 100) / 100, p50: h.quantile(0.5), p99: h.quantile(0.99), max: h.max },
    ...counters(s, path, context),
  };
}

export interface ReportInput {
  machine: Machine;
  kernel: Kernel;
  allocator: ReplayAllocator;
  options: { pcpu: boolean; aligned: boolean; touch: number };
  run: ReplayRun;
  traceName: string;
  traceCpus: number;
  totals: ReplayTotals;
  /** With a warm-up: what it ran, left out of the rest. */
  warmup?: WarmupTotals;
  /** The window's makespan (cycles): the latest end clock less the earliest window start. */
  makespanCycles: number;
  ops: OpTable;
  counters: CounterSnapshot;
  zoneNames: string[];
  vmem?: VmemTotals | undefined;
  mbuf?: { totals: MbufTotals; netstat: NetstatM } | undefined;
}

function vmemRows(t: OpTable): VmemPathStats[] {
  const byPath = new Map<string, Histogram>();
  for (const e of t.byKey.values()) {
    const h = byPath.get(e.path) ?? new Histogram();
    h.merge(e.hist);
    byPath.set(e.path, h);
  }
  return [...byPath]
    .map(([path, h]) => ({
      path,
      ops: h.count,
      cycles: { total: h.total, mean: Math.round(h.mean * 100) / 100, p50: h.quantile(0.5), p99: h.quantile(0.99), max: h.max },
    }))
    .sort((a, b) => b.cycles.total - a.cycles.total || a.path.localeCompare(b.path));
}

export function buildReport(r: ReportInput): ReplayReport {
  const s = r.counters;
  const byPath = new Map<string, Histogram>();
  const byZone = new Map<string, Map<string, Histogram>>();
  for (const e of r.ops.byKey.values()) {
    const h = byPath.get(e.path) ?? new Histogram();
    h.merge(e.hist);
    byPath.set(e.path, h);
    const z = byZone.get(e.context) ?? new Map<string, Histogram>();
    z.set(e.path, e.hist);
    byZone.set(e.context, z);
  }
  const sortPaths = (a: PathStats, b: PathStats) => b.cycles.total - a.cycles.total || a.path.localeCompare(b.path);
  const paths = [...byPath].map(([p, h]) => pathStats(p, h, s)).sort(sortPaths);
  const zones = [...byZone].map(([zone, m]) => {
    const rows = [...m].map(([p, h]) => pathStats(p, h, s, zone)).sort(sortPaths);
    return { zone, ops: rows.reduce((n, x) => n + x.ops, 0), cycles: rows.reduce((n, x) => n + x.cycles.total, 0), paths: rows };
  });
  zones.sort((a, b) => b.cycles - a.cycles || a.zone.localeCompare(b.zone));
  const regions: RegionStats[] = s.labels
    .map((label) => {
      const c = counters(s, label);
      return {
        label,
        cycles: s.total('cycles', label),
        l1dMisses: c.l1dMisses,
        llcMisses: c.llcMisses,
        tlbMisses: c.tlbMisses,
        c2cTransfers: c.c2cTransfers,
        spinCycles: c.spinCycles,
        idleCycles: s.total('idleCycles', label),
      };
    })
    .filter((x) => x.cycles > 0)
    .sort((a, b) => b.cycles - a.cycles || a.label.localeCompare(b.label));
  const cpus = s.clocks.map((cycles, cpu) => {
    const idle = s.get(cpu, 'idleCycles');
    const spin = s.get(cpu, 'lock.spinCycles');
    return { cpu, busyCycles: cycles - idle - spin, spinCycles: spin, idleCycles: idle };
  });
  const cfg = r.machine.config;
  return {
    schema: REPORT_SCHEMA,
    run: r.run,
    trace: { name: r.traceName, cpus: r.traceCpus },
    machine: { name: cfg.name, cpus: cfg.cpus, clockGHz: cfg.clockGHz },
    allocator: { name: r.allocator.name, perCpuCaching: r.options.pcpu, alignedPerCpu: r.options.aligned, touchLines: r.options.touch },
    totals: {
      events: r.totals.events,
      allocations: r.totals.allocations,
      frees: r.totals.frees,
      thinkCycles: r.totals.thinkCycles,
      makespanCycles: r.makespanCycles,
      allocatorCycles: paths.reduce((n, p) => n + p.cycles.total, 0),
      allocatorOps: paths.reduce((n, p) => n + p.ops, 0),
      memory: r.allocator.memory(),
      ...(r.warmup === undefined ? {} : { warmup: { ...r.warmup } }),
    },
    paths,
    zones,
    regions,
    cpus,
    ...(r.vmem === undefined
      ? {}
      : { vmem: { arenas: r.vmem.arenas, allocs: vmemRows(r.vmem.allocs), frees: vmemRows(r.vmem.frees), failures: r.vmem.failures, skippedFrees: r.vmem.skippedFrees } }),
    ...(r.mbuf === undefined
      ? {}
      : {
        mbuf: {
          packetZone: r.mbuf.totals.packetZone, allocs: vmemRows(r.mbuf.totals.allocs), frees: vmemRows(r.mbuf.totals.frees),
          failures: r.mbuf.totals.failures, skippedFrees: r.mbuf.totals.skippedFrees, netstat: r.mbuf.netstat,
        },
      }),
  };
}
