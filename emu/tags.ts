// A set-associative tag store with a replacement policy, on flat typed arrays: the one
// implementation of tags and replacement in kmemu.
//
// Used by every cache-like structure: the machine's private L1D/L2 and LLC (emu/memsys.ts),
// its TLBs (emu/tlb.ts), and the levels and TLB of `kmemu cachesim` (emu/cachesim.ts), whose
// Dinero IV fixtures thereby validate the victims and replacement order the machine uses. A
// slot is `set * ways + way`; callers keep their own per-slot payload (coherence state, dirty
// bits, translation) in arrays indexed by slot.
//
// Keys are block numbers (an address shifted right by the block size) split into two 32-bit
// words, so that 64-bit trace addresses such as ffffffff80001040 stay exact without BigInt.
// The set index is the low word's low bits. A key's high word must be below 2^31 - 1 (any
// block number below 2^53 qualifies; so does a 64-bit address shifted by 2 or more).
//
// A hit is found in one probe through a hint per key (the slot where the key was last found or
// filled); a stale hint costs a scan of the set, or for sets wider than 16 ways a probe of an
// exact key index. An empty slot has the high word -1, so no probe needs a valid bit.

import { createRequire } from 'node:module';
import type seedrandom from 'seedrandom';

/**
 * seedrandom's xor128 alone, loaded on first use: the whole package costs tens of milliseconds
 * to load, a good part of a short `kmemu cachesim` run, and only the random policy needs it.
 */
let xor128: typeof seedrandom.xor128 | null = null;
function seededInt32(seed: number): () => number {
  xor128 ??= createRequire(import.meta.url)('seedrandom/lib/xor128.js') as typeof seedrandom.xor128;
  const prng = xor128(String(seed));
  return () => prng.int32() >>> 0;
}

export const replacementPolicies = ['lru', 'fifo', 'plru', 'random'] as const;
export type ReplacementPolicy = (typeof replacementPolicies)[number];

const TWO_32 = 4294967296;

/** tagHi of an empty slot: no key's high word is -1 (they are below 2^31 - 1). */
const EMPTY = -1;

/**
 * Arrays of more slots (a 32 MiB LLC has 512 Ki) get a one-entry hint, the last slot found or
 * filled: a full table would be 4 MiB read at random, a host-cache miss of its own on every
 * lookup (the machine's 4 MiB benchmark ran 4% slower with it).
 */
const HINT_MAX_SLOTS = 65536;

const POLICY_LRU = 0;
const POLICY_FIFO = 1;
const POLICY_PLRU = 2;
const POLICY_RANDOM = 3;
const POLICY_CODE: Record<ReplacementPolicy, number> = { lru: POLICY_LRU, fifo: POLICY_FIFO, plru: POLICY_PLRU, random: POLICY_RANDOM };

/** Splits a non-negative integer below 2^53 into its high and low 32-bit words. */
export function hiWord(n: number): number {
  return Math.floor(n / TWO_32);
}

export class TagArray {
  readonly sets: number;
  readonly ways: number;
  readonly slots: number;
  readonly policy: ReplacementPolicy;
  private readonly policyCode: number;
  private readonly setMask: number;
  /** The key's low word in each slot, as a signed 32-bit integer (`lo | 0`). */
  private readonly tagLo: Int32Array;
  /** The key's high word in each slot, or -1 (EMPTY) for an empty slot. */
  private readonly tagHi: Int32Array;
  /**
   * The slot where each key was last found or filled, by the low word's low bits. A key is in
   * at most one slot, so a hinted slot holding the key is the answer; a stale hint only costs
   * the search. A power of two of at least 2 × slots entries, or one entry above
   * HINT_MAX_SLOTS slots.
   */
  private readonly hint: Int32Array;
  private readonly hintMask: number;
  /** 1 when the slot holds a block (tagHi is not -1), for callers' scans. */
  readonly valid: Uint8Array;
  /** LRU: time of last use; FIFO and random: time of fill; tree-PLRU: 0. 0 for an empty slot. */
  private readonly stamp: Float64Array;
  /** Tree-PLRU: ways-1 direction bits per set (ways a power of two). */
  private readonly plruBits: Uint8Array;
  /** Replacement clock: the last stamp given. */
  private now = 0;
  private readonly rng: () => number;
  /**
   * For wide sets (more than 16 ways: fully associative TLBs), an exact index from key to slot:
   * open addressing over slot numbers (-1 empty), the keys read from the slots' tags,
   * backward-shift deletion. It makes a miss O(1) where a scan would read every way.
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
    this.policyCode = POLICY_CODE[policy];
    this.setMask = sets - 1;
    this.tagLo = new Int32Array(this.slots);
    this.tagHi = new Int32Array(this.slots).fill(EMPTY);
    let hintSize = 1;
    if (this.slots <= HINT_MAX_SLOTS) while (hintSize < 2 * this.slots) hintSize *= 2;
    this.hint = new Int32Array(hintSize);
    this.hintMask = hintSize - 1;
    this.valid = new Uint8Array(this.slots);
    this.stamp = new Float64Array(this.slots);
    this.plruBits = new Uint8Array(policy === 'plru' ? sets * ways : 0);
    this.rng = policy === 'random' ? seededInt32(seed) : () => 0;
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

  /**
   * The slot holding block (hi, lo), or -1 (lo signed or unsigned). Does not update
   * replacement state. Small enough that V8 inlines it, with touch(), into a per-reference loop
   * (CachesimHierarchy.run()); the search past a stale hint stays out of line.
   */
  find(hi: number, lo: number): number {
    const h = this.hint[lo & this.hintMask]!;
    if (this.tagLo[h] === (lo | 0) && this.tagHi[h] === hi) return h;
    return this.findPastHint(hi, lo | 0);
  }

