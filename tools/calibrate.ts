// `kmemu calibrate`: the machine's microbenchmarks as emulated programs (tools/calibrate-programs.ts)
// and, with --host, the same loops in C on this machine (tools/calib/calib.c), side by side;
// --fit writes a machine file whose component latencies are fitted to the host.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { UsageError, UserError, loadMachineConfig, machinePresets, mergeConfig, validateMachineConfig, type MachineConfig } from '../emu/index.js';
import { KMEMU_VERSION, kmemuVersionSchema, machineRun, machineRunSchema, writeFileAtomic } from '../traces/index.js';
import { emulatedFigures, type Placement } from './calibrate-programs.js';
import { CALIBRATE_FIGURES, CALIBRATE_SCHEMA, calibrateCommand, type CalibrateFigure, type CalibrateOptions } from './commands/calibrate.js';
import { machineConfigFrom, machineLabel } from './machine-options.js';

export { CALIBRATE_SCHEMA } from './commands/calibrate.js';

const figureName = z.enum(CALIBRATE_FIGURES).describe('the figure (see its description in the README)');
const cycles = (what: string) => z.number().min(0).describe(what);

export const hostRunSchema = z
  .object({
    cyclesPerTick: z
      .object({ min: cycles('lowest core cycles per TSC tick measured'), max: cycles('highest core cycles per TSC tick measured') })
      .describe('the TSC-to-core-cycle ratio, measured with a dependent-add chain before each figure'),
    placement: z
      .object({
        regime: z.enum(['near', 'far', 'mixed']).describe('where the two vCPUs were: near (one-way handoff below 200 cycles), far, or mixed when the probes disagree'),
        probes: z.array(cycles('one-way handoff, busy spin, median of a probe')).describe('the handoff probes, taken before, during and after the figures'),
      })
      .describe('where the hypervisor placed the two vCPUs, from the handoff probes'),
  })
  .describe('the host run (--host): not deterministic');

export const calibrateDocSchema = z
  .object({
    schema: z.literal(CALIBRATE_SCHEMA).describe('this document\'s schema and version'),
    machine: z.string().describe('the machine as given: a preset name, or a machine file\'s base name'),
    placement: z.enum(['near', 'far']).describe('where the two CPUs of the two-CPU figures sat on the emulated machine: one core complex, or two (the far* latencies); with --host, the host\'s regime unless --placement says'),
    run: z.object({ kmemu: kmemuVersionSchema, machine: machineRunSchema }).describe('what ran: kmemu and the machine'),
    results: z
      .array(
        z.object({
          name: figureName,
          cycles: cycles('the emulated figure, core cycles (exact, to two decimals)'),
          host: cycles('the host figure, core cycles (median of many runs); with --host').optional(),
        }),
      )
      .describe('every figure, in a fixed order'),
    host: hostRunSchema.optional(),
  })
  .describe('kmemu calibrate: microbenchmarks on the emulated machine, and with --host on this one');
export type CalibrateDoc = z.infer<typeof calibrateDocSchema>;
export type HostRun = z.infer<typeof hostRunSchema>;

/** The host's figures: name → core cycles (a two-CPU figure is missing on a one-CPU host). */
export type HostTable = Partial<Record<CalibrateFigure, number>>;

export interface HostMeasurement {
  figures: HostTable;
  run: HostRun;
}

// --- The fit -----------------------------------------------------------------------------

/**
 * How --fit derives each field from a host figure, applied in this order. `direct`: the field is
 * the figure (the preset's latencies are load-to-use, as the chase measures them). `solve`: the
 * field is searched so that the emulated figure, with every field fitted before it, equals the
 * host's — for composite figures the model computes from several fields. `scale`: the fields
 * keep their ratios (the preset's fit) and one factor is searched. A `coherence` entry names
 * the near fields; in the far placement its far* twins are fitted instead. Adjust here when the
 * model's fields change.
 */
