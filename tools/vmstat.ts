// `kmemu vmstat -z | -m`: boot a kernel and print its UMA zones and malloc types as FreeBSD's
// vmstat(8) does, read without charging cycles. With --tunable vm.kmem_backend=vmem the kernel
// boots vmem, and its zones ("vmem btag", "vmem", the arenas' quantum caches) are listed too.

import { Command } from 'commander';
import { Machine, UsageError } from '../emu/index.js';
import { boot, malloc_vmstat_m, uma_vmstat_z } from '../kernel/index.js';
import { kernelVmstat } from '../traces/index.js';
import { addMachineOptions, addTunableOption, machineConfigFrom, parseTunables, type MachineOptions } from './machine-options.js';

export interface VmstatIo {
  stdout: { write(text: string): unknown };
}

interface VmstatOptions extends MachineOptions {
  zones?: boolean;
  malloc?: boolean;
  json?: boolean;
  tunable?: string[];
}

function buildCommand(io: VmstatIo): Command {
  const command = new Command('vmstat')
    .description('Boot a kernel and print its UMA zones (-z) and malloc(9) types (-m), as vmstat(8) does')
    .option('-z, --zones', 'the UMA zones: item size, limit, items used and free, requests, failures, sleeps')
    .option('-m, --malloc', 'the malloc(9) types: allocations in use, memory, requests, size classes')
    .option('--json', 'print the rows as JSON (the same rows as a replay report\'s vmstat)')
    .addHelpText('after', `
Each run boots a fresh kernel, so the figures are those right after boot. To see them at the
end of a workload, use kmemu replay --vmstat.`);
  return addTunableOption(addMachineOptions(command)).action((opts: VmstatOptions) => {
    if (opts.zones !== true && opts.malloc !== true) throw new UsageError('vmstat: expected -z, -m or both');
    const k = boot(new Machine(machineConfigFrom(opts)), parseTunables(opts.tunable));
    if (opts.json === true) {
      const rows = kernelVmstat(k, 'uma');
      const out = 'vmstatZ' in rows
        ? { ...(opts.zones === true ? { vmstatZ: rows.vmstatZ } : {}), ...(opts.malloc === true ? { vmstatM: rows.vmstatM } : {}) }
        : rows;
      io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    const parts: string[] = [];
    if (opts.zones === true) parts.push(uma_vmstat_z(k));
    if (opts.malloc === true) parts.push(malloc_vmstat_m(k));
    io.stdout.write(parts.join('\n'));
  });
}

/** The `kmemu vmstat` subcommand, on the process's stdout. */
export function vmstatCommand(): Command {
  return buildCommand({ stdout: process.stdout });
}