  /** find() once the hint has missed: searches the set (or the index) and fixes the hint. */
  private findPastHint(hi: number, lo: number): number {
    const tagLo = this.tagLo;
    const tagHi = this.tagHi;
    const index = this.index;
    if (index !== undefined) {
      const mask = this.indexMask;
      for (let i = this.home(hi, lo); ; i = (i + 1) & mask) {
        const s = index[i]!;
        if (s < 0) return -1;
        if (tagLo[s] === lo && tagHi[s] === hi) {
          this.hint[lo & this.hintMask] = s;
          return s;
        }
      }
    }
    const base = (lo & this.setMask) * this.ways;
    const end = base + this.ways;
    for (let s = base; s < end; s++) {
      if (tagLo[s] === lo && tagHi[s] === hi) {
        this.hint[lo & this.hintMask] = s;
        return s;
      }
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

  /** Whether `slot` holds block (hi, lo) (lo signed or unsigned): checks a remembered slot without a search. */
  holdsAt(slot: number, hi: number, lo: number): boolean {
    return this.tagLo[slot] === (lo | 0) && this.tagHi[slot] === hi;
  }

  /** Records a use of a slot (a hit): refreshes LRU order and the PLRU tree, leaves FIFO and random alone. */
  touch(slot: number): void {
    if (this.policyCode === POLICY_LRU) this.stamp[slot] = ++this.now;
    else if (this.policyCode === POLICY_PLRU) this.plruTouch(slot);
  }

  /**
   * The slot to fill for a block in the set starting at `base`: the first empty way, else
   * the policy's victim. The caller evicts what is there, then calls install().
   */
  victim(base: number): number {
    const end = base + this.ways;
    const tagHi = this.tagHi;
    for (let s = base; s < end; s++) if (tagHi[s] === EMPTY) return s;
    switch (this.policyCode) {
      case POLICY_LRU:
      case POLICY_FIFO: {
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
      case POLICY_PLRU:
        return this.plruVictim(base);
      default:
        return base + (this.rng() % this.ways);
    }
  }

  /**
   * Puts block (hi, lo) in `slot`, as the most recently used / newest entry. The block must
   * not be in another slot; hi must be below 2^31 - 1 (lo signed or unsigned).
   */
  install(slot: number, hi: number, lo: number): void {
    if (!(hi >= 0 && hi < 0x7fffffff)) throw new RangeError(`a tag's high word must be below 2^31 - 1, got ${hi}`);
    const tagHi = this.tagHi;
    if (this.index !== undefined && tagHi[slot] !== EMPTY) this.indexRemove(slot);
    this.tagLo[slot] = lo;
    tagHi[slot] = hi;
    this.valid[slot] = 1;
    this.hint[lo & this.hintMask] = slot;
    if (this.index !== undefined) this.indexInsert(slot);
    if (this.policyCode === POLICY_PLRU) this.plruTouch(slot);
    else this.stamp[slot] = ++this.now;
  }

  invalidate(slot: number): void {
    if (this.index !== undefined && this.tagHi[slot] !== EMPTY) this.indexRemove(slot);
    this.tagHi[slot] = EMPTY;
    this.valid[slot] = 0;
    this.stamp[slot] = 0;
  }

  /** Block number of a valid slot (exact below 2^53). */
  blockOf(slot: number): number {
    return this.tagHi[slot]! * TWO_32 + (this.tagLo[slot]! >>> 0);
  }

  /** Replacement age of a slot: LRU, the time of its last use; FIFO and random, of its fill (larger is newer). */
  age(slot: number): number {
    return this.stamp[slot]!;
  }

  /** Low word of a valid slot's block number, unsigned. */
  blockLo(slot: number): number {
    return this.tagLo[slot]! >>> 0;
  }

  blockHi(slot: number): number {
    return this.tagHi[slot]!;
  }

  /** Empties every slot for which `keep` is false (all of them without a predicate). */
  invalidateAll(keep?: (slot: number) => boolean): void {
    for (let s = 0; s < this.slots; s++) {
      if (this.tagHi[s] !== EMPTY && (keep === undefined || !keep(s))) this.invalidate(s);
    }
  }

  // Tree-PLRU over `ways` leaves: node i has children 2i+1 and 2i+2; a bit of 0 points the
  // victim search left. A use flips the bits on its path to point away from it.
  private plruTouch(slot: number): void {
    const ways = this.ways;
    const bits = slot - (slot % ways);
    const way = slot - bits;
    let node = 0;
    let lo = 0;
    let span = ways;
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
    let node = 0;
    let lo = 0;
    let span = this.ways;
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
