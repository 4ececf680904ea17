// A seeded generator of vmem scripts (the format of tools/vmem-ref/README.md), for comparing
// kmemu's vmem model with FreeBSD's subr_vmem.c (tools/vmem-ref/). Deterministic: the same seed
// and options give the same script, on any machine (a xorshift32, never Math.random).
//
// Every script it writes is valid for upstream: no KASSERT can fire. Sizes, aligns, phases and
// nocross boundaries are multiples of the arena's quantum; an align is 0 or a power of two; a
// phase is below its align; a nocross is 0 or a power of two ≥ the size that the phase does not
// make the allocation cross; MINADDR ≤ MAXADDR. A child arena's parent has a quantum ≥ the
// child's, so imported spans stay quantum-aligned. An allocation is freed at most once, with
// its own size, by @L (so an ENOMEM is a `skip`); arenas are destroyed, children first, only
// after everything was freed (vmem_destroy asserts that nothing is busy).
//
// One assertion can still fire, in FreeBSD's code as in kmemu's: when a child imports a span
// and the allocation then does not fit in it (an align or nocross the import's padding does not
// cover), the span stays wholly free in the child and nothing gives it back (upstream releases
// a span only from vmem_xfree), so destroying the parent finds it busy and panics with
// "Assertion vm->vm_nbusytag == 0 failed". The equivalence test expects the same panic of both.

export type VmemStrategy = 'bestfit' | 'firstfit';

export interface VmemScriptOptions {
  /** Allocations, frees and queries after the setup (default 60). */
  ops?: number;
  /** Number of arenas, 1–3 (default: 1–3 from the seed). */
  arenas?: number;
  /** Whether a child arena may import from a parent (default true). */
  imports?: boolean;
  /** Strategies to draw from (default both). */
  strategies?: readonly VmemStrategy[];
  /** Whether the script may end by freeing everything and destroying the arenas (default true). */
  destroy?: boolean;
}

/** xorshift32; seeds are folded into a nonzero 32-bit state. */
export class XorShift32 {
  private s: number;
  constructor(seed: number) {
    let s = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
    if (s === 0) s = 0x6d2b79f5;
    this.s = s;
    for (let i = 0; i < 4; i++) this.next();
  }
  next(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }
  /** An integer in [0, n). */
  int(n: number): number { return n <= 1 ? 0 : this.next() % n; }
  /** True with probability p. */
  chance(p: number): boolean { return this.next() / 0x1_0000_0000 < p; }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from nothing');
    return xs[this.int(xs.length)]!;
  }
}

const hex = (v: bigint) => `0x${v.toString(16)}`;
const pow2AtLeast = (v: bigint) => { let p = 1n; while (p < v) p <<= 1n; return p; };

interface Arena {
  name: string;
  quantum: bigint;
  parent?: Arena;
  /** The address range allocations of this arena can fall in (for MINADDR/MAXADDR). */
  lo: bigint;
  hi: bigint;
  /** Where the next `add` goes. */
  nextAdd: bigint;
  adds: number;
}

interface Live { line: number; arena: Arena; size: bigint; x: boolean }

