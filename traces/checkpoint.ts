// Machine images: a booted machine (`kmemu boot --save`), or a replay stopped at a quiescent
// point (`kmemu replay --checkpoint-every N --checkpoint DIR`), in a file to start from.
//
// The file: the magic line "KMEMU-IMAGE\n"; a u32 (little-endian) byte length and that many
// bytes of a JSON header (ImageHeader: the format version, the kmemu version, what the image
// is, the machine config and tunables it was booted with, and for a replay checkpoint the trace
// and the options); then the body, zlib-deflated: a u32 length and the JSON tree of the
// captured graph (emu/snapshot.ts), a u32 count of binary blocks, and each block as a u32 byte
// length and its bytes (physical memory, caches, TLBs, counter tables, ...). The header's
// bodyBytes is the deflated body's length, so a truncated file is told from a whole one before
// anything is inflated. Files are written complete or not at all (atomic-output.ts).
//
// What is captured: the Machine (CPUs with their clocks, core state and counter tables, label
// and context registries, the scheduler's per-CPU state; the memory system with every cache's
// tags, states, dirty bits, replacement state, prefetcher tables, the directory and busy
// intervals; TLBs; physical memory), the Kernel object and the kernel modules' JS state
// (kernel/kern/kernel-state.ts); for a replay checkpoint also the driver's state
// (replay-state in traces/replay.ts). A restore builds a fresh Machine of the image's config
// and a constructed (not booted) Kernel on it and overlays the image.

import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { CPU_DONE, Machine, type MachineConfig, SnapshotError, UserError, restoreGraph, snapshotGraph, type GraphImage } from '../emu/index.js';
import {
  Kernel, type Tunables, boot, freshKernelJsState, installKernelJsState, kernelJsState, kernelRestoreFunctions, type KernelJsState,
} from '../kernel/index.js';
import { writeFileAtomic } from './atomic-output.js';
import { KMEMU_VERSION } from './run.js';
import type { EventSource } from './replay.js';

export const IMAGE_MAGIC = 'KMEMU-IMAGE\n';
/** The image format's version: an image of another is refused. */
export const IMAGE_FORMAT = 1;

export interface ImageHeader {
  format: number;
  kmemu: string;
  /** A booted machine, or a replay stopped at a quiescent point. */
  kind: 'boot' | 'replay';
  /** The machine as given (preset name or file) and its validated config. */
  machineGiven: string;
  machine: MachineConfig;
  /** The boot tunables as given. */
  tunables: Tunables;
  /** A replay checkpoint: what identifies the run (CheckpointRun). */
  replay?: unknown;
  /** The deflated body's length in bytes. */
  bodyBytes: number;
}

/** A captured machine: the graph image and the header fields that say what it is. */
export interface MachineImage {
  header: ImageHeader;
  graph: GraphImage;
}

/** The root of what an image captures. */
interface Root {
  machine: Machine;
  kernel: Kernel;
  kstate: KernelJsState;
  driver?: unknown;
}

/** Captures a machine at a quiescent point (no program inside kernel code); `driver`: a replay's state. */
export function captureMachine(m: Machine, k: Kernel, driver?: object): GraphImage {
  const root: Root = { machine: m, kernel: k, kstate: kernelJsState(k) };
  if (driver !== undefined) root.driver = driver;
  return snapshotGraph(root);
}

/** A machine an image is restored onto: constructed from the image's config, the kernel not booted. */
export interface FreshMachine {
  machine: Machine;
  kernel: Kernel;
  kstate: KernelJsState;
}

export function freshMachine(header: ImageHeader): FreshMachine {
  const machine = new Machine(header.machine);
  const kernel = Kernel.create(machine, header.tunables);
  return { machine, kernel, kstate: freshKernelJsState(kernel) };
}

/**
 * Overlays an image onto a fresh machine, and `driver` (a replay's state made on that machine)
 * with the image's driver state; `classes`: of objects the driver may hold that the fresh one does not.
 */
export function restoreOnto(
  fresh: FreshMachine, graph: GraphImage, driver?: object, classes: readonly (abstract new (...args: never[]) => unknown)[] = [], file = 'machine image',
): void {
  const root: Root = { machine: fresh.machine, kernel: fresh.kernel, kstate: fresh.kstate };
  if (driver !== undefined) root.driver = driver;
  try {
    restoreGraph(root, graph, { functions: () => kernelRestoreFunctions(fresh.kernel), classes });
  } catch (err) {
    if (err instanceof SnapshotError) throw new UserError(`${file}: the machine image does not fit this kmemu's machine: ${err.message}`);
    throw err;
  }
  installKernelJsState(fresh.kernel, root.kstate);
}

