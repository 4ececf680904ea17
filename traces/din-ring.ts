// The ring of batches between the din parsing worker (din-worker.ts) and the thread that runs
// them (din-pipeline.ts): `slots` DinBatches on one SharedArrayBuffer, filled in turn, with
// counters in an Int32Array and per-slot figures in a Float64Array.
//
// Ordering: the producer writes a batch and its figures, then publishes it by storing
// PRODUCED and bumping EVENTS; the consumer reads PRODUCED, runs the batches below it, then
// stores CONSUMED, which frees their slots. Each side waits on the other's word with the value
// it last read, so a store between its read and its wait is never missed.

import { DinBatch } from './din-core.js';

/** Batches published so far. */
export const RING_PRODUCED = 0;
/** Batches run so far; slot i % slots is free again once CONSUMED > i. */
export const RING_CONSUMED = 1;
/** Bumped on every batch published, at the end and on failure: what the consumer waits on. */
export const RING_EVENTS = 2;
/** 1 once the last batch is published and the totals are written. */
export const RING_DONE = 3;
/** 1 when the consumer gives up: the producer stops at its next batch. */
export const RING_ABORT = 4;
const RING_WORDS = 5;

/** Per-slot figures: references in the batch, then input bytes read when it was filled. */
export const SLOT_COUNT = 0;
export const SLOT_BYTES = 1;
const SLOT_FIGURES = 2;
/** Totals, after the slots' figures: lines, references, input bytes, then the input's sha256 as 8 32-bit words. */
export const TOTAL_LINES = 0;
export const TOTAL_REFERENCES = 1;
export const TOTAL_BYTES = 2;
export const TOTAL_SHA256 = 3;
const TOTAL_FIGURES = 11;

/** Stores a sha256 (64 hex digits, or "" for none) in `figures` at `at` as 8 words. */
export function putSha256(figures: Float64Array, at: number, hex: string): void {
  for (let i = 0; i < 8; i++) figures[at + i] = hex === '' ? -1 : parseInt(hex.slice(8 * i, 8 * i + 8), 16);
}

/** The sha256 putSha256 stored at `at`. */
export function getSha256(figures: Float64Array, at: number): string {
  if (figures[at]! < 0) return '';
  let hex = '';
  for (let i = 0; i < 8; i++) hex += figures[at + i]!.toString(16).padStart(8, '0');
  return hex;
}

/** What the worker is started with (its workerData): plain values and shared buffers only. */
export interface DinRingInit {
  /** The trace file. */
  path: string;
  chunkSize: number;
  capacity: number;
  slots: number;
  /** Hash the input (the totals' sha256). */
  hash: boolean;
  control: SharedArrayBuffer;
  figures: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export function createRing(path: string, chunkSize: number, capacity: number, slots: number, hash = true): DinRingInit {
  return {
    path,
    chunkSize,
    capacity,
    slots,
    hash,
    control: new SharedArrayBuffer(4 * RING_WORDS),
    figures: new SharedArrayBuffer(8 * (SLOT_FIGURES * slots + TOTAL_FIGURES)),
    data: new SharedArrayBuffer(slots * DinBatch.byteLength(capacity)),
  };
}

/** The views of a ring, the same on both threads. */
export class DinRing {
  readonly slots: number;
  readonly control: Int32Array;
  readonly figures: Float64Array;
  readonly batches: DinBatch[];
  /** Index in `figures` of the totals. */
  readonly totals: number;

  constructor(init: DinRingInit) {
    this.slots = init.slots;
    this.control = new Int32Array(init.control);
    this.figures = new Float64Array(init.figures);
    this.batches = [];
    for (let i = 0; i < init.slots; i++) this.batches.push(new DinBatch(init.capacity, init.data, i * DinBatch.byteLength(init.capacity)));
    this.totals = SLOT_FIGURES * init.slots;
  }

  /** Index in `figures` of slot `slot`'s figures. */
  slotFigures(slot: number): number {
    return SLOT_FIGURES * slot;
  }
}