export const FIT_TABLE: readonly {
  figure: CalibrateFigure;
  fields: readonly (readonly string[])[];
  derive: 'direct' | 'solve' | 'scale';
  /** Where a solve starts when the base leaves the field out (an optional field's default). */
  startFrom?: readonly string[];
}[] = [
  { figure: 'load.l1', fields: [['l1d', 'hitLatency']], derive: 'direct' },
  { figure: 'load.l2', fields: [['l2', 'hitLatency']], derive: 'direct' },
  { figure: 'load.llc', fields: [['llc', 'hitLatency']], derive: 'direct' },
  { figure: 'load.dram', fields: [['memory', 'dramLatency']], derive: 'direct' },
  { figure: 'tlb.l2hit', fields: [['tlb', 'l2', 'hitLatency']], derive: 'direct' },
  { figure: 'tlb.walk', fields: [['tlb', 'walkLatency']], derive: 'solve' },
  { figure: 'atomic.uncontended', fields: [['cpu', 'lockedOpLatency']], derive: 'solve' },
  { figure: 'pause', fields: [['cpu', 'pauseLatency']], derive: 'direct' },
  { figure: 'mfence', fields: [['cpu', 'mfenceLatency']], derive: 'direct' },
  { figure: 'page.zero', fields: [['memory', 'ownershipLatency']], derive: 'solve', startFrom: ['memory', 'dramLatency'] },
  {
    figure: 'handoff.oneway',
    fields: [['coherence', 'transferLatency'], ['coherence', 'invalidateLatency'], ['coherence', 'probeLatency']],
    derive: 'scale',
  },
];

const FAR_FIELD: Readonly<Record<string, string>> = {
  transferLatency: 'farTransferLatency',
  invalidateLatency: 'farInvalidateLatency',
  probeLatency: 'farProbeLatency',
};

/** A FIT_TABLE field as fitted in `placement`: a coherence latency's far* twin when far. */
function placed(field: readonly string[], placement: Placement): readonly string[] {
  return placement === 'far' && field[0] === 'coherence' && FAR_FIELD[field[1]!] !== undefined ? ['coherence', FAR_FIELD[field[1]!]!] : field;
}

/**
 * A fitted transfer or invalidation shorter than the preset's probe leg takes the probe down
 * with it: the probe is a part of both (emu/config.ts refuses a probe longer than either).
 */
function keepProbeWithin(base: MachineConfig, overrides: Record<string, unknown>): void {
  const c = mergeConfig(base, overrides) as unknown as { coherence: Record<string, number> };
  for (const [probe, a, b] of [['probeLatency', 'transferLatency', 'invalidateLatency'], ['farProbeLatency', 'farTransferLatency', 'farInvalidateLatency']] as const) {
    const most = Math.min(c.coherence[a]!, c.coherence[b]!);
    if (c.coherence[probe]! > most) setField(overrides, ['coherence', probe], most);
  }
}

function getField(obj: unknown, field: readonly string[]): number {
  let v = obj;
  for (const k of field) v = (v as Record<string, unknown>)[k];
  return v as number;
}

function setField(obj: Record<string, unknown>, field: readonly string[], value: number): void {
  let o = obj;
  for (const k of field.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[field.at(-1)!] = value;
}

/**
 * The integer x whose emulated figure, with `apply(overrides, x)`, is nearest `target`: secant
 * steps from x0 (the figures are monotone in x but may move in steps, as a spin loop's turns
 * do), keeping the best value seen.
 */
function solve(
  base: MachineConfig, overrides: Record<string, unknown>, figure: CalibrateFigure, placement: Placement,
  apply: (o: Record<string, unknown>, x: number) => void, x0: number, target: number,
): number {
  const at = (x: number) => {
    const o = structuredClone(overrides);
    apply(o, x);
    keepProbeWithin(base, o);
    return emulatedFigures(validateMachineConfig(mergeConfig(base, o)), [figure], placement)[0]!.cycles;
  };
  let f0 = at(x0);
  let best = { x: x0, err: Math.abs(f0 - target) };
  let x1 = Math.max(0, x0 + (target > f0 ? 8 : -8));
  for (let i = 0; i < 10 && best.err >= 0.5; i++) {
    const f1 = at(x1);
    if (Math.abs(f1 - target) < best.err) best = { x: x1, err: Math.abs(f1 - target) };
    const slope = (f1 - f0) / (x1 - x0);
    const next = slope > 0 ? Math.max(0, Math.round(x1 + (target - f1) / slope)) : x1 + (target > f1 ? 8 : -8);
    if (next === x1 || next < 0) break;
    [x0, f0, x1] = [x1, f1, next];
  }
  return best.x;
}

/**
 * The machine file --fit writes: `base` and the fitted fields only (FIT_TABLE order), from a
 * host table measured in `placement`. Pure: the same base, table and placement give the same
 * file.
 */
export function fitMachine(baseName: string, host: HostTable, placement: Placement = 'near'): Record<string, unknown> {
  const base = loadMachineConfig(baseName);
  const overrides: Record<string, unknown> = {};
  for (const { figure, fields, derive, startFrom } of FIT_TABLE) {
    const target = host[figure];
    if (target === undefined) continue;
    const own = fields.map((f) => placed(f, placement));
    if (derive === 'direct') setField(overrides, own[0]!, Math.max(0, Math.round(target)));
    else if (derive === 'solve') {
      const merged = mergeConfig(base, overrides);
      const x0 = (getField(merged, own[0]!) as number | undefined) ?? getField(merged, startFrom!);
      setField(overrides, own[0]!, solve(base, overrides, figure, placement, (o, x) => setField(o, own[0]!, x), x0, target));
    } else {
      // One factor, in percent of the preset's values, over all the fields.
      const start = own.map((f) => getField(mergeConfig(base, overrides), f));
      const apply = (o: Record<string, unknown>, pct: number) => own.forEach((f, i) => setField(o, f, Math.round((start[i]! * pct) / 100)));
      apply(overrides, solve(base, overrides, figure, placement, apply, 100, target));
    }
    keepProbeWithin(base, overrides);
  }
  return { base: baseName, name: `${baseName}-fitted`, ...overrides };
}

// --- The host run --------------------------------------------------------------------------

/** The C source: beside this module in the source tree, or in tools/calib/ above dist/. */
function calibSource(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, 'calib', 'calib.c'), path.join(here, '..', '..', 'tools', 'calib', 'calib.c')]) {
    if (fs.existsSync(p)) return p;
  }
  throw new UserError('calibrate --host: cannot find the benchmarks\' C source (tools/calib/calib.c)');
}

