import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { ev, traceFiles } from './trace-files.js';
import { openAtomicOutputs } from '../../traces/atomic-output.js';
import {
  MAX_ITEM_SIZE, MAX_MALLOC_SIZE, MAX_PAGE_ORDER, OP_ALLOC, OP_FREE, OP_MALLOC, OP_MFREE, OP_PALLOC, OP_PFREE, OP_THINK, OP_ZONE,
  TraceReader, TraceWriter, generate, generatedHeader, importLinuxKmem, newEvent, openAtomic, writeFileAtomic,
} from '../../traces/index.js';
import type { TraceEvent, TraceReaderOptions } from '../../traces/index.js';

const { scratch, traceFile, readError } = traceFiles('kmemu-trace-io-');
const tmp = path.dirname(scratch('x'));

const EVENTS: TraceEvent[] = [
  ev({ cpu: 0, op: OP_ZONE, zone: 1, name: 'kmalloc-64', size: 64 }),
  ev({ cpu: 0, op: OP_ZONE, zone: 2, name: 'dentry', size: 192, flags: ['reclaim', 'nofree'] }),
  ev({ cpu: 0, op: OP_ALLOC, zone: 1, obj: 17 }),
  ev({ cpu: 1, op: OP_THINK, size: 250 }),
  ev({ cpu: 1, op: OP_MALLOC, size: 100, obj: 18 }),
  ev({ cpu: 3, op: OP_FREE, zone: 1, obj: 17 }),
  ev({ cpu: 1, op: OP_MFREE, obj: 18 }),
  ev({ cpu: 4095, op: OP_PALLOC, size: 2, obj: 2 ** 53 - 1 }),
  ev({ cpu: 0, op: OP_PFREE, obj: 2 ** 53 - 1 }),
  ev({ cpu: 2, op: OP_ALLOC, zone: 2, obj: 17 }),
];

/** Reads every event of `file` (copies), the reader after the end. */
async function readAll(file: string, options: TraceReaderOptions = {}): Promise<{ events: TraceEvent[]; reader: TraceReader }> {
  const reader = await TraceReader.open(file, options);
  const events: TraceEvent[] = [];
  for (let batch = await reader.next(); batch !== null; batch = await reader.next()) {
    for (const e of batch) events.push({ ...e, flags: e.flags.slice() });
  }
  await reader.close();
  return { events, reader };
}

function withoutLines(events: TraceEvent[]): TraceEvent[] {
  return events.map((e) => ({ ...e, line: 0 }));
}


