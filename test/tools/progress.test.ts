import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { countTraceEvents, formatEta } from '../../tools/progress.js';

describe('progress', () => {
  it('formatEta() is "-" until there is a rate, then seconds, minutes or hours left', () => {
    expect(formatEta(0, 100, 5000)).toBe('-');
    expect(formatEta(10, 100, 100)).toBe('-');
    expect(formatEta(50, 100, 10_000)).toBe('10s');
    expect(formatEta(10, 100, 10_000)).toBe('1m30s');
    expect(formatEta(1, 1000, 10_000)).toBe('2h46m');
    expect(formatEta(100, 100, 0)).toBe('0s');
    expect(formatEta(Number.NaN, 100, 1000)).toBe('-');
  });

  it('countTraceEvents() counts the event lines of a plain or gzip trace, not the header, comments or blank lines', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-progress-'));
    const text = 'kmemu-trace 1\n# cpus: 2\n0 zone 1 z 64\n\n  # a note\n0 a 1 1\r\n1 f 1 1\n0 t 5';
    fs.writeFileSync(path.join(dir, 't.trace'), text);
    fs.writeFileSync(path.join(dir, 't.trace.gz'), gzipSync(text));
    expect(await countTraceEvents(path.join(dir, 't.trace'))).toBe(4);
    expect(await countTraceEvents(path.join(dir, 't.trace.gz'))).toBe(4);
    expect(await countTraceEvents('test/fixtures/traces/pairs-4cpu.trace')).toBe(
      fs.readFileSync('test/fixtures/traces/pairs-4cpu.trace', 'utf8').split('\n').slice(1).filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).length,
    );
    expect(await countTraceEvents('-')).toBe(undefined);
  });
});
