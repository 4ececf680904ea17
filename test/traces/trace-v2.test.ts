// Trace format version 2: vmem arenas and their allocations (`arena`, `v`, `V`), and version 1
// read and written exactly as before (the mbuf ops `b`/`B` are in trace-mbuf.test.ts).
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ev, traceFiles } from './trace-files.js';
import {
  OP_ALLOC, OP_ARENA, OP_THINK, OP_VALLOC, OP_VFREE, OP_ZONE, TraceStats, TraceWriter, newVmemArgs,
} from '../../traces/index.js';
import type { TraceEvent, VmemArgs } from '../../traces/index.js';

const { scratch, traceFile, readAll, readError } = traceFiles('kmemu-trace-v2-');
const args = (fields: Partial<VmemArgs>): VmemArgs => ({ ...newVmemArgs(), ...fields });

const V2_TEXT = [
  'kmemu-trace 2',
  '# cpus: 2',
  '0 arena 1 kernel_arena 0xfffffe0000000000 549755813888 4096 0',
  '0 arena 2 kmem 0 0 4096 32768 import 1 2097152',
  '1 arena 3 ids 0x1 0x1000 1 0',
  '0 v 2 10 8192',
  '1 v 1 11 4096 bestfit align=8192 phase=4096',
  '1 v 3 12 0x10 nextfit nocross=16',
  '0 V 11',
  '1 V 10',
  '0 V 12',
  '',
].join('\n');

const V2_EVENTS: TraceEvent[] = [
  ev({ op: OP_ARENA, zone: 1, name: 'kernel_arena', vmem: args({ base: 0xfffffe0000000000n, span: 549755813888n, quantum: 4096n }) }),
  ev({ op: OP_ARENA, zone: 2, name: 'kmem', vmem: args({ quantum: 4096n, qcacheMax: 32768n, parent: 1, importQuantum: 2097152n }) }),
  ev({ cpu: 1, op: OP_ARENA, zone: 3, name: 'ids', vmem: args({ base: 1n, span: 4096n, quantum: 1n }) }),
  ev({ op: OP_VALLOC, zone: 2, obj: 10, size: 8192 }),
  ev({ cpu: 1, op: OP_VALLOC, zone: 1, obj: 11, size: 4096, vmem: args({ strat: 'bestfit', align: 8192n, phase: 4096n }) }),
  ev({ cpu: 1, op: OP_VALLOC, zone: 3, obj: 12, size: 16, vmem: args({ strat: 'nextfit', nocross: 16n }) }),
  ev({ op: OP_VFREE, obj: 11 }),
  ev({ cpu: 1, op: OP_VFREE, obj: 10 }),
  ev({ op: OP_VFREE, obj: 12 }),
];

