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

import { UserError } from '../../emu/index.js';

export interface TunableEntry {
  name: string;
  description: string;
  values: readonly string[];
  default: string;
}

export const tunableList: readonly TunableEntry[] = [
  {
    name: 'vm.kmem_backend',
    description: 'Backend of UMA slabs and large malloc(9): DragonFly\'s kmem_alloc3 on kernel_map, or FreeBSD 10\'s kmem_malloc on kmem_arena (vmem)',
    values: ['kmem_alloc3', 'vmem'],
    default: 'kmem_alloc3',
  },
];

/** The tunables a boot takes, by name. */
export interface Tunables {
  'vm.kmem_backend'?: 'kmem_alloc3' | 'vmem';
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
  if (!t.values.includes(value)) return `${name} takes ${t.values.map((v) => `"${v}"`).join(' or ')}, not "${value}"`;
  return undefined;
}

/** The effective values of every tunable: `given` over the defaults; a UserError for a bad one. */
export function tunableValues(given: Readonly<Record<string, string | undefined>> = {}): TunableValues {
  const out: TunableValues = {};
  for (const [name, value] of Object.entries(given)) {
    if (value === undefined) continue;
    const problem = tunableCheck(name, value);
    if (problem !== undefined) throw new UserError(problem);
  }
  for (const t of tunableList) out[t.name] = given[t.name] ?? t.default;
  return out;
}