describe('TraceWriter and TraceReader', () => {
  it.each(['rt.trace', 'rt.trace.gz'])('a trace written with TraceWriter reads back as the same events (%s)', async (name) => {
    const file = path.join(tmp, name);
    const w = TraceWriter.create(file, { meta: { source: 'test, hand-made' }, cpus: 4096 });
    for (const e of EVENTS) w.write(e);
    w.close();
    expect(w.events).toBe(EVENTS.length);
    const raw = fs.readFileSync(file);
    expect(raw[0] === 0x1f && raw[1] === 0x8b).toBe(name.endsWith('.gz'));
    const text = name.endsWith('.gz') ? gunzipSync(raw).toString() : raw.toString();
    expect(text.split('\n').slice(0, 6)).toEqual(['kmemu-trace 1', '# source: test, hand-made', '# cpus: 4096', '0 zone 1 kmalloc-64 64', '0 zone 2 dentry 192 reclaim nofree', '0 a 1 17']);
    const { events, reader } = await readAll(file);
    expect(withoutLines(events)).toEqual(EVENTS);
    expect(events.map((e) => e.line)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(reader.header).toEqual({ meta: { source: 'test, hand-made', cpus: '4096' }, cpus: 4096 });
    expect(reader.events).toBe(EVENTS.length);
    expect(reader.liveObjects).toBe(1);
  });

  it('TraceWriter escapes a newline, a CR and a backslash in a comment; TraceReader gives metadata back unescaped', async () => {
    const file = path.join(tmp, 'esc.trace');
    const source = 'linux-kmem, cap\nture\r.txt \\ C:\\x \\n';
    const w = TraceWriter.create(file, { meta: { source } });
    w.comment('a note\non two lines');
    w.malloc(0, 8, 1);
    w.close();
    expect(fs.readFileSync(file, 'utf8')).toBe(
      'kmemu-trace 1\n# source: linux-kmem, cap\\nture\\r.txt \\\\ C:\\\\x \\\\n\n# a note\\non two lines\n0 m 8 1\n',
    );
    const { events, reader } = await readAll(file);
    expect(reader.header.meta).toEqual({ source });
    expect(events.map((e) => e.line)).toEqual([4]);
  });

  it('importLinuxKmem() and gen write a # source: with a newline in the file name or the seed, and it reads back', async () => {
    const capture = path.join(tmp, 'cap\nture.txt');
    fs.writeFileSync(capture, 'bash-6000    [000] .....   290.490021: kmalloc: call_site=f+0x1/0x2 ptr=0000000036b2c12e bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL\n');
    const out = path.join(tmp, 'imp\norted.trace');
    await importLinuxKmem(capture, out);
    expect(fs.readFileSync(out, 'utf8').split('\n').slice(0, 2)).toEqual(['kmemu-trace 1', '# source: linux-kmem, cap\\nture.txt']);
    expect((await readAll(out)).reader.header.meta.source).toBe('linux-kmem, cap\nture.txt');
    const gen = path.join(tmp, 'gen.trace');
    const header = generatedHeader('pairs', { cpus: 2, events: 4, seed: 'a\nb' });
    const w = TraceWriter.create(gen, header);
    for (const e of generate('pairs', { cpus: 2, events: 4, seed: 'a\nb' })) w.write(e);
    w.close();
    expect((await readAll(gen)).reader.header.meta.source).toBe(header.meta.source);
    expect(header.meta.source).toContain('--seed a\nb ');
  });

  it('TraceWriter writes one gzip member per MiB of text and TraceReader reads them all', async () => {
    const file = path.join(tmp, 'big.trace.gz');
    const w = TraceWriter.create(file);
    w.zone(0, 0, 'z', 32);
    for (let i = 0; i < 200_000; i++) {
      w.alloc(i % 4, 0, i);
      w.free((i + 1) % 4, 0, i);
    }
    w.close();
    const reader = await TraceReader.open(file);
    let n = 0;
    let last = newEvent();
    for (let b = await reader.next(); b !== null; b = await reader.next()) {
      n += b.length;
      last = b[b.length - 1]!;
    }
    expect(n).toBe(400_001);
    expect(last).toMatchObject({ cpu: 0, op: OP_FREE, zone: 0, obj: 199_999, line: 400_002 });
  });

  it('TraceWriter writes to a temporary file and the trace appears only on close()', () => {
    const file = path.join(tmp, 'atomic.trace');
    const w = TraceWriter.create(file);
    w.malloc(0, 8, 1);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('.atomic.trace.kmemu-tmp-'))).toHaveLength(1);
    w.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('kmemu-trace 1\n0 m 8 1\n');
    expect(fs.readdirSync(tmp).filter((f) => f.includes('kmemu-tmp'))).toEqual([]);
    expect(openAtomicOutputs()).toBe(0);
  });

  it('TraceWriter.abort() removes the temporary file and leaves an existing trace as it was', () => {
    const file = traceFile('kept.trace', 'old');
    const w = TraceWriter.create(file);
    w.think(0, 5);
    w.abort();
    w.abort();
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(fs.readdirSync(tmp).filter((f) => f.includes('kmemu-tmp'))).toEqual([]);
    expect(openAtomicOutputs()).toBe(0);
  });

  it('TraceWriter refuses fields the format cannot hold', () => {
    const w = TraceWriter.create(path.join(tmp, 'refused.trace'));
    expect(() => w.zone(0, 1, 'two words', 8)).toThrow('a zone name is one word, not "two words"');
    expect(() => w.malloc(0, -1, 1)).toThrow('a trace field is an integer from 0 to 2^53-1, not -1');
    expect(() => w.alloc(0, 1, 2 ** 53)).toThrow('not 9007199254740992');
    w.abort();
  });

  it('TraceWriter.create() fails with a UserError when the directory does not exist', () => {
    expect(() => TraceWriter.create(path.join(tmp, 'no', 'such.trace'))).toThrow(`cannot write ${path.join(tmp, 'no', 'such.trace')}: ENOENT`);
  });
});

