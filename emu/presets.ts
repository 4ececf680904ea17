// Named machine presets. Every latency is an input, in cycles, load-to-use (see config.ts);
// each figure cites where it comes from. The coherence latencies are components (a transfer,
// its probe leg, an invalidation round); line handoff times, contended-atomic and lock
// throughput and shootdown costs are not here: they come out of the model.

import { readFileSync, statSync } from 'node:fs';
import { UserError } from './errors.js';
import { parseJsonText } from './json.js';
import { mergeConfig, validateMachineConfig, type MachineConfig, type MachineConfigInput } from './config.js';

/**
 * Tiny caches and TLBs, round latencies: capacity, conflict and coherence effects show up in
 * runs of a few hundred accesses, and the arithmetic fits on a whiteboard.
 */
const coursework: MachineConfigInput = {
  name: 'coursework',
  cpus: 4,
  clockGHz: 1,
  seed: 1,
  syncQuantum: 0,
  memory: { size: '256m', dramLatency: 100 },
  l1d: { size: '1k', ways: 2, line: 64, hitLatency: 2, replacement: 'lru' },
  l2: { size: '4k', ways: 4, line: 64, hitLatency: 10, replacement: 'lru' },
  llc: { size: '16k', ways: 8, line: 64, hitLatency: 30, replacement: 'lru', inclusive: true },
  coherence: {
    transferLatency: 40,
    invalidateLatency: 30,
    probeLatency: 20,
    farTransferLatency: 80,
    farInvalidateLatency: 60,
    farProbeLatency: 40,
    coresPerComplex: 4,
  },
  tlb: {
    l1Small: { entries: 8, ways: 2 },
    l1Large: { entries: 4, ways: 4 },
    l2: { entries: 32, ways: 4, hitLatency: 5 },
    walkLatency: 2,
    invlpgLatency: 5,
  },
  // In order and blocking (robSize 1), one instruction a cycle: every access costs its latency.
  // No hardware prefetch (the default): every miss is the program's own. Fast strings move 8
  // bytes a cycle with one miss at a time, as a blocking core's stores would.
  cpu: { issueWidth: 1, loadPorts: 1, storePorts: 1, mlp: 1, robSize: 1, lockedOpLatency: 10, pauseLatency: 10, mfenceLatency: 10, ipiLatency: 200, storeBytesPerCycle: 8, fillBuffers: 1 },
};

/**
 * This kind of machine: a 2-vCPU VM on an AMD Zen 5 EPYC (family 1Ah), its core at 2.7–3.6
 * GHz (boost), fitted to `kmemu calibrate --host` on it (tools/calib/calib.c: pinned rdtsc loops,
 * medians of four runs on 2026-12-01; the README's "Calibration" table). The latencies are
 * components: each figure calibrate measures comes out of the model, within 15 % of the host's
 * median, as test/tools/calibrate.test.ts pins. The host moves between runs (DRAM 800–990,
 * LLC 55–61, walks 164–188 cycles) and with the hypervisor's placement of the two vCPUs.
 */
