// The sweep's worker thread (tinypool): runs one point's replay and returns its report's JSON
// text, or the one line of what stopped it (a kernel panic, a trace that deadlocks) for the
// main thread to report with the point's name. Each task boots its own kernel on its own
// machine, so what a worker ran before does not change what it reports: the results do not
// depend on --jobs.

import { UserError } from '../../emu/index.js';
import { KernelPanic } from '../../kernel/index.js';
import { runPointTask, type PointTask } from './point.js';

/** The report's text, or an error's message; `user` when it is the input's fault, not kmemu's. */
export type PointOutcome = { report: string } | { error: string; user: boolean; stack?: string | undefined };

export default async function run(task: PointTask): Promise<PointOutcome> {
  try {
    return { report: await runPointTask(task) };
  } catch (err) {
    const user = err instanceof UserError || err instanceof KernelPanic;
    return { error: err instanceof Error ? err.message.split('\n')[0]! : String(err), user, stack: user ? undefined : (err as Error).stack };
  }
}
