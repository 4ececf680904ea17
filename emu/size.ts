// Sizes in bytes as people write them ("48k", "1m", "4g"), apart from config.ts so that
// commands which need only these (kmemu cachesim) load without zod.

const SIZE_RE = /^(\d+)\s*([kmgt]?)(i?b)?$/i;
const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Parses "48k", "1m", "4g" or a plain number of bytes; NaN when it is neither. */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') return text;
  const m = SIZE_RE.exec(text.trim());
  if (m === null) return NaN;
  return Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!;
}

export function formatSize(bytes: number): string {
  for (const [unit, scale] of [['t', 2 ** 40], ['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}
