// `kmemu sweep plot DIR`: one chart of a sweep's results.jsonl (tools/sweep/plot.ts draws it).

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../emu/index.js';
import { writeFileAtomic } from '../../traces/index.js';
import { chart } from './plot.js';
import type { SweepRow } from './point.js';
import type { SweepDoc, SweepIo } from './run.js';

export async function plotSweep(dir: string, opts: { x: string; y: string; color?: string | undefined; output?: string | undefined }, io: SweepIo): Promise<string> {
  const results = join(dir, 'results.jsonl');
  if (!existsSync(results)) throw new UserError(`${dir}: no results.jsonl (is the sweep complete? kmemu sweep status ${dir})`);
  const doc = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8')) as SweepDoc;
  const rows = readFileSync(results, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as SweepRow);
  const svg = await chart(rows, doc.axes, { x: opts.x, y: opts.y, ...(opts.color === undefined ? {} : { color: opts.color }) });
  if (opts.output === '-') {
    io.out(svg);
    return svg;
  }
  const base = `${opts.y}-vs-${opts.x}${opts.color === undefined ? '' : `-by-${opts.color}`}`.replace(/[^A-Za-z0-9._-]/g, '_');
  const file = opts.output ?? join(dir, 'charts', `${base}.svg`);
  if (opts.output === undefined) mkdirSync(join(dir, 'charts'), { recursive: true });
  writeFileAtomic(file, svg);
  io.out(`${file}\n`);
  return svg;
}
