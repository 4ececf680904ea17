// Trace format version 2, mbufs: `b OBJ KIND` and `B OBJ` read, written, checked against the
// Rules, counted by trace stats, and replayed on the mbuf allocator.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ev, traceFiles } from './trace-files.js';
import { loadMachineConfig } from '../../emu/index.js';
import { OP_MBUF, OP_MFREEM, OP_THINK, TraceReader, TraceStats, TraceWriter, replay } from '../../traces/index.js';
import type { TraceEvent } from '../../traces/index.js';

const { scratch, traceFile, readAll, readError } = traceFiles('kmemu-trace-mbuf-');

const MB_TEXT = [
  'kmemu-trace 2',
  '# cpus: 2',
  '0 b 1 cluster',
  '0 b 2 pkthdr',
  '1 b 3 mbuf',
  '1 b 4 chain:7',
  '0\tb  5\tchain:064',
  '1 B 1',
  '1 B 2',
  '0 B 3',
  '1 B 4',
  '0 B 5',
  '',
].join('\n');

const MB_EVENTS: TraceEvent[] = [
  ev({ op: OP_MBUF, obj: 1, mbuf: 'cluster' }),
  ev({ op: OP_MBUF, obj: 2, mbuf: 'pkthdr' }),
  ev({ cpu: 1, op: OP_MBUF, obj: 3, mbuf: 'mbuf' }),
  ev({ cpu: 1, op: OP_MBUF, obj: 4, mbuf: 'chain', size: 7 }),
  ev({ op: OP_MBUF, obj: 5, mbuf: 'chain', size: 64 }),
  ev({ cpu: 1, op: OP_MFREEM, obj: 1 }),
  ev({ cpu: 1, op: OP_MFREEM, obj: 2 }),
  ev({ op: OP_MFREEM, obj: 3 }),
  ev({ cpu: 1, op: OP_MFREEM, obj: 4 }),
  ev({ op: OP_MFREEM, obj: 5 }),
];