describe('openAtomic', () => {
  it('SIGINT while an output is open removes its temporary file and exits with status 130', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      const o = openAtomic(path.join(tmp, 'sig.json'));
      fs.writeSync(o.fd, 'partial');
      expect(fs.existsSync(o.tmpPath)).toBe(true);
      process.emit('SIGINT', 'SIGINT');
      expect(exit).toHaveBeenCalledWith(130);
      expect(fs.existsSync(o.tmpPath)).toBe(false);
      expect(fs.existsSync(path.join(tmp, 'sig.json'))).toBe(false);
      expect(process.listenerCount('SIGINT')).toBe(0);
      expect(openAtomicOutputs()).toBe(0);
    } finally {
      exit.mockRestore();
    }
  });

  it('SIGTERM exits with status 143', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      const o = openAtomic(path.join(tmp, 'term.json'));
      process.emit('SIGTERM', 'SIGTERM');
      expect(exit).toHaveBeenCalledWith(143);
      expect(fs.existsSync(o.tmpPath)).toBe(false);
    } finally {
      exit.mockRestore();
    }
  });

  it('writeFileAtomic() writes the whole text', () => {
    const file = path.join(tmp, 'whole.json');
    writeFileAtomic(file, '{"a":1}\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('{"a":1}\n');
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });
});

describe('TraceReader header', () => {
  it.each([
    ['', 'T:1: expected "kmemu-trace 1" or "kmemu-trace 2", got ""'],
    ['kmemu-trace 1.0\n', 'T:1: expected "kmemu-trace 1" or "kmemu-trace 2", got "kmemu-trace 1.0"'],
    ['kmemu-trace 0\n', 'T:1: expected "kmemu-trace 1" or "kmemu-trace 2", got "kmemu-trace 0"'],
    [' kmemu-trace 1\n', 'T:1: expected "kmemu-trace 1" or "kmemu-trace 2", got " kmemu-trace 1"'],
    ['r 1000 4\nw 2000 4\n', 'T:1: expected "kmemu-trace 1" or "kmemu-trace 2", got "r 1000 4"'],
    ['kmemu-trace 3\n0 t 1\n', 'T:1: trace format version 3 is newer than this kmemu reads (2)'],
    ['kmemu-trace 17\n', 'T:1: trace format version 17 is newer than this kmemu reads (2)'],
    ['kmemu-trace 02\n', 'T:1: expected "kmemu-trace 1" or "kmemu-trace 2", got "kmemu-trace 02"'],
    ['kmemu-trace 1\n# cpus: 0\n', 'T:2: expected a number of CPUs (1-4096), got "0"'],
    ['kmemu-trace 1\n# source: x\n\n# cpus: four\n', 'T:4: expected a number of CPUs (1-4096), got "four"'],
  ])('TraceReader.open() refuses header %j', async (text, message) => {
    expect(await readError(text)).toBe(message);
  });

  it('TraceReader.open() accepts a CRLF header and reads metadata up to the first event only', async () => {
    const file = traceFile('meta.trace', 'kmemu-trace 1\r\n# source: linux-kmem, x.txt\r\n#no colon here\r\n\r\n#cpus:2\r\n0 t 1\r\n# later: not metadata\r\n');
    const { events, reader } = await readAll(file);
    expect(reader.header).toEqual({ meta: { source: 'linux-kmem, x.txt', cpus: '2' }, cpus: 2 });
    expect(events).toEqual([ev({ op: OP_THINK, size: 1, line: 6 })]);
  });

  it('TraceReader.open() reads an empty gzip trace body and stdin', async () => {
    const file = traceFile('empty.trace.gz', '');
    fs.writeFileSync(file, gzipSync('kmemu-trace 1\n'));
    expect((await readAll(file)).events).toEqual([]);
    const { events } = await readAll('-', { stdin: Readable.from([Buffer.from('kmemu-trace 1\n2 t 9\n')]) });
    expect(events).toEqual([ev({ cpu: 2, op: OP_THINK, size: 9, line: 2 })]);
  });

  it('TraceReader.open() names a missing file', async () => {
    await expect(TraceReader.open(path.join(tmp, 'missing.trace'))).rejects.toThrow(`cannot open ${path.join(tmp, 'missing.trace')}: ENOENT`);
  });

  it('TraceReader.open() names a corrupt gzip file', async () => {
    const file = traceFile('corrupt.trace.gz', '');
    fs.writeFileSync(file, gzipSync('kmemu-trace 1\n0 t 1\n'.repeat(100)).subarray(0, 30));
    await expect(readAll(file)).rejects.toThrow(`${file}: cannot decompress (gzip): unexpected end of file`);
  });

  it('TraceReader.open() refuses xz input with a hint', async () => {
    const file = traceFile('x.trace.xz', '');
    fs.writeFileSync(file, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]));
    await expect(readAll(file)).rejects.toThrow(`${file}: xz-compressed input is not read here; decompress it first (xz -d)`);
  });
});

