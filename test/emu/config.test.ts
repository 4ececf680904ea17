import { describe, expect, it } from 'vitest';
import {
  Machine, UserError, loadMachineConfig, machinePresets, parseSize, presetConfig, validateMachineConfig,
} from '../../emu/index.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
      2, 3.6, 48 * 1024, 12, 4, 1 << 20, 14, 32 << 20, 500,
    ]);
    expect([c.tlb.l1Small.entries, c.tlb.l2.hitLatency, c.cpu.lockedOpLatency + c.l1d.hitLatency]).toEqual([96, 7, 20]);
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
    expect(errorOf(() => loadMachineConfig(file))).toBe(`${file}: field base: expected one of coursework, amd64-host, xeon-8180, epyc-7763, got "vax"`);
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
});
