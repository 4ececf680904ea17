import { describe, expect, it } from 'vitest';
import { Directory } from '../../emu/index.js';

describe('Directory', () => {
  it('tracks holders of lines like a map of CPU sets, through collisions and deletions', () => {
    const dir = new Directory(64);
    const ref = new Map<number, Set<number>>();
    let x = 99;
    const rand = (n: number) => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % n;
    for (let i = 0; i < 20000; i++) {
      const line = rand(40) * 2 ** 20 + (rand(2) === 0 ? 2 ** 33 : 0);
      const cpu = rand(64);
      const held = ref.get(line) ?? new Set<number>();
      if (rand(3) === 0) {
        dir.remove(line, cpu);
        held.delete(cpu);
      } else {
        dir.add(line, cpu);
        held.add(cpu);
      }
      if (held.size === 0) ref.delete(line);
      else ref.set(line, held);
      if (i % 97 === 0) {
        for (const [l, set] of ref) {
          let lo = 0;
          let hi = 0;
          for (const c of set) {
            if (c < 32) lo = (lo | (1 << c)) >>> 0;
            else hi = (hi | (1 << (c - 32))) >>> 0;
          }
          expect([dir.holdersLo(l), dir.holdersHi(l)]).toEqual([lo, hi]);
        }
        expect(dir.size).toBe(ref.size);
      }
    }
  });

  it('heldByOthers() and setOnly() see CPUs above 31', () => {
    const dir = new Directory(8);
    dir.add(5, 40);
    expect(dir.heldByOthers(5, 3)).toBe(true);
    expect(dir.heldByOthers(5, 40)).toBe(false);
    dir.add(5, 2);
    dir.setOnly(5, 2);
    expect([dir.holdersLo(5), dir.holdersHi(5)]).toEqual([4, 0]);
  });
});
