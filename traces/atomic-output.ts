// Output files that are complete or absent, without harming what the path names.
//
// `-` is standard output. A path is followed through its symbolic links (chains and relative
// links; a dangling link names the file to create), as write-file-atomic does, and then:
// - a regular file or nothing: written to a temporary file in the target's directory and
//   renamed over the target on commit; an existing file keeps its mode (and, for root, its
//   owner); the link itself stays a link.
// - a character or block device, a FIFO or a socket: opened O_WRONLY (no O_CREAT, no O_TRUNC)
//   and written directly; a rename would replace the device node (/dev/null) with a file.
// While a temporary file exists, every catchable signal whose default action ends the process
// removes it and exits with 128 + the signal number (129 HUP, 130 INT, 131 QUIT, 143 TERM), as
// a shell reports a process killed by it; so does process exit without a commit.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../emu/index.js';

export interface AtomicOutput {
  /** The path as given (`-` for standard output). */
  readonly path: string;
  /** The output in messages: the path, or "standard output". */
  readonly name: string;
  /** replace: a temporary file renamed over the target; direct: a device, FIFO or socket; stdout. */
  readonly kind: 'replace' | 'direct' | 'stdout';
  /** The temporary file being written ('' unless kind is replace). */
  readonly tmpPath: string;
  /** Its descriptor, open for writing; -1 after commit or abort. */
  readonly fd: number;
  /** Finishes the output: closes it and, for replace, renames the temporary file over the target. */
  commit(): void;
  /** Closes and removes the temporary file; `path` is left as it was. Safe to call twice. */
  abort(): void;
}

/** An output that could not be opened or written; `code` is the errno name (ENOSPC, EPIPE). */
export class OutputError extends UserError {
  constructor(
    readonly file: string,
    readonly code: string,
  ) {
    super(`cannot write ${file === '-' ? 'standard output' : file}: ${code}`);
    this.name = 'OutputError';
  }
}

/** The OutputError for `err` raised on `file`. */
export function outputError(file: string, err: unknown): OutputError {
  if (err instanceof OutputError) return err;
  return new OutputError(file, (err as NodeJS.ErrnoException).code ?? String(err));
}

const open = new Set<Output>();
let serial = 0;

// Default action "terminate" or "core" (signal(7)), minus those Node keeps for itself or that
// a JS listener cannot handle: SIGPIPE (Node ignores it; a write fails with EPIPE instead),
// SIGUSR1 (starts the inspector), SIGPROF (V8's profiler), SIGSEGV, SIGBUS, SIGFPE, SIGILL.
const SIGNAL_NAMES = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTRAP', 'SIGABRT', 'SIGUSR2', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT',
  'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGSYS',
] as const;
const signalNumbers = os.constants.signals as Readonly<Record<string, number | undefined>>;
export const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = SIGNAL_NAMES.filter((s) => signalNumbers[s] !== undefined);

function onSignal(signal: NodeJS.Signals): void {
  for (const o of [...open]) o.abort();
  process.exit(128 + (signalNumbers[signal] ?? 0));
}

function onExit(): void {
  for (const o of [...open]) o.abort();
}

function listen(on: boolean): void {
  for (const s of CLEANUP_SIGNALS) {
    if (on) process.on(s, onSignal);
    else process.off(s, onSignal);
  }
  if (on) process.on('exit', onExit);
  else process.off('exit', onExit);
}

function retain(o: Output): void {
  if (open.size === 0) listen(true);
  open.add(o);
}

function release(o: Output): void {
  if (!open.delete(o) || open.size > 0) return;
  listen(false);
}

/** Linux's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;

/** The file `file` names after its symbolic links, and its lstat (undefined when absent). */
function resolveTarget(file: string): { target: string; stat: fs.Stats | undefined } {
  let p = file;
  for (let hops = 0; ; hops++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { target: p, stat: undefined };
      throw outputError(file, err);
    }
    if (!st.isSymbolicLink()) return { target: p, stat: st };
    if (hops === MAX_SYMLINKS) throw new OutputError(file, 'ELOOP');
    p = path.resolve(path.dirname(p), fs.readlinkSync(p));
  }
}

