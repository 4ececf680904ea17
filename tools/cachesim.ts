// `kmemu cachesim`: the cache (and TLB) model alone on an address trace.
//
// Loads only the light surfaces of emu/ and traces/ (index-lite.ts), and neither zod (the
// document's schemas are in cachesim-schema.ts, for tools/schemas.ts) nor the progress bar
// unless stderr is a terminal: Node's start-up and module loading are a good part of the time
// of a run on a few million references.

import * as fs from 'node:fs';
import { CachesimHierarchy, UsageError, checkCacheLevelSpec, parseSize, replacementPolicies } from '../emu/index-lite.js';
import type { CacheLevelSpec, CachesimStats, ReplacementPolicy, TlbSpec } from '../emu/index-lite.js';
import { KMEMU_VERSION, inputName, readDin, readDinPipelined } from '../traces/index-lite.js';
import type { CachesimDoc, CachesimRun } from './cachesim-schema.js';
import { CACHESIM_SCHEMA, cachesimCommand, type CachesimOptions } from './commands/cachesim.js';
import type { Progress } from './progress.js';

export type { CachesimDoc, CachesimRun } from './cachesim-schema.js';

export { CACHESIM_SCHEMA } from './commands/cachesim.js';


export interface CachesimIo {
  stdout: { write(text: string): unknown };
  /** Where the progress bar goes (only when it is a TTY). */
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadableStream;
  /**
   * Trace files of at least this many bytes are parsed on a worker thread while this one
   * simulates (readDinPipelined); smaller ones, and stdin, on this thread. The counts are the
   * same either way.
   */
  pipelineMinBytes?: number;
  /** The parsing worker's script, when not the built din-worker.js (tests). */
  dinWorkerUrl?: URL;
}

/**
 * A worker costs some 60 ms of CPU and 50-150 ms to start, and parsing beside the simulation
 * saves at most the shorter of the two (a 40 MB, 2.4 M-reference file parses in some 0.15 s
 * and simulates in as much): below 64 MiB (some 4 M references of 17 bytes) the trace is read
 * on this thread, which also costs the least CPU. Above, the overlap pays.
 */
const PIPELINE_MIN_BYTES = 64 << 20;

/** Parses SIZE:WAYS:LINE:POLICY for option `option`, or throws a UsageError saying what is wrong. */
export function parseLevelSpec(option: string, text: string): CacheLevelSpec {
  const parts = text.split(':');
  const shape = 'SIZE:WAYS:LINE:POLICY (e.g. 32k:8:64:lru)';
  if (parts.length !== 4) throw new UsageError(`option ${option}: expected ${shape}, got ${JSON.stringify(text)}`);
  const [sizeText, waysText, lineText, policyText] = parts as [string, string, string, string];
  const size = parseSize(sizeText);
  if (!Number.isInteger(size) || size <= 0) {
    throw new UsageError(`option ${option}: expected SIZE as bytes or like 32k, 1m, got ${JSON.stringify(sizeText)}`);
  }
  if (!/^\d+$/.test(waysText) || Number(waysText) < 1) {
    throw new UsageError(`option ${option}: expected WAYS as a positive integer, got ${JSON.stringify(waysText)}`);
  }
  if (!/^\d+$/.test(lineText)) throw new UsageError(`option ${option}: expected LINE in bytes, got ${JSON.stringify(lineText)}`);
  const policy = policyText.toLowerCase();
  if (!(replacementPolicies as readonly string[]).includes(policy)) {
    throw new UsageError(`option ${option}: expected POLICY ${replacementPolicies.join(', ')}, got ${JSON.stringify(policyText)}`);
  }
  const spec: CacheLevelSpec = { size, ways: Number(waysText), line: Number(lineText), policy: policy as ReplacementPolicy };
  const problem = checkCacheLevelSpec(spec);
  if (problem !== null) throw new UsageError(`option ${option} ${JSON.stringify(text)}: ${problem}`);
  return spec;
}

export function parseTlbSpec(text: string): TlbSpec {
  const m = /^(\d+):(\d+)$/.exec(text);
  const entries = m === null ? NaN : Number(m[1]);
  const ways = m === null ? NaN : Number(m[2]);
  const sets = entries / ways;
  if (m === null || ways < 1 || !Number.isInteger(sets) || sets < 1 || (sets & (sets - 1)) !== 0) {
    throw new UsageError(`option --tlb: expected ENTRIES:WAYS with ENTRIES / WAYS a power of two (e.g. 64:4), got ${JSON.stringify(text)}`);
  }
  return { entries, ways };
}

