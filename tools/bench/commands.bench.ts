// Whole commands, as a user types them, against kmemu's goals and beside Dinero IV: each is
// spawned BENCH_RUNS times (default 3) under GNU time (child-usage.ts), which gives the child's
// own CPU time (user + sys), wall time and peak RSS; a row reports the best and the median
// times and the largest peak RSS. Speed goals are judged on the best CPU time (the other
// engineers' jobs load this host, which inflates wall time more than CPU time), the start-up
// goals on the best wall time.
//
//   1. replay of the real Linux capture tiled 82 times (bench-data/linux-x82.trace, 371,239
//      events: scale-capture.ts, then `kmemu trace import --from linux-kmem`) on 2 CPUs of
//      amd64-host, vm_zone and UMA, with --json: ≥ 500 k events/s, ≤ 300 MB, and the documents
//      of the runs byte-identical.
//   2. cachesim, L1 32k:8:64:lru + L2 1m:16:64:lru --non-inclusive --flush --json (--flush: the
//      end flush dineroIV makes before it reports), beside `$DINEROIV <options> < file`:
//      - bench-data/cachesim-7.3m.din, gen-din.ts's recipe with 7,300,000 references: ≥ 3×
//        Dinero IV's references/s; kmemu's counts equal Dinero's pinned ones (BENCH_DIN_7M3);
//      - bench-data/kernel-walk-2.4m.din, a kernel access stream of 2,399,680 references
//        (kernel-walk-din.ts: recordKernelWalk of tools/examples/kernel-walk.ts with 218,000
//        operations): ≥ 1.5×; kmemu's counts equal those of Dinero's report.
//      Without $DINEROIV the ratios and the live count checks are left out, loudly.
//   3. trace import of the capture tiled 231 times (1.25 M lines) and 82 times (444 k lines):
//      ≥ 500 k lines/s, and peak RSS independent of the input's size (taken as: the larger
//      input's at most 10% above the smaller's).
//   4. start-up: `kmemu --help` ≤ 0.15 s wall; a replay of a 12-event trace (`kmemu trace gen
//      pairs --cpus 2 --events 12`), boot included, ≤ 0.25 s wall; and the same replay from a
//      boot image (`kmemu boot --save`, then `replay --from`), whose output must be the same.
// With KMEMU_BASELINE=DIR (another checkout, built) every kmemu command also runs with DIR's
// CLI, and its line says how much faster this checkout is: before and after, side by side.
// Each row prints one line as it finishes; a Markdown table of the goals ends the suite. Counts
// that differ from Dinero's or documents that differ between runs make the run fail (exit 1);
// a goal not met does not.
//
//   node dist/tools/bench/run.js commands        (make bench-commands; DINEROIV=/path/to/dineroIV)

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  GNU_TIME, goalTable, megabytes, perSecond, summarizeUsage, timeCommand, type ChildUsage, type GoalRow, type UsageSummary,
} from './child-usage.js';
import { countDifferences, dineroArgs, dineroLevelCounts, parseDineroReport, type DineroLevelCounts } from './dinero.js';
import { BENCH_DIN_7M3, ensureBenchDin } from './gen-din.js';
import { ensureKernelWalkDin } from './kernel-walk-din.js';
import { IMPORT_TILES, REPLAY_TILES, ensureScaledCapture } from './scale-capture.js';
import { registerBenchSuite } from './suite.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CLI = path.join('dist', 'tools', 'cli.js');
/** KMEMU_BASELINE=DIR: another kmemu checkout (built), whose CLI runs every kmemu command too, side by side. */
const BASELINE = process.env.KMEMU_BASELINE;
const BOOT_IMAGE = path.join('bench-data', 'amd64-host-2cpu.kmemu-img');
const REPLAY_TRACE = path.join('bench-data', 'linux-x82.trace');
const TINY_TRACE = path.join('bench-data', 'pairs-2cpu-12.trace');
const LEVELS = [{ size: 32 << 10, ways: 8, line: 64 }, { size: 1 << 20, ways: 16, line: 64 }];
const CACHESIM_OPTIONS = ['--l1', '32k:8:64:lru', '--l2', '1m:16:64:lru', '--non-inclusive', '--flush', '--json'];

