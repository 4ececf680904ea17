// Golden figures of trace replay: a small generated kernel mix on 2 CPUs, and compare on a
// contended alloc/free-pairs trace on 4 CPUs (coursework machine, vm_zone); net-forward's mbufs
// with the packet zone and without (amd64-host, UMA).
import { describe, it } from 'vitest';
import { runCompare, runReplay, type ReplayCliOptions } from '../../tools/replay.js';
import { expectGolden } from './golden.js';

const opts = (cpus: string): ReplayCliOptions => ({ machine: 'coursework', cpus, allocator: 'vmzone', touch: '1', sysctl: [], zones: '8', json: true } as ReplayCliOptions);
const io = { out: () => undefined, err: () => undefined };

describe('golden: replay', () => {
  it('a 2-CPU kernel mix: per path and totals', async () => {
    const r = await runReplay('test/fixtures/traces/kernel-mix-2cpu.trace', opts('2'), io);
    expectGolden('replay-kernel-mix-2cpu', { totals: r.totals, paths: r.paths, cpus: r.cpus });
  });

  it('a 2-CPU kernel mix on UMA with vm.kmem_backend=vmem (FreeBSD 10\'s kmem_malloc on kmem_arena): per path and totals', async () => {
    const r = await runReplay('test/fixtures/traces/kernel-mix-2cpu.trace', { ...opts('2'), allocator: 'uma', tunable: ['vm.kmem_backend=vmem'] }, io);
    expectGolden('replay-kernel-mix-2cpu-vmem', { tunables: r.run.tunables, totals: r.totals, paths: r.paths, cpus: r.cpus });
  });

  it('net-forward on 2 CPUs (amd64-host, UMA), with the packet zone and without: mbuf paths and netstat -m', async () => {
    const o = { ...opts('2'), machine: 'amd64-host', allocator: 'uma' } as ReplayCliOptions;
    const figures = async (packetZone: boolean) => {
      const r = await runReplay('test/fixtures/traces/net-forward-2cpu.trace', { ...o, packetZone }, io);
      const rows = (ps: { path: string; ops: number; cycles: { mean: number; p99: number } }[]) => ps.map((p) => ({ path: p.path, ops: p.ops, mean: p.cycles.mean, p99: p.cycles.p99 }));
      return { totals: r.totals, allocs: rows(r.mbuf!.allocs), frees: rows(r.mbuf!.frees), netstat: r.mbuf!.netstat, cpus: r.cpus };
    };
    expectGolden('replay-net-forward-2cpu', { packetZone: await figures(true), noPacketZone: await figures(false) });
  });

  it('compare on contended pairs, 4 CPUs: the per-CPU path is cheaper per operation than the locked path', async () => {
    const d = await runCompare('test/fixtures/traces/pairs-4cpu.trace', opts('4'), io);
    expectGolden('compare-pairs-4cpu', {
      ratios: d.ratios,
      perCpu: { totals: d.perCpu.totals, paths: d.perCpu.paths.map((p) => ({ path: p.path, ops: p.ops, mean: p.cycles.mean, p99: p.cycles.p99 })) },
      locked: { totals: d.locked.totals, paths: d.locked.paths.map((p) => ({ path: p.path, ops: p.ops, mean: p.cycles.mean, p99: p.cycles.p99 })) },
    });
  });
});
