// Machine configuration: plain JSON-able objects with defaults, validated when loaded.
//
// Every latency is in CPU cycles and is load-to-use: the time from issuing an access to having
// its data, as a pointer-chasing rdtsc loop measures it. A fill from the LLC therefore costs
// `llc.hitLatency`, not l1d + l2 + llc. Sizes are bytes and may be written "48k", "1m", "4g".

import { z } from 'zod';
import { UserError } from './errors.js';
import { replacementPolicies } from './tags.js';
import { parseSize } from './size.js';

export { parseSize, formatSize } from './size.js';

const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;

const bytes = (what: string) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (!Number.isInteger(n) || n <= 0) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} as bytes or a size like "48k", got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  }).pipe(z.number().int().positive());

const cycles = (description: string) => z.number().int().min(0).describe(`${description} (cycles)`);

const cacheShape = {
  size: bytes('a cache size').describe('capacity in bytes'),
  ways: z.number().int().min(1).max(64).describe('associativity'),
  line: z.number().int().describe('line size in bytes'),
  hitLatency: cycles('load-to-use latency of a hit in this level'),
  replacement: z.enum(replacementPolicies).describe('replacement policy'),
};

function checkCache(c: { size: number; ways: number; line: number; replacement: string }, ctx: z.RefinementCtx): void {
  if (c.line !== 64) ctx.addIssue({ code: 'custom', path: ['line'], message: `expected 64 (the machine's line size), got ${c.line}` });
  const sets = c.size / (c.ways * c.line);
  if (Number.isInteger(c.size) && (!Number.isInteger(sets) || !isPow2(sets))) {
    ctx.addIssue({
      code: 'custom',
      path: ['ways'],
      message: `expected size / (ways × line) to be a power of two, got ${c.size} / (${c.ways} × ${c.line})`,
    });
  }
  if (c.replacement === 'plru' && !isPow2(c.ways)) {
    ctx.addIssue({ code: 'custom', path: ['ways'], message: `tree-PLRU needs a power-of-two number of ways, got ${c.ways}` });
  }
}

const cacheLevel = z.strictObject(cacheShape).superRefine(checkCache);
const llcLevel = z
  .strictObject({ ...cacheShape, inclusive: z.boolean().describe('an LLC eviction back-invalidates private copies') })
  .superRefine(checkCache);

const tlbShape = {
  entries: z.number().int().min(1).describe('number of entries'),
  ways: z.number().int().min(1).describe('associativity (entries for fully associative)'),
};

function checkTlb(t: { entries: number; ways: number }, ctx: z.RefinementCtx): void {
  const sets = t.entries / t.ways;
  if (!Number.isInteger(sets) || !isPow2(sets)) {
    ctx.addIssue({ code: 'custom', path: ['ways'], message: `expected entries / ways to be a power of two, got ${t.entries} / ${t.ways}` });
  }
}

const prefetchLevel = z.strictObject({
  enabled: z.boolean().describe('whether this level\'s hardware prefetcher runs'),
  nextLine: z.boolean().describe('follow sequential streams: a stride of one line up or down'),
  stride: z.boolean().describe('follow constant strides of more than one line inside a 4 KiB page'),
  trigger: z.number().int().min(1).max(16).describe('accesses at one stride, after a page\'s first, that confirm a stream'),
  degree: z.number().int().min(1).max(16).describe('most lines prefetched per training access'),
  distance: z.number().int().min(1).max(63).describe('strides ahead of the demand access the prefetches run'),
  tableSize: z.number().int().min(1).max(256).describe('pages the stride detector tracks at once (least recently trained replaced)'),
});
const prefetchOff = { enabled: false, nextLine: true, stride: true, trigger: 2, degree: 1, distance: 1, tableSize: 16 };

const tlbArray = z.strictObject(tlbShape).superRefine(checkTlb);
const tlbL2 = z
  .strictObject({ ...tlbShape, hitLatency: cycles('extra latency of an L1 DTLB miss that hits the L2 TLB') })
  .superRefine(checkTlb);

