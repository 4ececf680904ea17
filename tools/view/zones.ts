// The zones kmemu view shows: the kernel's own views of them (kernel/vm's db_show_uma_zone and
// db_show_vm_zone, functional reads) turned into the step API's ZoneView, with each lock
// word's holder and spin cycles from the run's hooks, and the physical cache lines their
// structures live on.

import { LINE_SIZE, type Machine, hex64 } from '../../emu/index.js';
import {
  type Kernel, type UmaBucketShow, type UmaZoneShow, type VmZoneShow, type ZoneLineShow, type ZoneLockShow, db_show_uma_zones, db_show_vm_zones,
} from '../../kernel/index.js';
import type { BucketView, LockView, ZoneView } from './state.js';

/** A cache line of a zone's structures: its physical line number and what lives there. */
export interface ZoneLine {
  line: number;
  what: string;
  zone: string;
}

/** An address as the state shows it: 0x and hex, canonical 16 digits for kernel addresses. */
export function hex(n: number): string {
  return n >= 2 ** 47 ? `0x${hex64(n)}` : `0x${n.toString(16)}`;
}

/** What each zone's counts were after boot (zones busy since then are shown), by zone address. */
export type BootCounts = Map<number, number>;

function activity(z: { used: number; freeItems: number }): number {
  return z.used * 1e9 + z.freeItems;
}

/** Every zone's activity figure now, to compare with later (taken after boot). */
export function bootCounts(k: Kernel, allocator: 'vmzone' | 'uma'): BootCounts {
  const out: BootCounts = new Map();
  const zones: { va: number; used: number; freeItems: number }[] = allocator === 'uma' ? db_show_uma_zones(k) : db_show_vm_zones(k);
  for (const z of zones) out.set(z.va, activity(z));
  return out;
}

function bucket(b: UmaBucketShow): BucketView {
  return { address: hex(b.va), count: b.cnt, entries: b.entries, items: b.items.map(hex) };
}

/**
 * The zones created or used since boot, in the kernel's list order, and the lines of their
 * structures. `takenBy`: the CPU whose atomic last took each lock word, by physical address;
 * `spun`: spin cycles by physical line number.
 */
export function zoneViews(
  k: Kernel,
  allocator: 'vmzone' | 'uma',
  m: Machine,
  boot: BootCounts,
  takenBy: ReadonlyMap<number, number>,
  spun: ReadonlyMap<number, number>,
  failedOn: ReadonlyMap<number, number> = new Map(),
): { views: ZoneView[]; lines: ZoneLine[]; locks: Map<number, string> } {
  const views: ZoneView[] = [];
  /** The lock words' physical addresses, by which a viewer stops at lock operations. */
  const locks = new Map<number, string>();
  const lines: ZoneLine[] = [];
  // Waiters: CPUs spinning on the lock's line, and CPUs whose last try found it held and that
  // have not taken it since (between two tries, or about to spin), while it is held.
  const waitingOn = (line: number, pa: number, held: boolean) =>
    m.cpus.filter((c) => (c.status === 1 && m.memsys.watchLine[c.id] === line && c.blockReason.startsWith('spinning')) || (held && failedOn.get(c.id) === pa && c.status !== 2))
      .map((c) => c.id);
  const lock = (name: string, l: ZoneLockShow): LockView => {
    const pa = k.kvtop(l.va);
    locks.set(pa, name);
    const line = Math.floor(pa / LINE_SIZE);
    return {
      name, address: hex(l.va), line: hex(line * LINE_SIZE), word: l.word, holder: l.word !== 0 ? (takenBy.get(pa) ?? null) : null,
      waiters: waitingOn(line, pa, l.word !== 0), spinCycles: spun.get(line) ?? 0,
    };
  };
  const addLines = (zone: string, list: readonly ZoneLineShow[]) => {
    for (const l of list) lines.push({ line: Math.floor(k.kvtop(l.va) / LINE_SIZE), what: `${zone}: ${l.what}`, zone });
  };
  const shown = (z: { va: number; used: number; freeItems: number; internal?: boolean }) =>
    z.internal !== true && (!boot.has(z.va) || boot.get(z.va) !== activity(z));
  if (allocator === 'uma') {
    for (const z of db_show_uma_zones(k) as UmaZoneShow[]) {
      if (!shown(z)) continue;
      views.push({
        allocator, name: z.name, address: hex(z.va), itemSize: z.size, lock: lock(z.name, z.lock),
        pcpu: z.caches.map((c) => ({ cpu: c.cpu, alloc: c.alloc === null ? null : bucket(c.alloc), free: c.free === null ? null : bucket(c.free), allocs: c.allocs, frees: c.frees })),
        depot: { full: z.full.map(bucket), free: z.free.map(bucket) },
        ...(z.slabs === null ? {} : {
          slabs: {
            part: z.slabs.part.map((s) => ({ address: hex(s.va), free: s.freecount, ipers: s.ipers })),
            full: z.slabs.full.map((s) => ({ address: hex(s.va), free: s.freecount, ipers: s.ipers })),
            free: z.slabs.free.map((s) => ({ address: hex(s.va), free: s.freecount, ipers: s.ipers })),
          },
        }),
        used: z.used, free: z.freeItems,
      });
      addLines(z.name, z.lines);
    }
  } else {
    for (const z of db_show_vm_zones(k) as VmZoneShow[]) {
      if (!shown(z)) continue;
      views.push({
        allocator, name: z.name, address: hex(z.va), itemSize: z.size, lock: lock(z.name, z.lock),
        pcpu: z.caches.map((c) => ({ cpu: c.cpu, list: { count: c.count, items: c.items.map(hex) }, allocs: 0, frees: 0 })),
        locked: { count: z.locked.count, items: z.locked.items.map(hex) },
        used: z.used, free: z.freeItems,
      });
      addLines(z.name, z.lines);
    }
  }
  return { views, lines, locks };
}