describe('TraceReader syntax errors', () => {
  const H = 'kmemu-trace 1\n0 zone 1 z 64\n';
  it.each([
    ['x a 1 2', 'T:3: expected a CPU number (0-4095), got "x"'],
    ['4096 t 1', 'T:3: expected a CPU number (0-4095), got "4096"'],
    ['-1 t 1', 'T:3: expected a CPU number (0-4095), got "-1"'],
    ['0', 'T:3: expected "CPU OP ARGS...", got "0"'],
    ['0 v 1 2', 'T:3: the "v" op needs format version 2; this trace\'s header says "kmemu-trace 1"'],
    ['0 V 1', 'T:3: the "V" op needs format version 2; this trace\'s header says "kmemu-trace 1"'],
    ['0 arena 1 a 0 4096 4096 0', 'T:3: the "arena" op needs format version 2; this trace\'s header says "kmemu-trace 1"'],
    ['0 b 1 cluster', 'T:3: the "b" op needs format version 2; this trace\'s header says "kmemu-trace 1"'],
    ['0 B 1', 'T:3: the "B" op needs format version 2; this trace\'s header says "kmemu-trace 1"'],
    ['0 A 1 2', 'T:3: expected an op (zone, a, f, m, x, P, Q, t), got "A"'],
    ['0 zones 1 z 8', 'T:3: expected an op (zone, a, f, m, x, P, Q, t), got "zones"'],
    ['0 a 1', 'T:3: expected "CPU a ZONE OBJ", got "0 a 1"'],
    ['0 a 1 2 3', 'T:3: expected "CPU a ZONE OBJ", got "0 a 1 2 3"'],
    ['0 f 1 2 # freed', 'T:3: expected "CPU f ZONE OBJ", got "0 f 1 2 # freed"'],
    ['0 m 8', 'T:3: expected "CPU m SIZE OBJ", got "0 m 8"'],
    ['0 x', 'T:3: expected "CPU x OBJ", got "0 x"'],
    ['0 x 1 2', 'T:3: expected "CPU x OBJ", got "0 x 1 2"'],
    ['0 P 1', 'T:3: expected "CPU P ORDER OBJ", got "0 P 1"'],
    ['0 Q', 'T:3: expected "CPU Q OBJ", got "0 Q"'],
    ['0 t', 'T:3: expected "CPU t CYCLES", got "0 t"'],
    ['0 zone 2 z', 'T:3: expected "CPU zone ZONE NAME SIZE [FLAG...]", got "0 zone 2 z"'],
    ['0 a z 2', 'T:3: expected a zone id, got "z"'],
    ['0 a 1 0x10', 'T:3: expected an object id, got "0x10"'],
    ['0 a 1 9007199254740992', 'T:3: expected an object id, got "9007199254740992"'],
    ['0 a 1 12345678901234567', 'T:3: expected an object id, got "12345678901234567"'],
    ['0 a 1 1.5', 'T:3: expected an object id, got "1.5"'],
    ['0 m -8 1', 'T:3: expected a size in bytes (0-1099511627776), got "-8"'],
    ['0 m 1099511627777 1', 'T:3: expected a size in bytes (0-1099511627776), got "1099511627777"'],
    ['0 P two 1', 'T:3: expected a page order (0-20), got "two"'],
    ['0 P 21 1', 'T:3: expected a page order (0-20), got "21"'],
    ['0 P 53 1', 'T:3: expected a page order (0-20), got "53"'],
    ['0 P 1000 1', 'T:3: expected a page order (0-20), got "1000"'],
    ['0 t 1e3', 'T:3: expected a number of cycles, got "1e3"'],
    ['0 zone x z 8', 'T:3: expected a zone id, got "x"'],
    ['0 zone 2 z 8k', 'T:3: expected an item size in bytes (1-268431360), got "8k"'],
    ['0 zone 2 z 0', 'T:3: expected an item size in bytes (1-268431360), got "0"'],
    ['0 zone 2 z 268431361', 'T:3: expected an item size in bytes (1-268431360), got "268431361"'],
    ['0 zone 2 z 4294967296', 'T:3: expected an item size in bytes (1-268431360), got "4294967296"'],
    ['0 zone 2 z 8 reclaim fast', 'T:3: expected a zone flag (reclaim, nofree, interrupt), got "fast"'],
    ['0 zone 2 z 8 RECLAIM', 'T:3: expected a zone flag (reclaim, nofree, interrupt), got "RECLAIM"'],
  ])('TraceReader refuses %j', async (line, message) => {
    expect(await readError(`${H}${line}\n`)).toBe(message);
  });

  it('TraceReader fails on a malformed line even when lenient', async () => {
    expect(await readError(`${H}0 q 1\n`, { lenient: true })).toBe('T:3: expected an op (zone, a, f, m, x, P, Q, t), got "q"');
  });

  it('TraceReader accepts the limits of FORMAT.md: item size 1 and 268431360, malloc sizes 0 and 2^40, page order 20', async () => {
    const file = traceFile('limits.trace', 'kmemu-trace 1\n0 zone 1 a 1\n0 zone 2 b 268431360\n0 m 0 1\n0 m 1099511627776 2\n0 P 20 3\n');
    const { events } = await readAll(file);
    expect(events.map((e) => [e.op, e.size])).toEqual([[OP_ZONE, 1], [OP_ZONE, MAX_ITEM_SIZE], [OP_MALLOC, 0], [OP_MALLOC, MAX_MALLOC_SIZE], [OP_PALLOC, MAX_PAGE_ORDER]]);
    expect([MAX_ITEM_SIZE, MAX_MALLOC_SIZE, MAX_PAGE_ORDER]).toEqual([65535 * 4096, 2 ** 40, 20]);
  });

  it('TraceReader accepts tabs, runs of spaces, CRLF, comments, blank lines and a last line without a newline', async () => {
    const file = traceFile('ws.trace', 'kmemu-trace 1\n\t0\tzone  1 z\t64 interrupt \r\n\n  # note\n1   a 1 5\r\n# x\n1 f 1 5');
    const { events } = await readAll(file);
    expect(events).toEqual([
      ev({ op: OP_ZONE, zone: 1, name: 'z', size: 64, flags: ['interrupt'], line: 2 }),
      ev({ cpu: 1, op: OP_ALLOC, zone: 1, obj: 5, line: 5 }),
      ev({ cpu: 1, op: OP_FREE, zone: 1, obj: 5, line: 7 }),
    ]);
  });
});

