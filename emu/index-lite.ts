// The light part of emu/'s public surface: what commands that must start fast (kmemu cachesim)
// need, loadable without zod, the machine or its presets. Everything here is also exported by
// index.ts; layers above may import either.
export { UserError, UsageError } from './errors.js';
export { replacementPolicies } from './tags.js';
export type { ReplacementPolicy } from './tags.js';
export { parseSize, formatSize } from './size.js';
export {
  CachesimHierarchy, CachesimLevel, CachesimTlb, DineroEngine, checkCacheLevelSpec,
  ACCESS_READ, ACCESS_WRITE, ACCESS_IFETCH, ACCESS_MISC, ACCESS_COPYBACK, ACCESS_INVALIDATE,
} from './cachesim.js';
export type { CacheLevelSpec, TlbSpec, CachesimConfig, CachesimStats, CachesimLevelStats, TlbStats } from './cachesim.js';
