// The README's examples are what the commands beside them print. Every indented block of the
// README whose lines start with `$ npx kmemu ...` is run (with `npx kmemu` the built CLI, in a
// scratch directory where the repository's traces/, test/ and examples/ are visible), and the lines under
// each command must be its output: a line `...` stands for any number of lines, a line ending in
// ` ...` for any ending of that line; otherwise lines match exactly, first to last.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

interface Example {
  line: number;
  command: string;
  expected: string[];
}

/** The `$ npx kmemu` commands of `markdown` with the output lines shown under each. */
export function readmeExamples(markdown: string): Example[] {
  const lines = markdown.split('\n');
  const out: Example[] = [];
  let cur: Example | undefined;
  lines.forEach((text, i) => {
    const m = /^ {4}\$ (npx kmemu .*)$/.exec(text);
    if (m !== null) {
      cur = { line: i + 1, command: m[1]!, expected: [] };
      out.push(cur);
    } else if (cur !== undefined && text.startsWith('    ')) cur.expected.push(text.slice(4).trimEnd());
    else if (cur !== undefined && text.trim() === '' && lines[i + 1]?.startsWith('    ') === true && !lines[i + 1]!.startsWith('    $')) cur.expected.push('');
    else cur = undefined;
  });
  return out;
}

/** Where `expected` (with its `...` elisions) fails to match `actual`, or undefined when it matches. */
export function mismatch(expected: readonly string[], actual: readonly string[]): string | undefined {
  const lineMatches = (e: string, a: string) => (e.endsWith(' ...') ? a.startsWith(e.slice(0, -4)) : a === e);
  const go = (ei: number, ai: number): boolean => {
    if (ei === expected.length) return ai === actual.length;
    if (expected[ei] === '...') {
      for (let k = ai; k <= actual.length; k++) if (go(ei + 1, k)) return true;
      return false;
    }
    return ai < actual.length && lineMatches(expected[ei]!, actual[ai]!) && go(ei + 1, ai + 1);
  };
  if (go(0, 0)) return undefined;
  const first = expected.findIndex((e) => e !== '...' && !actual.some((a) => lineMatches(e, a)));
  return first >= 0 ? `the README shows "${expected[first]}", which the command does not print` : 'the README shows the lines in another order or with lines left out';
}

const repo = resolve('.');
const cli = join(repo, 'dist/tools/cli.js');
const scratch = mkdtempSync(join(tmpdir(), 'kmemu-readme-'));
for (const d of ['traces', 'test', 'examples']) symlinkSync(join(repo, d), join(scratch, d));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(command: string): string[] {
  const args = command.replace(/^npx kmemu /, '').match(/'[^']*'|"[^"]*"|\S+/g)!.map((a) => a.replace(/^(['"])(.*)\1$/, '$2'));
  const text = execFileSync(process.execPath, [cli, ...args], { cwd: scratch, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return text === '' ? [] : text.replace(/\n$/, '').split('\n').map((l) => l.trimEnd());
}

describe('README examples', () => {
  const examples = readmeExamples(readFileSync('README.md', 'utf8'));

  it('the README has examples to check', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  for (const ex of examples) {
    it(`README.md:${ex.line}: ${ex.command}`, () => {
      const actual = run(ex.command);
      expect(mismatch(ex.expected, actual), `README.md:${ex.line}: ${ex.command}\n--- it prints:\n${actual.join('\n')}`).toBeUndefined();
    });
  }
});

describe('mismatch()', () => {
  it('matches exactly, with ... for lines and a trailing " ..." for the rest of a line', () => {
    expect(mismatch(['a', '...', 'd'], ['a', 'b', 'c', 'd'])).toBeUndefined();
    expect(mismatch(['a b ...'], ['a b c'])).toBeUndefined();
    expect(mismatch(['a', 'd'], ['a', 'b', 'd'])).toBe('the README shows the lines in another order or with lines left out');
    expect(mismatch(['a', 'x'], ['a', 'b'])).toBe('the README shows "x", which the command does not print');
  });
});
