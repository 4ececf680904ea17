// userret: what the kernel does on a thread's way back to user mode.
//
// Models the scheduling part of FreeBSD sys/kern/subr_trap.c's userret/ast: a kernel thread of
// higher priority made runnable meanwhile gets the CPU before the user thread goes on. The only
// such thread kmemu has is the pageout daemon (kernel/vm/vm_pageout.ts); a driver calls
// userret after each trace event, where the event's thread holds no locks. Deviation: the check
// for a runnable daemon is the host's (a scheduler's run queue), so it costs no cycles; the
// daemon's pass costs what it does.

import { type Cpu, type Task } from '../../emu/index.js';
import { pagedaemon_ready, vm_pageout } from '../vm/index.js';
import { type Kernel } from './kernel.js';

export function* userret(k: Kernel, cpu: Cpu): Task {
  if (pagedaemon_ready(k, cpu)) yield* vm_pageout(k, cpu);
}