describe('trace format version 2: mbufs', () => {
  it('TraceReader reads b lines of every kind (chain:N with N in size) and B lines', async () => {
    const { events, reader } = await readAll(traceFile('mb.trace', MB_TEXT));
    expect(reader.formatVersion).toBe(2);
    expect(events).toEqual(MB_EVENTS);
    expect(reader.liveObjects).toBe(0);
  });

  it('TraceWriter writes b and B lines that read back as the same events, in canonical text', async () => {
    const file = scratch('rt.trace');
    const w = TraceWriter.create(file, { cpus: 2 }, { version: 2 });
    for (const e of MB_EVENTS) w.write(e);
    w.close();
    expect(fs.readFileSync(file, 'utf8')).toBe(MB_TEXT.replace('0\tb  5\tchain:064', '0 b 5 chain:64'));
    expect((await readAll(file)).events).toEqual(MB_EVENTS);
  });

  it('TraceWriter refuses b and B in a version-1 trace, a chain of 0 or 65 mbufs and an unknown kind', () => {
    const w = TraceWriter.create(scratch('w1.trace'), {});
    expect(() => w.mbuf(0, 1, 'cluster')).toThrow('a version-1 trace cannot hold "b" events: create the writer with version 2');
    expect(() => w.mfreem(0, 1)).toThrow('a version-1 trace cannot hold "B" events: create the writer with version 2');
    w.abort();
    const w2 = TraceWriter.create(scratch('w2.trace'), {}, { version: 2 });
    expect(() => w2.mbuf(0, 1, 'chain', 0)).toThrow('an mbuf chain has 1 to 64 mbufs, not 0');
    expect(() => w2.mbuf(0, 1, 'chain', 65)).toThrow('an mbuf chain has 1 to 64 mbufs, not 65');
    expect(() => w2.mbuf(0, 1, 'jumbo' as 'mbuf')).toThrow('not an mbuf kind: "jumbo"');
    w2.abort();
  });

  it.each([
    ['0 b 1 cluster', 'T:2: the "b" op needs format version 2; this trace\'s header says "kmemu-trace 1"'],
    ['0 B 1', 'T:2: the "B" op needs format version 2; this trace\'s header says "kmemu-trace 1"'],
  ])('a version-1 trace refuses %j, naming the line', async (line, message) => {
    expect(await readError(`kmemu-trace 1\n${line}\n`)).toBe(message);
    expect(await readError(`kmemu-trace 1\n${line}\n`, { lenient: true })).toBe(message);
  });

  const H = 'kmemu-trace 2\n0 b 1 mbuf\n';
  it.each([
    ['0 b 2', 'T:3: expected "CPU b OBJ KIND", got "0 b 2"'],
    ['0 b 2 chain:2 x', 'T:3: expected "CPU b OBJ KIND", got "0 b 2 chain:2 x"'],
    ['0 b x mbuf', 'T:3: expected an object id, got "x"'],
    ['0 b 2 jumbo', 'T:3: expected an mbuf kind (mbuf, pkthdr, cluster, chain:N), got "jumbo"'],
    ['0 b 2 Cluster', 'T:3: expected an mbuf kind (mbuf, pkthdr, cluster, chain:N), got "Cluster"'],
    ['0 b 2 chain', 'T:3: expected chain:N, a chain of 1 to 64 mbufs, got "chain"'],
    ['0 b 2 chain:', 'T:3: expected chain:N, a chain of 1 to 64 mbufs, got "chain:"'],
    ['0 b 2 chain:0', 'T:3: expected chain:N, a chain of 1 to 64 mbufs, got "chain:0"'],
    ['0 b 2 chain:65', 'T:3: expected chain:N, a chain of 1 to 64 mbufs, got "chain:65"'],
    ['0 b 2 chain:-1', 'T:3: expected chain:N, a chain of 1 to 64 mbufs, got "chain:-1"'],
    ['0 b 2 chain:0x10', 'T:3: expected chain:N, a chain of 1 to 64 mbufs, got "chain:0x10"'],
    ['0 B', 'T:3: expected "CPU B OBJ", got "0 B"'],
    ['0 B 1 cluster', 'T:3: expected "CPU B OBJ", got "0 B 1 cluster"'],
    ['0 B -1', 'T:3: expected an object id, got "-1"'],
  ])('TraceReader refuses %j in a version-2 trace, lenient or not', async (line, message) => {
    expect(await readError(`${H}${line}\n`)).toBe(message);
    expect(await readError(`${H}${line}\n`, { lenient: true })).toBe(message);
  });

  it.each([
    ['0 b 1 cluster', 'T:3: allocation of object 1, which is already live', 'allocations of live objects'],
    ['0 B 2', 'T:3: free of object 2, which is not live', 'frees of objects not live'],
    ['0 x 1', 'T:3: free of object 1 with "x", which was allocated with "b"', 'frees of the wrong kind'],
    ['0 V 1', 'T:3: free of object 1 with "V", which was allocated with "b"', 'frees of the wrong kind'],
    ['0 m 64 2\n0 B 2', 'T:4: free of object 2 with "B", which was allocated with "m"', 'frees of the wrong kind'],
  ])('the object-id rules apply to b and B: %j, and the lenient reader counts and skips it', async (lines, message, reason) => {
    expect(await readError(`${H}${lines}\n`)).toBe(message);
    const { events, reader } = await readAll(traceFile('lenient.trace', `${H}${lines}\n0 t 1\n`), { lenient: true });
    expect(events.at(-1)!.op).toBe(OP_THINK);
    expect(reader.skipped()).toEqual({ [reason]: 1 });
  });

  it('an mbuf id is live again after its B, on any CPU', async () => {
    const { events } = await readAll(traceFile('reuse.trace', 'kmemu-trace 2\n0 b 1 mbuf\n1 B 1\n1 b 1 chain:3\n0 B 1\n'));
    expect(events.map((e) => [e.cpu, e.op, e.mbuf, e.size])).toEqual([[0, OP_MBUF, 'mbuf', 0], [1, OP_MFREEM, null, 0], [1, OP_MBUF, 'chain', 3], [0, OP_MFREEM, null, 0]]);
  });

  it('TraceStats counts b by kind, the mbufs of the chains, B, and frees on another CPU; b is not in the size histogram', async () => {
    const { events } = await readAll(traceFile('mbs.trace', MB_TEXT));
    const s = new TraceStats(2);
    for (const e of events) s.add(e);
    const sum = s.summary();
    expect(sum.byOp).toEqual({ zone: 0, a: 0, f: 0, m: 0, x: 0, P: 0, Q: 0, t: 0, arena: 0, v: 0, V: 0, b: 5, B: 5 });
    expect(sum.mbufs).toEqual({ mbuf: 1, pkthdr: 1, cluster: 1, chain: 2, chainMbufs: 71 });
    expect(sum.cpus).toEqual([{ cpu: 0, events: 5, allocs: 3, frees: 2 }, { cpu: 1, events: 5, allocs: 2, frees: 3 }]);
    expect(sum.crossCpuFrees).toBe(3);
    expect([sum.live, sum.maxLive]).toEqual([0, 5]);
    expect(sum.sizes).toEqual([]);
  });
});

