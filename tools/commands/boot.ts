// kmemu boot, declared; tools/boot.ts runs it.

import { Command } from 'commander';
import { addMachineOptions, addTunableOption, type MachineOptions } from './machine.js';

export const LAYOUT_SCHEMA = 'kmemu.layout/1';

export interface BootOptions extends MachineOptions {
  tunable?: string[];
  layout?: boolean;
  json?: boolean;
  save?: string;
}

/** `kmemu boot`; `action` runs it (by default tools/boot.ts on the process's stdout). */
export function bootCommand(action?: (opts: BootOptions) => void): Command {
  const command = new Command('boot')
    .description('Boot a kernel and show what boot built')
    .option('--layout', 'print the kernel address-space layout: virtual, physical, kernel_map entries')
    .option('--json', `with --layout: print a ${LAYOUT_SCHEMA} JSON document`)
    .option('--save <image>', 'write the booted machine to a machine image file (memory, caches, TLBs, clocks, counters, the kernel\'s state) for kmemu replay --from');
  return addTunableOption(addMachineOptions(command)).action(async (opts: BootOptions) => {
    if (action !== undefined) return action(opts);
    const { bootMain } = await import('../boot.js');
    bootMain(opts, { stdout: process.stdout }, () => undefined);
  });
}
