// Traces: formats, readers and generators; the one public surface of traces/.
export { DinParser, DinBatch, readDin, isGzip, DIN_READ, DIN_WRITE, DIN_IFETCH, DIN_MISC, DIN_COPYBACK, DIN_INVALIDATE } from './din.js';
export type { DinBatchHandler, DinReadOptions, DinReadResult } from './din.js';
export { readDinPipelined } from './din-pipeline.js';
export type { DinPipelineOptions } from './din-pipeline.js';
export * from './format.js';
export { replay, allocatorRun, OpTable } from './replay.js';
export type { EventSource, ReplayControl, ReplayOptions, AllocatorName, ReplayTotals, VmemTotals } from './replay.js';
export { REPORT_SCHEMA, replayReportSchema, pathStatsSchema, regionStatsSchema, vmemPathSchema } from './report.js';
export type { ReplayReport, PathStats, RegionStats, VmemPathStats } from './report.js';
export {
  KMEMU_VERSION, kmemuVersionSchema, inputRunSchema, machineRunSchema, allocatorOptionsSchema, allocatorRunSchema, replayRunSchema, compareRunSchema,
  importRunSchema, traceStatsRunSchema, machineGiven, machineRun, inputName,
} from './run.js';
export type { InputRun, MachineRun, AllocatorRun, ReplayRun, CompareRun, ImportRun, TraceStatsRun } from './run.js';
export { kernelVmstat, vmstatSchema, vmZoneRowSchema, vmstatZRowSchema, vmstatMRowSchema } from './vmstat.js';
export type { Vmstat } from './vmstat.js';
export { netstatMSchema, netstatMZoneSchema } from './netstat.js';
export { VmZoneAllocator } from './allocators.js';
export type { ReplayAllocator, AllocatorOptions } from './allocators.js';
export { Histogram } from './histogram.js';
export { TraceReader, TraceWriter, LineInput, SKIP_REASONS } from './trace-io.js';
export type { TraceReaderOptions, TraceWriterOptions, LineInputOptions } from './trace-io.js';
export { openAtomic, writeFileAtomic, OutputError, CLEANUP_SIGNALS } from './atomic-output.js';
export type { AtomicOutput } from './atomic-output.js';
export { generate, generatedHeader, generatedSource, generatedVersion, resolveGenOptions, optionFlag, workloads, workloadAliases, KERNEL_MIX, KVA_MIX, OP_CYCLES } from './gen.js';
export type { GenOptions, GenApi, WorkloadInfo } from './gen.js';
export { TraceStats } from './trace-stats.js';
export type { TraceStatsSummary, TraceStatsZone, TraceStatsArena, TraceStatsMbufs, TraceStatsCpu, TraceStatsSizeBucket } from './trace-stats.js';
export { importLinuxKmem, LINUX_IMPORT_SCHEMA, MAX_THINK_NS, ZERO_SIZE_AS } from './import-linux.js';
export type { LinuxImportOptions, LinuxImportSummary } from './import-linux.js';
export { linuxImportSummarySchema, traceStatsDocSchema, traceStatsSummaryShape, LINUX_IMPORT_SCHEMA_ID, TRACE_STATS_SCHEMA_ID } from './trace-schemas.js';
export {
  IMAGE_FORMAT, IMAGE_MAGIC, checkpointFiles, checkpointWriter, resumeCheckpoint, traceIdentity, captureMachine, restoreMachine, encodeImage, writeImage, readImageFile, parseImage, decodeBody, saveBootImage, loadBootImage,
} from './checkpoint.js';
export type { ImageHeader, CheckpointRun, ReplayCheckpointing } from './checkpoint.js';
