// kmemu replay and kmemu compare: a trace through a kernel on the machine; per-CPU caching on
// and off side by side. tools/commands/replay.ts declares their options.

import { basename } from 'node:path';
import { UsageError } from '../emu/index.js';
import { malloc_vmstat_m, mbuf_started, netstat_m, sysctlCheck, sysctl_vm_zone, uma_vmstat_z, type Kernel } from '../kernel/index.js';
import {
  TraceReader, checkpointWriter, kernelVmstat as vmstatRows, loadBootImage, readImageFile, replay, resumeCheckpoint, traceIdentity, writeFileAtomic,
  type AllocatorName, type ImageHeader, type ReplayCheckpointing, type ReplayOptions, type ReplayReport, type Vmstat,
} from '../traces/index.js';
import type { ReplayCliOptions } from './commands/replay.js';
import { machineConfigFrom, machineLabel, parseCpus, parseTunables } from './machine-options.js';
import { countTraceEvents, progressShown, startProgress } from './progress.js';
import { compareDoc, formatCompare, formatReport } from './report.js';

export type { ReplayCliOptions } from './commands/replay.js';

export interface ReplayIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Show a progress bar on stderr when it is a terminal (the CLI); tests pass false. */
  progress?: boolean;
}

function parseTouch(text: string): number {
  if (!/^\d{1,2}$/.test(text) || Number(text) > 64) throw new UsageError(`--touch: expected a number of cache lines from 0 to 64, got "${text}"`);
  return Number(text);
}

function parseWarmup(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`--warmup: expected a number of events per CPU of 0 or more, got "${text}"`);
  return Number(text);
}

function parseZones(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new UsageError(`--zones: expected an integer of 0 or more, got "${text}"`);
  return Number(text);
}

function parseSysctls(list: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of list) {
    const m = /^([a-z0-9_.]+)=(-?\d{1,16})$/.exec(item);
    if (m === null) throw new UsageError(`--sysctl: expected NAME=INTEGER, got "${item}"`);
    const problem = sysctlCheck(m[1]!, Number(m[2]));
    if (problem !== undefined) throw new UsageError(`--sysctl ${item}: ${problem}`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** The UMA-only options given with another allocator, as their flags. */
const UMA_ONLY = [['bucketSize', '--bucket-size'], ['cacheLock', '--cache-lock'], ['autoTune', '--auto-tune'], ['invariants', '--invariants']] as const;

/** Checks every option before the trace is read, so a bad flag fails at once (UsageError). */
export function checkOptions(opts: ReplayCliOptions): void {
  if (opts.allocator !== 'uma') {
    for (const [key, flag] of UMA_ONLY) if (opts[key] !== undefined) throw new UsageError(`${flag} applies to --allocator uma only`);
  }
  parseTouch(opts.touch);
  parseWarmup(opts.warmup);
  parseZones(opts.zones);
  parseSysctls(opts.sysctl);
  parseTunables(opts.tunable);
  parseBucketSize(opts.bucketSize);
  machineConfigFrom(opts);
}

/** Replays a trace file once; prints what the lenient reader skipped. */
/** The kernel's allocator statistics as vmstat(8) and sysctl(8) print them. */
function kernelVmstat(k: Kernel, allocator: AllocatorName): string {
  if (allocator === 'uma') return `vmstat -z:\n${uma_vmstat_z(k)}\n\nvmstat -m:\n${malloc_vmstat_m(k)}`;
  return `vm.zone: ${sysctl_vm_zone(k)}`;
}

function parseBucketSize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d{1,3}$/.test(text) || n < 1 || n > 256) throw new UsageError(`--bucket-size: expected a number of items from 1 to 256, got "${text}"`);
  return n;
}

let vmstat = '';
let vmstatData: Vmstat | undefined;
let netstat = '';

/** The trace's events when a bar will show them (the bar counts replayed events), else undefined. */
async function barTotal(file: string, io: ReplayIo): Promise<number | undefined> {
  return io.progress === true && progressShown() ? countTraceEvents(file) : undefined;
}

/**
 * The replay options the command line gives (checked by checkOptions first): what `kmemu
 * replay FILE` runs, per-CPU caching on or off. kmemu view replays with the same.
 */
