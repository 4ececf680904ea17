// kmemu trace import, stats and gen, declared; tools/trace.ts and tools/trace-gen.ts run them.

import { Command, Option } from 'commander';
import type { GenApi, VmemStrategy } from '../../traces/index.js';
import { DEFAULT_PRESET, DEFAULT_PRESET_CLOCK_GHZ, LINUX_IMPORT_SCHEMA, MAX_THINK_NS, VMEM_STRATEGIES } from './facts.js';

export const TRACE_STATS_SCHEMA = 'kmemu.trace-stats/1';

export interface ImportFlags {
  from: string;
  out?: string;
  gzip?: boolean;
  lenient?: boolean;
  json?: boolean;
  window: string;
  thinkFromTimestamps?: boolean;
  clockGhz?: string;
}

export interface StatsFlags {
  lenient?: boolean;
  json?: boolean;
}

export interface TraceGenFlags {
  cpus: string;
  events: string;
  seed: string;
  out?: string;
  gzip?: boolean;
  list?: boolean;
  size?: string;
  count?: string;
  api?: GenApi;
  writes?: string;
  chunks?: string;
  rounds?: string;
  minSize?: string;
  maxSize?: string;
  batch?: string;
  ring?: string;
  think?: string;
  fragments?: string;
  strategy?: VmemStrategy;
  qcacheMax?: string;
}

export interface TraceActions {
  import: (file: string, flags: ImportFlags) => Promise<void>;
  stats: (file: string, flags: StatsFlags) => Promise<void>;
  gen: (workload: string | undefined, flags: TraceGenFlags) => Promise<void>;
}

const IMPORT_HELP = `
Input (--from linux-kmem): Linux kmem tracepoints (kmem_cache_alloc[_node], kmem_cache_free,
kmalloc[_node], kfree, mm_page_alloc, mm_page_free[_batched]) as printed by the tracefs trace
and trace_pipe files (with or without the TGID column), trace-cmd report or perf script;
plain, gzip, xz, zstd or bzip2 (the last three need the xz, zstd or bzip2 command). Other
events and non-event lines are counted and skipped; a kmem line that does not parse is an
error (--lenient: counted by reason). Timestamps only order the CPUs' events, unless
--think-from-timestamps. See traces/FORMAT.md, "Importing Linux kmem traces".`;

const GEN_HELP = `
EVENTS counts allocations and frees (a, f, m, x, P, Q, v, V, b, B), not zone, arena or think events: a run
allocates ceil(EVENTS/2) objects and frees them all, so an even EVENTS ends with nothing live.
The same arguments write the same file, byte for byte. Workload options apply only to the
workloads that take them (--list shows which); the rest are refused.`;

const stdio = () => ({ stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });

