import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DinParser, readDin } from '../../traces/din.js';
import type { DinBatch } from '../../traces/din.js';

type Row = [type: number, hi: number, lo: number, size: number];

function collect(rows: Row[]): (b: DinBatch) => void {
  return (b) => {
    for (let i = 0; i < b.count; i++) rows.push([b.type[i]!, b.addrHi[i]!, b.addrLo[i]!, b.size[i]!]);
  };
}

/** Parses `text` fed in chunks of `chunk` bytes into batches of `capacity`. */
function parse(text: string, chunk = 1 << 20, capacity = 4): Row[] {
  const rows: Row[] = [];
  const p = new DinParser('t.din', collect(rows), capacity);
  const bytes = Buffer.from(text, 'latin1');
  for (let i = 0; i < bytes.length; i += chunk) p.push(bytes.subarray(i, i + chunk));
  p.end();
  expect(p.references).toBe(rows.length);
  return rows;
}

const SAMPLE = [
  'r ffffffff80001040 8',
  'w 0x1000 0X40 trailing comment',
  '  i\t7ffd00000f38\t4',
  'M 0 1',
  'c 0 0',
  'v 10 1',
  '2 1003',
  '1 0xffffffff80001043 ignored',
  'r 0000000000000000000000ffffffffffffffff 1',
  'w 123456789 ffffffff',
].join('\n');

const SAMPLE_ROWS: Row[] = [
  [0, 0xffffffff, 0x80001040, 8],
  [1, 0, 0x1000, 0x40],
  [2, 0x7ffd, 0x00000f38, 4],
  [3, 0, 0, 1],
  [4, 0, 0, 0],
  [5, 0, 0x10, 1],
  [2, 0, 0x1000, 4],
  [1, 0xffffffff, 0x80001040, 4],
  [0, 0xffffffff, 0xffffffff, 1],
  [1, 0x1, 0x23456789, 0xffffffff],
];

describe('DinParser', () => {
  it('DinParser reads extended and traditional din lines with exact 64-bit addresses', () => {
    expect(parse(`${SAMPLE}\n`)).toEqual(SAMPLE_ROWS);
  });

  it('DinParser gives the same references for every chunk size, a line cut anywhere', () => {
    for (let chunk = 1; chunk <= 40; chunk++) expect(parse(SAMPLE, chunk, 3)).toEqual(SAMPLE_ROWS);
  });

  it('DinParser skips blank lines and accepts CRLF line ends', () => {
    expect(parse('\nr 10 4\r\n   \r\n\tw 20 8\r\n\n')).toEqual([[0, 0, 0x10, 4], [1, 0, 0x20, 8]]);
  });

  const errors: [string, string][] = [
    ['x 1000 4', 't.din:2: expected an access type (r, w, i, m, c, v or 0-5), got "x"'],
    ['rw 1000 4', 't.din:2: expected an access type (r, w, i, m, c, v or 0-5), got "rw"'],
    ['6 1000', 't.din:2: expected an access type (r, w, i, m, c, v or 0-5), got "6"'],
    ['r', 't.din:2: expected "<r|w|i|m|c|v> <hex address> <hex size>" or "<0-5> <hex address>", got "r"'],
    ['r   ', 't.din:2: expected "<r|w|i|m|c|v> <hex address> <hex size>" or "<0-5> <hex address>", got "r"'],
    ['r 1000', 't.din:2: expected "<r|w|i|m|c|v> <hex address> <hex size>" or "<0-5> <hex address>", got "r 1000"'],
    ['w 1000  \r', 't.din:2: expected "<r|w|i|m|c|v> <hex address> <hex size>" or "<0-5> <hex address>", got "w 1000"'],
    ['r zz 4', 't.din:2: expected a hex address, got "zz"'],
    ['r 10g0 4', 't.din:2: expected a hex address, got "10g0"'],
    ['r 0x 4', 't.din:2: expected a hex address, got "0x"'],
    ['r 1ffffffffffffffff 4', 't.din:2: expected a hex address of at most 64 bits, got "1ffffffffffffffff"'],
    ['r 1000 4k', 't.din:2: expected a hex size, got "4k"'],
    ['r 1000 -4', 't.din:2: expected a hex size, got "-4"'],
    ['r 1000 100000000', 't.din:2: expected a hex size of at most 32 bits, got "100000000"'],
  ];
  for (const [line, message] of errors) {
    it(`DinParser rejects ${JSON.stringify(line)} naming file, line and field`, () => {
      expect(() => parse(`r 0 1\n${line}\nr 0 1\n`)).toThrow(message);
      expect(() => parse(`r 0 1\n${line}`, 3)).toThrow(message);
    });
  }
});

describe('readDin', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-din-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('readDin streams a plain file in small chunks', async () => {
    const file = path.join(tmp, 'a.din');
    fs.writeFileSync(file, SAMPLE);
    const rows: Row[] = [];
    const seen: number[] = [];
    const r = await readDin(file, collect(rows), { chunkSize: 7, batchCapacity: 2, onProgress: (b) => seen.push(b) });
    expect(rows).toEqual(SAMPLE_ROWS);
    expect(r).toEqual({ references: 10, lines: 10, bytes: SAMPLE.length, sha256: createHash('sha256').update(SAMPLE).digest('hex') });
    expect(seen.at(-1)).toBe(SAMPLE.length);
  });

  it('readDin detects gzip by its magic bytes, whatever the file name', async () => {
    const file = path.join(tmp, 'b.trace');
    const gz = gzipSync(Buffer.from(SAMPLE));
    fs.writeFileSync(file, gz);
    const rows: Row[] = [];
    const r = await readDin(file, collect(rows));
    expect(rows).toEqual(SAMPLE_ROWS);
    expect(r.bytes).toBe(gz.length);
  });

  it('readDin reads stdin, plain or gzip, for "-"', async () => {
    for (const data of [Buffer.from(SAMPLE), gzipSync(Buffer.from(SAMPLE))]) {
      const rows: Row[] = [];
      const stdin = Readable.from([data.subarray(0, 5), data.subarray(5)]);
      await readDin('-', collect(rows), { stdin });
      expect(rows).toEqual(SAMPLE_ROWS);
    }
  });

  it('readDin names <stdin> in errors', async () => {
    await expect(readDin('-', () => undefined, { stdin: Readable.from([Buffer.from('r 1 1\nq 1 1\n')]) }))
      .rejects.toThrow('<stdin>:2: expected an access type (r, w, i, m, c, v or 0-5), got "q"');
  });

  it('readDin reports a missing file and a corrupt gzip stream as user errors', async () => {
    await expect(readDin(path.join(tmp, 'none.din'), () => undefined)).rejects.toThrow(`cannot open trace ${path.join(tmp, 'none.din')}: ENOENT`);
    const bad = path.join(tmp, 'bad.din.gz');
    fs.writeFileSync(bad, Buffer.concat([gzipSync(Buffer.from(SAMPLE)).subarray(0, 20), Buffer.from('garbage')]));
    await expect(readDin(bad, () => undefined)).rejects.toThrow(/^.*bad\.din\.gz: cannot decompress: /);
  });
});
