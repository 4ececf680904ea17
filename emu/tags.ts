// A set-associative tag store with a replacement policy, on flat typed arrays.
//
// Shared by every cache-like structure in the machine: the private L1D/L2 and the LLC
// (emu/memsys.ts), the TLBs (emu/tlb.ts) and the Dinero-compatible hierarchy of
// `kmemu cachesim` (emu/cachesim.ts). A slot is `set * ways + way`; callers keep their own
// per-slot payload (coherence state, translation) in arrays indexed by slot.
//
// Keys are block numbers (an address shifted right by the block size) split into two
// unsigned 32-bit words, so that 64-bit trace addresses such as ffffffff80001040 stay exact
// without BigInt. The set index is the low word's low bits.

import seedrandom from 'seedrandom';

export const replacementPolicies = ['lru', 'fifo', 'plru', 'random'] as const;
export type ReplacementPolicy = (typeof replacementPolicies)[number];

const TWO_32 = 4294967296;

/** Splits a non-negative integer below 2^53 into its high and low 32-bit words. */
export function hiWord(n: number): number {
  return Math.floor(n / TWO_32);
}

export class TagArray {
  readonly sets: number;
  readonly ways: number;
  readonly slots: number;
  readonly policy: ReplacementPolicy;
  private readonly setMask: number;
  private readonly tagLo: Uint32Array;
  private readonly tagHi: Uint32Array;
  /** 1 when the slot holds a block. Callers keep richer state alongside. */
  readonly valid: Uint8Array;
  /** LRU: time of last use; FIFO: time of fill. 0 for an empty slot. */
  private readonly stamp: Float64Array;
  /** Tree-PLRU: ways-1 direction bits per set (ways a power of two). */
  private readonly plruBits: Uint8Array;
  private now = 0;
  private readonly rng: () => number;
  /**
   * For wide sets (more than 16 ways: fully associative TLBs), an exact index from key to slot: open addressing over
   * slot numbers (-1 empty), the keys read from the slots' tags, backward-shift deletion. It
   * makes both hits and misses O(1) where a scan would read every way.
   */
  private readonly index: Int32Array | undefined;
  private readonly indexBits: number;
  private readonly indexMask: number;

  constructor(sets: number, ways: number, policy: ReplacementPolicy, seed = 1) {
    if (!Number.isInteger(sets) || sets < 1 || (sets & (sets - 1)) !== 0) {
      throw new RangeError(`set count must be a power of two, got ${sets}`);
    }
    if (!Number.isInteger(ways) || ways < 1) throw new RangeError(`ways must be a positive integer, got ${ways}`);
    if (policy === 'plru' && (ways & (ways - 1)) !== 0) {
      throw new RangeError(`tree-PLRU needs a power-of-two number of ways, got ${ways}`);
    }
    this.sets = sets;
    this.ways = ways;
    this.slots = sets * ways;
    this.policy = policy;
    this.setMask = sets - 1;
    this.tagLo = new Uint32Array(this.slots);
    this.tagHi = new Uint32Array(this.slots);
    this.valid = new Uint8Array(this.slots);
    this.stamp = new Float64Array(this.slots);
    this.plruBits = new Uint8Array(policy === 'plru' ? sets * ways : 0);
    const prng = seedrandom.xor128(String(seed));
    this.rng = () => prng.int32() >>> 0;
    if (ways > 16) {
      let bits = 4;
      while (1 << bits < 2 * this.slots) bits++;
      this.index = new Int32Array(1 << bits).fill(-1);
      this.indexBits = bits;
      this.indexMask = (1 << bits) - 1;
    } else {
      this.index = undefined;
      this.indexBits = 0;
      this.indexMask = 0;
    }
  }

  /** The first slot of the set a block maps to. */
  setBase(lo: number): number {
    return (lo & this.setMask) * this.ways;
  }

  /** The slot holding block (hi, lo), or -1. Does not update replacement state. */
  find(hi: number, lo: number): number {
    const tagLo = this.tagLo;
    const index = this.index;
    if (index !== undefined) {
      const mask = this.indexMask;
      for (let i = this.home(hi, lo); ; i = (i + 1) & mask) {
        const s = index[i]!;
        if (s < 0) return -1;
        if (tagLo[s] === lo && this.tagHi[s] === hi) return s;
      }
    }
    const ways = this.ways;
    const base = (lo & this.setMask) * ways;
    const end = base + ways;
    const valid = this.valid;
    for (let s = base; s < end; s++) {
      if (tagLo[s] === lo && valid[s] === 1 && this.tagHi[s] === hi) return s;
    }
    return -1;
  }

  private home(hi: number, lo: number): number {
    return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> (32 - this.indexBits);
  }

