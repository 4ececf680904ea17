#!/usr/bin/env node
// kmemu: the one command. Each subcommand is declared (name, arguments, options, help) in
// tools/commands/, tools/sweep/command.ts or tools/view/command.ts, which load no emulator, kernel,
// trace or zod code; its implementation loads with import() when it runs, so `kmemu --help`
// and a bad command line cost little more than Node's own start.
//
// Exit status: 0 done; 1 bad input (a trace, a machine file, a kernel panic, an output that
// cannot be written); 2 a bad command line (commander's errors and UsageError); 70 an internal
// error (sysexits' EX_SOFTWARE); 128 + N on signal N while a temporary output exists
// (atomic-output.ts); 141 when a reader closes our output pipe (EPIPE), what a C tool killed
// by SIGPIPE reports, and quietly. `kmemu` without a command prints the help on stderr and exits
// 1, as git does.

import { Command, CommanderError } from 'commander';
import { bootCommand } from './commands/boot.js';
import { cachesimCommand } from './commands/cachesim.js';
import { calibrateCommand } from './commands/calibrate.js';
import { KMEMU_VERSION } from './commands/facts.js';
import { EXIT_INPUT, EXIT_USAGE } from './commands/exit.js';
import { compareCommand, replayCommand } from './commands/replay.js';
import { sysctlCommand } from './commands/sysctl.js';
import { traceCommand } from './commands/trace.js';
import { vmemCommand } from './commands/vmem.js';
import { vmstatCommand } from './commands/vmstat.js';
import { sweepCommand } from './sweep/command.js';
import { viewCommand } from './view/command.js';

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
async function fail(err: unknown): Promise<number> {
  if (err instanceof CommanderError) {
    // Commander printed it already; help and --version exit 0, `kmemu` alone 1 (as git).
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    if (err.code === 'commander.help') return EXIT_INPUT;
    return EXIT_USAGE;
  }
  // Anything else came from a command's implementation, so these are loaded already.
  const [{ MachineDeadlock }, { OutputError }, { formatCliError }] = await Promise.all([
    import('../emu/index.js'), import('../traces/index.js'), import('./errors.js'),
  ]);
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
const exitWith = (err: unknown) => void fail(err).then((code) => process.exit(code));
process.on('uncaughtException', exitWith);
process.on('unhandledRejection', exitWith);

program()
  .parseAsync(process.argv)
  .then(
    () => undefined,
    async (err: unknown) => {
      process.exitCode = await fail(err);
    },
  );