describe('replay of mbuf events', () => {
  const run = async (text: string, packetZone = true) => {
    const file = traceFile('replay-mb.trace', text);
    const reader = await TraceReader.open(file);
    try {
      return await replay(reader, { machine: loadMachineConfig('coursework', { cpus: 2 }), allocator: 'uma', packetZone });
    } finally {
      await reader.close();
    }
  };
  const paths = (rows: { path: string; ops: number }[]) => Object.fromEntries(rows.map((r) => [r.path, r.ops]));
  const TEXT = 'kmemu-trace 2\n# cpus: 2\n0 b 1 cluster\n0 b 2 mbuf\n0 b 3 pkthdr\n1 b 4 chain:3\n1 B 1\n1 B 2\n0 B 3\n0 B 4\n';

  it('runs every kind on the CPU the trace gives, files each under its mbuf path, and ends with netstat -m', async () => {
    const r = await run(TEXT);
    expect(r.mbuf).toBeDefined();
    expect(paths(r.mbuf!.allocs)).toEqual({ 'mbuf.getcl': 1, 'mbuf.get': 2, 'mbuf.getm': 1 });
    expect(paths(r.mbuf!.frees)).toEqual({ 'mbuf.free_ext': 1, 'mbuf.free': 3 });
    expect([r.mbuf!.packetZone, r.mbuf!.failures, r.mbuf!.skippedFrees]).toEqual([true, 0, 0]);
    const n = r.mbuf!.netstat;
    // Everything was freed: nothing in use, the packet zone's bucket of packets cached.
    expect([n.mbufs.current, n.clusters.current, n.packets.current]).toEqual([0, 0, 0]);
    expect(n.packets.cache).toBeGreaterThan(0);
    expect(r.totals.allocations).toBe(4);
    expect(r.totals.frees).toBe(4);
  });

  it('--no-packet-zone: m_getcl is an mbuf and a cluster from their own zones, and no packet is ever made', async () => {
    const r = await run(TEXT, false);
    expect(r.mbuf!.packetZone).toBe(false);
    expect(r.mbuf!.netstat.packets).toEqual({ current: 0, cache: 0 });
    expect(r.mbuf!.netstat.clusters.cache).toBeGreaterThan(0);
    expect(paths(r.mbuf!.frees)).toEqual({ 'mbuf.free_ext': 1, 'mbuf.free': 3 });
  });

  it('is deterministic: the same trace gives the same report, byte for byte', async () => {
    expect(JSON.stringify(await run(TEXT))).toBe(JSON.stringify(await run(TEXT)));
  });
});
