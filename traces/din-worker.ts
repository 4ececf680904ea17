// The din parsing worker of din-pipeline.ts: parses the trace file into the ring's batches,
// waiting for a free slot when the ring is full, and writes the totals at the end. Bad input
// is posted as { message, input: true } for the other thread to throw as a UserError.

import { parentPort, workerData } from 'node:worker_threads';
import { DinInputError, DinParserCore, feedDin } from './din-core.js';
import type { DinBatch } from './din-core.js';
import { DinRing, RING_ABORT, RING_CONSUMED, RING_DONE, RING_EVENTS, RING_PRODUCED, SLOT_BYTES, SLOT_COUNT, TOTAL_BYTES, TOTAL_LINES, TOTAL_REFERENCES, TOTAL_SHA256, putSha256 } from './din-ring.js';
import type { DinRingInit } from './din-ring.js';

/** Thrown out of the parser when the consumer has given up. */
class Aborted extends Error {}

export interface DinWorkerFailure {
  message: string;
  /** True for bad input (the message names it), false for a fault of kmemu. */
  input: boolean;
}

async function main(init: DinRingInit): Promise<void> {
  const ring = new DinRing(init);
  const { control, figures, batches, slots } = ring;
  let produced = 0;
  let bytesRead = 0;
  const publish = (batch: DinBatch): void => {
    const at = ring.slotFigures(produced % slots);
    figures[at + SLOT_COUNT] = batch.count;
    figures[at + SLOT_BYTES] = bytesRead;
    produced++;
    Atomics.store(control, RING_PRODUCED, produced);
    Atomics.add(control, RING_EVENTS, 1);
    Atomics.notify(control, RING_EVENTS);
    for (;;) {
      const consumed = Atomics.load(control, RING_CONSUMED);
      if (Atomics.load(control, RING_ABORT) === 1) throw new Aborted();
      if (produced - consumed < slots) break;
      Atomics.wait(control, RING_CONSUMED, consumed);
    }
    parser.setBatch(batches[produced % slots]!);
  };
  const parser = new DinParserCore(init.path, publish, 1);
  parser.setBatch(batches[0]!);
  try {
    const { bytes, sha256 } = await feedDin(init.path, parser, { chunkSize: init.chunkSize, hash: init.hash, onProgress: (b) => (bytesRead = b) });
    putSha256(figures, ring.totals + TOTAL_SHA256, sha256);
    figures[ring.totals + TOTAL_LINES] = parser.lines;
    figures[ring.totals + TOTAL_REFERENCES] = parser.references;
    figures[ring.totals + TOTAL_BYTES] = bytes;
    Atomics.store(control, RING_DONE, 1);
  } catch (err) {
    if (!(err instanceof Aborted)) {
      const failure: DinWorkerFailure = { message: err instanceof Error ? err.message : String(err), input: err instanceof DinInputError };
      parentPort!.postMessage(failure);
    }
  } finally {
    Atomics.add(control, RING_EVENTS, 1);
    Atomics.notify(control, RING_EVENTS);
  }
}

void main(workerData as DinRingInit);