export const machineConfigSchema = z
  .strictObject({
    name: z.string().default('custom'),
    cpus: z.number().int().min(1).max(64).describe('number of CPUs'),
    clockGHz: z.number().positive().max(100).describe('clock rate: prints times, and turns the kernel\'s timeouts (hz ticks, as the pageout daemon\'s sleep) into cycles'),
    seed: z.number().int().min(0).describe('seed of every random choice the machine makes'),
    syncQuantum: cycles('how far a CPU may run ahead of the slowest runnable CPU between synchronization points (0: strict order at every kernel entry, every preset\'s default; more is a speed option that undercounts coherence traffic)'),
    memory: z.strictObject({
      size: bytes('a memory size').refine((n) => n >= 2 ** 21 && n <= 2 ** 40 && n % 4096 === 0, {
        message: 'expected a multiple of 4 KiB between 2 MiB and 1 TiB',
      }),
      dramLatency: cycles('load-to-use latency of a DRAM access'),
      ownershipLatency: cycles('latency of taking a line no cache holds in M without its data (a whole-line write of a fast string): the memory controller\'s grant, no DRAM read; default dramLatency').optional(),
    }),
    l1d: cacheLevel,
    l2: cacheLevel,
    llc: llcLevel,
    coherence: z.strictObject({
      protocol: z.enum(['mesi', 'moesi']).default('mesi').describe('coherence protocol of the private caches'),
      transferLatency: cycles('load-to-use latency of a line supplied by the private cache of another CPU in the same core complex, the line being free'),
      invalidateLatency: cycles('one invalidation round for a write: request to the directory, invalidations to the sharers in the same core complex, their acks, the grant'),
      farTransferLatency: cycles('transferLatency for a line supplied by a CPU in another core complex'),
      farInvalidateLatency: cycles('invalidateLatency when some sharer is in another core complex'),
      probeLatency: cycles('of transferLatency and invalidateLatency, the leg from the requester to the holder: the holder keeps using the line until the probe reaches it'),
      farProbeLatency: cycles('probeLatency to a CPU in another core complex'),
      coresPerComplex: z.number().int().min(1).max(64).describe('CPUs per core complex (CCX, cluster): CPUs a and b are near when floor(a / n) = floor(b / n)'),
    }),
    prefetch: z
      .strictObject({
        l1d: prefetchLevel.default(prefetchOff).describe('prefetcher filling L1D (and L2), trained by L1D misses and first hits on its lines'),
        l2: prefetchLevel.default(prefetchOff).describe('prefetcher filling L2, trained by L2 misses and first hits on its lines'),
      })
      .default({ l1d: prefetchOff, l2: prefetchOff }),
    tlb: z.strictObject({
      l1Small: tlbArray.describe('L1 DTLB for 4K pages'),
      l1Large: tlbArray.describe('L1 DTLB for 2M and 1G pages'),
      l2: tlbL2,
      walkLatency: cycles('fixed cost of starting a page walk, besides its loads'),
      invlpgLatency: cycles('latency of one invlpg'),
    }),
    cpu: z.strictObject({
      issueWidth: z.number().int().min(1).max(16).describe('instructions the core dispatches per cycle, accesses included'),
      loadPorts: z.number().int().min(1).max(16).describe('loads the core dispatches per cycle'),
      storePorts: z.number().int().min(1).max(16).describe('stores the core dispatches per cycle'),
      mlp: z.number().int().min(1).max(256).describe('L1D misses the core keeps outstanding at once (memory-level parallelism)'),
      robSize: z.number().int().min(1).max(4096).describe('instructions in flight over which independent accesses overlap (1: in order, blocking)'),
      lockedOpLatency: cycles('extra latency of a locked read-modify-write on a line already owned'),
      pauseLatency: cycles('latency of one pause instruction'),
      mispredictPenalty: cycles('cycles from a mispredicted branch resolving (its load\'s data back) to the first instruction after it dispatching: a spin loop\'s exit').default(0),
      machineClearPenalty: cycles('cycles a memory-ordering machine clear costs: loads run ahead on a line that another CPU then writes are squashed and the pipeline refills (a spin loop without pause, at its exit)').default(0),
      mfenceLatency: cycles('latency of mfence with an empty store buffer'),
      ipiLatency: cycles('time from sending an IPI to the target taking it'),
      storeBytesPerCycle: z.number().int().min(1).max(64).default(8).describe('bytes per cycle a fast-string store (rep stosb, rep movsb) writes into lines it owns'),
      fillBuffers: z.number().int().min(1).max(256).default(1).describe('L1D misses a fast-string operation keeps in flight at once (miss/fill buffers)'),
    }),
  })
  .superRefine((c, ctx) => {
    const h = c.coherence;
    for (const [probe, legs] of [['probeLatency', ['transferLatency', 'invalidateLatency']], ['farProbeLatency', ['farTransferLatency', 'farInvalidateLatency']]] as const) {
      for (const whole of legs) {
        if (h[probe] > h[whole]) ctx.addIssue({ code: 'custom', path: ['coherence', probe], message: `expected at most ${whole} (${h[whole]}), of which it is a part, got ${h[probe]}` });
      }
    }
    if (c.l2.size < c.l1d.size) ctx.addIssue({ code: 'custom', path: ['l2', 'size'], message: `expected at least the L1D size (${c.l1d.size}), got ${c.l2.size}` });
  });

export type MachineConfig = z.output<typeof machineConfigSchema>;
export type MachineConfigInput = z.input<typeof machineConfigSchema>;
export type CacheLevelConfig = MachineConfig['l1d'];

/** A partial config: any field may be left out and is then taken from the base. */
export type MachineOverrides = { [K in keyof MachineConfigInput]?: unknown };

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
  let msg = issue.message;
  if (issue.code === 'invalid_type') msg = `expected ${issue.expected}`;
  if (issue.code === 'too_small' || issue.code === 'too_big') msg = issue.message.replace(/^Too (small|big): /, '');
  if (issue.code === 'unrecognized_keys') return `unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}${issue.path.length ? ` in ${path}` : ''}`;
  return `field ${path}: ${msg}`;
}

function valueAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = obj;
  for (const k of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * Validates a complete config; `where` names its source in the error (a file or preset). Every
 * problem is reported, on one line: `WHERE: field a: ...; field b: ...`.
 */
export function validateMachineConfig(input: unknown, where = 'machine config'): MachineConfig {
  const result = machineConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const text = describeIssue(issue);
    if (issue.code === 'invalid_type' || issue.code === 'too_small' || issue.code === 'too_big' || issue.code === 'invalid_value') {
      const got = valueAt(input, issue.path);
      return `${text}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`;
    }
    return text;
  });
  throw new UserError(`${where}: ${problems.join('; ')}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Deep-merges overrides onto a base config; unknown fields are reported by validation. Only
 * own fields count, and each is defined as an own property, so that a "__proto__" or
 * "constructor" read from JSON stays a field (which validation refuses) and touches no prototype.
 */
export function mergeConfig(base: unknown, overrides: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(overrides)) return overrides === undefined ? base : overrides;
  const out: Record<string, unknown> = {};
  const define = (k: string, v: unknown) => Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  for (const k of Object.keys(base)) define(k, base[k]);
  for (const k of Object.keys(overrides)) define(k, Object.hasOwn(base, k) ? mergeConfig(base[k], overrides[k]) : overrides[k]);
  return out;
}