/**
 * Opens a FIFO for writing. open(2) blocks until a reader opens the other end, and Node's
 * signal listeners cannot run meanwhile, so ours are off during the call: a signal then ends
 * the process by its default action (there is no temporary file of this output to remove).
 */
function openDirect(target: string, fifo: boolean): number {
  const listening = open.size > 0;
  if (fifo && listening) listen(false);
  try {
    return fs.openSync(target, fs.constants.O_WRONLY);
  } finally {
    if (fifo && listening) listen(true);
  }
}

class Output implements AtomicOutput {
  fd: number;
  readonly name: string;
  readonly kind: 'replace' | 'direct' | 'stdout';
  readonly tmpPath: string = '';
  private readonly target: string = '';

  constructor(readonly path: string) {
    this.name = path === '-' ? 'standard output' : path;
    if (path === '-') {
      this.kind = 'stdout';
      this.fd = 1;
      return;
    }
    const { target, stat } = resolveTarget(path);
    if (stat?.isDirectory() === true) throw new OutputError(path, 'EISDIR');
    if (stat !== undefined && !stat.isFile()) {
      this.kind = 'direct';
      try {
        this.fd = openDirect(target, stat.isFIFO());
      } catch (err) {
        throw outputError(path, err);
      }
      return;
    }
    this.kind = 'replace';
    this.target = target;
    this.tmpPath = tmpName(target);
    try {
      this.fd = fs.openSync(this.tmpPath, 'wx', stat === undefined ? 0o666 : 0o600);
    } catch (err) {
      throw outputError(path, err);
    }
    retain(this);
    if (stat === undefined) return;
    try {
      fs.fchmodSync(this.fd, stat.mode & 0o7777);
      if (process.getuid?.() === 0 && (stat.uid !== 0 || stat.gid !== 0)) fs.fchownSync(this.fd, stat.uid, stat.gid);
    } catch (err) {
      this.abort();
      throw outputError(path, err);
    }
  }

  commit(): void {
    if (this.fd < 0) throw new Error(`atomic output ${this.path} committed after it was closed`);
    if (this.kind === 'stdout') {
      this.fd = -1;
      return;
    }
    try {
      fs.closeSync(this.fd);
      this.fd = -1;
      if (this.kind === 'replace') fs.renameSync(this.tmpPath, this.target);
    } catch (err) {
      this.abort();
      throw outputError(this.path, err);
    }
    release(this);
  }

  abort(): void {
    if (this.fd >= 0 && this.kind !== 'stdout') {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    this.fd = -1;
    if (this.kind !== 'replace') return;
    try {
      fs.unlinkSync(this.tmpPath);
    } catch {
      // renamed already, or never created
    }
    release(this);
  }
}

function tmpName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.kmemu-tmp-${process.pid}-${serial++}`);
}

/** Opens `file` for writing (see the top of this file). */
export function openAtomic(file: string): AtomicOutput {
  return new Output(file);
}

/** Writes `text` to `file` complete or not at all. */
export function writeFileAtomic(file: string, text: string | Uint8Array): void {
  const o = openAtomic(file);
  try {
    writeAll(o.fd, typeof text === 'string' ? Buffer.from(text) : text);
  } catch (err) {
    o.abort();
    throw outputError(file, err);
  }
  o.commit();
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `data` to `fd` (writeSync may write less than asked). A descriptor shared with
 * a non-blocking stream (Node makes a pipe on stdout non-blocking) fails with EAGAIN while the
 * pipe is full: wait 1 ms and retry.
 */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) {
    try {
      done += fs.writeSync(fd, data, done, data.length - done);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/** The number of temporary files open now (tests). */
export function openAtomicOutputs(): number {
  return open.size;
}
