// Reading back the options every subcommand that runs a machine shares (--machine, --cpus,
// --tunable); tools/commands/machine.ts declares them.

import { UsageError, defaultPresetName, loadMachineConfig } from '../emu/index.js';
import type { MachineConfig } from '../emu/index.js';
import { tunableCheck, type Tunables } from '../kernel/index.js';
import { MAX_CPUS, type MachineOptions } from './commands/machine.js';

export type { MachineOptions } from './commands/machine.js';

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
