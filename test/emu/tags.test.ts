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
});
