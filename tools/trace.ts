// `kmemu trace`: kmemu traces (traces/FORMAT.md) — `import` turns a recording into one, `stats`
// tells what one holds; `gen` (tools/trace-gen.ts) writes a generated workload.

import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { Command, Option } from 'commander';
import { UserError } from '../emu/index.js';
import { KMEMU_VERSION, LINUX_IMPORT_SCHEMA, TraceReader, TraceStats, importLinuxKmem } from '../traces/index.js';
import type { LinuxImportSummary, TraceStatsRun, TraceStatsSummary } from '../traces/index.js';
import { startProgress } from './progress.js';
// --- `kmemu trace gen` (the generators' module) registers here:
import { traceGenCommand } from './trace-gen.js';

export const TRACE_STATS_SCHEMA = 'kmemu.trace-stats/1';

export interface TraceIo {
  stdout: { write(text: string): unknown };
  /** Where the progress bar goes (only when it is a terminal). */
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadableStream;
  /** The xz command for .xz input (tests). */
  xzCommand?: string;
}

interface ImportFlags {
  from: string;
  out?: string;
  lenient?: boolean;
  json?: boolean;
  window: string;
}

interface StatsFlags {
  lenient?: boolean;
  json?: boolean;
}

export interface TraceStatsDoc extends TraceStatsSummary {
  schema: typeof TRACE_STATS_SCHEMA;
  run: TraceStatsRun;
  trace: string;
  meta: Record<string, string>;
  /** What --lenient skipped, by reason. */
  skipped: Record<string, number>;
}

function fileSize(file: string): number | undefined {
  if (file === '-') return undefined;
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Printers

/** A table with two spaces between columns; `align` has an `l` or `r` per column. */
function table(head: string[], rows: (string | number)[][], align: string): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const width = head.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  return cells
    .map((r) => r.map((cell, c) => (align[c] === 'l' ? cell.padEnd(width[c]!) : cell.padStart(width[c]!))).join('  ').trimEnd())
    .join('\n') + '\n';
}

function byName(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  if (entries.length === 0) return '0';
  const total = entries.reduce((a, [, n]) => a + n, 0);
  return `${total} (${entries.map(([k, n]) => `${k} ${n}`).join(', ')})`;
}

