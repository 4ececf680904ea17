// Per-CPU TLBs: an L1 DTLB for 4K pages, an L1 DTLB for 2M and 1G pages, and a unified L2
// TLB holding all three sizes, each set-associative with LRU replacement (emu/tags.ts).
//
// An entry's key is its virtual page number; 2M and 1G keys carry a size tag in the high word
// so that sizes sharing an array never collide. An L1 miss probes the L2 for each size, as the
// hardware probes them in parallel.

import type { MachineConfig } from './config.js';
import { PAGE_1G, PAGE_2M, PAGE_4K } from './paging.js';
import { TagArray } from './tags.js';

export const TLB_RW = 1;
export const TLB_US = 2;
export const TLB_NX = 4;
export const TLB_G = 8;
export const TLB_D = 16;

const TWO_32 = 4294967296;
const SIZE_TAG_2M = 0x10000000;
const SIZE_TAG_1G = 0x20000000;

/** One TLB array with its payload: physical page base and flags per slot. */
class TlbArray {
  readonly tags: TagArray;
  readonly base: Float64Array;
  readonly flags: Uint8Array;

  constructor(entries: number, ways: number) {
    this.tags = new TagArray(entries / ways, ways, 'lru');
    this.base = new Float64Array(this.tags.slots);
    this.flags = new Uint8Array(this.tags.slots);
  }

  fill(hi: number, lo: number, base: number, flags: number): number {
    const t = this.tags;
    let s = t.find(hi, lo);
    if (s < 0) s = t.victim(t.setBase(lo));
    t.install(s, hi, lo);
    this.base[s] = base;
    this.flags[s] = flags;
    return s;
  }
}

function pageSize(pageShift: number): number {
  return pageShift === PAGE_4K ? 4096 : pageShift === PAGE_2M ? 2097152 : 1073741824;
}

function keyHi(va: number, pageShift: number): number {
  const hi = Math.floor(Math.floor(va / pageSize(pageShift)) / TWO_32);
  return pageShift === PAGE_4K ? hi : hi | (pageShift === PAGE_2M ? SIZE_TAG_2M : SIZE_TAG_1G);
}

function keyLo(va: number, pageShift: number): number {
  return Math.floor(va / pageSize(pageShift)) >>> 0;
}

const sizes = [PAGE_4K, PAGE_2M, PAGE_1G] as const;

/**
 * Entries of the host-side translation cache (as QEMU softmmu's tlb_table): per 4 KiB virtual
 * page, direct-mapped, the L1 slot that translated it last, so that an L1 hit costs one check of
 * that slot instead of a search of each page size's array. It models nothing and changes nothing:
 * a hit through it touches the same slot with the same LRU update as the search would.
 */
const SOFT_ENTRIES = 256;
const SOFT_MASK = SOFT_ENTRIES - 1;

export class Tlb {
  readonly l1Small: TlbArray;
  readonly l1Large: TlbArray;
  readonly l2: TlbArray;
  /** Filled by lookup(): the hit's page base, page shift and flags. */
  hitBase = 0;
  hitShift = 0;
  hitFlags = 0;

  // The translation cache: the page (-1: none), the L1 slot, its page shift, its key there.
  private readonly softVpn = new Float64Array(SOFT_ENTRIES).fill(-1);
  private readonly softSlot = new Int32Array(SOFT_ENTRIES);
  private readonly softShift = new Uint8Array(SOFT_ENTRIES);
  private readonly softHi = new Int32Array(SOFT_ENTRIES);
  private readonly softLo = new Int32Array(SOFT_ENTRIES);

  constructor(cfg: MachineConfig['tlb']) {
    this.l1Small = new TlbArray(cfg.l1Small.entries, cfg.l1Small.ways);
    this.l1Large = new TlbArray(cfg.l1Large.entries, cfg.l1Large.ways);
    this.l2 = new TlbArray(cfg.l2.entries, cfg.l2.ways);
  }

  /** Looks va up in the L1 arrays; on a hit fills hitBase/hitShift/hitFlags. */
  lookupL1(va: number): boolean {
    const vpn = Math.floor(va / 4096);
    const i = vpn & SOFT_MASK;
    if (this.softVpn[i] === vpn) {
      const shift = this.softShift[i]!;
      const arr = shift === PAGE_4K ? this.l1Small : this.l1Large;
      const s = this.softSlot[i]!;
      if (arr.tags.holdsAt(s, this.softHi[i]!, this.softLo[i]!)) {
        arr.tags.touch(s);
        this.hitBase = arr.base[s]!;
        this.hitShift = shift;
        this.hitFlags = arr.flags[s]!;
        return true;
      }
    }
    const lo = vpn >>> 0;
    const hi = (vpn - lo) / TWO_32;
    const small = this.l1Small;
    const s = small.tags.find(hi, lo);
    if (s >= 0) {
      small.tags.touch(s);
      this.hitBase = small.base[s]!;
      this.hitShift = PAGE_4K;
      this.hitFlags = small.flags[s]!;
      this.remember(i, vpn, s, PAGE_4K, hi, lo);
      return true;
    }
    return this.probeLarge(va, i, vpn, PAGE_2M) || this.probeLarge(va, i, vpn, PAGE_1G);
  }

