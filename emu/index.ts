// The machine: the one public surface of emu/.
export { UserError, UsageError } from './errors.js';
export { TagArray, replacementPolicies, hiWord } from './tags.js';
export type { ReplacementPolicy } from './tags.js';
export { parseSize, formatSize, validateMachineConfig, mergeConfig, machineConfigSchema } from './config.js';
export type { MachineConfig, MachineConfigInput, CacheLevelConfig } from './config.js';
export { machinePresets, presetConfig, loadMachineConfig, defaultPresetName } from './presets.js';
export { PhysMem, PAGE_SIZE, PAGE_SHIFT } from './physmem.js';
export { counterNames, K, NCOUNTERS, LABEL_CAP, CounterSnapshot, LabelRegistry, ROOT_LABEL, ROOT_CONTEXT } from './counters.js';
export type { CounterName } from './counters.js';
export { MemorySystem, LINE_SIZE, LINE_SHIFT, stateNames, COH_TRANSFER, COH_INVALIDATE } from './memsys.js';
export { Directory } from './directory.js';
export * from './paging.js';
export { Tlb, TLB_RW, TLB_US, TLB_NX, TLB_G, TLB_D } from './tlb.js';
export { Cpu, PageFault, YIELD_SYNC, YIELD_BLOCK, YIELD_INPUT, CPU_RUNNABLE, CPU_BLOCKED, CPU_DONE } from './cpu.js';
export type { Task, Program } from './cpu.js';
export { Machine, MachineDeadlock } from './machine.js';
export { snapshotGraph, restoreGraph, SnapshotError } from './snapshot.js';
export type { GraphImage, RestoreCatalog } from './snapshot.js';
export {
  CachesimHierarchy, CachesimLevel, CachesimTlb, DineroEngine, checkCacheLevelSpec,
  ACCESS_READ, ACCESS_WRITE, ACCESS_IFETCH, ACCESS_MISC, ACCESS_COPYBACK, ACCESS_INVALIDATE,
} from './cachesim.js';
export type { CacheLevelSpec, TlbSpec, CachesimConfig, CachesimStats, CachesimLevelStats, TlbStats } from './cachesim.js';
export { spinAcquire, spinTryAcquire, spinRelease } from './spinlock.js';
