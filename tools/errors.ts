// How the CLI reports an error it expects: a UserError or a KernelPanic is the line
// `kmemu: MESSAGE` and exit status 1. Anything else is a bug and keeps its stack trace.

import { UserError } from '../emu/index.js';
import { KernelPanic } from '../kernel/index.js';

export interface CliErrorReport {
  /** What the CLI prints on stderr, without the newline. */
  line: string;
  exitCode: number;
}

/** The line and exit status for an expected error; undefined for anything else. */
export function formatCliError(err: unknown): CliErrorReport | undefined {
  if (err instanceof UserError || err instanceof KernelPanic) return { line: `kmemu: ${err.message}`, exitCode: 1 };
  return undefined;
}