/** What `kmemu cachesim TRACE` does with its options (tools/commands/cachesim.ts declares them). */
export async function cachesimMain(trace: string, opts: CachesimOptions, io: CachesimIo): Promise<CachesimStats> {
  const levels = [parseLevelSpec('--l1', opts.l1)];
  if (opts.l2 !== undefined) levels.push(parseLevelSpec('--l2', opts.l2));
  if (opts.l3 !== undefined) {
    if (opts.l2 === undefined) throw new UsageError('option --l3: expected --l2 too');
    levels.push(parseLevelSpec('--l3', opts.l3));
  }
  const seed = Number(opts.seed);
  if (!Number.isInteger(seed)) throw new UsageError(`option --seed: expected an integer, got ${JSON.stringify(opts.seed)}`);
  const hierarchy = new CachesimHierarchy({
    levels,
    inclusive: opts.nonInclusive !== true,
    seed,
    ...(opts.tlb === undefined ? {} : { tlb: parseTlbSpec(opts.tlb) }),
  });
  let total: number | undefined;
  if (trace !== '-') {
    try {
      total = fs.statSync(trace).size;
    } catch {
      total = undefined;
    }
  }
  // The bar only on a terminal (progress.ts's rule): its module is not loaded otherwise.
  const progress: Progress = io.stderr.isTTY === true
    ? (await import('./progress.js')).startProgress({ label: 'cachesim', total, stream: io.stderr })
    : { update: () => undefined, stop: () => undefined };
  const json = opts.json === true;
  let input: { sha256: string };
  const pipelined = total !== undefined && total >= (io.pipelineMinBytes ?? PIPELINE_MIN_BYTES);
  try {
    const read = pipelined ? readDinPipelined : readDin;
    input = await read(trace, (b) => hierarchy.run(b.type, b.addrHi, b.addrLo, b.size, b.count), {
      onProgress: (bytes) => progress.update(bytes),
      stdin: io.stdin,
      // The input's sha256 is in the JSON document only.
      hash: json,
      ...(io.dinWorkerUrl === undefined ? {} : { workerUrl: io.dinWorkerUrl }),
    });
  } finally {
    progress.stop();
  }
  if (opts.flush === true) hierarchy.flush();
  const stats = hierarchy.stats();
  if (!json) {
    io.stdout.write(formatCachesimTable(stats));
    return stats;
  }
  const run: CachesimRun = {
    kmemu: KMEMU_VERSION,
    format: 'din',
    hierarchy: {
      levels: levels.map((l) => ({ size: l.size, ways: l.ways, line: l.line, policy: l.policy })),
      inclusive: opts.nonInclusive !== true,
      tlb: opts.tlb === undefined ? null : parseTlbSpec(opts.tlb),
      seed,
      flush: opts.flush === true,
    },
    trace: { name: inputName(trace), sha256: input.sha256 },
  };
  io.stdout.write(`${JSON.stringify(cachesimJson(stats, run))}\n`);
  return stats;
}

/** The kmemu.cachesim/1 document. */
export function cachesimJson(stats: CachesimStats, run: CachesimRun): CachesimDoc {
  return {
    schema: CACHESIM_SCHEMA,
    run,
    references: stats.references,
    inclusive: stats.inclusive,
    levels: stats.levels.map((l) => ({
      name: l.name,
      accesses: l.accesses,
      reads: l.reads,
      writes: l.writes,
      misses: l.misses,
      readMisses: l.readMisses,
      writeMisses: l.writeMisses,
      writebacks: l.writebacks,
      ifetches: l.ifetches,
      ifetchMisses: l.ifetchMisses,
      misc: l.misc,
      miscMisses: l.miscMisses,
      copybacks: l.copybacks,
      backInvalidations: l.backInvalidations,
      multiBlockRefs: l.multiBlockRefs,
      fills: l.fills,
      bytesFromBelow: l.fills * l.line,
      bytesToBelow: l.writebacks * l.line,
      size: l.size,
      ways: l.ways,
      line: l.line,
      policy: l.policy,
    })),
    ...(stats.tlb === null ? {} : { tlb: stats.tlb }),
  };
}

function rate(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(2)}%`;
}

export function formatCachesimTable(stats: CachesimStats): string {
  const header = ['level', 'accesses', 'reads', 'writes', 'misses', 'miss rate', 'read misses', 'write misses', 'writebacks'];
  const rows = stats.levels.map((l) => [
    `${l.name} ${formatBytes(l.size)}:${l.ways}:${l.line}:${l.policy}`,
    String(l.accesses),
    String(l.reads),
    String(l.writes),
    String(l.misses),
    rate(l.misses, l.accesses),
    String(l.readMisses),
    String(l.writeMisses),
    String(l.writebacks),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const lines = [
    `references: ${stats.references} (${stats.inclusive ? 'inclusive' : 'non-inclusive, Dinero IV-compatible'})`,
    fmt(header),
    ...rows.map(fmt),
  ];
  const extra = stats.levels.filter((l) => l.ifetches + l.misc + l.copybacks + l.backInvalidations > 0);
  for (const l of extra) {
    lines.push(`${l.name}: ifetches ${l.ifetches} (${l.ifetchMisses} misses), misc ${l.misc} (${l.miscMisses} misses), ` +
      `copybacks ${l.copybacks}, back-invalidations ${l.backInvalidations}`);
  }
  if (stats.tlb !== null) {
    const t = stats.tlb;
    lines.push(`tlb ${t.entries}:${t.ways} (4 KiB pages, lru): accesses ${t.accesses}, misses ${t.misses}, miss rate ${rate(t.misses, t.accesses)}`);
  }
  return `${lines.join('\n')}\n`;
}

function formatBytes(n: number): string {
  if (n % 2 ** 30 === 0) return `${n / 2 ** 30}g`;
  if (n % 2 ** 20 === 0) return `${n / 2 ** 20}m`;
  if (n % 2 ** 10 === 0) return `${n / 2 ** 10}k`;
  return String(n);
}

/**
 * Runs `kmemu cachesim ARGS` in-process (ARGS without the subcommand name) and returns the
 * counts. User errors throw UserError; option errors throw commander's CommanderError.
 */
export async function runCachesim(args: readonly string[], io: Partial<CachesimIo> = {}): Promise<CachesimStats | undefined> {
  let result: CachesimStats | undefined;
  const full: CachesimIo = { ...io, stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr, stdin: io.stdin ?? process.stdin };
  const command = cachesimCommand(async (trace, opts) => {
    result = await cachesimMain(trace, opts, full);
  })
    .exitOverride()
    .configureOutput({ writeOut: (s) => full.stdout.write(s), writeErr: (s) => full.stderr.write(s) });
  await command.parseAsync([...args], { from: 'user' });
  return result;
}
