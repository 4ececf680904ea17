// The cache hierarchy of `kmemu cachesim`: one CPU, write-back write-allocate levels driven by
// an address trace; optionally a TLB in front.
//
// Two modes:
//
// Non-inclusive (Dinero-compatible). Models Dinero IV release 7 (ref.c d4ref, misc.c
// d4copyback/d4invalidate/d4_dopending) with write-back, write-allocate and no prefetch, so that
// with LRU or FIFO every count equals Dinero's:
//   - a reference is split into one access per line it touches (d4_splitm; `multiBlockRefs`
//     counts the extra pieces);
//   - every level is independent: no inclusion, no back-invalidation;
//   - LRU order is refreshed by every hit, read or write; FIFO order never;
//   - a miss sends its fill request (a read of the whole line; an instruction fetch or misc
//     access keeps its type) to the next level first, then its dirty victim as a write of the
//     whole line (Dinero pushes both on a LIFO pending stack: victim first, fill second);
//   - a write that covers a whole line, as every writeback from an equal-line level above
//     does, allocates without fetching;
//   - `writebacks` counts the dirty lines written to the next level during the run: dirty
//     evictions and lines copied back by `c` records (Dinero's Bytes To Memory / line). The
//     dineroIV command copies every dirty line back before printing its statistics; flush()
//     does the same when asked (counted in `copybacks` too);
//   - sizes are Dinero's 16-bit d4memref.size: taken mod 65536, and a size of 0 covers 65536
//     bytes at a line-aligned address (d4_splitm wraps) and is a 1-byte access elsewhere.
//   - copy back (`c`) and invalidate (`v`) records act on the line holding the address, or on
//     the whole cache for size 0, in every level (d4copyback/d4invalidate with prop = 1).
//
// Inclusive (the default). Every line in a level is also in every level below it: when a
// level evicts a line (or invalidates it), the copies of that line in the levels above are
// invalidated too (`backInvalidations`); a dirty upper copy counts as a writeback of its level
// and makes the evicted line dirty. A miss fetches from below even when the write covers the
// whole line, so that the line is in the lower levels; the victim is chosen after the fill, as
// the fill may have freed a way by back-invalidation. Sizes are taken as they are (0 as 1).
// Random replacement uses TagArray's seeded generator in both modes, so it never matches
// Dinero's unseeded random().
//
// Tags and replacement are the machine's own: every level and the TLB hold an emu/tags.ts
// TagArray, the tag store of the caches and TLBs in emu/memsys.ts and emu/tlb.ts, so that
// matching Dinero IV validates the victims and replacement order the machine uses. A level adds
// only its dirty bits, counters and the rules above.

import { TagArray } from './tags.js';
import type { ReplacementPolicy } from './tags.js';

/** Access types, with Dinero IV's numbering (d4.h D4XREAD..D4XINVAL). */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_IFETCH = 2;
export const ACCESS_MISC = 3;
export const ACCESS_COPYBACK = 4;
export const ACCESS_INVALIDATE = 5;

export interface CacheLevelSpec {
  /** Capacity in bytes. */
  size: number;
  ways: number;
  /** Line size in bytes, a power of two from 4 to 32768 (Dinero's sizes are 16-bit). */
  line: number;
  policy: ReplacementPolicy;
}

export interface TlbSpec {
  entries: number;
  ways: number;
}

export interface CachesimConfig {
  levels: readonly CacheLevelSpec[];
  inclusive: boolean;
  tlb?: TlbSpec;
  /** Seed of the random replacement policy. */
  seed?: number;
}

/** Page size of the cachesim TLB: 4 KiB, as 2^12. */
const LG_PAGE = 12;

// Counter slots of a level. The first two groups are indexed by access type 0-3.
const C_FETCH = 0;
const C_MISS = 4;
const C_WRITEBACK = 8;
const C_COPYBACK = 9;
const C_BACKINVAL = 10;
const C_MULTIBLOCK = 11;
const C_FILL = 12;
const C_COUNT = 13;