export function replayOptionsFrom(file: string, opts: ReplayCliOptions, pcpu: boolean): ReplayOptions {
  return {
    machine: machineConfigFrom(opts),
    machineGiven: machineLabel(opts),
    allocator: opts.allocator,
    pcpu,
    aligned: opts.aligned ?? false,
    touch: parseTouch(opts.touch),
    warmup: parseWarmup(opts.warmup),
    traceName: file === '-' ? 'stdin' : basename(file),
    sysctl: parseSysctls(opts.sysctl),
    tunables: parseTunables(opts.tunable),
    packetZone: opts.packetZone !== false,
    ...(opts.cacheLock === undefined ? {} : { cacheLock: opts.cacheLock }),
    ...(opts.bucketSize === undefined ? {} : { bucketSize: parseBucketSize(opts.bucketSize)! }),
    ...(opts.autoTune === true ? { autoTune: true } : {}),
    ...(opts.invariants === true ? { invariants: true } : {}),
  };
}

/**
 * --from IMAGE: the image's header, checked against the command line: the machine, --cpus and
 * the tunables are the image's, and a different one given is refused.
 */
export function imageHeaderFor(opts: ReplayCliOptions): ImageHeader | undefined {
  if (opts.from === undefined) return undefined;
  const file = opts.from;
  const { header } = readImageFile(file);
  if (header.kind !== 'boot') throw new UsageError(`--from ${file}: a replay checkpoint, not a boot image; continue it with --resume DIR`);
  const refuse = (what: string) => new UsageError(`--from ${file}: ${what}; a replay from an image runs on the machine and tunables it was booted with: leave the option out`);
  if (opts.machine !== undefined && opts.machine !== header.machineGiven) throw refuse(`the image was booted with --machine ${header.machineGiven}, not ${opts.machine}`);
  if (opts.cpus !== undefined && parseCpus(opts.cpus) !== header.machine.cpus) throw refuse(`the image's machine has ${header.machine.cpus} CPUs, not --cpus ${opts.cpus}`);
  const given = parseTunables(opts.tunable);
  const same = (a: object, b: object) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
  if (Object.keys(given).length > 0 && !same(given, header.tunables)) {
    const shown = Object.entries(header.tunables).map(([n, v]) => `${n}=${String(v)}`).join(' ');
    throw refuse(`the image was booted with tunables ${shown === '' ? '(none)' : shown}, not ${(opts.tunable ?? []).join(' ')}`);
  }
  return header;
}

/** The replay options of --from: the image's machine and tunables, and its machine booted. */
function fromImage(opts: ReplayCliOptions, header: ImageHeader | undefined): Partial<ReplayOptions> {
  if (header === undefined || opts.from === undefined) return {};
  const img = loadBootImage(opts.from);
  return { machine: img.header.machine, machineGiven: img.header.machineGiven, tunables: img.header.tunables, booted: { machine: img.machine, kernel: img.kernel } };
}

function parseEvery(text: string): number {
  const n = Number(text);
  if (!/^\d{1,15}$/.test(text) || n < 1) throw new UsageError(`--checkpoint-every: expected a number of events of 1 or more, got "${text}"`);
  return n;
}

/** The options of a replay that shape its result, as a checkpoint records them (and a resume must repeat). */
function runOptions(o: ReplayOptions, lenient: boolean): Record<string, unknown> {
  return {
    machine: o.machineGiven ?? o.machine.name, config: o.machine, allocator: o.allocator ?? 'vmzone', pcpu: o.pcpu ?? true, aligned: o.aligned ?? false,
    touch: o.touch ?? 1, warmup: o.warmup ?? 0, traceName: o.traceName ?? '', sysctl: o.sysctl ?? {}, tunables: o.tunables ?? {}, packetZone: o.packetZone ?? true,
    cacheLock: o.cacheLock ?? null, bucketSize: o.bucketSize ?? null, autoTune: o.autoTune ?? false, invariants: o.invariants ?? false, lenient,
  };
}

