// A real single-node Slurm cluster for tests. ensureSlurm() finds Debian's slurm-wlm and munge
// (installing them with apt-get when we are root and they are missing); startCluster() runs
// munged, slurmctld and slurmd in the foreground from a fresh temp dir, with a munge key, a
// slurm.conf and free ports of their own, and waits until the node is idle; stop() cancels the
// cluster's jobs, ends the daemons by their PIDs and removes the dir. sbatchWait() submits a batch
// script and waits until its job (every task of an array) has left the queue.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { availableParallelism, hostname, tmpdir, totalmem } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The commands a cluster needs; Debian's slurm-wlm and munge packages install them all. */
const REQUIRED_COMMANDS = ['slurmctld', 'slurmd', 'sbatch', 'squeue', 'sinfo', 'scontrol', 'scancel', 'munged'] as const;

/** How long startCluster() waits for munged's socket and for the node to report idle, in ms. */
const START_TIMEOUT_MS = 30_000;
/** How long stop() waits for a daemon to exit after SIGTERM before it sends SIGKILL, in ms. */
const STOP_TIMEOUT_MS = 10_000;
/** How often startCluster() and sbatchWait() poll sinfo and squeue, in ms. */
const POLL_MS = 200;
/** How many log lines an error quotes. */
const LOG_LINES = 15;

export interface SlurmCluster {
  /** The temp dir holding the key, slurm.conf, state, spool, pid and log files. */
  dir: string;
  /** The path of slurm.conf. */
  conf: string;
  /** process.env with SLURM_CONF set to `conf`: the environment for sbatch, squeue, sinfo, ... */
  env: NodeJS.ProcessEnv;
  pids: { munged: number; slurmctld: number; slurmd: number };
  /** Cancels the cluster's jobs, ends its daemons and removes `dir`; safe to call twice. */
  stop(): Promise<void>;
}

export interface ArrayTaskState {
  /** The array index, or undefined for a job that is not an array. */
  taskId: number | undefined;
  /** Slurm's JobState: COMPLETED, FAILED, CANCELLED, TIMEOUT, ... */
  state: string;
  /** Slurm's ExitCode, `status:signal`. */
  exitCode: string;
}

/** Where `command` is, in PATH or /usr/sbin, or undefined. */
export function findCommand(command: string): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin']) {
    if (dir !== '' && existsSync(join(dir, command))) return join(dir, command);
  }
  return undefined;
}

function missingCommands(): string[] {
  return REQUIRED_COMMANDS.filter((c) => findCommand(c) === undefined);
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/**
 * Whether a cluster can be started here: the Slurm and munge commands exist (apt-get installs
 * slurm-wlm and munge when they do not and we are root) and we are root, which slurmd needs.
 */
export function ensureSlurm(): { ok: true } | { ok: false; why: string } {
  const root = process.getuid?.() === 0;
  let missing = missingCommands();
  if (missing.length > 0) {
    if (!root) return { ok: false, why: `${missing.join(', ')} not installed, and only root may install slurm-wlm and munge with apt-get` };
    if (findCommand('apt-get') === undefined) return { ok: false, why: `${missing.join(', ')} not installed, and there is no apt-get to install slurm-wlm and munge` };
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'slurm-wlm', 'munge'], { env, encoding: 'utf8' });
    let result = install();
    if (result.status !== 0) {
      // The package lists are missing or stale (a fresh container has none): update them once.
      const update = spawnSync('apt-get', ['update', '-q'], { env, encoding: 'utf8' });
      if (update.status !== 0) return { ok: false, why: `apt-get update failed: ${lastLines(update.stderr || String(update.error ?? ''), 3)}` };
      result = install();
    }
    if (result.status !== 0) return { ok: false, why: `apt-get install slurm-wlm munge failed: ${lastLines(result.stderr || String(result.error ?? ''), 3)}` };
    missing = missingCommands();
    if (missing.length > 0) return { ok: false, why: `apt-get installed slurm-wlm and munge, but ${missing.join(', ')} still cannot be found` };
  }
  if (!root) return { ok: false, why: `slurmd must run as root to start jobs, and this process runs as uid ${process.getuid?.() ?? '?'}` };
  return { ok: true };
}