/** Why a cache shape is impossible, or null when it is fine. */
export function checkCacheLevelSpec(spec: CacheLevelSpec): string | null {
  const { size, ways, line } = spec;
  const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && n <= 2 ** 40 && 2 ** Math.round(Math.log2(n)) === n;
  if (!isPow2(line) || line < 4 || line > 32768) return `expected a power-of-two line size from 4 to 32768 bytes, got ${line}`;
  if (!Number.isInteger(size) || size < line) return `expected a size of at least one line (${line} bytes), got ${size}`;
  if (size % line !== 0) return `expected a size that is a multiple of the line size ${line}, got ${size}`;
  const lines = size / line;
  if (!Number.isInteger(ways) || ways < 1 || lines % ways !== 0) {
    return `expected a number of ways dividing the ${lines} lines of the cache, got ${ways}`;
  }
  const sets = lines / ways;
  if (!isPow2(sets)) return `expected a power-of-two number of sets (size / (ways × line)), got ${size} / (${ways} × ${line}) = ${sets}`;
  if (spec.policy === 'plru' && !isPow2(ways)) return `expected a power-of-two number of ways for plru, got ${ways}`;
  return null;
}

export class CachesimLevel {
  readonly name: string;
  readonly spec: CacheLevelSpec;
  readonly sets: number;
  readonly ways: number;
  readonly slots: number;
  /** Tags and replacement state, keyed by block number (the address shifted right by lg). */
  readonly tags: TagArray;
  /** 1 when the slot's line is dirty. */
  readonly dirty: Uint8Array;
  readonly counters = new Float64Array(C_COUNT);
  next: CachesimLevel | null = null;
  /** The levels above this one, nearest first (inclusive mode back-invalidates them). */
  uppers: CachesimLevel[] = [];
  /** Non-inclusive mode: the engine that runs what this level sends below, and this level's index there. */
  engine: DineroEngine | null = null;
  index = 0;
  readonly inclusive: boolean;
  readonly line: number;
  readonly lineMask: number;
  /** log2 of the line size. */
  readonly lg: number;
  /** 32 - lg: shift that moves the address's high word into the block number's low word. */
  readonly sh: number;
  /** Mask of the block number's high word: a 64-bit address has 64 - lg block bits. */
  private readonly blockHiMask: number;
  /** copyback(): the dirty slots of a set in replacement order. */
  private readonly order: Int32Array;

  constructor(name: string, spec: CacheLevelSpec, inclusive: boolean, seed: number) {
    const problem = checkCacheLevelSpec(spec);
    if (problem !== null) throw new RangeError(`${name}: ${problem}`);
    this.name = name;
    this.spec = spec;
    this.inclusive = inclusive;
    this.line = spec.line;
    this.lineMask = spec.line - 1;
    this.lg = Math.log2(spec.line);
    this.sh = 32 - this.lg;
    this.blockHiMask = 2 ** this.sh - 1;
    this.ways = spec.ways;
    this.sets = spec.size / spec.line / spec.ways;
    this.slots = this.sets * this.ways;
    this.tags = new TagArray(this.sets, this.ways, spec.policy, seed);
    this.dirty = new Uint8Array(this.slots);
    this.order = new Int32Array(spec.ways);
  }

  /**
   * Inclusive mode: one reference of `size` bytes (at least 1) at address (hi, lo), split into
   * lines. The hit path of a one-line reference is kept small so that it inlines into the
   * caller's loop. (Non-inclusive references are DineroEngine.ref()'s.)
   */
  ref(type: number, hi: number, lo: number, size: number): void {
    const offset = lo & this.lineMask;
    if (offset + size > this.line) {
      this.refLines(type, hi, lo, size, offset);
      return;
    }
    const bLo = (lo >>> this.lg) | (hi << this.sh);
    const bHi = hi >>> this.lg;
    this.counters[C_FETCH + type]!++;
    const tags = this.tags;
    const slot = tags.find(bHi, bLo);
    if (slot >= 0) {
      tags.touch(slot);
      if (type === ACCESS_WRITE) this.dirty[slot] = 1;
      return;
    }
    this.miss(type, bHi, bLo);
  }

  private invalidateSlot(slot: number): void {
    this.tags.invalidate(slot);
    this.dirty[slot] = 0;
  }