/** `kmemu trace gen`; `action` runs it (by default tools/trace-gen.ts on the process's stdio). */
export function traceGenCommand(action?: TraceActions['gen']): Command {
  return new Command('gen')
    .description('write a generated workload (seeded, deterministic) as a kmemu trace')
    .argument('[workload]', 'the workload; --list shows them')
    .option('--cpus <n>', 'CPUs the workload runs on', '4')
    .option('--events <m>', 'allocations and frees to generate', '100000')
    .option('--seed <s>', 'seed of the generator (any string)', '1')
    .option('-o, --out <file>', 'the trace file (gzip-compressed when it ends in .gz); "-": stdout')
    .option('--gzip', 'gzip-compress the trace whatever its name (e.g. with -o -)')
    .option('--list', 'print the workloads with their descriptions and options')
    .option('--size <bytes>', 'object size (slab-*: 0 for 8..4096 in turn; xmalloc: 0 for its size mix); net-*: packet size, 1..1500 (0: IMIX)')
    .option('--count <n>', 'slab-*: objects per CPU per round (slab_test TEST_COUNT, 10000)')
    .addOption(new Option('--api <api>', 'allocate from zones (a/f) or malloc(9) (m/x)').choices(['zone', 'malloc']))
    .option('--writes <n>', 'cache-*: writes per object, as think cycles (1000)')
    .option('--chunks <n>', 'larson: objects per thread (1000)')
    .option('--rounds <n>', 'larson: replacements per thread, in units of chunks (1)')
    .option('--min-size <bytes>', 'larson: smallest object size (8)')
    .option('--max-size <bytes>', 'larson: sizes are below this (1000)')
    .option('--batch <n>', 'xmalloc: objects per batch (4096); net-forward: tx completions freed at a time (32); net-sockbuf: writes queued before the reader reads (16)')
    .option('--ring <n>', 'net-forward, net-local: receive descriptors per NIC ring, each with a cluster (1024; at most 4096)')
    .option('--think <cycles>', 'mean think time after each allocation and free, exponential (0: none)')
    .option('--fragments <n>', 'vmem-frag: free segments the fragmentation phase leaves in the arena (1024)')
    .addOption(new Option('--strategy <fit>', 'vmem-*: the fit strategy of the measured allocations (firstfit: instant fit)').choices([...VMEM_STRATEGIES]))
    .option('--qcache-max <quanta>', 'vmem-*: quantum caches for sizes up to this many quanta (0: none; at most 16)')
    .addHelpText('after', GEN_HELP)
    .action(async (workload: string | undefined, flags: TraceGenFlags) => {
      if (action !== undefined) return action(workload, flags);
      const { traceGenMain } = await import('../trace-gen.js');
      await traceGenMain(workload, flags, stdio());
    });
}

/** `kmemu trace` and its subcommands; `actions` run them (by default tools/trace.ts and tools/trace-gen.ts on the process's stdio). */
export function traceCommand(actions?: TraceActions): Command {
  const trace = new Command('trace').description('kmemu traces: import a recording, show what a trace holds, generate a workload');
  trace.addCommand(
    new Command('import')
      .description('convert a recording of kernel allocations into a kmemu trace and summarize it')
      .argument('<file>', 'the recording; "-" for stdin')
      .addOption(new Option('--from <format>', 'the recording\'s format').choices(['linux-kmem']).makeOptionMandatory())
      .option('-o, --out <file>', 'the kmemu trace to write (gzip-compressed when it ends in .gz); "-": stdout, and the summary on stderr')
      .option('--gzip', 'gzip-compress the trace whatever its name (e.g. with -o -)')
      .option('--lenient', 'count and skip malformed kmem lines instead of stopping')
      .option('--window <lines>', 'lines held to put events of different CPUs in timestamp order', '4096')
      .option('--think-from-timestamps', `write the gap before each of a CPU's events as think time (t CYCLES), each gap at most ${MAX_THINK_NS / 1e6} ms`)
      .option('--clock-ghz <ghz>', `the clock that turns gaps into cycles (default: the ${DEFAULT_PRESET} preset's, ${DEFAULT_PRESET_CLOCK_GHZ})`)
      .option('--json', `print the summary as a ${LINUX_IMPORT_SCHEMA} JSON document`)
      .addHelpText('after', IMPORT_HELP)
      .action(async (file: string, flags: ImportFlags) => {
        if (actions !== undefined) return actions.import(file, flags);
        const { runTraceImport } = await import('../trace.js');
        await runTraceImport(file, flags, stdio());
      }),
  );
  trace.addCommand(
    new Command('stats')
      .description('what a kmemu trace holds: events by op and CPU, zones, live objects, allocation sizes')
      .argument('<trace>', 'a kmemu trace (plain or gzip); "-" for stdin')
      .option('--lenient', 'count and skip events that break the trace rules instead of stopping')
      .option('--json', `print a ${TRACE_STATS_SCHEMA} JSON document`)
      .action(async (file: string, flags: StatsFlags) => {
        if (actions !== undefined) return actions.stats(file, flags);
        const { runTraceStats } = await import('../trace.js');
        await runTraceStats(file, flags, stdio());
      }),
  );
  trace.addCommand(traceGenCommand(actions?.gen));
  return trace;
}
