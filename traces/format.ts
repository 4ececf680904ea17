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
