// Traces: formats, readers and generators; the one public surface of traces/.
export { DinParser, DinBatch, readDin, isGzip, DIN_READ, DIN_WRITE, DIN_IFETCH, DIN_MISC, DIN_COPYBACK, DIN_INVALIDATE } from './din.js';
export type { DinBatchHandler, DinReadOptions, DinReadResult } from './din.js';
export { readDinPipelined } from './din-pipeline.js';
export type { DinPipelineOptions } from './din-pipeline.js';
export * from './format.js';
export { replay, OpTable } from './replay.js';
export type { EventSource, ReplayOptions, AllocatorName, ReplayTotals } from './replay.js';
export type { ReplayReport, PathStats, RegionStats } from './report.js';
export { VmZoneAllocator } from './allocators.js';
export type { ReplayAllocator, AllocatorOptions } from './allocators.js';
export { Histogram } from './histogram.js';
export { TraceReader, TraceWriter, LineInput, SKIP_REASONS } from './trace-io.js';
export type { TraceReaderOptions, TraceWriterOptions, LineInputOptions } from './trace-io.js';
export { openAtomic, writeFileAtomic } from './atomic-output.js';
export type { AtomicOutput } from './atomic-output.js';
export { generate, generatedHeader, generatedSource, resolveGenOptions, optionFlag, workloads, workloadAliases, KERNEL_MIX, OP_CYCLES } from './gen.js';
export type { GenOptions, GenApi, WorkloadInfo } from './gen.js';
