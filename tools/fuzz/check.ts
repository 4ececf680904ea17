// The invariant of one fuzz input, checked in-process: the reader either succeeds and leaves
// complete outputs, or fails with an error the CLI prints as one line (a UserError or a
// KernelPanic through formatCliError); and it leaves no other file behind.

import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCliError } from '../errors.js';
import { targets, type FuzzCase, type TargetName } from './targets.js';

export type FindingKind = 'crash' | 'multi-line message' | 'leftover file' | 'incomplete output' | 'hang' | 'worker died';

export type Verdict =
  | { ok: true; line?: string }
  | { ok: false; kind: FindingKind; message: string };

function describe(err: unknown): string {
  if (err instanceof Error) {
    const frames = (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 4).map((l) => l.trim());
    return `${err.name}: ${err.message}${frames.length > 0 ? ` | ${frames.join(' | ')}` : ''}`;
  }
  return `thrown ${typeof err}: ${String(err)}`;
}

/** A fresh empty directory for one case (the caller removes it, even after a hang). */
export function caseDir(name: TargetName): string {
  return mkdtempSync(join(tmpdir(), `kmemu-fuzz-${name}-`));
}

/** Runs one input through its target in the empty directory `dir` and judges the outcome. */
export async function checkCase(name: TargetName, c: FuzzCase, dir: string): Promise<Verdict> {
  const target = targets[name];
  {
    const file = join(dir, target.fileName);
    const outDir = join(dir, 'out');
    mkdirSync(outDir);
    writeFileSync(file, c.input);
    let verdict: Verdict;
    let succeeded = false;
    try {
      await target.run(file, outDir, c.variant);
      succeeded = true;
      verdict = { ok: true };
    } catch (err) {
      const report = formatCliError(err);
      if (report === undefined) verdict = { ok: false, kind: 'crash', message: describe(err) };
      else if (/[\r\n]/.test(report.line)) verdict = { ok: false, kind: 'multi-line message', message: report.line };
      else verdict = { ok: true, line: report.line };
    }
    const left = readdirSync(outDir).sort();
    const expected = succeeded ? [...target.outputs].sort() : [];
    if (verdict.ok && left.join('\n') !== expected.join('\n')) {
      const what = succeeded ? 'after a success' : `after "${verdict.line ?? ''}"`;
      verdict = { ok: false, kind: 'leftover file', message: `${what} the output directory holds [${left.join(', ')}], expected [${expected.join(', ')}]` };
    }
    if (verdict.ok && succeeded) {
      try {
        await target.checkOutputs(outDir);
      } catch (err) {
        verdict = { ok: false, kind: 'incomplete output', message: describe(err) };
      }
    }
    const beside = readdirSync(dir).filter((f) => f !== 'out' && f !== target.fileName);
    if (verdict.ok && beside.length > 0) verdict = { ok: false, kind: 'leftover file', message: `files left beside the input: ${beside.join(', ')}` };
    return verdict;
  }
}
