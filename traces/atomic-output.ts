// Output files that are complete or absent: written to a temporary file in the same directory
// and renamed into place on commit. While one is open, SIGINT and SIGTERM remove its temporary
// file and exit with 128 + the signal number (130, 143), as a shell does; so does process exit
// without a commit.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../emu/index.js';

export interface AtomicOutput {
  /** The file that appears on commit. */
  readonly path: string;
  /** The temporary file being written. */
  readonly tmpPath: string;
  /** Its descriptor, open for writing; -1 after commit or abort. */
  readonly fd: number;
  /** Closes the temporary file and renames it to `path`. */
  commit(): void;
  /** Closes and removes the temporary file; `path` is left as it was. Safe to call twice. */
  abort(): void;
}

const open = new Set<Output>();
let serial = 0;

const SIGNALS = { SIGINT: 2, SIGTERM: 15 } as const;

function onSignal(signal: keyof typeof SIGNALS): void {
  for (const o of [...open]) o.abort();
  process.exit(128 + SIGNALS[signal]);
}

function onExit(): void {
  for (const o of [...open]) o.abort();
}

function retain(o: Output): void {
  if (open.size === 0) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
  }
  open.add(o);
}

function release(o: Output): void {
  if (!open.delete(o) || open.size > 0) return;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', onExit);
}

function cannotWrite(file: string, err: unknown): UserError {
  return new UserError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
}

class Output implements AtomicOutput {
  fd: number;
  readonly tmpPath: string;

  constructor(readonly path: string) {
    this.tmpPath = tmpName(path);
    try {
      this.fd = fs.openSync(this.tmpPath, 'wx', 0o644);
    } catch (err) {
      throw cannotWrite(path, err);
    }
    retain(this);
  }

  commit(): void {
    if (this.fd < 0) throw new Error(`atomic output ${this.path} committed after it was closed`);
    try {
      fs.closeSync(this.fd);
      this.fd = -1;
      fs.renameSync(this.tmpPath, this.path);
    } catch (err) {
      this.abort();
      throw cannotWrite(this.path, err);
    }
    release(this);
  }

  abort(): void {
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = -1;
    }
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

/** Opens `file` for writing through a temporary file (see the top of this file). */
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
    throw cannotWrite(file, err);
  }
  o.commit();
}

/** Writes all of `data` to `fd` (writeSync may write less than asked). */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) done += fs.writeSync(fd, data, done, data.length - done);
}

/** The number of atomic outputs open now (tests). */
export function openAtomicOutputs(): number {
  return open.size;
}
