// kmemu vmstat, declared; tools/vmstat.ts runs it.

import { Command } from 'commander';
import { addMachineOptions, addTunableOption, type MachineOptions } from './machine.js';

export interface VmstatOptions extends MachineOptions {
  zones?: boolean;
  malloc?: boolean;
  json?: boolean;
  tunable?: string[];
}

/** `kmemu vmstat`; `action` runs it (by default tools/vmstat.ts on the process's stdout). */
export function vmstatCommand(action?: (opts: VmstatOptions) => void): Command {
  const command = new Command('vmstat')
    .description('Boot a kernel and print its UMA zones (-z) and malloc(9) types (-m), as vmstat(8) does')
    .option('-z, --zones', 'the UMA zones: item size, limit, items used and free, requests, failures, sleeps')
    .option('-m, --malloc', 'the malloc(9) types: allocations in use, memory, requests, size classes')
    .option('--json', 'print the rows as JSON (the same rows as a replay report\'s vmstat)')
    .addHelpText('after', `
Each run boots a fresh kernel, so the figures are those right after boot. To see them at the
end of a workload, use kmemu replay --vmstat.`);
  return addTunableOption(addMachineOptions(command)).action(async (opts: VmstatOptions) => {
    if (action !== undefined) return action(opts);
    const { vmstatMain } = await import('../vmstat.js');
    vmstatMain(opts, { stdout: process.stdout });
  });
}
