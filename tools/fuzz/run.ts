// `node dist/tools/fuzz/run.js --target importer|trace|machine --runs N --seed S`: fuzzes one
// reader (or all) with seeded mutations; each finding is saved to --out with the commands that
// reproduce it, and the exit status is 1 when there is any.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { fuzz, formatFinding, type Finding } from './engine.js';
import { TARGET_NAMES, targets, type TargetName } from './targets.js';

interface RunFlags {
  target: string;
  runs: string;
  seed: string;
  budget: string;
  out: string;
  case?: string;
  show?: boolean;
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

async function main(): Promise<number> {
  const flags = new Command('fuzz')
    .description('fuzz kmemu\'s readers with seeded mutations of their seed corpora')
    .option('--target <name>', `${TARGET_NAMES.join(', ')} or all`, 'all')
    .option('--runs <n>', 'inputs per target (the seeds themselves first)', '3000')
    .option('--seed <s>', 'seed of the mutations (any string)', '1')
    .option('--budget <ms>', 'time budget of one input; over it is a hang', '10000')
    .option('--case <i>', 'check only case i of this seed (reproduces a finding)')
    .option('--out <dir>', 'where findings are saved', 'fuzz-findings')
    .option('--show', 'print what each input did')
    .parse()
    .opts<RunFlags>();
  const names: TargetName[] = flags.target === 'all' ? [...TARGET_NAMES] : [flags.target as TargetName];
  if (!names.every((n) => TARGET_NAMES.includes(n))) throw new Error(`--target: expected ${TARGET_NAMES.join(', ')} or all, got ${JSON.stringify(flags.target)}`);
  const runs = positive('--runs', flags.runs);
  const budgetMs = positive('--budget', flags.budget);
  const only = flags.case === undefined ? undefined : [positive('--case', String(Number(flags.case) + 1)) - 1];
  const root = resolve(import.meta.dirname, '..', '..', '..');
  const all: Finding[] = [];
  for (const target of names) {
    let done = 0;
    const result = await fuzz({
      target, runs, seed: flags.seed, budgetMs, root, workerUrl: new URL('./worker.js', import.meta.url),
      ...(only === undefined ? {} : { only }),
      onCase: (index, v) => {
        done++;
        if (flags.show === true) process.stdout.write(`${target} ${index}: ${v.ok ? (v.line ?? 'accepted') : `${v.kind}: ${v.message}`}\n`);
        if (done % 500 === 0) process.stderr.write(`fuzz ${target}: ${done} inputs\n`);
      },
    });
    process.stdout.write(`fuzz ${target}: ${result.runs} inputs (seed ${flags.seed}): ${result.accepted} accepted, ${result.refused} refused in one line, ${result.findings.length} findings\n`);
    all.push(...result.findings);
  }
  if (all.length === 0) return 0;
  mkdirSync(flags.out, { recursive: true });
  const report: string[] = [];
  for (const f of all) {
    const file = join(flags.out, `${f.target}-seed${f.seed}-case${f.index}-${targets[f.target].fileName}`);
    writeFileSync(file, f.case.input);
    report.push(formatFinding(f, file));
  }
  writeFileSync(join(flags.out, 'findings.txt'), `${report.join('\n\n')}\n`);
  process.stdout.write(`\n${report.join('\n\n')}\n\n${all.length} findings, saved in ${flags.out}/ (findings.txt lists them)\n`);
  return 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
