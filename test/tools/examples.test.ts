import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { recordKernelWalk } from '../../tools/examples/kernel-walk.js';

describe('bundled example traces', () => {
  it('kernel-walk.din.gz is exactly what the machine records for the example workload', () => {
    const bundled = gunzipSync(readFileSync('traces/examples/kernel-walk.din.gz')).toString('utf8');
    const fresh = recordKernelWalk();
    expect(fresh.length).toBe(bundled.length);
    expect(fresh === bundled).toBe(true);
    expect(fresh.slice(0, 42)).toBe('r ffffffff81000000 8\nr ffffffff81001000 8\n');
  });
});