/** Builds the machine an image holds: a fresh Machine of its config, a Kernel constructed on it, the image overlaid. */
export function restoreMachine(header: ImageHeader, graph: GraphImage, file?: string): { machine: Machine; kernel: Kernel } {
  const fresh = freshMachine(header);
  restoreOnto(fresh, graph, undefined, [], file);
  return { machine: fresh.machine, kernel: fresh.kernel };
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** The image file's bytes. */
export function encodeImage(header: Omit<ImageHeader, 'bodyBytes' | 'format' | 'kmemu'>, graph: GraphImage): Uint8Array {
  const tree = Buffer.from(JSON.stringify(graph.tree));
  const parts: Uint8Array[] = [u32(tree.length), tree, u32(graph.blobs.length)];
  for (const b of graph.blobs) parts.push(u32(b.byteLength), b);
  const body = deflateSync(Buffer.concat(parts), { level: 1 });
  const full: ImageHeader = { format: IMAGE_FORMAT, kmemu: KMEMU_VERSION, ...header, bodyBytes: body.length };
  const head = Buffer.from(JSON.stringify(full));
  return Buffer.concat([Buffer.from(IMAGE_MAGIC), u32(head.length), head, body]);
}

/** Writes an image file, complete or not at all. */
export function writeImage(file: string, header: Omit<ImageHeader, 'bodyBytes' | 'format' | 'kmemu'>, graph: GraphImage): void {
  writeFileAtomic(file, encodeImage(header, graph));
}

/** What a file must be: the line a refusal ends with. */
const EXPECTED = `a kmemu machine image of format version ${IMAGE_FORMAT} (kmemu boot --save, or a replay checkpoint)`;

/** Reads an image's header and its body's bytes; one clear UserError for anything that is not a whole image of this format. */
export function readImageFile(file: string): { header: ImageHeader; body: Uint8Array } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new UserError(`${file}: cannot read the machine image: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseImage(file, bytes);
}

export function parseImage(file: string, bytes: Buffer): { header: ImageHeader; body: Uint8Array } {
  const magic = Buffer.from(IMAGE_MAGIC);
  if (bytes.length < magic.length + 4 || !bytes.subarray(0, magic.length).equals(magic)) {
    throw new UserError(`${file}: not a machine image (no "KMEMU-IMAGE" magic at its start); expected ${EXPECTED}`);
  }
  const headLen = bytes.readUInt32LE(magic.length);
  const headEnd = magic.length + 4 + headLen;
  if (headEnd > bytes.length) throw new UserError(`${file}: the machine image is truncated (its header is cut off); expected ${EXPECTED}`);
  let header: ImageHeader;
  try {
    header = JSON.parse(bytes.subarray(magic.length + 4, headEnd).toString('utf8')) as ImageHeader;
  } catch {
    throw new UserError(`${file}: the machine image's header is not valid JSON; expected ${EXPECTED}`);
  }
  if (header.format !== IMAGE_FORMAT) {
    throw new UserError(`${file}: a machine image of format version ${String(header.format)} (kmemu ${String(header.kmemu)}); this kmemu ${KMEMU_VERSION} reads format version ${IMAGE_FORMAT} only: make the image again`);
  }
  if (typeof header.bodyBytes !== 'number' || bytes.length - headEnd < header.bodyBytes) {
    throw new UserError(`${file}: the machine image is truncated (${bytes.length - headEnd} of its ${String(header.bodyBytes)} body bytes); expected ${EXPECTED}`);
  }
  if (bytes.length - headEnd > header.bodyBytes) throw new UserError(`${file}: the machine image has ${bytes.length - headEnd - header.bodyBytes} bytes after its end; expected ${EXPECTED}`);
  return { header, body: bytes.subarray(headEnd) };
}

