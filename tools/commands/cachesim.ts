// kmemu cachesim, declared; tools/cachesim.ts runs it.

import { Command, Option } from 'commander';
import { REPLACEMENT_POLICIES } from './facts.js';

export const CACHESIM_SCHEMA = 'kmemu.cachesim/1';

export interface CachesimOptions {
  format: string;
  l1: string;
  l2?: string;
  l3?: string;
  nonInclusive?: boolean;
  tlb?: string;
  flush?: boolean;
  json?: boolean;
  seed: string;
}

const HELP_AFTER = `
Level spec: SIZE:WAYS:LINE:POLICY, e.g. 32k:8:64:lru. SIZE in bytes with an optional k, m
or g suffix; LINE a power of two from 4 to 32768; WAYS must divide SIZE/LINE into a
power-of-two number of sets; POLICY one of ${REPLACEMENT_POLICIES.join(', ')}. Every level is
write-back and write-allocate.

Trace (--format din): Dinero IV din text, one reference per line, "<r|w|i|m|c|v> <hex
address> <hex size>" or the traditional "<0-5> <hex address>" (4 bytes); gzip-compressed
input is detected by its magic bytes; no TRACE or "-" reads stdin.

Hierarchy modes:
  default          inclusive: a line evicted (or invalidated) in a level is also invalidated
                   in the levels above it, and a dirty upper copy is written back with it
                   (counted in that level's writebacks); every miss fetches from below.
  --non-inclusive  Dinero IV-compatible: levels are independent (no back-invalidation); a
                   write covering a whole line allocates without fetching. With LRU or FIFO
                   every count equals dineroIV's with -lN-Twalloc a -lN-Twback a (the
                   defaults). dineroIV copies all dirty lines back before printing its
                   statistics; --flush does the same (those writes count at the next level
                   and as copybacks).

Counts: a reference is split into one access per line it touches; writebacks are the dirty
lines written to the next level during the run (evictions and "c" records). With
--non-inclusive, sizes follow Dinero's 16-bit field: taken mod 65536, and size 0 covers
65536 bytes at a line-aligned address. JSON output (--json) follows schema ${CACHESIM_SCHEMA}.`;

/** `kmemu cachesim`; `action` runs it (by default tools/cachesim.ts on the process's stdio). */
export function cachesimCommand(action?: (trace: string, opts: CachesimOptions) => Promise<void>): Command {
  return new Command('cachesim')
    .description('Run the cache (and TLB) model alone on an address trace')
    .argument('[trace]', 'trace file, plain or gzip-compressed; "-" for stdin', '-')
    .addOption(new Option('--format <format>', 'trace format').choices(['din']).default('din'))
    .requiredOption('--l1 <spec>', 'first-level cache, SIZE:WAYS:LINE:POLICY')
    .option('--l2 <spec>', 'second-level cache')
    .option('--l3 <spec>', 'third-level cache')
    .option('--non-inclusive', 'independent levels, counting exactly as Dinero IV does')
    .option('--flush', 'copy every dirty line back at the end, as dineroIV does before its report')
    .option('--tlb <entries:ways>', 'a TLB of 4 KiB pages with LRU replacement, e.g. 64:4')
    .option('--seed <n>', 'seed of the random replacement policy', '1')
    .option('--json', `print a ${CACHESIM_SCHEMA} JSON document instead of a table`)
    .addHelpText('after', HELP_AFTER)
    .action(async (trace: string, opts: CachesimOptions) => {
      if (action !== undefined) return action(trace, opts);
      const { cachesimMain } = await import('../cachesim.js');
      await cachesimMain(trace, opts, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
    });
}
