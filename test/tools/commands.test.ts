import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultPresetName, machinePresets, presetConfig, replacementPolicies } from '../../emu/index.js';
import { sysctls, tunableList, tunableUsage } from '../../kernel/index.js';
import { KMEMU_VERSION, LINUX_IMPORT_SCHEMA, MAX_THINK_NS, vmemStrategies } from '../../traces/index.js';
import * as facts from '../../tools/commands/facts.js';
import { CLI, ROOT, buildOnce } from './built-cli.js';

describe('tools/commands/facts.ts', () => {
  it('holds the values of the layers below that the help quotes, as they are there', () => {
    expect(facts.KMEMU_VERSION).toBe(KMEMU_VERSION);
    expect(facts.MACHINE_PRESETS).toEqual(Object.keys(machinePresets));
    expect(facts.DEFAULT_PRESET).toBe(defaultPresetName);
    expect(facts.DEFAULT_PRESET_CLOCK_GHZ).toBe(presetConfig(defaultPresetName).clockGHz);
    expect(facts.REPLACEMENT_POLICIES).toEqual(replacementPolicies);
    expect(facts.TUNABLE_USAGE).toEqual(tunableList.map(tunableUsage));
    expect(facts.SYSCTL_NAMES).toEqual(sysctls.map((s) => s.name));
    expect(facts.VMEM_STRATEGIES).toEqual(vmemStrategies);
    expect(facts.LINUX_IMPORT_SCHEMA).toBe(LINUX_IMPORT_SCHEMA);
    expect(facts.MAX_THINK_NS).toBe(MAX_THINK_NS);
  });
});

describe('the command tree', () => {
  beforeAll(buildOnce, 300_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-commands-'));
  // A module hook that lists every module the CLI loads, one URL a line.
  const hooks = path.join(dir, 'hooks.mjs');
  fs.writeFileSync(hooks, `import * as fs from 'node:fs';
export async function load(url, context, next) {
  fs.appendFileSync(process.env.KMEMU_LOADS, url + '\\n');
  return next(url, context);
}
`);
  const register = path.join(dir, 'register.mjs');
  fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);

  /** The modules `kmemu ARGS` loads, as paths relative to the repository (node: builtins left out). */
  function loads(args: readonly string[]): { status: number | null; modules: string[] } {
    const list = path.join(dir, `loads-${args.join('_').replace(/[^a-z0-9_-]/gi, '')}.txt`);
    fs.writeFileSync(list, '');
    const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, CLI, ...args], {
      cwd: ROOT, encoding: 'utf8', env: { ...process.env, KMEMU_LOADS: list }, timeout: 60_000,
    });
    const modules = fs.readFileSync(list, 'utf8').split('\n').filter((u) => u.startsWith('file:'))
      .map((u) => path.relative(ROOT, new URL(u).pathname));
    return { status: r.status, modules };
  }
  const heavy = (m: string) => /^dist\/(emu|kernel|traces)\/|^node_modules\/(zod|vega[^/]*|cli-progress|js-yaml|tinypool|seedrandom)\//.test(m);

  it.each([
    [['--help'], 0], [['replay', '--help'], 0], [['compare', '--help'], 0], [['boot', '--help'], 0], [['sysctl', '--help'], 0],
    [['vmstat', '--help'], 0], [['cachesim', '--help'], 0], [['calibrate', '--help'], 0], [['trace', 'import', '--help'], 0],
    [['trace', 'stats', '--help'], 0], [['trace', 'gen', '--help'], 0], [['vmem', 'run', '--help'], 0], [['vmem', 'frag', '--help'], 0],
    [['sweep', '--help'], 0], [['sweep', 'slurm', '--help'], 0], [['view', '--help'], 0], [['--version'], 0],
    [['replay'], 2], [['replay', 'x.trace', '--bogus'], 2], [['bogus'], 2], [[], 1],
  ] as const)('kmemu %j loads no machine, kernel, trace, zod or vega module', (args, status) => {
    const r = loads(args);
    expect(r.status).toBe(status);
    expect(r.modules).toContain('dist/tools/cli.js');
    expect(r.modules.filter(heavy)).toEqual([]);
  });

  it('kmemu replay loads the machine when it runs (the hook sees it)', () => {
    const r = loads(['replay', 'test/fixtures/traces/pairs-4cpu.trace', '--cpus', '1']);
    expect(r.status).toBe(0);
    expect(r.modules).toContain('dist/emu/index.js');
  });
});
