// kmemu view's replay side (tools/view/session.ts): viewing changes no figure, stepping back
// reaches the same state as stepping forward, and the state shows what the kernel holds.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { presetConfig, validateMachineConfig } from '../../emu/index.js';
import { TraceReader, replay, type ReplayOptions } from '../../traces/index.js';
import { ViewSession, openView } from '../../tools/view/session.js';
import type { ViewState } from '../../tools/view/state.js';

const PAIRS = path.join(import.meta.dirname, '../fixtures/traces/pairs-4cpu.trace');

function options(allocator: 'uma' | 'vmzone', pcpu = true, cpus = 2): ReplayOptions {
  return { machine: validateMachineConfig({ ...presetConfig('amd64-host'), cpus }), allocator, pcpu, traceName: 'pairs-4cpu.trace' };
}

async function plainReport(o: ReplayOptions) {
  const reader = await TraceReader.open(PAIRS);
  try {
    return await replay(reader, o);
  } finally {
    await reader.close();
  }
}

describe('kmemu view session', () => {
  for (const allocator of ['uma', 'vmzone'] as const) {
    it(`${allocator}: a replay viewed after every event reports what kmemu replay reports, byte for byte`, async () => {
      const o = options(allocator);
      const s = await ViewSession.open(PAIRS, o);
      let states = 0;
      while (!s.done) {
        await s.step(1);
        s.state();
        states++;
      }
      // 2,010 events, and a last step that finds the trace's end.
      expect(states).toBe(2011);
      expect(JSON.stringify(s.report)).toBe(JSON.stringify(await plainReport(o)));
      await s.close();
    });
  }

  it('stepping back re-executes to the very state stepping forward reached', async () => {
    const s = await ViewSession.open(PAIRS, options('uma'));
    await s.step(10);
    const at10 = JSON.stringify(s.state());
    await s.step(7);
    expect(s.position).toBe(17);
    await s.goto(10);
    expect(JSON.stringify(s.state())).toBe(at10);
    await s.goto(0);
    expect(s.state().position).toBe(0);
    expect(s.state().last).toBeNull();
    await s.step(10);
    expect(JSON.stringify(s.state())).toBe(at10);
    await s.close();
  });

  it('shows the per-CPU buckets, the depot and the lock after ten events', async () => {
    const s = await ViewSession.open(PAIRS, options('uma'));
    await s.step(10);
    const st: ViewState = s.state();
    const zone = st.zones.find((z) => z.name === 'kmalloc-64');
    expect(zone).toBeDefined();
    expect(st.position).toBe(10);
    expect(st.cpus.map((c) => c.events).reduce((a, b) => a + b, 0)).toBe(10);
    expect(st.last?.text).toMatch(/ cycles? — \d+ L1D miss/);
    await s.close();
  });

  it('steps to the next event on a CPU and to the next event on a path', async () => {
    const b = await openView(PAIRS, { allocator: 'uma', touch: '1', zones: '8', sysctl: [], machine: 'amd64-host', cpus: '2' } as never);
    const a1 = await b.stepCpu(1);
    expect(a1.mode).toBe('single');
    if (a1.mode !== 'single') return;
    expect(a1.state.last?.cpu).toBe(1);
    const a2 = await b.stepPath('uma.free.depot');
    if (a2.mode !== 'single') return;
    expect(a2.state.last?.path).toBe('uma.free.depot');
    const a3 = await b.stepPath('no.such.path');
    expect(a3.message).toMatch(/no further event takes path no\.such\.path: ran to the end/);
    if (a3.mode === 'single') expect(a3.state.done).toBe(true);
    await b.close();
  });
});
