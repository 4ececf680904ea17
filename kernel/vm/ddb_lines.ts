// What the zone views (uma_ddb.ts, vm_zone_ddb.ts) share: the cache lines a zone's structures
// occupy, each named by what lives in it, and a lock word read as it is now. kmemu's own: ddb
// prints structures, it does not map them to cache lines.

/** Bytes of a cache line: the 64-byte line of every preset (DESIGN.md, "Caches"). */
export const DB_LINE = 64;

/** One cache line under a zone's structures. */
export interface ZoneLineShow {
  /** The line's kernel virtual address, DB_LINE-aligned. */
  va: number;
  /** What lives in it: "zone header", "cpu 1 cache", "lock, keg header", ... */
  what: string;
}

/** A lock as it is now. */
export interface ZoneLockShow {
  /** The KVA of the 32-bit lock word (a spinlock's counta: 0 free, 1 held). */
  va: number;
  word: number;
}

type Part = { text: string } | { cpu: number; one: string; many: string };

/**
 * The lines of a set of structures, in the order they were first added, each listed once.
 * Things sharing a line are named in the order they were added, joined by ", "; one per-CPU
 * thing of consecutive CPUs collapses to a range ("cpu 0-2 caches").
 */
export class ZoneLines {
  private readonly lines = new Map<number, Part[]>();

  /** `bytes` from `va` are `what`. */
  add(va: number, bytes: number, what: string): void {
    this.each(va, bytes, (parts) => {
      if (!parts.some((q) => 'text' in q && q.text === what)) parts.push({ text: what });
    });
  }

  /** `bytes` from `va` are CPU `cpu`'s `one` (`many`: the plural, for a range of CPUs). */
  addCpu(va: number, bytes: number, cpu: number, one: string, many: string): void {
    this.each(va, bytes, (parts) => {
      if (!parts.some((q) => 'cpu' in q && q.cpu === cpu && q.one === one)) parts.push({ cpu, one, many });
    });
  }

  list(): ZoneLineShow[] {
    return [...this.lines].map(([va, parts]) => ({ va, what: render(parts) }));
  }

  private each(va: number, bytes: number, f: (parts: Part[]) => void): void {
    const end = va + Math.max(bytes, 1);
    for (let line = va - (va % DB_LINE); line < end; line += DB_LINE) {
      let parts = this.lines.get(line);
      if (parts === undefined) {
        parts = [];
        this.lines.set(line, parts);
      }
      f(parts);
    }
  }
}

function render(parts: readonly Part[]): string {
  const out: string[] = [];
  for (let i = 0; i < parts.length; ) {
    const q = parts[i]!;
    if ('text' in q) {
      out.push(q.text);
      i++;
      continue;
    }
    let j = i + 1;
    for (let r = parts[j]; r !== undefined && 'cpu' in r && r.one === q.one && r.cpu === q.cpu + (j - i); r = parts[++j]);
    const last = parts[j - 1] as { cpu: number };
    out.push(j - i === 1 ? `cpu ${q.cpu} ${q.one}` : `cpu ${q.cpu}-${last.cpu} ${q.many}`);
    i = j;
  }
  return out.join(', ');
}

/** A list's elements from `head`, following `next` (an offset), at most `max`; stops on a cycle. */
export function walkList(read: (va: number) => number, head: number, next: number, max = Infinity): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  for (let e = read(head); e !== 0 && out.length < max && !seen.has(e); e = read(e + next)) {
    seen.add(e);
    out.push(e);
  }
  return out;
}
