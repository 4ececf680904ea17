// Machine images and replay checkpoints (traces/checkpoint.ts, emu/snapshot.ts): a replay from a
// boot image, or resumed from any of its checkpoints, gives the report of one that boots and runs
// through, byte for byte; images of another format, truncated or foreign files, and a checkpoint
// of another trace or other options are refused with one line.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Machine, presetConfig, restoreGraph, snapshotGraph, SnapshotError, UserError, type MachineConfig } from '../../emu/index.js';
import { boot, type Tunables } from '../../kernel/index.js';
import {
  TraceReader, captureMachine, checkpointFiles, checkpointWriter, decodeBody, encodeImage, loadBootImage, parseImage, readImageFile, replay,
  resumeCheckpoint, saveBootImage, traceIdentity, type CheckpointRun, type ReplayOptions,
} from '../../traces/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-checkpoint-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const FIXTURES = 'test/fixtures/traces';
const host = presetConfig('amd64-host');

const small = presetConfig('coursework');

function options(allocator: 'vmzone' | 'uma', extra: Partial<ReplayOptions> = {}): ReplayOptions {
  return { machine: host, machineGiven: 'amd64-host', allocator, traceName: 't', ...extra };
}

/** The replay checkpoint tests run on the small machine (fast), one on the default. */
function onSmall(allocator: 'vmzone' | 'uma', extra: Partial<ReplayOptions> = {}): ReplayOptions {
  return options(allocator, { machine: small, machineGiven: 'coursework', ...extra });
}

async function report(trace: string, o: ReplayOptions): Promise<string> {
  return JSON.stringify(await replay(await TraceReader.open(path.join(FIXTURES, trace)), o), null, 2);
}

describe('snapshotGraph() and restoreGraph()', () => {
  class Node {
    next: Node | undefined;
    constructor(readonly id: number) {}
  }

  it('restores numbers, bigints, Maps, Sets, typed arrays and shared objects onto a fresh graph', () => {
    const a = new Node(1);
    a.next = a;
    const grown = new Float64Array(8).fill(2);
    const g = { n: [NaN, -0, Infinity, 1.5], b: 2n ** 70n, m: new Map<number, object>([[3, a]]), s: new Set(['x']), t: new Uint8Array([1, 2, 3]), grown, again: a, u: undefined };
    const image = snapshotGraph(g);
    const fresh = { n: [] as number[], b: 0n, m: new Map(), s: new Set(), t: new Uint8Array(3), grown: new Float64Array(2), again: undefined as unknown, u: 5 as number | undefined };
    const freshT = fresh.t;
    restoreGraph(fresh, image, { classes: [Node] });
    expect(fresh.n).toEqual([NaN, -0, Infinity, 1.5]);
    expect(Object.is(fresh.n[1], -0)).toBe(true);
    expect(fresh.b).toBe(2n ** 70n);
    expect([...fresh.s]).toEqual(['x']);
    expect(fresh.t).toBe(freshT);
    expect([...fresh.t]).toEqual([1, 2, 3]);
    expect([...fresh.grown]).toEqual([2, 2, 2, 2, 2, 2, 2, 2]);
    const node = fresh.m.get(3) as Node;
    expect(node).toBeInstanceOf(Node);
    expect(node.next).toBe(node);
    expect(fresh.again).toBe(node);
    expect(fresh.u).toBeUndefined();
  });

  it('throws SnapshotError on a generator instead of leaving it out', () => {
    const g = { task: (function* () {})() };
    expect(() => snapshotGraph(g)).toThrow(new SnapshotError('root.task: [object Generator] cannot be captured'));
  });

  it('takes a function from the fresh graph, and refuses one it has no source for', () => {
    const k = 7;
    const f = () => k;
    const image = snapshotGraph({ f });
    const fresh = { f: () => k };
    const keep = fresh.f;
    restoreGraph(fresh, image);
    expect(fresh.f).toBe(keep);
    expect(() => restoreGraph({}, snapshotGraph({ g: () => 1 }))).toThrow('root.g: no function of the fresh machine has the source "() => 1"');
  });
});

