// How the CLI reports an error it expects: a UsageError is the line `kmemu: MESSAGE` and exit
// status 2; any other UserError, or a KernelPanic, the same line and exit status 1. Everything
// else is a defect of kmemu's (tools/cli.ts reports it as an internal error), and the fuzzer
// (tools/fuzz/) counts it as a finding.

import { UsageError, UserError } from '../emu/index.js';
import { KernelPanic } from '../kernel/index.js';
import { EXIT_INPUT, EXIT_USAGE } from './commands/exit.js';

export { EXIT_INPUT, EXIT_USAGE } from './commands/exit.js';

export interface CliErrorReport {
  /** What the CLI prints on stderr, without the newline. */
  line: string;
  exitCode: number;
}

/** The line and exit status for an expected error; undefined for anything else. */
export function formatCliError(err: unknown): CliErrorReport | undefined {
  if (err instanceof UsageError) return { line: `kmemu: ${err.message}`, exitCode: EXIT_USAGE };
  if (err instanceof UserError || err instanceof KernelPanic) return { line: `kmemu: ${err.message}`, exitCode: EXIT_INPUT };
  return undefined;
}
