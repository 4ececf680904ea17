// Integers with thousands separators, as Math.round(n).toLocaleString('en-US') prints them,
// without Intl: the first toLocaleString of a process loads ICU's number formatting, some
// 30 ms of a short command. (tools/explain.ts uses this, and it runs in the viewer's page too.)

/** Math.round(n) with a comma every three digits: 1,234,567; -0 is "-0", NaN "NaN", ±Infinity "∞". */
export function formatInt(n: number): string {
  const r = Math.round(n);
  if (Number.isNaN(r)) return 'NaN';
  const sign = r < 0 || Object.is(r, -0) ? '-' : '';
  if (!Number.isFinite(r)) return `${sign}∞`;
  const a = Math.abs(r);
  // Both print the shortest digits that read back as `a`, then zeros; from 1e21 String() puts
  // an exponent instead of the zeros.
  const [mantissa = '', exponent] = String(a).split('e+');
  const digits = exponent === undefined ? mantissa : mantissa.replace('.', '').padEnd(Number(exponent) + 1, '0');
  return sign + digits.replace(/\B(?=(\d{3})+$)/g, ',');
}