describe('trace format version 2', () => {
  it('TraceReader reads arena, v and V lines, 64-bit bases exact', async () => {
    const { events, reader } = await readAll(traceFile('v2.trace', V2_TEXT));
    expect(reader.formatVersion).toBe(2);
    expect(events).toEqual(V2_EVENTS);
  });

  it('TraceWriter writes version 2 lines that read back as the same events, and the text is canonical', async () => {
    const file = scratch('rt2.trace');
    const w = TraceWriter.create(file, { cpus: 2 }, { version: 2 });
    for (const e of V2_EVENTS) w.write(e);
    w.close();
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toBe([
      'kmemu-trace 2',
      '# cpus: 2',
      '0 arena 1 kernel_arena 0xfffffe0000000000 549755813888 4096 0',
      '0 arena 2 kmem 0x0 0 4096 32768 import 1 2097152',
      '1 arena 3 ids 0x1 4096 1 0',
      '0 v 2 10 8192',
      '1 v 1 11 4096 bestfit align=8192 phase=4096',
      '1 v 3 12 16 nextfit nocross=16',
      '0 V 11',
      '1 V 10',
      '0 V 12',
      '',
    ].join('\n'));
    expect((await readAll(file)).events).toEqual(V2_EVENTS);
  });

  it('TraceWriter writes version 1 by default and refuses a version-2 op there', () => {
    const file = scratch('v1.trace');
    const w = TraceWriter.create(file, {});
    w.zone(0, 1, 'z', 64);
    expect(() => w.valloc(0, 1, 1, 4096)).toThrow('a version-1 trace cannot hold "v" events: create the writer with version 2');
    w.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('kmemu-trace 1\n0 zone 1 z 64\n');
  });

  it('a version-1 file reads as before under a version-2 reader', async () => {
    const { events, reader } = await readAll(traceFile('v1.trace', 'kmemu-trace 1\n0 zone 1 z 64\n0 a 1 1\n0 t 5\n'));
    expect(reader.formatVersion).toBe(1);
    expect(events).toEqual([ev({ op: OP_ZONE, zone: 1, name: 'z', size: 64 }), ev({ op: OP_ALLOC, zone: 1, obj: 1 }), ev({ op: OP_THINK, size: 5 })]);
  });

  const H = 'kmemu-trace 2\n0 arena 1 a 0x10000 0x100000 4096 16384\n';
  it.each([
    ['0 q 1', 'T:3: expected an op (zone, a, f, m, x, P, Q, t, arena, v, V, b, B), got "q"'],
    ['0 arena 2 b 0 0 4096', 'T:3: expected "CPU arena ARENA NAME BASE SIZE QUANTUM QCACHE_MAX [import PARENT [IMPORT_QUANTUM]]", got "0 arena 2 b 0 0 4096"'],
    ['0 arena 2 b 0 0 4096 0 import', 'T:3: expected "CPU arena ARENA NAME BASE SIZE QUANTUM QCACHE_MAX [import PARENT [IMPORT_QUANTUM]]", got "0 arena 2 b 0 0 4096 0 import"'],
    ['0 arena 2 b 0 0 4096 0 from 1', 'T:3: expected "import PARENT [IMPORT_QUANTUM]", got "from 1"'],
    ['0 arena x b 0 0 4096 0', 'T:3: expected an arena id, got "x"'],
    ['0 arena 2 a_name_of_17_chars 0 0 4096 0', 'T:3: expected an arena name of at most 16 characters, got "a_name_of_17_chars"'],
    ['0 arena 2 b -1 0 4096 0', 'T:3: expected an arena base address (0-0xffffffffffffffff, decimal or 0x-hex), got "-1"'],
    ['0 arena 2 b 0x10000000000000000 0 4096 0', 'T:3: expected an arena base address (0-0xffffffffffffffff, decimal or 0x-hex), got "0x10000000000000000"'],
    ['0 arena 2 b 0 1e6 4096 0', 'T:3: expected an arena size in bytes (0-0xffffffffffffffff, decimal or 0x-hex), got "1e6"'],
    ['0 arena 2 b 0xfffffffffffff000 0x2000 4096 0', 'T:3: expected an arena size that ends the span at or below 2^64 (BASE + SIZE), got "0x2000"'],
    ['0 arena 2 b 0 0 3000 0', 'T:3: expected a quantum (a power of two from 1 to 4294967296), got "3000"'],
    ['0 arena 2 b 0 0 0 0', 'T:3: expected a quantum (a power of two from 1 to 4294967296), got "0"'],
    ['0 arena 2 b 0 0 4096 100', 'T:3: expected a quantum cache limit (a multiple of the quantum, at most 16 quanta), got "100"'],
    ['0 arena 2 b 0 0 4096 69632', 'T:3: expected a quantum cache limit (a multiple of the quantum, at most 16 quanta), got "69632"'],
    ['0 arena 2 b 0x800 0x1000 4096 0', 'T:3: expected an arena span (BASE and SIZE) in whole quanta, got "0x800 0x1000"'],
    ['0 arena 2 b 0 0 4096 0 import 1 100', 'T:3: expected an import quantum (a multiple of the quantum, at least one), got "100"'],
    ['0 v 1 5', 'T:3: expected "CPU v ARENA OBJ SIZE [STRAT] [align=A] [phase=P] [nocross=N]", got "0 v 1 5"'],
    ['0 v 1 5 0', 'T:3: expected a vmem size in bytes (1-9007199254740991, decimal or 0x-hex), got "0"'],
    ['0 v 1 5 9007199254740992', 'T:3: expected a vmem size in bytes (1-9007199254740991, decimal or 0x-hex), got "9007199254740992"'],
    ['0 v 1 5 4096 worstfit', 'T:3: expected a vmem option (firstfit, bestfit, nextfit, align=A, phase=P, nocross=N), got "worstfit"'],
    ['0 v 1 5 4096 align=8192 bestfit', 'T:3: expected the strategy right after SIZE, got "bestfit"'],
    ['0 v 1 5 4096 align=8192 align=8192', 'T:3: expected each vmem option at most once, got "align=8192"'],
    ['0 v 1 5 4096 align=12288', 'T:3: expected align=A, a power of two (up to 9007199254740991, decimal or 0x-hex), got "align=12288"'],
    ['0 v 1 5 4096 nocross=0', 'T:3: expected nocross=N, a power of two (up to 9007199254740991, decimal or 0x-hex), got "nocross=0"'],
    ['0 v 1 5 4096 phase=x', 'T:3: expected phase=P, a number of bytes (up to 9007199254740991, decimal or 0x-hex), got "phase=x"'],
    ['0 v 1 5 4096 align=2048', 'T:3: expected align= a multiple of arena 1\'s quantum (4096), got "align=2048"'],
    ['0 v 1 5 4096 align=8192 phase=8192', 'T:3: expected phase= below align=8192, got "phase=8192"'],
    ['0 v 1 5 4096 phase=4096', 'T:3: expected phase= below align=0, got "phase=4096"'],
    ['0 v 1 5 8193 nocross=8192', 'T:3: expected nocross= at least the size rounded to the quantum (12288), got "nocross=8192"'],
    ['0 v 1 5 8192 align=16384 phase=12288 nocross=16384', 'T:3: expected a phase= at which the segment does not cross a nocross=16384 boundary, got "phase=12288"'],
    ['0 V', 'T:3: expected "CPU V OBJ", got "0 V"'],
    ['0 V 1 2', 'T:3: expected "CPU V OBJ", got "0 V 1 2"'],
  ])('TraceReader refuses %j in a version-2 trace', async (line, message) => {
    expect(await readError(`${H}${line}\n`)).toBe(message);
    expect(await readError(`${H}${line}\n`, { lenient: true })).toBe(message);
  });

  it.each([
    ['0 arena 1 b 0 0 4096 0', 'T:3: arena 1 was already created', 'arenas created twice'],
    ['0 arena 2 b 0 0 4096 0 import 7', 'T:3: arena 7 was not created', 'uses of arenas not created'],
    ['0 v 7 1 4096', 'T:3: arena 7 was not created', 'uses of arenas not created'],
    ['0 V 9', 'T:3: free of object 9, which is not live', 'frees of objects not live'],
  ])('TraceReader refuses %j, and the lenient reader counts and skips it', async (line, message, reason) => {
    expect(await readError(`${H}${line}\n`)).toBe(message);
    const { events, reader } = await readAll(traceFile('lenient.trace', `${H}${line}\n0 t 1\n`), { lenient: true });
    expect(events.map((e) => e.op)).toEqual([OP_ARENA, OP_THINK]);
    expect(reader.skipped()).toEqual({ [reason]: 1 });
  });

  it.each([
    ['0 v 1 5 4096\n0 v 1 5 4096', 'T:4: allocation of object 5, which is already live'],
    ['0 m 64 5\n0 V 5', 'T:4: free of object 5 with "V", which was allocated with "m"'],
    ['0 v 1 5 4096\n0 x 5', 'T:4: free of object 5 with "x", which was allocated with "v"'],
    ['0 v 1 5 4096\n0 Q 5', 'T:4: free of object 5 with "Q", which was allocated with "v"'],
  ])('the object-id rules apply to v and V: %j', async (lines, message) => {
    expect(await readError(`${H}${lines}\n`)).toBe(message);
  });

  it('TraceStats counts arenas, v and V; a version-1 trace keeps the version-1 ops only', async () => {
    const { events } = await readAll(traceFile('v2s.trace', V2_TEXT));
    const s = new TraceStats(2);
    for (const e of events) s.add(e);
    const sum = s.summary();
    expect(sum.byOp).toEqual({ zone: 0, a: 0, f: 0, m: 0, x: 0, P: 0, Q: 0, t: 0, arena: 3, v: 3, V: 3, b: 0, B: 0 });
    expect(sum.arenas).toEqual([
      { id: 1, name: 'kernel_arena', quantum: 4096, allocs: 1, frees: 1 },
      { id: 2, name: 'kmem', quantum: 4096, allocs: 1, frees: 1 },
      { id: 3, name: 'ids', quantum: 1, allocs: 1, frees: 1 },
    ]);
    expect(sum.crossCpuFrees).toBe(3);
    expect(sum.sizes).toEqual([{ above: 8, upTo: 16, count: 1 }, { above: 2048, upTo: 4096, count: 1 }, { above: 4096, upTo: 8192, count: 1 }]);
    const v1 = new TraceStats();
    expect(Object.keys(v1.summary().byOp)).toEqual(['zone', 'a', 'f', 'm', 'x', 'P', 'Q', 't']);
    expect('arenas' in v1.summary()).toBe(false);
    expect('mbufs' in v1.summary()).toBe(false);
  });
});