const EVENTS_GOAL = 500e3;
const REPLAY_RSS_GOAL_MB = 300;
const LINES_GOAL = 500e3;
const RSS_GROWTH_GOAL = 0.1;
const HELP_GOAL_S = 0.15;
const TINY_REPLAY_GOAL_S = 0.25;

interface Command {
  label: string;
  /** As typed: `node dist/tools/cli.js ...` or `$DINEROIV ... < file`. */
  shown: string;
  argv: string[];
  stdin?: string;
}

interface Measured {
  summary: UsageSummary;
  stdouts: Buffer[];
}

function kmemu(label: string, args: string[]): Command {
  return { label, shown: `node ${CLI} ${args.join(' ')}`, argv: [process.execPath, CLI, ...args] };
}

function say(line: string): void {
  process.stdout.write(`commands: ${line}\n`);
}

/** The same kmemu command run by the baseline checkout's CLI. */
function baselineOf(c: Command): Command | undefined {
  if (BASELINE === undefined || c.argv[0] !== process.execPath) return undefined;
  const cli = path.join(BASELINE, CLI);
  const b: Command = { label: `${c.label} [baseline]`, shown: `node ${cli} ${c.argv.slice(2).join(' ')}`, argv: [process.execPath, cli, ...c.argv.slice(2)] };
  if (c.stdin !== undefined) b.stdin = c.stdin;
  return b;
}

/** Runs the baseline's `c` when KMEMU_BASELINE is set and prints its line and how much faster this checkout is. */
function sayBaseline(c: Command, m: Measured, count?: number, unit?: string): void {
  const b = baselineOf(c);
  if (b === undefined) return;
  const bm = measure(b);
  say(`${usageLine(b, bm.summary, count, unit)}; this checkout ${(bm.summary.bestCpuSeconds / m.summary.bestCpuSeconds).toFixed(2)}× of CPU time, ` +
    `${(bm.summary.bestWallSeconds / m.summary.bestWallSeconds).toFixed(2)}× of wall time, peak RSS ${megabytes(m.summary.maxRssKiB)} against ${megabytes(bm.summary.maxRssKiB)}`);
}

function measure(c: Command): Measured {
  const usages: ChildUsage[] = [];
  const stdouts: Buffer[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = timeCommand(c.argv, c.stdin);
    usages.push(r.usage);
    stdouts.push(r.stdout);
  }
  return { summary: summarizeUsage(usages), stdouts };
}

/** One row's line: the command, then its times (and rates of `count` `unit`), peak RSS. */
function usageLine(c: Command, s: UsageSummary, count?: number, unit?: string): string {
  const rate = (sec: number) => (count === undefined ? '' : ` (${perSecond(count, sec)} ${unit}/s)`);
  return `${c.label}: CPU best ${s.bestCpuSeconds.toFixed(2)} s${rate(s.bestCpuSeconds)}, median ${s.medianCpuSeconds.toFixed(2)} s; ` +
    `wall best ${s.bestWallSeconds.toFixed(2)} s${rate(s.bestWallSeconds)}, median ${s.medianWallSeconds.toFixed(2)} s; ` +
    `peak RSS ${megabytes(s.maxRssKiB)}; ${s.runs} run${s.runs === 1 ? '' : 's'} of \`${c.shown}${c.stdin === undefined ? '' : ` < ${c.stdin}`}\``;
}

function countLines(file: string): number {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let lines = 0;
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) {
      for (let i = buf.indexOf(10); i >= 0 && i < n; i = buf.indexOf(10, i + 1)) lines++;
    }
  } finally {
    fs.closeSync(fd);
  }
  return lines;
}

/** Events of a plain kmemu trace: its lines but the magic line and the # comments. */
function countTraceEvents(file: string): number {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l, i) => i > 0 && l !== '' && !l.startsWith('#')).length;
}

/** Runs a preparing command (not timed); throws with its stderr when it fails. */
function prepare(args: string[]): void {
  const r = spawnSync(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`node ${CLI} ${args.join(' ')} failed: ${r.stderr.toString('utf8').trim()}`);
}

/** The dineroIV binary, or why there is none. */
function dineroBinary(): { path: string } | { why: string } {
  const d = process.env.DINEROIV;
  if (d === undefined || d === '') return { why: 'DINEROIV is not set' };
  try {
    fs.accessSync(d, fs.constants.X_OK);
    if (!fs.statSync(d).isFile()) return { why: `DINEROIV=${d} is not a file` };
  } catch {
    return { why: `DINEROIV=${d} is not an executable file` };
  }
  return { path: d };
}