/** The graph an image's body holds. */
export function decodeBody(file: string, body: Uint8Array): GraphImage {
  let raw: Buffer;
  try {
    raw = inflateSync(body);
  } catch {
    throw new UserError(`${file}: the machine image's body is damaged (it does not inflate); expected ${EXPECTED}`);
  }
  try {
    let at = 0;
    const take = (n: number) => {
      if (at + n > raw.length) throw new RangeError('short');
      const b = raw.subarray(at, at + n);
      at += n;
      return b;
    };
    const len = () => take(4).readUInt32LE(0);
    const tree = JSON.parse(take(len()).toString('utf8')) as unknown;
    const n = len();
    const blobs: Uint8Array[] = [];
    for (let i = 0; i < n; i++) blobs.push(take(len()));
    if (at !== raw.length) throw new RangeError('long');
    return { tree, blobs };
  } catch {
    throw new UserError(`${file}: the machine image's body is damaged (its blocks do not add up); expected ${EXPECTED}`);
  }
}

/** Boots a machine and writes it to `file` as a boot image. */
export function saveBootImage(file: string, config: MachineConfig, machineGiven: string, tunables: Tunables): { machine: Machine; kernel: Kernel } {
  const m = new Machine(config);
  const k = boot(m, tunables);
  writeImage(file, { kind: 'boot', machineGiven, machine: m.config, tunables }, captureMachine(m, k));
  return { machine: m, kernel: k };
}

/** A boot image's machine and kernel, and its header. */
export function loadBootImage(file: string): { header: ImageHeader; machine: Machine; kernel: Kernel } {
  const { header, body } = readImageFile(file);
  if (header.kind !== 'boot') throw new UserError(`${file}: a replay checkpoint, not a boot image; resume it with kmemu replay TRACE --resume DIR`);
  return { header, ...restoreMachine(header, decodeBody(file, body), file) };
}

// Replay checkpoints. The driver (traces/replay.ts) takes one only at a quiescent point: after
// a CPU has finished an event (userret included), when every other CPU has finished its program
// or is suspended at the start of its next event (taken off its queue, at the yield of
// cpu.checkpoint() before it runs) — no CPU inside kernel code or asleep, so every coroutine
// can be rebuilt from plain data. `--checkpoint-every N`: at the first such point after each N
// events have completed. Taking one is a pause of the kind machine.resume's `proceed` makes
// invisible, so checkpoints never change a result.

/** How a replay checkpoints, and the checkpoint it resumes from. */
export interface ReplayCheckpointing {
  /** Events between checkpoints. */
  every: number;
  /** Writes a checkpoint of the machine and the driver's state, `events` events completed. */
  save(m: Machine, k: Kernel, driver: object, events: number): void;
  /** A replay checkpoint to resume from (`file` for messages). */
  from?: { file: string; header: ImageHeader; graph: GraphImage };
}

/** The checkpoint part of the driver's state (it is captured with the rest). */
export interface CheckpointState {
  /** Per CPU: the key of the event it took and has not started (suspended at its start), -1 none. */
  pending: Float64Array;
  /** Events completed, all CPUs. */
  completed: number;
  /** The count at which the next checkpoint is due. */
  next: number;
  every: number;
  /** The CPU that took the checkpoint (it goes on first on resume). */
  cpu: number;
}

export function newCheckpointState(ncpus: number, every: number): CheckpointState {
  if (!Number.isSafeInteger(every) || every < 1) throw new UserError(`replay: checkpoint every: expected a number of events of 1 or more, got ${every}`);
  return { pending: new Float64Array(ncpus).fill(-1), completed: 0, next: every, every, cpu: -1 };
}

/** After `cpu` completed an event: whether a checkpoint is due and the machine is quiescent. */
export function checkpointDue(s: CheckpointState, m: Machine, cpu: number): boolean {
  if (++s.completed < s.next) return false;
  const cpus = m.cpus;
  for (let c = 0; c < cpus.length; c++) {
    if (c !== cpu && cpus[c]!.status !== CPU_DONE && s.pending[c]! < 0) return false;
  }
  s.next = (Math.floor(s.completed / s.every) + 1) * s.every;
  return true;
}

/**
 * `source` without its first `n` events (a resumed replay has queued them already); `eof`: the
 * replay had read all, so the source is read to its end now (its sha256 is then known).
 */
export async function skipEvents(source: EventSource, n: number, eof: boolean): Promise<EventSource> {
  let left = n;
  if (eof) {
    while ((await source.next()) !== null);
    return source;
  }
  const out: EventSource = {
    async next() {
      for (;;) {
        const batch = await source.next();
        if (batch === null || left === 0) return batch;
        if (batch.length <= left) {
          left -= batch.length;
          continue;
        }
        const rest = batch.slice(left);
        left = 0;
        return rest;
      }
    },
    get sha256() {
      return source.sha256 ?? null;
    },
  };
  if (source.name !== undefined) Object.defineProperty(out, 'name', { value: source.name });
  return out;
}

