// Streaming reader for Dinero IV's din address traces.
//
// One reference per line, in either of Dinero IV's two ASCII forms (the form is decided per
// line by its first field):
//   extended din (dineroIV -informat D):  <r|w|i|m|c|v> <hex address> <hex size> [comment]
//   traditional din (-informat d):        <0-5> <hex address> [comment]
// Traditional lines have Dinero III's implied size of 4 bytes at the address rounded down to a
// multiple of 4 (Dinero IV dinfmt.c does `addr & ~3`, size 4). Access-type codes are Dinero's:
// 0 read, 1 write, 2 instruction fetch, 3 misc (a read that never prefetches), 4 copy back
// dirty data (no invalidate), 5 invalidate (no copy back); for 4 and 5 a size of 0 means the
// whole cache. Hex numbers may carry a 0x prefix; the rest of a line after the last field is
// ignored.
//
// Deliberate deviations from Dinero's readers: blank lines are skipped (Dinero stops with
// "short line"); an address longer than 64 bits or a size longer than 32 bits is an error
// (Dinero wraps silently); a `\r` before the newline is accepted.
//
// Addresses stay exact to 64 bits as two unsigned 32-bit words. The parser works on the raw
// bytes of each chunk and stores references into a reusable batch of typed arrays, so nothing
// is allocated per line; a line cut by a chunk boundary is carried to the next chunk.
//
// This module imports nothing from emu/ so that the parsing worker of din-pipeline.ts starts
// in a few milliseconds; din.ts wraps it for the rest of kmemu (errors become UserError).

// node:crypto, node:zlib and node:stream are imported when needed (hashing, gzip input): at
// some 10-30 ms each they are a part of a short run's start-up.
import type { Hash } from 'node:crypto';
import * as fs from 'node:fs';

export const DIN_READ = 0;
export const DIN_WRITE = 1;
export const DIN_IFETCH = 2;
export const DIN_MISC = 3;
export const DIN_COPYBACK = 4;
export const DIN_INVALIDATE = 5;

/** References parsed so far, column by column; `count` of them are valid. */
export class DinBatch {
  readonly capacity: number;
  readonly type: Uint8Array;
  readonly addrHi: Uint32Array;
  readonly addrLo: Uint32Array;
  /** Bytes referenced; 0 only for whole-cache copy back / invalidate. */
  readonly size: Uint32Array;
  count = 0;

  /** Bytes of `buffer` a batch of `capacity` references takes: three 32-bit columns and the types. */
  static byteLength(capacity: number): number {
    return 13 * capacity;
  }

  /** A batch in its own memory, or on `byteLength(capacity)` bytes of `buffer` at `byteOffset` (a multiple of 4). */
  constructor(capacity: number, buffer?: ArrayBufferLike, byteOffset = 0) {
    this.capacity = capacity;
    const memory = buffer ?? new ArrayBuffer(DinBatch.byteLength(capacity));
    this.addrHi = new Uint32Array(memory, byteOffset, capacity);
    this.addrLo = new Uint32Array(memory, byteOffset + 4 * capacity, capacity);
    this.size = new Uint32Array(memory, byteOffset + 8 * capacity, capacity);
    this.type = new Uint8Array(memory, byteOffset + 12 * capacity, capacity);
  }
}

export type DinBatchHandler = (batch: DinBatch) => void;

/** Makes the error thrown for bad input (a malformed line, a missing file, corrupt gzip). */
export type DinErrorFactory = (message: string) => Error;

/** What this module throws for bad input unless given another DinErrorFactory. */
export class DinInputError extends Error {}

const inputError: DinErrorFactory = (message) => new DinInputError(message);

const NL = 10;
const CR = 13;
const SP = 32;
const TAB = 9;

/** Value of a hex digit by byte, -1 for every other byte. */
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

/**
 * Value of two hex digits by the 16-bit little-endian word of their bytes (first digit in the
 * low byte), -1 unless both are hex digits: the fast path reads an address four bytes at a time.
 */
const HEX2 = new Int16Array(65536).fill(-1);
const HEX_DIGITS = Buffer.from('0123456789abcdefABCDEF', 'latin1');
for (const a of HEX_DIGITS) for (const b of HEX_DIGITS) HEX2[a | (b << 8)] = (HEX[a]! << 4) | HEX[b]!;