  private indexRemove(slot: number): void {
    const index = this.index!;
    const mask = this.indexMask;
    let hole = this.home(this.tagHi[slot]!, this.tagLo[slot]!);
    while (index[hole] !== slot) hole = (hole + 1) & mask;
    for (let i = (hole + 1) & mask; index[i] !== -1; i = (i + 1) & mask) {
      const s = index[i]!;
      const h = this.home(this.tagHi[s]!, this.tagLo[s]!);
      // Move entry i into the hole unless its home lies cyclically in (hole, i].
      const between = hole <= i ? h > hole && h <= i : h > hole || h <= i;
      if (!between) {
        index[hole] = s;
        hole = i;
      }
    }
    index[hole] = -1;
  }

  private indexInsert(slot: number): void {
    const index = this.index!;
    const mask = this.indexMask;
    let i = this.home(this.tagHi[slot]!, this.tagLo[slot]!);
    while (index[i] !== -1) i = (i + 1) & mask;
    index[i] = slot;
  }

  /** Records a use of a slot (a hit): refreshes LRU order, leaves FIFO order alone. */
  touch(slot: number): void {
    if (this.policy === 'lru') this.stamp[slot] = ++this.now;
    else if (this.policy === 'plru') this.plruTouch(slot);
  }

  /**
   * The slot to fill for a block in the set starting at `base`: the first empty way, else
   * the policy's victim. The caller evicts what is there, then calls install().
   */
  victim(base: number): number {
    const end = base + this.ways;
    const valid = this.valid;
    for (let s = base; s < end; s++) if (valid[s] === 0) return s;
    switch (this.policy) {
      case 'lru':
      case 'fifo': {
        const stamp = this.stamp;
        let best = base;
        let bestStamp = stamp[base]!;
        for (let s = base + 1; s < end; s++) {
          const t = stamp[s]!;
          if (t < bestStamp) {
            bestStamp = t;
            best = s;
          }
        }
        return best;
      }
      case 'plru':
        return this.plruVictim(base);
      case 'random':
        return base + (this.rng() % this.ways);
    }
  }

  /** Puts block (hi, lo) in `slot`, as the most recently used / newest entry. */
  install(slot: number, hi: number, lo: number): void {
    if (this.index !== undefined && this.valid[slot] === 1) this.indexRemove(slot);
    this.tagLo[slot] = lo;
    this.tagHi[slot] = hi;
    this.valid[slot] = 1;
    if (this.index !== undefined) this.indexInsert(slot);
    if (this.policy === 'plru') this.plruTouch(slot);
    else this.stamp[slot] = ++this.now;
  }

  invalidate(slot: number): void {
    if (this.index !== undefined && this.valid[slot] === 1) this.indexRemove(slot);
    this.valid[slot] = 0;
    this.stamp[slot] = 0;
  }

  /** Block number of a valid slot (exact below 2^53). */
  blockOf(slot: number): number {
    return this.tagHi[slot]! * TWO_32 + this.tagLo[slot]!;
  }

  /** Replacement age of a slot: LRU, the time of its last use; FIFO, of its fill (larger is newer). */
  age(slot: number): number {
    return this.stamp[slot]!;
  }

  blockLo(slot: number): number {
    return this.tagLo[slot]!;
  }

  blockHi(slot: number): number {
    return this.tagHi[slot]!;
  }

  /** Empties every slot for which `keep` is false (all of them without a predicate). */
  invalidateAll(keep?: (slot: number) => boolean): void {
    for (let s = 0; s < this.slots; s++) {
      if (this.valid[s] === 1 && (keep === undefined || !keep(s))) this.invalidate(s);
    }
  }

  // Tree-PLRU over `ways` leaves: node i has children 2i+1 and 2i+2; a bit of 0 points the
  // victim search left. A use flips the bits on its path to point away from it.
  private plruTouch(slot: number): void {
    const ways = this.ways;
    const set = Math.floor(slot / ways);
    const bits = set * ways;
    let node = 0;
    let lo = 0;
    let span = ways;
    const way = slot - bits;
    while (span > 1) {
      span >>= 1;
      if (way < lo + span) {
        this.plruBits[bits + node] = 1;
        node = 2 * node + 1;
      } else {
        this.plruBits[bits + node] = 0;
        lo += span;
        node = 2 * node + 2;
      }
    }
  }

  private plruVictim(base: number): number {
    const ways = this.ways;
    let node = 0;
    let lo = 0;
    let span = ways;
    while (span > 1) {
      span >>= 1;
      if (this.plruBits[base + node] === 0) {
        node = 2 * node + 1;
      } else {
        lo += span;
        node = 2 * node + 2;
      }
    }
    return base + lo;
  }
}