/** What identifies a checkpointed replay: its trace and its options (a resume must give the same). */
export interface CheckpointRun {
  trace: { name: string; bytes: number; sha256: string };
  /** The replay options that shape the run, as JSON values. */
  options: Record<string, unknown>;
  /** Events between checkpoints. */
  every: number;
}

/** The identity of a trace file: its base name, size and sha256. */
export async function traceIdentity(file: string): Promise<CheckpointRun['trace']> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    throw new UserError(`${file}: cannot read the trace: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return { name: basename(file), bytes, sha256: hash.digest('hex') };
}

const CHECKPOINT_FILE = /^replay-(\d{12})\.kmemu-ckpt$/;

/** The checkpoint files in `dir`, newest (most events) first. */
export function checkpointFiles(dir: string): { file: string; events: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new UserError(`${dir}: cannot read the checkpoint directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return names
    .map((n) => ({ n, m: CHECKPOINT_FILE.exec(n) }))
    .filter((x) => x.m !== null)
    .map((x) => ({ file: join(dir, x.n), events: Number(x.m![1]) }))
    .sort((a, b) => b.events - a.events);
}

/** How many checkpoint files a directory keeps: the newest, and the one before it. */
const KEEP = 2;

/**
 * Checkpoints of a replay to `dir` every `run.every` events: each a file
 * replay-EVENTS.kmemu-ckpt written complete or not at all; older ones than the newest two are
 * removed once a new one is complete.
 */
export function checkpointWriter(dir: string, run: CheckpointRun, machineGiven: string, tunables: Tunables): (m: Machine, k: Kernel, driver: object, events: number) => void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UserError(`${dir}: cannot make the checkpoint directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return (m, k, driver, events) => {
    const file = join(dir, `replay-${String(events).padStart(12, '0')}.kmemu-ckpt`);
    writeImage(file, { kind: 'replay', machineGiven, machine: m.config, tunables, replay: { run, events } }, captureMachine(m, k, driver));
    for (const old of checkpointFiles(dir).slice(KEEP)) rmSync(old.file, { force: true });
  };
}

/** The options of `run` that differ from `given`'s, as NAME=VALUE of the checkpoint's. */
function differences(saved: Record<string, unknown>, given: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(given)])];
  return keys.filter((key) => JSON.stringify(saved[key]) !== JSON.stringify(given[key])).map((key) => `${key} ${JSON.stringify(saved[key]) ?? 'unset'} (given: ${JSON.stringify(given[key]) ?? 'unset'})`);
}

/**
 * The newest checkpoint in `dir`, checked against the replay asked for: the same trace (size
 * and sha256) and options, or a UserError naming what differs.
 */
export function resumeCheckpoint(dir: string, run: CheckpointRun): { file: string; header: ImageHeader; graph: GraphImage; run: CheckpointRun; events: number } {
  const newest = checkpointFiles(dir)[0];
  if (newest === undefined) throw new UserError(`${dir}: no checkpoint to resume from (expected replay-NNNNNNNNNNNN.kmemu-ckpt files, written by kmemu replay --checkpoint-every N --checkpoint ${dir})`);
  const { file } = newest;
  const { header, body } = readImageFile(file);
  if (header.kind !== 'replay') throw new UserError(`${file}: a boot image, not a replay checkpoint; start from it with --from`);
  const saved = header.replay as { run: CheckpointRun; events: number };
  if (saved.run.trace.sha256 !== run.trace.sha256 || saved.run.trace.bytes !== run.trace.bytes) {
    throw new UserError(`${file}: the checkpoint is of trace ${saved.run.trace.name} (${saved.run.trace.bytes} bytes, sha256 ${saved.run.trace.sha256.slice(0, 12)}…), not of ${run.trace.name} (${run.trace.bytes} bytes, sha256 ${run.trace.sha256.slice(0, 12)}…)`);
  }
  const diff = differences(saved.run.options, run.options);
  if (diff.length > 0) throw new UserError(`${file}: the checkpoint is of a replay with other options: ${diff.join(', ')}; give the options it was started with`);
  const graph = decodeBody(file, body);
  return { file, header, graph, run: saved.run, events: saved.events };
}
