// A progress bar on stderr for commands that read a big input: shown only when stderr is a
// terminal and the total is known, so pipes, logs and tests never see it.

import cliProgress from 'cli-progress';

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
  unit?: 'bytes' | 'items';
  stream?: NodeJS.WriteStream;
}

export function startProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const total = options.total;
  if (stream.isTTY !== true || total === undefined || !(total > 0)) return NO_PROGRESS;
  const bytes = (options.unit ?? 'bytes') === 'bytes';
  const scale = bytes ? 2 ** 20 : 1;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${options.label} [{bar}] {percentage}% | {value}/{total}${bytes ? ' MiB' : ''} | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      formatValue: (v: number, _o: unknown, type: string) => (bytes && (type === 'value' || type === 'total') ? v.toFixed(1) : String(v)),
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total / scale, 0);
  return {
    update: (done: number) => bar.update(done / scale),
    stop: () => bar.stop(),
  };
}