  /** A reference that crosses a line boundary: one access per line (d4_splitm). */
  private refLines(type: number, hi: number, lo: number, size: number, offset: number): void {
    const line = this.line;
    let bLo = (lo >>> this.lg) | (hi << this.sh);
    let bHi = hi >>> this.lg;
    const pieces = Math.floor((offset + size - 1) / line) + 1;
    this.counters[C_MULTIBLOCK]! += pieces - 1;
    for (let i = 0; i < pieces; i++) {
      this.access(type, bHi, bLo);
      bLo = (bLo + 1) | 0;
      if (bLo === 0) bHi = (bHi + 1) & this.blockHiMask;
    }
  }

  /** One access to block (bHi, bLo). */
  private access(type: number, bHi: number, bLo: number): void {
    this.counters[C_FETCH + type]!++;
    const tags = this.tags;
    const slot = tags.find(bHi, bLo);
    if (slot >= 0) {
      tags.touch(slot);
      if (type === ACCESS_WRITE) this.dirty[slot] = 1;
      return;
    }
    this.miss(type, bHi, bLo);
  }

  /**
   * Inclusive mode: a miss on block (bHi, bLo), already counted as an access: fill, evict,
   * install. The victim is chosen after the fill, which may have freed a way by
   * back-invalidation. (Non-inclusive misses are DineroEngine.ref()'s.)
   */
  miss(type: number, bHi: number, bLo: number): void {
    this.counters[C_MISS + type]!++;
    this.counters[C_FILL]!++;
    if (this.next !== null) this.toNext(type === ACCESS_WRITE ? ACCESS_READ : type, bHi, bLo);
    const tags = this.tags;
    const victim = tags.victim(tags.setBase(bLo));
    if (tags.valid[victim] === 1) this.evict(victim);
    tags.install(victim, bHi, bLo);
    this.dirty[victim] = type === ACCESS_WRITE ? 1 : 0;
  }

  /** Sends an access of the whole line (bHi, bLo) to the next level. */
  private toNext(type: number, bHi: number, bLo: number): void {
    const lg = this.lg;
    const hi = ((bHi << lg) | (bLo >>> this.sh)) >>> 0;
    const lo = (bLo << lg) >>> 0;
    if (this.engine !== null) this.engine.ref(this.index + 1, type, hi, lo, this.line);
    else this.next!.ref(type, hi, lo, this.line);
  }

  /** Inclusive mode: evicts a valid slot, back-invalidating the levels above, writing back if dirty. */
  private evict(slot: number): void {
    const bHi = this.tags.blockHi(slot);
    const bLo = this.tags.blockLo(slot);
    let dirty = this.dirty[slot]!;
    if (this.backInvalidate(bHi, bLo, true)) dirty = 1;
    this.invalidateSlot(slot);
    if (dirty === 1) {
      this.counters[C_WRITEBACK]!++;
      if (this.next !== null) this.toNext(ACCESS_WRITE, bHi, bLo);
    }
  }

  /**
   * Invalidates the copies, in the levels above, of the lines overlapping block (bHi, bLo) of
   * this level. With `writeBack`, a dirty copy counts as a writeback of its level. True when
   * some copy was dirty.
   */
  private backInvalidate(bHi: number, bLo: number, writeBack: boolean): boolean {
    let anyDirty = false;
    const hi = ((bHi << this.lg) | (bLo >>> this.sh)) >>> 0;
    const lo = (bLo << this.lg) >>> 0;
    for (const upper of this.uppers) {
      const count = this.line > upper.line ? this.line / upper.line : 1;
      const uHi = hi >>> upper.lg;
      const uLo = (lo >>> upper.lg) | (hi << upper.sh);
      for (let i = 0; i < count; i++) {
        const slot = upper.tags.find(uHi, (uLo + i) | 0);
        if (slot < 0) continue;
        upper.counters[C_BACKINVAL]!++;
        if (upper.dirty[slot] === 1) {
          anyDirty = true;
          if (writeBack) upper.counters[C_WRITEBACK]!++;
        }
        upper.invalidateSlot(slot);
      }
    }
    return anyDirty;
  }

