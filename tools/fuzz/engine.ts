// The fuzz loop: seed inputs first, then seeded mutations of them, each checked in a worker
// thread under a time budget (a run over budget is a hang: the worker is stopped and replaced).
// Case i of (target, seed) is the same input on every machine, so `--case i` reproduces it.

import { rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { caseDir, type FindingKind, type Verdict } from './check.js';
import { makeRng } from './mutate.js';
import { targets, type FuzzCase, type TargetName } from './targets.js';
import type { WorkerRequest } from './worker.js';

export interface FuzzOptions {
  target: TargetName;
  runs: number;
  seed: string;
  /** Wall-clock budget of one input (ms). */
  budgetMs: number;
  /** The compiled worker (dist/tools/fuzz/worker.js). */
  workerUrl: URL;
  /** The repository, for the seed corpus. */
  root: string;
  /** Stop after this many findings. */
  maxFindings?: number;
  /** Check only these case indexes. */
  only?: readonly number[];
  onCase?: (index: number, verdict: Verdict) => void;
}

export interface Finding {
  target: TargetName;
  seed: string;
  index: number;
  kind: FindingKind;
  message: string;
  case: FuzzCase;
}

export interface FuzzResult {
  runs: number;
  /** Inputs the reader accepted, and inputs it refused with a one-line error. */
  accepted: number;
  refused: number;
  findings: Finding[];
}

/** Case `index`: a seed as it is while index < corpus size, then a mutation of one. */
export function makeCase(target: TargetName, corpus: readonly string[], seed: string, index: number): FuzzCase {
  const t = targets[target];
  const rng = makeRng(`${seed}:${target}:${index}`);
  const variant = Math.floor(rng() * t.variants);
  if (index < corpus.length) return { input: Buffer.from(corpus[index]!, 'latin1'), variant };
  const base = corpus[Math.floor(rng() * corpus.length)]!;
  const text = t.mutate({ rng, corpus, dictionary: t.dictionary }, base);
  return { input: Buffer.from(text, 'latin1'), variant };
}

class WorkerRunner {
  private worker: Worker | undefined;
  private settle: ((v: Verdict) => void) | undefined;

  constructor(private readonly url: URL) {}

  private start(): Worker {
    const w = new Worker(this.url, { stdout: true, stderr: true, resourceLimits: { maxOldGenerationSizeMb: 1024 } });
    w.stdout.resume();
    w.stderr.resume();
    // A worker stopped for a hang may still report; only the current one counts.
    w.on('message', (v: Verdict) => this.worker === w && this.finish(v));
    w.on('error', (e: Error) => this.worker === w && this.finish({ ok: false, kind: 'worker died', message: `${e.name}: ${e.message}` }, true));
    w.on('exit', (code) => this.worker === w && this.finish({ ok: false, kind: 'worker died', message: `the worker exited with status ${code}` }, true));
    return w;
  }

  private finish(v: Verdict, dead = false): void {
    if (dead) this.worker = undefined;
    const s = this.settle;
    this.settle = undefined;
    s?.(v);
  }

  async check(req: WorkerRequest, budgetMs: number): Promise<Verdict> {
    this.worker ??= this.start();
    const w = this.worker;
    let timer: NodeJS.Timeout | undefined;
    const verdict = await new Promise<Verdict>((resolve) => {
      this.settle = resolve;
      timer = setTimeout(() => {
        this.worker = undefined;
        this.finish({ ok: false, kind: 'hang', message: `no result within the ${budgetMs} ms budget` });
        void w.terminate();
      }, budgetMs);
      w.postMessage(req);
    });
    clearTimeout(timer);
    return verdict;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.settle = undefined;
    if (w !== undefined) {
      w.removeAllListeners('exit');
      await w.terminate();
    }
  }
}

export async function fuzz(o: FuzzOptions): Promise<FuzzResult> {
  const corpus = await targets[o.target].corpus(o.root);
  const runner = new WorkerRunner(o.workerUrl);
  const result: FuzzResult = { runs: 0, accepted: 0, refused: 0, findings: [] };
  try {
    const indexes = o.only ?? Array.from({ length: o.runs }, (_, i) => i);
    for (const index of indexes) {
      const c = makeCase(o.target, corpus, o.seed, index);
      const dir = caseDir(o.target);
      let verdict: Verdict;
      try {
        verdict = await runner.check({ target: o.target, case: c, dir }, o.budgetMs);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      result.runs++;
      o.onCase?.(index, verdict);
      if (verdict.ok) {
        if (verdict.line === undefined) result.accepted++;
        else result.refused++;
      } else {
        result.findings.push({ target: o.target, seed: o.seed, index, kind: verdict.kind, message: verdict.message, case: c });
        if (o.maxFindings !== undefined && result.findings.length >= o.maxFindings) break;
      }
    }
  } finally {
    await runner.close();
  }
  return result;
}

/** How a finding prints: what went wrong, the input, and the command that reproduces it. */
export function formatFinding(f: Finding, savedAs?: string): string {
  const t = targets[f.target];
  const text = Buffer.from(f.case.input).toString('latin1');
  const shown = text.length > 400 ? `${JSON.stringify(text.slice(0, 400))} ... (${text.length} bytes)` : JSON.stringify(text);
  const lines = [
    `${f.target} case ${f.index} (seed ${f.seed}): ${f.kind}: ${f.message}`,
    `  input: ${shown}`,
    `  reproduce: node dist/tools/fuzz/run.js --target ${f.target} --seed ${f.seed} --case ${f.index}${savedAs === undefined ? '' : ` (saved as ${savedAs})`}`,
  ];
  if (savedAs !== undefined) lines.push(`  as a user: ${t.command(savedAs, f.case.variant)}`);
  return lines.join('\n');
}
