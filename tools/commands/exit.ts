// kmemu's exit statuses for bad input and a bad command line (tools/cli.ts has the rest).

/** A bad input: a trace, a machine file, a kernel panic, an output that cannot be written. */
export const EXIT_INPUT = 1;
/** A bad command line: commander's errors and UsageError. */
export const EXIT_USAGE = 2;
