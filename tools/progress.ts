// A progress bar on stderr for commands that read a big input: shown only when stderr is a
// terminal and the total is known, so pipes, logs and tests never see it. The total is in the
// unit the work advances by: events for a replay (counted before it starts), items for a
// generator, bytes for readers whose work is proportional to the bytes read.

import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type cliProgressModule from 'cli-progress';
import { LineInput } from '../traces/index.js';

/** cli-progress, loaded when a bar is first drawn: most runs (a pipe, a log) draw none. */
let cliProgress: typeof cliProgressModule | undefined;

export interface Progress {
  /** Sets the amount done so far, in the unit of the total. */
  update(done: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { update: () => undefined, stop: () => undefined };

export interface ProgressOptions {
  /** Shown before the bar. */
  label: string;
  /** The total, or undefined when unknown (no bar then). */
  total: number | undefined;
  /** Units of `total`: bytes are shown as MiB. */
  unit?: 'bytes' | 'items' | 'events';
  stream?: NodeJS.WriteStream;
}

/** True when a bar would be drawn on `stream` (callers skip the work of finding a total otherwise). */
export function progressShown(stream: NodeJS.WriteStream = process.stderr): boolean {
  return stream.isTTY === true;
}

/**
 * Seconds left at the rate so far as "1h02m", "3m05s", "12s"; "-" until there is a rate to go by
 * (nothing done yet, or under half a second of it), and "0s" once done.
 */
export function formatEta(done: number, total: number, elapsedMs: number): string {
  if (done >= total) return '0s';
  if (!(done > 0) || !(elapsedMs >= 500)) return '-';
  const s = Math.ceil(((total - done) * elapsedMs) / done / 1000);
  if (!Number.isFinite(s)) return '-';
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

export function startProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const total = options.total;
  if (!progressShown(stream) || total === undefined || !(total > 0)) return NO_PROGRESS;
  const unit = options.unit ?? 'bytes';
  const bytes = unit === 'bytes';
  const scale = bytes ? 2 ** 20 : 1;
  cliProgress ??= createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${options.label} [{bar}] {percentage}% | {value}/{total}${bytes ? ' MiB' : ` ${unit}`} | ETA {left}`,
      // A hidden cursor would stay hidden if a signal ends the process mid-bar.
      hideCursor: false,
      clearOnComplete: true,
      formatValue: (v: number, _o: unknown, type: string) => (bytes && (type === 'value' || type === 'total') ? v.toFixed(1) : String(v)),
    },
    cliProgress.Presets.shades_classic,
  );
  const start = performance.now();
  bar.start(total / scale, 0, { left: '-' });
  return {
    update: (done: number) => bar.update(Math.min(done, total) / scale, { left: formatEta(done, total, performance.now() - start) }),
    stop: () => bar.stop(),
  };
}

/**
 * The events in the kmemu trace `file` (lines after the first that are neither blank nor `#`
 * comments), read without parsing them: the total of a replay's bar. Undefined for stdin.
 */
export async function countTraceEvents(file: string): Promise<number | undefined> {
  if (file === '-') return undefined;
  const input = await LineInput.open(file);
  let lines = 0;
  let events = 0;
  try {
    for (let block = await input.nextBlock(); block !== null; block = await input.nextBlock()) {
      for (let pos = 0; pos < block.length; ) {
        const nl = block.indexOf('\n', pos);
        let c = pos;
        while (c < nl && (block.charCodeAt(c) === 32 || block.charCodeAt(c) === 9 || block.charCodeAt(c) === 13)) c++;
        if (lines++ > 0 && c < nl && block.charCodeAt(c) !== 35) events++;
        pos = nl + 1;
      }
    }
  } finally {
    input.close();
  }
  return events;
}