/** `count` distinct TCP ports that nothing listens on now. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    // All held open together, so the kernel cannot hand out one port twice.
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, () => resolve());
      });
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('A TCP server bound to port 0 reported no port.');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** A daemon started in the foreground: its process, and the files that hold what it says. */
interface Daemon {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Its stdout and stderr, and the log file it is told to write, if any. */
  logs: string[];
  exited: Promise<void>;
  hasExited: () => boolean;
}

function startDaemon(name: string, command: string, args: string[], dir: string, env: NodeJS.ProcessEnv, logFile?: string): Daemon {
  const outFile = join(dir, `${name}.out`);
  const fd = openSync(outFile, 'a');
  // Detached: its own process group, so a signal to the test runner's group does not reach it
  // before stop() does; the exit hook in startCluster() covers a runner that never calls stop().
  const child = spawn(command, args, { cwd: dir, env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      resolve();
    });
    child.once('error', () => {
      done = true;
      resolve();
    });
  });
  child.unref();
  if (child.pid === undefined) throw new Error(`Could not start ${command}.`);
  return { name, child, pid: child.pid, logs: logFile === undefined ? [outFile] : [logFile, outFile], exited, hasExited: () => done };
}

/** The last lines a daemon wrote, from the first of its log files that has any. */
function daemonLog(d: Daemon): string {
  for (const file of d.logs) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (text.trim() !== '') return `last lines of ${file}:\n${lastLines(text, LOG_LINES)}`;
  }
  return `it wrote nothing to ${d.logs.join(' or ')}`;
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (d.hasExited()) return;
  d.child.kill('SIGTERM');
  const timedOut = await Promise.race([d.exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
  if (timedOut) {
    d.child.kill('SIGKILL');
    await d.exited;
  }
}

/**
 * The PIDs of processes whose environment has SLURM_CONF=`conf`: slurmstepd and the job scripts
 * it runs inherit it from slurmd, so these are this cluster's, and nobody else's, job processes.
 */
function processesOfCluster(conf: string): number[] {
  const marker = `SLURM_CONF=${conf}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(marker)) pids.push(Number(entry));
    } catch {
      // Gone since readdir, or not ours to read.
    }
  }
  return pids;
}

function slurmConf(o: { dir: string; host: string; cpus: number; mungeSocket: string; ctldPort: number; slurmdPort: number }): string {
  const memoryMiB = Math.floor(totalmem() / (1024 * 1024));
  return [
    '# Written by kmemu test/slurm/cluster.ts for one test run; everything lives in this directory.',
    'ClusterName=kmemu',
    `SlurmctldHost=${o.host}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    'AuthType=auth/munge',
    `AuthInfo=socket=${o.mungeSocket}`,
    'CredType=cred/munge',
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'AccountingStorageType=accounting_storage/none',
    'JobAcctGatherType=jobacct_gather/none',
    'JobCompType=jobcomp/none',
    'SchedulerType=sched/backfill',
    'SchedulerParameters=batch_sched_delay=0',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    // The node is what this file says even when the caller asks for more CPUs than the host has
    // (slurmd would otherwise drain it as "Low socket*core*thread count").
    'SlurmdParameters=config_overrides',
    // The default, /bin/mail, is not installed; slurmctld logs an error for it at start-up.
    'MailProg=/bin/true',
    `StateSaveLocation=${join(o.dir, 'state')}`,
    `SlurmdSpoolDir=${join(o.dir, 'spool')}`,
    `SlurmctldPidFile=${join(o.dir, 'slurmctld.pid')}`,
    `SlurmdPidFile=${join(o.dir, 'slurmd.pid')}`,
    `SlurmctldLogFile=${join(o.dir, 'slurmctld.log')}`,
    `SlurmdLogFile=${join(o.dir, 'slurmd.log')}`,
    `SlurmctldPort=${o.ctldPort}`,
    `SlurmdPort=${o.slurmdPort}`,
    'ReturnToService=2',
    'MpiDefault=none',
    `NodeName=${o.host} CPUs=${o.cpus} RealMemory=${memoryMiB} State=UNKNOWN`,
    'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
    '',
  ].join('\n');
}

/**
 * Starts munged, slurmctld and slurmd in a fresh temp dir and resolves when the node is idle.
 * `cpus` is the node's CPU count in slurm.conf (default: this host's). On any failure it stops
 * what it started, removes the dir and throws with the failing daemon's last log lines.
 */
