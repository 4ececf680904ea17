// What a trace holds, counted event by event as it streams past: events by op and by CPU,
// zones, a size histogram of allocations, live objects and frees on another CPU than the
// allocation's. Memory is the live objects (for the cross-CPU count) and the zones.
// The printers are in tools/trace.ts.

import {
  FIRST_V2_OP, OP_ALLOC, OP_ARENA, OP_FREE, OP_MALLOC, OP_MBUF, OP_MFREE, OP_MFREEM, OP_PALLOC, OP_PFREE, OP_VALLOC, OP_VFREE, OP_ZONE, opNames,
} from './format.js';
import type { TraceEvent } from './format.js';

/** Bytes in a page for the size of a `P` allocation (2^ORDER pages). */
const PAGE_SIZE = 4096;

export interface TraceStatsZone {
  id: number;
  name: string;
  /** Item size in bytes. */
  size: number;
  allocs: number;
  frees: number;
}

export interface TraceStatsArena {
  id: number;
  name: string;
  /** Quantum in bytes. */
  quantum: number;
  allocs: number;
  frees: number;
}

/** Version 2: the `b` events by kind, and the mbufs their chains hold. */
export interface TraceStatsMbufs {
  mbuf: number;
  pkthdr: number;
  cluster: number;
  /** `chain:N` events, and the N they add up to. */
  chain: number;
  chainMbufs: number;
}

export interface TraceStatsCpu {
  cpu: number;
  events: number;
  allocs: number;
  frees: number;
}

export interface TraceStatsSizeBucket {
  /** Allocations of more than `above` and at most `upTo` bytes. */
  above: number;
  upTo: number;
  count: number;
}

/** The JSON-able summary (TraceStats.summary()). */
export interface TraceStatsSummary {
  events: number;
  /** Events by op word (`zone`, `a`, `f`, `m`, `x`, `P`, `Q`, `t`; version 2 adds `arena`, `v`, `V`, `b`, `B`), every op of the trace's version present. */
  byOp: Record<string, number>;
  /** CPUs with at least one event, in order. */
  cpus: TraceStatsCpu[];
  /** Zones in order of creation. */
  zones: TraceStatsZone[];
  /** Version 2: vmem arenas in order of creation (absent from a version-1 trace's summary). */
  arenas?: TraceStatsArena[];
  /** Version 2: mbuf allocations (`b`) by kind (absent from a version-1 trace's summary). */
  mbufs?: TraceStatsMbufs;
  /** Allocations (a: the zone's item size, m and v: the size, P: 4096 << order; not b) by power-of-two bucket; empty buckets left out. */
  sizes: TraceStatsSizeBucket[];
  /** Objects allocated and not freed by the end. */
  live: number;
  /** Most objects live at once. */
  maxLive: number;
  /** Frees on another CPU than the allocation. */
  crossCpuFrees: number;
}

export class TraceStats {
  events = 0;
  readonly byOp = new Float64Array(opNames.length);
  maxLive = 0;
  crossCpuFrees = 0;
  private readonly perCpu = new Map<number, TraceStatsCpu>();
  /** The entry of the last event's CPU: runs of one CPU's events skip the lookup. */
  private lastCpu: TraceStatsCpu | undefined;
  private readonly zones = new Map<number, TraceStatsZone>();
  private readonly arenas = new Map<number, TraceStatsArena>();
  /** Allocating CPU by live object id; the arena of a `v` object. */
  private readonly live = new LiveCpus();
  private readonly arenaOf = new Map<number, TraceStatsArena>();
  private readonly mbufs: TraceStatsMbufs = { mbuf: 0, pkthdr: 0, cluster: 0, chain: 0, chainMbufs: 0 };

  /** `version`: the trace's format version (its ops are the keys of byOp). */
  constructor(private readonly version = 1) {}
  /** Allocations by ceil(log2(bytes)); bucket 0 holds sizes 0 and 1. */
  private readonly sizeBuckets = new Float64Array(64);

  add(ev: TraceEvent): void {
    this.events++;
    this.byOp[ev.op]!++;
    let c = this.lastCpu;
    if (c === undefined || c.cpu !== ev.cpu) {
      c = this.perCpu.get(ev.cpu);
      if (c === undefined) {
        c = { cpu: ev.cpu, events: 0, allocs: 0, frees: 0 };
        this.perCpu.set(ev.cpu, c);
      }
      this.lastCpu = c;
    }
    c.events++;
    switch (ev.op) {
      case OP_ZONE:
        this.zones.set(ev.zone, { id: ev.zone, name: ev.name, size: ev.size, allocs: 0, frees: 0 });
        break;
      case OP_ALLOC: {
        const z = this.zones.get(ev.zone);
        if (z !== undefined) z.allocs++;
        this.allocated(c, ev.obj, z?.size ?? 0);
        break;
      }
      case OP_MALLOC:
        this.allocated(c, ev.obj, ev.size);
        break;
      case OP_PALLOC:
        this.allocated(c, ev.obj, PAGE_SIZE * 2 ** ev.size);
        break;
      case OP_FREE: {
        const z = this.zones.get(ev.zone);
        if (z !== undefined) z.frees++;
        this.freed(c, ev.obj);
        break;
      }
      case OP_MFREE:
      case OP_PFREE:
        this.freed(c, ev.obj);
        break;
      case OP_ARENA:
        this.arenas.set(ev.zone, { id: ev.zone, name: ev.name, quantum: Number(ev.vmem?.quantum ?? 0n), allocs: 0, frees: 0 });
        break;
      case OP_VALLOC: {
        const a = this.arenas.get(ev.zone);
        if (a !== undefined) {
          a.allocs++;
          this.arenaOf.set(ev.obj, a);
        }
        this.allocated(c, ev.obj, ev.size);
        break;
      }
      case OP_MBUF: {
        const kind = ev.mbuf ?? 'mbuf';
        this.mbufs[kind]++;
        if (kind === 'chain') this.mbufs.chainMbufs += ev.size;
        this.allocated(c, ev.obj, -1);
        break;
      }
      case OP_MFREEM:
        this.freed(c, ev.obj);
        break;
      case OP_VFREE: {
        const a = this.arenaOf.get(ev.obj);
        if (a !== undefined) {
          a.frees++;
          this.arenaOf.delete(ev.obj);
        }
        this.freed(c, ev.obj);
        break;
      }
    }
  }

