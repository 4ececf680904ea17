// The kmemu trace format, versions 1 and 2 (traces/FORMAT.md): the event codes and the one
// event shape every reader, writer, importer, generator and the replayer share. Version 2 adds
// vmem(9) arenas and their allocations (`arena`, `v`, `V`) and mbuf(9) allocations (`b`, `B`).

export const TRACE_MAGIC = 'kmemu-trace';
/** The newest version this kmemu reads and writes. */
export const TRACE_VERSION = 2;
/** The version of a trace without version-2 ops: what writers emit for it, so that v1 traces stay byte for byte. */
export const TRACE_VERSION_1 = 1;

export const OP_ZONE = 1; // zone ZONE NAME SIZE [FLAG...]
export const OP_ALLOC = 2; // a ZONE OBJ
export const OP_FREE = 3; // f ZONE OBJ
export const OP_MALLOC = 4; // m SIZE OBJ
export const OP_MFREE = 5; // x OBJ
export const OP_PALLOC = 6; // P ORDER OBJ
export const OP_PFREE = 7; // Q OBJ
export const OP_THINK = 8; // t CYCLES
export const OP_ARENA = 9; // arena ARENA NAME BASE SIZE QUANTUM QCACHE_MAX [import PARENT [IMPORT_QUANTUM]]   (version 2)
export const OP_VALLOC = 10; // v ARENA OBJ SIZE [STRAT] [align=A] [phase=P] [nocross=N]                     (version 2)
export const OP_VFREE = 11; // V OBJ                                                                       (version 2)
export const OP_MBUF = 12; // b OBJ KIND (mbuf, pkthdr, cluster, chain:N)                                  (version 2)
export const OP_MFREEM = 13; // B OBJ                                                                      (version 2)

/** The first op a version-1 trace cannot hold. */
export const FIRST_V2_OP = OP_ARENA;

/** The format version a trace with op `op` needs. */
export function versionOfOp(op: number): number {
  return op >= FIRST_V2_OP ? 2 : 1;
}

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

/**
 * Largest `v` SIZE and ALIGN/PHASE/NOCROSS: 2^53-1, exact as a JS number. Arena BASE and SIZE
 * are 64-bit (bigint): an arena may sit at 0xfffffe0000000000.
 */
export const MAX_VMEM_SIZE = Number.MAX_SAFE_INTEGER;
/** Largest arena QUANTUM: 2^32 bytes (a power of two; upstream asserts only that). */
export const MAX_VMEM_QUANTUM = 2 ** 32;
/** Quantum caches: at most 16 sizes (VMEM_QCACHE_IDX_MAX), so QCACHE_MAX is at most 16 quanta. */
export const MAX_VMEM_QCACHE_QUANTA = 16;
/** Arena names: at most VMEM_NAME_MAX (16) characters. */
export const MAX_VMEM_NAME = 16;

/** The op's word in the text format, by op code. */
export const opNames: readonly string[] = ['', 'zone', 'a', 'f', 'm', 'x', 'P', 'Q', 't', 'arena', 'v', 'V', 'b', 'B'];

/**
 * What a `b` event allocates (FORMAT.md, "Version 2: mbufs"): `mbuf` m_get, `pkthdr` m_gethdr,
 * `cluster` m_getcl (an mbuf with a packet header and a 2 KiB cluster), `chain` N plain mbufs
 * linked by m_next (TraceEvent.size is N), as m_getm builds a chain of mbufs without clusters.
 * `B` frees the whole allocation with m_freem.
 */
export const mbufKinds = ['mbuf', 'pkthdr', 'cluster', 'chain'] as const;
export type MbufKind = (typeof mbufKinds)[number];
/**
 * Longest `chain:N`: 64 mbufs (64 × MLEN = 13,824 bytes of data), the most DMA segments FreeBSD's
 * em(4) and igb(4) map for one packet (EM_MAX_SCATTER, IGB_MAX_SCATTER: 64 in the 10.x/11.x
 * drivers; 32 or 40 in others); a driver m_defrag's a longer chain before it sends it.
 */
export const MAX_MBUF_CHAIN = 64;
/** MLEN on FreeBSD amd64 (216: MSIZE 256 less the 40-byte struct m_hdr), kernel/kern/mbuf.ts's. */
export { MLEN } from '../kernel/index.js';

/** vmem(9) fit strategies of a `v` event; firstfit (M_FIRSTFIT, Bonwick's instant fit) when none is given. */
export const vmemStrategies = ['firstfit', 'bestfit', 'nextfit'] as const;
export type VmemStrategy = (typeof vmemStrategies)[number];

/** The vmem arguments of an `arena` or `v` event (unused fields 0n / -1 / 'firstfit'). */
export interface VmemArgs {
  /** arena: the initial span [BASE, BASE + SIZE) (SIZE 0: none), QUANTUM and QCACHE_MAX in bytes. */
  base: bigint;
  span: bigint;
  quantum: bigint;
  qcacheMax: bigint;
  /** arena: the arena it imports from (-1: none), and the import quantum (0n: its own QUANTUM). */
  parent: number;
  importQuantum: bigint;
  /** v: the fit strategy and the restrictions of vmem_xalloc (0n: none). */
  strat: VmemStrategy;
  align: bigint;
  phase: bigint;
  nocross: bigint;
}

export function newVmemArgs(): VmemArgs {
  return { base: 0n, span: 0n, quantum: 0n, qcacheMax: 0n, parent: -1, importQuantum: 0n, strat: 'firstfit', align: 0n, phase: 0n, nocross: 0n };
}

export const zoneFlags = ['reclaim', 'nofree', 'interrupt'] as const;
export type ZoneFlag = (typeof zoneFlags)[number];

/**
 * One event. Readers may reuse one object for every event they hand out: copy what you keep.
 * Unused fields are 0 / '' / [].
 */
export interface TraceEvent {
  cpu: number;
  op: number;
  /** Zone id (zone, a, f) or arena id (arena, v). */
  zone: number;
  /** Object id (a, f, m, x, P, Q, v, V, b, B). */
  obj: number;
  /** Item size (zone), bytes (m, v), order (P), cycles (t) or the mbufs of a chain (b chain:N; 0 for the other kinds). */
  size: number;
  /** Zone or arena name (zone, arena). */
  name: string;
  /** Zone flags (zone). */
  flags: ZoneFlag[];
  /** Line number in the file it was read from (0 when generated). */
  line: number;
  /** arena, and v with a strategy or restrictions: their vmem arguments; null or absent otherwise. */
  vmem?: VmemArgs | null;
  /** b: what it allocates (with `size` the N of chain:N); null or absent otherwise. */
  mbuf?: MbufKind | null;
}

export interface TraceHeader {
  /** `# key: value` metadata before the first event, in order. */
  meta: Record<string, string>;
  /** CPUs the trace was recorded or generated on (`# cpus: N`), if said. */
  cpus?: number;
}

export function newEvent(): TraceEvent {
  return { cpu: 0, op: 0, zone: 0, obj: 0, size: 0, name: '', flags: [], line: 0, vmem: null, mbuf: null };
}
