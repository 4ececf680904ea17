// `kmemu boot`: boot a kernel and show what boot built; --layout prints the kernel's address
// space (virtual and physical) and kernel_map's entries.

import { statSync } from 'node:fs';
import { Machine, UsageError, hex64 } from '../emu/index.js';
import {
  DMAP_MAX_ADDRESS, DMAP_MIN_ADDRESS, DMPML4I, KERNBASE, KERNEL_TEXT_SIZE, KERNLOAD, KvaEnd, KvaStart, NBPDP,
  PML4PML4I, PTmap, VM_MAPTYPE_SUBMAP, boot, mapEntries, ptoa, sysctl, vm_page,
} from '../kernel/index.js';
import type { Kernel } from '../kernel/index.js';
import { z } from 'zod';
import { KMEMU_VERSION, kmemuVersionSchema, machineRun, machineRunSchema, saveBootImage } from '../traces/index.js';
import { LAYOUT_SCHEMA, bootCommand, type BootOptions } from './commands/boot.js';
import { machineConfigFrom, machineLabel, parseTunables } from './machine-options.js';

export { LAYOUT_SCHEMA } from './commands/boot.js';

/** Bytes one PML4 slot maps. */
const NBPML4 = 512 * NBPDP;
/** The PC hole of the modeled e820 map: [top of base memory, 1 MiB) is not RAM (kernel.ts). */
const BASEMEM_END = 0x9_f000;
const EXTMEM_START = 0x10_0000;

export interface LayoutRegion {
  /** A stable id (dmap.ram, vm_page_array, ...). */
  name: string;
  start: number;
  /** Exclusive; equal to start for a marker (KERNBASE). */
  end: number;
  /** 0 for a top-level region, 1 for a piece of one, 2 for a piece of a piece. */
  depth: number;
  what: string;
}

export interface LayoutEntry {
  start: number;
  end: number;
  /** none, kernel_object, object (another VM object) or submap. */
  backing: 'none' | 'kernel_object' | 'object' | 'submap';
  /** The vm_object, or the vm_map of a submap; 0 for none. */
  object: number;
  wired: number;
}

export interface KernelLayout {
  machine: { name: string; cpus: number; memory: number };
  virtual: LayoutRegion[];
  physical: LayoutRegion[];
  kernelMapEntries: LayoutEntry[];
}

/**
 * A byte count as 4K, 128M, 2G when exact, else to two decimals (127.99G) unless that would
 * look exact (2M - 4K prints as 2044K, not 2M).
 */