  /**
   * Copies dirty lines back to the next level without invalidating them: the line holding
   * (hi, lo), or every line when `all`. Then the next level does the same (d4copyback with
   * prop = 1). The writes reach the next level in Dinero's order: the pending stack pops the
   * last set first and, within a set, the least recently used (or oldest) line first.
   */
  copyback(hi: number, lo: number, all: boolean): void {
    if (!all) {
      const slot = this.tags.find(hi >>> this.lg, (lo >>> this.lg) | (hi << this.sh));
      if (slot >= 0 && this.dirty[slot] === 1) this.writeBackSlot(slot);
    } else {
      const ways = this.ways;
      const order = this.order;
      const tags = this.tags;
      for (let set = this.sets - 1; set >= 0; set--) {
        const base = set * ways;
        let n = 0;
        for (let s = base; s < base + ways; s++) {
          if (tags.valid[s] !== 1 || this.dirty[s] !== 1) continue;
          let j = n++;
          const age = tags.age(s);
          while (j > 0 && tags.age(order[j - 1]!) > age) {
            order[j] = order[j - 1]!;
            j--;
          }
          order[j] = s;
        }
        for (let j = 0; j < n; j++) this.writeBackSlot(order[j]!);
      }
    }
    if (this.next !== null) this.next.copyback(hi, lo, all);
  }

  private writeBackSlot(slot: number): void {
    this.dirty[slot] = 0;
    this.counters[C_COPYBACK]!++;
    this.counters[C_WRITEBACK]!++;
    if (this.next !== null) this.toNext(ACCESS_WRITE, this.tags.blockHi(slot), this.tags.blockLo(slot));
  }

  /**
   * Invalidates, without copying back, the line holding (hi, lo), or every line when `all`,
   * then does the same in the next level (d4invalidate with prop = 1). Inclusive mode also
   * drops the copies above of what it invalidates.
   */
  invalidate(hi: number, lo: number, all: boolean): void {
    if (!all) {
      const bLo = (lo >>> this.lg) | (hi << this.sh);
      const bHi = hi >>> this.lg;
      const slot = this.tags.find(bHi, bLo);
      if (slot >= 0) {
        if (this.inclusive) this.backInvalidate(bHi, bLo, false);
        this.invalidateSlot(slot);
      }
    } else {
      const tags = this.tags;
      for (let s = 0; s < this.slots; s++) {
        if (tags.valid[s] !== 1) continue;
        if (this.inclusive) this.backInvalidate(tags.blockHi(s), tags.blockLo(s), false);
        this.invalidateSlot(s);
      }
    }
    if (this.next !== null) this.next.invalidate(hi, lo, all);
  }

  stats(): CachesimLevelStats {
    const c = this.counters;
    return {
      name: this.name,
      size: this.spec.size,
      ways: this.spec.ways,
      line: this.spec.line,
      policy: this.spec.policy,
      accesses: c[C_FETCH + ACCESS_READ]! + c[C_FETCH + ACCESS_WRITE]! + c[C_FETCH + ACCESS_IFETCH]! + c[C_FETCH + ACCESS_MISC]!,
      reads: c[C_FETCH + ACCESS_READ]!,
      writes: c[C_FETCH + ACCESS_WRITE]!,
      ifetches: c[C_FETCH + ACCESS_IFETCH]!,
      misc: c[C_FETCH + ACCESS_MISC]!,
      misses: c[C_MISS + ACCESS_READ]! + c[C_MISS + ACCESS_WRITE]! + c[C_MISS + ACCESS_IFETCH]! + c[C_MISS + ACCESS_MISC]!,
      readMisses: c[C_MISS + ACCESS_READ]!,
      writeMisses: c[C_MISS + ACCESS_WRITE]!,
      ifetchMisses: c[C_MISS + ACCESS_IFETCH]!,
      miscMisses: c[C_MISS + ACCESS_MISC]!,
      writebacks: c[C_WRITEBACK]!,
      copybacks: c[C_COPYBACK]!,
      backInvalidations: c[C_BACKINVAL]!,
      multiBlockRefs: c[C_MULTIBLOCK]!,
      fills: c[C_FILL]!,
    };
  }
}

