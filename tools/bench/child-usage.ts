// What a whole command costs, as the kernel accounted it to the child: Node cannot read a
// child's rusage, so each command runs under GNU time (Debian's package `time`, /usr/bin/time),
// which wait4()s for it and writes its wall time, user and system CPU time and peak RSS
// (ru_maxrss, KiB) to a file of its own (-o), apart from the command's stdout and stderr.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const GNU_TIME = '/usr/bin/time';
/** GNU time's -f format: a tag, then %e (wall s), %U (user s), %S (system s), %M (peak RSS, KiB). */
export const GNU_TIME_FORMAT = 'kmemu-bench %e %U %S %M';

export interface ChildUsage {
  wallSeconds: number;
  userSeconds: number;
  sysSeconds: number;
  /** user + sys. */
  cpuSeconds: number;
  maxRssKiB: number;
}

const LINE = /^kmemu-bench (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+)$/;

/**
 * The usage in GNU time's -o file written with GNU_TIME_FORMAT. GNU time puts "Command exited
 * with non-zero status N" (or "Command terminated by signal N") on a line before it.
 */
export function parseGnuTime(text: string): ChildUsage {
  const line = text.split('\n').map((l) => l.trim()).filter((l) => l !== '').at(-1) ?? '';
  const m = LINE.exec(line);
  if (m === null) throw new Error(`GNU time: expected a last line "${GNU_TIME_FORMAT}", got ${JSON.stringify(line)}`);
  const [wall, user, sys, rss] = m.slice(1).map(Number) as [number, number, number, number];
  // %U and %S have two decimals: round their sum to the hundredth it is.
  return { wallSeconds: wall, userSeconds: user, sysSeconds: sys, cpuSeconds: Math.round((user + sys) * 100) / 100, maxRssKiB: rss };
}

export interface TimedRun {
  usage: ChildUsage;
  stdout: Buffer;
}

/**
 * Runs `argv` once under GNU time, stdin from `stdinFile` (or none), stdout captured; throws,
 * with the end of its stderr, when it fails.
 */
export function timeCommand(argv: readonly string[], stdinFile?: string): TimedRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-bench-time-'));
  const out = path.join(dir, 'usage');
  const input = stdinFile === undefined ? 'ignore' : fs.openSync(stdinFile, 'r');
  try {
    const r = spawnSync(GNU_TIME, ['-o', out, '-f', GNU_TIME_FORMAT, ...argv], { stdio: [input, 'pipe', 'pipe'], maxBuffer: 1 << 28 });
    if (r.error !== undefined) throw new Error(`${GNU_TIME} ${argv.join(' ')}: ${r.error.message}`);
    if (r.status !== 0) {
      const tail = r.stderr.toString('utf8').trim().split('\n').slice(-3).join(' / ');
      throw new Error(`${argv.join(' ')} exited with status ${r.status ?? r.signal}: ${tail}`);
    }
    return { usage: parseGnuTime(fs.readFileSync(out, 'utf8')), stdout: r.stdout };
  } finally {
    if (typeof input === 'number') fs.closeSync(input);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Several runs of one command: best (smallest) and median times, the largest peak RSS. */
export interface UsageSummary {
  runs: number;
  bestCpuSeconds: number;
  medianCpuSeconds: number;
  bestWallSeconds: number;
  medianWallSeconds: number;
  maxRssKiB: number;
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median: expected at least one value');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarizeUsage(usages: readonly ChildUsage[]): UsageSummary {
  const cpu = usages.map((u) => u.cpuSeconds);
  const wall = usages.map((u) => u.wallSeconds);
  return {
    runs: usages.length,
    bestCpuSeconds: Math.min(...cpu),
    medianCpuSeconds: median(cpu),
    bestWallSeconds: Math.min(...wall),
    medianWallSeconds: median(wall),
    maxRssKiB: Math.max(...usages.map((u) => u.maxRssKiB)),
  };
}

/** `count` per second of `seconds`, e.g. "23.6 k" or "4.27 M" (three significant digits); "∞" for 0 s. */
export function perSecond(count: number, seconds: number): string {
  if (seconds <= 0) return '∞';
  const rate = count / seconds;
  const [div, unit] = rate >= 1e6 ? [1e6, ' M'] : rate >= 1e3 ? [1e3, ' k'] : [1, ''];
  const v = rate / div;
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)}${unit}`;
}

/** KiB as MB (10^6 bytes), one decimal. */
export function megabytes(kib: number): string {
  return `${((kib * 1024) / 1e6).toFixed(1)} MB`;
}

export interface GoalRow {
  /** What is measured, e.g. "replay linux-x82, vmzone: events/s (CPU)". */
  row: string;
  measured: string;
  goal: string;
  /** null: not measured (e.g. Dinero IV not given). */
  met: boolean | null;
}

/** The rows as a Markdown table: row | measured | goal | met. */
export function goalTable(rows: readonly GoalRow[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const lines = ['| row | measured | goal | met |', '|---|---|---|---|'];
  for (const r of rows) {
    const met = r.met === null ? 'not measured' : r.met ? 'met' : '**not met**';
    lines.push(`| ${cell(r.row)} | ${cell(r.measured)} | ${cell(r.goal)} | ${met} |`);
  }
  return `${lines.join('\n')}\n`;
}
