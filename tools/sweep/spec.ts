// A sweep spec: a base run and axes over it, read from JSON or YAML and checked with zod, and
// its points: each the base with one value of every axis, resolved to the effective
// configuration a replay runs (the machine config, the allocator options, the trace and its
// sha256) and named by a hash of that configuration.
//
// Axes (any key of `base`, and dotted forms):
//   cpus, allocator, pcpu, aligned, bucketSize, autoTune, cacheLock, invariants, packetZone,
//   touch, warmup, machine       the base keys themselves (pcpu: false is compare's locked run);
//   machine.FIELD.SUBFIELD       a field of the machine config (machine.l1d.size, machine.tlb.l2.entries);
//   sysctl.NAME, tunable.NAME    a writable sysctl after boot, a boot tunable;
//   gen.OPTION, seed             a generator option (gen.events, gen.size, ...); seed is gen.seed.
// With a generator, cpus sets the generated trace's CPUs too unless gen.cpus is given, and
// generator.eventsPerCpu (instead of events) makes the trace's events that many per CPU, so that
// each CPU does the same work at every CPU count (weak scaling, as Bonwick & Adams's Figure 3.8).
// Points come in product order (the first axis outermost, the last fastest) or, with
// "combine": "zip", the i-th value of every axis together.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { load as yamlLoad } from 'js-yaml';
import { z } from 'zod';
import { UserError, loadMachineConfig, type MachineConfig } from '../../emu/index.js';
import { sysctlCheck, tunableCheck } from '../../kernel/index.js';
import { KMEMU_VERSION, resolveGenOptions, workloadAliases, workloads, type GenOptions } from '../../traces/index.js';

export const SWEEP_SPEC_SCHEMA = 'kmemu.sweep-spec/1';

const int = (min: number, max: number, what: string) =>
  z.number({ error: `expected ${what}, an integer from ${min} to ${max}` }).int({ error: `expected ${what}, an integer from ${min} to ${max}` }).min(min, { error: `expected ${what}, an integer from ${min} to ${max}` }).max(max, { error: `expected ${what}, an integer from ${min} to ${max}` });
const bool = (what: string) => z.boolean({ error: `expected ${what}: true or false` });
const scalar = z.union([z.number(), z.string(), z.boolean()], { error: 'expected a number, a string or true/false' });

const generatorSchema = z.strictObject({
  workload: z.string({ error: 'expected a workload name (kmemu trace gen --list)' }),
  cpus: int(1, 64, 'the CPUs of the generated trace').optional(),
  events: int(1, 1e9, 'an event count').optional(),
  eventsPerCpu: int(1, 1e9, 'events per CPU').optional(),
  seed: z.union([z.number(), z.string()], { error: 'expected a seed (a number or a string)' }).optional(),
  options: z.record(z.string(), z.union([z.number(), z.string()]), { error: 'expected an object of generator options' }).optional(),
});

/** The base run. Exactly one of trace and generator. */
const baseShape = {
  trace: z.string({ error: 'expected a trace file (relative to the spec)' }).optional(),
  generator: generatorSchema.optional(),
  machine: z.string({ error: 'expected a machine preset or a JSON machine file' }).default('amd64-host'),
  overrides: z.record(z.string(), scalar, { error: 'expected an object of machine fields (l1d.size: "48k")' }).default({}),
  cpus: int(1, 64, 'a number of CPUs').optional(),
  allocator: z.enum(['vmzone', 'uma'], { error: 'expected "vmzone" or "uma"' }).default('vmzone'),
  pcpu: bool('per-CPU caching').default(true),
  aligned: bool('the aligned per-CPU layout').default(false),
  bucketSize: int(1, 256, 'UMA items per bucket').optional(),
  autoTune: bool('UMA\'s 2013 bucket sizing').optional(),
  cacheLock: z.enum(['critical', 'mutex'], { error: 'expected "critical" or "mutex"' }).optional(),
  invariants: bool('an INVARIANTS kernel').optional(),
  packetZone: bool('the mbuf packet zone').default(true),
  sysctl: z.record(z.string(), z.number().int(), { error: 'expected an object of sysctl names and integers' }).default({}),
  tunables: z.record(z.string(), z.union([z.string(), z.number()]), { error: 'expected an object of boot tunables' }).default({}),
  touch: int(0, 64, 'cache lines touched').default(1),
  warmup: int(0, 1e9, 'warm-up events per CPU').default(0),
};
const baseSchema = z.strictObject(baseShape);
export type SweepBase = z.infer<typeof baseSchema>;

