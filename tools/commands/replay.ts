// kmemu replay and kmemu compare, declared: their arguments, options and help. tools/replay.ts
// runs them; it loads when the command runs.

import { Command, Option } from 'commander';
import type { AllocatorName } from '../../traces/index.js';
import { addMachineOptions, addTunableOption, type MachineOptions } from './machine.js';

export interface ReplayCliOptions extends MachineOptions {
  allocator: AllocatorName;
  touch: string;
  /** --warmup N: events per CPU before the measured window; absent: 0. */
  warmup?: string;
  json?: boolean;
  aligned?: boolean;
  locked?: boolean;
  lenient?: boolean;
  sysctl: string[];
  /** --tunable NAME=VALUE items (boot tunables); absent: none. */
  tunable?: string[];
  output?: string;
  zones: string;
  vmstat?: boolean;
  /** --netstat: netstat -m after the report. */
  netstat?: boolean;
  /** --no-packet-zone: m_getcl takes an mbuf and a cluster from their own zones. */
  packetZone?: boolean;
  cacheLock?: 'critical' | 'mutex';
  bucketSize?: string;
  autoTune?: boolean;
  invariants?: boolean;
  legend?: boolean;
  /** --from IMAGE: start from a boot image (kmemu boot --save) instead of booting. */
  from?: string;
  /** --checkpoint-every N --checkpoint DIR: resumable checkpoints; --resume DIR: continue from the newest. */
  checkpointEvery?: string;
  checkpoint?: string;
  resume?: string;
}

/** The options that shape a replay (the machine, the allocator and its what-ifs, the trace reader's leniency); kmemu view takes these. */
export function addRunOptions(c: Command): Command {
  return addTunableOption(addMachineOptions(c))
    .addOption(new Option('--allocator <name>', 'the kernel allocator to replay on').choices(['vmzone', 'uma']).default('vmzone'))
    .option('--touch <lines>', 'cache lines the consumer writes after each allocation', '1')
    .option('--warmup <events>', 'events each CPU runs before its measured window starts (steady state): the report leaves them out', '0')
    .option('--aligned', 'per-CPU state in cache-line-aligned slots instead of upstream\'s layout (vm_zone, UMA)')
    .addOption(new Option('--cache-lock <how>', 'UMA: what protects the per-CPU cache').choices(['critical', 'mutex']))
    .option('--bucket-size <items>', 'UMA: items per bucket (what-if)')
    .option('--auto-tune', 'UMA: the 2013 rule: grow buckets only when the zone lock is contended, shrink on reclaim (default: 2005, grow on every fill)')
    .option('--invariants', 'UMA: an INVARIANTS kernel (uma_dbg checks on every operation)')
    .option('--lenient', 'count and skip events that break the trace rules instead of stopping')
    .option('--sysctl <name=value>', 'set a writable sysctl after boot (repeatable), e.g. vm.zone_burst=8', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--no-packet-zone', 'mbufs: m_getcl takes an mbuf and a cluster from their own zones instead of a packet from the packet zone (a what-if)');
}

/** The run options and those of the report (tables or JSON, where it goes). */
export function addReplayOptions(c: Command): Command {
  return addRunOptions(c)
    .option('--zones <n>', 'zones shown in the per-zone table', '8')
    .option('--json', 'print the JSON document instead of tables')
    .option('--no-legend', 'leave out the legend of columns and path labels under the tables')
    .option('-o, --output <file>', 'write the output to a file (complete or not at all; a device or FIFO directly; "-": stdout)')
    .option('--from <image>', 'start from a boot image (kmemu boot --save) instead of booting: its machine and tunables, --machine, --cpus and --tunable left out');
}

/** --machine as the user gave it: its default is not given (--from refuses only a machine given). */
function givenMachine(c: Command, opts: ReplayCliOptions): ReplayCliOptions {
  if (c.getOptionValueSource('machine') === 'default') delete opts.machine;
  return opts;
}

const stdio = () => ({ out: (t: string) => void process.stdout.write(t), err: (t: string) => void process.stderr.write(t), progress: true });

export function replayCommand(): Command {
  return addReplayOptions(
    new Command('replay')
      .description('Replay an allocation trace through the kernel on the emulated machine and report what each allocation cost')
      .argument('<trace>', 'a kmemu trace (plain or gzip); "-" for stdin'),
  )
    .option('--locked', 'per-CPU caching off: every request on the locked zone/depot path')
    .option('--vmstat', 'after the report, the kernel\'s own allocator statistics (vm.zone; UMA: vmstat -z and -m); with --json, in the document')
    .option('--netstat', 'after the report, netstat -m (the mbuf figures; with --json they are always in the document\'s mbuf section)')
    .option('--checkpoint-every <events>', 'write a resumable checkpoint at the first quiescent point after every N events (with --checkpoint DIR; the result is unchanged)')
    .option('--checkpoint <dir>', 'the directory of the checkpoints (the newest two are kept)')
    .option('--resume <dir>', 'continue an interrupted replay from the newest checkpoint in DIR (same trace and options), to the report an uninterrupted run gives')
    .action(async function (this: Command, file: string, opts: ReplayCliOptions) {
      const { runReplay } = await import('../replay.js');
      await runReplay(file, givenMachine(this, opts), stdio());
    });
}

export function compareCommand(): Command {
  return addReplayOptions(
    new Command('compare')
      .description('Replay a trace twice, per-CPU caching on and off, and show the costs side by side')
      .argument('<trace>', 'a kmemu trace (plain or gzip)'),
  ).action(async function (this: Command, file: string, opts: ReplayCliOptions) {
    const { runCompare } = await import('../replay.js');
    await runCompare(file, givenMachine(this, opts), stdio());
  });
}