export function formatBytes(n: number): string {
  const units = [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const;
  for (const [unit, scale] of units) {
    if (n < scale) continue;
    const v = Number((n / scale).toFixed(2));
    if (n % scale === 0 || !Number.isInteger(v) || scale === 2 ** 10) return `${v}${unit}`;
  }
  return `${n}B`;
}

/** Regions of no size that mark an address. */
const markers = new Set(['KERNBASE']);

/** Non-empty regions and markers in address order; at one address a marker, then outer before inner. */
function byAddress(regions: LayoutRegion[]): LayoutRegion[] {
  const marker = (r: LayoutRegion) => (markers.has(r.name) ? 0 : 1);
  return regions
    .filter((r) => r.end > r.start || markers.has(r.name))
    .sort((a, b) => a.start - b.start || marker(a) - marker(b) || a.depth - b.depth || b.end - a.end);
}

function virtualRegions(k: Kernel, ramBytes: number): LayoutRegion[] {
  const dmapMapped = DMAP_MIN_ADDRESS + k.ndmpdp * NBPDP;
  const dmapRam = DMAP_MIN_ADDRESS + ramBytes;
  const bootTablePages = (k.firstaddr - k.physfree) / 4096;
  return byAddress([
    {
      name: 'PTmap', start: PTmap, end: PTmap + NBPML4, depth: 0,
      what: `recursive page-table map (PTmap): PML4[${PML4PML4I}] points at the PML4; va's PTE is at PTmap + 8·(va >> 12)`,
    },
    {
      name: 'dmap', start: DMAP_MIN_ADDRESS, end: DMAP_MAX_ADDRESS, depth: 0,
      what: `direct map (DMAP, PML4[${DMPML4I}]): physical address pa at ${hex64(DMAP_MIN_ADDRESS)} + pa, 1G pages`,
    },
    { name: 'dmap.ram', start: DMAP_MIN_ADDRESS, end: dmapRam, depth: 1, what: `RAM: physical 0–${formatBytes(ramBytes)}` },
    {
      name: 'dmap.noram', start: dmapRam, end: dmapMapped, depth: 1,
      what: `mapped without RAM behind it (the direct map has at least 4 1G pages)`,
    },
    { name: 'dmap.unmapped', start: Math.max(dmapRam, dmapMapped), end: DMAP_MAX_ADDRESS, depth: 1, what: 'not mapped' },
    {
      name: 'kernel_map', start: KvaStart, end: KvaEnd, depth: 0,
      what: 'kernel_map [KvaStart, KvaEnd): the kernel virtual memory vm_map manages (vm.kvm_size)',
    },
    {
      name: 'vm_page_tables', start: KvaStart, end: k.virtual2_start, depth: 1,
      what: 'in use since boot: vm_page_array and the page hash (vm_page_startup)',
    },
    {
      name: 'vm_page_array', start: k.vm_page_array, end: k.vm_page_buckets, depth: 2,
      what: `vm_page_array: ${k.vm_page_array_size} struct vm_page of ${vm_page.sizeof} bytes`,
    },
    {
      name: 'vm_page_buckets', start: k.vm_page_buckets, end: k.virtual2_start, depth: 2,
      what: `page hash (vm_page_buckets): ${k.vm_page_hash_mask + 1} 8-byte heads`,
    },
    {
      name: 'virtual2', start: k.virtual2_start, end: k.virtual2_end, depth: 1,
      what: 'free: [virtual2_start, virtual2_end), the cutout below KERNBASE',
    },
    { name: 'KERNBASE', start: KERNBASE, end: KERNBASE, depth: 1, what: 'KERNBASE (-2G): here va = pa + KERNBASE' },
    {
      name: 'kernel', start: KERNBASE, end: k.virtual_start, depth: 1,
      what: 'in use since boot: physical 0 up to virtual_start, mapped with 2M pages',
    },
    {
      name: 'kernel.low', start: KERNBASE, end: KERNBASE + KERNLOAD, depth: 2,
      what: `physical 0–${formatBytes(KERNLOAD)}, below the load address (KERNLOAD)`,
    },
    {
      name: 'kernel.text', start: KERNBASE + KERNLOAD, end: KERNBASE + KERNLOAD + KERNEL_TEXT_SIZE, depth: 2,
      what: 'kernel text and read-only data, at KERNBASE + KERNLOAD',
    },
    {
      name: 'kernel.data', start: KERNBASE + KERNLOAD + KERNEL_TEXT_SIZE, end: k.imageEnd, depth: 2,
      what: 'kernel .data/.bss: its static structures, up to imageEnd',
    },
    {
      name: 'kernel.pagetables', start: KERNBASE + k.physfree, end: KERNBASE + k.firstaddr, depth: 2,
      what: `bootstrap page tables, ${bootTablePages} pages (KERNBASE + [physfree, firstaddr))`,
    },
    {
      name: 'kernel.slack', start: KERNBASE + k.firstaddr, end: k.virtual_start, depth: 2,
      what: 'rest of the last 2M page: virtual_start is rounded up to 2M',
    },
    {
      name: 'virtual', start: k.virtual_start, end: k.virtual_end, depth: 1,
      what: 'free: [virtual_start, virtual_end)',
    },
  ]);
}

function physicalRegions(k: Kernel, ramBytes: number, memoryBytes: number): LayoutRegion[] {
  const tablesPa = k.kvtop(k.vm_page_array);
  const biggest = k.phys_avail.findIndex((s) => s.end === tablesPa);
  const regions: LayoutRegion[] = [
    ...k.phys_avail.map((s, i) => ({ name: `phys_avail[${i}]`, start: s.start, end: s.end, depth: 0, what: `phys_avail[${i}]: free pages` })),
    { name: 'kernel.text', start: KERNLOAD, end: KERNLOAD + KERNEL_TEXT_SIZE, depth: 0, what: 'kernel text and read-only data (loaded at KERNLOAD)' },
    { name: 'kernel.data', start: KERNLOAD + KERNEL_TEXT_SIZE, end: k.physfree, depth: 0, what: 'kernel .data/.bss, up to physfree' },
    { name: 'kernel.pagetables', start: k.physfree, end: k.firstaddr, depth: 0, what: 'bootstrap page tables, up to firstaddr' },
    {
      name: 'vm_page_tables', start: tablesPa, end: tablesPa + (k.virtual2_start - KvaStart), depth: 0,
      what: `vm_page_array and the page hash (mapped at KvaStart), cut off the top of phys_avail[${biggest}]`,
    },
  ];
  const sorted = byAddress(regions);
  const gaps: LayoutRegion[] = [];
  let at = 0;
  for (const r of [...sorted, { start: ramBytes, end: ramBytes }]) {
    if (r.start > at) {
      let why = 'rounding to 128K (PHYSMAP_ALIGN)';
      if (at === 0) why = 'page 0, up to the first 128K boundary (PHYSMAP_ALIGN)';
      else if (at <= BASEMEM_END && r.start >= EXTMEM_START) why = 'top of base memory and the 640K–1M hole';
      gaps.push({ name: 'unused', start: at, end: r.start, depth: 0, what: `not in phys_avail: ${why}` });
    }
    at = Math.max(at, r.end);
  }
  if (memoryBytes > ramBytes) {
    gaps.push({ name: 'beyond_dmap', start: ramBytes, end: memoryBytes, depth: 0, what: 'not used: beyond the direct map (Maxmem is cut to its size)' });
  }
  return byAddress([...sorted, ...gaps]);
}

function entryBacking(k: Kernel, e: { object: number; maptype: number }): LayoutEntry['backing'] {
  if (e.maptype === VM_MAPTYPE_SUBMAP) return 'submap';
  if (e.object === 0) return 'none';
  return e.object === k.kernel_object ? 'kernel_object' : 'object';
}

/** The layout of a booted kernel, read functionally. */
export function kernelLayout(k: Kernel, machineName: string): KernelLayout {
  const ramBytes = ptoa(k.Maxmem);
  const memoryBytes = k.machine.config.memory.size;
  return {
    machine: { name: machineName, cpus: k.ncpus, memory: memoryBytes },
    virtual: virtualRegions(k, ramBytes),
    physical: physicalRegions(k, ramBytes, memoryBytes),
    kernelMapEntries: mapEntries(k, k.kernel_map).map((e) => ({
      start: e.start,
      end: e.end,
      backing: entryBacking(k, e),
      object: e.object,
      wired: e.wired,
    })),
  };
}

const hex = z.string().regex(/^[0-9a-f]{16}$/).describe('an address as 16 hex digits');
const bytesSize = z.number().int().min(0).describe('end − start (bytes)');
const layoutRegion = z
  .object({
    name: z.string().describe('a stable id (dmap.ram, vm_page_array, ...; "unused" for a gap)'),
    start: hex,
    end: hex.describe('exclusive end; equal to start for a marker (KERNBASE)'),
    size: bytesSize,
    depth: z.number().int().min(0).max(2).describe('0 for a top-level region, 1 for a piece of one, 2 for a piece of a piece'),
    what: z.string().describe('what the region is, in words'),
  })
  .describe('a region of the address space');

export const layoutRunSchema = z
  .object({ kmemu: kmemuVersionSchema, machine: machineRunSchema })
  .describe('what ran: kmemu and the machine booted');

export const layoutDocSchema = z
  .object({
    schema: z.literal(LAYOUT_SCHEMA).describe('this document\'s schema and version'),
    run: layoutRunSchema,
    machine: z
      .object({
        name: z.string().describe('the machine as given (a preset name or file)'),
        cpus: z.number().int().min(1).describe('CPUs'),
        memory: z.number().int().min(0).describe('memory size (bytes)'),
      })
      .describe('the machine booted'),
    symbols: z.record(z.string(), hex).describe('kernel address-space symbols (PTmap, DMAP_MIN_ADDRESS, KvaStart, KERNBASE, ...) → address'),
    virtual: z.array(layoutRegion).describe('the kernel virtual address space, in address order'),
    physical: z.array(layoutRegion).describe('physical memory, in address order'),
    kernelMapEntries: z
      .array(
        z.object({
          start: hex,
          end: hex.describe('exclusive end'),
          size: bytesSize,
          backing: z.enum(['none', 'kernel_object', 'object', 'submap']).describe('what backs the entry'),
          object: hex.nullable().describe('the vm_object, or the vm_map of a submap; null for none'),
          wired: z.number().int().min(0).describe('wired count'),
        }),
      )
      .describe('kernel_map\'s entries, in address order'),
  })
  .describe('the kernel address-space layout after boot: addresses as 16 hex digits, sizes in bytes');
export type LayoutDoc = z.infer<typeof layoutDocSchema>;

/** The kmemu.layout/1 document: addresses as 16 hex digits, sizes in bytes. */
export function layoutJson(layout: KernelLayout, run: z.infer<typeof layoutRunSchema>): LayoutDoc {
  const region = (r: LayoutRegion) => ({ name: r.name, start: hex64(r.start), end: hex64(r.end), size: r.end - r.start, depth: r.depth, what: r.what });
  return {
    schema: LAYOUT_SCHEMA,
    run,
    machine: layout.machine,
    symbols: Object.fromEntries(
      Object.entries({ PTmap, DMAP_MIN_ADDRESS, DMAP_MAX_ADDRESS, KvaStart, KvaEnd, KERNBASE, KERNLOAD }).map(([n, v]) => [n, hex64(v)]),
    ),
    virtual: layout.virtual.map(region),
    physical: layout.physical.map(region),
    kernelMapEntries: layout.kernelMapEntries.map((e) => ({
      start: hex64(e.start),
      end: hex64(e.end),
      size: e.end - e.start,
      backing: e.backing,
      object: e.object === 0 ? null : hex64(e.object),
      wired: e.wired,
    })),
  };
}

/** The layout as aligned text: start, end, size, then what (indented by depth). */
export function formatLayout(layout: KernelLayout): string {
  const m = layout.machine;
  const size = (s: number, e: number) => (e === s ? '' : formatBytes(e - s));
  const sizes = [...layout.virtual, ...layout.physical, ...layout.kernelMapEntries].map((r) => size(r.start, r.end));
  const w = Math.max('size'.length, ...sizes.map((s) => s.length));
  const row = (start: string, end: string, sz: string, rest: string) => `${start.padEnd(16)}  ${end.padEnd(16)}  ${sz.padStart(w)}  ${rest}`.trimEnd();
  const region = (r: LayoutRegion) => row(hex64(r.start), r.end === r.start ? '' : hex64(r.end), size(r.start, r.end), `${'  '.repeat(r.depth)}${r.what}`);
  const backing = (e: LayoutEntry) => (e.object === 0 ? e.backing : `${e.backing} ${hex64(e.object)}`);
  const bw = Math.max('backed by'.length, ...layout.kernelMapEntries.map((e) => backing(e).length));
  return [
    `kernel virtual address space (${m.name}: ${m.cpus} CPUs, ${formatBytes(m.memory)} RAM)`,
    row('start', 'end', 'size', 'what'),
    ...layout.virtual.map(region),
    '',
    'physical memory',
    row('start', 'end', 'size', 'what'),
    ...layout.physical.map(region),
    '',
    `kernel_map entries: ${layout.kernelMapEntries.length}`,
    row('start', 'end', 'size', `${'backed by'.padEnd(bw)}  wired`),
    ...layout.kernelMapEntries.map((e) => row(hex64(e.start), hex64(e.end), size(e.start, e.end), `${backing(e).padEnd(bw)}  ${e.wired}`)),
    '',
  ].join('\n');
}

/** The summary `kmemu boot` prints without --layout. */
function formatSummary(k: Kernel, name: string): string {
  const m = k.machine;
  const cycles = m.cpus.map((c) => c.clock);
  const longest = Math.max(...cycles);
  const us = longest / (m.config.clockGHz * 1000);
  return [
    `booted ${name}: ${k.ncpus} CPUs, ${formatBytes(m.config.memory.size)} RAM`,
    `boot: ${longest} cycles (${Number(us.toFixed(1))} µs at ${m.config.clockGHz} GHz); ${cycles.map((c, i) => `cpu${i} ${c}`).join(', ')}`,
    `pages: ${sysctl(k, 'vm.stats.vm.v_page_count')} managed, ${sysctl(k, 'vm.stats.vm.v_free_count')} free; ` +
      `kernel_map: ${mapEntries(k, k.kernel_map).length} entries`,
    ...(k.kmem_backend === 'vmem'
      ? [`kmem_arena (vm.kmem_backend=vmem): vm.kmem_size ${sysctl(k, 'vm.kmem_size')}, vm.kmem_map_size ${sysctl(k, 'vm.kmem_map_size')}, vm.kmem_map_free ${sysctl(k, 'vm.kmem_map_free')}`]
      : []),
    'kmemu boot --layout prints the address-space layout, kmemu sysctl -a the sysctl names.',
    '',
  ].join('\n');
}

export interface BootIo {
  stdout: { write(text: string): unknown };
}

/** What `kmemu boot` does with its options; `done` gets the layout (with --layout). */
export function bootMain(opts: BootOptions, io: BootIo, done: (layout: KernelLayout | undefined) => void): void {
  if (opts.json === true && opts.layout !== true) throw new UsageError('boot: --json goes with --layout');
  const tunables = parseTunables(opts.tunable);
  const config = machineConfigFrom(opts);
  const name = machineLabel(opts);
  if (opts.save === '-' || opts.save === '') throw new UsageError('boot: --save: expected a file name for the machine image');
  const k = opts.save === undefined ? boot(new Machine(config), tunables) : saveBootImage(opts.save, config, name, tunables).kernel;
  if (opts.layout !== true) {
    io.stdout.write(formatSummary(k, name));
    if (opts.save !== undefined) io.stdout.write(`saved the booted machine to ${opts.save} (${statSync(opts.save).size} bytes); kmemu replay TRACE --from ${opts.save} starts from it\n`);
    done(undefined);
    return;
  }
  const layout = kernelLayout(k, name);
  const run = { kmemu: KMEMU_VERSION, machine: machineRun(name, config) };
  io.stdout.write(opts.json === true ? `${JSON.stringify(layoutJson(layout, run), null, 2)}\n` : formatLayout(layout));
  done(layout);
}

/**
 * Runs `kmemu boot ARGS` in-process (ARGS without the subcommand name) and returns the layout
 * (with --layout). User errors throw UserError; option errors throw commander's CommanderError.
 */
export async function runBoot(args: readonly string[], io: Partial<BootIo> = {}): Promise<KernelLayout | undefined> {
  let result: KernelLayout | undefined;
  const stdout = io.stdout ?? process.stdout;
  const command = bootCommand((opts) => bootMain(opts, { stdout }, (layout) => {
    result = layout;
  }))
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  await command.parseAsync([...args], { from: 'user' });
  return result;
}
