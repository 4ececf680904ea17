// `kmemu sweep` and its subcommands. The machinery (the pool, zod specs, vega) loads only when
// a sweep command runs, so `kmemu --help` does not pay for it.

import { Command } from 'commander';

const io = () => ({ out: (t: string) => void process.stdout.write(t), err: (t: string) => void process.stderr.write(t), progress: true });

export function sweepCommand(): Command {
  const c = new Command('sweep')
    .description('Run a what-if sweep: a base run and axes over it (a JSON or YAML spec), one replay per point, on a worker pool')
    .argument('<spec>', 'the sweep spec (.json, .yaml or .yml)')
    .option('--out <dir>', 'the results directory (rerunning the sweep there runs only the points it lacks)')
    .option('--jobs <n>', 'worker threads (default: the cores)')
    .option('--shard <k/n>', 'run only the points whose index is k modulo n (0 <= k < n), for kmemu sweep merge')
    .option('--dry-run', 'list the points and their ids, run nothing')
    // Options after a subcommand's name are the subcommand's (sweep slurm --out).
    .enablePositionalOptions()
    .action(async (spec: string, opts: { out?: string; jobs?: string; shard?: string; dryRun?: boolean }) => {
      const { runSweep } = await import('./run.js');
      await runSweep(spec, opts, io());
    });
  c.addCommand(
    new Command('status')
      .description('How many points of a sweep directory are complete, and which are missing')
      .argument('<dir>', 'a sweep results directory')
      .action(async (dir: string) => {
        const { sweepStatus } = await import('./run.js');
        sweepStatus(dir, io());
      }),
  );
  c.addCommand(
    new Command('table')
      .description('A sweep\'s points and some of their figures as a table')
      .argument('<dir>', 'a sweep results directory (with results.jsonl)')
      .option('--metrics <list>', 'comma-separated figures (columns of results.csv); default: cycles per op (all, allocs, frees), throughput, c2c per op, spin cycles')
      .action(async (dir: string, opts: { metrics?: string }) => {
        const { sweepTable } = await import('./run.js');
        sweepTable(dir, opts.metrics?.split(',').map((s) => s.trim()).filter((s) => s !== ''), io());
      }),
  );
  c.addCommand(
    new Command('merge')
      .description('Join the shard directories of one sweep into one (every point exactly once)')
      .argument('<dirs...>', 'the shard directories')
      .requiredOption('--out <dir>', 'the merged results directory')
      .action(async (dirs: string[], opts: { out: string }) => {
        const { mergeSweeps } = await import('./run.js');
        await mergeSweeps(dirs, opts.out, io());
      }),
  );
  c.addCommand(
    new Command('plot')
      .description('Chart a sweep\'s results as SVG: any axis or figure against any figure')
      .argument('<dir>', 'a sweep results directory (with results.jsonl)')
      .option('--x <axis>', 'the x axis: an axis of the sweep or a figure', 'cpus')
      .option('--y <metric>', 'the figure on the y axis (a column of results.csv)', 'cycles_per_op')
      .option('--color <axis>', 'an axis whose values get a color each')
      .option('-o, --output <file>', 'where the SVG goes (default: DIR/charts/Y-vs-X.svg; "-": stdout)')
      .action(async (dir: string, opts: { x: string; y: string; color?: string; output?: string }) => {
        const { plotSweep } = await import('./plot-command.js');
        await plotSweep(dir, opts, io());
      }),
  );
  c.addCommand(
    new Command('slurm')
      .description('Run a sweep as a Slurm job array (one shard per task), and with --wait merge the shards')
      .argument('<spec>', 'the sweep spec')
      .requiredOption('--out <dir>', 'the results directory, on a file system every node sees')
      .option('--tasks <n>', 'array tasks (shards); default: the points, at most 16')
      .option('--partition <p>', 'the Slurm partition')
      .option('--time <t>', 'the time limit of each task (Slurm\'s --time)')
      .option('--wait', 'poll until the array is done, then merge the shards into --out')
      .action(async (spec: string, opts: { out: string; tasks?: string; partition?: string; time?: string; wait?: boolean }) => {
        const { sweepSlurm } = await import('./slurm.js');
        await sweepSlurm(spec, opts, io());
      }),
  );
  return c;
}