describe('boot images', () => {
  const cases: [string, 'vmzone' | 'uma', Tunables][] = [
    ['producer-2cpu.trace', 'vmzone', {}],
    ['kernel-mix-2cpu.trace', 'uma', {}],
    ['vmem-2cpu.trace', 'uma', { 'vm.kmem_backend': 'vmem' }],
  ];
  it.each(cases)('a replay of %s (%s) from a boot image reports what one that boots does, byte for byte', async (trace, allocator, tunables) => {
    const file = path.join(tmp, `boot-${trace}.img`);
    saveBootImage(file, host, 'amd64-host', tunables);
    const img = loadBootImage(file);
    expect(img.header).toMatchObject({ format: 1, kind: 'boot', machineGiven: 'amd64-host', tunables });
    const booted = await report(trace, options(allocator, { tunables }));
    const fromImage = await report(trace, options(allocator, { tunables, machine: img.header.machine, booted: { machine: img.machine, kernel: img.kernel } }));
    expect(fromImage).toBe(booted);
  });

  it('the image holds the machine as booted: clocks, counters, memory', () => {
    const m = new Machine(host);
    const k = boot(m, {});
    const file = path.join(tmp, 'state.img');
    saveBootImage(file, host, 'amd64-host', {});
    const img = loadBootImage(file);
    expect(img.machine.cpus.map((c) => c.clock)).toEqual(m.cpus.map((c) => c.clock));
    expect([...img.machine.cpus[0]!.ctr]).toEqual([...m.cpus[0]!.ctr]);
    expect(img.machine.mem.touchedFrames).toBe(m.mem.touchedFrames);
    expect(img.kernel.peek32(k.vmstats)).toBe(k.peek32(k.vmstats));
    expect([...img.kernel.zones.keys()]).toEqual([...k.zones.keys()]);
  });
});

