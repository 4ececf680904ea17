// The din parser's fast path (four hex digits a load) against exact values, wherever a line
// falls: in place with room after the chunk, and at the very end of a chunk's memory, where
// the line goes through the carry buffer.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DinParser, readDin } from '../../traces/din.js';
import type { DinBatch } from '../../traces/din.js';

type Row = [type: number, hi: number, lo: number, size: number];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-din-fast-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function collect(rows: Row[]): (b: DinBatch) => void {
  return (b) => {
    for (let i = 0; i < b.count; i++) rows.push([b.type[i]!, b.addrHi[i]!, b.addrLo[i]!, b.size[i]!]);
  };
}

/** Every address length from 1 to 16 digits and size length from 1 to 8, mixed-case digits. */
function lines(): { text: string[]; rows: Row[] } {
  const text: string[] = [];
  const rows: Row[] = [];
  const digits = 'fEdCbA9876543210';
  for (let a = 1; a <= 16; a++) {
    for (let s = 1; s <= 8; s++) {
      const addr = digits.slice(16 - a);
      const size = '8aF3c5e7'.slice(0, s);
      const value = BigInt(`0x${addr}`);
      text.push(`${'rwim'[(a + s) % 4]} ${addr} ${size}`);
      rows.push([(a + s) % 4, Number(value >> 32n), Number(value & 0xffffffffn), parseInt(size, 16)]);
    }
  }
  return { text, rows };
}

describe('DinParser fast path', () => {
  const { text, rows } = lines();

  it('DinParser reads addresses of 1 to 16 hex digits and sizes of 1 to 8 exactly', () => {
    const got: Row[] = [];
    const p = new DinParser('t.din', collect(got), 7);
    p.push(Buffer.from(`${text.join('\n')}\n`, 'latin1'));
    p.end();
    expect(got).toEqual(rows);
    expect(p.lines).toBe(rows.length);
  });

  it('DinParser reads a chunk whose memory ends right after its last newline, line by line', () => {
    for (let i = 0; i < text.length; i++) {
      const got: Row[] = [];
      const p = new DinParser('t.din', collect(got), 4);
      // Each chunk is a whole ArrayBuffer of its own: no byte of room after it.
      for (const line of [text[i]!, text[(i + 1) % text.length]!]) {
        const bytes = Buffer.from(`${line}\n`, 'latin1');
        p.push(new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
      }
      p.end();
      expect(got).toEqual([rows[i]!, rows[(i + 1) % text.length]!]);
      expect(p.lines).toBe(2);
    }
  });

  it('DinParser counts one line for a last line without a newline that ends a chunk without room', () => {
    const got: Row[] = [];
    const p = new DinParser('t.din', collect(got), 4);
    const bytes = Buffer.from('r 10 4\nw 7ffd00000f38 8', 'latin1');
    p.push(new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
    p.end();
    expect(got).toEqual([[0, 0, 0x10, 4], [1, 0x7ffd, 0x00000f38, 8]]);
    expect(p.lines).toBe(2);
  });

  it('DinParser still names the line of a 17-digit address and of a 9-digit size', () => {
    const p = new DinParser('t.din', () => undefined, 4);
    expect(() => p.push(Buffer.from('r 10 4\nr 1ffffffffffffffff 4\n'))).toThrow('t.din:2: expected a hex address of at most 64 bits, got "1ffffffffffffffff"');
    const q = new DinParser('t.din', () => undefined, 4);
    expect(() => q.push(Buffer.from('r 10 100000000\n'))).toThrow('t.din:1: expected a hex size of at most 32 bits, got "100000000"');
  });

  it('readDin with hash: false skips the sha256 and reads the same references', async () => {
    const file = path.join(tmp, 'fast.din');
    fs.writeFileSync(file, `${text.join('\n')}\n`);
    const got: Row[] = [];
    const r = await readDin(file, collect(got), { hash: false, chunkSize: 100 });
    expect(got).toEqual(rows);
    expect(r.sha256).toBe('');
    expect(r.references).toBe(rows.length);
  });
});