/** Axis keys that are base keys (validated by the base field's own schema). */
const BASE_AXES = ['cpus', 'allocator', 'pcpu', 'aligned', 'bucketSize', 'autoTune', 'cacheLock', 'invariants', 'packetZone', 'touch', 'warmup', 'machine'] as const;
type BaseAxis = (typeof BASE_AXES)[number];

export const sweepSpecSchema = z.strictObject({
  name: z.string({ error: 'expected a name' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected a name of letters, digits, ".", "_" and "-"' }).optional(),
  description: z.string().optional(),
  base: baseSchema,
  axes: z.record(z.string(), z.array(scalar, { error: 'expected a list of values' }).min(1, { error: 'expected at least one value' }), { error: 'expected an object of axes' }).default({}),
  combine: z.enum(['product', 'zip'], { error: 'expected "product" or "zip"' }).default('product'),
});
export type SweepSpec = z.infer<typeof sweepSpecSchema>;

export type AxisValue = string | number | boolean;

/** A point of a sweep: its axis values and the effective run. */
export interface SweepPoint {
  index: number;
  /** The point's name: the first 16 hex digits of the sha256 of its effective configuration. */
  id: string;
  params: Record<string, AxisValue>;
  run: PointRun;
}

/** What a point replays: enough to run it and to say so as a `kmemu replay` command line. */
export interface PointRun {
  /** The trace file, or the generator whose output the sweep writes to one first. */
  trace: { file: string } | { generator: { workload: string; cpus: number; events: number | undefined; seed: number | string | undefined; options: Record<string, number | string> } };
  /** The machine as given (preset or file) and the overrides of the point's axes and the base. */
  machine: { given: string; overrides: Record<string, AxisValue>; config: MachineConfig };
  cpus: number;
  allocator: 'vmzone' | 'uma';
  pcpu: boolean;
  aligned: boolean;
  bucketSize?: number | undefined;
  autoTune?: boolean | undefined;
  cacheLock?: 'critical' | 'mutex' | undefined;
  invariants?: boolean | undefined;
  packetZone: boolean;
  sysctl: Record<string, number>;
  tunables: Record<string, string>;
  touch: number;
  warmup: number;
}

/** One line for the first problem zod found, naming the field. */
function zodLine(where: string, err: z.ZodError): UserError {
  const issue = err.issues[0]!;
  const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('');
  const msg = issue.code === 'unrecognized_keys' ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` : issue.message;
  return new UserError(`${where}: ${path === '' ? '' : `${path}: `}${msg}`);
}

/** Reads a spec file (JSON, or YAML by its extension); a UserError names the file and field. */
export function loadSweepSpec(file: string): { spec: SweepSpec; text: string; dir: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`${file}: cannot read the sweep spec: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return { spec: parseSweepSpec(text, file), text, dir: dirname(resolve(file)) };
}

export function parseSweepSpec(text: string, where: string): SweepSpec {
  let raw: unknown;
  if (/\.ya?ml$/i.test(where)) {
    try {
      raw = yamlLoad(text, { json: true });
    } catch (err) {
      const e = err as { mark?: { line: number; column: number }; reason?: string };
      throw new UserError(`${where}${e.mark !== undefined ? `:${e.mark.line + 1}` : ''}: not YAML: ${e.reason ?? String(err)}`);
    }
  } else {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new UserError(`${where}: not JSON: ${(err as Error).message}`);
    }
  }
  const r = sweepSpecSchema.safeParse(raw);
  if (!r.success) throw zodLine(where, r.error);
  const spec = r.data;
  if ((spec.base.trace === undefined) === (spec.base.generator === undefined)) {
    throw new UserError(`${where}: base: expected exactly one of "trace" (a trace file) and "generator" (a workload)`);
  }
  checkAxes(spec, where);
  return spec;
}

/** What an axis sets: a base key, a machine field, a sysctl, a tunable or a generator option. */
type AxisTarget = { kind: 'base'; key: BaseAxis } | { kind: 'machine'; field: string } | { kind: 'sysctl'; name: string } | { kind: 'tunable'; name: string } | { kind: 'gen'; option: string };

function axisTarget(axis: string): AxisTarget | undefined {
  if ((BASE_AXES as readonly string[]).includes(axis)) return { kind: 'base', key: axis as BaseAxis };
  if (axis === 'seed') return { kind: 'gen', option: 'seed' };
  const m = /^(machine|sysctl|tunable|gen)\.(.+)$/.exec(axis);
  if (m === null) return undefined;
  const rest = m[2]!;
  switch (m[1]) {
    case 'machine':
      return { kind: 'machine', field: rest };
    case 'sysctl':
      return { kind: 'sysctl', name: rest };
    case 'tunable':
      return { kind: 'tunable', name: rest };
    default:
      return { kind: 'gen', option: rest };
  }
}

function checkAxes(spec: SweepSpec, where: string): void {
  const names = Object.keys(spec.axes);
  for (const axis of names) {
    const t = axisTarget(axis);
    if (t === undefined) {
      throw new UserError(`${where}: axes.${axis}: not an axis (axes: ${BASE_AXES.join(', ')}, seed, machine.FIELD, sysctl.NAME, tunable.NAME, gen.OPTION)`);
    }
    spec.axes[axis]!.forEach((v, i) => {
      const at = `${where}: axes.${axis}[${i}]`;
      if (t.kind === 'base') {
        const r = baseShape[t.key].safeParse(v);
        if (!r.success) throw new UserError(`${at}: ${r.error.issues[0]!.message}, got ${JSON.stringify(v)}`);
      } else if (t.kind === 'sysctl') {
        const problem = typeof v === 'number' ? sysctlCheck(t.name, v) : `expected an integer, got ${JSON.stringify(v)}`;
        if (problem !== undefined) throw new UserError(`${at}: ${problem}`);
      } else if (t.kind === 'tunable') {
        const problem = tunableCheck(t.name, String(v));
        if (problem !== undefined) throw new UserError(`${at}: ${problem}`);
      } else if (t.kind === 'gen' && spec.base.generator === undefined) {
        throw new UserError(`${at}: a generator axis needs base.generator (the base replays a trace file)`);
      }
    });
  }
  if (spec.combine === 'zip') {
    const lengths = new Set(names.map((a) => spec.axes[a]!.length));
    if (lengths.size > 1) throw new UserError(`${where}: combine "zip" needs axes of one length, got ${names.map((a) => `${a} ${spec.axes[a]!.length}`).join(', ')}`);
  }
}

/** Every combination of the axes' values, in point order. */
function combinations(spec: SweepSpec): Record<string, AxisValue>[] {
  const names = Object.keys(spec.axes);
  if (names.length === 0) return [{}];
  if (spec.combine === 'zip') return spec.axes[names[0]!]!.map((_, i) => Object.fromEntries(names.map((a) => [a, spec.axes[a]![i]!])));
  let out: Record<string, AxisValue>[] = [{}];
  for (const a of names) out = out.flatMap((p) => spec.axes[a]!.map((v) => ({ ...p, [a]: v })));
  return out;
}

/** A nested object from dotted keys: { "l1d.size": "48k" } → { l1d: { size: "48k" } }. */
function nest(flat: Record<string, AxisValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flat)) {
    const parts = k.split('.');
    let o = out;
    for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[parts.at(-1)!] = v;
  }
  return out;
}

