// The kmemu.cachesim/1 document's zod schemas (docs/schemas/ is generated from them by
// tools/schemas.ts), apart from cachesim.ts so that the command loads without zod.

import { z } from 'zod';
import { replacementPolicies } from '../emu/index.js';
import { inputRunSchema, kmemuVersionSchema } from '../traces/index.js';
import { CACHESIM_SCHEMA } from './commands/cachesim.js';

const count = (what: string) => z.number().int().min(0).describe(what);
const policy = z.enum(replacementPolicies).describe('replacement policy');

export const cachesimRunSchema = z
  .object({
    kmemu: kmemuVersionSchema,
    format: z.literal('din').describe('the trace format (--format)'),
    hierarchy: z
      .object({
        levels: z
          .array(z.object({ size: count('capacity (bytes)'), ways: count('associativity'), line: count('line size (bytes)'), policy }))
          .describe('--l1, --l2, --l3 as parsed'),
        inclusive: z.boolean().describe('inclusive (false: --non-inclusive, Dinero IV-compatible)'),
        tlb: z.object({ entries: count('entries'), ways: count('associativity') }).nullable().describe('--tlb (4 KiB pages, LRU); null without'),
        seed: z.number().int().describe('seed of the random replacement policy (--seed)'),
        flush: z.boolean().describe('every dirty line copied back at the end (--flush)'),
      })
      .describe('the hierarchy simulated'),
    trace: inputRunSchema,
  })
  .describe('what ran: kmemu, the hierarchy and the trace');
export type CachesimRun = z.infer<typeof cachesimRunSchema>;

const levelStats = z.object({
  name: z.string().describe('l1, l2 or l3'),
  accesses: count('accesses: one per line a reference touches'),
  reads: count('read accesses'),
  writes: count('write accesses'),
  misses: count('misses'),
  readMisses: count('read misses'),
  writeMisses: count('write misses'),
  writebacks: count('dirty lines written to the next level during the run (evictions, copy-backs; inclusive: back-invalidated dirty copies)'),
  ifetches: count('instruction fetch accesses'),
  ifetchMisses: count('instruction fetch misses'),
  misc: count('miscellaneous accesses'),
  miscMisses: count('miscellaneous misses'),
  copybacks: count('of the writebacks, dirty lines copied back by "c" records and --flush'),
  backInvalidations: count('lines invalidated because a level below evicted or invalidated them'),
  multiBlockRefs: count('references that touched more than one line'),
  fills: count('lines fetched from the next level'),
  bytesFromBelow: count('fills × line (bytes)'),
  bytesToBelow: count('writebacks × line (bytes)'),
  size: count('capacity (bytes)'),
  ways: count('associativity'),
  line: count('line size (bytes)'),
  policy,
});

export const cachesimDocSchema = z
  .object({
    schema: z.literal(CACHESIM_SCHEMA).describe('this document\'s schema and version'),
    run: cachesimRunSchema,
    references: count('references read from the trace'),
    inclusive: z.boolean().describe('inclusive hierarchy (false: non-inclusive, Dinero IV-compatible)'),
    levels: z.array(levelStats).describe('the cache levels, l1 first'),
    tlb: z
      .object({
        entries: count('entries'),
        ways: count('associativity'),
        pageSize: count('page size (bytes)'),
        accesses: count('lookups: one per page a reference touches'),
        misses: count('misses'),
      })
      .optional()
      .describe('the TLB, with --tlb'),
  })
  .describe('the cache (and TLB) model alone on an address trace');
export type CachesimDoc = z.infer<typeof cachesimDocSchema>;
