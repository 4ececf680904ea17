import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../emu/index.js';
import { readDin } from '../../traces/din.js';
import type { DinBatch } from '../../traces/din.js';
import { readDinPipelined } from '../../traces/din-pipeline.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-din-pipeline-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * The worker runs outside vitest, so it needs JavaScript: the worker and the modules it
 * imports, transpiled next to each other.
 */
function transpiledWorker(): URL {
  const dir = path.join(tmp, 'worker');
  fs.mkdirSync(dir);
  for (const name of ['din-core', 'din-ring', 'din-worker']) {
    const source = fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'traces', `${name}.ts`), 'utf8');
    const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    fs.writeFileSync(path.join(dir, `${name}.js`), out.outputText);
  }
  return pathToFileURL(path.join(dir, 'din-worker.js'));
}
const workerUrl = transpiledWorker();

type Row = [type: number, hi: number, lo: number, size: number];

function collect(rows: Row[]): (b: DinBatch) => void {
  return (b) => {
    for (let i = 0; i < b.count; i++) rows.push([b.type[i]!, b.addrHi[i]!, b.addrLo[i]!, b.size[i]!]);
  };
}

/** 20,000 lines of every form the reader accepts, the usual one most often. */
function sampleTrace(): string {
  let x = 0x2545f491;
  const lines: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const address = (x * 4096 + (i & 0xfff)).toString(16);
    switch (x % 8) {
      case 0: lines.push(`2 ${address}`); break;
      case 1: lines.push(`  w\t0x${address} 0X40 comment`); break;
      case 2: lines.push(''); break;
      case 3: lines.push(`r ffffffff${(x >>> 4).toString(16).padStart(8, '0')} 8\r`); break;
      default: lines.push(`${'rwimcv'[x % 6]} ${address} ${(x % 9).toString(16)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

describe('readDinPipelined', () => {
  const text = sampleTrace();
  const file = path.join(tmp, 'sample.din');
  fs.writeFileSync(file, text);

  it('readDinPipelined gives readDin\'s references and totals through a ring of two small batches', async () => {
    const want: Row[] = [];
    const wantResult = await readDin(file, collect(want));
    const rows: Row[] = [];
    const seen: number[] = [];
    const result = await readDinPipelined(file, collect(rows), { workerUrl, slots: 2, batchCapacity: 64, chunkSize: 1000, onProgress: (b) => seen.push(b) });
    expect(rows).toEqual(want);
    expect(result).toEqual(wantResult);
    expect(result.bytes).toBe(text.length);
    expect(seen.at(-1)).toBe(text.length);
  });

  it('readDinPipelined reads a gzip-compressed file', async () => {
    const gz = path.join(tmp, 'sample.trace');
    fs.writeFileSync(gz, gzipSync(Buffer.from(text)));
    const want: Row[] = [];
    await readDin(file, collect(want));
    const rows: Row[] = [];
    const result = await readDinPipelined(gz, collect(rows), { workerUrl, slots: 3, batchCapacity: 1000 });
    expect(rows).toEqual(want);
    expect(result.bytes).toBe(fs.statSync(gz).size);
  });

  it('readDinPipelined reports a malformed line as a UserError naming file and line, after the batches before it', async () => {
    const bad = path.join(tmp, 'bad.din');
    fs.writeFileSync(bad, `${'r 10 4\n'.repeat(5000)}w 10\nr 10 4\n`);
    let delivered = 0;
    const read = readDinPipelined(bad, (b) => (delivered += b.count), { workerUrl, slots: 2, batchCapacity: 1000 });
    await expect(read).rejects.toThrow(`${bad}:5001: expected "<r|w|i|m|c|v> <hex address> <hex size>" or "<0-5> <hex address>", got "w 10"`);
    await expect(read).rejects.toBeInstanceOf(UserError);
    expect(delivered).toBe(5000);
  });

  it('readDinPipelined reports a missing file as readDin does', async () => {
    const none = path.join(tmp, 'none.din');
    await expect(readDinPipelined(none, () => undefined, { workerUrl })).rejects.toThrow(`cannot open trace ${none}: ENOENT`);
  });

  it('readDinPipelined stops the worker when the batch handler throws', async () => {
    const read = readDinPipelined(file, () => {
      throw new Error('handler failed');
    }, { workerUrl, slots: 2, batchCapacity: 64 });
    await expect(read).rejects.toThrow('handler failed');
  });
});
