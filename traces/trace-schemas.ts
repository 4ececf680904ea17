// The zod schemas of the trace documents: kmemu.trace-import/1 (importLinuxKmem's summary,
// `kmemu trace import --json`) and kmemu.trace-stats/1 (`kmemu trace stats --json`). The one
// definition: docs/schemas/ is generated from them (tools/schemas.ts) and
// test/tools/schemas.test.ts checks that the TypeScript types agree with them.

import { z } from 'zod';
import { importRunSchema, traceStatsRunSchema } from './run.js';

const count = (what: string) => z.number().int().min(0).describe(what);
const byName = (what: string) => z.record(z.string(), z.number().int().min(0)).describe(what);

/** The fields of TraceStats.summary(). */
export const traceStatsSummaryShape = {
  events: count('events'),
  byOp: byName('events by op word (zone, a, f, m, x, P, Q, t; version 2 adds arena, v, V, b, B), every op of the trace\'s version present'),
  cpus: z
    .array(z.object({ cpu: count('the trace CPU'), events: count('its events'), allocs: count('its allocations'), frees: count('its frees') }))
    .describe('CPUs with at least one event, in order'),
  zones: z
    .array(
      z.object({
        id: count('the zone id'),
        name: z.string().describe('the zone name'),
        size: count('item size (bytes)'),
        allocs: count('allocations from it'),
        frees: count('frees to it'),
      }),
    )
    .describe('zones in order of creation'),
  arenas: z
    .array(
      z.object({
        id: count('the arena id'),
        name: z.string().describe('the arena name'),
        quantum: count('its quantum (bytes)'),
        allocs: count('v events on it'),
        frees: count('V events of its objects'),
      }),
    )
    .optional()
    .describe('version-2 traces: vmem arenas in order of creation (absent for a version-1 trace)'),
  mbufs: z
    .object({
      mbuf: count('b events of kind mbuf (m_get)'),
      pkthdr: count('b events of kind pkthdr (m_gethdr)'),
      cluster: count('b events of kind cluster (m_getcl)'),
      chain: count('b events of kind chain:N (an N-mbuf chain, m_getm)'),
      chainMbufs: count('the mbufs of those chains (the sum of their N)'),
    })
    .optional()
    .describe('version-2 traces: mbuf allocations (b) by kind (absent for a version-1 trace)'),
  sizes: z
    .array(
      z.object({
        above: count('allocations of more than this many bytes ...'),
        upTo: count('... and at most this many'),
        count: count('allocations in the bucket'),
      }),
    )
    .describe('allocations (a: the zone\'s item size, m and v: the size, P: 4096 << order; b is not counted here) by power-of-two bucket; empty buckets left out'),
  live: count('objects allocated and not freed by the end'),
  maxLive: count('most objects live at once'),
  crossCpuFrees: count('frees on another CPU than the allocation'),
};

export const LINUX_IMPORT_SCHEMA_ID = 'kmemu.trace-import/1';
export const TRACE_STATS_SCHEMA_ID = 'kmemu.trace-stats/1';

export const linuxImportSummarySchema = z
  .object({
    schema: z.literal(LINUX_IMPORT_SCHEMA_ID).describe('this document\'s schema and version'),
    run: importRunSchema,
    input: z.string().describe('the recording\'s base name ("stdin" for standard input)'),
    output: z.string().describe('the kmemu trace written, as given (-o)'),
    ...traceStatsSummaryShape,
    kmemLines: byName('kmem lines read, by tracepoint'),
    unmatchedFrees: byName('frees of objects allocated before the capture began (not written), by tracepoint'),
    nullFrees: byName('frees of NULL (not written), by tracepoint'),
    failedAllocations: byName('allocations that returned NULL (not written), by tracepoint'),
    doubleAllocations: byName('allocations of a pointer that was still live (its free was not captured), by tracepoint'),
    skippedLines: byName('lines that are not kmem allocation events, by tracepoint (or "(not an event)")'),
    lostEvents: count('events the kernel reported lost ([LOST N EVENTS])'),
    malformedLines: count('malformed kmem lines skipped by --lenient'),
    malformedByReason: byName('malformed kmem lines skipped by --lenient, by what was expected'),
    zeroSizeAllocations: byName('allocations with bytes_alloc=0, written as 8-byte allocations (kmalloc-8), by tracepoint'),
    think: z
      .object({
        clockGHz: z.number().positive().nullable().describe('the clock that turned timestamp gaps into think cycles (GHz); null without --think-from-timestamps'),
        cappedGaps: count('gaps longer than the cap, cut to it'),
      })
      .describe('think time written from the timestamps (--think-from-timestamps)'),
  })
  .describe('a Linux kmem recording imported into a kmemu trace: what was written (the trace-stats figures of the output) and what was not');

export const traceStatsDocSchema = z
  .object({
    schema: z.literal(TRACE_STATS_SCHEMA_ID).describe('this document\'s schema and version'),
    run: traceStatsRunSchema,
    trace: z.string().describe('the trace\'s base name ("stdin" for standard input)'),
    meta: z.record(z.string(), z.string()).describe('the trace\'s metadata lines (# key: value before the first event)'),
    ...traceStatsSummaryShape,
    skipped: byName('what --lenient skipped, by reason'),
  })
  .describe('what a kmemu trace holds: events by op and CPU, zones, live objects, allocation sizes');
