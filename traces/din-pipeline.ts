// Reads a din trace on two threads: a worker (din-worker.ts) parses the file into a ring of
// batches (din-ring.ts) while this thread runs them, so parsing and the caller's work overlap.
// The batches, and so every result, are the same as readDin's; only their boundaries differ.
// Bad input is reported as readDin reports it (a UserError naming file and line), after the
// batches parsed before it. stdin, and a worker script that is not there (running from the
// TypeScript sources), fall back to readDin.

import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../emu/index-lite.js';
import type { DinBatchHandler, DinReadOptions, DinReadResult } from './din-core.js';
import { readDin } from './din.js';
import { DinRing, RING_ABORT, RING_CONSUMED, RING_DONE, RING_EVENTS, RING_PRODUCED, SLOT_BYTES, SLOT_COUNT, TOTAL_BYTES, TOTAL_LINES, TOTAL_REFERENCES, TOTAL_SHA256, createRing, getSha256 } from './din-ring.js';
import type { DinWorkerFailure } from './din-worker.js';

export interface DinPipelineOptions extends DinReadOptions {
  /** Batches in the ring. */
  slots?: number;
  /** The worker's script: din-worker.js next to this module by default. */
  workerUrl?: URL;
}

// Atomics.waitAsync is ES2024 (in Node since 16), past this project's ES2022 lib.
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number): WaitAsyncResult }).waitAsync;

/**
 * Reads the din trace at `path` like readDin, parsing on a worker thread while `onBatch` runs
 * here. The worker's memory is the ring (slots × batchCapacity references), whatever the trace.
 */
export async function readDinPipelined(path: string, onBatch: DinBatchHandler, options: DinPipelineOptions = {}): Promise<DinReadResult> {
  const workerUrl = options.workerUrl ?? new URL('./din-worker.js', import.meta.url);
  if (path === '-' || !fs.existsSync(fileURLToPath(workerUrl))) return readDin(path, onBatch, options);
  const init = createRing(path, options.chunkSize ?? 1 << 20, options.batchCapacity ?? 1 << 15, options.slots ?? 8, options.hash !== false);
  const ring = new DinRing(init);
  const { control, figures, batches, slots } = ring;
  const onProgress = options.onProgress;

  let failure: Error | null = null;
  let exited = false;
  let wake: (() => void) | null = null;
  const rouse = (): void => {
    const w = wake;
    wake = null;
    if (w !== null) w();
  };
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(workerUrl, { workerData: init });
  worker.on('message', (m: DinWorkerFailure) => {
    failure ??= m.input ? new UserError(m.message) : new Error(m.message);
    rouse();
  });
  worker.on('error', (err: Error) => {
    failure ??= err;
    rouse();
  });
  worker.on('exit', () => {
    exited = true;
    rouse();
  });

  let consumed = 0;
  let done = false;
  try {
    for (;;) {
      const events = Atomics.load(control, RING_EVENTS);
      const produced = Atomics.load(control, RING_PRODUCED);
      while (consumed < produced) {
        const slot = consumed % slots;
        const batch = batches[slot]!;
        const at = ring.slotFigures(slot);
        batch.count = figures[at + SLOT_COUNT]!;
        onBatch(batch);
        if (onProgress !== undefined) onProgress(figures[at + SLOT_BYTES]!);
        consumed++;
        Atomics.store(control, RING_CONSUMED, consumed);
        Atomics.notify(control, RING_CONSUMED);
      }
      if (Atomics.load(control, RING_DONE) === 1) {
        if (consumed === Atomics.load(control, RING_PRODUCED)) break;
        continue;
      }
      if (failure !== null) throw failure;
      if (exited) throw new Error(`${path}: the din parsing worker stopped without finishing`);
      const waited = waitAsync(control, RING_EVENTS, events);
      if (waited.async) {
        await Promise.race([waited.value, new Promise<void>((resolve) => (wake = resolve))]);
        wake = null;
      }
    }
    done = true;
  } finally {
    if (!done) {
      Atomics.store(control, RING_ABORT, 1);
      Atomics.add(control, RING_CONSUMED, 1);
      Atomics.notify(control, RING_CONSUMED);
      void worker.terminate();
    }
  }
  const totals = ring.totals;
  if (onProgress !== undefined) onProgress(figures[totals + TOTAL_BYTES]!);
  return {
    references: figures[totals + TOTAL_REFERENCES]!,
    lines: figures[totals + TOTAL_LINES]!,
    bytes: figures[totals + TOTAL_BYTES]!,
    sha256: getSha256(figures, totals + TOTAL_SHA256),
  };
}
