// `kmemu trace gen`: writes a generated workload as a kmemu trace (traces/gen.ts, FORMAT.md).

import { Command, Option } from 'commander';
import { UsageError, UserError } from '../emu/index.js';
import {
  OP_ARENA, OP_THINK, OP_ZONE, TraceWriter, generate, generatedHeader, generatedVersion, optionFlag, resolveGenOptions, vmemStrategies, workloadAliases,
  workloads,
} from '../traces/index.js';
import type { GenApi, GenOptions, VmemStrategy } from '../traces/index.js';
import { startProgress } from './progress.js';

export interface TraceGenIo {
  stdout: { write(text: string): unknown };
  /** Where the progress bar goes (only when it is a TTY). */
  stderr: NodeJS.WriteStream;
}

interface TraceGenFlags {
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

const HELP_AFTER = `
EVENTS counts allocations and frees (a, f, m, x, P, Q, v, V, b, B), not zone, arena or think events: a run
allocates ceil(EVENTS/2) objects and frees them all, so an even EVENTS ends with nothing live.
The same arguments write the same file, byte for byte. Workload options apply only to the
workloads that take them (--list shows which); the rest are refused.`;

/** Parses an option's decimal integer, or throws a UserError quoting it. */
function integer(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`option ${option}: expected a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function listText(): string {
  const width = Math.max(...workloads.map((w) => w.name.length)) + 2;
  const lines = workloads.map((w) => {
    const options = w.options.length > 0 ? ` [${w.options.map(optionFlag).join(' ')}]` : '';
    return `${w.name.padEnd(width)}${w.description}${options}\n${' '.repeat(width)}source: ${w.source}\n`;
  });
  for (const [alias, name] of Object.entries(workloadAliases)) lines.push(`${alias.padEnd(width)}= ${name}\n`);
  return lines.join('');
}

/** The generator options the flags give; workload options only when given, so misuse is refused. */
function genOptions(f: TraceGenFlags): GenOptions {
  const o: GenOptions = { cpus: integer('--cpus', f.cpus)!, events: integer('--events', f.events)!, seed: f.seed };
  const numeric = ['size', 'count', 'writes', 'chunks', 'rounds', 'minSize', 'maxSize', 'batch', 'ring', 'think', 'fragments', 'qcacheMax'] as const;
  for (const key of numeric) {
    const v = integer(optionFlag(key), f[key]);
    if (v !== undefined) o[key] = v;
  }
  if (f.api !== undefined) o.api = f.api;
  if (f.strategy !== undefined) o.strategy = f.strategy;
  return o;
}

async function run(workload: string | undefined, f: TraceGenFlags, io: TraceGenIo): Promise<void> {
  if (f.list) {
    io.stdout.write(listText());
    return;
  }
  if (workload === undefined) throw new UsageError('missing WORKLOAD: expected one of the names `kmemu trace gen --list` prints');
  if (f.out === undefined) throw new UsageError('missing -o/--out FILE: the trace file to write (gzip-compressed when it ends in .gz)');
  const options = genOptions(f);
  try {
    resolveGenOptions(workload, options);
  } catch (err) {
    throw err instanceof UserError ? new UsageError(err.message) : err;
  }
  const header = generatedHeader(workload, options);
  const events = generate(workload, options);
  const writer = TraceWriter.create(f.out, header, { ...(f.gzip === true ? { gzip: true } : {}), version: generatedVersion(workload) });
  const progress = startProgress({ label: 'generating', total: options.events, unit: 'items', stream: io.stderr });
  let counted = 0;
  try {
    for (const ev of events) {
      writer.write(ev);
      if (ev.op !== OP_ZONE && ev.op !== OP_THINK && ev.op !== OP_ARENA && (++counted & 0xfff) === 0) {
        progress.update(counted);
        if ((counted & 0x3ffff) === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    }
    writer.close();
  } catch (err) {
    writer.abort();
    throw err;
  } finally {
    progress.stop();
  }
}

function buildCommand(io: TraceGenIo): Command {
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
    .addOption(new Option('--strategy <fit>', 'vmem-*: the fit strategy of the measured allocations (firstfit: instant fit)').choices([...vmemStrategies]))
    .option('--qcache-max <quanta>', 'vmem-*: quantum caches for sizes up to this many quanta (0: none; at most 16)')
    .addHelpText('after', HELP_AFTER)
    .action(async (workload: string | undefined, flags: TraceGenFlags) => {
      await run(workload, flags, io);
    });
}

export function traceGenCommand(): Command {
  return buildCommand({ stdout: process.stdout, stderr: process.stderr });
}

/**
 * Runs `kmemu trace gen ARGS` in-process (ARGS without `trace gen`). User errors throw
 * UserError; option errors throw commander's CommanderError.
 */
export async function runTraceGen(args: readonly string[], io: Partial<TraceGenIo> = {}): Promise<void> {
  const full: TraceGenIo = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr };
  const command = buildCommand(full)
    .exitOverride()
    .configureOutput({ writeOut: (s) => full.stdout.write(s), writeErr: (s) => full.stderr.write(s) });
  await command.parseAsync([...args], { from: 'user' });
}
