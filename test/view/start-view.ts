// Runs the built `kmemu view` for tests: waits for its "kmemu view: URL" line and stops it by its
// PID with a signal.
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, ROOT } from '../tools/built-cli.js';

export const VIEW_TRACE = 'test/fixtures/traces/producer-2cpu.trace';

export interface RunningView {
  url: string;
  port: number;
  child: ChildProcess;
  /** What it wrote on stderr so far. */
  stderr(): string;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** How long the CLI may take to boot the replay and print its address, in ms. */
const START_TIMEOUT_MS = 60_000;

export function startView(args: readonly string[]): Promise<RunningView> {
  const child = spawn(process.execPath, [CLI, 'view', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kmemu view printed no address in ${START_TIMEOUT_MS} ms; stdout: ${out} stderr: ${err}`));
    }, START_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /^kmemu view: (http:\/\/127\.0\.0\.1:(\d+)\/)$/m.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      resolve({
        url: m[1]!,
        port: Number(m[2]),
        child,
        stderr: () => err,
        stop: async (signal = 'SIGINT') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exit;
        },
      });
    });
    void exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`kmemu view exited (${code ?? signal}) before printing its address: ${err.trim()}`));
    });
  });
}
