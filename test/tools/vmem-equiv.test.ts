// kmemu's vmem against FreeBSD's own subr_vmem.c (tools/vmem-ref/: the seed's file compiled in
// userland on shims of ours): the same generated scripts must print the same lines, byte for
// byte, and end the same way. The reference is built with the system cc; without one this test
// fails (make test installs gcc when it is missing).
//
// Scripts without imports run with --check (vmem_check after every operation). Scripts with
// imports (a child arena taking spans from its parent) run without it: their arenas hold many
// small segments and vmem_check, quadratic in them as upstream's is, would take minutes on the
// emulated machine. Some of them end in the one assertion both implementations reach (see
// tools/vmem-ref/gen.ts): the test wants the same output and the same assertion.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReferenceRaw } from '../../tools/vmem-ref/build.js';
import { generateVmemScript } from '../../tools/vmem-ref/gen.js';
import { buildOnce, kmemu } from './built-cli.js';

const SEEDS = 40;
/** Of the first SEEDS seeds, those whose script imports, and those of them that end in a panic. */
const IMPORT_SEEDS = 19;
const IMPORT_PANICS = 10;
let dir = '';

beforeAll(() => {
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'kmemu-vmem-equiv-'));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The assertion a panic message names, without the path the reference was compiled from. */
function assertion(stderr: string): string | undefined {
  const m = /panic: (Assertion .* failed at) \S*subr_vmem\.c:(\d+)/.exec(stderr);
  return m === null ? undefined : `${m[1]} subr_vmem.c:${m[2]}`;
}

function compare(seeds: number[], imports: boolean, check: boolean): { mismatches: string[]; panics: number } {
  const mismatches: string[] = [];
  let panics = 0;
  for (const seed of seeds) {
    const script = generateVmemScript(seed, { imports });
    const file = join(dir, `s${seed}-${imports}.vmem`);
    writeFileSync(file, script);
    const ref = runReferenceRaw(script);
    const ours = kmemu(['vmem', 'run', ...(check ? ['--check'] : []), file]);
    const refPanic = assertion(ref.stderr);
    if (ref.status !== 0 && refPanic === undefined) throw new Error(`reference on seed ${seed}: ${ref.stderr}`);
    if (refPanic !== undefined) panics++;
    const same = ours.stdout === ref.stdout &&
      (refPanic === undefined ? ours.status === 0 : ours.status === 1 && assertion(ours.stderr) === refPanic);
    if (!same) mismatches.push(`seed ${seed}: exit ${ours.status} ${ours.stderr.trim()} (reference: exit ${ref.status} ${refPanic ?? ''})`);
  }
  return { mismatches, panics };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('vmem: kmemu against FreeBSD subr_vmem.c', () => {
  it('the README\'s tour (examples/vmem/tour.vmem) prints the same', () => {
    const file = 'examples/vmem/tour.vmem';
    const ref = runReferenceRaw(readFileSync(file, 'utf8'));
    expect(ref.status, ref.stderr).toBe(0);
    expect(kmemu(['vmem', 'run', '--check', file]).stdout).toBe(ref.stdout);
  }, 60_000);

  it(`${SEEDS} generated scripts (best fit, first fit, align, phase, nocross, bounds, frees) print the same`, () => {
    const { mismatches, panics } = compare(range(SEEDS), false, true);
    expect(mismatches).toEqual([]);
    expect(panics).toBe(0);
  }, 300_000);

  it(`the scripts of the first ${SEEDS} seeds that import from a parent arena print the same and end the same`, () => {
    const seeds = range(SEEDS).filter((seed) => /^import /m.test(generateVmemScript(seed, {})));
    expect(seeds).toHaveLength(IMPORT_SEEDS);
    const { mismatches, panics } = compare(seeds, true, false);
    expect(mismatches).toEqual([]);
    expect(panics).toBe(IMPORT_PANICS);
  }, 300_000);
});
