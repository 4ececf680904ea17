// kmemu as a package: what `npm pack` holds, and the built entry imported by name.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, TraceReader, boot, loadMachineConfig, presetConfig, replay, sysctl } from '../index.js';

const root = process.cwd();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-pkg-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// Two CPUs: zone 1 created on CPU 0; three objects each, CPU 1 frees one CPU 0 allocated.
const TRACE = `kmemu-trace 1
# cpus: 2
0 zone 1 kmalloc-64 64
0 a 1 1
0 a 1 2
1 a 1 3
1 a 1 4
0 f 1 1
1 f 1 2
1 f 1 3
0 m 200 5
0 x 5
1 t 100
1 f 1 4
`;
const traceFile = path.join(tmp, 'twelve.trace');
fs.writeFileSync(traceFile, TRACE);

beforeAll(() => {
  // `make test` builds first; a bare `npx vitest run` on a fresh checkout builds here.
  if (!fs.existsSync(path.join(root, 'dist', 'index.js')) || !fs.existsSync(path.join(root, 'dist', 'index.d.ts'))) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'ignore' });
  }
}, 240_000);

describe('the kmemu package', () => {
  it('npm pack holds the entry, its declarations, the CLI, the schemas and FORMAT.md, and no test or TypeScript source', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/tools/cli.js', 'dist/traces/replay.d.ts',
      'docs/schemas/kmemu.report-1.schema.json', 'traces/FORMAT.md']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /(^|\/)(test|bench)\/|\.test\.|vitest/.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('package.json names the entry for import and types, and keeps the bin', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.exports).toEqual({ '.': { types: './dist/index.d.ts', import: './dist/index.js' }, './package.json': './package.json' });
    expect(pkg.types).toBe('./dist/index.d.ts');
    expect(pkg.bin).toEqual({ kmemu: 'dist/tools/cli.js' });
  });

  it('import { Machine, boot, replay } from \'kmemu\' boots a kernel and replays a 12-event trace, as the sources do', async () => {
    fs.mkdirSync(path.join(tmp, 'node_modules'), { recursive: true });
    fs.symlinkSync(root, path.join(tmp, 'node_modules', 'kmemu'), 'dir');
    const program = `
      import { Machine, boot, replay, presetConfig, loadMachineConfig, sysctl, TraceReader } from 'kmemu';
      const k = boot(new Machine(presetConfig('coursework')));
      const reader = await TraceReader.open(${JSON.stringify(traceFile)});
      const r = await replay(reader, { machine: loadMachineConfig('coursework', { cpus: 2 }), traceName: 'twelve.trace' });
      console.log(JSON.stringify({ pages: sysctl(k, 'vm.stats.vm.v_page_count'), totals: r.totals, trace: r.run.trace }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', program], { cwd: tmp, encoding: 'utf8' });
    const got = JSON.parse(out) as { pages: number; totals: { events: number; allocations: number; frees: number; thinkCycles: number; makespanCycles: number } };

    const k = boot(new Machine(presetConfig('coursework')));
    const reader = await TraceReader.open(traceFile);
    const r = await replay(reader, { machine: loadMachineConfig('coursework', { cpus: 2 }), traceName: 'twelve.trace' });
    expect(got.totals).toMatchObject({ events: 12, allocations: 5, frees: 5, thinkCycles: 100 });
    expect(got).toEqual(JSON.parse(JSON.stringify({ pages: sysctl(k, 'vm.stats.vm.v_page_count'), totals: r.totals, trace: r.run.trace })));
    expect(got.pages).toBeGreaterThan(0);
  });
});
