// `kmemu trace`: kmemu traces (traces/FORMAT.md) — `import` turns a recording into one, `stats`
// tells what one holds; `gen` (tools/trace-gen.ts) writes a generated workload.
// tools/commands/trace.ts declares their options.

import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { UsageError } from '../emu/index.js';
import { KMEMU_VERSION, MAX_THINK_NS, TraceReader, TraceStats, ZERO_SIZE_AS, importLinuxKmem } from '../traces/index.js';
import type { LinuxImportSummary, TraceStatsRun, TraceStatsSummary } from '../traces/index.js';
import { TRACE_STATS_SCHEMA, traceCommand, type ImportFlags, type StatsFlags } from './commands/trace.js';
import { startProgress } from './progress.js';
import { traceGenMain } from './trace-gen.js';

export { TRACE_STATS_SCHEMA } from './commands/trace.js';

export interface TraceIo {
  stdout: { write(text: string): unknown };
  /** Where the progress bar goes (only when it is a terminal). */
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadableStream;
  /** The decompression commands for xz, zstd and bzip2 input (tests). */
  commands?: Partial<Record<'xz' | 'zstd' | 'bzip2', string>>;
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
  const frees = s.byOp.f! + s.byOp.x! + s.byOp.Q! + (s.byOp.V ?? 0) + (s.byOp.B ?? 0);
  out += `frees on another CPU than the allocation: ${s.crossCpuFrees} of ${frees} (${percent(s.crossCpuFrees, frees)})\n`;
  out += `live objects at the end: ${s.live} (at most ${s.maxLive})\n\n`;
  if (s.zones.length > 0) {
    out += table(['zone', 'name', 'size', 'allocs', 'frees'], s.zones.map((z) => [z.id, z.name, z.size, z.allocs, z.frees]), 'rlrrr');
    out += '\n';
  }
  if (s.arenas !== undefined && s.arenas.length > 0) {
    out += table(['arena', 'name', 'quantum', 'allocs', 'frees'], s.arenas.map((a) => [a.id, a.name, a.quantum, a.allocs, a.frees]), 'rlrrr');
    out += '\n';
  }
  const mb = s.mbufs;
  if (mb !== undefined && s.byOp.b! > 0) {
    out += `mbufs (b): ${s.byOp.b}: mbuf ${mb.mbuf}, pkthdr ${mb.pkthdr}, cluster ${mb.cluster}, chain ${mb.chain} (${mb.chainMbufs} mbufs)\n\n`;
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
  if (s.malformedLines > 0) out += `malformed kmem lines skipped (--lenient): ${byName(s.malformedByReason)}\n`;
  if (Object.keys(s.zeroSizeAllocations).length > 0) out += `allocations with bytes_alloc=0, written as ${ZERO_SIZE_AS} bytes: ${byName(s.zeroSizeAllocations)}\n`;
  if (s.think.clockGHz !== null) out += `think time from timestamps at ${s.think.clockGHz} GHz: ${s.byOp.t} t events; gaps cut to ${MAX_THINK_NS / 1e6} ms: ${s.think.cappedGaps}\n`;
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
  if (flags.from !== 'linux-kmem') throw new UsageError(`--from: expected linux-kmem, got "${flags.from}"`);
  if (flags.out === undefined) throw new UsageError('missing -o/--out FILE: the kmemu trace to write (gzip-compressed when it ends in .gz)');
  const window = Number(flags.window);
  if (!Number.isInteger(window) || window < 1 || window > 1 << 20) throw new UsageError(`--window: expected a number of lines from 1 to ${1 << 20}, got "${flags.window}"`);
  if (flags.clockGhz !== undefined && flags.thinkFromTimestamps !== true) throw new UsageError('--clock-ghz applies only with --think-from-timestamps');
  const clockGHz = flags.clockGhz === undefined ? undefined : Number(flags.clockGhz);
  if (clockGHz !== undefined && !(/^\d+(?:\.\d+)?$/.test(flags.clockGhz!) && clockGHz > 0 && clockGHz <= 1000)) {
    throw new UsageError(`--clock-ghz: expected a frequency in GHz above 0 and at most 1000, got "${flags.clockGhz}"`);
  }
  const bar = startProgress({ label: 'importing', total: fileSize(file), unit: 'bytes', stream: io.stderr });
  let summary: LinuxImportSummary;
  try {
    summary = await importLinuxKmem(file, flags.out, {
      lenient: flags.lenient ?? false,
      stdin: io.stdin,
      window,
      ...(flags.gzip === true ? { gzip: true } : {}),
      onProgress: (b) => bar.update(b),
      thinkFromTimestamps: flags.thinkFromTimestamps ?? false,
      ...(clockGHz === undefined ? {} : { clockGHz }),
      ...(io.commands === undefined ? {} : { commands: io.commands }),
    });
  } finally {
    bar.stop();
  }
  // With the trace on stdout (-o -), the summary goes to stderr.
  (flags.out === '-' ? io.stderr : io.stdout).write(flags.json === true ? `${JSON.stringify(summary, null, 2)}\n` : formatImportSummary(summary));
  return summary;
}

export async function runTraceStats(file: string, flags: StatsFlags, io: TraceIo): Promise<TraceStatsDoc> {
  const reader = await TraceReader.open(file, { lenient: flags.lenient ?? false, stdin: io.stdin });
  const bar = startProgress({ label: 'reading', total: fileSize(file), unit: 'bytes', stream: io.stderr });
  const stats = new TraceStats(reader.formatVersion);
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

/**
 * Runs `kmemu trace ARGS` in-process (ARGS without `trace`). User errors throw UserError;
 * option errors throw commander's CommanderError.
 */
export async function runTrace(args: readonly string[], io: Partial<TraceIo> = {}): Promise<void> {
  const full: TraceIo = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr, stdin: io.stdin ?? process.stdin, ...(io.commands === undefined ? {} : { commands: io.commands }) };
  const output = { writeOut: (s: string) => void full.stdout.write(s), writeErr: (s: string) => void full.stderr.write(s) };
  const command = traceCommand({
    import: async (file, flags) => void (await runTraceImport(file, flags, full)),
    stats: async (file, flags) => void (await runTraceStats(file, flags, full)),
    gen: (workload, flags) => traceGenMain(workload, flags, full),
  }).exitOverride().configureOutput(output);
  for (const sub of command.commands) sub.exitOverride().configureOutput(output);
  await command.parseAsync([...args], { from: 'user' });
}
