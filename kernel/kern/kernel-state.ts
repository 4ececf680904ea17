// The kernel's JS-side state for machine checkpoints: besides the Kernel object (addresses
// derived from the config, the zones by header), the modules keep per-kernel state apart
// (UMA's and vmem's function tables and zone handles, the mbuf globals, the pagedaemon), and
// the CPUs' page-fault handler is a closure over the kernel. A checkpoint captures them
// (emu/snapshot.ts) from kernelJsState; a restore overlays them onto freshKernelJsState of a
// kernel constructed (Kernel.create, not booted) on a fresh machine of the same config, installs
// them, and resolves the function pointers of the tables by source among the closures
// kernelRestoreFunctions makes over the fresh kernel.

import { installFaultHandler, pagedaemonJsStates, umaJsState } from '../vm/index.js';
import { type Kernel } from './kernel.js';
import { mbufJsStates, mbufRestoreFunctions } from './kern_mbuf.js';
import { vmemJsStates, vmemRestoreFunctions } from './subr_vmem.js';
import { bootRestoreFunctions } from './boot.js';
import { mallocRestoreFunctions } from './kern_malloc.js';

export interface KernelJsState {
  /**
   * UMA's build options, first: closures made for the restore read them (the mbuf callbacks
   * take INVARIANTS when made), so they are restored before the function tables.
   */
  umaOptions?: object;
  uma?: object;
  vmem?: object;
  vmemImport?: object;
  mbuf?: object;
  pagedaemon?: object;
}

const tables = {
  vmem: vmemJsStates.states,
  vmemImport: vmemJsStates.importPairs,
  mbuf: mbufJsStates,
  pagedaemon: pagedaemonJsStates,
} as const;

/** The modules' state of `k`, as a checkpoint captures it. */
export function kernelJsState(k: Kernel): KernelJsState {
  const uma = umaJsState(k) as { options: object };
  const s: KernelJsState = { umaOptions: uma.options, uma };
  for (const [name, table] of Object.entries(tables)) {
    const x = table.get(k);
    if (x !== undefined) s[name as keyof typeof tables] = x;
  }
  return s;
}

/** The state a fresh kernel starts with (UMA's table of its own closures, the fault handler) for a restore to overlay. */
export function freshKernelJsState(k: Kernel): KernelJsState {
  installFaultHandler(k);
  const uma = umaJsState(k) as { options: object };
  return { umaOptions: uma.options, uma };
}

/** Makes a restored state `k`'s. */
export function installKernelJsState(k: Kernel, s: KernelJsState): void {
  for (const [name, table] of Object.entries(tables)) {
    const x = s[name as keyof typeof tables];
    if (x !== undefined) table.set(k, x);
  }
}

/** The closures over `k` that the modules put in their function tables past UMA's own. */
export function kernelRestoreFunctions(k: Kernel): ((...args: never[]) => unknown)[] {
  return [...bootRestoreFunctions(k), ...mallocRestoreFunctions(k), ...vmemRestoreFunctions(k), ...mbufRestoreFunctions(k)];
}
