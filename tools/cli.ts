#!/usr/bin/env node
// kmemu: the one command. Each subcommand lives in its own module and is registered here.
//
// Exit status: 0 done; 1 bad input (a trace, a machine file, a kernel panic, an output that
// cannot be written); 2 a bad command line (commander's errors and UsageError); 70 an internal
// error (sysexits' EX_SOFTWARE); 128 + N on signal N while a temporary output exists
// (atomic-output.ts); 141 when a reader closes our output pipe (EPIPE), what a C tool killed
// by SIGPIPE reports, and quietly. `kmemu` without a command prints the help on stderr and exits
// 1, as git does.

import { Command, CommanderError } from 'commander';
import { MachineDeadlock } from '../emu/index.js';
import { KMEMU_VERSION, OutputError } from '../traces/index.js';
import { bootCommand } from './boot.js';
import { cachesimCommand } from './cachesim.js';
import { calibrateCommand } from './calibrate.js';
import { EXIT_INPUT, EXIT_USAGE, formatCliError } from './errors.js';
import { compareCommand, replayCommand } from './replay.js';
import { sweepCommand } from './sweep/command.js';
import { sysctlCommand } from './sysctl.js';
import { traceCommand } from './trace.js';
import { viewCommand } from './view/command.js';
import { vmemCommand } from './vmem.js';
import { vmstatCommand } from './vmstat.js';

const EXIT_SOFTWARE = 70;
const EXIT_EPIPE = 128 + 13;

/** Commander's "error: MESSAGE\n(Did you mean X?)\n" as one `kmemu: ` line with a pointer to the help. */
function usageLine(text: string, command: string): string {
  const [first = '', ...rest] = text.trim().split('\n');
  const more = rest.map((l) => l.trim().replace(/^\((.*)\)$/, '$1')).filter((l) => l !== '');
  const hint = more.length > 0 ? `; ${more.join('; ').replace(/^Did/, 'did')}` : '';
  return `kmemu: ${first.replace(/^error: /, '')}${hint} (see ${command} --help)\n`;
}

/** Every command: errors as one line, exits thrown as CommanderError (handled in fail()). */
function configure(command: Command, parent: string): void {
  const full = parent === '' ? command.name() : `${parent} ${command.name()}`;
  command.exitOverride().configureOutput({
    writeOut: (s) => void process.stdout.write(s),
    writeErr: (s) => void process.stderr.write(s),
    outputError: (s, write) => write(usageLine(s, full)),
  });
  for (const sub of command.commands) configure(sub, full);
}

function program(): Command {
  const p = new Command('kmemu')
    .description('A cycle-accounted x86_64-like multiprocessor emulator running the BSD kernel memory allocators')
    .version(`kmemu ${KMEMU_VERSION}`, '-V, --version', 'print the version')
    // So that a subcommand may have options of the same name as its parent's (sweep --out and
    // sweep slurm --out): commander needs this on every ancestor of such a parent.
    .enablePositionalOptions();
  p.addCommand(cachesimCommand());
  p.addCommand(sysctlCommand());
  p.addCommand(bootCommand());
  p.addCommand(traceCommand());
  p.addCommand(replayCommand());
  p.addCommand(compareCommand());
  p.addCommand(calibrateCommand());
  p.addCommand(vmemCommand());
  p.addCommand(vmstatCommand());
  p.addCommand(sweepCommand());
  p.addCommand(viewCommand());
  configure(p, '');
  return p;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** The exit status for `err`, after printing what the user needs to know (one line). */
function fail(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander printed it already; help and --version exit 0, `kmemu` alone 1 (as git).
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    if (err.code === 'commander.help') return EXIT_INPUT;
    return EXIT_USAGE;
  }
  if (err instanceof OutputError && err.code === 'EPIPE') return EXIT_EPIPE;
  const report = formatCliError(err);
  if (report !== undefined) {
    process.stderr.write(`${report.line}\n`);
    return report.exitCode;
  }
  if (err instanceof MachineDeadlock) {
    process.stderr.write(`kmemu: the replay cannot go on: ${oneLine(err.message)}\n`);
    return EXIT_INPUT;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`kmemu: internal error: ${oneLine(message)} (please report this)\n`);
  if (process.env.KMEMU_DEBUG === '1' && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
  return EXIT_SOFTWARE;
}

// process.stdout reports a failed write (ENOSPC on /dev/full, EPIPE from `| head`) as an
// 'error' event after write() returned, so the failure is handled here, not where it was written.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') process.stderr.write(`kmemu: cannot write standard output: ${err.code ?? err.message}\n`);
  process.exit(err.code === 'EPIPE' ? EXIT_EPIPE : EXIT_INPUT);
});
process.on('uncaughtException', (err) => process.exit(fail(err)));
process.on('unhandledRejection', (err) => process.exit(fail(err)));

program()
  .parseAsync(process.argv)
  .then(
    () => undefined,
    (err: unknown) => {
      process.exitCode = fail(err);
    },
  );