/**
 * Bytes the fast path may read past a line's newline: a 4-byte word read at the newline.
 * Lines are parsed in place only where the chunk's memory extends that far; the others go
 * through the carry buffer, which keeps the room.
 */
const READ_AHEAD = 3;

/** Access type by the byte of the first field, -1 when it is not one. */
const TYPE_OF = new Int8Array(256).fill(-1);
for (const [chars, type] of [['rR', DIN_READ], ['wW', DIN_WRITE], ['iI', DIN_IFETCH], ['mM', DIN_MISC],
  ['cC', DIN_COPYBACK], ['vV', DIN_INVALIDATE]] as const) {
  for (const ch of chars) TYPE_OF[ch.charCodeAt(0)] = type;
}
for (let i = 0; i <= 5; i++) TYPE_OF[48 + i] = i;
const FIRST_DIGIT = 48;
const LAST_DIGIT = 53;

const EXPECTED_LINE = '"<r|w|i|m|c|v> <hex address> <hex size>" or "<0-5> <hex address>"';

/**
 * Parses din text pushed in chunks of any size. Batches are handed to `onBatch` when full and
 * at end(); the handler must consume a batch before returning, as it is reused, unless it
 * hands the parser another one with setBatch().
 */
export class DinParserCore {
  readonly name: string;
  private readonly onBatch: DinBatchHandler;
  private readonly makeError: DinErrorFactory;
  private batch: DinBatch;
  private carry: Buffer = Buffer.alloc(256 + READ_AHEAD);
  private carryLen = 0;
  /** Lines read so far (1-based number of the last line parsed). */
  lines = 0;
  /** References delivered so far, the current batch included. */
  references = 0;

  constructor(name: string, onBatch: DinBatchHandler, batchCapacity = 1 << 15, makeError: DinErrorFactory = inputError) {
    this.name = name;
    this.onBatch = onBatch;
    this.makeError = makeError;
    this.batch = new DinBatch(batchCapacity);
  }

  /** Parses into `batch` from now on, from its start. */
  setBatch(batch: DinBatch): void {
    batch.count = 0;
    this.batch = batch;
  }

  /** The error for bad input named `message`, of the kind this parser was made with. */
  error(message: string): Error {
    return this.makeError(message);
  }

