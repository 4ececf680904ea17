import { describe, expect, it } from 'vitest';
import { formatInt } from '../../tools/format.js';

describe('formatInt()', () => {
  it('prints what Math.round(n).toLocaleString("en-US") prints', () => {
    const values = [
      0, -0, 0.4, -0.4, 0.5, -0.5, 1, -1, 9, 10, 99, 100, 999, 999.5, 1000, -1000, 1234, 12345, 123456, 1234567, -1234567.4,
      2 ** 31, 2 ** 32 + 0.5, 2 ** 53 - 1, 2 ** 53, 2 ** 60, 1e20, 1e21 - 2 ** 17, 1e21, -1e21, 1.5e22, 2 ** 80, Number.MAX_VALUE,
      NaN, Infinity, -Infinity,
    ];
    for (let i = 0; i < 2000; i++) values.push(Math.floor(1.37 ** (i % 140)) * (i % 3 === 0 ? -1 : 1) + (i % 7) / 7);
    for (const v of values) expect([v, formatInt(v)]).toEqual([v, Math.round(v).toLocaleString('en-US')]);
  });
});