/** Counts of one level; sums (accesses, misses) are computed from the per-type counters. */
export interface CachesimLevelStats {
  name: string;
  size: number;
  ways: number;
  line: number;
  policy: ReplacementPolicy;
  accesses: number;
  reads: number;
  writes: number;
  ifetches: number;
  misc: number;
  misses: number;
  readMisses: number;
  writeMisses: number;
  ifetchMisses: number;
  miscMisses: number;
  /**
   * Dirty lines written to the next level: dirty evictions (inclusive: also dirty copies
   * dropped by back-invalidation) and the lines of `copybacks`. Dinero's Bytes To Memory / line.
   */
  writebacks: number;
  /** Of the writebacks, the dirty lines copied back by copy-back records and flush(). */
  copybacks: number;
  /** Lines of this level invalidated because a level below evicted or invalidated them. */
  backInvalidations: number;
  /** Extra line accesses from references that cross a line boundary. */
  multiBlockRefs: number;
  /** Fill requests sent to the next level (lines read from below). */
  fills: number;
}

export interface TlbStats {
  entries: number;
  ways: number;
  pageSize: number;
  accesses: number;
  misses: number;
}

/** A set-associative LRU TLB of 4 KiB pages: one lookup per page a reference touches. */
export class CachesimTlb {
  readonly spec: TlbSpec;
  readonly tags: TagArray;
  accesses = 0;
  misses = 0;

  constructor(spec: TlbSpec) {
    const { entries, ways } = spec;
    const sets = entries / ways;
    if (!Number.isInteger(entries) || !Number.isInteger(ways) || ways < 1 || entries < ways || !Number.isInteger(sets)
      || (sets & (sets - 1)) !== 0) {
      throw new RangeError(`expected entries a power-of-two multiple of ways, got ${entries} entries, ${ways} ways`);
    }
    this.spec = spec;
    this.tags = new TagArray(sets, ways, 'lru');
  }

  translate(hi: number, lo: number, size: number): void {
    let pLo = ((lo >>> LG_PAGE) | (hi << (32 - LG_PAGE))) >>> 0;
    let pHi = hi >>> LG_PAGE;
    const pages = Math.floor(((lo & 0xfff) + size - 1) / 4096) + 1;
    const tags = this.tags;
    for (let i = 0; i < pages; i++) {
      this.accesses++;
      const slot = tags.find(pHi, pLo);
      if (slot >= 0) {
        tags.touch(slot);
      } else {
        this.misses++;
        tags.install(tags.victim(tags.setBase(pLo)), pHi, pLo);
      }
      pLo = (pLo + 1) >>> 0;
      if (pLo === 0) pHi = (pHi + 1) & 0xfffff;
    }
  }

  stats(): TlbStats {
    return { entries: this.spec.entries, ways: this.spec.ways, pageSize: 4096, accesses: this.accesses, misses: this.misses };
  }
}

export interface CachesimStats {
  references: number;
  inclusive: boolean;
  levels: CachesimLevelStats[];
  tlb: TlbStats | null;
}

/**
 * Non-inclusive (Dinero-compatible) mode: a reference to a level and everything it causes in
 * the levels below, run as Dinero IV's d4ref runs it — with a LIFO stack of pending accesses
 * instead of recursion, so that the whole path is one loop in one function. A miss pushes
 * its dirty victim's writeback, then its fill, so the fill (and all that it causes below) runs
 * first; a reference crossing lines runs one line at a time, the rest pushed beneath what the
 * line causes.
 */
export class DineroEngine {
  private readonly levels: readonly CachesimLevel[];
  // The pending stack, one entry per index: level, access type, address (hi, lo as int32),
  // bytes, and 1 when the entry is a reference as given (not the rest of a split one). Each
  // level holds at most two entries (the rest of its reference and its victim) beneath the
  // one running, so 2 × levels + 1 entries suffice.
  private readonly sLevel: Int32Array;
  private readonly sType: Int32Array;
  private readonly sHi: Int32Array;
  private readonly sLo: Int32Array;
  private readonly sSize: Int32Array;
  private readonly sFirst: Uint8Array;