/** A vmem script of `ops` operations after the setup, from `seed`. */
export function generateVmemScript(seed: number, opts: VmemScriptOptions = {}): string {
  const rng = new XorShift32(seed);
  const nops = opts.ops ?? 60;
  const narenas = Math.max(1, Math.min(3, opts.arenas ?? 1 + rng.int(3)));
  const strategies = opts.strategies ?? ['bestfit', 'firstfit'];
  const lines: string[] = [`# generateVmemScript(${seed}): ${narenas} arena(s), ${nops} ops`];
  const emit = (l: string) => { lines.push(l); return lines.length; };

  // --- Arenas: the first has its own span; later ones may import from an earlier one (whose
  // quantum is then ≥ theirs) or stand alone, with a span of their own or none.
  const arenas: Arena[] = [];
  const regionBases = [0x1000n, 0xfffffe0000000000n, 0x40000000n, 0x7f0000000000n];
  for (let i = 0; i < narenas; i++) {
    const name = ['a', 'b', 'c'][i]!;
    const parents = opts.imports === false ? [] : arenas;
    const parent = i > 0 && parents.length > 0 && rng.chance(0.6) ? rng.pick(parents) : undefined;
    const quantums = [1n, 16n, 4096n].filter((q) => parent === undefined || q <= parent.quantum);
    const quantum = rng.pick(quantums);
    const region = regionBases[(i + (seed >>> 0)) % regionBases.length]!;
    const base = region + (rng.chance(0.5) ? 0n : BigInt(rng.int(16)) * 0x10000n);
    const ownSpan = parent === undefined || rng.chance(0.3);
    const size = ownSpan ? quantum * BigInt(rng.pick([64, 256, 1024, 4096]) + rng.int(64)) : 0n;
    const a: Arena = {
      name, quantum, lo: base, hi: base + size - 1n, nextAdd: base + size + quantum * BigInt(1 + rng.int(64)), adds: 0,
      ...(parent === undefined ? {} : { parent }),
    };
    if (size === 0n) { a.lo = base; a.hi = base; }
    emit(`create ${name} ${hex(base)} ${hex(size)} ${quantum} 0`);
    if (parent !== undefined) {
      const iq = quantum * rng.pick([1n, 1n, 4n, 16n, 64n]);
      emit(`import ${name} ${parent.name}${iq === quantum && rng.chance(0.5) ? '' : ` ${hex(iq)}`}`);
      a.lo = parent.lo < a.lo || size === 0n ? parent.lo : a.lo;
      a.hi = parent.hi > a.hi || size === 0n ? parent.hi : a.hi;
    }
    arenas.push(a);
  }

  const addTo = (a: Arena) => {
    const size = a.quantum * BigInt(rng.pick([16, 64, 256, 1024]) + rng.int(32));
    emit(`add ${a.name} ${hex(a.nextAdd)} ${hex(size)}`);
    if (a.lo === a.hi) a.lo = a.nextAdd;
    a.hi = a.nextAdd + size - 1n;
    a.nextAdd += size + a.quantum * BigInt(rng.int(64));
    a.adds++;
  };
  for (const a of arenas) if (a.parent === undefined && a.lo === a.hi) addTo(a); // every root has space

  // --- Operations.
  const live: Live[] = [];
  const sizeOf = (a: Arena) => {
    const r = rng.int(100);
    const units = r < 60 ? 1 + rng.int(8) : r < 90 ? 1 + rng.int(64) : r < 98 ? 64 + rng.int(512) : 1024 + rng.int(4096);
    return a.quantum * BigInt(units);
  };
  const freeOne = (i: number) => {
    const l = live[i]!;
    live.splice(i, 1);
    emit(`${l.x ? 'xfree' : 'free'} ${l.arena.name} @${l.line} ${hex(l.size)}`);
  };
  for (let op = 0; op < nops; op++) {
    const r = rng.int(100);
    const a = rng.pick(arenas);
    if (r < 4 && a.adds < 3) {
      addTo(a);
    } else if (r < 12) {
      emit(rng.chance(0.5) ? `size ${a.name}` : `segs ${a.name}`);
    } else if (r < 40 && live.length > 0) {
      // Mostly the older allocations: a long-lived population with churn at the young end too.
      const i = rng.chance(0.5) ? rng.int(Math.min(live.length, 4)) : rng.int(live.length);
      freeOne(i);
    } else if (r < 65) {
      const size = sizeOf(a);
      const line = emit(`alloc ${a.name} ${hex(size)} ${rng.pick(strategies)}`);
      live.push({ line, arena: a, size, x: false });
    } else {
      const size = sizeOf(a);
      let align = 0n;
      let phase = 0n;
      let nocross = 0n;
      if (rng.chance(0.5)) {
        align = a.quantum << BigInt(rng.int(8));
        if (rng.chance(0.3)) phase = a.quantum * BigInt(rng.int(Number(align / a.quantum)));
      }
      if (rng.chance(0.3)) {
        nocross = pow2AtLeast(size) << BigInt(rng.int(3));
        if (nocross < a.quantum) nocross = a.quantum;
        if (((phase ^ (phase + size - 1n)) & -nocross) !== 0n) phase = 0n;
      }
      let minaddr = 0n;
      let maxaddr = 0n;
      if (rng.chance(0.25)) {
        const span = a.hi - a.lo + 1n;
        const q = (v: bigint) => (v / a.quantum) * a.quantum;
        if (rng.chance(0.6)) minaddr = q(a.lo + (span * BigInt(rng.int(100))) / 100n);
        if (rng.chance(0.6)) maxaddr = a.lo + (span * BigInt(1 + rng.int(100))) / 100n - 1n;
        if (maxaddr !== 0n && maxaddr < minaddr) [minaddr, maxaddr] = [maxaddr - (maxaddr % a.quantum), minaddr + a.quantum - 1n];
        if (maxaddr !== 0n && maxaddr < minaddr) maxaddr = 0n;
      }
      const line = emit(`xalloc ${a.name} ${hex(size)} ${hex(align)} ${hex(phase)} ${hex(nocross)} ${hex(minaddr)} ${hex(maxaddr)} ${rng.pick(strategies)}`);
      live.push({ line, arena: a, size, x: true });
    }
    if (op % 10 === 9) emit(`segs ${rng.pick(arenas).name}`);
  }

  // --- The end: everything freed and the arenas destroyed, children first; or left as it is.
  for (const a of arenas) emit(`size ${a.name}`);
  if (opts.destroy !== false && rng.chance(0.7)) {
    while (live.length > 0) freeOne(rng.int(live.length));
    for (const a of arenas) emit(`segs ${a.name}`);
    for (const a of [...arenas].reverse()) emit(`destroy ${a.name}`);
  } else {
    for (const a of arenas) emit(`segs ${a.name}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The number of lines of a script that print something (operations; not blanks or comments). */
export function countOperations(script: string): number {
  return script.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).length;
}

/** The number of output lines a script's operations print, `segs` counting its seg lines too. */
export function expectedOutputLines(script: string, output: string): number {
  const segLines = output.split('\n').filter((l) => l.startsWith('seg ')).length;
  return countOperations(script) + segLines;
}