const amd64Host: MachineConfigInput = {
  name: 'amd64-host',
  cpus: 2,
  clockGHz: 3.6,
  seed: 1,
  syncQuantum: 0, // strict order: the README's "Sync quantum" gives run-ahead's measured error
  // DRAM: a random chase over 256 MiB, 587–991 measured, median 840. A whole-line write of a line no cache
  // holds waits for the memory controller's grant, not for DRAM: fitted to page.zero (rep
  // stosb over pages in no cache, 546–600 per 4 KiB page measured, with 64 fill buffers).
  memory: { size: '4g', dramLatency: 840, ownershipLatency: 575 },
  l1d: { size: '48k', ways: 12, line: 64, hitLatency: 4, replacement: 'lru' }, // 3.8 measured
  l2: { size: '1m', ways: 16, line: 64, hitLatency: 16, replacement: 'lru' }, // 15.2–16.7
  // Zen's L3 is filled by L2 victims and does not back-invalidate: non-inclusive. 50–61.
  llc: { size: '32m', ways: 16, line: 64, hitLatency: 55, replacement: 'lru', inclusive: false },
  // Components fitted by a grid search (then finer steps) so that the composites come out of
  // the model:
  //   far (the two vCPUs on different CCDs, as the host was on 2026-12-01, one-way handoff
  //   probes 700–860): handoff 706–796 measured, model 767; with pause 685–773, model 785;
  //   contended lock xadd 38.5–39.7 aggregate, model 37.4; TTAS spinlock, 2 CPUs, 41–69
  //   (median ~58), model 55.8.
  //   near (one CCX; measured in an earlier placement: handoff 141 min, ~167 median,
  //   contended xadd ~33, TTAS ~54): model 182.5, 33.5 and 51.0. The near handoff with pause
  //   was measured at ~93; the model gives 199 (a waiter notices half a 66-cycle pause turn
  //   late, then fetches the line): not fitted, and not measurable while the host is far.
  // An invalidation round is a probe out and acks back, longer than a transfer's probe leg.
  coherence: {
    transferLatency: 90,
    invalidateLatency: 117,
    probeLatency: 59,
    farTransferLatency: 440,
    farInvalidateLatency: 484,
    farProbeLatency: 295,
    coresPerComplex: 8, // a Zen 5 CCX: 8 cores sharing one L3
  },

  tlb: {
    // Zen 5's L1 DTLB is one 96-entry fully associative array for all page sizes; we model
    // it as two such arrays, one for 4K and one for 2M/1G translations.
    l1Small: { entries: 96, ways: 96 },
    l1Large: { entries: 96, ways: 96 },
    // AMD Zen 5 L2 DTLB: 4096 entries; 16-way is our choice (not published). 6.6–9.7 measured, median 9.7.
    l2: { entries: 4096, ways: 16, hitLatency: 9 },
    // An L2 TLB miss costs 164–188 cycles here: in a VM every guest walk is a two-dimensional
    // walk through the hypervisor's tables too. Fitted to tlb.walk (the guest's four loads are
    // modeled, the host's are in this figure).
    walkLatency: 150,
    invlpgLatency: 120, // not measured here; recent x86 cores take ~100–250
  },
  cpu: {
    issueWidth: 6, // ~5.7-5.9 independent adds per cycle measured here; Zen 5 has 6 integer ALUs
    loadPorts: 4, // Zen 5: 4 load pipes (AMD SOG, Family 1Ah)
    storePorts: 2, // Zen 5: 2 stores per cycle
    mlp: 24, // Zen 5 L1D miss buffers (not measured here)
    robSize: 448, // Zen 5 retire queue
    lockedOpLatency: 16, // 19.7–20.9 measured for an uncontended lock xadd, less the 4-cycle L1D hit
    pauseLatency: 62, // 61.3–63.6 measured
    // Not measured: the range published for recent AMD cores (AMD SOG, Family 19h/1Ah, "about
    // 11–18 cycles"); a spin loop's exit pays it after the load that saw the new value.
    mispredictPenalty: 13,
    // Not measured on its own: a spin loop without pause squashes the loads it ran ahead; fitted
    // with the handoff figures (it separates the busy handoff from the one with pause).
    machineClearPenalty: 30,
    mfenceLatency: 74, // 73.5–76.1 measured
    ipiLatency: 2000, // not measured: x2APIC IPI delivery ~0.5 µs
    // rep stosb with fast strings writes a 64-byte line a cycle into lines it owns in L1D
    // (Zen 5: two 512-bit store paths). Lines it does not own hold a miss buffer each until
    // owned; 64 is fitted to page.zero and page.copy (AMD gives 24 L1D miss buffers for Zen
    // 3/4, pub. 56665, 57647; fast strings also use the L2's).
    storeBytesPerCycle: 64,
    fillBuffers: 64,
  },
  // Software Optimization Guide for the AMD Zen5 Microarchitecture (pub. 58455): an L1 stream
  // prefetcher (sequential lines), an L1 stride prefetcher, an L1 region prefetcher, an L2
  // stream prefetcher and an L2 up/down prefetcher, none of them with published depths or
  // table sizes: the trigger, degree, distance and table sizes are our choices, the L2's
  // distance and degree fitted to page.copy (a page copied from DRAM: 744–911 measured).
  prefetch: {
    l1d: { enabled: true, nextLine: true, stride: true, trigger: 2, degree: 2, distance: 4, tableSize: 16 },
    l2: { enabled: true, nextLine: true, stride: true, trigger: 2, degree: 16, distance: 63, tableSize: 32 },
  },
};