export async function startCluster(opts: { cpus?: number } = {}): Promise<SlurmCluster> {
  const cpus = opts.cpus ?? availableParallelism();
  if (!Number.isInteger(cpus) || cpus < 1) throw new Error(`startCluster(): cpus must be a positive integer, not ${cpus}.`);
  const dir = mkdtempSync(join(tmpdir(), 'kmemu-slurm-'));
  // munged refuses a socket in a directory that not everyone may search ("execute permissions
  // for all required"); mkdtemp makes it 0700.
  chmodSync(dir, 0o755);
  const conf = join(dir, 'slurm.conf');
  const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: conf };
  const daemons: Daemon[] = [];
  // A runner that exits without stop() must not leave daemons behind; 'exit' handlers must be
  // synchronous, so this one cannot wait for them and cancels no jobs.
  const killOnExit = () => {
    for (const d of daemons) if (!d.hasExited()) d.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      const ctld = daemons.find((d) => d.name === 'slurmctld');
      if (ctld !== undefined && !ctld.hasExited()) await cancelAllJobs(env);
      for (const d of [...daemons].reverse()) await stopDaemon(d);
      for (const pid of processesOfCluster(conf)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Exited in between.
        }
      }
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const fail = async (message: string): Promise<never> => {
    await stop();
    throw new Error(message);
  };

  try {
    const mungeKey = join(dir, 'munge.key');
    writeFileSync(mungeKey, randomBytes(1024), { mode: 0o400 });
    const mungeSocket = join(dir, 'munge.socket');
    // --force turns munged's other permission checks on the paths' ancestors (a group-writable
    // TMPDIR, say) from errors into warnings; we are root and the only user of this socket.
    const munged = startDaemon('munged', findCommand('munged') ?? 'munged', [
      '--foreground', '--force',
      `--socket=${mungeSocket}`, `--key-file=${mungeKey}`, `--pid-file=${join(dir, 'munged.pid')}`,
      `--log-file=${join(dir, 'munged.log')}`, `--seed-file=${join(dir, 'munged.seed')}`,
    ], dir, env, join(dir, 'munged.log'));
    daemons.push(munged);
    const socketBy = performance.now() + START_TIMEOUT_MS;
    while (!existsSync(mungeSocket)) {
      if (munged.hasExited()) return await fail(`munged exited before it created its socket ${mungeSocket}; ${daemonLog(munged)}`);
      if (performance.now() > socketBy) return await fail(`munged did not create its socket ${mungeSocket} within ${START_TIMEOUT_MS} ms; ${daemonLog(munged)}`);
      await sleep(50);
    }

    const [ctldPort, slurmdPort] = (await freePorts(2)) as [number, number];
    const host = hostname().split('.')[0]!;
    mkdirSync(join(dir, 'state'));
    mkdirSync(join(dir, 'spool'));
    writeFileSync(conf, slurmConf({ dir, host, cpus, mungeSocket, ctldPort, slurmdPort }));

    const slurmctld = startDaemon('slurmctld', findCommand('slurmctld') ?? 'slurmctld', ['-D', '-f', conf], dir, env, join(dir, 'slurmctld.log'));
    daemons.push(slurmctld);
    const slurmd = startDaemon('slurmd', findCommand('slurmd') ?? 'slurmd', ['-D', '-f', conf], dir, env, join(dir, 'slurmd.log'));
    daemons.push(slurmd);

    const idleBy = performance.now() + START_TIMEOUT_MS;
    let lastState = '';
    while (true) {
      for (const d of daemons) {
        if (d.hasExited()) return await fail(`${d.name} exited (${describeExit(d.child)}) before node ${host} became idle; ${daemonLog(d)}`);
      }
      lastState = await sinfoState(env);
      if (lastState === 'idle') break;
      if (performance.now() > idleBy) {
        const blame = lastState === '' || lastState.includes('error') ? slurmctld : slurmd;
        return await fail(`Node ${host} did not become idle within ${START_TIMEOUT_MS} ms (sinfo says "${lastState}"); ${daemonLog(blame)}`);
      }
      await sleep(POLL_MS);
    }
    return { dir, conf, env, pids: { munged: munged.pid, slurmctld: slurmctld.pid, slurmd: slurmd.pid }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function describeExit(child: ChildProcess): string {
  if (child.signalCode !== null) return `signal ${child.signalCode}`;
  return `status ${child.exitCode ?? '?'}`;
}

/** What `sinfo -h -o %t` prints (the node's state), or its error message. */
async function sinfoState(env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await execFileAsync('sinfo', ['-h', '-o', '%t'], { env, timeout: 10_000 });
    return stdout.trim();
  } catch (err) {
    return lastLines(String((err as { stderr?: string }).stderr || err), 1);
  }
}

async function cancelAllJobs(env: NodeJS.ProcessEnv): Promise<void> {
  try {
    const { stdout } = await execFileAsync('squeue', ['-h', '-o', '%A'], { env, timeout: 10_000 });
    const ids = [...new Set(stdout.split('\n').map((l) => l.trim()).filter((l) => l !== ''))];
    if (ids.length > 0) await execFileAsync('scancel', ids, { env, timeout: 10_000 });
  } catch {
    // The controller is not answering; stop() kills the job processes by PID instead.
  }
}

/**
 * The squeue lines of job `jobId` (all its array tasks), or [] once it has left the queue,
 * including when slurmctld has already forgotten it ("Invalid job id specified").
 */
async function queued(cluster: SlurmCluster, jobId: string): Promise<string[]> {
  try {
    const { stdout } = await execFileAsync('squeue', ['-h', '-j', jobId], { env: cluster.env, timeout: 10_000 });
    return stdout.split('\n').filter((l) => l.trim() !== '');
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '');
    if (stderr.includes('Invalid job id')) return [];
    throw new Error(`squeue -j ${jobId} failed: ${lastLines(stderr || String(err), 1)}`);
  }
}