describe('TraceReader rules', () => {
  const H = 'kmemu-trace 1\n0 zone 1 z 64\n0 zone 2 y 64\n0 a 1 17\n0 m 8 18\n0 P 0 19\n';
  it.each([
    ['0 zone 1 z2 8', 'T:7: zone 1 was already created', 'zones created twice'],
    ['0 a 3 20', 'T:7: zone 3 was not created', 'uses of zones not created'],
    ['0 f 3 17', 'T:7: zone 3 was not created', 'uses of zones not created'],
    ['0 a 2 17', 'T:7: allocation of object 17, which is already live', 'allocations of live objects'],
    ['0 m 8 19', 'T:7: allocation of object 19, which is already live', 'allocations of live objects'],
    ['0 P 1 18', 'T:7: allocation of object 18, which is already live', 'allocations of live objects'],
    ['1 x 20', 'T:7: free of object 20, which is not live', 'frees of objects not live'],
    ['1 f 1 20', 'T:7: free of object 20, which is not live', 'frees of objects not live'],
    ['1 Q 20', 'T:7: free of object 20, which is not live', 'frees of objects not live'],
    ['1 x 17', 'T:7: free of object 17 with "x", which was allocated with "a"', 'frees of the wrong kind'],
    ['1 Q 17', 'T:7: free of object 17 with "Q", which was allocated with "a"', 'frees of the wrong kind'],
    ['1 f 1 18', 'T:7: free of object 18 with "f", which was allocated with "m"', 'frees of the wrong kind'],
    ['1 Q 18', 'T:7: free of object 18 with "Q", which was allocated with "m"', 'frees of the wrong kind'],
    ['1 x 19', 'T:7: free of object 19 with "x", which was allocated with "P"', 'frees of the wrong kind'],
    ['1 f 2 17', 'T:7: free of object 17 to zone 2, which was allocated from zone 1', 'frees to another zone'],
  ])('TraceReader refuses %j, and the lenient reader counts and skips it', async (line, message, reason) => {
    expect(await readError(`${H}${line}\n`)).toBe(message);
    const file = traceFile('lenient.trace', `${H}${line}\n0 t 1\n`);
    const { events, reader } = await readAll(file, { lenient: true });
    expect(events.map((e) => e.line)).toEqual([2, 3, 4, 5, 6, 8]);
    expect(reader.skipped()).toEqual({ [reason]: 1 });
  });

  it('a free of a free object is refused with the line of the second free', async () => {
    expect(await readError('kmemu-trace 1\n0 m 8 18\n1 x 18\n\n# again\n1 x 18\n')).toBe('T:6: free of object 18, which is not live');
  });

  it('an id may be reused after its free, in another kind', async () => {
    const file = traceFile('reuse.trace', 'kmemu-trace 1\n0 m 8 18\n1 x 18\n0 P 3 18\n1 Q 18\n0 zone 18 z 8\n0 a 18 18\n0 f 18 18\n');
    const { events, reader } = await readAll(file);
    expect(events).toHaveLength(7);
    expect(reader.liveObjects).toBe(0);
  });

  it('the lenient reader counts every reason it skipped for', async () => {
    const file = traceFile('many.trace', 'kmemu-trace 1\n0 x 1\n0 x 2\n0 m 8 3\n0 m 8 3\n0 a 5 1\n0 zone 5 z 8\n0 zone 5 z 8\n0 f 5 3\n');
    const { events, reader } = await readAll(file, { lenient: true });
    expect(events.map((e) => e.line)).toEqual([4, 7]);
    expect(reader.skipped()).toEqual({
      'frees of objects not live': 2,
      'allocations of live objects': 1,
      'uses of zones not created': 1,
      'zones created twice': 1,
      'frees of the wrong kind': 1,
    });
    expect(reader.liveObjects).toBe(1);
  });
});

