// The kmemu trace format, version 1 (traces/FORMAT.md): the event codes and the one event
// shape every reader, writer, importer, generator and the replayer share.

export const TRACE_MAGIC = 'kmemu-trace';
export const TRACE_VERSION = 1;

export const OP_ZONE = 1; // zone ZONE NAME SIZE [FLAG...]
export const OP_ALLOC = 2; // a ZONE OBJ
export const OP_FREE = 3; // f ZONE OBJ
export const OP_MALLOC = 4; // m SIZE OBJ
export const OP_MFREE = 5; // x OBJ
export const OP_PALLOC = 6; // P ORDER OBJ
export const OP_PFREE = 7; // Q OBJ
export const OP_THINK = 8; // t CYCLES

/**
 * Largest page order of a `P` event: 2^20 pages are 4 GiB, beyond any page allocation of the
 * machines modeled (Linux's own MAX_ORDER is 10 or 11). The reader and the importer share it.
 */
export const MAX_PAGE_ORDER = 20;
/**
 * Largest item size of a zone: 65535 pages (268,431,360 bytes), what UMA's 16-bit uk_ppera
 * can hold for one item; vm_zone (32-bit zsize) holds it too. Items are at least 1 byte.
 */
export const MAX_ITEM_SIZE = 65535 * 4096;
/** Largest malloc(9) size: 2^40 bytes (1 TiB), the most memory a machine may have (emu/config.ts). */
export const MAX_MALLOC_SIZE = 2 ** 40;

/** The op's word in the text format, by op code. */
export const opNames: readonly string[] = ['', 'zone', 'a', 'f', 'm', 'x', 'P', 'Q', 't'];

export const zoneFlags = ['reclaim', 'nofree', 'interrupt'] as const;
export type ZoneFlag = (typeof zoneFlags)[number];

/**
 * One event. Readers may reuse one object for every event they hand out: copy what you keep.
 * Unused fields are 0 / '' / [].
 */
export interface TraceEvent {
  cpu: number;
  op: number;
  /** Zone id (zone, a, f). */
  zone: number;
  /** Object id (a, f, m, x, P, Q). */
  obj: number;
  /** Item size (zone), bytes (m), order (P) or cycles (t). */
  size: number;
  /** Zone name (zone). */
  name: string;
  /** Zone flags (zone). */
  flags: ZoneFlag[];
  /** Line number in the file it was read from (0 when generated). */
  line: number;
}

export interface TraceHeader {
  /** `# key: value` metadata before the first event, in order. */
  meta: Record<string, string>;
  /** CPUs the trace was recorded or generated on (`# cpus: N`), if said. */
  cpus?: number;
}

export function newEvent(): TraceEvent {
  return { cpu: 0, op: 0, zone: 0, obj: 0, size: 0, name: '', flags: [], line: 0 };
}
