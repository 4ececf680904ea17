#!/usr/bin/env node
// kmemu: the one command. Each subcommand lives in its own module and is registered here.
import { Command, CommanderError } from 'commander';
import { bootCommand } from './boot.js';
import { cachesimCommand } from './cachesim.js';
import { formatCliError } from './errors.js';
import { compareCommand, replayCommand } from './replay.js';
import { sysctlCommand } from './sysctl.js';
import { traceCommand } from './trace.js';

function main(argv: string[]): Promise<void> {
  const program = new Command('kmemu')
    .description('A cycle-accounted x86_64-like multiprocessor emulator running the BSD kernel memory allocators')
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(cachesimCommand());
  program.addCommand(sysctlCommand());
  program.addCommand(bootCommand());
  program.addCommand(traceCommand());
  program.addCommand(replayCommand());
  program.addCommand(compareCommand());
  return program.parseAsync(argv).then(() => undefined);
}

main(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
    return;
  }
  const report = formatCliError(err);
  if (report !== undefined) {
    process.stderr.write(`${report.line}\n`);
    process.exitCode = report.exitCode;
    return;
  }
  throw err;
});
