import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { fuzz, formatFinding, makeCase } from '../../tools/fuzz/engine.js';
import { checkCase, caseDir } from '../../tools/fuzz/check.js';
import { makeRng, mutateJson, mutateLines, mutateTrace } from '../../tools/fuzz/mutate.js';
import { targets, type TargetName } from '../../tools/fuzz/targets.js';

const root = path.join(import.meta.dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-fuzz-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * The worker runs outside vitest, so it needs JavaScript: every source file transpiled into a
 * scratch tree that sees the worktree's node_modules.
 */
function transpiledWorker(): URL {
  for (const layer of ['emu', 'kernel', 'traces', 'tools']) {
    for (const rel of fs.readdirSync(path.join(root, layer), { recursive: true, encoding: 'utf8' })) {
      if (!rel.endsWith('.ts')) continue;
      const source = fs.readFileSync(path.join(root, layer, rel), 'utf8');
      const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
      const file = path.join(tmp, 'js', layer, rel.replace(/\.ts$/, '.js'));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, out.outputText);
    }
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(tmp, 'js', 'node_modules'));
  return pathToFileURL(path.join(tmp, 'js', 'tools', 'fuzz', 'worker.js'));
}

describe('the fuzzer', () => {
  it('mutations are a function of the seed alone', () => {
    const input = 'kmemu-trace 1\n0 zone 1 z 64\n0 a 1 1\n0 f 1 1\n';
    const run = (seed: string) => {
      const c = { rng: makeRng(seed), corpus: [input], dictionary: ['a', 'f'] };
      return [mutateLines(c, input), mutateTrace(c, input), mutateJson(c, '{"cpus":2,"l1d":{"ways":2}}')];
    };
    expect(run('7')).toEqual(run('7'));
    expect(run('7')).not.toEqual(run('8'));
  });

  it('checkCase() passes a refusal as the one line the CLI prints; makeCase() starts with the seeds, then seeded mutations', async () => {
    const dir = caseDir('machine');
    try {
      const bad = await checkCase('machine', { input: Buffer.from('{"cpus": 0}'), variant: 0 }, dir);
      expect(bad).toEqual({ ok: true, line: `kmemu: ${path.join(dir, 'machine.json')}: field cpus: expected number to be >=1, got 0` });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const corpus = await targets.machine.corpus(root);
    expect(makeCase('machine', corpus, '1', 0).input).toEqual(Buffer.from(corpus[0]!, 'latin1'));
    expect(makeCase('machine', corpus, '1', 50)).toEqual(makeCase('machine', corpus, '1', 50));
  });

  // A few hundred seeded mutations per reader; each must succeed with complete outputs or fail
  // with one line, within its time budget, leaving no file behind. `node dist/tools/fuzz/run.js`
  // runs more (make fuzz). The budget is wall time, so it is generous: a busy 2-core CI machine
  // running other test files beside this one must not turn a slow input into a "hang"; a real
  // hang never finishes, and maxFindings bounds how long the test then takes.
  const workerUrl = transpiledWorker();
  const runs: Record<TargetName, number> = { machine: 300, importer: 300, trace: 200 };
  for (const target of Object.keys(runs) as TargetName[]) {
    it(`${target}: ${runs[target]} seeded mutations end in success or one line, no hang, no leftover file`, async () => {
      const result = await fuzz({ target, runs: runs[target], seed: 'test', budgetMs: 30_000, workerUrl, root, maxFindings: 5 });
      const report = result.findings.map((f) => formatFinding(f)).join('\n\n');
      if (result.findings.length > 0) process.stderr.write(`\nfuzz findings (${target}):\n${report}\n`);
      expect(report).toBe('');
      expect(result.runs).toBe(runs[target]);
      expect(result.accepted).toBeGreaterThan(0);
      expect(result.refused).toBeGreaterThan(0);
    }, 120_000);
  }
});
