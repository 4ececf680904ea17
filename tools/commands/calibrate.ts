// kmemu calibrate, declared; tools/calibrate.ts runs it (the figures: tools/calibrate-programs.ts).

import { Command } from 'commander';
import { addMachineOptions, type MachineOptions } from './machine.js';

export const CALIBRATE_SCHEMA = 'kmemu.calibrate/1';

/** The figures, in the order they are printed; the names are kmemu.calibrate/1's. */
export const CALIBRATE_FIGURES = [
  'load.l1', 'load.l2', 'load.llc', 'load.dram', 'tlb.l2hit', 'tlb.walk', 'atomic.uncontended', 'pause', 'mfence',
  'handoff.oneway', 'handoff.oneway.pause', 'atomic.contended2', 'ttas.1cpu', 'ttas.2cpu', 'page.zero', 'page.copy',
] as const;
export type CalibrateFigure = (typeof CALIBRATE_FIGURES)[number];

/** What each figure is, for the table's legend and the schema. */
export const FIGURE_DESCRIPTIONS: Readonly<Record<CalibrateFigure, string>> = {
  'load.l1': 'dependent pointer chase over half the L1D: cycles per load',
  'load.l2': 'dependent pointer chase over half the L2: cycles per load',
  'load.llc': 'dependent pointer chase over a working set that misses the L2 and hits the LLC: cycles per load',
  'load.dram': 'dependent pointer chase through lines in no cache: cycles per load',
  'tlb.l2hit': 'extra cycles per load of an L1 DTLB miss that hits the L2 TLB (one line per 4 KiB page less the same lines packed)',
  'tlb.walk': 'extra cycles per load of an L2 TLB miss whose page walk hits the caches (likewise)',
  'atomic.uncontended': 'lock xadd on a line the CPU owns: cycles per op',
  'pause': 'a run of pause instructions: cycles per pause',
  'mfence': 'a run of mfence instructions (nothing in flight): cycles per mfence',
  'handoff.oneway': 'a line handed between 2 CPUs, busy spin: cycles per one-way handoff',
  'handoff.oneway.pause': 'the same with pause in the spin loop',
  'atomic.contended2': 'lock xadd by 2 CPUs on one line: aggregate cycles per op',
  'ttas.1cpu': 'spinlock acquire + release on 1 CPU: cycles per pair',
  'ttas.2cpu': 'spinlock acquire + release by 2 CPUs on one lock: aggregate cycles per pair',
  'page.zero': 'zeroing a 4 KiB page that is in no cache (rep stosb): cycles per page',
  'page.copy': 'copying a 4 KiB page to another, both in no cache: cycles per page',
};

export interface CalibrateOptions extends MachineOptions {
  json?: boolean;
  host?: boolean;
  fit?: boolean;
  output?: string;
  quick?: boolean;
  placement?: string;
}

const HELP_AFTER = `
Figures (core cycles): ${CALIBRATE_FIGURES.map((n) => `\n  ${n.padEnd(21)} ${FIGURE_DESCRIPTIONS[n]}`).join('')}

The emulated figures are exact and deterministic. --host builds tools/calib/calib.c with the
system cc (or $CC) and runs it pinned to CPUs 0 and 1 (rdtsc, medians; TSC ticks converted to
core cycles with a measured dependent-add loop); the placement line says where the hypervisor
put the two vCPUs, which moves the handoff figures: the emulated two-CPU figures are then
taken in the same placement (near: one core complex; far: two, the far* latencies), unless
--placement says. --fit -o FILE writes a machine file ({"base": PRESET, ...fields}) whose
latencies are fitted to the host figures (in that placement, the near or far* coherence fields).
JSON output (--json) follows schema ${CALIBRATE_SCHEMA}.`;

/** `kmemu calibrate`; `action` runs it (by default tools/calibrate.ts on the process's stdout). */
export function calibrateCommand(action?: (opts: CalibrateOptions) => void): Command {
  const command = new Command('calibrate')
    .description('Run the machine\'s microbenchmarks as emulated programs; with --host, on this machine too, side by side')
    .option('--host', 'also run the benchmarks natively on this machine (needs cc)')
    .option('--fit', 'with --host: write a machine file fitted to the host (-o FILE)')
    .option('-o, --output <file>', 'the machine file --fit writes')
    .option('--quick', 'with --host: fewer runs (for a smoke test; the figures are noisier)')
    .option('--placement <near|far>', 'the two-CPU figures on CPUs in one core complex or two (default near; with --host, where the host\'s vCPUs were)')
    .option('--json', `print a ${CALIBRATE_SCHEMA} JSON document instead of a table`)
    .addHelpText('after', HELP_AFTER);
  return addMachineOptions(command).action(async (opts: CalibrateOptions) => {
    if (action !== undefined) return action(opts);
    const { calibrateMain } = await import('../calibrate.js');
    calibrateMain(opts, { stdout: process.stdout });
  });
}