  constructor(levels: readonly CachesimLevel[]) {
    this.levels = levels;
    const depth = 2 * levels.length + 1;
    this.sLevel = new Int32Array(depth);
    this.sType = new Int32Array(depth);
    this.sHi = new Int32Array(depth);
    this.sLo = new Int32Array(depth);
    this.sSize = new Int32Array(depth);
    this.sFirst = new Uint8Array(depth);
  }

  /** A reference of `size` bytes (1 to 65536) at (hi, lo) to level `li`, and all that it causes below. */
  ref(li: number, type: number, hi: number, lo: number, size: number): void {
    const levels = this.levels;
    const below = levels.length;
    const sLevel = this.sLevel;
    const sType = this.sType;
    const sHi = this.sHi;
    const sLo = this.sLo;
    const sSize = this.sSize;
    const sFirst = this.sFirst;
    sLevel[0] = li;
    sType[0] = type;
    sHi[0] = hi;
    sLo[0] = lo;
    sSize[0] = size;
    sFirst[0] = 1;
    let sp = 1;
    while (sp > 0) {
      sp--;
      const L = sLevel[sp]!;
      const t = sType[sp]!;
      const h = sHi[sp]!;
      const l = sLo[sp]!;
      const n = sSize[sp]!;
      const level = levels[L]!;
      const line = level.line;
      const lineMask = level.lineMask;
      const lg = level.lg;
      const sh = level.sh;
      const counters = level.counters;
      const offset = l & lineMask;
      let whole: boolean;
      if (offset + n > line) {
        // d4_splitm: this line now, the rest after what it causes.
        if (sFirst[sp] === 1) counters[C_MULTIBLOCK]! += Math.floor((offset + n - 1) / line);
        const nextLo = ((l | lineMask) + 1) | 0;
        sHi[sp] = nextLo === 0 ? (h + 1) | 0 : h;
        sLo[sp] = nextLo;
        sSize[sp] = n - (line - offset);
        sFirst[sp] = 0;
        sp++;
        whole = offset === 0;
      } else {
        whole = offset === 0 && n === line;
      }
      const bLo = (l >>> lg) | (h << sh);
      const bHi = h >>> lg;
      counters[C_FETCH + t]!++;
      const tags = level.tags;
      const dirty = level.dirty;
      const slot = tags.find(bHi, bLo);
      if (slot >= 0) {
        tags.touch(slot);
        if (t === ACCESS_WRITE) dirty[slot] = 1;
        continue;
      }
      counters[C_MISS + t]!++;
      const victim = tags.victim(tags.setBase(bLo));
      const victimDirty = tags.valid[victim] === 1 && dirty[victim] === 1;
      const vHi = tags.blockHi(victim);
      const vLo = tags.blockLo(victim) | 0;
      tags.install(victim, bHi, bLo);
      dirty[victim] = t === ACCESS_WRITE ? 1 : 0;
      const next = L + 1;
      if (victimDirty) {
        counters[C_WRITEBACK]!++;
        if (next < below) {
          sLevel[sp] = next;
          sType[sp] = ACCESS_WRITE;
          sHi[sp] = (vHi << lg) | (vLo >>> sh);
          sLo[sp] = vLo << lg;
          sSize[sp] = line;
          sFirst[sp] = 1;
          sp++;
        }
      }
      if (t !== ACCESS_WRITE || !whole) {
        counters[C_FILL]!++;
        if (next < below) {
          sLevel[sp] = next;
          sType[sp] = t === ACCESS_WRITE ? ACCESS_READ : t;
          sHi[sp] = (bHi << lg) | (bLo >>> sh);
          sLo[sp] = bLo << lg;
          sSize[sp] = line;
          sFirst[sp] = 1;
          sp++;
        }
      }
    }
  }
}

export class CachesimHierarchy {
  readonly levels: readonly CachesimLevel[];
  readonly inclusive: boolean;
  readonly tlb: CachesimTlb | null;
  private readonly l1: CachesimLevel;
  /** Non-inclusive mode's engine; null when inclusive. */
  private readonly engine: DineroEngine | null;
  references = 0;