  push(chunk: Uint8Array): void {
    const len = chunk.length;
    let start = 0;
    if (this.carryLen > 0) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        this.appendCarry(chunk, 0, len);
        return;
      }
      this.appendCarry(chunk, 0, nl + 1);
      this.parseLines(this.carry, 0, this.carryLen);
      this.carryLen = 0;
      start = nl + 1;
    }
    // The last newline with READ_AHEAD bytes of the chunk's memory after it.
    const limit = Math.min(len - 1, chunk.buffer.byteLength - chunk.byteOffset - 1 - READ_AHEAD);
    const last = limit < start ? -1 : chunk.lastIndexOf(NL, limit);
    if (last < start) {
      this.appendCarry(chunk, start, len);
      return;
    }
    this.parseLines(chunk, start, last + 1);
    if (last + 1 < len) this.appendCarry(chunk, last + 1, len);
  }

  /** Parses a last line without a newline and delivers the remaining references. */
  end(): void {
    if (this.carryLen > 0) {
      if (this.carry[this.carryLen - 1] !== NL) this.appendCarry(NEWLINE, 0, 1);
      this.parseLines(this.carry, 0, this.carryLen);
      this.carryLen = 0;
    }
    if (this.batch.count > 0) {
      this.onBatch(this.batch);
      this.batch.count = 0;
    }
  }

  private appendCarry(src: Uint8Array, from: number, to: number): void {
    const need = this.carryLen + (to - from);
    if (need + READ_AHEAD > this.carry.length) {
      const bigger = Buffer.alloc(Math.max(need + READ_AHEAD, this.carry.length * 2));
      bigger.set(this.carry.subarray(0, this.carryLen));
      this.carry = bigger;
    }
    this.carry.set(src.subarray(from, to), this.carryLen);
    this.carryLen = need;
  }

  // Every line in [pos, end) ends with a newline, so the scans below stop at it without
  // bounds checks: no byte class used to advance (whitespace, hex digit) contains it; and the
  // memory of `buf` extends READ_AHEAD bytes past `end`, so the 4-byte reads at most reach that.
  //
  // The loop reads the usual extended line, "<type> <hex address> <hex size>" with single
  // spaces, at most 16 address and 8 size digits and no 0x: the address four digits a read
  // (two HEX2 lookups), the size two; any other line, and every bad one, is read again from
  // its start by parseLine().
  private parseLines(buf: Uint8Array, pos: number, end: number): void {
    const hex = HEX;
    const hex2 = HEX2;
    const typeOf = TYPE_OF;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.buffer.byteLength - buf.byteOffset);
    let batch = this.batch;
    let types = batch.type;
    let his = batch.addrHi;
    let los = batch.addrLo;
    let sizes = batch.size;
    let capacity = batch.capacity;
    let n = batch.count;
    let line = this.lines;
    let references = this.references;
    while (pos < end) {
      line++;
      const c0 = buf[pos]!;
      let type = typeOf[c0]!;
      let hi = 0;
      let lo = 0;
      let size = 0;
      let p = pos + 2;
      let ok = false;
      if (type >= 0 && c0 > 57 && buf[pos + 1] === 32) {
        const addrAt = p;
        let a: number;
        for (;;) {
          const w = dv.getInt32(p, true);
          a = hex2[w & 0xffff]!;
          const b = hex2[w >>> 16]!;
          if ((a | b) < 0) break;
          hi = (hi << 16) | (lo >>> 16);
          lo = (lo << 16) | (a << 8) | b;
          p += 4;
        }
        if (a >= 0) {
          hi = (hi << 8) | (lo >>> 24);
          lo = (lo << 8) | a;
          p += 2;
        }
        let d = hex[buf[p]!]!;
        if (d >= 0) {
          hi = (hi << 4) | (lo >>> 28);
          lo = (lo << 4) | d;
          p++;
        }
        const addrDigits = p - addrAt;
        if (addrDigits > 0 && addrDigits <= 16 && buf[p] === 32) {
          const sizeAt = ++p;
          while ((a = hex2[dv.getUint16(p, true)]!) >= 0) {
            size = (size << 8) | a;
            p += 2;
          }
          d = hex[buf[p]!]!;
          if (d >= 0) {
            size = (size << 4) | d;
            p++;
          }
          const sizeDigits = p - sizeAt;
          let c = buf[p]!;
          if (sizeDigits > 0 && sizeDigits <= 8 && (c === 10 || c === 13 || c === 32 || c === 9)) {
            while (c !== 10) c = buf[++p]!;
            ok = true;
          }
        }
      }
      if (ok) {
        pos = p + 1;
      } else {
        pos = this.parseLine(buf, pos, line);
        type = this.lineType;
        if (type < 0) continue;
        hi = this.lineHi;
        lo = this.lineLo;
        size = this.lineSize;
      }
      types[n] = type;
      his[n] = hi;
      los[n] = lo;
      sizes[n] = size;
      n++;
      references++;
      if (n === capacity) {
        batch.count = n;
        this.references = references;
        this.lines = line;
        this.onBatch(batch);
        batch = this.batch;
        types = batch.type;
        his = batch.addrHi;
        los = batch.addrLo;
        sizes = batch.size;
        capacity = batch.capacity;
        n = 0;
        batch.count = 0;
      }
    }
    batch.count = n;
    this.references = references;
    this.lines = line;
  }

  /** The reference of the last line parseLine() read; lineType -1 for a blank line. */
  private lineType = -1;
  private lineHi = 0;
  private lineLo = 0;
  private lineSize = 0;

  /**
   * Reads any one line at `pos`, number `line`, into lineType..lineSize, or throws naming the
   * bad field; returns the position after its newline.
   */
  private parseLine(buf: Uint8Array, pos: number, line: number): number {
    const lineStart = pos;
    let c = buf[pos]!;
    while (c === SP || c === TAB) c = buf[++pos]!;
    if (c === NL || c === CR) {
      while (buf[pos] !== NL) pos++;
      this.lineType = -1;
      return pos + 1;
    }
    const type = TYPE_OF[c]!;
    const classic = c >= FIRST_DIGIT && c <= LAST_DIGIT;
    const typeAt = pos;
    c = buf[++pos]!;
    if (type < 0 || (c !== SP && c !== TAB)) {
      if (type >= 0 && (c === NL || c === CR)) this.fail(line, buf, lineStart, EXPECTED_LINE, lineStart, true);
      this.fail(line, buf, lineStart, 'an access type (r, w, i, m, c, v or 0-5)', typeAt, false);
    }
    while (c === SP || c === TAB) c = buf[++pos]!;
    if (c === NL || c === CR) this.fail(line, buf, lineStart, EXPECTED_LINE, lineStart, true);

    // Up to 8 digits fold into `a`, the next up to 8 into `b`; then (hi, lo) = a:b.
    const addrAt = pos;
    if (c === 48 && (buf[pos + 1] === 120 || buf[pos + 1] === 88)) {
      pos += 2;
      c = buf[pos]!;
    }
    let d = HEX[c]!;
    if (d < 0) this.fail(line, buf, lineStart, 'a hex address', addrAt, false);
    const digitsAt = pos;
    let a = 0;
    do {
      a = (a << 4) | d;
      d = HEX[buf[++pos]!]!;
    } while (d >= 0 && pos - digitsAt < 8);
    let hi = 0;
    let lo: number;
    if (d < 0) {
      lo = a >>> 0;
    } else {
      const bAt = pos;
      let b = 0;
      do {
        b = (b << 4) | d;
        d = HEX[buf[++pos]!]!;
      } while (d >= 0 && pos - bAt < 8);
      if (d >= 0) {
        const long = this.longHex(buf, digitsAt);
        if (long < 0) this.fail(line, buf, lineStart, 'a hex address of at most 64 bits', addrAt, false);
        pos = long;
        hi = this.longHi;
        lo = this.longLo;
      } else {
        const bits = 4 * (pos - bAt);
        if (bits === 32) {
          hi = a >>> 0;
          lo = b >>> 0;
        } else {
          hi = a >>> (32 - bits);
          lo = ((a << bits) | b) >>> 0;
        }
      }
    }
    c = buf[pos]!;
    if (c !== SP && c !== TAB && c !== NL && c !== CR) this.fail(line, buf, lineStart, 'a hex address', addrAt, false);
    let v: number;

    let size: number;
    if (classic) {
      lo = (lo & ~3) >>> 0;
      size = 4;
    } else {
      while (c === SP || c === TAB) c = buf[++pos]!;
      if (c === NL || c === CR) this.fail(line, buf, lineStart, EXPECTED_LINE, lineStart, true);
      const sizeAt = pos;
      v = HEX[c]!;
      if (v < 0) this.fail(line, buf, lineStart, 'a hex size', sizeAt, false);
      size = v;
      c = buf[++pos]!;
      if (v === 0 && (c === 120 || c === 88)) {
        c = buf[++pos]!;
        if (HEX[c]! < 0) this.fail(line, buf, lineStart, 'a hex size', sizeAt, false);
      }
      while ((v = HEX[c]!) >= 0) {
        if (size >= 0x10000000) this.fail(line, buf, lineStart, 'a hex size of at most 32 bits', sizeAt, false);
        size = size * 16 + v;
        c = buf[++pos]!;
      }
      if (c !== SP && c !== TAB && c !== NL && c !== CR) this.fail(line, buf, lineStart, 'a hex size', sizeAt, false);
    }
    while (c !== NL) c = buf[++pos]!;
    this.lineType = type;
    this.lineHi = hi;
    this.lineLo = lo;
    this.lineSize = size;
    return pos + 1;

  }

  private longHi = 0;
  private longLo = 0;

  /**
   * Parses a run of more than 16 hex digits at `at` (leading zeros) into longHi/longLo;
   * returns the position after it, or -1 when the value needs more than 64 bits.
   */
  private longHex(buf: Uint8Array, at: number): number {
    let pos = at;
    while (buf[pos] === 48) pos++;
    let hi = 0;
    let lo = 0;
    let d: number;
    while ((d = HEX[buf[pos]!]!) >= 0) {
      if (hi >>> 28 !== 0) return -1;
      hi = ((hi << 4) | (lo >>> 28)) >>> 0;
      lo = ((lo << 4) | d) >>> 0;
      pos++;
    }
    this.longHi = hi;
    this.longLo = lo;
    return pos;
  }

  /** Throws `NAME:LINE: expected WHAT, got "TEXT"`; TEXT is the field at `at`, or the whole line. */
  private fail(line: number, buf: Uint8Array, lineStart: number, what: string, at: number, wholeLine: boolean): never {
    let stop = at;
    if (wholeLine) {
      while (buf[stop] !== NL) stop++;
      while (stop > lineStart && (buf[stop - 1] === CR || buf[stop - 1] === SP || buf[stop - 1] === TAB)) stop--;
    } else {
      for (let c = buf[stop]; c !== NL && c !== CR && c !== SP && c !== TAB; c = buf[++stop]);
    }
    const text = Buffer.from(buf.buffer, buf.byteOffset + at, stop - at).toString('latin1');
    throw this.makeError(`${this.name}:${line}: expected ${what}, got ${JSON.stringify(text)}`);
  }
}

