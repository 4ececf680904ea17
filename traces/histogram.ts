// A latency histogram in cycles with bounded memory: exact counts below 4096 cycles, and above
// that buckets 1/64 of an octave wide (under 1.1% relative error). Percentiles are the bucket's
// lower bound, exact below 4096.

const EXACT = 4096;
const SUB = 64; // buckets per octave above EXACT

export class Histogram {
  count = 0;
  total = 0;
  max = 0;
  private readonly exact = new Uint32Array(EXACT);
  private readonly log = new Uint32Array(SUB * 48);

  add(cycles: number): void {
    this.count++;
    this.total += cycles;
    if (cycles > this.max) this.max = cycles;
    if (cycles < EXACT) this.exact[cycles | 0]!++;
    else this.log[this.logIndex(cycles)]!++;
  }

  private logIndex(v: number): number {
    const octave = Math.floor(Math.log2(v / EXACT));
    const base = EXACT * 2 ** octave;
    return Math.min(this.log.length - 1, octave * SUB + Math.floor(((v - base) / base) * SUB));
  }

  private logValue(i: number): number {
    const octave = Math.floor(i / SUB);
    const base = EXACT * 2 ** octave;
    return Math.round(base + ((i % SUB) / SUB) * base);
  }

  /** The smallest latency at or below which fraction q of the samples lie. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < EXACT; i++) {
      seen += this.exact[i]!;
      if (seen >= rank) return i;
    }
    for (let i = 0; i < this.log.length; i++) {
      seen += this.log[i]!;
      if (seen >= rank) return this.logValue(i);
    }
    return this.max;
  }

  get mean(): number {
    return this.count === 0 ? 0 : this.total / this.count;
  }

  merge(other: Histogram): void {
    this.count += other.count;
    this.total += other.total;
    this.max = Math.max(this.max, other.max);
    for (let i = 0; i < EXACT; i++) this.exact[i]! += other.exact[i]!;
    for (let i = 0; i < this.log.length; i++) this.log[i]! += other.log[i]!;
  }
}
