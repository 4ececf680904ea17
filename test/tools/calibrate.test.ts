import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError, UserError, loadMachineConfig } from '../../emu/index.js';
import { CALIBRATE_FIGURES, emulatedFigures } from '../../tools/calibrate-programs.js';
import {
  FIT_TABLE, buildHostBenchmarks, fitMachine, placementRegime, runCalibrate,
  type CalibrateDoc, type HostMeasurement, type HostTable,
} from '../../tools/calibrate.js';
import { buildOnce, kmemu } from './built-cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-calibrate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function calibrateJson(args: string[], measureHost?: (quick: boolean) => HostMeasurement): Promise<CalibrateDoc> {
  let out = '';
  await runCalibrate([...args, '--json'], { stdout: { write: (s: string) => (out += s) }, ...(measureHost === undefined ? {} : { measureHost }) });
  return JSON.parse(out) as CalibrateDoc;
}

const figures = (doc: CalibrateDoc) => Object.fromEntries(doc.results.map((r) => [r.name, r.cycles]));

// These move when the model changes: that is what they are for. Each is the model's arithmetic
// on the preset's inputs (coursework: L1D 2, L2 10, LLC 30, DRAM 100, L2 TLB 5, c2c 40, ...).
describe('calibrate: the emulated figures', () => {
  it('calibrate --machine coursework prints every figure, exactly', async () => {
    expect(figures(await calibrateJson(['--machine', 'coursework']))).toEqual({
      'load.l1': 2, 'load.l2': 10, 'load.llc': 30, 'load.dram': 100,
      'tlb.l2hit': 5, 'tlb.walk': 29.19,
      'atomic.uncontended': 12, pause: 10, mfence: 10,
      'handoff.oneway': 61, 'handoff.oneway.pause': 68,
      'atomic.contended2': 29.95, 'ttas.1cpu': 14, 'ttas.2cpu': 52.94,
      'page.zero': 6400, 'page.copy': 12800,
    });
  });

  it('calibrate --machine amd64-host prints every figure, exactly, near and far', async () => {
    // emu/presets.ts gives the host's figures each of these is fitted to.
    expect(figures(await calibrateJson(['--machine', 'amd64-host']))).toEqual({
      'load.l1': 4, 'load.l2': 16, 'load.llc': 55, 'load.dram': 840,
      'tlb.l2hit': 9, 'tlb.walk': 172.1,
      'atomic.uncontended': 20, pause: 62, mfence: 74,
      'handoff.oneway': 182.5, 'handoff.oneway.pause': 199,
      'atomic.contended2': 33.49, 'ttas.1cpu': 21, 'ttas.2cpu': 51.04,
      'page.zero': 575.98, 'page.copy': 876.09,
    });
    const far = await calibrateJson(['--machine', 'amd64-host', '--placement', 'far']);
    expect(far.placement).toBe('far');
    expect(figures(far)).toMatchObject({ 'handoff.oneway': 767, 'handoff.oneway.pause': 785, 'atomic.contended2': 37.4, 'ttas.2cpu': 55.82, 'load.dram': 840 });
    await expect(calibrateJson(['--placement', 'middle'])).rejects.toThrow(UsageError);
  });

  it('emulatedFigures() gives the chase levels their preset latencies, and a figure follows its field', () => {
    const base = loadMachineConfig('coursework');
    const more = loadMachineConfig('coursework', { l2: { hitLatency: 13 }, cpu: { lockedOpLatency: 17 } });
    const at = (c: typeof base) => Object.fromEntries(emulatedFigures(c, ['load.l2', 'atomic.uncontended']).map((r) => [r.name, r.cycles]));
    expect(at(base)).toEqual({ 'load.l2': 10, 'atomic.uncontended': 12 });
    expect(at(more)).toEqual({ 'load.l2': 13, 'atomic.uncontended': 19 });
  });

  it('the document lists every name in order and states its run', async () => {
    const doc = await calibrateJson(['--machine', 'coursework']);
    expect(doc.schema).toBe('kmemu.calibrate/1');
    expect(doc.machine).toBe('coursework');
    expect(doc.results.map((r) => r.name)).toEqual([...CALIBRATE_FIGURES]);
    expect(doc.run.machine.config).toEqual(loadMachineConfig('coursework'));
    expect(doc.host).toBeUndefined();
  });

  it('calibrate refuses a one-CPU machine and --fit without --host or -o', async () => {
    await expect(calibrateJson(['--machine', 'coursework', '--cpus', '1'])).rejects.toThrow(UserError);
    await expect(calibrateJson(['--fit', '-o', path.join(tmp, 'x.json')])).rejects.toThrow(UsageError);
    await expect(calibrateJson(['--host', '--fit'])).rejects.toThrow(UsageError);
    await expect(calibrateJson(['-o', path.join(tmp, 'x.json')])).rejects.toThrow(UsageError);
  });
});

// A host table as this machine printed it once (near placement), for the pure fit.
const HOST: HostTable = {
  'load.l1': 3.9, 'load.l2': 14.4, 'load.llc': 52, 'load.dram': 610,
  'tlb.l2hit': 7.2, 'tlb.walk': 38, 'atomic.uncontended': 20.4, pause: 40, mfence: 70,
  'handoff.oneway': 150, 'handoff.oneway.pause': 160, 'atomic.contended2': 33,
  'ttas.1cpu': 21, 'ttas.2cpu': 54, 'page.zero': 1400, 'page.copy': 1700,
};
const hostRun = (): HostMeasurement => ({
  figures: HOST,
  run: { cyclesPerTick: { min: 1.66, max: 1.68 }, placement: { regime: 'near', probes: [141, 150, 148] } },
});