/**
 * The points of a spec, resolved and named. `dir` is the spec's directory (trace and machine
 * files are relative to it); `traceSha` gives the sha256 of a trace file (the points' ids
 * depend on what the trace holds, not on its name).
 */
export function expandPoints(spec: SweepSpec, where: string, dir: string, traceSha: (file: string) => string): SweepPoint[] {
  return combinations(spec).map((params, index) => {
    const b: SweepBase = structuredClone(spec.base);
    const overrides: Record<string, AxisValue> = { ...b.overrides };
    const gen = b.generator === undefined ? undefined : { ...b.generator, options: { ...(b.generator.options ?? {}) } };
    for (const [axis, v] of Object.entries(params)) {
      const t = axisTarget(axis)!;
      if (t.kind === 'base') (b as Record<string, unknown>)[t.key] = v;
      else if (t.kind === 'machine') overrides[t.field] = v;
      else if (t.kind === 'sysctl') b.sysctl[t.name] = v as number;
      else if (t.kind === 'tunable') b.tunables[t.name] = String(v);
      else if (gen !== undefined) {
        if (t.option === 'seed' || t.option === 'events' || t.option === 'eventsPerCpu' || t.option === 'cpus') (gen as Record<string, unknown>)[t.option] = v;
        else gen.options[t.option] = v as number | string;
      }
    }
    const at = `${where}: point ${index} (${Object.entries(params).map(([a, v]) => `${a}=${String(v)}`).join(', ') || 'the base'})`;
    const machineFile = /\.json$/i.test(b.machine) ? resolve(dir, b.machine) : b.machine;
    let config: MachineConfig;
    try {
      const given = loadMachineConfig(machineFile, nest(overrides));
      config = b.cpus === undefined ? given : loadMachineConfig(machineFile, { ...nest(overrides), cpus: b.cpus });
    } catch (err) {
      throw new UserError(`${at}: ${(err as Error).message}`);
    }
    const cpus = config.cpus;
    let trace: PointRun['trace'];
    let traceId: string;
    if (gen !== undefined) {
      const workload = workloadAliases[gen.workload] ?? gen.workload;
      if (!workloads.some((w) => w.name === workload)) throw new UserError(`${at}: base.generator.workload: no workload "${gen.workload}" (kmemu trace gen --list)`);
      if (gen.events !== undefined && gen.eventsPerCpu !== undefined) throw new UserError(`${at}: base.generator: give events or eventsPerCpu, not both`);
      const gcpus = gen.cpus ?? cpus;
      const events = gen.eventsPerCpu !== undefined ? gen.eventsPerCpu * gcpus : gen.events;
      const g = { workload, cpus: gcpus, events, seed: gen.seed, options: gen.options };
      try {
        resolveGenOptions(workload, genOptions(g));
      } catch (err) {
        throw new UserError(`${at}: base.generator: ${(err as Error).message}`);
      }
      trace = { generator: g };
      traceId = `gen:${canonical(g)}`;
    } else {
      const file = resolve(dir, b.trace!);
      trace = { file };
      traceId = `sha256:${traceSha(file)}`;
    }
    const tunables = Object.fromEntries(Object.entries(b.tunables).map(([k, v]) => [k, String(v)]));
    for (const [k, v] of Object.entries(tunables)) {
      const problem = tunableCheck(k, v);
      if (problem !== undefined) throw new UserError(`${at}: base.tunables.${k}: ${problem}`);
    }
    for (const [k, v] of Object.entries(b.sysctl)) {
      const problem = sysctlCheck(k, v);
      if (problem !== undefined) throw new UserError(`${at}: base.sysctl.${k}: ${problem}`);
    }
    const run: PointRun = {
      trace,
      machine: { given: b.machine, overrides, config },
      cpus,
      allocator: b.allocator,
      pcpu: b.pcpu,
      aligned: b.aligned,
      bucketSize: b.bucketSize,
      autoTune: b.autoTune,
      cacheLock: b.cacheLock,
      invariants: b.invariants,
      packetZone: b.packetZone,
      sysctl: b.sysctl,
      tunables,
      touch: b.touch,
      warmup: b.warmup,
    };
    const { trace: _t, machine: _m, ...rest } = run;
    const id = sha256(canonical({ kmemu: KMEMU_VERSION, trace: traceId, machine: config, ...rest })).slice(0, 16);
    return { index, id, params, run };
  });
}

/** A generator's options as trace gen takes them. */
export function genOptions(g: { cpus: number; events: number | undefined; seed: number | string | undefined; options: Record<string, number | string> }): GenOptions {
  const o: Record<string, unknown> = { cpus: g.cpus, ...g.options };
  if (g.events !== undefined) o['events'] = g.events;
  if (g.seed !== undefined) o['seed'] = g.seed;
  return o as unknown as GenOptions;
}

/** JSON with object keys sorted: the same value always gives the same text. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function sha256(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}
