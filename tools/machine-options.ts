// The options every subcommand that runs a machine shares: --machine and --cpus.

import { type Command } from 'commander';
import { UsageError, defaultPresetName, loadMachineConfig, machinePresets } from '../emu/index.js';
import type { MachineConfig } from '../emu/index.js';

/** Upper bound of --cpus: the machine config's, and the kernel's SMP_MAXCPU. */
const MAX_CPUS = 64;

export interface MachineOptions {
  machine?: string;
  cpus?: string;
}

/** Adds --machine and --cpus to `command`; read them back with machineConfigFrom(). */
export function addMachineOptions(command: Command): Command {
  return command
    .option(
      '--machine <preset|file.json>',
      `a machine preset (${Object.keys(machinePresets).join(', ')}) or a JSON machine file`,
      defaultPresetName,
    )
    .option('--cpus <n>', `number of CPUs, 1 to ${MAX_CPUS} (default: the machine's)`);
}

/** Parses --cpus, or throws a UsageError quoting the bad value. */
export function parseCpus(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CPUS) {
    throw new UsageError(`--cpus: expected an integer from 1 to ${MAX_CPUS}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** The validated machine config the options ask for (UserError when they do not make one). */
export function machineConfigFrom(opts: MachineOptions): MachineConfig {
  const overrides = opts.cpus === undefined ? {} : { cpus: parseCpus(opts.cpus) };
  return loadMachineConfig(opts.machine ?? defaultPresetName, overrides);
}

/** How to call the machine in output: the preset name or file as given. */
export function machineLabel(opts: MachineOptions): string {
  return opts.machine ?? defaultPresetName;
}
