// The coherence directory (a snoop filter): for every line held by some CPU's private caches,
// the set of those CPUs. A miss asks it who else has the line instead of probing every CPU.
//
// Open addressing with linear probing and backward-shift deletion on flat arrays; CPU sets
// are two 32-bit masks (CPUs 0–31 and 32–63). An entry exists exactly while its mask is
// non-empty, so capacity is bounded by the private caches' total size.
//
// It is also the home agent's occupancy record: per line, the interval [busyFrom, busyUntil)
// of simulated time during which the line is in flight (a transfer to a new holder, an
// invalidation round), so that a request arriving in that interval queues behind it (see
// memsys.ts). The record lives and dies with the line's entry: a line no cache holds is idle.

export class Directory {
  private readonly keys: Float64Array; // line number, or -1 when empty
  private readonly maskLo: Uint32Array;
  private readonly maskHi: Uint32Array;
  private readonly busyFrom: Float64Array;
  private readonly busyTo: Float64Array;
  private readonly bits: number;
  private readonly capMask: number;
  private count = 0;

  /** `lines`: the most lines that can be held privately at once (sum of private L2 lines). */
  constructor(lines: number) {
    let bits = 4;
    while (1 << bits < 2 * lines) bits++;
    this.bits = bits;
    const cap = 1 << bits;
    this.capMask = cap - 1;
    this.keys = new Float64Array(cap).fill(-1);
    this.maskLo = new Uint32Array(cap);
    this.maskHi = new Uint32Array(cap);
    this.busyFrom = new Float64Array(cap);
    this.busyTo = new Float64Array(cap);
  }

  get size(): number {
    return this.count;
  }

  private home(line: number): number {
    const lo = line >>> 0;
    const hi = (line - lo) / 4294967296;
    return (Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> (32 - this.bits)) & this.capMask;
  }

  private slotOf(line: number): number {
    const keys = this.keys;
    for (let i = this.home(line); ; i = (i + 1) & this.capMask) {
      const k = keys[i]!;
      if (k === line) return i;
      if (k === -1) return -1;
    }
  }

  /** Low mask word (CPUs 0–31) of the line's holders; 0 when none. */
  holdersLo(line: number): number {
    const s = this.slotOf(line);
    return s < 0 ? 0 : this.maskLo[s]!;
  }

  /** High mask word (CPUs 32–63). */
  holdersHi(line: number): number {
    const s = this.slotOf(line);
    return s < 0 ? 0 : this.maskHi[s]!;
  }

  /** Whether any CPU other than `cpu` holds the line. */
  heldByOthers(line: number, cpu: number): boolean {
    const s = this.slotOf(line);
    if (s < 0) return false;
    const lo = this.maskLo[s]!;
    const hi = this.maskHi[s]!;
    return cpu < 32 ? (lo & ~(1 << cpu)) !== 0 || hi !== 0 : lo !== 0 || (hi & ~(1 << (cpu - 32))) !== 0;
  }

  /**
   * When a request for the line reaching it at `time` may be served: the end of the line's
   * current transfer if `time` falls inside it, else `time`. A transfer that started after
   * `time` (made by a CPU running ahead, see machine.ts) does not delay it: it came first.
   */
  freeAt(line: number, time: number): number {
    const s = this.slotOf(line);
    if (s < 0) return time;
    const to = this.busyTo[s]!;
    return time < to && time >= this.busyFrom[s]! ? to : time;
  }

  /** Records that the line is in flight from `from` until `to` (the line must be held). */
  occupy(line: number, from: number, to: number): void {
    const s = this.slotOf(line);
    if (s < 0) return;
    if (to > this.busyTo[s]!) {
      this.busyFrom[s] = from;
      this.busyTo[s] = to;
    }
  }

  add(line: number, cpu: number): void {
    const keys = this.keys;
    let i = this.home(line);
    for (; ; i = (i + 1) & this.capMask) {
      const k = keys[i]!;
      if (k === line) break;
      if (k === -1) {
        keys[i] = line;
        this.maskLo[i] = 0;
        this.maskHi[i] = 0;
        this.busyFrom[i] = 0;
        this.busyTo[i] = 0;
        this.count++;
        break;
      }
    }
    if (cpu < 32) this.maskLo[i] = (this.maskLo[i]! | (1 << cpu)) >>> 0;
    else this.maskHi[i] = (this.maskHi[i]! | (1 << (cpu - 32))) >>> 0;
  }

  remove(line: number, cpu: number): void {
    const s = this.slotOf(line);
    if (s < 0) return;
    if (cpu < 32) this.maskLo[s] = (this.maskLo[s]! & ~(1 << cpu)) >>> 0;
    else this.maskHi[s] = (this.maskHi[s]! & ~(1 << (cpu - 32))) >>> 0;
    if (this.maskLo[s] === 0 && this.maskHi[s] === 0) this.deleteSlot(s);
  }

  /** Leaves `cpu` as the only holder (after it invalidated everyone else). */
  setOnly(line: number, cpu: number): void {
    const s = this.slotOf(line);
    if (s < 0) {
      this.add(line, cpu);
      return;
    }
    this.maskLo[s] = cpu < 32 ? (1 << cpu) >>> 0 : 0;
    this.maskHi[s] = cpu < 32 ? 0 : (1 << (cpu - 32)) >>> 0;
  }

  private deleteSlot(s: number): void {
    const keys = this.keys;
    const mask = this.capMask;
    let hole = s;
    for (let i = (s + 1) & mask; keys[i] !== -1; i = (i + 1) & mask) {
      const h = this.home(keys[i]!);
      // Move entry i into the hole unless its home lies cyclically in (hole, i].
      const between = hole <= i ? h > hole && h <= i : h > hole || h <= i;
      if (!between) {
        keys[hole] = keys[i]!;
        this.maskLo[hole] = this.maskLo[i]!;
        this.maskHi[hole] = this.maskHi[i]!;
        this.busyFrom[hole] = this.busyFrom[i]!;
        this.busyTo[hole] = this.busyTo[i]!;
        hole = i;
      }
    }
    keys[hole] = -1;
    this.count--;
  }
}
