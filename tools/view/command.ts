// kmemu view: a replay stepped in the browser. The server, the replay session and the machine
// load only when the command runs, so `kmemu --help` does not pay for them.

import { Command, Option } from 'commander';
import { addRunOptions, type ReplayCliOptions } from '../commands/replay.js';

export interface ViewCliOptions extends Omit<ReplayCliOptions, 'zones'> {
  compare?: boolean;
  port: string;
}

/** --port: 0 (any free port) to 65535. */
export async function parsePort(text: string): Promise<number> {
  const { UsageError } = await import('../../emu/index.js');
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new UsageError(`--port: expected a port number from 0 to 65535 (0: any free port), got "${text}"`);
  return Number(text);
}

/** Serves the viewer until SIGINT or SIGTERM, then closes the server and the replay and exits 0. */
export async function runView(file: string, opts: ViewCliOptions): Promise<void> {
  const port = await parsePort(opts.port);
  const { loadViewAssets, startViewServer } = await import('./server.js');
  const { openView } = await import('./session.js');
  // The page first: without it there is nothing to serve, and the replay need not boot.
  const assets = loadViewAssets();
  // --zones is the report's, which the viewer has not: its default satisfies checkOptions().
  const backend = await openView(file, { ...opts, zones: '8' });
  let server;
  try {
    server = await startViewServer(backend, { port, assets });
  } catch (err) {
    await backend.close();
    throw err;
  }
  process.stdout.write(`kmemu view: ${server.url}\n`);
  if (process.stderr.isTTY) process.stderr.write('kmemu view: open the address in a browser on this machine; Ctrl-C stops the viewer\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  await backend.close();
  process.exit(0);
}

export function viewCommand(): Command {
  return addRunOptions(
    new Command('view')
      .description('Step a replay in the browser: a viewer on 127.0.0.1 that shows the CPUs, the allocator\'s caches, zones and locks, and the cache lines under them, event by event')
      .argument('<trace>', 'a kmemu trace (plain or gzip)'),
  )
    .addOption(new Option('--locked', 'per-CPU caching off: every request on the locked zone/depot path').conflicts('compare'))
    .addOption(new Option('--compare', 'two replays side by side, per-CPU caching on and off, stepped together').conflicts('locked'))
    .option('--port <n>', 'the port on 127.0.0.1 (0: any free one)', '0')
    .action(async (file: string, opts: ViewCliOptions) => {
      await runView(file, opts);
    });
}
