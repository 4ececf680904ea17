import { describe, expect, it } from 'vitest';
import { TagArray, type ReplacementPolicy } from '../../emu/index.js';

/** Fills one set of a 1-set array with keys, touches some, and returns the victim's key. */
function victimAfter(policy: ReplacementPolicy, ways: number, fills: number[], touches: number[]): number {
  const t = new TagArray(1, ways, policy, 7);
  for (const k of fills) {
    const s = t.victim(0);
    t.install(s, 0, k);
  }
  for (const k of touches) t.touch(t.find(0, k));
  return t.blockLo(t.victim(0));
}

describe('TagArray', () => {
  it('find() returns the slot of a key, -1 for an absent one, and uses the set of the low bits', () => {
    const t = new TagArray(4, 2, 'lru');
    t.install(t.victim(t.setBase(6)), 1, 6);
    const s = t.find(1, 6);
    expect(Math.floor(s / 2)).toBe(2);
    expect(t.find(0, 6)).toBe(-1);
    expect(t.blockOf(s)).toBe(2 ** 32 + 6);
  });

  it('victim() picks an empty way before evicting', () => {
    const t = new TagArray(1, 4, 'lru');
    t.install(t.victim(0), 0, 1);
    t.install(t.victim(0), 0, 2);
    t.invalidate(t.find(0, 1));
    expect(t.victim(0)).toBe(0);
  });

  it('LRU evicts the least recently used, refreshed by touches', () => {
    expect(victimAfter('lru', 4, [1, 2, 3, 4], [])).toBe(1);
    expect(victimAfter('lru', 4, [1, 2, 3, 4], [1, 3])).toBe(2);
  });

  it('FIFO evicts the oldest fill whatever was touched', () => {
    expect(victimAfter('fifo', 4, [1, 2, 3, 4], [1, 2, 3])).toBe(1);
  });

  it('tree-PLRU follows the tree bits away from recent uses', () => {
    // Fills 1..4 into ways 0..3 point the tree at way 0; touching way 0 sends it to the right
    // half (way 2), touching way 2 then sends it back left to way 1.
    expect(victimAfter('plru', 4, [1, 2, 3, 4], [])).toBe(1);
    expect(victimAfter('plru', 4, [1, 2, 3, 4], [1])).toBe(3);
    expect(victimAfter('plru', 4, [1, 2, 3, 4], [1, 3])).toBe(2);
  });

  it('random replacement is reproducible from its seed', () => {
    const pick = (seed: number) => {
      const t = new TagArray(1, 8, 'random', seed);
      for (let k = 0; k < 8; k++) t.install(t.victim(0), 0, k);
      return Array.from({ length: 12 }, () => t.victim(0));
    };
    expect(pick(3)).toEqual(pick(3));
    expect(pick(3)).not.toEqual(pick(4));
  });

  it('a wide set finds keys through its hint as a scan would', () => {
    const wide = new TagArray(1, 96, 'lru');
    for (let k = 0; k < 200; k++) {
      if (wide.find(0, k % 120) < 0) {
        const v = wide.victim(0);
        wide.install(v, 0, k % 120);
      }
    }
    for (let k = 0; k < 120; k++) {
      const s = wide.find(0, k);
      if (s >= 0) expect(wide.blockLo(s)).toBe(k);
    }
    expect(Array.from(wide.valid).reduce((a, b) => a + b, 0)).toBe(96);
  });

  it('find() takes a low word of 2^31 or more signed or unsigned, and blockLo() gives it back unsigned', () => {
    const t = new TagArray(4, 2, 'lru');
    t.install(t.victim(t.setBase(0xfffffff3)), 3, 0xfffffff3);
    const s = t.find(3, 0xfffffff3);
    expect(s).toBeGreaterThanOrEqual(0);
    expect(t.find(3, 0xfffffff3 | 0)).toBe(s);
    expect(t.blockLo(s)).toBe(0xfffffff3);
    expect(t.blockOf(s)).toBe(3 * 2 ** 32 + 0xfffffff3);
  });

  it('find() misses a block invalidated since its hint was set', () => {
    const t = new TagArray(2, 4, 'lru');
    t.install(t.victim(t.setBase(5)), 0, 5);
    t.invalidate(t.find(0, 5));
    expect(t.find(0, 5)).toBe(-1);
    expect(t.victim(t.setBase(5))).toBe(4);
  });

  it('install() rejects a high word of 2^31 - 1 or more, which would read as an empty slot', () => {
    const t = new TagArray(1, 2, 'lru');
    expect(() => t.install(0, 0x7fffffff, 0)).toThrow(/below 2\^31 - 1, got 2147483647/);
    expect(() => t.install(0, 0xffffffff, 0)).toThrow(RangeError);
  });

  // A reference model of where each block is: install() and invalidate() as the caches use
  // them, then every key looked up. Covers stale and shared hints, the wide-set index and the
  // one-entry hint of arrays above 64 Ki slots.
  for (const [sets, ways] of [[16, 4], [1, 96], [8192, 16]] as const) {
    it(`find() agrees with a map of installed blocks on ${sets} sets × ${ways} ways after random fills and invalidations`, () => {
      const t = new TagArray(sets, ways, 'lru', 5);
      const where = new Map<string, number>();
      const owner = new Map<number, string>();
      let x = 99;
      const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
      const keys = 3 * t.slots;
      let wrong = 0;
      for (let i = 0; i < Math.min(8 * t.slots, 400_000); i++) {
        const k = next() % keys;
        const hi = k & 1;
        const lo = (k * 0x9e3779b1) >>> 0;
        const name = `${hi}:${lo}`;
        const found = t.find(hi, lo);
        if (found !== (where.get(name) ?? -1)) wrong++;
        if (found >= 0) {
          if ((next() & 7) === 0) {
            t.invalidate(found);
            where.delete(name);
            owner.delete(found);
          } else {
            t.touch(found);
          }
          continue;
        }
        const v = t.victim(t.setBase(lo));
        const old = owner.get(v);
        if (old !== undefined) where.delete(old);
        t.install(v, hi, lo);
        where.set(name, v);
        owner.set(v, name);
      }
      for (let k = 0; k < keys; k++) {
        const lo = (k * 0x9e3779b1) >>> 0;
        if (t.find(k & 1, lo) !== (where.get(`${k & 1}:${lo}`) ?? -1)) wrong++;
      }
      expect(wrong).toBe(0);
      expect(Array.from(t.valid).reduce((a, b) => a + b, 0)).toBe(where.size);
    });
  }
});