  constructor(config: CachesimConfig) {
    if (config.levels.length === 0) throw new RangeError('expected at least one cache level');
    const levels = config.levels.map((spec, i) => new CachesimLevel(`l${i + 1}`, spec, config.inclusive, (config.seed ?? 1) + i));
    this.engine = config.inclusive ? null : new DineroEngine(levels);
    for (let i = 0; i < levels.length; i++) {
      levels[i]!.next = levels[i + 1] ?? null;
      levels[i]!.uppers = levels.slice(0, i).reverse();
      levels[i]!.engine = this.engine;
      levels[i]!.index = i;
    }
    this.levels = levels;
    this.l1 = levels[0]!;
    this.inclusive = config.inclusive;
    this.tlb = config.tlb === undefined ? null : new CachesimTlb(config.tlb);
  }

  /**
   * Runs `count` references given column by column (Dinero access types 0-5). The L1 hit of a
   * one-line reference is handled here (TagArray.find() and touch() inline into the loop);
   * everything else goes to the engine (non-inclusive) or the level's methods (inclusive).
   */
  run(type: Uint8Array, addrHi: Uint32Array, addrLo: Uint32Array, size: Uint32Array, count: number): void {
    if (this.engine !== null) {
      if (this.l1.line === 64) this.runDinero64(type, addrHi, addrLo, size, count);
      else this.runDinero(type, addrHi, addrLo, size, count);
    } else if (this.l1.line === 64 && this.tlb === null) {
      this.runLine64(type, addrHi, addrLo, size, count);
    } else {
      this.runInclusive(type, addrHi, addrLo, size, count);
    }
    this.references += count;
  }

  /**
   * Non-inclusive mode. Sizes are Dinero's 16-bit field: mod 65536, 0 covering 65536 bytes at
   * a line-aligned address and 1 byte elsewhere.
   */
  private runDinero(type: Uint8Array, addrHi: Uint32Array, addrLo: Uint32Array, size: Uint32Array, count: number): void {
    const l1 = this.l1;
    const engine = this.engine!;
    const tlb = this.tlb;
    const line = l1.line;
    const lineMask = l1.lineMask;
    const lg = l1.lg;
    const sh = l1.sh;
    const tags = l1.tags;
    const dirty = l1.dirty;
    const counters = l1.counters;
    for (let i = 0; i < count; i++) {
      const t = type[i]!;
      const hi = addrHi[i]!;
      const lo = addrLo[i]!;
      const s = size[i]!;
      if (t > ACCESS_MISC) {
        if (t === ACCESS_COPYBACK) l1.copyback(hi, lo, s === 0);
        else l1.invalidate(hi, lo, s === 0);
        continue;
      }
      let n = s & 0xffff;
      if (n === 0) n = (lo & lineMask) === 0 ? 0x10000 : 1;
      if (tlb !== null) tlb.translate(hi, lo, n);
      let slot = -1;
      if ((lo & lineMask) + n <= line) slot = tags.find(hi >>> lg, (lo >>> lg) | (hi << sh));
      if (slot >= 0) {
        counters[C_FETCH + t]!++;
        tags.touch(slot);
        if (t === ACCESS_WRITE) dirty[slot] = 1;
      } else {
        engine.ref(0, t, hi, lo, n);
      }
    }
  }

  /**
   * runDinero() for the usual L1 of 64-byte lines and no TLB, with the line's shifts and masks
   * as constants (variable shifts cost the hit path a fifth of its time): 6 = log2(64),
   * 26 = 32 - 6.
   */
  private runDinero64(type: Uint8Array, addrHi: Uint32Array, addrLo: Uint32Array, size: Uint32Array, count: number): void {
    if (this.tlb !== null) {
      this.runDinero(type, addrHi, addrLo, size, count);
      return;
    }
    const l1 = this.l1;
    const engine = this.engine!;
    const tags = l1.tags;
    const dirty = l1.dirty;
    const counters = l1.counters;
    for (let i = 0; i < count; i++) {
      const t = type[i]!;
      const hi = addrHi[i]!;
      const lo = addrLo[i]!;
      const s = size[i]!;
      if (t > 3) {
        if (t === ACCESS_COPYBACK) l1.copyback(hi, lo, s === 0);
        else l1.invalidate(hi, lo, s === 0);
        continue;
      }
      let n = s & 0xffff;
      if (n === 0) n = (lo & 63) === 0 ? 0x10000 : 1;
      let slot = -1;
      if ((lo & 63) + n <= 64) slot = tags.find(hi >>> 6, (lo >>> 6) | (hi << 26));
      if (slot >= 0) {
        counters[t]!++;
        tags.touch(slot);
        if (t === 1) dirty[slot] = 1;
      } else {
        engine.ref(0, t, hi, lo, n);
      }
    }
  }