/** The state and exit code of each task of job `jobId`, as slurmctld remembers them (MinJobAge, 300 s). */
async function taskStates(cluster: SlurmCluster, jobId: string): Promise<ArrayTaskState[]> {
  try {
    const { stdout } = await execFileAsync('scontrol', ['-o', 'show', 'job', jobId], { env: cluster.env, timeout: 10_000 });
    return stdout.split('\n').filter((l) => l.trim() !== '').map((line) => {
      const field = (name: string) => new RegExp(`(?:^| )${name}=(\\S*)`).exec(line)?.[1];
      const task = field('ArrayTaskId');
      return { taskId: task === undefined ? undefined : Number(task), state: field('JobState') ?? '?', exitCode: field('ExitCode') ?? '?' };
    }).sort((a, b) => (a.taskId ?? -1) - (b.taskId ?? -1));
  } catch {
    return [];
  }
}

/**
 * Submits `scriptPath` with `sbatch --parsable` (from the script's directory, where Slurm's
 * default slurm-%j.out files then go) and resolves when the job, every array task of it, has left
 * the queue, with each task's final state. After `timeoutMs` it cancels the job and throws.
 */
export async function sbatchWait(cluster: SlurmCluster, scriptPath: string, timeoutMs: number): Promise<{ jobId: string; tasks: ArrayTaskState[] }> {
  let jobId: string;
  try {
    const { stdout } = await execFileAsync('sbatch', ['--parsable', scriptPath], { env: cluster.env, cwd: dirname(scriptPath), timeout: 30_000 });
    // --parsable prints "jobid" or "jobid;cluster".
    jobId = stdout.trim().split(';')[0]!;
  } catch (err) {
    throw new Error(`sbatch ${scriptPath} failed: ${lastLines(String((err as { stderr?: string }).stderr || err), 3)}`);
  }
  if (!/^\d+$/.test(jobId)) throw new Error(`sbatch --parsable ${scriptPath} printed "${jobId}", not a job id.`);
  const by = performance.now() + timeoutMs;
  while (true) {
    const lines = await queued(cluster, jobId);
    if (lines.length === 0) break;
    if (performance.now() > by) {
      await execFileAsync('scancel', [jobId], { env: cluster.env, timeout: 10_000 }).catch(() => undefined);
      throw new Error(`Job ${jobId} (${scriptPath}) was still in the queue after ${timeoutMs} ms:\n${lines.join('\n')}`);
    }
    await sleep(POLL_MS);
  }
  return { jobId, tasks: await taskStates(cluster, jobId) };
}
