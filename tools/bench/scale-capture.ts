// Writes the large Linux kmem captures the whole-command benchmarks run on, if they are not
// there yet: the real tracefs capture bundled as a test fixture
// (test/fixtures/linux/linux-6.18-kmem-ftrace-sample.txt, 5,419 events on 2 CPUs), tiled K times.
//
// Tile t (from 0) is the capture's event lines with
//   - every timestamp moved by t times (the capture's span + 1 s), so time keeps increasing;
//   - every hashed pointer (`ptr=`, `page=`) given t as its upper eight hex digits, and every
//     `pfn=` moved by t << 24 (a NULL pointer stays NULL), so that no object of one tile is an object of another;
// and nothing else changed: the comm, CPU, call sites, caches, sizes and flags are the capture's.
// Objects freed in a tile but allocated before the capture began stay unknown in every tile, as
// in the capture. The header (with `#P:2`) is written once.
//
//   node dist/tools/bench/scale-capture.js TILES [OUT]

import * as fs from 'node:fs';
import * as path from 'node:path';

export const CAPTURE_FIXTURE = path.join('test', 'fixtures', 'linux', 'linux-6.18-kmem-ftrace-sample.txt');

/** 82 tiles: ~375 k kmem events once imported, the replay benchmark's capture. */
export const REPLAY_TILES = 82;
/** 231 tiles: 1.25 M lines, the import benchmark's capture. */
export const IMPORT_TILES = 231;

export function scaledCapturePath(tiles: number): string {
  return path.join('bench-data', `linux-6.18-kmem-x${tiles}.txt`);
}

const TIMESTAMP = /^(.*?\s)(\d+)\.(\d{6}): /;

/** Writes the capture tiled `tiles` times at `file` unless it exists; returns its path. */
export function ensureScaledCapture(tiles: number, file = scaledCapturePath(tiles), fixture = CAPTURE_FIXTURE): string {
  if (fs.existsSync(file)) return file;
  const lines = fs.readFileSync(fixture, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const header = lines.filter((l) => l.startsWith('#'));
  const body = lines.filter((l) => !l.startsWith('#') && l.trim() !== '');
  const micros = (l: string): number => {
    const m = TIMESTAMP.exec(l);
    if (m === null) throw new Error(`${fixture}: expected a timestamp in "${l}"`);
    return Number(m[2]) * 1e6 + Number(m[3]);
  };
  const first = micros(body[0]!);
  const span = micros(body.at(-1)!) - first + 1e6;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, `${header.join('\n')}\n`);
  for (let t = 0; t < tiles; t++) {
    const tag = t.toString(16).padStart(8, '0');
    const out: string[] = [];
    for (const line of body) {
      const m = TIMESTAMP.exec(line)!;
      const us = Number(m[2]) * 1e6 + Number(m[3]) + t * span;
      const stamp = `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
      out.push(
        `${m[1]}${stamp}: ${line.slice(m[0].length)}`
          .replace(/\b(ptr|page)=([0-9a-f]{8})([0-9a-f]{8})\b/g, (s, k: string, hi: string, lo: string) => (hi + lo === '0'.repeat(16) ? s : `${k}=${tag}${lo}`))
          .replace(/\bpfn=0x([0-9a-f]+)\b/g, (_s, pfn: string) => `pfn=0x${(parseInt(pfn, 16) + t * 0x1000000).toString(16)}`),
      );
    }
    fs.writeSync(fd, `${out.join('\n')}\n`);
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return file;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const tiles = Number(process.argv[2] ?? REPLAY_TILES);
  process.stdout.write(`${ensureScaledCapture(tiles, process.argv[3])}\n`);
}