function bytes(n: number): string {
  if (n >= 2 ** 30 && n % 2 ** 30 === 0) return `${n / 2 ** 30}G`;
  if (n >= 2 ** 20 && n % 2 ** 20 === 0) return `${n / 2 ** 20}M`;
  if (n >= 2 ** 10 && n % 2 ** 10 === 0) return `${n / 2 ** 10}K`;
  return String(n);
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`;
}

/** The body shared by `import` and `stats`. */
export function formatTraceSummary(s: TraceStatsSummary): string {
  let out = `events: ${s.events}: ${Object.entries(s.byOp).filter(([, n]) => n > 0).map(([op, n]) => `${op} ${n}`).join(', ') || 'none'}\n\n`;
  out += table(['cpu', 'events', 'allocs', 'frees'], s.cpus.map((c) => [c.cpu, c.events, c.allocs, c.frees]), 'rrrr');
  const frees = s.byOp.f! + s.byOp.x! + s.byOp.Q!;
  out += `frees on another CPU than the allocation: ${s.crossCpuFrees} of ${frees} (${percent(s.crossCpuFrees, frees)})\n`;
  out += `live objects at the end: ${s.live} (at most ${s.maxLive})\n\n`;
  if (s.zones.length > 0) {
    out += table(['zone', 'name', 'size', 'allocs', 'frees'], s.zones.map((z) => [z.id, z.name, z.size, z.allocs, z.frees]), 'rlrrr');
    out += '\n';
  }
  const allocs = s.sizes.reduce((a, b) => a + b.count, 0);
  if (allocs > 0) {
    const most = Math.max(...s.sizes.map((b) => b.count));
    out += table(
      ['allocations of up to (bytes)', 'count', 'share', ''],
      s.sizes.map((b) => [
        bytes(b.upTo),
        b.count,
        percent(b.count, allocs),
        '#'.repeat(Math.max(1, Math.round((40 * b.count) / most))),
      ]),
      'rrrl',
    );
  }
  return out;
}

export function formatImportSummary(s: LinuxImportSummary): string {
  let out = `imported ${s.input} (linux-kmem) to ${s.output}\n`;
  out += formatTraceSummary(s);
  out += '\nnot written:\n';
  out += `  frees of objects allocated before the capture: ${byName(s.unmatchedFrees)}\n`;
  out += `  frees of NULL: ${byName(s.nullFrees)}\n`;
  out += `  allocations that failed (NULL): ${byName(s.failedAllocations)}\n`;
  out += `  allocations of a live pointer (its free was missed; the old object stays live): ${byName(s.doubleAllocations)}\n`;
  out += `skipped lines: ${byName(s.skippedLines)}\n`;
  if (s.lostEvents > 0) out += `events the kernel lost: ${s.lostEvents}\n`;
  if (s.malformedLines > 0) out += `malformed kmem lines skipped (--lenient): ${s.malformedLines}\n`;
  return out;
}

export function formatStats(doc: TraceStatsDoc): string {
  let out = `${doc.trace}${Object.entries(doc.meta).map(([k, v]) => `\n  ${k}: ${v}`).join('')}\n`;
  out += formatTraceSummary(doc);
  const n = Object.values(doc.skipped).reduce((a, b) => a + b, 0);
  if (n > 0) out += `skipped (--lenient): ${byName(doc.skipped)}\n`;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Subcommands

export async function runTraceImport(file: string, flags: ImportFlags, io: TraceIo): Promise<LinuxImportSummary> {
  if (flags.from !== 'linux-kmem') throw new UserError(`--from: expected linux-kmem, got "${flags.from}"`);
  if (flags.out === undefined) throw new UserError('missing -o/--out FILE: the kmemu trace to write (gzip-compressed when it ends in .gz)');
  const window = Number(flags.window);
  if (!Number.isInteger(window) || window < 1 || window > 1 << 20) throw new UserError(`--window: expected a number of lines from 1 to ${1 << 20}, got "${flags.window}"`);
  const bar = startProgress({ label: 'importing', total: fileSize(file), unit: 'bytes', stream: io.stderr });
  let summary: LinuxImportSummary;
  try {
    summary = await importLinuxKmem(file, flags.out, {
      lenient: flags.lenient ?? false,
      stdin: io.stdin,
      window,
      onProgress: (b) => bar.update(b),
      ...(io.xzCommand === undefined ? {} : { xzCommand: io.xzCommand }),
    });
  } finally {
    bar.stop();
  }
  io.stdout.write(flags.json === true ? `${JSON.stringify(summary, null, 2)}\n` : formatImportSummary(summary));
  return summary;
}

export async function runTraceStats(file: string, flags: StatsFlags, io: TraceIo): Promise<TraceStatsDoc> {
  const reader = await TraceReader.open(file, { lenient: flags.lenient ?? false, stdin: io.stdin });
  const bar = startProgress({ label: 'reading', total: fileSize(file), unit: 'bytes', stream: io.stderr });
  const stats = new TraceStats();
  try {
    for (let batch = await reader.next(); batch !== null; batch = await reader.next()) {
      for (const ev of batch) stats.add(ev);
      bar.update(reader.bytesRead);
    }
  } finally {
    bar.stop();
    await reader.close();
  }
  const doc: TraceStatsDoc = {
    schema: TRACE_STATS_SCHEMA,
    run: { kmemu: KMEMU_VERSION, trace: { name: file === '-' ? 'stdin' : basename(file), sha256: reader.sha256 ?? '' }, lenient: flags.lenient ?? false },
    trace: file === '-' ? 'stdin' : basename(file),
    meta: reader.header.meta,
    ...stats.summary(),
    skipped: reader.skipped(),
  };
  io.stdout.write(flags.json === true ? `${JSON.stringify(doc, null, 2)}\n` : formatStats(doc));
  return doc;
}

const IMPORT_HELP = `
Input (--from linux-kmem): Linux kmem tracepoints (kmem_cache_alloc[_node], kmem_cache_free,
kmalloc[_node], kfree, mm_page_alloc, mm_page_free[_batched]) as printed by the tracefs trace
and trace_pipe files (with or without the TGID column), trace-cmd report or perf script;
plain, gzip, or xz (needs the xz command). Other lines are counted and skipped. See
traces/FORMAT.md, "Importing Linux kmem traces".`;

function buildCommand(io: TraceIo): Command {
  const trace = new Command('trace').description('kmemu traces: import a recording, show what a trace holds, generate a workload');
  trace.addCommand(
    new Command('import')
      .description('convert a recording of kernel allocations into a kmemu trace and summarize it')
      .argument('<file>', 'the recording; "-" for stdin')
      .addOption(new Option('--from <format>', 'the recording\'s format').choices(['linux-kmem']).makeOptionMandatory())
      .option('-o, --out <file>', 'the kmemu trace to write (gzip-compressed when it ends in .gz)')
      .option('--lenient', 'count and skip malformed kmem lines instead of stopping')
      .option('--window <lines>', 'lines held to put events of different CPUs in timestamp order', '4096')
      .option('--json', `print the summary as a ${LINUX_IMPORT_SCHEMA} JSON document`)
      .addHelpText('after', IMPORT_HELP)
      .action(async (file: string, flags: ImportFlags) => {
        await runTraceImport(file, flags, io);
      }),
  );
  trace.addCommand(
    new Command('stats')
      .description('what a kmemu trace holds: events by op and CPU, zones, live objects, allocation sizes')
      .argument('<trace>', 'a kmemu trace (plain or gzip); "-" for stdin')
      .option('--lenient', 'count and skip events that break the trace rules instead of stopping')
      .option('--json', `print a ${TRACE_STATS_SCHEMA} JSON document`)
      .action(async (file: string, flags: StatsFlags) => {
        await runTraceStats(file, flags, io);
      }),
  );
  // --- `kmemu trace gen` (the generators' module):
  trace.addCommand(traceGenCommand());
  return trace;
}

export function traceCommand(): Command {
  return buildCommand({ stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
}

/**
 * Runs `kmemu trace ARGS` in-process (ARGS without `trace`). User errors throw UserError;
 * option errors throw commander's CommanderError.
 */
export async function runTrace(args: readonly string[], io: Partial<TraceIo> = {}): Promise<void> {
  const full: TraceIo = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr, stdin: io.stdin ?? process.stdin, ...(io.xzCommand === undefined ? {} : { xzCommand: io.xzCommand }) };
  const output = { writeOut: (s: string) => void full.stdout.write(s), writeErr: (s: string) => void full.stderr.write(s) };
  const command = buildCommand(full).exitOverride().configureOutput(output);
  for (const sub of command.commands) sub.exitOverride().configureOutput(output);
  await command.parseAsync([...args], { from: 'user' });
}
