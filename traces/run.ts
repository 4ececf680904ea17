// What ran: the `run` object every kmemu JSON document carries, as zod schemas (the one
// definition; docs/schemas/ is generated from them by tools/schemas.ts). Deterministic: no
// time, no host, no absolute path.

import { basename } from 'node:path';
import { z } from 'zod';
import { machineConfigSchema, type MachineConfig } from '../emu/index.js';

export { KMEMU_VERSION, inputName } from './version.js';

export const kmemuVersionSchema = z.string().describe('the kmemu version that wrote the document (package.json "version")');

export const inputRunSchema = z
  .object({
    name: z.string().describe('the file\'s base name as given ("stdin" for standard input)'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('sha256 (hex) of the file\'s bytes as read: the compressed bytes of a compressed file'),
  })
  .describe('the input file');
export type InputRun = z.infer<typeof inputRunSchema>;

export const machineRunSchema = z
  .object({
    given: z.string().describe('the machine as given: a preset name, or a machine file\'s base name'),
    config: machineConfigSchema.describe('the effective, validated machine config: the preset or file with every override (--cpus) applied, defaults included'),
  })
  .describe('the machine');
export type MachineRun = z.infer<typeof machineRunSchema>;

const aligned = z.boolean().describe('per-CPU state in cache-line-aligned slots instead of upstream\'s layout');
const pcpu = z.boolean().describe('per-CPU caching on (false: every request on the locked zone/depot path)');

const vmzoneOptions = z.object({ name: z.literal('vmzone').describe('DragonFly\'s vm_zone'), aligned });
const umaOptions = z.object({
  name: z.literal('uma').describe('FreeBSD\'s UMA with malloc(9)'),
  aligned,
  bucketSize: z.number().int().min(1).nullable().describe('items per bucket (a what-if); null: upstream\'s choice per zone'),
  cacheLock: z.enum(['critical', 'mutex']).describe('what protects the per-CPU cache: a critical section, or a per-CPU mutex (2002)'),
  autoTune: z.boolean().describe('buckets grow when the zone lock is contended and shrink on reclaim (2013)'),
  invariants: z.boolean().describe('an INVARIANTS kernel: uma_dbg checks on every operation'),
});

/** The allocator and its effective options, without per-CPU caching (compare runs both). */
export const allocatorOptionsSchema = z
  .discriminatedUnion('name', [vmzoneOptions, umaOptions])
  .describe('the allocator and its effective options, defaults included');
export const allocatorRunSchema = z
  .discriminatedUnion('name', [vmzoneOptions.extend({ pcpu }), umaOptions.extend({ pcpu })])
  .describe('the allocator and its effective options, defaults included');
export type AllocatorRun = z.infer<typeof allocatorRunSchema>;

const replayShape = {
  kmemu: kmemuVersionSchema,
  machine: machineRunSchema,
  sysctl: z.record(z.string(), z.number().int()).describe('the sysctls set after boot (--sysctl), name → value'),
  tunables: z.record(z.string(), z.string()).describe('every boot tunable with its effective value, defaults included (--tunable), name → value'),
  touch: z.number().int().min(0).describe('cache lines the consumer writes after each allocation'),
  trace: inputRunSchema.nullable().describe('the trace file; null when the events came from elsewhere than a file (the library\'s EventSource)'),
  warmup: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('--warmup: events each CPU ran before its measured window started (absent: no warm-up, the report measures everything from the end of boot)'),
};

export const replayRunSchema = z
  .object({ ...replayShape, allocator: allocatorRunSchema })
  .describe('what ran: kmemu, the machine, the allocator, the sysctls, the boot tunables, the consumer touch, the trace and the warm-up');
export type ReplayRun = z.infer<typeof replayRunSchema>;

export const compareRunSchema = z
  .object({ ...replayShape, allocator: allocatorOptionsSchema })
  .describe('what ran, both replays: per-CPU caching is on in perCpu and off in locked');
export type CompareRun = z.infer<typeof compareRunSchema>;

export const importRunSchema = z
  .object({
    kmemu: kmemuVersionSchema,
    from: z.literal('linux-kmem').describe('the recording\'s format (--from)'),
    input: inputRunSchema.describe('the recording'),
    lenient: z.boolean().describe('malformed kmem lines counted and skipped instead of stopping (--lenient)'),
    window: z.number().int().min(1).describe('lines held to put events of different CPUs in timestamp order (--window)'),
  })
  .describe('what ran: kmemu, the importer\'s options and the recording');
export type ImportRun = z.infer<typeof importRunSchema>;

export const traceStatsRunSchema = z
  .object({
    kmemu: kmemuVersionSchema,
    trace: inputRunSchema.describe('the trace'),
    lenient: z.boolean().describe('events that break the trace rules counted and skipped (--lenient)'),
  })
  .describe('what ran: kmemu, the reader\'s options and the trace');
export type TraceStatsRun = z.infer<typeof traceStatsRunSchema>;

/** How a machine given as NAME (a preset or a file) is named in a document. */
export function machineGiven(given: string): string {
  return /\.json$/i.test(given) ? basename(given) : given;
}

export function machineRun(given: string, config: MachineConfig): MachineRun {
  return { given: machineGiven(given), config };
}