  /** `bytes` -1: not in the size histogram (an mbuf, whose size is its kind). */
  private allocated(c: TraceStatsCpu, obj: number, bytes: number): void {
    c.allocs++;
    this.live.set(obj, c.cpu);
    if (this.live.size > this.maxLive) this.maxLive = this.live.size;
    if (bytes >= 0) this.sizeBuckets[bytes <= 1 ? 0 : Math.min(63, Math.ceil(Math.log2(bytes)))]!++;
  }

  private freed(c: TraceStatsCpu, obj: number): void {
    c.frees++;
    const at = this.live.find(obj);
    if (at < 0) return;
    if (this.live.cpuAt(at) !== c.cpu) this.crossCpuFrees++;
    this.live.removeAt(at);
  }

  /** Objects live now. */
  get liveObjects(): number {
    return this.live.size;
  }

  summary(): TraceStatsSummary {
    const byOp: Record<string, number> = {};
    const ops = this.version >= 2 ? opNames.length : FIRST_V2_OP;
    for (let op = 1; op < ops; op++) byOp[opNames[op]!] = this.byOp[op]!;
    const sizes: TraceStatsSizeBucket[] = [];
    this.sizeBuckets.forEach((count, k) => {
      if (count > 0) sizes.push({ above: k === 0 ? 0 : 2 ** (k - 1), upTo: 2 ** k, count });
    });
    return {
      events: this.events,
      byOp,
      cpus: [...this.perCpu.values()].sort((a, b) => a.cpu - b.cpu).map((c) => ({ ...c })),
      zones: [...this.zones.values()].map((z) => ({ ...z })),
      ...(this.version >= 2 ? { arenas: [...this.arenas.values()].map((a) => ({ ...a })), mbufs: { ...this.mbufs } } : {}),
      sizes,
      live: this.live.size,
      maxLive: this.maxLive,
      crossCpuFrees: this.crossCpuFrees,
    };
  }
}

/**
 * Live object ids and the CPU that allocated each: open addressing with linear probing on typed
 * arrays (an empty slot's key is NaN), deleted by backward shift, so that a trace's churn of
 * allocations and frees leaves no garbage; it grows with the objects live at once.
 */
class LiveCpus {
  size = 0;
  private mask = 1023;
  private keys = new Float64Array(1024).fill(Number.NaN);
  private cpus = new Int32Array(1024);

  /** The slot of object `obj`, or -1. */
  find(obj: number): number {
    const keys = this.keys;
    for (let i = idHash(obj) & this.mask; ; i = (i + 1) & this.mask) {
      const k = keys[i]!;
      if (k === obj) return i;
      if (Number.isNaN(k)) return -1;
    }
  }

  cpuAt(slot: number): number {
    return this.cpus[slot]!;
  }

  /** Object `obj` is live, allocated on `cpu` (replacing what was said of it). */
  set(obj: number, cpu: number): void {
    const at = this.find(obj);
    if (at >= 0) {
      this.cpus[at] = cpu;
      return;
    }
    if (2 * (this.size + 1) > this.mask + 1) this.resize(2 * (this.mask + 1));
    this.put(obj, cpu);
    this.size++;
  }

  private put(obj: number, cpu: number): void {
    let i = idHash(obj) & this.mask;
    while (!Number.isNaN(this.keys[i]!)) i = (i + 1) & this.mask;
    this.keys[i] = obj;
    this.cpus[i] = cpu;
  }

  /** Removes slot `i`: each later entry of its probe run moves back into the gap unless its home lies after the gap. */
  removeAt(i: number): void {
    const keys = this.keys;
    const mask = this.mask;
    let gap = i;
    for (let j = (gap + 1) & mask; !Number.isNaN(keys[j]!); j = (j + 1) & mask) {
      const home = idHash(keys[j]!) & mask;
      if (gap <= j ? home > gap && home <= j : home > gap || home <= j) continue;
      keys[gap] = keys[j]!;
      this.cpus[gap] = this.cpus[j]!;
      gap = j;
    }
    keys[gap] = Number.NaN;
    this.size--;
  }

  private resize(capacity: number): void {
    const { keys, cpus } = this;
    this.mask = capacity - 1;
    this.keys = new Float64Array(capacity).fill(Number.NaN);
    this.cpus = new Int32Array(capacity);
    for (let i = 0; i < keys.length; i++) if (!Number.isNaN(keys[i]!)) this.put(keys[i]!, cpus[i]!);
  }
}

/** A 32-bit hash of an object id (an integer up to 2^53): its two halves mixed (murmur3's finalizer). */
function idHash(obj: number): number {
  let h = (obj >>> 0) ^ Math.imul((obj / 4294967296) | 0, 0x9e3779b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
