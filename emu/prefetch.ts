// The hardware prefetchers' stream and stride detector, one per cache level (L1D, L2).
//
// What it models. Every current x86 core has, per level, a next-line (stream) prefetcher and a
// stride prefetcher that stay inside a 4 KiB page: Intel's L1 DCU (next line) and IP-stride
// prefetchers and the L2 streamer ("up to 20 lines ahead, within a 4K page"), AMD's L1 stream
// and stride prefetchers and L2 stream prefetcher (the optimization manuals cited in
// presets.ts). Ours has no instruction pointers, so strides are learned per physical page:
//
// - A table of `tableSize` pages per CPU, least recently trained replaced. Training accesses
//   are the level's demand misses and demand first-uses of lines its prefetches brought in
//   (memsys.ts calls train()); an L1D prefetch that misses L2 trains the L2 detector too.
// - Per page: the last line trained, a stride (lines) and how many times in a row it repeated.
//   Once it has repeated `trigger` times, the stream is confirmed: a stride of ±1 needs
//   `nextLine`, any other `stride`.
// - A confirmed stream keeps a head, the next line to prefetch, and on each training access
//   issues up to `degree` lines from the head while the head is at most `distance` strides
//   ahead of the access, never past the page.
//
// train() returns how many lines it chose and leaves them in `out` (no allocation); memsys.ts
// fills them (a prefetch is a read through the hierarchy: see MemorySystem.prefetchLine).

/** The fields of one level's `prefetch` section (config.ts describes each). */
export interface PrefetchLevelConfig {
  readonly enabled: boolean;
  readonly nextLine: boolean;
  readonly stride: boolean;
  readonly trigger: number;
  readonly degree: number;
  readonly distance: number;
  readonly tableSize: number;
}

const LINES_PER_PAGE = 64;

export class StrideDetector {
  /** The lines the last train() chose, in issue order; its return value says how many. */
  readonly out: Float64Array;
  private readonly size: number;
  private readonly page: Float64Array;
  private readonly last: Float64Array;
  private readonly stride: Float64Array;
  private readonly repeats: Uint8Array;
  private readonly head: Float64Array;
  private readonly stamp: Float64Array;
  private clock = 0;
  private readonly nextLine: boolean;
  private readonly strided: boolean;
  private readonly trigger: number;
  private readonly degree: number;
  private readonly distance: number;

  constructor(cfg: PrefetchLevelConfig, ncpus: number) {
    this.size = cfg.tableSize;
    const n = ncpus * cfg.tableSize;
    this.page = new Float64Array(n).fill(-1);
    this.last = new Float64Array(n);
    this.stride = new Float64Array(n);
    this.repeats = new Uint8Array(n);
    this.head = new Float64Array(n);
    this.stamp = new Float64Array(n);
    this.out = new Float64Array(cfg.degree);
    this.nextLine = cfg.nextLine;
    this.strided = cfg.stride;
    this.trigger = cfg.trigger;
    this.degree = cfg.degree;
    this.distance = cfg.distance;
  }

  /** Trains CPU `cpu`'s table with an access to physical line `line`; returns lines chosen. */
  train(cpu: number, line: number): number {
    const pg = Math.floor(line / LINES_PER_PAGE);
    const base = cpu * this.size;
    const end = base + this.size;
    let e = -1;
    let oldest = base;
    for (let i = base; i < end; i++) {
      if (this.page[i] === pg) {
        e = i;
        break;
      }
      if (this.stamp[i]! < this.stamp[oldest]!) oldest = i;
    }
    this.clock++;
    if (e < 0) {
      e = oldest;
      this.page[e] = pg;
      this.last[e] = line;
      this.stride[e] = 0;
      this.repeats[e] = 0;
      this.head[e] = line;
      this.stamp[e] = this.clock;
      return 0;
    }
    this.stamp[e] = this.clock;
    const d = line - this.last[e]!;
    if (d === 0) return 0;
    this.last[e] = line;
    if (d === this.stride[e]) {
      if (this.repeats[e]! < 255) this.repeats[e]!++;
    } else {
      this.stride[e] = d;
      this.repeats[e] = 1;
      this.head[e] = line + d;
    }
    if (this.repeats[e]! < this.trigger) return 0;
    if (d === 1 || d === -1 ? !this.nextLine : !this.strided) return 0;
    let h = this.head[e]!;
    if ((h - line) * d <= 0) h = line + d;
    const limit = line + d * this.distance;
    let n = 0;
    while (n < this.degree && (d > 0 ? h <= limit : h >= limit) && Math.floor(h / LINES_PER_PAGE) === pg) {
      this.out[n++] = h;
      h += d;
    }
    this.head[e] = h;
    return n;
  }
}
