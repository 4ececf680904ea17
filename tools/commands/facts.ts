// The values of the layers below that the command tree's help and defaults quote, copied here so
// that declaring the commands (and `kmemu --help`) loads no emulator, kernel, trace or zod code.
// test/tools/commands.test.ts checks each against its source; when one changes, change it here.

/** traces' KMEMU_VERSION (`kmemu --version`). */
export const KMEMU_VERSION = '0.1.0';

/** emu's machinePresets, by name in their order, and defaultPresetName with its clockGHz. */
export const MACHINE_PRESETS = ['coursework', 'amd64-host', 'xeon-8180', 'epyc-7763'] as const;
export const DEFAULT_PRESET = 'amd64-host';
export const DEFAULT_PRESET_CLOCK_GHZ = 3.6;

/** emu's replacementPolicies. */
export const REPLACEMENT_POLICIES = ['lru', 'fifo', 'plru', 'random'] as const;

/** kernel's tunableList, each as tunableUsage() prints it. */
export const TUNABLE_USAGE = [
  'vm.kmem_backend=kmem_alloc3|vmem (default kmem_alloc3)',
  'kern.ipc.nmbclusters=0..2147483647 (default 1024 + 64 * maxusers)',
] as const;

/** kernel's sysctls, by name in their order. */
export const SYSCTL_NAMES = [
  'hw.ncpu', 'hw.physmem', 'hw.pagesize', 'vm.kvm_size', 'vm.kvm_free', 'vm.stats.vm.v_page_count', 'vm.stats.vm.v_free_count',
  'vm.stats.vm.v_wire_count', 'vm.stats.vm.v_active_count', 'vm.stats.vm.v_inactive_count', 'vm.stats.vm.v_free_reserved',
  'vm.stats.vm.v_free_min', 'vm.stats.vm.v_free_target', 'vm.stats.vm.v_interrupt_free_min', 'vm.stats.vm.v_cache_min',
  'vm.stats.vm.v_pdwakeups', 'vm.stats.vm.v_tfree', 'vm.stats.vm.v_zfod', 'vm.nkpt', 'vm.zone_kmem_pages', 'vm.zone_burst',
  'vm.zone_kmem_kvaspace', 'vm.zone', 'vm.zone_kern_pages', 'vm.zone_count', 'vm.uma_kmem_pages', 'vm.uma_reclaimed_pages',
  'vm.uma_boot_pages_free', 'kern.ipc.nmbclusters', 'vm.kmem_size', 'vm.kmem_map_size', 'vm.kmem_map_free', 'vm.kmem_large_pages',
] as const;

/** traces' vmemStrategies. */
export const VMEM_STRATEGIES = ['firstfit', 'bestfit', 'nextfit'] as const;

/** traces' LINUX_IMPORT_SCHEMA and MAX_THINK_NS (import-linux.ts). */
export const LINUX_IMPORT_SCHEMA = 'kmemu.trace-import/1';
export const MAX_THINK_NS = 10_000_000;
