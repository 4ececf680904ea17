// --tunable on replay, compare, boot and sysctl: vm.kmem_backend and kern.ipc.nmbclusters, their checks and their report.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../emu/index.js';
import { runReplay, type ReplayCliOptions } from '../../tools/replay.js';
import { parseTunables } from '../../tools/machine-options.js';
import { runSysctl } from '../../tools/sysctl.js';

const opts = (tunable: string[]): ReplayCliOptions =>
  ({ machine: 'coursework', cpus: '2', allocator: 'uma', touch: '1', sysctl: [], zones: '8', json: true, tunable } as ReplayCliOptions);
const io = { out: () => undefined, err: () => undefined };
const TRACE = 'test/fixtures/traces/kernel-mix-2cpu.trace';

describe('--tunable', () => {
  it('parseTunables() refuses an unknown name or value with one sentence naming it and what it takes', () => {
    expect(parseTunables(['vm.kmem_backend=vmem'])).toEqual({ 'vm.kmem_backend': 'vmem' });
    expect(() => parseTunables(['vm.kmem_backend=slab'])).toThrow(new UsageError('--tunable vm.kmem_backend=slab: vm.kmem_backend takes "kmem_alloc3" or "vmem", not "slab"'));
    expect(() => parseTunables(['vm.kmem=vmem'])).toThrow(new UsageError('--tunable vm.kmem=vmem: vm.kmem is not a tunable of this kernel (tunables: vm.kmem_backend, kern.ipc.nmbclusters)'));
    expect(() => parseTunables(['vm.kmem_backend'])).toThrow(new UsageError('--tunable: expected NAME=VALUE, got "vm.kmem_backend"'));
    expect(parseTunables(['kern.ipc.nmbclusters=512'])).toEqual({ 'kern.ipc.nmbclusters': '512' });
    expect(() => parseTunables(['kern.ipc.nmbclusters=lots'])).toThrow(
      new UsageError('--tunable kern.ipc.nmbclusters=lots: kern.ipc.nmbclusters takes an integer from 0 to 2147483647, not "lots"'),
    );
  });

  it('replay --tunable kern.ipc.nmbclusters=N limits the cluster zone: netstat -m shows the max and the denied requests', async () => {
    const out: string[] = [];
    const r = await runReplay('test/fixtures/traces/net-forward-2cpu.trace', { ...opts(['kern.ipc.nmbclusters=64']), json: false, netstat: true }, {
      out: (t: string) => out.push(t),
      err: () => undefined,
    });
    expect(r.run.tunables['kern.ipc.nmbclusters']).toBe('64');
    const text = out.join('');
    expect(text).toMatch(/\n\d+\/\d+\/\d+\/64 mbuf clusters in use \(current\/cache\/total\/max\)\n/);
    expect(r.mbuf?.netstat.denied.clusters ?? 0).toBeGreaterThan(0);
  });

  it('replay --tunable vm.kmem_backend=vmem records the tunable in run and gives other figures than the default', async () => {
    const def = await runReplay(TRACE, opts([]), io);
    const vm = await runReplay(TRACE, opts(['vm.kmem_backend=vmem']), io);
    // kern.ipc.nmbclusters, unset, is what the boot computed for the machine's memory.
    expect(def.run.tunables).toEqual({ 'vm.kmem_backend': 'kmem_alloc3', 'kern.ipc.nmbclusters': '8832' });
    expect(vm.run.tunables).toEqual({ 'vm.kmem_backend': 'vmem', 'kern.ipc.nmbclusters': '8832' });
    expect(vm.totals.events).toBe(def.totals.events);
    expect([def.totals.allocatorCycles, vm.totals.allocatorCycles]).toEqual(ALLOCATOR_CYCLES);
  });

  it('kmemu sysctl --tunable vm.kmem_backend=vmem has vm.kmem_size, vm.kmem_map_size and vm.kmem_map_free', async () => {
    const out: string[] = [];
    const v = await runSysctl(['--machine', 'coursework', '--tunable', 'vm.kmem_backend=vmem', 'vm.kmem_size', 'vm.kmem_map_size', 'vm.kmem_map_free'], { stdout: { write: (t: string) => out.push(t) } });
    expect(v).toEqual({ 'vm.kmem_size': 248643584, 'vm.kmem_map_size': 0, 'vm.kmem_map_free': 248643584 });
  });
});

// kmem_alloc3 zero-fills every slab page; kmem_malloc zeroes only for M_ZERO (UMA asks it for non-malloc zones).
const ALLOCATOR_CYCLES = [1116499, 865231]; // [803205, 659656] before 2005's fills (one item more, so more slabs)
