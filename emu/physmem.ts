// Sparse physical memory: a frame costs host memory only once something is written to it.
// Reads of a never-written frame return zeros. Little-endian, as x86.
//
// Backed frames live in a pool of large host chunks (FRAMES_PER_CHUNK frames each), handed out
// in the order frames are first written, so host memory is the touched frames' 4 KiB each plus
// at most one chunk's unused tail, wherever the frames lie in the physical address space. A
// two-level table (frame number → directory page → slot + 1, 0 for unbacked) finds a frame's
// slot; up to 1 TiB (2^28 frames) can be configured without a host allocation proportional to
// it (a directory page of DIR_PAGE frames is allocated when one of its frames is first written).

import { UserError } from './errors.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
const FRAME_MASK = PAGE_SIZE - 1;
/** Frames per host chunk: 1024, 4 MiB of host memory allocated at a time. */
const CHUNK_FRAME_SHIFT = 10;
const FRAMES_PER_CHUNK = 1 << CHUNK_FRAME_SHIFT;
/** Frames per directory page: 4096 (16 MiB of physical memory), 16 KiB of host memory. */
const DIR_SHIFT = 12;
const DIR_MASK = (1 << DIR_SHIFT) - 1;
const TWO_32 = 4294967296;

export class PhysMem {
  readonly size: number;
  readonly frames: number;
  /** Per directory page, each frame's slot + 1 (0: unbacked). */
  private readonly dir: (Int32Array | undefined)[];
  /** The pool: slot s is bytes [(s % FRAMES_PER_CHUNK) * PAGE_SIZE, +PAGE_SIZE) of chunk s / FRAMES_PER_CHUNK. */
  private readonly chunks: DataView[] = [];
  private readonly chunkBytes: Uint8Array[] = [];
  private touched = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0 || size % PAGE_SIZE !== 0 || size > 2 ** 40) {
      throw new UserError(`physical memory size: expected a multiple of 4096 up to 1 TiB, got ${size}`);
    }
    this.size = size;
    this.frames = size / PAGE_SIZE;
    this.dir = new Array<Int32Array | undefined>(Math.ceil(this.frames / (DIR_MASK + 1))).fill(undefined);
  }

  /** Frames that hold host memory. */
  get touchedFrames(): number {
    return this.touched;
  }

  // The frame of the last access (most accesses fall in the frame of the one before): its
  // chunk and the byte offset of the frame in it.
  private lastFrame = -1;
  private lastView: DataView | undefined;
  private lastBytes: Uint8Array | undefined;
  private lastBase = 0;

  /**
   * Makes frame(pa) the last frame: lastView and lastBase locate it. Returns false, leaving the
   * last frame as it was, when the frame is unbacked and `create` is false.
   */
  private frameFor(pa: number, create: boolean): boolean {
    const frame = Math.floor(pa / PAGE_SIZE);
    if (frame === this.lastFrame) return true;
    if (!(pa >= 0 && pa < this.size)) throw new RangeError(`physical address 0x${pa.toString(16)} is outside memory (0..0x${this.size.toString(16)})`);
    let page = this.dir[frame >>> DIR_SHIFT];
    let slot = page === undefined ? -1 : page[frame & DIR_MASK]! - 1;
    if (slot < 0) {
      if (!create) return false;
      if (page === undefined) this.dir[frame >>> DIR_SHIFT] = page = new Int32Array(DIR_MASK + 1);
      slot = this.touched++;
      if (slot % FRAMES_PER_CHUNK === 0) {
        const buffer = new ArrayBuffer(FRAMES_PER_CHUNK * PAGE_SIZE);
        this.chunks.push(new DataView(buffer));
        this.chunkBytes.push(new Uint8Array(buffer));
      }
      page[frame & DIR_MASK] = slot + 1;
    }
    this.lastFrame = frame;
    this.lastView = this.chunks[slot >>> CHUNK_FRAME_SHIFT];
    this.lastBytes = this.chunkBytes[slot >>> CHUNK_FRAME_SHIFT];
    this.lastBase = (slot & (FRAMES_PER_CHUNK - 1)) * PAGE_SIZE;
    return true;
  }

  // Accesses must not cross a frame; callers split (the CPU does, per line).

  read8(pa: number): number {
    return this.frameFor(pa, false) ? this.lastView!.getUint8(this.lastBase + (pa & FRAME_MASK)) : 0;
  }

  read16(pa: number): number {
    return this.frameFor(pa, false) ? this.lastView!.getUint16(this.lastBase + (pa & FRAME_MASK), true) : 0;
  }

  read32(pa: number): number {
    return this.frameFor(pa, false) ? this.lastView!.getUint32(this.lastBase + (pa & FRAME_MASK), true) : 0;
  }

  /** High 32 bits of the 64-bit word at pa. */
  read32hi(pa: number): number {
    return this.read32(pa + 4);
  }

  write8(pa: number, value: number): void {
    this.frameFor(pa, true);
    this.lastView!.setUint8(this.lastBase + (pa & FRAME_MASK), value);
  }

  write16(pa: number, value: number): void {
    this.frameFor(pa, true);
    this.lastView!.setUint16(this.lastBase + (pa & FRAME_MASK), value, true);
  }

  write32(pa: number, value: number): void {
    this.frameFor(pa, true);
    this.lastView!.setUint32(this.lastBase + (pa & FRAME_MASK), value >>> 0, true);
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
      if (this.frameFor(at, false)) {
        const base = this.lastBase + (at & FRAME_MASK);
        this.lastBytes!.fill(0, base, base + inFrame);
      }
      off += inFrame;
    }
  }

  /** Sets `length` bytes inside one frame to `byte`; a 0 fill leaves an unbacked frame unbacked. */
  fillInFrame(pa: number, length: number, byte: number): void {
    if (!this.frameFor(pa, byte !== 0)) return;
    const at = this.lastBase + (pa & FRAME_MASK);
    this.lastBytes!.fill(byte, at, at + length);
  }

  /**
   * The backed frames (a checkpoint's part of memory): their numbers, ascending, and their
   * contents, 4096 bytes each in that order.
   */
  snapshot(): { frames: Float64Array; data: Uint8Array } {
    const frames = new Float64Array(this.touched);
    const data = new Uint8Array(this.touched * PAGE_SIZE);
    let n = 0;
    for (let d = 0; d < this.dir.length; d++) {
      const page = this.dir[d];
      if (page === undefined) continue;
      for (let i = 0; i <= DIR_MASK; i++) {
        const slot = page[i]! - 1;
        if (slot < 0) continue;
        frames[n] = d * (DIR_MASK + 1) + i;
        const at = (slot & (FRAMES_PER_CHUNK - 1)) * PAGE_SIZE;
        data.set(this.chunkBytes[slot >>> CHUNK_FRAME_SHIFT]!.subarray(at, at + PAGE_SIZE), n * PAGE_SIZE);
        n++;
      }
    }
    return { frames, data };
  }

  /** Replaces the whole memory with a snapshot()'s frames. */
  restore(frames: Float64Array, data: Uint8Array): void {
    if (data.byteLength !== frames.length * PAGE_SIZE) throw new RangeError(`physmem restore: ${frames.length} frames need ${frames.length * PAGE_SIZE} bytes, got ${data.byteLength}`);
    this.dir.fill(undefined);
    this.chunks.length = 0;
    this.chunkBytes.length = 0;
    this.touched = 0;
    this.lastFrame = -1;
    for (let n = 0; n < frames.length; n++) {
      const frame = frames[n]!;
      if (!(frame >= 0 && frame < this.frames)) throw new RangeError(`physmem restore: frame ${frame} is outside memory (${this.frames} frames)`);
      this.frameFor(frame * PAGE_SIZE, true);
      this.lastBytes!.set(data.subarray(n * PAGE_SIZE, (n + 1) * PAGE_SIZE), this.lastBase);
    }
    this.lastFrame = -1;
    this.lastView = undefined;
    this.lastBytes = undefined;
  }

  /** Copies bytes out (functional; for tests and dumps). */
  readBytes(pa: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.read8(pa + i);
    return out;
  }
}
