import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { loadMachineConfig } from '../../emu/index.js';
import {
  KMEMU_VERSION, TraceReader, linuxImportSummarySchema, traceStatsDocSchema,
  type LinuxImportSummary, type ReplayReport,
} from '../../traces/index.js';
import { type LayoutDoc, runBoot } from '../../tools/boot.js';
import { type CachesimDoc, runCachesim } from '../../tools/cachesim.js';
import { type CalibrateDoc, runCalibrate } from '../../tools/calibrate.js';
import type { CompareDoc } from '../../tools/report.js';
import { runCompare, runReplay, type ReplayCliOptions } from '../../tools/replay.js';
import { documents, generateSchemas } from '../../tools/schemas.js';
import { runSysctl } from '../../tools/sysctl.js';
import { runTrace, type TraceStatsDoc } from '../../tools/trace.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-schemas-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const MIX = 'test/fixtures/traces/kernel-mix-2cpu.trace';
const LINUX = 'test/fixtures/linux/trace-cmd-report.txt';
const DIN = 'test/fixtures/din/rand-small.din';
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

const ajv = new Ajv2020({ allErrors: true });
const validators = new Map<string, ValidateFunction>(documents.map((d) => [d.id, ajv.compile(JSON.parse(fs.readFileSync(`docs/schemas/${d.file}`, 'utf8')) as object)]));

/** The ajv errors of `doc` against the committed schema `id` ([] when it validates). */
function errors(id: string, doc: unknown): unknown[] {
  const v = validators.get(id)!;
  return v(doc) ? [] : (v.errors ?? [{ message: 'invalid' }]);
}

const opts = (o: Partial<ReplayCliOptions> = {}): ReplayCliOptions =>
  ({ machine: 'coursework', cpus: '2', allocator: 'vmzone', touch: '1', sysctl: [], zones: '8', json: true, ...o }) as ReplayCliOptions;

async function replayJson(o: Partial<ReplayCliOptions>, trace = MIX): Promise<ReplayReport> {
  let out = '';
  await runReplay(trace, opts(o), { out: (t) => void (out += t), err: () => undefined });
  return JSON.parse(out) as ReplayReport;
}

async function traceJson(args: string[], stdin?: Buffer): Promise<unknown> {
  let out = '';
  await runTrace(args, { stdout: { write: (s: string) => (out += s) }, ...(stdin === undefined ? {} : { stdin: Readable.from([stdin]) }) });
  return JSON.parse(out);
}

describe('docs/schemas', () => {
  it('the committed JSON Schemas are what tools/schemas.ts generates from the zod schemas', () => {
    const generated = generateSchemas();
    expect(fs.readdirSync('docs/schemas').sort()).toEqual([...generated.keys()].sort());
    for (const [name, text] of generated) expect(fs.readFileSync(`docs/schemas/${name}`, 'utf8'), name).toBe(text);
  });

  it('the TypeScript types of the documents are the zod schemas\' inferred types', () => {
    expectTypeOf<z.infer<typeof linuxImportSummarySchema>>().toEqualTypeOf<LinuxImportSummary>();
    expectTypeOf<z.infer<typeof traceStatsDocSchema>>().toEqualTypeOf<TraceStatsDoc>();
    expectTypeOf<CompareDoc['perCpu']>().toEqualTypeOf<ReplayReport>();
    expectTypeOf<LayoutDoc['schema']>().toEqualTypeOf<'kmemu.layout/1'>();
    expectTypeOf<CachesimDoc['schema']>().toEqualTypeOf<'kmemu.cachesim/1'>();
  });

  it('KMEMU_VERSION is package.json\'s version', () => {
    expect(KMEMU_VERSION).toBe((JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string }).version);
  });
});