/** --checkpoint-every N --checkpoint DIR, or --resume DIR: how the replay checkpoints and what it resumes from. */
async function checkpointingFor(file: string, opts: ReplayCliOptions, o: ReplayOptions): Promise<ReplayCheckpointing | undefined> {
  const { checkpointEvery: every, checkpoint: dir, resume } = opts;
  if (every === undefined && dir === undefined && resume === undefined) return undefined;
  if (file === '-') throw new UsageError('replay: checkpoints identify the trace by its bytes, so it must be a file, not "-"');
  if (resume === undefined && (every === undefined || dir === undefined)) throw new UsageError('replay: --checkpoint-every N and --checkpoint DIR go together');
  if (resume !== undefined && opts.from !== undefined) throw new UsageError(`--resume ${resume}: a resumed replay starts from its checkpoint's machine: leave out --from`);
  if (resume !== undefined && dir !== undefined && dir !== resume) throw new UsageError(`--resume ${resume} goes on writing its checkpoints there: leave out --checkpoint ${dir}`);
  const trace = await traceIdentity(file);
  const options = runOptions(o, opts.lenient ?? false);
  const machineGiven = o.machineGiven ?? o.machine.name;
  if (resume === undefined) {
    const run = { trace, options, every: parseEvery(every!) };
    return { every: run.every, save: checkpointWriter(dir!, run, machineGiven, o.tunables ?? {}) };
  }
  const from = resumeCheckpoint(resume, { trace, options, every: 0 });
  if (every !== undefined && parseEvery(every) !== from.run.every) throw new UsageError(`--resume ${resume}: the replay checkpoints every ${from.run.every} events, not --checkpoint-every ${every}`);
  return { every: from.run.every, save: checkpointWriter(resume, from.run, machineGiven, o.tunables ?? {}), from };
}

async function replayFile(file: string, opts: ReplayCliOptions, pcpu: boolean, io: ReplayIo, total?: number): Promise<ReplayReport> {
  const header = imageHeaderFor(opts);
  const options = { ...replayOptionsFrom(file, opts, pcpu), ...(header === undefined ? {} : { machine: header.machine, machineGiven: header.machineGiven, tunables: header.tunables }) };
  const checkpoint = await checkpointingFor(file, opts, options);
  const reader = await TraceReader.open(file, { lenient: opts.lenient ?? false });
  const bar = io.progress === true ? startProgress({ label: pcpu ? 'replay' : 'replay (locked)', total, unit: 'events' }) : undefined;
  try {
    const report = await replay(reader, {
      ...options,
      ...fromImage(opts, header),
      ...(checkpoint === undefined ? {} : { checkpoint }),
      onProgress: (events) => bar?.update(events),
      onFinish: (k) => {
        if (opts.vmstat === true && opts.json === true) vmstatData = vmstatRows(k, opts.allocator);
        else if (opts.vmstat === true) vmstat = kernelVmstat(k, opts.allocator);
        if (opts.netstat === true) netstat = mbuf_started(k) ? `netstat -m:\n${netstat_m(k)}` : 'netstat -m: the trace has no mbuf events (b), so no mbuf zones were made';
      },
    });
    const skipped = reader.skipped();
    const n = Object.values(skipped).reduce((a, b) => a + b, 0);
    if (n > 0) io.err(`kmemu: --lenient skipped ${n} event${n === 1 ? '' : 's'}: ${Object.entries(skipped).map(([why, c]) => `${c} ${why}`).join(', ')}\n`);
    return report;
  } finally {
    bar?.stop();
    await reader.close();
  }
}

function emit(text: string, opts: ReplayCliOptions, io: ReplayIo): void {
  if (opts.output !== undefined && opts.output !== '-') writeFileAtomic(opts.output, text.endsWith('\n') ? text : `${text}\n`);
  else io.out(text.endsWith('\n') ? text : `${text}\n`);
}

export async function runReplay(file: string, opts: ReplayCliOptions, io: ReplayIo): Promise<ReplayReport> {
  checkOptions(opts);
  vmstat = '';
  vmstatData = undefined;
  netstat = '';
  const report = await replayFile(file, opts, !(opts.locked ?? false), io, await barTotal(file, io));
  if (vmstatData !== undefined) report.vmstat = vmstatData;
  const text = opts.json === true ? JSON.stringify(report, null, 2) : formatReport(report, parseZones(opts.zones), opts.legend !== false);
  const after = opts.json === true ? [] : [...(opts.vmstat === true ? [vmstat] : []), ...(opts.netstat === true ? [netstat] : [])];
  emit([text, ...after].join('\n\n'), opts, io);
  return report;
}

export async function runCompare(file: string, opts: ReplayCliOptions, io: ReplayIo) {
  if (file === '-') throw new UsageError('compare: the trace is replayed twice, so it must be a file, not "-"');
  checkOptions(opts);
  const total = await barTotal(file, io);
  const perCpu = await replayFile(file, opts, true, io, total);
  const locked = await replayFile(file, opts, false, io, total);
  const doc = compareDoc(perCpu, locked);
  emit(opts.json === true ? JSON.stringify(doc, null, 2) : formatCompare(doc, opts.legend !== false), opts, io);
  return doc;
}
