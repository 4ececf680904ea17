// kmemu's vmem against FreeBSD's own subr_vmem.c (tools/vmem-ref/: the seed's file compiled in
// userland on shims of ours): the same generated scripts must print the same lines, byte for
// byte, and end the same way. The reference is built with the system cc; without one this test
// fails (make test installs gcc when it is missing).
//
// The scripts here use one to three arenas without imports: with imports (a child arena taking
// spans from its parent) kmemu does not yet match upstream on every script (issue 11's open
// work), and that is said in the closing note rather than hidden by picking seeds.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReferenceRaw } from '../../tools/vmem-ref/build.js';
import { generateVmemScript } from '../../tools/vmem-ref/gen.js';
import { buildOnce, kmemu } from './built-cli.js';

const SEEDS = 40;
let dir = '';

beforeAll(() => {
  buildOnce();
  dir = mkdtempSync(join(tmpdir(), 'kmemu-vmem-equiv-'));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('vmem: kmemu against FreeBSD subr_vmem.c', () => {
  it(`${SEEDS} generated scripts (best fit, first fit, align, phase, nocross, bounds, frees) print the same`, () => {
    const mismatches: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const script = generateVmemScript(seed, { imports: false });
      const file = join(dir, `s${seed}.vmem`);
      writeFileSync(file, script);
      const ref = runReferenceRaw(script);
      expect(ref.status, `reference on seed ${seed}: ${ref.stderr}`).toBe(0);
      const ours = kmemu(['vmem', 'run', '--check', file]);
      if (ours.status !== 0 || ours.stdout !== ref.stdout) mismatches.push(`seed ${seed}: exit ${ours.status} ${ours.stderr.trim()}`);
    }
    expect(mismatches).toEqual([]);
  }, 300_000);
});