describe('image files that are not images of this format', () => {
  const file = path.join(tmp, 'good.img');
  const good = () => {
    if (!fs.existsSync(file)) saveBootImage(file, presetConfig('coursework'), 'coursework', {});
    return fs.readFileSync(file);
  };
  const expected = 'expected a kmemu machine image of format version 1 (kmemu boot --save, or a replay checkpoint)';

  it('refuses an image of another format version, naming the file and both versions', () => {
    const bytes = good();
    const headLen = bytes.readUInt32LE(12);
    const header = JSON.parse(bytes.subarray(16, 16 + headLen).toString()) as Record<string, unknown>;
    const other = Buffer.from(JSON.stringify({ ...header, format: 2 }));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(other.length);
    const bad = path.join(tmp, 'v2.img');
    fs.writeFileSync(bad, Buffer.concat([bytes.subarray(0, 12), len, other, bytes.subarray(16 + headLen)]));
    expect(() => readImageFile(bad)).toThrow(new UserError(`${bad}: a machine image of format version 2 (kmemu 0.1.0); this kmemu 0.1.0 reads format version 1 only: make the image again`));
  });

  it('refuses a truncated image', () => {
    const bytes = good();
    const bad = path.join(tmp, 'short.img');
    fs.writeFileSync(bad, bytes.subarray(0, bytes.length - 100));
    const headLen = bytes.readUInt32LE(12);
    const body = bytes.length - 16 - headLen;
    expect(() => readImageFile(bad)).toThrow(new UserError(`${bad}: the machine image is truncated (${body - 100} of its ${body} body bytes); ${expected}`));
    fs.writeFileSync(bad, bytes.subarray(0, 20));
    expect(() => readImageFile(bad)).toThrow(new UserError(`${bad}: the machine image is truncated (its header is cut off); ${expected}`));
  });

  it('refuses a file that is not an image, and a damaged body', () => {
    const trace = path.join(FIXTURES, 'vmem-2cpu.trace');
    expect(() => readImageFile(trace)).toThrow(new UserError(`${trace}: not a machine image (no "KMEMU-IMAGE" magic at its start); ${expected}`));
    const bytes = Buffer.from(good());
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    const { body } = parseImage('damaged.img', bytes);
    expect(() => decodeBody('damaged.img', body)).toThrow(/^damaged\.img: the machine image's body is damaged/);
  });
});

describe('replay checkpoints', () => {
  /** Replays with checkpoints every `every` events, kept in memory; the report and the checkpoints. */
  async function withCheckpoints(trace: string, o: ReplayOptions, every: number) {
    const images: [number, Buffer][] = [];
    const save = (m: Machine, k: Parameters<typeof captureMachine>[1], d: object, events: number) => {
      images.push([events, Buffer.from(encodeImage({ kind: 'replay', machineGiven: 'amd64-host', machine: m.config as MachineConfig, tunables: {} }, captureMachine(m, k, d)))]);
    };
    const text = await report(trace, { ...o, checkpoint: { every, save } });
    return { text, images };
  }

  const cases: [string, 'vmzone' | 'uma', number, number, boolean][] = [
    ['producer-2cpu.trace', 'vmzone', 40, 0, true],
    ['kernel-mix-2cpu.trace', 'uma', 150, 0, false],
    ['kernel-mix-2cpu.trace', 'vmzone', 200, 20, false],
    ['net-forward-2cpu.trace', 'uma', 700, 0, false],
    ['pairs-4cpu.trace', 'uma', 600, 50, false],
    ['vmem-2cpu.trace', 'uma', 4, 0, false],
  ];
  it.each(cases)('%s (%s) checkpointed every %i events (warm-up %i): the report is unchanged, and resumed from each checkpoint it is the same', async (trace, allocator, every, warmup, onHost) => {
    const o = onHost ? options(allocator, { warmup }) : onSmall(allocator, { warmup });
    const plain = await report(trace, o);
    const { text, images } = await withCheckpoints(trace, o, every);
    expect(text).toBe(plain);
    expect(images.length).toBeGreaterThan(1);
    for (const [, bytes] of images) {
      const { header, body } = parseImage('ckpt', bytes);
      const resumed = await report(trace, { ...o, checkpoint: { every, save: () => undefined, from: { file: 'ckpt', header, graph: decodeBody('ckpt', body) } } });
      expect(resumed).toBe(plain);
    }
  });

  it('the checkpoints of producer-2cpu every 20 events are at the first quiescent points after each 20, the same in every run', async () => {
    const { images } = await withCheckpoints('producer-2cpu.trace', onSmall('vmzone'), 20);
    expect(images.map(([e]) => e)).toEqual([20, 40, 63, 80, 100, 133, 141, 161, 184, 202, 220, 240]);
  });

  it('a checkpoint directory keeps the newest two, and refuses another trace or other options', async () => {
    const dir = path.join(tmp, 'ckpt');
    const trace = path.join(FIXTURES, 'kernel-mix-2cpu.trace');
    const run: CheckpointRun = { trace: await traceIdentity(trace), options: { allocator: 'uma' }, every: 100 };
    const save = checkpointWriter(dir, run, 'amd64-host', {});
    await report('kernel-mix-2cpu.trace', { ...onSmall('uma'), checkpoint: { every: 100, save } });
    expect(checkpointFiles(dir).map((f) => path.basename(f.file))).toEqual(['replay-000000000600.kmemu-ckpt', 'replay-000000000500.kmemu-ckpt']);
    expect(resumeCheckpoint(dir, run).events).toBe(600);
    const other = path.join(FIXTURES, 'vmem-2cpu.trace');
    const otherId = await traceIdentity(other);
    const newest = path.join(dir, 'replay-000000000600.kmemu-ckpt');
    expect(() => resumeCheckpoint(dir, { ...run, trace: otherId })).toThrow(
      new UserError(`${newest}: the checkpoint is of trace kernel-mix-2cpu.trace (${run.trace.bytes} bytes, sha256 ${run.trace.sha256.slice(0, 12)}…), not of vmem-2cpu.trace (${otherId.bytes} bytes, sha256 ${otherId.sha256.slice(0, 12)}…)`),
    );
    expect(() => resumeCheckpoint(dir, { ...run, options: { allocator: 'vmzone' } })).toThrow(
      new UserError(`${newest}: the checkpoint is of a replay with other options: allocator "uma" (given: "vmzone"); give the options it was started with`),
    );
    expect(() => resumeCheckpoint(path.join(tmp, 'empty'), run)).toThrow(/cannot read the checkpoint directory: ENOENT$/);
  });
});