describe('TraceReader streaming', () => {
  const TEXT = 'kmemu-trace 1\n# source: ünïcode test\n0 zone 1 zöne-ü 64\n' + Array.from({ length: 50 }, (_, i) => `${i % 3} a 1 ${i}\r\n${(i + 1) % 3} f 1 ${i}\n`).join('') + '2 t 7';

  it.each([1, 2, 3, 7, 64])('TraceReader reads the same events however the input is cut (chunks of %i bytes)', async (size) => {
    const whole = await readAll(traceFile('cut.trace', TEXT));
    const bytes = Buffer.from(TEXT);
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
    const cut = await readAll('-', { stdin: Readable.from(chunks) });
    expect(cut.events).toEqual(whole.events);
    expect(cut.reader.header).toEqual({ meta: { source: 'ünïcode test' } });
    expect(cut.events[0]!.name).toBe('zöne-ü');
    expect(cut.events).toHaveLength(102);
    const gz = gzipSync(bytes);
    const gzChunks: Buffer[] = [];
    for (let i = 0; i < gz.length; i += size) gzChunks.push(gz.subarray(i, i + size));
    expect((await readAll('-', { stdin: Readable.from(gzChunks) })).events).toEqual(whole.events);
  });

  it('TraceReader.next() hands out batches of at most batchSize events', async () => {
    const reader = await TraceReader.open(traceFile('batch.trace', TEXT), { batchSize: 8 });
    const sizes: number[] = [];
    for (let b = await reader.next(); b !== null; b = await reader.next()) sizes.push(b.length);
    expect(sizes).toEqual([...Array<number>(12).fill(8), 6]);
    expect(await reader.next()).toBeNull();
    expect(reader.bytesRead).toBe(Buffer.byteLength(TEXT));
  });

  it('TraceReader reads a million events without holding them: batches and their events are reused', async () => {
    const N = 1_000_000;
    const lines = (function* () {
      yield 'kmemu-trace 1\n0 zone 0 z 64\n';
      for (let i = 0; i < N; i += 10_000) {
        let s = '';
        for (let j = i; j < i + 10_000; j += 2) s += `${j % 4} a 0 ${j}\n${(j + 1) % 4} f 0 ${j}\n`;
        yield s;
      }
    })();
    const reader = await TraceReader.open('-', { stdin: Readable.from(lines) });
    const seen = new Set<TraceEvent>();
    const arrays = new Set<readonly TraceEvent[]>();
    let n = 0;
    let maxLive = 0;
    for (let b = await reader.next(); b !== null; b = await reader.next()) {
      arrays.add(b);
      n += b.length;
      if (seen.size <= 4096) for (const e of b) seen.add(e);
      maxLive = Math.max(maxLive, reader.liveObjects);
    }
    expect(n).toBe(N + 1);
    expect(arrays.size).toBe(1);
    expect(seen.size).toBe(4096);
    expect(maxLive).toBeLessThanOrEqual(1);
    expect(reader.lines).toBe(N + 2);
  });

  it('TraceReader.close() stops reading early', async () => {
    const reader = await TraceReader.open('-', { stdin: Readable.from((function* () {
      yield 'kmemu-trace 1\n';
      for (;;) yield '0 t 1\n'.repeat(1000);
    })()), batchSize: 10 });
    expect(await reader.next()).toHaveLength(10);
    await reader.close();
    expect(await reader.next()).toBeNull();
  });
});

describe('the event ops', () => {
  it('every op reads back with the fields FORMAT.md gives it', async () => {
    const file = traceFile('ops.trace', 'kmemu-trace 1\n0 zone 3 z 8 nofree\n0 a 3 1\n0 f 3 1\n0 m 9 2\n0 x 2\n0 P 4 3\n0 Q 3\n0 t 11\n');
    const { events } = await readAll(file);
    expect(events.map((e) => [e.op, e.zone, e.obj, e.size, e.name, e.flags])).toEqual([
      [OP_ZONE, 3, 0, 8, 'z', ['nofree']],
      [OP_ALLOC, 3, 1, 0, '', []],
      [OP_FREE, 3, 1, 0, '', []],
      [OP_MALLOC, 0, 2, 9, '', []],
      [OP_MFREE, 0, 2, 0, '', []],
      [OP_PALLOC, 0, 3, 4, '', []],
      [OP_PFREE, 0, 3, 0, '', []],
      [OP_THINK, 0, 0, 11, '', []],
    ]);
  });
});
