// Sparse physical memory: a frame costs host memory only once something is written to it.
// Reads of a never-written frame return zeros. Little-endian, as x86.
//
// Frames live in a two-level table (frame number → chunk → frame) so that up to 1 TiB
// (2^28 frames) can be configured without a host allocation proportional to it.

import { UserError } from './errors.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
const FRAME_MASK = PAGE_SIZE - 1;
const CHUNK_SHIFT = 12; // frames per second-level chunk: 4096 (16 MiB of physical memory)
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
const TWO_32 = 4294967296;

export class PhysMem {
  readonly size: number;
  readonly frames: number;
  private readonly chunks: (DataView | undefined)[][];
  private touched = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0 || size % PAGE_SIZE !== 0 || size > 2 ** 40) {
      throw new UserError(`physical memory size: expected a multiple of 4096 up to 1 TiB, got ${size}`);
    }
    this.size = size;
    this.frames = size / PAGE_SIZE;
    this.chunks = new Array(Math.ceil(this.frames / (CHUNK_MASK + 1)));
    for (let i = 0; i < this.chunks.length; i++) this.chunks[i] = [];
  }

  /** Frames that hold host memory. */
  get touchedFrames(): number {
    return this.touched;
  }

  // The frame of the last access: most accesses fall in the frame of the one before.
  private lastFrame = -1;
  private lastView: DataView | undefined;

  private frameFor(pa: number, create: boolean): DataView | undefined {
    const frame = Math.floor(pa / PAGE_SIZE);
    if (frame === this.lastFrame) return this.lastView;
    if (!(pa >= 0 && pa < this.size)) throw new RangeError(`physical address 0x${pa.toString(16)} is outside memory (0..0x${this.size.toString(16)})`);
    const chunk = this.chunks[frame >>> CHUNK_SHIFT]!;
    let view = chunk[frame & CHUNK_MASK];
    if (view === undefined) {
      if (!create) return undefined;
      view = new DataView(new ArrayBuffer(PAGE_SIZE));
      chunk[frame & CHUNK_MASK] = view;
      this.touched++;
    }
    this.lastFrame = frame;
    this.lastView = view;
    return view;
  }

  // Accesses must not cross a frame; callers split (the CPU does, per line).

  read8(pa: number): number {
    const v = this.frameFor(pa, false);
    return v === undefined ? 0 : v.getUint8(pa & FRAME_MASK);
  }

  read16(pa: number): number {
    const v = this.frameFor(pa, false);
    return v === undefined ? 0 : v.getUint16(pa & FRAME_MASK, true);
  }

  read32(pa: number): number {
    const v = this.frameFor(pa, false);
    return v === undefined ? 0 : v.getUint32(pa & FRAME_MASK, true);
  }

  /** High 32 bits of the 64-bit word at pa. */
  read32hi(pa: number): number {
    return this.read32(pa + 4);
  }

  write8(pa: number, value: number): void {
    this.frameFor(pa, true)!.setUint8(pa & FRAME_MASK, value);
  }

  write16(pa: number, value: number): void {
    this.frameFor(pa, true)!.setUint16(pa & FRAME_MASK, value, true);
  }

  write32(pa: number, value: number): void {
    this.frameFor(pa, true)!.setUint32(pa & FRAME_MASK, value >>> 0, true);
  }

  /** Unsigned 64-bit value, exact below 2^53. */
  read64(pa: number): number {
    return this.read32(pa + 4) * TWO_32 + this.read32(pa);
  }

  write64(pa: number, value: number): void {
    const lo = value >>> 0;
    this.write32(pa, lo);
    this.write32(pa + 4, (value - lo) / TWO_32);
  }

  /** Reads `size` (1, 2, 4 or 8) bytes as an unsigned number. */
  read(pa: number, size: number): number {
    switch (size) {
      case 1: return this.read8(pa);
      case 2: return this.read16(pa);
      case 4: return this.read32(pa);
      default: return this.read64(pa);
    }
  }

  write(pa: number, size: number, value: number): void {
    switch (size) {
      case 1: this.write8(pa, value); break;
      case 2: this.write16(pa, value); break;
      case 4: this.write32(pa, value); break;
      default: this.write64(pa, value);
    }
  }

  /** Zeroes a frame-aligned range; frames never written stay unbacked. */
  zero(pa: number, length: number): void {
    for (let off = 0; off < length; ) {
      const at = pa + off;
      const inFrame = Math.min(PAGE_SIZE - (at & FRAME_MASK), length - off);
      const view = this.frameFor(at, false);
      if (view !== undefined) new Uint8Array(view.buffer, at & FRAME_MASK, inFrame).fill(0);
      off += inFrame;
    }
  }

  /** Sets `length` bytes inside one frame to `byte`; a 0 fill leaves an unbacked frame unbacked. */
  fillInFrame(pa: number, length: number, byte: number): void {
    const v = this.frameFor(pa, byte !== 0);
    if (v === undefined) return;
    const at = pa & FRAME_MASK;
    for (let i = 0; i < length; i++) v.setUint8(at + i, byte);
  }

  /**
   * The backed frames (a checkpoint's part of memory): their numbers, ascending, and their
   * contents, 4096 bytes each in that order.
   */
  snapshot(): { frames: Float64Array; data: Uint8Array } {
    const frames = new Float64Array(this.touched);
    const data = new Uint8Array(this.touched * PAGE_SIZE);
    let n = 0;
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      for (let i = 0; i < chunk.length; i++) {
        const view = chunk[i];
        if (view === undefined) continue;
        frames[n] = c * (CHUNK_MASK + 1) + i;
        data.set(new Uint8Array(view.buffer, view.byteOffset, PAGE_SIZE), n * PAGE_SIZE);
        n++;
      }
    }
    return { frames, data };
  }

  /** Replaces the whole memory with a snapshot()'s frames. */
  restore(frames: Float64Array, data: Uint8Array): void {
    if (data.byteLength !== frames.length * PAGE_SIZE) throw new RangeError(`physmem restore: ${frames.length} frames need ${frames.length * PAGE_SIZE} bytes, got ${data.byteLength}`);
    for (let i = 0; i < this.chunks.length; i++) this.chunks[i] = [];
    for (let n = 0; n < frames.length; n++) {
      const frame = frames[n]!;
      if (!(frame >= 0 && frame < this.frames)) throw new RangeError(`physmem restore: frame ${frame} is outside memory (${this.frames} frames)`);
      const buf = new ArrayBuffer(PAGE_SIZE);
      new Uint8Array(buf).set(data.subarray(n * PAGE_SIZE, (n + 1) * PAGE_SIZE));
      this.chunks[frame >>> CHUNK_SHIFT]![frame & CHUNK_MASK] = new DataView(buf);
    }
    this.touched = frames.length;
    this.lastFrame = -1;
    this.lastView = undefined;
  }

  /** Copies bytes out (functional; for tests and dumps). */
  readBytes(pa: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.read8(pa + i);
    return out;
  }
}
