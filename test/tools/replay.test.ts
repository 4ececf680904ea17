import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError, UserError } from '../../emu/index.js';
import { runCompare, runReplay, type ReplayCliOptions } from '../../tools/replay.js';

const base = (o: Partial<ReplayCliOptions> = {}): ReplayCliOptions => ({
  machine: 'coursework', cpus: '2', allocator: 'vmzone', touch: '1', sysctl: [], zones: '8', ...o,
} as ReplayCliOptions);

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
}

describe('kmemu replay and compare', () => {
  it('replay prints the paths, where the cycles went, per CPU and per zone', async () => {
    const c = capture();
    const r = await runReplay('test/fixtures/traces/kernel-mix-2cpu.trace', base(), c.io);
    const text = c.out.join('');
    expect(text).toMatch(/^kernel-mix-2cpu\.trace on coursework \(2 CPUs, 1 GHz\); allocator vmzone, per-CPU caching on, touch 1 line\n/);
    expect(text).toContain('operations by the path they completed on:');
    expect(text).toContain('where the cycles went (by path label):');
    expect(text).toContain('zone.alloc.pcpu');
    expect(r.totals.allocations + r.totals.frees).toBe(r.totals.allocatorOps);
  });

  it('replay --vmstat ends with the kernel\'s zone table after the run', async () => {
    const c = capture();
    await runReplay('test/fixtures/traces/kernel-mix-2cpu.trace', base({ vmstat: true }), c.io);
    const text = c.out.join('');
    expect(text).toContain('\n\nvm.zone: \nITEM            SIZE     LIMIT    USED    FREE  REQUESTS\n\n');
    expect(text).toMatch(/\nnames_cache: {2}004096, 00000000, 000000, \d{6}, \d{8}\n/);
  });

  it('replay --allocator uma runs on UMA and --vmstat prints vmstat -z and vmstat -m', async () => {
    const c = capture();
    const r = await runReplay('test/fixtures/traces/kernel-mix-2cpu.trace', base({ allocator: 'uma', vmstat: true }), c.io);
    expect(r.allocator.name).toBe('uma');
    expect(r.paths.some((p) => p.path === 'uma.alloc.cpucache')).toBe(true);
    const text = c.out.join('');
    expect(text).toContain('\nvmstat -z:\n');
    expect(text).toContain('\nvmstat -m:\n');
    expect(text).toMatch(/\n +trace +\d+ +\d+K/);
  });

  it('UMA what-ifs: a smaller bucket sends more frees to the depot; a per-CPU mutex costs more than a critical section', async () => {
    const run = async (o: Partial<ReplayCliOptions>, trace = 'pairs-4cpu') => {
      const c = capture();
      return runReplay(`test/fixtures/traces/${trace}.trace`, base({ cpus: '4', allocator: 'uma', json: true, ...o }), c.io);
    };
    const ops = (r: Awaited<ReturnType<typeof run>>, p: string) => r.paths.find((x) => x.path === p)?.ops ?? 0;
    // Bulk: 200 allocations then 200 frees per CPU; buckets of 2 overflow to the depot 64× as often as of 64.
    const small = await run({ bucketSize: '2' }, 'bulk-4cpu');
    const big = await run({ bucketSize: '64' }, 'bulk-4cpu');
    expect(ops(small, 'uma.free.depot')).toBeGreaterThan(4 * ops(big, 'uma.free.depot'));
    const perOp = (r: Awaited<ReturnType<typeof run>>) => r.paths.find((x) => x.path === 'uma.alloc.cpucache')!.cycles.mean;
    expect(perOp(await run({ cacheLock: 'mutex' }))).toBeGreaterThan(perOp(await run({ cacheLock: 'critical' })));
    const c = capture();
    await expect(runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ allocator: 'uma', bucketSize: '0' }), c.io)).rejects.toThrow(
      '--bucket-size: expected a number of items from 1 to 256, got "0"',
    );
  });

  it('replay --json prints a kmemu.report/1 document and -o writes it whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kmemu-'));
    const file = join(dir, 'r.json');
    const c = capture();
    await runReplay('test/fixtures/traces/kernel-mix-2cpu.trace', base({ json: true, output: file }), c.io);
    expect(c.out).toEqual([]);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc.schema).toBe('kmemu.report/1');
    expect(doc.machine).toEqual({ name: 'coursework', cpus: 2, clockGHz: 1 });
  });

  it('compare replays with per-CPU caching on and off and gives the ratios', async () => {
    const c = capture();
    const d = await runCompare('test/fixtures/traces/pairs-4cpu.trace', base({ cpus: '4', json: true }), c.io);
    expect(d.schema).toBe('kmemu.compare/1');
    expect(d.perCpu.allocator.perCpuCaching).toBe(true);
    expect(d.locked.allocator.perCpuCaching).toBe(false);
    expect(d.ratios.cyclesPerOp).toBeGreaterThan(1);
    expect(JSON.parse(c.out.join('')).schema).toBe('kmemu.compare/1');
  });

  it('bad options and bad traces are one clear error', async () => {
    const c = capture();
    await expect(runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ touch: 'lots' }), c.io)).rejects.toThrow('--touch: expected a number of cache lines from 0 to 64, got "lots"');
    await expect(runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ sysctl: ['vm.zone_burst'] }), c.io)).rejects.toThrow('--sysctl: expected NAME=INTEGER, got "vm.zone_burst"');
    await expect(runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ sysctl: ['vm.kvm_size=1'] }), c.io)).rejects.toThrow(
      '--sysctl vm.kvm_size=1: vm.kvm_size is not a writable sysctl of this kernel',
    );
    const dir = mkdtempSync(join(tmpdir(), 'kmemu-'));
    const bad = join(dir, 'bad.trace');
    writeFileSync(bad, 'kmemu-trace 1\n0 zone 1 z 64\n0 f 1 5\n');
    await expect(runReplay(bad, base(), c.io)).rejects.toThrow(`${bad}:3: free of object 5, which is not live`);
    await expect(runCompare('-', base(), c.io)).rejects.toThrow('compare: the trace is replayed twice, so it must be a file, not "-"');
  });

  it('replay --warmup N says so in its heading and measures the window; 0 prints what no option does', async () => {
    const text = async (o: Partial<ReplayCliOptions>) => {
      const c = capture();
      await runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ cpus: '4', ...o }), c.io);
      return c.out.join('');
    };
    const warm = await text({ warmup: '100' });
    expect(warm).toMatch(/^pairs-4cpu\.trace on coursework \(4 CPUs, 1 GHz\); allocator vmzone, per-CPU caching on, touch 1 line; measured after a warm-up of 100 events per CPU \(400 left out\)\n/);
    expect(warm).toContain('\nevents 1,610, allocations 805, frees 805; makespan 102,606 cycles (102.6 µs); allocator 342,653 cycles in 1,610 ops, 212.8 per op\n');
    expect(warm).not.toContain('zone.alloc.zget');
    expect(await text({ warmup: '0' })).toBe(await text({}));
    expect(await text({ warmup: '0', json: true })).toBe(await text({ json: true }));
  });

  it('compare --warmup N passes it to both replays', async () => {
    const c = capture();
    const d = await runCompare('test/fixtures/traces/pairs-4cpu.trace', base({ cpus: '4', json: true, warmup: '100' }), c.io);
    expect([d.run.warmup, d.perCpu.run.warmup, d.locked.run.warmup]).toEqual([100, 100, 100]);
    expect([d.perCpu.totals.warmup!.events, d.locked.totals.warmup!.events]).toEqual([400, 400]);
    expect([d.perCpu.totals.events, d.locked.totals.events]).toEqual([1610, 1610]);
    expect([d.perCpu.totals.allocatorOps, d.locked.totals.allocatorOps]).toEqual([1610, 1610]);
    const t = capture();
    await runCompare('test/fixtures/traces/pairs-4cpu.trace', base({ cpus: '4', warmup: '100', legend: false }), t.io);
    expect(t.out.join('').split('\n')[0]).toBe(
      'pairs-4cpu.trace on coursework (4 CPUs), allocator vmzone: per-CPU caching on vs off (every request on the locked path); measured after a warm-up of 100 events per CPU',
    );
  });

  it('--warmup takes a whole number of events: anything else is one line, for replay and compare', async () => {
    const c = capture();
    for (const bad of ['-1', 'x', '1.5', '']) {
      const msg = `--warmup: expected a number of events per CPU of 0 or more, got "${bad}"`;
      await expect(runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ warmup: bad }), c.io)).rejects.toThrow(msg);
      await expect(runCompare('test/fixtures/traces/pairs-4cpu.trace', base({ warmup: bad }), c.io)).rejects.toThrow(msg);
    }
    const err = await runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ warmup: 'x' }), c.io).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(c.out).toEqual([]);
  });

  it('--sysctl sets a writable sysctl after boot: a smaller zone_burst means more trips to the locked list', async () => {
    const burst = async (n: number) => {
      const c = capture();
      const r = await runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ cpus: '4', json: true, sysctl: [`vm.zone_burst=${n}`] }), c.io);
      return r.regions.find((x) => x.label === 'zone.alloc.locked')?.c2cTransfers ?? 0;
    };
    // Each trip takes the zone header's line from the CPU that had it last: 153 transfers with
    // bursts of 1, 20 with bursts of 32. (Its cycles are mostly spinning on zget's hold.)
    expect([await burst(1), await burst(32)]).toEqual([153, 20]);
  });

  it('replay of an allocation bigger than the machine\'s memory is one UserError naming the line (kmemu: ..., exit 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kmemu-'));
    const big = join(dir, 'big.trace');
    writeFileSync(big, 'kmemu-trace 1\n0 m 268435456 1\n');
    const err = await runReplay(big, base(), capture().io).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(`${big}:2: object 1: malloc of 268435456 bytes cannot be satisfied: the machine has 256 MiB of RAM (coursework), 237.1 MiB free after boot`);
  });
});
