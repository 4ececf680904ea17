import { describe, expect, it } from 'vitest';
import {
  Machine, UserError, loadMachineConfig, machinePresets, parseSize, presetConfig, validateMachineConfig,
} from '../../emu/index.js';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const coursework = machinePresets['coursework']!;

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('machine config', () => {
  it('parseSize() reads bytes with k/m/g/t suffixes', () => {
    expect([parseSize('48k'), parseSize('1m'), parseSize('4g'), parseSize('1T'), parseSize(512), parseSize('32KiB')]).toEqual([
      49152, 1048576, 4294967296, 1099511627776, 512, 32768,
    ]);
    expect(parseSize('lots')).toBeNaN();
  });

  it('every preset is valid and boots a machine', () => {
    for (const name of Object.keys(machinePresets)) {
      const cfg = presetConfig(name);
      expect(cfg.name).toBe(name);
      expect(new Machine(cfg).ncpus).toBe(cfg.cpus);
    }
  });

  it('amd64-host is the measured 2-core Zen 5 class machine', () => {
    const c = presetConfig('amd64-host');
    expect([c.cpus, c.clockGHz, c.l1d.size, c.l1d.ways, c.l1d.hitLatency, c.l2.size, c.l2.hitLatency, c.llc.size, c.memory.dramLatency]).toEqual([
      2, 3.6, 48 * 1024, 12, 4, 1 << 20, 16, 32 << 20, 840,
    ]);
    expect([c.tlb.l1Small.entries, c.tlb.l2.hitLatency, c.cpu.lockedOpLatency + c.l1d.hitLatency, c.cpu.pauseLatency, c.cpu.mfenceLatency]).toEqual([96, 9, 20, 62, 74]);
    expect([c.memory.ownershipLatency, c.cpu.mispredictPenalty, c.cpu.machineClearPenalty]).toEqual([575, 13, 30]);
  });

  it('a bad field gets one error naming it and what was expected', () => {
    expect(errorOf(() => validateMachineConfig({ ...coursework, cpus: 65 }, 'm.json'))).toBe(
      'm.json: field cpus: expected number to be <=64, got 65',
    );
    expect(errorOf(() => validateMachineConfig({ ...coursework, l1d: { ...coursework.l1d, ways: 3 } }, 'm.json'))).toBe(
      'm.json: field l1d.ways: expected size / (ways × line) to be a power of two, got 1024 / (3 × 64)',
    );
    expect(errorOf(() => validateMachineConfig({ ...coursework, l2: { ...coursework.l2, size: 'big' } }, 'm.json'))).toBe(
      'm.json: field l2.size: expected a cache size as bytes or a size like "48k", got "big"',
    );
    expect(errorOf(() => validateMachineConfig({ ...coursework, l1d: { ...coursework.l1d, replacement: 'mru' } }, 'm.json'))).toMatch(
      /^m\.json: field l1d\.replacement: .*"lru".*, got "mru"$/,
    );
    expect(errorOf(() => validateMachineConfig({ ...coursework, turbo: true }, 'm.json'))).toBe('m.json: unknown field "turbo"');
  });

  it('a JSON file overrides fields of a base preset', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kmemu-'));
    const file = join(dir, 'big.json');
    writeFileSync(file, JSON.stringify({ base: 'coursework', cpus: 16, l2: { size: '8k' } }));
    const cfg = loadMachineConfig(file);
    expect([cfg.cpus, cfg.l2.size, cfg.l2.ways, cfg.l1d.size]).toEqual([16, 8192, 4, 1024]);
    writeFileSync(file, '{"base": "vax"}');
    expect(errorOf(() => loadMachineConfig(file))).toBe(`${file}: field base: expected one of coursework, amd64-host, xeon-8180, epyc-7763 (a preset, not a file), got "vax"`);
    writeFileSync(file, '{"cpus": 0}');
    expect(errorOf(() => loadMachineConfig(file))).toBe(`${file}: field cpus: expected number to be >=1, got 0`);
  });

  it('an unknown preset name lists the known ones', () => {
    expect(errorOf(() => loadMachineConfig('pdp11'))).toBe(
      'unknown machine preset "pdp11"; expected one of coursework, amd64-host, xeon-8180, epyc-7763, or a JSON file',
    );
  });

  it('command-line overrides apply on top of a preset', () => {
    expect(loadMachineConfig('amd64-host', { cpus: 8 }).cpus).toBe(8);
  });

  it('loadMachineConfig() takes only own preset names: "__proto__", "toString" and co. are one line listing the presets', () => {
    for (const name of ['__proto__', 'toString', 'constructor', 'hasOwnProperty']) {
      expect(errorOf(() => loadMachineConfig(name))).toBe(
        `unknown machine preset "${name}"; expected one of coursework, amd64-host, xeon-8180, epyc-7763, or a JSON file`,
      );
    }
    expect(errorOf(() => loadMachineConfig('a\nb'))).toBe(
      'unknown machine preset "a\\nb"; expected one of coursework, amd64-host, xeon-8180, epyc-7763, or a JSON file',
    );
  });

  describe('loadMachineConfig() of a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kmemu-config-'));
    const file = (name: string, text: string | Buffer) => {
      const f = join(dir, name);
      writeFileSync(f, text);
      return f;
    };

    it('refuses prototype keys as unknown fields and leaves Object.prototype alone', () => {
      const p = file('proto.json', '{"__proto__":{"cpus":99}}');
      expect(errorOf(() => loadMachineConfig(p))).toBe(`${p}: unknown field "__proto__"`);
      const c = file('ctor.json', '{"base":"amd64-host","constructor":{"prototype":{"cpus":99}}}');
      expect(errorOf(() => loadMachineConfig(c))).toBe(`${c}: unknown field "constructor"`);
      const n = file('nested.json', '{"base":"coursework","l1d":{"__proto__":{"size":"2k"},"toString":1}}');
      expect(errorOf(() => loadMachineConfig(n))).toBe(`${n}: unknown field "__proto__", "toString" in l1d`);
      expect(({} as Record<string, unknown>)['cpus']).toBeUndefined();
    });

    it('accepts a UTF-8 byte order mark', () => {
      const f = file('bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"base":"coursework","cpus":3}')]));
      expect(loadMachineConfig(f).cpus).toBe(3);
    });

    it('says where the JSON breaks, by line and column', () => {
      const f = file('syntax.json', '{\n  "cpus": 2,\n  "l1d": {"size": 3 4}\n}');
      expect(errorOf(() => loadMachineConfig(f))).toBe(`${f}: line 3, column 21: expected "," or "}" after field "l1d.size", got "4"`);
      const t = file('trunc.json', '{"cpus": 2, "name": "x');
      expect(errorOf(() => loadMachineConfig(t))).toBe(`${t}: line 1, column 21: expected the closing quote of a string, got the end of the file`);
      const u = file('trail.json', '{"cpus": 2} x');
      expect(errorOf(() => loadMachineConfig(u))).toBe(`${u}: line 1, column 13: expected the end of the file after the JSON value, got "x"`);
      const d = file('dup.json', '{"cpus": 1,\n "cpus": 2}');
      expect(errorOf(() => loadMachineConfig(d))).toBe(`${d}: line 2, column 2: field "cpus" appears twice`);
    });

    it('refuses deep nesting in one line instead of overflowing the stack', () => {
      const f = file('deep.json', '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000));
      expect(errorOf(() => loadMachineConfig(f))).toBe(`${f}: line 1, column 161: expected at most 32 levels of nesting, got more`);
      const g = file('deep-array.json', '['.repeat(100_000));
      expect(errorOf(() => loadMachineConfig(g))).toBe(`${g}: line 1, column 33: expected at most 32 levels of nesting, got more`);
    });

    it('puts every bad field on one line', () => {
      const f = file('multi.json', '{"base":"coursework","cpus":65,"clockGHz":-1,"turbo":true}');
      expect(errorOf(() => loadMachineConfig(f))).toBe(
        `${f}: field cpus: expected number to be <=64, got 65; field clockGHz: expected number to be >0, got -1; unknown field "turbo"`,
      );
    });

    it('gives one line for a file that is missing, a directory, empty, not UTF-8, not an object, or has a bad base', () => {
      const missing = join(dir, 'missing.json');
      expect(errorOf(() => loadMachineConfig(missing))).toBe(`${missing}: cannot read the machine file: no such file`);
      const sub = join(dir, 'sub.json');
      mkdirSync(sub);
      expect(errorOf(() => loadMachineConfig(sub))).toBe(`${sub}: expected a JSON machine file, got a directory`);
      const inFile = join(file('plain.txt', 'x'), 'm.json');
      expect(errorOf(() => loadMachineConfig(inFile))).toBe(`${inFile}: cannot read the machine file: a directory on its path is a file`);
      const e = file('empty.json', ' \n');
      expect(errorOf(() => loadMachineConfig(e))).toBe(`${e}: expected a JSON object, got an empty file`);
      const b = file('binary.json', Buffer.from([0xff, 0x7b, 0x7d]));
      expect(errorOf(() => loadMachineConfig(b))).toBe(`${b}: expected a JSON machine file in UTF-8, got bytes that are not UTF-8`);
      const a = file('array.json', '[1, 2]');
      expect(errorOf(() => loadMachineConfig(a))).toBe(`${a}: expected a JSON object of machine fields, got an array`);
      const n = file('number.json', '42');
      expect(errorOf(() => loadMachineConfig(n))).toBe(`${n}: expected a JSON object of machine fields, got 42`);
      const fb = file('filebase.json', `{"base":${JSON.stringify(a)}}`);
      expect(errorOf(() => loadMachineConfig(fb))).toBe(
        `${fb}: field base: expected one of coursework, amd64-host, xeon-8180, epyc-7763 (a preset, not a file), got ${JSON.stringify(a)}`,
      );
      const pb = file('protobase.json', '{"base":"__proto__"}');
      expect(errorOf(() => loadMachineConfig(pb))).toBe(
        `${pb}: field base: expected one of coursework, amd64-host, xeon-8180, epyc-7763 (a preset, not a file), got "__proto__"`,
      );
      const nl = join(dir, 'a\nb.json');
      expect(errorOf(() => loadMachineConfig(nl))).toBe(`${JSON.stringify(nl)}: cannot read the machine file: no such file`);
    });
  });
});
