import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  GNU_TIME, goalTable, median, megabytes, parseGnuTime, perSecond, summarizeUsage, timeCommand,
} from '../../../tools/bench/child-usage.js';

describe('parseGnuTime()', () => {
  it('reads wall, user, system time and peak RSS, and sums the CPU time to the hundredth', () => {
    expect(parseGnuTime('kmemu-bench 45.82 15.75 0.39 206860\n')).toEqual({
      wallSeconds: 45.82, userSeconds: 15.75, sysSeconds: 0.39, cpuSeconds: 16.14, maxRssKiB: 206860,
    });
  });

  it('takes the last line, after the status line GNU time writes for a failed command', () => {
    expect(parseGnuTime('Command exited with non-zero status 1\nkmemu-bench 0.00 0.00 0.01 1844\n')).toEqual({
      wallSeconds: 0, userSeconds: 0, sysSeconds: 0.01, cpuSeconds: 0.01, maxRssKiB: 1844,
    });
  });

  it('throws quoting a line of another format', () => {
    expect(() => parseGnuTime('0:00.01elapsed 1844maxresident\n')).toThrow('GNU time: expected a last line "kmemu-bench %e %U %S %M", got "0:00.01elapsed 1844maxresident"');
  });
});

describe('median() and summarizeUsage()', () => {
  it('median() is the middle value, or the mean of the middle two', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow('median: expected at least one value');
  });

  it('summarizeUsage() takes the best and median times and the largest peak RSS', () => {
    const u = (wall: number, cpu: number, rss: number) => ({ wallSeconds: wall, userSeconds: cpu, sysSeconds: 0, cpuSeconds: cpu, maxRssKiB: rss });
    expect(summarizeUsage([u(5, 2.5, 1000), u(3, 2.75, 1200), u(4, 2, 900)])).toEqual({
      runs: 3, bestCpuSeconds: 2, medianCpuSeconds: 2.5, bestWallSeconds: 3, medianWallSeconds: 4, maxRssKiB: 1200,
    });
  });
});

describe('perSecond(), megabytes() and goalTable()', () => {
  it('perSecond() gives three significant digits with k or M', () => {
    expect(perSecond(371239, 16.14)).toBe('23.0 k');
    expect(perSecond(7300000, 3.03)).toBe('2.41 M');
    expect(perSecond(500e3, 1)).toBe('500 k');
    expect(perSecond(12, 0.5)).toBe('24.0');
    expect(perSecond(1, 0)).toBe('∞');
  });

  it('megabytes() turns KiB into MB of 10^6 bytes', () => {
    expect(megabytes(206860)).toBe('211.8 MB');
  });

  it('goalTable() writes a Markdown row per goal, escaping pipes, with met, not met or not measured', () => {
    expect(goalTable([
      { row: 'a', measured: '1 | 2', goal: '≥ 3', met: false },
      { row: 'b', measured: '4', goal: '≤ 5', met: true },
      { row: 'c', measured: 'Dinero IV not timed', goal: '≥ 3×', met: null },
    ])).toBe('| row | measured | goal | met |\n|---|---|---|---|\n| a | 1 \\| 2 | ≥ 3 | **not met** |\n| b | 4 | ≤ 5 | met |\n' +
      '| c | Dinero IV not timed | ≥ 3× | not measured |\n');
  });
});

if (!existsSync(GNU_TIME)) console.warn(`*** SKIPPED: timeCommand() under GNU time: ${GNU_TIME} is missing (make test installs Debian's time) ***`);

describe.skipIf(!existsSync(GNU_TIME))('timeCommand() under GNU time', () => {
  it('returns the command\'s stdout and its usage', () => {
    const r = timeCommand(['/bin/echo', 'kmemu']);
    expect(r.stdout.toString('utf8')).toBe('kmemu\n');
    expect(Number.isInteger(r.usage.maxRssKiB) && r.usage.maxRssKiB > 0).toBe(true);
  });

  it('feeds stdin from a file', () => {
    expect(timeCommand(['/bin/cat'], 'test/fixtures/bench/dineroIV-r7-cachesim-7.3m.txt').stdout.toString('utf8').split('\n')[0])
      .toBe('---Summary of options (-help option gives usage information).');
  });

  it('throws with the status and the end of stderr when the command fails', () => {
    expect(() => timeCommand(['/bin/sh', '-c', 'echo no such input >&2; exit 3'])).toThrow('/bin/sh -c echo no such input >&2; exit 3 exited with status 3: no such input');
  });
});