const NEWLINE = new Uint8Array([NL]);

export interface DinReadOptions {
  /** Bytes per read from a plain file. */
  chunkSize?: number;
  batchCapacity?: number;
  /** Called after each chunk with the input bytes consumed so far (compressed bytes for .gz). */
  onProgress?: (bytesRead: number) => void;
  /** The stream read for `-`; process.stdin by default. */
  stdin?: NodeJS.ReadableStream;
  /** Hash the input's bytes (the result's sha256); true by default. */
  hash?: boolean;
}

export interface DinReadResult {
  references: number;
  lines: number;
  /** Input bytes read (compressed bytes for gzip input). */
  bytes: number;
  /** sha256 (hex) of the input's bytes as read, hashed while streaming; "" with `hash: false`. */
  sha256: string;
}

/** True when `head` starts with the gzip magic bytes 1f 8b. */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/**
 * Pushes the din trace at `path` (`-` for stdin), gzip-compressed or not (decided by its first
 * two bytes), through `parser` and ends it. Returns the input bytes read. Memory use does not
 * grow with the trace.
 */
export async function feedDin(path: string, parser: DinParserCore, options: DinReadOptions = {}): Promise<{ bytes: number; sha256: string }> {
  const onProgress = options.onProgress;
  const hash = options.hash === false ? null : (await import('node:crypto')).createHash('sha256');
  let bytes = 0;
  if (path === '-') {
    bytes = await readStream(options.stdin ?? process.stdin, parser, hash, onProgress);
  } else {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      throw parser.error(`cannot open trace ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    try {
      // READ_AHEAD bytes of room after the data, so that a full chunk's last line parses in place.
      const chunkSize = options.chunkSize ?? 1 << 20;
      const chunk = Buffer.allocUnsafe(chunkSize + READ_AHEAD);
      let got = fs.readSync(fd, chunk, 0, chunkSize, null);
      if (isGzip(chunk.subarray(0, got))) {
        fs.closeSync(fd);
        fd = -1;
        bytes = await readStream(fs.createReadStream(path, { highWaterMark: 1 << 20 }), parser, hash, onProgress);
      } else {
        while (got > 0) {
          bytes += got;
          if (hash !== null) hash.update(chunk.subarray(0, got));
          parser.push(chunk.subarray(0, got));
          if (onProgress !== undefined) onProgress(bytes);
          got = fs.readSync(fd, chunk, 0, chunkSize, null);
        }
      }
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }
  parser.end();
  return { bytes, sha256: hash === null ? '' : hash.digest('hex') };
}

/** Feeds a byte stream, gunzipping it when it starts with the gzip magic; returns raw bytes read. */
async function readStream(input: NodeJS.ReadableStream, parser: DinParserCore, hash: Hash | null, onProgress?: (bytes: number) => void): Promise<number> {
  let raw = 0;
  const source = (async function* () {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      raw += b.length;
      if (hash !== null) hash.update(b);
      yield b;
    }
  })();
  const first = await source.next();
  if (first.done === true) return raw;
  const head: Buffer = first.value;
  let text: AsyncIterable<Buffer>;
  if (isGzip(head)) {
    const [{ createGunzip }, { Readable }] = await Promise.all([import('node:zlib'), import('node:stream')]);
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    Readable.from((async function* () {
      yield head;
      yield* source;
    })()).pipe(gunzip);
    text = gunzip;
  } else {
    text = (async function* () {
      yield head;
      yield* source;
    })();
  }
  // Errors of the parser and of the batch handler pass through; the others are the stream's.
  let pushing = false;
  try {
    for await (const chunk of text) {
      pushing = true;
      parser.push(chunk);
      pushing = false;
      if (onProgress !== undefined) onProgress(raw);
    }
  } catch (err) {
    if (pushing) throw err;
    throw parser.error(`${parser.name}: cannot decompress: ${(err as Error).message}`);
  }
  return raw;
}
