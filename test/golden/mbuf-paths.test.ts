// Golden figures of mbufs on UMA on amd64-host: cycles per operation by the path it completed
// on, for a small fixed workload. After mbuf_init and one warm-up round, each CPU runs 100
// rounds of: m_getcl(M_PKTHDR) + m_freem (the packet zone), m_gethdr + m_clget + m_freem (mbuf
// and cluster zones), m_get + m_free, and m_getm of 5000 bytes + m_freem (a chain of three
// mbufs with clusters: two of MCLBYTES and the 904-byte remainder). 1 CPU with and without the packet zone, and 2 CPUs at once.
// Per path: operations, their cycles (retire to retire), cycles per operation; per phase: the
// cache-to-cache transfers and spin cycles.
import { describe, it } from 'vitest';
import { type Cpu, Machine, type Task, loadMachineConfig } from '../../emu/index.js';
import {
  M_DONTWAIT, M_PKTHDR, MT_DATA, boot, m_clget, m_free, m_freem, m_get, m_getcl, m_gethdr, m_getm, mbuf_init, type Kernel,
  type MbufOptions,
} from '../../kernel/index.js';
import { onCpu } from '../kernel/helpers.js';
import { expectGolden } from './golden.js';

const labels = ['mbuf.get', 'mbuf.getcl', 'mbuf.clget', 'mbuf.getm', 'mbuf.free', 'mbuf.free_ext'] as const;
type Timing = Map<number, { ops: number; cycles: number }>;

function* timed<T>(cpu: Cpu, t: Timing | undefined, op: Task<T>): Task<T> {
  const t0 = cpu.retired;
  const r = yield* op;
  if (t !== undefined) {
    const row = t.get(cpu.lastOpLabel) ?? { ops: 0, cycles: 0 };
    row.ops++;
    row.cycles += cpu.retired - t0;
    t.set(cpu.lastOpLabel, row);
  }
  return r;
}

function* round(k: Kernel, cpu: Cpu, t: Timing | undefined): Task {
  const p = yield* timed(cpu, t, m_getcl(k, cpu, M_DONTWAIT, MT_DATA, M_PKTHDR));
  yield* timed(cpu, t, m_freem(k, cpu, p));
  const h = yield* timed(cpu, t, m_gethdr(k, cpu, M_DONTWAIT, MT_DATA));
  yield* timed(cpu, t, m_clget(k, cpu, h, M_DONTWAIT));
  yield* timed(cpu, t, m_freem(k, cpu, h));
  const m = yield* timed(cpu, t, m_get(k, cpu, M_DONTWAIT, MT_DATA));
  yield* timed(cpu, t, m_free(k, cpu, m));
  const c = yield* timed(cpu, t, m_getm(k, cpu, 0, 5000, M_DONTWAIT, MT_DATA));
  yield* timed(cpu, t, m_freem(k, cpu, c));
}

function phase(cpus: number, opts: MbufOptions): Record<string, Record<string, number>> {
  const m = new Machine(loadMachineConfig('amd64-host', { cpus }));
  const k = boot(m);
  onCpu(m, 0, (cpu) => mbuf_init(k, cpu, opts));
  m.runAll((cpu) => round(k, cpu, undefined));
  const t: Timing = new Map();
  const before = m.snapshot();
  m.runAll(function* (cpu) {
    for (let i = 0; i < 100; i++) {
      yield* cpu.checkpoint();
      yield* round(k, cpu, t);
    }
  });
  const d = m.snapshot().minus(before);
  const out: Record<string, Record<string, number>> = {};
  for (const l of labels) {
    const row = t.get(k.label[l]);
    if (row !== undefined) out[l] = { ...row, cyclesPerOp: Math.round((row.cycles / row.ops) * 10) / 10 };
  }
  out.phase = { c2cTransfers: d.total('coherence.c2cTransfer'), spinCycles: d.total('lock.spinCycles') };
  return out;
}

describe('golden: mbufs', () => {
  it('cycles per mbuf operation by path: 1 CPU with and without the packet zone, and 2 CPUs at once', () => {
    expectGolden('mbuf-paths', {
      packetZone1: phase(1, {}),
      noPacketZone1: phase(1, { packetZone: false }),
      packetZone2: phase(2, {}),
    });
  });
});