/**
 * Intel Xeon Platinum 8180 (Skylake-SP, 28 cores, 2.5 GHz). Intel 64 and IA-32 Architectures
 * Optimization Reference Manual (248966), "Skylake Server Microarchitecture": L1D 32K 8-way
 * 4–5 cycles; L2 1 MB 16-way 14 cycles; L3 1.375 MB per core, non-inclusive, 11-way, 50–70
 * cycles; DTLB 64 entries 4-way (4K), 32 entries 4-way (2M); STLB 1536 entries 12-way; PAUSE
 * "as many as 140 cycles".
 */
const skx8180: MachineConfigInput = {
  name: 'xeon-8180',
  cpus: 28,
  clockGHz: 2.5,
  seed: 1,
  syncQuantum: 0, // strict order: the README's "Sync quantum" gives run-ahead's measured error
  memory: { size: '64g', dramLatency: 225 }, // ~90 ns local DRAM at 2.5 GHz
  l1d: { size: '32k', ways: 8, line: 64, hitLatency: 4, replacement: 'lru' },
  l2: { size: '1m', ways: 16, line: 64, hitLatency: 14, replacement: 'lru' },
  // 28 slices × 2048 sets × 11 ways (38.5 MB); we need a power-of-two set count and take
  // the nearest, 65536 sets × 11 ways = 44 MiB.
  llc: { size: 65536 * 11 * 64, ways: 11, line: 64, hitLatency: 60, replacement: 'lru', inclusive: false },
  // A line from another core's L2 across the mesh, ~45 ns (published core-to-core figures of
  // the 8180): transferLatency 110. The source gives no split; the probe leg takes
  // amd64-host's fitted share of the transfer (2/3) and an invalidation round equals a
  // transfer (probe out, ack back). One mesh: every pair is near.
  coherence: {
    transferLatency: 110,
    invalidateLatency: 110,
    probeLatency: 73,
    farTransferLatency: 110,
    farInvalidateLatency: 110,
    farProbeLatency: 73,
    coresPerComplex: 28,
  },
  tlb: {
    l1Small: { entries: 64, ways: 4 },
    l1Large: { entries: 32, ways: 4 },
    l2: { entries: 1536, ways: 12, hitLatency: 9 },
    walkLatency: 5,
    invlpgLatency: 150,
  },
  // Skylake-SP: 4-wide rename, 2 loads + 1 store per cycle, 10 L1D fill buffers (12 MLP with
  // the L2's superqueue, we take the L1D's), 224-entry ROB (the same manual). Fast strings 32 B
  // a cycle (our estimate for ERMSB on Skylake-SP); 12 L1D fill buffers (the optimization
  // manual's Skylake figure).
  cpu: {
    issueWidth: 4, loadPorts: 2, storePorts: 1, mlp: 10, robSize: 224,
    lockedOpLatency: 14, pauseLatency: 140, mfenceLatency: 33, ipiLatency: 1500, storeBytesPerCycle: 32, fillBuffers: 12,
    // Agner Fog, The microarchitecture of Intel, AMD and VIA CPUs: a Skylake mispredict costs
    // 15–20 cycles; a machine clear is not published separately: taken as a mispredict.
    mispredictPenalty: 16, machineClearPenalty: 16,
  },
  // The optimization manual's data prefetchers: L1 DCU (next line) and IP-based stride
  // prefetchers; the L2 streamer, one stream per direction per 4K page, 32 streams, up to 20
  // lines ahead, two requests per L2 lookup. (The L2 adjacent-line spatial prefetcher is not
  // modeled.)
  prefetch: {
    l1d: { enabled: true, nextLine: true, stride: true, trigger: 1, degree: 1, distance: 1, tableSize: 16 },
    l2: { enabled: true, nextLine: true, stride: true, trigger: 2, degree: 2, distance: 20, tableSize: 32 },
  },
};

