// A ViewBackend without a machine, for the server's tests: its state is a counter whose figures
// follow from the position, every call is logged with its start and end, and a step can be made
// slow to show that the server runs calls one at a time.
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../../emu/index.js';
import type { ViewBackend } from '../../tools/view/server.js';
import type { ViewAnswer, ViewState } from '../../tools/view/state.js';

export const FAKE_TOTAL = 40;
export const FAKE_PATHS = ['uma.alloc.cpucache', 'uma.free.cpucache', 'uma.alloc.depot'] as const;

const hex = (n: number) => `0x${n.toString(16)}`;

/** The fake's state at `position`: even events on CPU 0, odd on CPU 1; paths cycle through FAKE_PATHS. */
export function fakeState(position: number): ViewState {
  const bucket = (cpu: number) => ({ address: hex(0x10000 + cpu * 0x100), count: (position + cpu) % 8, entries: 8, items: Array.from({ length: (position + cpu) % 8 }, (_, i) => hex(0x200000 + i * 64)) });
  const paths = FAKE_PATHS.map((path, i) => {
    const ops = Math.floor((position + FAKE_PATHS.length - 1 - i) / FAKE_PATHS.length);
    return { path, ops, cycles: ops * (i + 1) * 40 };
  }).filter((p) => p.ops > 0);
  return {
    position,
    total: FAKE_TOTAL,
    done: position === FAKE_TOTAL,
    run: { trace: 'fake.trace', machine: 'fake', allocator: 'uma', pcpu: true, aligned: false, cpus: 2, label: 'fake.trace on fake (2 CPUs), allocator uma' },
    cpus: [0, 1].map((id) => ({ id, clock: position * 100 + id, status: position === FAKE_TOTAL ? 'done' : 'run', labels: [], events: Math.floor((position + 1 - id) / 2), holds: [], spinsOn: null })),
    focus: 'pairs',
    zones: [{
      allocator: 'uma', name: 'pairs', address: hex(0xffff8000), itemSize: 64,
      lock: { name: 'zone pairs', address: hex(0xffff8040), line: hex(0x8040), word: 0, holder: null, waiters: [], spinCycles: position * 3 },
      pcpu: [0, 1].map((cpu) => ({ cpu, alloc: bucket(cpu), free: null, allocs: position, frees: position })),
      depot: { full: [], free: [] },
      slabs: { part: [{ address: hex(0x300000), free: 10, ipers: 63 }], full: [], free: [] },
      used: position, free: 63 - position,
    }],
    lines: [{ line: hex(0x8000), what: 'pairs: zone header', zone: 'pairs', l1: ['S', position % 2 === 0 ? 'S' : 'I'], l2: ['S', 'S'], llc: true, llcDirty: false, touched: position > 0, touchedBy: [position % 2], written: false, transfers: 0, invalidations: 0 }],
    tlb: [{ cpu: 0, entries: [] }, { cpu: 1, entries: [] }],
    walk: null,
    last: position === 0 ? null : {
      cpu: (position - 1) % 2, op: 'a', what: `a ${hex(0x200000)} from pairs`, traceLine: position + 3,
      path: FAKE_PATHS[(position - 1) % FAKE_PATHS.length]!, opCycles: 40,
      counts: { cycles: 50, l1dMisses: 1, l2Misses: 0, llcMisses: 0, c2cTransfers: 0, invalidations: 0, tlbMisses: 0, walkCycles: 0, spinCycles: 0, idleCycles: 0, atomics: 0 },
      eventCycles: 50,
      text: `event ${position}: 40 cycles`,
    },
    lock: null,
    timeline: Array.from({ length: position }, (_, i) => ({ n: i + 1, cpu: i % 2, start: i * 100, end: i * 100 + 40, path: FAKE_PATHS[i % FAKE_PATHS.length]! })),
    paths,
  };
}

export interface FakeCall {
  call: string;
  arg: number | string | null;
  start: number;
  end: number;
}

export class FakeBackend implements ViewBackend {
  position = 0;
  calls: FakeCall[] = [];
  closed = false;
  /** How long each step takes, in ms. */
  delayMs = 0;
  private clock = 0;

  focused: string | null = null;

  answer(): ViewAnswer {
    return { mode: 'single', state: fakeState(this.position), message: null };
  }

  focus(zone: string | null): ViewAnswer {
    this.focused = zone;
    this.calls.push({ call: 'focus', arg: zone, start: this.clock++, end: this.clock++ });
    return this.answer();
  }

  private async move(call: string, arg: number | string | null, to: () => number): Promise<ViewAnswer> {
    const start = this.clock++;
    if (this.delayMs > 0) await sleep(this.delayMs);
    const next = to();
    this.position = Math.max(0, Math.min(FAKE_TOTAL, next));
    this.calls.push({ call, arg, start, end: this.clock++ });
    return this.answer();
  }

  step(n: number) {
    return this.move('step', n, () => this.position + n);
  }
  stepCpu(cpu: number) {
    if (cpu > 1) return Promise.reject(new UsageError(`cpu ${cpu}: the machine has CPUs 0 to 1`));
    return this.move('stepCpu', cpu, () => this.position + 1 + (this.position % 2 === cpu ? 0 : 1));
  }
  stepPath(path: string) {
    if (!(FAKE_PATHS as readonly string[]).includes(path)) return Promise.reject(new UsageError(`unknown path "${path}"`));
    return this.move('stepPath', path, () => this.position + 1);
  }
  stepLock() {
    return this.move('stepLock', null, () => this.position + 1);
  }
  runToEnd() {
    return this.move('runToEnd', null, () => FAKE_TOTAL);
  }
  back(n: number) {
    return this.move('back', n, () => this.position - n);
  }
  goto(position: number) {
    return this.move('goto', position, () => position);
  }
  async close() {
    this.closed = true;
  }
}
