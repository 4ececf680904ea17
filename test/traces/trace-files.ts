// Trace-file fixtures for the format tests: a scratch directory, a trace written into it, and
// a whole trace read back (events copied, line numbers cleared) or the one error it ends in.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect } from 'vitest';
import { UserError } from '../../emu/index.js';
import { TraceReader, newEvent } from '../../traces/index.js';
import type { TraceEvent, TraceReaderOptions } from '../../traces/index.js';

export interface TraceFiles {
  /** A path in the scratch directory. */
  scratch(name: string): string;
  /** Writes `text` as the trace `name` in the scratch directory; returns its path. */
  traceFile(name: string, text: string): string;
  /** Every event of the trace at `file`, and its (closed) reader. */
  readAll(file: string, options?: TraceReaderOptions): Promise<{ events: TraceEvent[]; reader: TraceReader }>;
  /** The message of the UserError reading `text` ends in, its file name shown as T. */
  readError(text: string, options?: TraceReaderOptions): Promise<string>;
}

/** A scratch directory for one test file (removed after it), with the helpers above. */
export function traceFiles(prefix: string): TraceFiles {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const traceFile = (name: string, text: string): string => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const readAll = async (file: string, options: TraceReaderOptions = {}) => {
    const reader = await TraceReader.open(file, options);
    const events: TraceEvent[] = [];
    for (let batch = await reader.next(); batch !== null; batch = await reader.next()) {
      for (const e of batch) events.push({ ...e, flags: e.flags.slice(), line: 0 });
    }
    await reader.close();
    return { events, reader };
  };
  const readError = async (text: string, options: TraceReaderOptions = {}): Promise<string> => {
    const file = traceFile('bad.trace', text);
    try {
      await readAll(file, options);
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      return (err as Error).message.replace(file, 'T');
    }
    throw new Error('no error');
  };
  return { scratch: (name: string) => path.join(tmp, name), traceFile, readAll, readError };
}

/** An event with the given fields, the rest as newEvent() makes them. */
export function ev(fields: Partial<TraceEvent>): TraceEvent {
  return { ...newEvent(), ...fields };
}