/**
 * One CCD of an AMD EPYC 7763 (Zen 3 "Milan", 2.45 GHz): 8 cores sharing a 32 MB L3.
 * Software Optimization Guide for AMD EPYC 7003 Processors (pub. 56665): L1D 32K 8-way 4–5
 * cycles; L2 512K 8-way 12 cycles; L3 32 MB 16-way, average 46 cycles, filled by L2 victims;
 * L1 DTLB 64 entries fully associative; L2 DTLB 2048 entries.
 */
const milan7763: MachineConfigInput = {
  name: 'epyc-7763',
  cpus: 8,
  clockGHz: 2.45,
  seed: 1,
  syncQuantum: 0, // strict order: the README's "Sync quantum" gives run-ahead's measured error
  memory: { size: '64g', dramLatency: 270 }, // ~110 ns local DRAM at 2.45 GHz
  l1d: { size: '32k', ways: 8, line: 64, hitLatency: 4, replacement: 'lru' },
  l2: { size: '512k', ways: 8, line: 64, hitLatency: 12, replacement: 'lru' },
  llc: { size: '32m', ways: 16, line: 64, hitLatency: 46, replacement: 'lru', inclusive: false },
  // Inside one CCX a line moves from core to core through the L3's shadow tags, ~20 ns
  // (transferLatency 50); between CCDs through the I/O die, ~110 ns (270): published
  // core-to-core figures for Milan. The probe leg is amd64-host's fitted share of the
  // transfer (2/3); an invalidation round equals a transfer (probe out, ack back).
  coherence: {
    transferLatency: 50,
    invalidateLatency: 50,
    probeLatency: 33,
    farTransferLatency: 270,
    farInvalidateLatency: 270,
    farProbeLatency: 180,
    coresPerComplex: 8,
  },
  tlb: {
    l1Small: { entries: 64, ways: 64 },
    l1Large: { entries: 64, ways: 64 },
    l2: { entries: 2048, ways: 16, hitLatency: 7 },
    walkLatency: 5,
    invlpgLatency: 120,
  },
  // Zen 3: 6-wide dispatch, 3 loads and 2 stores per cycle, 24 outstanding L1D misses,
  // 256-entry ROB (the same guide). Fast strings 32 B a cycle (two 128-bit stores a cycle); 24
  // L1D miss buffers (pub. 56665).
  cpu: {
    issueWidth: 6, loadPorts: 3, storePorts: 2, mlp: 24, robSize: 256,
    lockedOpLatency: 15, pauseLatency: 64, mfenceLatency: 33, ipiLatency: 1500, storeBytesPerCycle: 32, fillBuffers: 24,
    // Pub. 56665 gives no figure; Agner Fog's microarchitecture guide: at least 12 cycles on
    // Zen cores; a machine clear taken as a mispredict.
    mispredictPenalty: 13, machineClearPenalty: 13,
  },
  // Pub. 56665: L1 stream and L1 stride prefetchers, L2 stream and L2 up/down prefetchers;
  // depths and table sizes are not published: our choices, as for amd64-host.
  prefetch: {
    l1d: { enabled: true, nextLine: true, stride: true, trigger: 2, degree: 2, distance: 4, tableSize: 16 },
    l2: { enabled: true, nextLine: true, stride: true, trigger: 2, degree: 4, distance: 16, tableSize: 32 },
  },
};

