// `kmemu trace gen`: writes a generated workload as a kmemu trace (traces/gen.ts, FORMAT.md).

import { UsageError, UserError } from '../emu/index.js';
import {
  OP_ARENA, OP_THINK, OP_ZONE, TraceWriter, generate, generatedHeader, generatedVersion, optionFlag, resolveGenOptions, workloadAliases,
  workloads,
} from '../traces/index.js';
import type { GenOptions } from '../traces/index.js';
import { traceGenCommand, type TraceGenFlags } from './commands/trace.js';
import { startProgress } from './progress.js';

export interface TraceGenIo {
  stdout: { write(text: string): unknown };
  /** Where the progress bar goes (only when it is a TTY). */
  stderr: NodeJS.WriteStream;
}

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

/** What `kmemu trace gen WORKLOAD` does with its options (tools/commands/trace.ts declares them). */
export async function traceGenMain(workload: string | undefined, f: TraceGenFlags, io: TraceGenIo): Promise<void> {
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

/**
 * Runs `kmemu trace gen ARGS` in-process (ARGS without `trace gen`). User errors throw
 * UserError; option errors throw commander's CommanderError.
 */
export async function runTraceGen(args: readonly string[], io: Partial<TraceGenIo> = {}): Promise<void> {
  const full: TraceGenIo = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr };
  const command = traceGenCommand((workload, flags) => traceGenMain(workload, flags, full))
    .exitOverride()
    .configureOutput({ writeOut: (s) => full.stdout.write(s), writeErr: (s) => full.stderr.write(s) });
  await command.parseAsync([...args], { from: 'user' });
}