describe('calibrate --host --fit', () => {
  it('fitMachine() sets the direct fields to the host figures and solves the composite ones', () => {
    const file = fitMachine('coursework', HOST);
    expect(Object.keys(file)).toEqual(['base', 'name', 'l1d', 'l2', 'llc', 'memory', 'tlb', 'cpu', 'coherence']);
    expect(file).toMatchObject({ base: 'coursework', name: 'coursework-fitted', l1d: { hitLatency: 4 }, l2: { hitLatency: 14 }, llc: { hitLatency: 52 }, memory: { dramLatency: 610 }, tlb: { l2: { hitLatency: 7 } } });
    fs.writeFileSync(path.join(tmp, 'fit.json'), JSON.stringify(file));
    const fitted = loadMachineConfig(path.join(tmp, 'fit.json'));
    const got = Object.fromEntries(emulatedFigures(fitted, FIT_TABLE.map((f) => f.figure)).map((r) => [r.name, r.cycles]));
    expect(got['atomic.uncontended']).toBe(20);
    expect(fitted.cpu.lockedOpLatency).toBe(16);
    expect(file).toEqual({
      base: 'coursework', name: 'coursework-fitted',
      l1d: { hitLatency: 4 }, l2: { hitLatency: 14 }, llc: { hitLatency: 52 }, memory: { dramLatency: 610, ownershipLatency: 22 },
      // walkLatency 0: with the fitted cache latencies the walk's own loads already cost more
      // than the host's 38; the solver keeps the nearest.
      tlb: { l2: { hitLatency: 7 }, walkLatency: 0 },
      cpu: { lockedOpLatency: 16, pauseLatency: 40, mfenceLatency: 70 },
      // One factor (245 %) on coursework's 40 / 30 / 20.
      coherence: { transferLatency: 98, invalidateLatency: 74, probeLatency: 49 },
    });
    for (const figure of ['atomic.uncontended', 'page.zero', 'handoff.oneway'] as const) {
      expect(Math.abs(got[figure]! - HOST[figure]!) / HOST[figure]!, figure).toBeLessThan(0.15);
    }
    expect(FIT_TABLE.filter((f) => f.derive !== 'direct').map((f) => f.figure)).toEqual(['tlb.walk', 'atomic.uncontended', 'page.zero', 'handoff.oneway']);
    // In the far placement the same factor goes to the far* twins.
    expect(fitMachine('coursework', { ...HOST, 'handoff.oneway': 700 }, 'far')['coherence']).toEqual({ farTransferLatency: 465, farInvalidateLatency: 349, farProbeLatency: 232 });
    expect(fitMachine('coursework', HOST)).toEqual(file);
  });

  it('--fit -o writes a machine file loadMachineConfig accepts, and the table shows host, emulated and diff', async () => {
    const out = path.join(tmp, 'my-machine.json');
    let text = '';
    await runCalibrate(['--machine', 'coursework', '--host', '--fit', '-o', out], { stdout: { write: (s: string) => (text += s) }, measureHost: hostRun });
    const cfg = loadMachineConfig(out);
    expect(cfg.name).toBe('coursework-fitted');
    expect(cfg.memory.dramLatency).toBe(610);
    expect(text).toContain('figure                 host  emulated   diff\nload.l1                3.90         2   -49%\n');
    expect(text).toContain('host placement: near (one-way handoff probes 141, 150, 148 cycles); 1.66–1.68 core cycles per TSC tick\n');
  });

  it('--host --json adds each host figure and the placement', async () => {
    const doc = await calibrateJson(['--machine', 'coursework', '--host'], hostRun);
    expect(doc.results.find((r) => r.name === 'page.zero')).toEqual({ name: 'page.zero', cycles: 6400, host: 1400 });
    expect(doc.host!.placement).toEqual({ regime: 'near', probes: [141, 150, 148] });
  });

  it('placementRegime() is near below 200 cycles one way, far above, mixed when the probes disagree', () => {
    expect(placementRegime([141, 199])).toBe('near');
    expect(placementRegime([290, 780])).toBe('far');
    expect(placementRegime([150, 780])).toBe('mixed');
  });
});

describe('calibrate --host on this machine (shape only: the figures are not deterministic)', () => {
  beforeAll(() => buildOnce());

  it('the C benchmarks build with the system cc (this fails, not skips, without one: make system-deps installs gcc)', () => {
    const cc = spawnSync('cc', ['--version'], { encoding: 'utf8' });
    expect(cc.error, 'no `cc` on PATH: run `make system-deps` (installs gcc)').toBeUndefined();
    const bin = buildHostBenchmarks();
    expect(fs.statSync(bin).mode & 0o111).not.toBe(0);
  });

  it('a quick --host run prints every figure, positive, and exits 0', { timeout: 120_000 }, () => {
    const r = kmemu(['calibrate', '--machine', 'coursework', '--host', '--quick', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as CalibrateDoc;
    expect(doc.results.map((x) => x.name)).toEqual([...CALIBRATE_FIGURES]);
    for (const x of doc.results) {
      expect(x.host, x.name).toBeTypeOf('number');
      if (!x.name.startsWith('tlb.')) expect(x.host!, x.name).toBeGreaterThan(0);
    }
    expect(['near', 'far', 'mixed']).toContain(doc.host!.placement.regime);
    expect(doc.host!.placement.probes.length).toBeGreaterThanOrEqual(3);
  });

  it('a missing compiler is one clear line and exit status 1', () => {
    const r = spawnSync(process.execPath, ['dist/tools/cli.js', 'calibrate', '--host'], { encoding: 'utf8', env: { ...process.env, CC: 'kmemu-no-such-cc' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('kmemu: calibrate --host: no C compiler: "kmemu-no-such-cc" is not on PATH (install gcc, or set CC)\n');
  });
});
