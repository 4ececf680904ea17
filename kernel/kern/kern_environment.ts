// Boot tunables: the loader's kernel environment (loader.conf(5), kenv(1)) as far as kmemu reads
// it, fixed before the kernel boots (FreeBSD sys/kern/kern_environment.c's TUNABLE_* fetches).
// Each tunable has a name, a description, the values it takes and a default; boot(machine,
// tunables) applies them, and a name or value outside the list is refused before anything runs.
//
// vm.kmem_backend — where UMA's page_alloc/page_free and malloc(9)'s large allocations get
// their memory:
//   kmem_alloc3  DragonFly's kmem_alloc3/kmem_free on kernel_map (the default, kmemu's model
//                before the arenas; every figure measured without the tunable is this one);
//   vmem         FreeBSD 10–11's kmem_malloc/kmem_free on kmem_arena, a vmem(9) arena of
//                vm.kmem_size bytes whose KVA kernel_arena imported from kernel_map. vmem_startup
//                then runs at boot, and the boundary-tag zone gets its pages from kmem_arena with
//                its reserve (kernel/kern/subr_vmem.ts).
// kmemu's own name: FreeBSD chose at build time, not by tunable.
//
// kern.ipc.nmbclusters — the mbuf cluster zone's limit (FreeBSD 6's tunable_mbinit, a
// TUNABLE_INT: kern_mbuf.ts). Unset, the kernel computes 1024 + 64 * maxusers at boot, and
// that is the value reports give; 0 means no limit.

import { UserError } from '../../emu/index.js';

export interface TunableEntry {
  name: string;
  description: string;
  /** The values a string tunable takes; absent for an integer tunable (`range`). */
  values?: readonly string[];
  /** The integers an integer tunable takes, inclusive. */
  range?: readonly [number, number];
  /** The value when unset; for a tunable the kernel computes at boot, how it does (`computed`). */
  default?: string;
  computed?: string;
}

export const tunableList: readonly TunableEntry[] = [
  {
    name: 'vm.kmem_backend',
    description: 'Backend of UMA slabs and large malloc(9): DragonFly\'s kmem_alloc3 on kernel_map, or FreeBSD 10\'s kmem_malloc on kmem_arena (vmem)',
    values: ['kmem_alloc3', 'vmem'],
    default: 'kmem_alloc3',
  },
  {
    name: 'kern.ipc.nmbclusters',
    description: 'Maximum number of mbuf clusters allowed (0: no limit)',
    range: [0, 2 ** 31 - 1],
    computed: '1024 + 64 * maxusers',
  },
];

/** The tunables a boot takes, by name. */
export interface Tunables {
  'vm.kmem_backend'?: 'kmem_alloc3' | 'vmem';
  'kern.ipc.nmbclusters'?: string;
}

/** Every tunable with its effective value (defaults included), for reports. */
export type TunableValues = Record<string, string>;

/**
 * Why NAME cannot be set to VALUE (one sentence naming the tunable and what it takes), or
 * undefined when it can.
 */
export function tunableCheck(name: string, value: string): string | undefined {
  const t = tunableList.find((e) => e.name === name);
  if (t === undefined) return `${name} is not a tunable of this kernel (tunables: ${tunableList.map((e) => e.name).join(', ')})`;
  if (t.values !== undefined && !t.values.includes(value)) return `${name} takes ${t.values.map((v) => `"${v}"`).join(' or ')}, not "${value}"`;
  if (t.range !== undefined) {
    const [min, max] = t.range;
    const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
    if (!(n >= min && n <= max)) return `${name} takes an integer from ${min} to ${max}, not "${value}"`;
  }
  return undefined;
}

/** How --help shows what a tunable takes and its default. */
export function tunableUsage(t: TunableEntry): string {
  const takes = t.values !== undefined ? t.values.join('|') : `${t.range![0]}..${t.range![1]}`;
  return `${t.name}=${takes} (default ${t.default ?? t.computed ?? 'none'})`;
}

/**
 * The effective values of every tunable with a fixed default: `given` over the defaults; a
 * UserError for a bad one. The kernel adds those it computes at boot (Kernel.tunables).
 */
export function tunableValues(given: Readonly<Record<string, string | undefined>> = {}): TunableValues {
  const out: TunableValues = {};
  for (const [name, value] of Object.entries(given)) {
    if (value === undefined) continue;
    const problem = tunableCheck(name, value);
    if (problem !== undefined) throw new UserError(problem);
  }
  for (const t of tunableList) {
    const v = given[t.name] ?? t.default;
    if (v !== undefined) out[t.name] = v;
  }
  return out;
}
