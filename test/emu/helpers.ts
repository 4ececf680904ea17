// Test fixtures for the machine: a small machine with kernel page tables built functionally.
import {
  KERNBASE, Machine, PAGE_1G, PAGE_2M, PAGE_4K, PageTableEditor, machinePresets, mergeConfig,
  type MachineConfigInput,
} from '../../emu/index.js';

export const PT_BASE = 0x10_0000; // page-table frames are taken from 1 MiB up
export const DATA_PA = 0x40_0000; // the test data region's physical base (4 MiB)
export const VA_4K = KERNBASE; // 16 pages mapped with 4K pages
export const VA_2M = KERNBASE + 0x4000_0000; // one 2M page
export const VA_1G = 0x7f80_0000_0000 + 0x8000_0000_0000; // a 1G page in the kernel half

export interface TestMachine {
  m: Machine;
  pt: PageTableEditor;
  cr3: number;
}

/** The coursework machine (or another preset) with overrides, and kernel mappings. */
export function testMachine(overrides: object = {}, preset = 'coursework'): TestMachine {
  const cfg = mergeConfig(mergeConfig(machinePresets[preset], { memory: { size: '2g' } }), overrides) as MachineConfigInput;
  const m = new Machine(cfg);
  let next = PT_BASE;
  const allocTable = () => {
    const pa = next;
    next += 4096;
    return pa;
  };
  const pt = new PageTableEditor(m.mem, allocTable);
  const cr3 = allocTable();
  pt.mapRange(cr3, VA_4K, DATA_PA, 16 * 4096, PAGE_4K, { global: true });
  pt.map(cr3, VA_2M, 0x20_0000 * 8, PAGE_2M);
  pt.map(cr3, VA_1G, 0x4000_0000, PAGE_1G);
  for (const cpu of m.cpus) cpu.setCr3(cr3);
  return { m, pt, cr3 };
}

/** Runs one program on each listed CPU. */
export function runOn(m: Machine, programs: Record<number, Parameters<Machine['run']>[0][number]>): void {
  const list = m.cpus.map((c) => programs[c.id]);
  m.run(list);
}