  private probeLarge(va: number, i: number, vpn: number, shift: number): boolean {
    const large = this.l1Large;
    const hi = keyHi(va, shift);
    const lo = keyLo(va, shift);
    const s = large.tags.find(hi, lo);
    if (s < 0) return false;
    large.tags.touch(s);
    this.hitBase = large.base[s]!;
    this.hitShift = shift;
    this.hitFlags = large.flags[s]!;
    this.remember(i, vpn, s, shift, hi, lo);
    return true;
  }

  private remember(i: number, vpn: number, slot: number, shift: number, hi: number, lo: number): void {
    this.softVpn[i] = vpn;
    this.softSlot[i] = slot;
    this.softShift[i] = shift;
    this.softHi[i] = hi;
    this.softLo[i] = lo;
  }

  /** Looks va up in the L2 TLB; a hit is copied into the right L1 array. */
  lookupL2(va: number): boolean {
    const l2 = this.l2;
    for (const shift of sizes) {
      const s = l2.tags.find(keyHi(va, shift), keyLo(va, shift));
      if (s >= 0) {
        l2.tags.touch(s);
        this.hitBase = l2.base[s]!;
        this.hitShift = shift;
        this.hitFlags = l2.flags[s]!;
        this.fillL1(va, shift, this.hitBase, this.hitFlags);
        return true;
      }
    }
    return false;
  }

  /** Installs a walked translation in the L2 and the right L1 array. */
  fill(va: number, pageShift: number, base: number, flags: number): void {
    this.l2.fill(keyHi(va, pageShift), keyLo(va, pageShift), base, flags);
    this.fillL1(va, pageShift, base, flags);
  }

  private fillL1(va: number, pageShift: number, base: number, flags: number): void {
    // A new 4 KiB entry comes before any large one the cache may name for this page.
    if (pageShift === PAGE_4K) {
      const vpn = Math.floor(va / 4096);
      if (this.softVpn[vpn & SOFT_MASK] === vpn) this.softVpn[vpn & SOFT_MASK] = -1;
    }
    const arr = pageShift === PAGE_4K ? this.l1Small : this.l1Large;
    arr.fill(keyHi(va, pageShift), keyLo(va, pageShift), base, flags);
  }

  /** invlpg: drops every entry, of any size, that translates va. */
  invalidatePage(va: number): void {
    for (const arr of [this.l1Small, this.l1Large, this.l2]) {
      for (const shift of sizes) {
        const s = arr.tags.find(keyHi(va, shift), keyLo(va, shift));
        if (s >= 0) arr.tags.invalidate(s);
      }
    }
  }

  /** A CR3 reload: drops every entry, or every non-global one. */
  flush(keepGlobal: boolean): void {
    for (const arr of [this.l1Small, this.l1Large, this.l2]) {
      arr.tags.invalidateAll(keepGlobal ? (s) => (arr.flags[s]! & TLB_G) !== 0 : undefined);
    }
  }

  /**
   * The entries translating va, in every array that holds one (functional: no LRU update):
   * where (L1 or L2), the page size's shift, the physical base and the flags. For views.
   */
  probe(va: number): { level: 'L1' | 'L2'; pageShift: number; base: number; flags: number }[] {
    const out: { level: 'L1' | 'L2'; pageShift: number; base: number; flags: number }[] = [];
    for (const [level, arr] of [['L1', this.l1Small], ['L1', this.l1Large], ['L2', this.l2]] as const) {
      for (const shift of sizes) {
        const s = arr.tags.find(keyHi(va, shift), keyLo(va, shift));
        if (s >= 0) out.push({ level, pageShift: shift, base: arr.base[s]!, flags: arr.flags[s]! });
      }
    }
    return out;
  }

  /** Whether any array holds a translation for va (functional; for tests). */
  holds(va: number): boolean {
    for (const arr of [this.l1Small, this.l1Large, this.l2]) {
      for (const shift of sizes) if (arr.tags.find(keyHi(va, shift), keyLo(va, shift)) >= 0) return true;
    }
    return false;
  }
}
