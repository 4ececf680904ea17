// Writes the whole-command cachesim benchmark's kernel access stream, if it is not there yet:
// the din text of tools/examples/kernel-walk.ts's recordKernelWalk with 218,000 allocator
// operations (the bundled traces/examples/kernel-walk.din.gz is its first 20,000), 2.4 M
// references: one CPU of amd64-host running a LIFO free-list zone allocator in kernel virtual
// memory, touching what it allocates and indexing it in a hash table in the direct map, with
// the page walks' loads and A/D updates. Deterministic (seeded), so the same bytes every time
// for a given emu/; the benchmark checks its counts against Dinero IV's live, not pinned ones.
// Recording takes ~10 s of CPU and ~800 MB (the text is built in memory).
//
//   node dist/tools/bench/kernel-walk-din.js [OPS [OUT]]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { recordKernelWalk } from '../examples/kernel-walk.js';

export const KERNEL_WALK_OPS = 218_000;
export const KERNEL_WALK_DIN_PATH = path.join('bench-data', 'kernel-walk-2.4m.din');

/** Records the stream of `ops` operations at `file` unless it exists; returns its path. */
export function ensureKernelWalkDin(ops = KERNEL_WALK_OPS, file = KERNEL_WALK_DIN_PATH): string {
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, recordKernelWalk(ops));
  fs.renameSync(tmp, file);
  return file;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ops = Number(process.argv[2] ?? KERNEL_WALK_OPS);
  if (!Number.isInteger(ops) || ops < 1) throw new Error(`kernel-walk-din: expected a number of operations, got ${JSON.stringify(process.argv[2])}`);
  process.stdout.write(`${ensureKernelWalkDin(ops, process.argv[3])}\n`);
}
