import { describe, expect, it } from 'vitest';
import { PAGE_1G, PAGE_2M, PAGE_4K } from '../../emu/paging.js';
import { TLB_RW, Tlb } from '../../emu/tlb.js';

const cfg = {
  l1Small: { entries: 4, ways: 2 },
  l1Large: { entries: 2, ways: 2 },
  l2: { entries: 16, ways: 4, hitLatency: 9 },
  walkLatency: 0,
  invlpgLatency: 0,
};

const K = 0xffff_8000_0000; // KERNBASE as a 48-bit address

function hit(t: Tlb, va: number): [number, number] | undefined {
  return t.lookupL1(va) ? [t.hitBase, t.hitShift] : undefined;
}

describe('Tlb', () => {
  it('lookupL1() hits through the translation cache with the LRU order a search gives', () => {
    const t = new Tlb(cfg);
    // A 2-way set of 4K entries: pages 0 and 2 share set 0 (4 entries / 2 ways = 2 sets).
    t.fill(K, PAGE_4K, 0x1000, TLB_RW);
    t.fill(K + 2 * 4096, PAGE_4K, 0x3000, TLB_RW);
    expect(hit(t, K + 8)).toEqual([0x1000, PAGE_4K]); // page 0 becomes the most recently used
    expect(hit(t, K + 8)).toEqual([0x1000, PAGE_4K]);
    t.fill(K + 4 * 4096, PAGE_4K, 0x5000, TLB_RW); // evicts page 2, the LRU one
    expect(hit(t, K + 2 * 4096)).toBeUndefined();
    expect(hit(t, K)).toEqual([0x1000, PAGE_4K]);
    expect(hit(t, K + 4 * 4096)).toEqual([0x5000, PAGE_4K]);
    t.fill(K + 6 * 4096, PAGE_4K, 0x7000, TLB_RW); // evicts page 0 now
    expect(hit(t, K)).toBeUndefined();
  });

  it('lookupL1() misses once the remembered slot was invalidated or refilled with another page', () => {
    const t = new Tlb(cfg);
    t.fill(K, PAGE_4K, 0x1000, TLB_RW);
    expect(hit(t, K)).toEqual([0x1000, PAGE_4K]);
    t.invalidatePage(K);
    expect(hit(t, K)).toBeUndefined();
    t.fill(K, PAGE_4K, 0x9000, TLB_RW);
    expect(hit(t, K)).toEqual([0x9000, PAGE_4K]);
    t.flush(false);
    expect(hit(t, K)).toBeUndefined();
  });

  it('lookupL1() prefers a 4K entry installed after a large one translated the page', () => {
    const t = new Tlb(cfg);
    t.fill(K, PAGE_2M, 0x20_0000, TLB_RW);
    expect(hit(t, K + 0x5000)).toEqual([0x20_0000, PAGE_2M]);
    t.fill(K + 0x5000, PAGE_4K, 0x8000, TLB_RW);
    expect(hit(t, K + 0x5000)).toEqual([0x8000, PAGE_4K]);
    expect(hit(t, K + 0x6000)).toEqual([0x20_0000, PAGE_2M]);
    t.fill(0x4000_0000, PAGE_1G, 0x4000_0000, TLB_RW);
    expect(hit(t, 0x4000_0000 + 0x123_4000)).toEqual([0x4000_0000, PAGE_1G]);
  });
});
