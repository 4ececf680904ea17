// The built CLI (dist/tools/cli.js), for tests that run kmemu as a user does: exit status,
// stderr, signals, what it does to files. buildOnce() runs `make build` (a no-op when dist/ is
// up to date).
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns, type StdioOptions } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(ROOT, 'dist/tools/cli.js');

let built = false;

export function buildOnce(): void {
  if (built) return;
  execFileSync('make', ['build'], { cwd: ROOT, stdio: 'pipe' });
  built = true;
}

/** Runs `kmemu ARGS` to the end. */
export function kmemu(args: readonly string[], stdio: StdioOptions = 'pipe'): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', stdio, timeout: 120_000 });
}

/** Starts `kmemu ARGS` (or a node script) and returns the child. */
export function start(args: readonly string[], stdio: StdioOptions = 'pipe') {
  return spawn(process.execPath, args, { cwd: ROOT, stdio });
}

/** How a child ended: its exit code, or the signal that killed it. */
export function exited(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}