  /** Inclusive mode. Sizes are taken as they are, 0 as 1. */
  private runInclusive(type: Uint8Array, addrHi: Uint32Array, addrLo: Uint32Array, size: Uint32Array, count: number): void {
    const l1 = this.l1;
    const tlb = this.tlb;
    const line = l1.line;
    const lineMask = l1.lineMask;
    const lg = l1.lg;
    const sh = l1.sh;
    const tags = l1.tags;
    const dirty = l1.dirty;
    const counters = l1.counters;
    for (let i = 0; i < count; i++) {
      const t = type[i]!;
      const s = size[i]!;
      const hi = addrHi[i]!;
      const lo = addrLo[i]!;
      if (t > ACCESS_MISC) {
        if (t === ACCESS_COPYBACK) l1.copyback(hi, lo, s === 0);
        else l1.invalidate(hi, lo, s === 0);
        continue;
      }
      const n = s === 0 ? 1 : s;
      if (tlb !== null) tlb.translate(hi, lo, n);
      const offset = lo & lineMask;
      if (offset + n > line) {
        l1.ref(t, hi, lo, n);
        continue;
      }
      const bLo = (lo >>> lg) | (hi << sh);
      const bHi = hi >>> lg;
      counters[C_FETCH + t]!++;
      const slot = tags.find(bHi, bLo);
      if (slot >= 0) {
        tags.touch(slot);
        if (t === ACCESS_WRITE) dirty[slot] = 1;
      } else {
        l1.miss(t, bHi, bLo);
      }
    }
  }

  /** runInclusive() for an L1 of 64-byte lines and no TLB, with constant shifts (see runDinero64). */
  private runLine64(type: Uint8Array, addrHi: Uint32Array, addrLo: Uint32Array, size: Uint32Array, count: number): void {
    const l1 = this.l1;
    const tags = l1.tags;
    const dirty = l1.dirty;
    const counters = l1.counters;
    for (let i = 0; i < count; i++) {
      const t = type[i]!;
      const s = size[i]!;
      const hi = addrHi[i]!;
      const lo = addrLo[i]!;
      if (t > 3) {
        if (t === ACCESS_COPYBACK) l1.copyback(hi, lo, s === 0);
        else l1.invalidate(hi, lo, s === 0);
        continue;
      }
      const n = s === 0 ? 1 : s;
      const offset = lo & 63;
      if (offset + n > 64) {
        l1.ref(t, hi, lo, n);
        continue;
      }
      const bLo = (lo >>> 6) | (hi << 26);
      const bHi = hi >>> 6;
      counters[t]!++;
      const slot = tags.find(bHi, bLo);
      if (slot >= 0) {
        tags.touch(slot);
        if (t === 1) dirty[slot] = 1;
      } else {
        l1.miss(t, bHi, bLo);
      }
    }
  }

  /** One reference, as run() takes it. */
  ref(type: number, hi: number, lo: number, size: number): void {
    TYPE1[0] = type;
    HI1[0] = hi;
    LO1[0] = lo;
    SIZE1[0] = size;
    this.run(TYPE1, HI1, LO1, SIZE1, 1);
  }

  /** Copies every dirty line back, level by level, as Dinero does before its report. */
  flush(): void {
    this.l1.copyback(0, 0, true);
  }

  stats(): CachesimStats {
    return {
      references: this.references,
      inclusive: this.inclusive,
      levels: this.levels.map((l) => l.stats()),
      tlb: this.tlb === null ? null : this.tlb.stats(),
    };
  }
}

const TYPE1 = new Uint8Array(1);
const HI1 = new Uint32Array(1);
const LO1 = new Uint32Array(1);
const SIZE1 = new Uint32Array(1);
