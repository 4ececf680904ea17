// `kmemu vmstat -z | -m`: boot a kernel and print its UMA zones and malloc types as FreeBSD's
// vmstat(8) does, read without charging cycles. With --tunable vm.kmem_backend=vmem the kernel
// boots vmem, and its zones ("vmem btag", "vmem", the arenas' quantum caches) are listed too.

import { Machine, UsageError } from '../emu/index.js';
import { boot, malloc_vmstat_m, uma_vmstat_z } from '../kernel/index.js';
import { kernelVmstat } from '../traces/index.js';
import type { VmstatOptions } from './commands/vmstat.js';
import { machineConfigFrom, parseTunables } from './machine-options.js';

export interface VmstatIo {
  stdout: { write(text: string): unknown };
}

/** What `kmemu vmstat` does with its options (tools/commands/vmstat.ts declares them). */
export function vmstatMain(opts: VmstatOptions, io: VmstatIo): void {
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
}