describe('real outputs validate against their schemas', () => {
  it('replay --json (vmzone) describes its run: version, effective machine, allocator options, sysctls, touch, trace sha256', async () => {
    const doc = await replayJson({ sysctl: ['vm.zone_burst=4'], touch: '2' });
    expect(errors('kmemu.report/1', doc)).toEqual([]);
    expect(doc.run).toEqual({
      kmemu: KMEMU_VERSION,
      machine: { given: 'coursework', config: loadMachineConfig('coursework', { cpus: 2 }) },
      allocator: { name: 'vmzone', pcpu: true, aligned: false },
      sysctl: { 'vm.zone_burst': 4 },
      tunables: { 'vm.kmem_backend': 'kmem_alloc3', 'kern.ipc.nmbclusters': '8832' },
      touch: 2,
      trace: { name: 'kernel-mix-2cpu.trace', sha256: sha256(MIX) },
    });
    expect(doc.run.machine.config.cpus).toBe(2);
  });

  it('replay --json --allocator uma states every UMA option, defaults included, and --vmstat puts vmstat -z and -m rows in the document', async () => {
    const doc = await replayJson({ allocator: 'uma', locked: true, vmstat: true });
    expect(errors('kmemu.report/1', doc)).toEqual([]);
    expect(doc.run.allocator).toEqual({ name: 'uma', pcpu: false, aligned: false, bucketSize: null, cacheLock: 'critical', autoTune: false, invariants: false });
    const v = doc.vmstat as { vmstatZ: { name: string; requests: number }[]; vmstatM: { type: string }[] };
    const names = v.vmstatZ.map((r) => r.name);
    expect(names).toContain('names_cache');
    expect(v.vmstatM.length).toBeGreaterThan(0);
    const tuned = await replayJson({ allocator: 'uma', bucketSize: '8', cacheLock: 'mutex', autoTune: true, invariants: true, aligned: true });
    expect(tuned.run.allocator).toEqual({ name: 'uma', pcpu: true, aligned: true, bucketSize: 8, cacheLock: 'mutex', autoTune: true, invariants: true });
    expect(tuned.vmstat).toBeUndefined();
  });

  it('replay --vmstat --json has the vm.zone rows whose figures the text prints', async () => {
    const doc = await replayJson({ vmstat: true });
    let text = '';
    await runReplay(MIX, opts({ vmstat: true, json: false }), { out: (t) => void (text += t), err: () => undefined });
    const rows = (doc.vmstat as { vmZone: { name: string; size: number; limit: number; used: number; free: number; requests: number }[] }).vmZone;
    const z = rows.find((r) => r.name === 'names_cache')!;
    const pad = (n: number, w: number) => String(n).padStart(w, '0');
    expect(text).toContain(`\nnames_cache:  ${pad(z.size, 6)}, ${pad(z.limit, 8)}, ${pad(z.used, 6)}, ${pad(z.free, 6)}, ${pad(z.requests, 8)}\n`);
    expect(z.size).toBe(4096);
    expect(errors('kmemu.report/1', doc)).toEqual([]);
  });

  it('replay --machine FILE.json names the file by its base name, with the override applied', async () => {
    const file = path.join(tmp, 'small.json');
    fs.writeFileSync(file, JSON.stringify({ base: 'coursework', l1d: { size: '2k' } }));
    const doc = await replayJson({ machine: file, cpus: '1' });
    expect(doc.run.machine.given).toBe('small.json');
    expect(doc.run.machine.config.l1d.size).toBe(2048);
    expect(doc.run.machine.config.cpus).toBe(1);
    expect(errors('kmemu.report/1', doc)).toEqual([]);
  });

  it('replay --json --warmup N states the warm-up in run.warmup and totals.warmup, and validates', async () => {
    const doc = await replayJson({ warmup: '50' });
    expect(errors('kmemu.report/1', doc)).toEqual([]);
    expect(doc.run.warmup).toBe(50);
    expect(doc.totals.warmup!.events).toBeGreaterThan(0);
    const none = await replayJson({ warmup: '0' });
    expect('warmup' in none.run || 'warmup' in none.totals).toBe(false);
  });

  it('compare --json', async () => {
    let out = '';
    await runCompare('test/fixtures/traces/pairs-4cpu.trace', opts({ cpus: '4' }), { out: (t) => void (out += t), err: () => undefined });
    const doc = JSON.parse(out) as CompareDoc;
    expect(errors('kmemu.compare/1', doc)).toEqual([]);
    expect(doc.run.allocator).toEqual({ name: 'vmzone', aligned: false });
    expect(doc.run.trace).toEqual({ name: 'pairs-4cpu.trace', sha256: sha256('test/fixtures/traces/pairs-4cpu.trace') });
    expect([doc.perCpu.run.allocator, doc.locked.run.allocator]).toEqual([
      { name: 'vmzone', pcpu: true, aligned: false },
      { name: 'vmzone', pcpu: false, aligned: false },
    ]);
  });

  it('cachesim --json, with the hierarchy it ran and the trace sha256, from a file and from stdin', async () => {
    const args = ['--l1', '1k:2:64:lru', '--l2', '4k:4:64:fifo', '--tlb', '16:4', '--flush', '--non-inclusive', '--json'];
    let out = '';
    await runCachesim([...args, DIN], { stdout: { write: (s: string) => (out += s) } });
    const doc = JSON.parse(out) as CachesimDoc;
    expect(errors('kmemu.cachesim/1', doc)).toEqual([]);
    expect(doc.run).toEqual({
      kmemu: KMEMU_VERSION,
      format: 'din',
      hierarchy: {
        levels: [{ size: 1024, ways: 2, line: 64, policy: 'lru' }, { size: 4096, ways: 4, line: 64, policy: 'fifo' }],
        inclusive: false,
        tlb: { entries: 16, ways: 4 },
        seed: 1,
        flush: true,
      },
      trace: { name: 'rand-small.din', sha256: sha256(DIN) },
    });
    out = '';
    await runCachesim(args, { stdout: { write: (s: string) => (out += s) }, stdin: Readable.from([fs.readFileSync(DIN)]) });
    expect((JSON.parse(out) as CachesimDoc).run.trace).toEqual({ name: 'stdin', sha256: sha256(DIN) });
  });

  it('cachesim --json on the worker-thread path hashes what the worker read', async () => {
    let out = '';
    const gz = 'test/fixtures/din/rand-big.din.gz';
    await runCachesim(['--l1', '1k:2:64:lru', '--json', gz], {
      stdout: { write: (s: string) => (out += s) },
      pipelineMinBytes: 0,
      dinWorkerUrl: new URL('../../dist/traces/din-worker.js', import.meta.url),
    });
    const doc = JSON.parse(out) as CachesimDoc;
    expect(doc.run.trace).toEqual({ name: 'rand-big.din.gz', sha256: sha256(gz) });
    expect(errors('kmemu.cachesim/1', doc)).toEqual([]);
  });

  it('trace import --json, from a file and from stdin', async () => {
    const doc = (await traceJson(['import', '--from', 'linux-kmem', LINUX, '-o', path.join(tmp, 'i.trace'), '--json', '--window', '64'])) as LinuxImportSummary;
    expect(errors('kmemu.trace-import/1', doc)).toEqual([]);
    expect(doc.run).toEqual({ kmemu: KMEMU_VERSION, from: 'linux-kmem', input: { name: 'trace-cmd-report.txt', sha256: sha256(LINUX) }, lenient: false, window: 64 });
    const piped = (await traceJson(['import', '--from', 'linux-kmem', '-', '-o', path.join(tmp, 'j.trace'), '--json'], fs.readFileSync(LINUX))) as LinuxImportSummary;
    expect(piped.run.input).toEqual({ name: 'stdin', sha256: sha256(LINUX) });
  });

  it('trace stats --json, of a gzip trace (the sha256 of its compressed bytes) and of stdin', async () => {
    const gz = 'traces/examples/linux-6.18-kmem.trace.gz';
    const doc = (await traceJson(['stats', '--json', gz])) as TraceStatsDoc;
    expect(errors('kmemu.trace-stats/1', doc)).toEqual([]);
    expect(doc.run).toEqual({ kmemu: KMEMU_VERSION, trace: { name: 'linux-6.18-kmem.trace.gz', sha256: sha256(gz) }, lenient: false });
    const piped = (await traceJson(['stats', '--json', '--lenient', '-'], fs.readFileSync(MIX))) as TraceStatsDoc;
    expect(piped.run).toEqual({ kmemu: KMEMU_VERSION, trace: { name: 'stdin', sha256: sha256(MIX) }, lenient: true });
    expect(errors('kmemu.trace-stats/1', piped)).toEqual([]);
  });

  it('TraceReader.sha256 is null until the whole input is read', async () => {
    const r = await TraceReader.open(MIX);
    expect(r.sha256).toBeNull();
    while ((await r.next()) !== null);
    expect(r.sha256).toBe(sha256(MIX));
    await r.close();
  });

  it('boot --layout --json', async () => {
    let out = '';
    await runBoot(['--layout', '--json', '--machine', 'coursework', '--cpus', '3'], { stdout: { write: (s: string) => (out += s) } });
    const doc = JSON.parse(out) as LayoutDoc;
    expect(errors('kmemu.layout/1', doc)).toEqual([]);
    expect(doc.run).toEqual({ kmemu: KMEMU_VERSION, machine: { given: 'coursework', config: loadMachineConfig('coursework', { cpus: 3 }) } });
  });

  it('calibrate --json, emulated and with host figures', async () => {
    let out = '';
    await runCalibrate(['--machine', 'coursework', '--json'], { stdout: { write: (s: string) => (out += s) } });
    const doc = JSON.parse(out) as CalibrateDoc;
    expect(errors('kmemu.calibrate/1', doc)).toEqual([]);
    expect(doc.run).toEqual({ kmemu: KMEMU_VERSION, machine: { given: 'coursework', config: loadMachineConfig('coursework') } });
    out = '';
    const host = { cyclesPerTick: { min: 1.6, max: 1.7 }, placement: { regime: 'far' as const, probes: [780, 790, 800] } };
    await runCalibrate(['--machine', 'coursework', '--host', '--json'], { stdout: { write: (s: string) => (out += s) }, measureHost: () => ({ figures: { 'load.l1': 3.9 }, run: host }) });
    const withHost = JSON.parse(out) as CalibrateDoc;
    expect(errors('kmemu.calibrate/1', withHost)).toEqual([]);
    expect(errors('kmemu.calibrate/1', { ...withHost, host: { ...host, placement: { regime: 'close', probes: [] } } })).not.toEqual([]);
  });

  it('sysctl --json, values and descriptions', async () => {
    for (const args of [['-a', '--json'], ['-d', '--json', 'vm']]) {
      let out = '';
      await runSysctl(args, { stdout: { write: (s: string) => (out += s) } });
      expect(errors('kmemu.sysctl', JSON.parse(out))).toEqual([]);
    }
  });

  it('a document with a field of the wrong type, a missing run or an unknown field fails its schema', async () => {
    const doc = await replayJson({});
    expect(errors('kmemu.report/1', { ...doc, totals: { ...doc.totals, events: '625' } })).not.toEqual([]);
    const { run: _run, ...norun } = doc;
    expect(errors('kmemu.report/1', norun)).not.toEqual([]);
    expect(errors('kmemu.report/1', { ...doc, run: { ...doc.run, trace: { name: 'x', sha256: 'abc' } } })).not.toEqual([]);
    expect(errors('kmemu.report/1', { ...doc, extra: 1 })).not.toEqual([]);
    expect(errors('kmemu.sysctl', { 'vm.kvm_size': true })).not.toEqual([]);
  });
});
