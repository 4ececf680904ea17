// kmemu as a library: `import { Machine, boot, replay } from 'kmemu'`. The entry re-exports
// each layer's public surface (its index.ts) that a program needs: the machine (emu/), the
// kernel (kernel/), traces and replay (traces/), and the documents the CLI prints (tools/).
// README.md, "As a library", shows a whole program.

export {
  Machine, MachineDeadlock, UserError, machinePresets, presetConfig, loadMachineConfig, defaultPresetName, validateMachineConfig,
  machineConfigSchema, CounterSnapshot,
} from './emu/index.js';
export type { MachineConfig, MachineConfigInput, CacheLevelConfig, CounterName } from './emu/index.js';

export { boot, Kernel, KernelPanic, sysctl, sysctlSet, sysctls } from './kernel/index.js';
export type { SysctlEntry } from './kernel/index.js';

export {
  replay, allocatorRun, TraceReader, TraceWriter, TraceStats, importLinuxKmem, generate, workloads, kernelVmstat,
  KMEMU_VERSION, REPORT_SCHEMA, LINUX_IMPORT_SCHEMA, replayReportSchema, pathStatsSchema, regionStatsSchema, replayRunSchema,
  compareRunSchema, vmstatSchema, linuxImportSummarySchema, traceStatsDocSchema,
} from './traces/index.js';
export type {
  ReplayOptions, ReplayReport, PathStats, RegionStats, ReplayRun, CompareRun, AllocatorRun, MachineRun, InputRun, ImportRun,
  TraceStatsRun, Vmstat, EventSource, AllocatorName, TraceEvent, TraceReaderOptions, TraceWriterOptions, GenOptions,
  LinuxImportOptions, LinuxImportSummary, TraceStatsSummary,
} from './traces/index.js';

export { COMPARE_SCHEMA, compareDoc, compareDocSchema, formatCompare, formatReport, documentSchemas, generateSchemas } from './tools/index.js';
export type { CompareDoc } from './tools/index.js';
