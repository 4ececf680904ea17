// kmemu sysctl, declared; tools/sysctl.ts runs it.

import { Command } from 'commander';
import { SYSCTL_NAMES } from './facts.js';
import { addMachineOptions, addTunableOption, type MachineOptions } from './machine.js';

export interface SysctlOptions extends MachineOptions {
  tunable?: string[];
  all?: boolean;
  valueOnly?: boolean;
  description?: boolean;
  json?: boolean;
}

const HELP_AFTER = `
A NAME that is a prefix of others (vm, vm.stats.vm) prints every name under it, as
sysctl(8) does. Each run boots a fresh kernel, so names are read right after boot and
cannot be set. An unknown NAME is reported after the known ones are printed, and the
exit status is 1.

Names: ${SYSCTL_NAMES.join(', ')}.`;

/** `kmemu sysctl`; `action` runs it (by default tools/sysctl.ts on the process's stdout). */
export function sysctlCommand(action?: (names: string[], opts: SysctlOptions) => void): Command {
  const command = new Command('sysctl')
    .description('Boot a kernel and print sysctl names and values, as sysctl(8) does')
    .argument('[names...]', 'sysctl names or prefixes, e.g. vm.kvm_size or vm.stats.vm')
    .option('-a, --all', 'print every name')
    .option('-n, --value-only', 'print values only, without the names')
    .option('-d, --description', 'print the description of each name instead of its value')
    .option('--json', 'print one JSON object of name → value (→ description with -d)')
    .addHelpText('after', HELP_AFTER);
  return addTunableOption(addMachineOptions(command)).action(async (names: string[], opts: SysctlOptions) => {
    if (action !== undefined) return action(names, opts);
    const { sysctlMain } = await import('../sysctl.js');
    sysctlMain(names, opts, { stdout: process.stdout });
  });
}
