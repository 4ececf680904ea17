// Dinero IV on the benchmarks' hierarchies: its options for a write-back, write-allocate,
// demand-fetch LRU hierarchy of unified caches, and the counts of its report (release 7's
// layout: a block per level, "l1-ucache", with rows "Demand Fetches", "Demand Misses", ...).
// Dinero prints its counts after copying every dirty line back at the end of the trace, so they
// equal `kmemu cachesim --non-inclusive --flush`'s.

/** Counts of one level as Dinero IV prints them, in the names of kmemu's CachesimLevelStats. */
export interface DineroLevelCounts {
  /** Demand Fetches, Total. */
  accesses: number;
  /** Demand Fetches, Read. */
  reads: number;
  /** Demand Fetches, Write. */
  writes: number;
  /** Demand Misses, Total. */
  misses: number;
  /** Demand Misses, Read. */
  readMisses: number;
  /** Demand Misses, Write. */
  writeMisses: number;
  /** Bytes To Memory / the line size: the dirty lines written to the next level. */
  writebacks: number;
}

export const DINERO_COUNT_NAMES = ['accesses', 'reads', 'writes', 'misses', 'readMisses', 'writeMisses', 'writebacks'] as const;

/** One row of a level's table: Total, Instrn, Data, Read, Write, Misc. */
export interface DineroRow {
  total: number;
  instrn: number;
  data: number;
  read: number;
  write: number;
  misc: number;
}

export interface DineroReportLevel {
  /** e.g. "l1-ucache". */
  name: string;
  fetches: DineroRow;
  misses: DineroRow;
  bytesFromMemory: number;
  bytesToMemory: number;
}

export interface DineroLevelSpec {
  size: number;
  ways: number;
  line: number;
}

/** dineroIV's options for unified LRU levels, write-back, write-allocate, demand fetch, din input on stdin. */
export function dineroArgs(levels: readonly DineroLevelSpec[]): string[] {
  return levels.flatMap((l, i) => {
    const p = `-l${i + 1}-u`;
    return [`${p}size`, String(l.size), `${p}bsize`, String(l.line), `${p}assoc`, String(l.ways), `${p}repl`, 'l', `${p}fetch`, 'd',
      `${p}walloc`, 'a', `${p}wback`, 'a'];
  }).concat(['-informat', 'D']);
}

const LEVEL = /^(l\d+-[uid]cache)$/;
const ROW = /^ (Demand Fetches|Demand Misses)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/;
const BYTES = /^ (Bytes From Memory|Bytes To Memory)\s+(\d+)\s*$/;

/** The levels of a dineroIV report, in its order; throws naming what is missing. */
export function parseDineroReport(text: string): DineroReportLevel[] {
  const levels: Partial<DineroReportLevel>[] = [];
  for (const line of text.split('\n')) {
    const l = LEVEL.exec(line);
    if (l !== null) {
      levels.push({ name: l[1]! });
      continue;
    }
    const cur = levels.at(-1);
    if (cur === undefined) continue;
    const r = ROW.exec(line);
    if (r !== null) {
      const [total, instrn, data, read, write, misc] = r.slice(2).map(Number) as [number, number, number, number, number, number];
      const row = { total, instrn, data, read, write, misc };
      if (r[1] === 'Demand Fetches') cur.fetches ??= row;
      else cur.misses ??= row;
      continue;
    }
    const b = BYTES.exec(line);
    if (b !== null) {
      if (b[1] === 'Bytes From Memory') cur.bytesFromMemory ??= Number(b[2]);
      else cur.bytesToMemory ??= Number(b[2]);
    }
  }
  if (levels.length === 0) throw new Error('Dinero IV report: expected a level such as "l1-ucache", found none');
  return levels.map((l) => {
    for (const [key, row] of [['fetches', 'Demand Fetches'], ['misses', 'Demand Misses'], ['bytesFromMemory', 'Bytes From Memory'], ['bytesToMemory', 'Bytes To Memory']] as const) {
      if (l[key] === undefined) throw new Error(`Dinero IV report: level ${l.name} has no "${row}" row`);
    }
    return l as DineroReportLevel;
  });
}

/** A level of the report as counts; `line` is its block size in bytes. */
export function dineroLevelCounts(level: DineroReportLevel, line: number): DineroLevelCounts {
  if (level.bytesToMemory % line !== 0) throw new Error(`Dinero IV report: ${level.name}'s Bytes To Memory ${level.bytesToMemory} is not a multiple of the ${line}-byte line`);
  return {
    accesses: level.fetches.total,
    reads: level.fetches.read,
    writes: level.fetches.write,
    misses: level.misses.total,
    readMisses: level.misses.read,
    writeMisses: level.misses.write,
    writebacks: level.bytesToMemory / line,
  };
}

/** One sentence per count of `got` that differs from Dinero IV's: `l2.misses is 5, Dinero IV says 6`. */
export function countDifferences(level: string, got: Readonly<Record<keyof DineroLevelCounts, number>>, want: DineroLevelCounts): string[] {
  return DINERO_COUNT_NAMES.filter((k) => got[k] !== want[k]).map((k) => `${level}.${k} is ${got[k]}, Dinero IV says ${want[k]}`);
}