/** Builds tools/calib/calib.c with the system cc, once per source version; returns the binary. */
export function buildHostBenchmarks(cc = process.env.CC ?? 'cc'): string {
  const src = calibSource();
  const text = fs.readFileSync(src);
  const hash = createHash('sha256').update(text).update(cc).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `kmemu-calib-${os.userInfo().uid}`);
  const bin = path.join(dir, `calib-${hash}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = spawnSync(cc, ['-O2', '-pthread', '-o', tmp, src], { encoding: 'utf8' });
  if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new UserError(`calibrate --host: no C compiler: "${cc}" is not on PATH (install gcc, or set CC)`);
  }
  if (r.status !== 0) throw new UserError(`calibrate --host: ${cc} could not build ${src}: ${(r.stderr || String(r.error)).trim().split('\n')[0]}`);
  fs.renameSync(tmp, bin);
  return bin;
}

const hostOutputSchema = z.object({
  cyclesPerTick: z.object({ min: z.number(), max: z.number() }),
  results: z.record(z.string(), z.number()),
  handoffProbes: z.array(z.number()),
});

/** Near below this one-way handoff (cycles); the issue saw ~90–145 near, ~290 and ~650–830 far. */
const NEAR_BELOW = 200;

export function placementRegime(probes: readonly number[]): HostRun['placement']['regime'] {
  const near = probes.filter((p) => p < NEAR_BELOW).length;
  return near === probes.length ? 'near' : near === 0 ? 'far' : 'mixed';
}

/** The placement to emulate against a host run: its regime; when mixed, that of most probes (ties: far). */
export function emulatedPlacement(run: HostRun): Placement {
  if (run.placement.regime !== 'mixed') return run.placement.regime;
  const near = run.placement.probes.filter((p) => p < NEAR_BELOW).length;
  return 2 * near > run.placement.probes.length ? 'near' : 'far';
}

/** Runs the host benchmarks (quick: fewer runs) and returns their figures. */
export function measureHost(quick = false): HostMeasurement {
  const bin = buildHostBenchmarks();
  const r = spawnSync(bin, quick ? ['--quick'] : [], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new UserError(`calibrate --host: the benchmarks failed: ${(r.stderr || String(r.error ?? r.signal)).trim().split('\n')[0]}`);
  const out = hostOutputSchema.parse(JSON.parse(r.stdout));
  const figures: HostTable = {};
  for (const name of CALIBRATE_FIGURES) {
    const v = out.results[name];
    if (v !== undefined) figures[name] = Math.round(v * 100) / 100;
  }
  return {
    figures,
    run: {
      cyclesPerTick: out.cyclesPerTick,
      placement: { regime: placementRegime(out.handoffProbes), probes: out.handoffProbes },
    },
  };
}

// --- The command ---------------------------------------------------------------------------

export interface CalibrateIo {
  stdout: { write(text: string): unknown };
  /** The host measurement (tests pass a fixed one); default measureHost(). */
  measureHost?: (quick: boolean) => HostMeasurement;
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

export function formatCalibrate(doc: CalibrateDoc): string {
  const withHost = doc.host !== undefined;
  const header = withHost ? ['figure', 'host', 'emulated', 'diff'] : ['figure', 'emulated'];
  const rows = doc.results.map((r) => {
    if (!withHost) return [r.name, fmt(r.cycles)];
    if (r.host === undefined) return [r.name, '-', fmt(r.cycles), '-'];
    const pct = r.host <= 0 ? undefined : Math.round(((r.cycles - r.host) / r.host) * 100);
    const diff = pct === undefined ? '-' : `${pct >= 0 ? '+' : ''}${pct}%`;
    return [r.name, fmt(r.host), fmt(r.cycles), diff];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [
    `kmemu calibrate: ${doc.machine}, core cycles, two-CPU figures ${doc.placement === 'far' ? 'far (two core complexes)' : 'near (one core complex)'}` +
      `${withHost ? '; host: this machine, median of many runs; diff: emulated vs host' : ''}`,
    line(header),
    ...rows.map(line),
  ];
  if (doc.host !== undefined) {
    const h = doc.host;
    out.push(`host placement: ${h.placement.regime} (one-way handoff probes ${h.placement.probes.map((p) => p.toFixed(0)).join(', ')} cycles); ` +
      `${h.cyclesPerTick.min.toFixed(2)}–${h.cyclesPerTick.max.toFixed(2)} core cycles per TSC tick`);
  }
  return `${out.join('\n')}\n`;
}

/** What `kmemu calibrate` does with its options (tools/commands/calibrate.ts declares them). */
export function calibrateMain(opts: CalibrateOptions, io: CalibrateIo): CalibrateDoc {
  if (opts.fit === true && opts.host !== true) throw new UsageError('option --fit: expected --host too (the fit needs the host\'s figures)');
  if (opts.fit === true && opts.output === undefined) throw new UsageError('option --fit: expected -o FILE for the machine file');
  if (opts.output !== undefined && opts.fit !== true) throw new UsageError('option -o: expected --fit (it names the fitted machine file)');
  const given = machineLabel(opts);
  if (opts.fit === true && !Object.hasOwn(machinePresets, given)) throw new UsageError(`option --fit: expected --machine to be a preset (the fitted file's base), got ${JSON.stringify(given)}`);
  if (opts.placement !== undefined && opts.placement !== 'near' && opts.placement !== 'far') {
    throw new UsageError(`option --placement: expected near or far, got ${JSON.stringify(opts.placement)}`);
  }
  const config = machineConfigFrom(opts);
  const host = opts.host === true ? (io.measureHost ?? measureHost)(opts.quick === true) : undefined;
  const placement: Placement = (opts.placement as Placement | undefined) ?? (host === undefined ? 'near' : emulatedPlacement(host.run));
  const results: CalibrateDoc['results'] = emulatedFigures(config, undefined, placement).map((r) => ({ name: r.name, cycles: r.cycles }));
  const doc: CalibrateDoc = {
    schema: CALIBRATE_SCHEMA, machine: machineRun(given, config).given, placement, run: { kmemu: KMEMU_VERSION, machine: machineRun(given, config) }, results,
  };
  if (host !== undefined) {
    for (const r of results) {
      const h = host.figures[r.name];
      if (h !== undefined) r.host = h;
    }
    doc.host = host.run;
    if (opts.fit === true) {
      const file = fitMachine(given, host.figures, placement);
      writeFileAtomic(opts.output!, `${JSON.stringify(file, null, 2)}\n`);
      loadMachineConfig(opts.output!);
    }
  }
  io.stdout.write(opts.json === true ? `${JSON.stringify(doc)}\n` : formatCalibrate(doc));
  return doc;
}

/**
 * Runs `kmemu calibrate ARGS` in-process (ARGS without the subcommand name) and returns the
 * document. User errors throw UserError; option errors throw commander's CommanderError.
 */
export async function runCalibrate(args: readonly string[], io: Partial<CalibrateIo> = {}): Promise<CalibrateDoc | undefined> {
  let result: CalibrateDoc | undefined;
  const stdout = io.stdout ?? process.stdout;
  const command = calibrateCommand((opts) => {
    result = calibrateMain(opts, { stdout, ...(io.measureHost === undefined ? {} : { measureHost: io.measureHost }) });
  })
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  await command.parseAsync([...args], { from: 'user' });
  return result;
}
