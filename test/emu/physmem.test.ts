import { describe, expect, it } from 'vitest';
import { PhysMem } from '../../emu/physmem.js';

describe('PhysMem', () => {
  it('reads zeros from frames never written, and backs none of them', () => {
    const mem = new PhysMem(1 << 30);
    expect(mem.read8(0)).toBe(0);
    expect(mem.read32(0x3fff_fffc)).toBe(0);
    expect(mem.read64(0x1234_5678)).toBe(0);
    expect(mem.touchedFrames).toBe(0);
  });

  it('stores little-endian and reads back every width', () => {
    const mem = new PhysMem(1 << 20);
    mem.write64(0x1000, 0x1f_2233_4455_6677);
    expect(mem.read8(0x1000)).toBe(0x77);
    expect(mem.read16(0x1000)).toBe(0x6677);
    expect(mem.read32(0x1000)).toBe(0x4455_6677);
    expect(mem.read32(0x1004)).toBe(0x1f_2233);
    expect(mem.read64(0x1000)).toBe(0x1f_2233_4455_6677);
    mem.write16(0x1ffe, 0xbeef);
    expect(mem.read8(0x1fff)).toBe(0xbe);
    mem.write32(0x1005, 0xffff_ffff);
    expect(mem.read32(0x1004)).toBe(0xffff_ff33);
    expect(mem.read8(0x1008)).toBe(0xff);
    expect(mem.touchedFrames).toBe(1);
  });

  it('keeps frames apart whatever order they are first written in, across host chunks', () => {
    const mem = new PhysMem(2 ** 36);
    // 3000 frames, scattered over 64 GiB and written in a scrambled order: three 4 MiB host chunks.
    const frames: number[] = [];
    for (let i = 0; i < 3000; i++) frames.push(((i * 2654435761) >>> 0) % (2 ** 24));
    for (const [i, f] of frames.entries()) mem.write32(f * 4096 + 8, i + 1);
    const distinct = new Set(frames).size;
    expect(mem.touchedFrames).toBe(distinct);
    const last = new Map<number, number>();
    for (const [i, f] of frames.entries()) last.set(f, i + 1);
    for (const [f, v] of last) {
      expect(mem.read32(f * 4096 + 8)).toBe(v);
      expect(mem.read32(f * 4096 + 12)).toBe(0);
    }
  });

  it('zero() clears backed frames and leaves unbacked ones unbacked', () => {
    const mem = new PhysMem(1 << 24);
    mem.fillInFrame(0x2000, 4096, 0xab);
    mem.write8(0x3010, 7);
    mem.zero(0x2000, 3 * 4096);
    expect(mem.readBytes(0x2000, 4096).every((b) => b === 0)).toBe(true);
    expect(mem.read8(0x3010)).toBe(0);
    expect(mem.touchedFrames).toBe(2);
  });

  it('fillInFrame() of zeros does not back a frame; of another byte it does', () => {
    const mem = new PhysMem(1 << 24);
    mem.fillInFrame(0x5000, 64, 0);
    expect(mem.touchedFrames).toBe(0);
    mem.fillInFrame(0x5040, 64, 0x5a);
    expect(mem.touchedFrames).toBe(1);
    expect([mem.read8(0x503f), mem.read8(0x5040), mem.read8(0x507f), mem.read8(0x5080)]).toEqual([0, 0x5a, 0x5a, 0]);
  });

  it('refuses an address outside memory with its value', () => {
    const mem = new PhysMem(1 << 20);
    expect(() => mem.write8(1 << 20, 1)).toThrow('physical address 0x100000 is outside memory (0..0x100000)');
    expect(() => new PhysMem(4095)).toThrow('physical memory size: expected a multiple of 4096 up to 1 TiB, got 4095');
  });

  it('snapshot() lists the backed frames ascending and restore() brings back the same memory', () => {
    const mem = new PhysMem(2 ** 34);
    for (const f of [0x3_0000, 5, 0x1234, 2000, 5]) mem.write32(f * 4096 + 0x10, f + 1);
    const { frames, data } = mem.snapshot();
    expect([...frames]).toEqual([5, 2000, 0x1234, 0x3_0000]);
    const copy = new PhysMem(2 ** 34);
    copy.write8(77 * 4096, 1);
    copy.restore(frames, data);
    expect(copy.touchedFrames).toBe(4);
    expect(copy.read8(77 * 4096)).toBe(0);
    for (const f of [5, 2000, 0x1234, 0x3_0000]) expect(copy.read32(f * 4096 + 0x10)).toBe(f + 1);
    expect(() => copy.restore(new Float64Array([2 ** 22]), new Uint8Array(4096))).toThrow('physmem restore: frame 4194304 is outside memory (4194304 frames)');
  });
});
