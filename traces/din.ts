// Dinero IV din address traces for the rest of kmemu: the parser and reader of din-core.ts
// with bad input reported as UserError, read on this thread (readDin) or parsed by a worker
// thread while this one runs the batches (readDinPipelined, din-pipeline.ts).

import { UserError } from '../emu/index-lite.js';
import { DinParserCore, feedDin } from './din-core.js';
import type { DinBatchHandler, DinErrorFactory, DinReadOptions, DinReadResult } from './din-core.js';

export { DinBatch, isGzip, DIN_READ, DIN_WRITE, DIN_IFETCH, DIN_MISC, DIN_COPYBACK, DIN_INVALIDATE } from './din-core.js';
export type { DinBatchHandler, DinReadOptions, DinReadResult } from './din-core.js';

const userError: DinErrorFactory = (message) => new UserError(message);

/**
 * Parses din text pushed in chunks of any size. Batches are handed to `onBatch` when full and
 * at end(); the handler must consume a batch before returning, as it is reused. Malformed
 * lines throw a UserError naming the input, the line and the field.
 */
export class DinParser extends DinParserCore {
  constructor(name: string, onBatch: DinBatchHandler, batchCapacity?: number) {
    super(name, onBatch, batchCapacity, userError);
  }
}

/**
 * Reads a din trace file (`-` for stdin), gzip-compressed or not (decided by its first two
 * bytes), delivering references in batches. Memory use does not grow with the trace.
 */
export async function readDin(path: string, onBatch: DinBatchHandler, options: DinReadOptions = {}): Promise<DinReadResult> {
  const parser = new DinParser(path === '-' ? '<stdin>' : path, onBatch, options.batchCapacity);
  const { bytes, sha256 } = await feedDin(path, parser, options);
  return { references: parser.references, lines: parser.lines, bytes, sha256 };
}