export const machinePresets: Readonly<Record<string, MachineConfigInput>> = {
  coursework,
  'amd64-host': amd64Host,
  'xeon-8180': skx8180,
  'epyc-7763': milan7763,
};

export const defaultPresetName = 'amd64-host';

/** The preset of that name; own names only, so "toString" or "__proto__" is no preset. */
function presetNamed(name: string): MachineConfigInput | undefined {
  return Object.hasOwn(machinePresets, name) ? machinePresets[name] : undefined;
}

const presetList = () => Object.keys(machinePresets).join(', ');

/** A file name as messages print it: quoted when it holds a control character (a newline). */
function fileLabel(file: string): string {
  return [...file].some((ch) => ch.charCodeAt(0) < 0x20 || ch === '\u007f' || ch === '\u2028' || ch === '\u2029') ? JSON.stringify(file) : file;
}

/** A preset by name, validated. */
export function presetConfig(name: string): MachineConfig {
  const preset = presetNamed(name);
  if (preset === undefined) throw new UserError(`unknown machine preset ${JSON.stringify(name)}; expected one of ${presetList()}, or a JSON file`);
  return validateMachineConfig(preset, `machine preset ${name}`);
}

const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a directory on its path is a file',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
};

/** The JSON object a machine file holds, or a one-line UserError saying why not. */
function readMachineFile(file: string, where: string): Record<string, unknown> {
  let bytes: Buffer;
  try {
    if (statSync(file).isDirectory()) throw new UserError(`${where}: expected a JSON machine file, got a directory`);
    bytes = readFileSync(file);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new UserError(`${where}: cannot read the machine file: ${READ_ERRORS[code] ?? (code || String(e))}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`${where}: expected a JSON machine file in UTF-8, got bytes that are not UTF-8`);
  }
  const json = parseJsonText(text, where);
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    const got = Array.isArray(json) ? 'an array' : JSON.stringify(json);
    throw new UserError(`${where}: expected a JSON object of machine fields, got ${got.length > 40 ? `${got.slice(0, 40)}...` : got}`);
  }
  return json as Record<string, unknown>;
}

/**
 * Loads a machine: a preset name, or a JSON file holding a config or a partial one with
 * `"base": "<preset>"` (default amd64-host) and the fields to override. Then applies
 * `overrides` (from command-line options) and validates the result. Every error is a
 * UserError of one line.
 */
export function loadMachineConfig(presetOrFile: string = defaultPresetName, overrides: object = {}): MachineConfig {
  const preset = presetNamed(presetOrFile);
  if (preset !== undefined) return validateMachineConfig(mergeConfig(preset, overrides), `machine preset ${presetOrFile}`);
  if (!/\.json$/i.test(presetOrFile)) presetConfig(presetOrFile);
  const where = fileLabel(presetOrFile);
  const json = readMachineFile(presetOrFile, where);
  const fields: Record<string, unknown> = {};
  for (const k of Object.keys(json)) {
    if (k !== 'base') Object.defineProperty(fields, k, { value: json[k], enumerable: true, writable: true, configurable: true });
  }
  const base = Object.hasOwn(json, 'base') ? json['base'] : defaultPresetName;
  const basePreset = typeof base === 'string' ? presetNamed(base) : undefined;
  if (basePreset === undefined) {
    const got = JSON.stringify(base);
    throw new UserError(`${where}: field base: expected one of ${presetList()} (a preset, not a file), got ${got.length > 40 ? `${got.slice(0, 40)}...` : got}`);
  }
  return validateMachineConfig(mergeConfig(mergeConfig(basePreset, fields), overrides), where);
}
