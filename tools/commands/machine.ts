// The options every subcommand that runs a machine shares: --machine and --cpus; and --tunable
// for those that boot a kernel. tools/machine-options.ts reads them back.

import { type Command } from 'commander';
import { DEFAULT_PRESET, MACHINE_PRESETS, TUNABLE_USAGE } from './facts.js';

/** Upper bound of --cpus: the machine config's, and the kernel's SMP_MAXCPU. */
export const MAX_CPUS = 64;

export interface MachineOptions {
  machine?: string;
  cpus?: string;
  /**
   * How reports name the machine, when not as --machine gave it: a sweep runs a point with the
   * path of its machine file, and names it as the point's command line does (relative to the
   * sweep's directory). Not an option of the command line.
   */
  machineName?: string;
}

/** Adds --machine and --cpus to `command`; read them back with machineConfigFrom(). */
export function addMachineOptions(command: Command): Command {
  return command
    .option('--machine <preset|file.json>', `a machine preset (${MACHINE_PRESETS.join(', ')}) or a JSON machine file`, DEFAULT_PRESET)
    .option('--cpus <n>', `number of CPUs, 1 to ${MAX_CPUS} (default: the machine's)`);
}

/** Adds --tunable (repeatable) to `command`; read it back with parseTunables(). */
export function addTunableOption(command: Command): Command {
  return command.option('--tunable <name=value>', `a boot tunable (repeatable): ${TUNABLE_USAGE.join('; ')}`, (v: string, acc: string[]) => [...acc, v], [] as string[]);
}
