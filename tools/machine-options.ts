// The options every subcommand that runs a machine shares: --machine and --cpus; and --tunable
// for those that boot a kernel.

import { type Command } from 'commander';
import { UsageError, defaultPresetName, loadMachineConfig, machinePresets } from '../emu/index.js';
import type { MachineConfig } from '../emu/index.js';
import { tunableCheck, tunableList, tunableUsage, type Tunables } from '../kernel/index.js';

/** Upper bound of --cpus: the machine config's, and the kernel's SMP_MAXCPU. */
const MAX_CPUS = 64;

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
  return opts.machineName ?? opts.machine ?? defaultPresetName;
}

/** Adds --tunable (repeatable) to `command`; read it back with parseTunables(). */
export function addTunableOption(command: Command): Command {
  return command.option(
    '--tunable <name=value>',
    `a boot tunable (repeatable): ${tunableList.map(tunableUsage).join('; ')}`,
    (v: string, acc: string[]) => [...acc, v],
    [] as string[],
  );
}

/** Parses --tunable NAME=VALUE items, or throws a UsageError naming the bad one and what it takes. */
export function parseTunables(list: readonly string[] | undefined): Tunables {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const m = /^([a-z0-9_.]+)=([A-Za-z0-9_.-]*)$/.exec(item);
    if (m === null) throw new UsageError(`--tunable: expected NAME=VALUE, got "${item}"`);
    const problem = tunableCheck(m[1]!, m[2]!);
    if (problem !== undefined) throw new UsageError(`--tunable ${item}: ${problem}`);
    out[m[1]!] = m[2]!;
  }
  return out as Tunables;
}