interface Inputs {
  replayEvents: number;
  kernelWalk: string;
  kernelWalkRefs: number;
  din7m3: string;
  captures: { file: string; lines: number }[];
}

let inputs: Inputs | undefined;

function setup(): Inputs {
  if (!fs.existsSync(GNU_TIME)) {
    throw new Error(`${GNU_TIME} is missing: install Debian's package time (make bench does it with apt-get, as root)`);
  }
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run from the repository root after make build`);
  if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`BENCH_RUNS: expected a positive integer, got ${JSON.stringify(process.env.BENCH_RUNS)}`);
  const captures = [IMPORT_TILES, REPLAY_TILES].map((tiles) => ensureScaledCapture(tiles));
  if (!fs.existsSync(REPLAY_TRACE)) prepare(['trace', 'import', '--from', 'linux-kmem', captures[1]!, '-o', REPLAY_TRACE]);
  if (!fs.existsSync(TINY_TRACE)) prepare(['trace', 'gen', 'pairs', '--cpus', '2', '--events', '12', '--seed', '1', '-o', TINY_TRACE]);
  if (!fs.existsSync(BOOT_IMAGE)) prepare(['boot', '--machine', 'amd64-host', '--cpus', '2', '--save', BOOT_IMAGE]);
  const din7m3 = ensureBenchDin(BENCH_DIN_7M3.references, BENCH_DIN_7M3.path);
  const kernelWalk = ensureKernelWalkDin();
  return {
    replayEvents: countTraceEvents(REPLAY_TRACE),
    kernelWalk,
    kernelWalkRefs: countLines(kernelWalk),
    din7m3,
    captures: captures.map((file) => ({ file, lines: countLines(file) })),
  };
}

/** kmemu's counts of each level in a kmemu.cachesim/1 document. */
function kmemuLevels(json: Buffer): Record<keyof DineroLevelCounts, number>[] {
  return (JSON.parse(json.toString('utf8')) as { levels: Record<keyof DineroLevelCounts, number>[] }).levels;
}

async function run(): Promise<void> {
  const inp = inputs!;
  const rows: GoalRow[] = [];
  const failures: string[] = [];
  say(`${RUNS} runs of each command; CPU = the child's user + sys, by GNU time; load average ${os.loadavg()[0]!.toFixed(1)} at the start`);

  // 1. replay of the tiled Linux capture
  for (const allocator of ['vmzone', 'uma']) {
    const c = kmemu(`replay linux-x82 (${inp.replayEvents.toLocaleString('en-US')} events), 2 CPUs of amd64-host, ${allocator}`,
      ['replay', REPLAY_TRACE, '--machine', 'amd64-host', '--cpus', '2', '--allocator', allocator, '--json']);
    const m = measure(c);
    const same = m.stdouts.every((s) => s.equals(m.stdouts[0]!));
    if (!same) failures.push(`${c.label}: the --json documents of the ${RUNS} runs differ`);
    say(`${usageLine(c, m.summary, inp.replayEvents, 'events')}; --json ${same ? 'byte-identical' : 'DIFFERENT'} across runs`);
    sayBaseline(c, m, inp.replayEvents, 'events');
    const s = m.summary;
    rows.push({
      row: `1. replay linux-x82, ${allocator}: events/s`,
      measured: `${perSecond(inp.replayEvents, s.bestCpuSeconds)} of CPU time, ${perSecond(inp.replayEvents, s.bestWallSeconds)} of wall time`,
      goal: `≥ ${perSecond(EVENTS_GOAL, 1)}`,
      met: inp.replayEvents / s.bestCpuSeconds >= EVENTS_GOAL,
    });
    rows.push({ row: `1. replay linux-x82, ${allocator}: peak RSS`, measured: megabytes(s.maxRssKiB), goal: `≤ ${REPLAY_RSS_GOAL_MB} MB`, met: s.maxRssKiB * 1024 <= REPLAY_RSS_GOAL_MB * 1e6 });
    rows.push({ row: `1. replay linux-x82, ${allocator}: --json of ${RUNS} runs`, measured: same ? 'byte-identical' : 'different', goal: 'byte-identical', met: same });
  }

  // 2. cachesim beside Dinero IV
  const dinero = dineroBinary();
  if ('why' in dinero) say(`*** Dinero IV not timed: ${dinero.why} ***`);
  const din = [
    { name: '7.3 M refs', file: inp.din7m3, refs: BENCH_DIN_7M3.references, goal: 3, pinned: BENCH_DIN_7M3.dinero },
    { name: '2.4 M refs (kernel walk)', file: inp.kernelWalk, refs: inp.kernelWalkRefs, goal: 1.5, pinned: undefined },
  ];
  for (const d of din) {
    const c = kmemu(`cachesim ${d.name}`, ['cachesim', ...CACHESIM_OPTIONS, d.file]);
    const m = measure(c);
    say(usageLine(c, m.summary, d.refs, 'references'));
    sayBaseline(c, m, d.refs, 'references');
    const got = kmemuLevels(m.stdouts[0]!);
    const wrong: string[] = [];
    if (!m.stdouts.every((s) => s.equals(m.stdouts[0]!))) wrong.push(`the --json documents of the ${RUNS} runs differ`);
    if (d.pinned !== undefined) wrong.push(...[d.pinned.l1, d.pinned.l2].flatMap((want, i) => countDifferences(`l${i + 1}`, got[i]!, want)));
    let ratio: number | undefined;
    let ratioText = '';
    let live = false;
    if ('path' in dinero) {
      const dc: Command = { label: `Dinero IV ${d.name}`, shown: `${dinero.path} ${dineroArgs(LEVELS).join(' ')}`, argv: [dinero.path, ...dineroArgs(LEVELS)], stdin: d.file };
      const dm = measure(dc);
      say(usageLine(dc, dm.summary, d.refs, 'references'));
      const report = parseDineroReport(dm.stdouts[0]!.toString('utf8'));
      const want = report.slice(0, 2).map((l, i) => dineroLevelCounts(l, LEVELS[i]!.line));
      wrong.push(...want.flatMap((w, i) => countDifferences(`l${i + 1}`, got[i]!, w)));
      if (d.pinned !== undefined) {
        const pins = [d.pinned.l1, d.pinned.l2].flatMap((p, i) => countDifferences(`pinned l${i + 1}`, p, want[i]!));
        if (pins.length > 0) wrong.push(`this Dinero IV does not print the pinned counts (${pins.join('; ')})`);
      }
      live = true;
      ratio = dm.summary.bestCpuSeconds / m.summary.bestCpuSeconds;
      const wallRatio = dm.summary.bestWallSeconds / m.summary.bestWallSeconds;
      ratioText = `${ratio.toFixed(2)}× of CPU time, ${wallRatio.toFixed(2)}× of wall time (kmemu ${perSecond(d.refs, m.summary.bestCpuSeconds)}/s, ` +
        `Dinero IV ${perSecond(d.refs, dm.summary.bestCpuSeconds)}/s of CPU time)`;
      say(`cachesim ${d.name}: kmemu's references/s ÷ Dinero IV's: ${ratioText}`);
    }
    const checked = [d.pinned !== undefined ? 'pinned' : '', live ? 'live' : ''].filter((x) => x !== '').join(' and ');
    if (wrong.length > 0) {
      failures.push(`cachesim ${d.name}: ${wrong.join('; ')}`);
      say(`*** cachesim ${d.name}: ${wrong.join('; ')} ***`);
    } else if (checked !== '') say(`cachesim ${d.name}: counts equal Dinero IV's (${checked})`);
    rows.push({
      row: `2. cachesim ${d.name}: references/s ÷ Dinero IV's`,
      measured: ratio === undefined ? `kmemu ${perSecond(d.refs, m.summary.bestCpuSeconds)}/s of CPU time; Dinero IV not timed` : ratioText,
      goal: `≥ ${d.goal}×`,
      met: ratio === undefined ? null : ratio >= d.goal,
    });
    rows.push({
      row: `2. cachesim ${d.name}: counts`,
      measured: checked === '' ? 'Dinero IV not run' : wrong.length === 0 ? `equal Dinero IV's (${checked})` : 'DIFFERENT',
      goal: "equal Dinero IV's",
      met: checked === '' ? null : wrong.length === 0,
    });
  }

  // 3. trace import
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-bench-import-'));
  const imports: UsageSummary[] = [];
  try {
    for (const cap of inp.captures) {
      const c = kmemu(`trace import ${path.basename(cap.file)} (${cap.lines.toLocaleString('en-US')} lines)`,
        ['trace', 'import', '--from', 'linux-kmem', cap.file, '-o', path.join(dir, 'import.trace')]);
      const m = measure(c);
      imports.push(m.summary);
      say(usageLine(c, m.summary, cap.lines, 'lines'));
      sayBaseline(c, m, cap.lines, 'lines');
      rows.push({
        row: `3. trace import ${perSecond(cap.lines, 1)} lines: lines/s`,
        measured: `${perSecond(cap.lines, m.summary.bestCpuSeconds)} of CPU time, ${perSecond(cap.lines, m.summary.bestWallSeconds)} of wall time`,
        goal: `≥ ${perSecond(LINES_GOAL, 1)}`,
        met: cap.lines / m.summary.bestCpuSeconds >= LINES_GOAL,
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const [big, small] = [imports[0]!.maxRssKiB, imports[1]!.maxRssKiB];
  const growth = big / small - 1;
  rows.push({
    row: `3. trace import: peak RSS, ${perSecond(inp.captures[0]!.lines, 1)} vs ${perSecond(inp.captures[1]!.lines, 1)} lines`,
    measured: `${megabytes(big)} vs ${megabytes(small)} (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(0)}%)`,
    goal: `independent of input size (≤ +${RSS_GROWTH_GOAL * 100}%)`,
    met: growth <= RSS_GROWTH_GOAL,
  });

  // 4. start-up
  const help = kmemu('kmemu --help', ['--help']);
  const hm = measure(help);
  say(usageLine(help, hm.summary));
  sayBaseline(help, hm);
  rows.push({ row: '4. start-up: kmemu --help, wall', measured: `${hm.summary.bestWallSeconds.toFixed(2)} s (CPU ${hm.summary.bestCpuSeconds.toFixed(2)} s)`, goal: `≤ ${HELP_GOAL_S} s`, met: hm.summary.bestWallSeconds <= HELP_GOAL_S });
  const tiny = kmemu('replay of 12 events, 2 CPUs of amd64-host (boot included)', ['replay', TINY_TRACE, '--machine', 'amd64-host', '--cpus', '2']);
  const tm = measure(tiny);
  say(usageLine(tiny, tm.summary));
  sayBaseline(tiny, tm);
  rows.push({ row: '4. start-up: replay of 12 events, wall', measured: `${tm.summary.bestWallSeconds.toFixed(2)} s (CPU ${tm.summary.bestCpuSeconds.toFixed(2)} s)`, goal: `≤ ${TINY_REPLAY_GOAL_S} s`, met: tm.summary.bestWallSeconds <= TINY_REPLAY_GOAL_S });
  // The same replay from a boot image (kmemu boot --save): what is left when boot is not run.
  const fromImage = kmemu('replay of 12 events from a boot image (replay --from)', ['replay', TINY_TRACE, '--from', BOOT_IMAGE]);
  const fm = measure(fromImage);
  say(usageLine(fromImage, fm.summary));
  const same = fm.stdouts[0]!.equals(tm.stdouts[0]!);
  if (!same) failures.push('the 12-event replay from a boot image does not print what the booting one prints');
  rows.push({ row: '4. start-up: replay of 12 events from a boot image (--from), wall', measured: `${fm.summary.bestWallSeconds.toFixed(2)} s (CPU ${fm.summary.bestCpuSeconds.toFixed(2)} s), output ${same ? 'identical' : 'DIFFERENT'}`, goal: `≤ ${TINY_REPLAY_GOAL_S} s`, met: fm.summary.bestWallSeconds <= TINY_REPLAY_GOAL_S && same });

  const met = rows.filter((r) => r.met === true).length;
  say(`goals: ${met} of ${rows.length} met (best of ${RUNS} runs; rates judged on CPU time, start-up on wall time)\n`);
  process.stdout.write(goalTable(rows));
  if ('why' in dinero) say(`*** Dinero IV not timed: ${dinero.why} ***`);
  if (failures.length > 0) {
    for (const f of failures) say(`*** FAILED: ${f} ***`);
    process.exitCode = 1;
  }
}

registerBenchSuite({
  name: 'commands',
  setup: () => {
    inputs = setup();
  },
  run,
});
