// The light part of traces/' public surface: what commands that must start fast (kmemu
// cachesim) need, loadable without zod, the kernel or the machine. Everything here is also
// exported by index.ts; tools/ may import either.
export { DinParser, DinBatch, readDin, isGzip, DIN_READ, DIN_WRITE, DIN_IFETCH, DIN_MISC, DIN_COPYBACK, DIN_INVALIDATE } from './din.js';
export type { DinBatchHandler, DinReadOptions, DinReadResult } from './din.js';
export { readDinPipelined } from './din-pipeline.js';
export type { DinPipelineOptions } from './din-pipeline.js';
export { KMEMU_VERSION, inputName } from './version.js';
