// Counters, named by path and reason, attributed to path labels.
//
// Each CPU keeps one flat table: for every (context, path label) — the context a driver set
// (a zone being replayed, say) and the innermost label the code running on it has pushed — a
// row of counter kinds. A cache or TLB event is counted on the CPU that
// caused it (a shared-LLC miss on the CPU whose access missed), so per-cache totals are sums
// over CPUs. Derived figures (miss rates, cycles per op) are computed from these, never stored.

export const counterNames = [
  'cycles', // every cycle the CPU's clock advanced under this label
  'ops', // operations that completed on this path (cpu.completeOp), counted by the code on it
  'idleCycles', // of which asleep or with nothing to run
  'lock.spinCycles', // of which spinning on a held lock word
  'lock.spins', // pause iterations of those spin loops
  'mem.loads',
  'mem.stores',
  'mem.atomics',
  'mem.cycles', // cycles the clock advanced in data accesses and drains, translation included
  'cpu.work', // non-memory instructions the code charged (cpu.work)
  'l1d.readHit',
  'l1d.readMiss',
  'l1d.writeHit',
  'l1d.writeMiss',
  'l1d.writeback', // dirty line evicted from L1D into L2
  'l2.readHit',
  'l2.readMiss',
  'l2.writeHit',
  'l2.writeMiss',
  'l2.writeback', // dirty line leaving the private L2 for the LLC
  'llc.hit',
  'llc.miss',
  'llc.writeback', // dirty LLC victim written to DRAM
  'llc.backInvalidation', // private copies removed because an inclusive LLC evicted the line
  'dram.read',
  'dram.write',
  'coherence.c2cTransfer', // a dirty line supplied by another CPU's cache
  'coherence.c2cClean', // a clean line supplied by another CPU's cache
  'coherence.upgrade', // a shared line made exclusive for a write
  'coherence.invalidationSent', // other CPUs' copies invalidated by this CPU's writes
  'coherence.invalidationReceived', // this CPU's copies invalidated by others
  'coherence.downgradeReceived', // this CPU's exclusive copies made shared by others' reads
  'prefetch.issued', // lines a hardware prefetcher brought into L1D or L2 (emu/prefetch.ts)
  'prefetch.issuedL2', // of which by the L2 prefetcher, into L2 only
  'prefetch.useful', // prefetched lines a demand access used, counted at the first use
  'prefetch.late', // of which had not arrived when used: the access waited for the fill
  'prefetch.lateCycles', // cycles those accesses waited
  'prefetch.unused', // prefetched lines replaced before any demand use
  'prefetch.skippedOwned', // prefetches not issued: another CPU held the line M, O or E
  'bulk.bytes', // bytes written by fast-string stores (rep stosb, rep movsb)
  'bulk.fullLines', // lines they wrote whole and took without fetching the data
  'coherence.queueCycles', // cycles this CPU's requests waited for a line busy with another transfer
  'tlb.l1Hit',
  'tlb.l1Miss',
  'tlb.l2Hit',
  'tlb.l2Miss',
  'tlb.walkCycles',
  'tlb.walkLoads',
  'tlb.adUpdate', // page-table entries whose A or D bit the walker set
  'tlb.invlpg',
  'tlb.flush',
  'tlb.shootdown', // shootdowns this CPU initiated
  'ipi.sent',
  'ipi.received',
  'ipi.handlerCycles',
  'ipi.waitCycles', // cycles the sender waited for acknowledgements
  'fault.page',
] as const;

export type CounterName = (typeof counterNames)[number];
export const NCOUNTERS = counterNames.length;

/** Index of each counter kind in a row. */
export const K = Object.fromEntries(counterNames.map((n, i) => [n, i])) as { readonly [N in CounterName]: number };

/** The label every CPU starts under. */
export const ROOT_LABEL = 'other';
/** The context every CPU starts in. */
export const ROOT_CONTEXT = '';
/** Path labels a machine can have (rows per context). */
export const LABEL_CAP = 256;

/** Names ↔ ids (of path labels, or of contexts), shared by all CPUs of a machine. */
export class LabelRegistry {
  private readonly ids = new Map<string, number>();
  readonly names: string[] = [];

  constructor(root = ROOT_LABEL, private readonly cap = LABEL_CAP) {
    this.id(root);
  }

  id(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      if (id >= this.cap) throw new RangeError(`more than ${this.cap} names registered: ${name}`);
      this.names.push(name);
      this.ids.set(name, id);
    }
    return id;
  }

  get size(): number {
    return this.names.length;
  }
}

/** A frozen copy of every CPU's counter table and clock. */
export class CounterSnapshot {
  constructor(
    readonly labels: readonly string[],
    /** tables[cpu][((context * LABEL_CAP) + label) * NCOUNTERS + kind] */
    readonly tables: readonly Float64Array[],
    readonly clocks: readonly number[],
    readonly contexts: readonly string[] = [ROOT_CONTEXT],
  ) {}

  get cpus(): number {
    return this.tables.length;
  }

  /**
   * One counter on one CPU, summed over labels unless a label is given and over contexts
   * unless a context is given.
   */
  get(cpu: number, name: CounterName, label?: string, context?: string): number {
    const table = this.tables[cpu];
    if (table === undefined) return 0;
    const k = K[name];
    const l0 = label === undefined ? 0 : this.labels.indexOf(label);
    const l1 = label === undefined ? this.labels.length : l0 + 1;
    const c0 = context === undefined ? 0 : this.contexts.indexOf(context);
    const c1 = context === undefined ? this.contexts.length : c0 + 1;
    if (l0 < 0 || c0 < 0) return 0;
    let sum = 0;
    for (let c = c0; c < c1; c++) {
      for (let l = l0; l < l1; l++) sum += table[(c * LABEL_CAP + l) * NCOUNTERS + k] ?? 0;
    }
    return sum;
  }

  /** One counter summed over all CPUs (and over labels / contexts unless given). */
  total(name: CounterName, label?: string, context?: string): number {
    let sum = 0;
    for (let c = 0; c < this.cpus; c++) sum += this.get(c, name, label, context);
    return sum;
  }

  /** Every non-zero counter of a CPU (all CPUs when cpu is undefined), keyed "[context:]label/name". */
  nonZero(cpu?: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (let c = 0; c < this.cpus; c++) {
      if (cpu !== undefined && c !== cpu) continue;
      const table = this.tables[c]!;
      for (let x = 0; x < this.contexts.length; x++) {
        for (let l = 0; l < this.labels.length; l++) {
          for (let k = 0; k < NCOUNTERS; k++) {
            const v = table[(x * LABEL_CAP + l) * NCOUNTERS + k] ?? 0;
            if (v !== 0) {
              const key = `${x === 0 ? '' : `${this.contexts[x]}:`}${this.labels[l]}/${counterNames[k]}`;
              out[key] = (out[key] ?? 0) + v;
            }
          }
        }
      }
    }
    return out;
  }

  /** Counters accumulated since `earlier` (clocks too): the warm-up delta. */
  minus(earlier: CounterSnapshot): CounterSnapshot {
    const tables = this.tables.map((t, c) => {
      const out = new Float64Array(t.length);
      const before = earlier.tables[c];
      for (let i = 0; i < out.length; i++) out[i] = (t[i] ?? 0) - (before?.[i] ?? 0);
      return out;
    });
    return new CounterSnapshot(this.labels, tables, this.clocks.map((t, c) => t - (earlier.clocks[c] ?? 0)), this.contexts);
  }
}
