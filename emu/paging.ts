// x86_64 4-level paging: the entry format, canonical addresses, a functional page-table
// builder, and the hardware walker whose loads go through the walking CPU's caches.
//
// Virtual addresses are kept as 48-bit numbers (0 .. 2^48-1): the upper, kernel half is
// 0x8000_0000_0000 and up. They are sign-extended to 64 bits only when printed or stored as a
// pointer. An entry is two little-endian 32-bit words (lo: bits 0–31, hi: bits 32–63).

import { UserError } from './errors.js';
import type { PhysMem } from './physmem.js';

export const PTE_P = 0x001;
export const PTE_RW = 0x002;
export const PTE_US = 0x004;
export const PTE_PWT = 0x008;
export const PTE_PCD = 0x010;
export const PTE_A = 0x020;
export const PTE_D = 0x040;
export const PTE_PS = 0x080;
export const PTE_G = 0x100;
/** NX is bit 63: bit 31 of the high word. */
export const PTE_NX_HI = 0x80000000;

/** #PF error-code bits. */
export const PF_PROT = 0x1; // 0: not present, 1: protection violation
export const PF_WRITE = 0x2;
export const PF_USER = 0x4;

export const PAGE_4K = 12;
export const PAGE_2M = 21;
export const PAGE_1G = 30;

const TWO_32 = 4294967296;
const TWO_47 = 2 ** 47;
const TWO_48 = 2 ** 48;

/** KERNBASE, -2 GiB: 0xffffffff80000000 as a 48-bit address. */
export const KERNBASE = TWO_48 - 2 ** 31;
/** Start of the kernel (upper) half, 0xffff800000000000. */
export const KERNEL_HALF = TWO_47;
/** Where the direct map of physical memory starts (amd64's DMAP_MIN_ADDRESS, PML4 slot 256). */
export const DMAP_BASE = TWO_47;

/** A 48-bit virtual address as 16 hex digits, sign-extended as the hardware sees it. */
export function hex64(va: number): string {
  if (va >= TWO_47) return 'ffff' + va.toString(16).padStart(12, '0');
  return va.toString(16).padStart(16, '0');
}

/** Parses a 64-bit hex address (with or without 0x); it must be canonical. */
export function parseVa(text: string, what = 'address'): number {
  const t = text.trim().replace(/^0x/i, '');
  if (!/^[0-9a-f]{1,16}$/i.test(t)) throw new UserError(`${what}: expected a hex address of up to 16 digits, got "${text}"`);
  const padded = t.padStart(16, '0').toLowerCase();
  const top = parseInt(padded.slice(0, 4), 16);
  const low = parseInt(padded.slice(4), 16);
  const upper = low >= TWO_47;
  if ((upper && top !== 0xffff) || (!upper && top !== 0)) throw new UserError(`${what}: expected a canonical x86_64 address, got "${text}"`);
  return low;
}

/** The high word of a 48-bit address stored as a 64-bit pointer (sign-extended). */
export function pointerHi(va: number): number {
  const hi = Math.floor(va / TWO_32);
  return va >= TWO_47 ? (hi | 0xffff0000) >>> 0 : hi;
}

/** The 48-bit address a stored 64-bit pointer (lo, hi) denotes. */
export function pointerFrom(lo: number, hi: number): number {
  return (hi & 0xffff) * TWO_32 + (lo >>> 0);
}

/** Index into the page-table page at `level` (4 = PML4 … 1 = PT) for a virtual address. */
export function tableIndex(va: number, level: number): number {
  return Math.floor(va / 2 ** (12 + 9 * (level - 1))) & 511;
}

/** Physical frame address held in an entry. */
export function entryFrame(lo: number, hi: number): number {
  return (hi & 0x000fffff) * TWO_32 + ((lo & 0xfffff000) >>> 0);
}

export interface MapFlags {
  write?: boolean;
  user?: boolean;
  global?: boolean;
  noExecute?: boolean;
}

/**
 * Builds and edits page tables functionally (no cycles charged): for boot code and tests.
 * `allocTable` returns the physical address of a zeroed 4 KiB frame for a page-table page.
 */
export class PageTableEditor {
  constructor(
    private readonly mem: PhysMem,
    private readonly allocTable: () => number,
  ) {}

  /** Maps one page of 4K, 2M or 1G (pageShift 12, 21, 30) at va to pa. */
  map(cr3: number, va: number, pa: number, pageShift: number, flags: MapFlags = {}): void {
    const size = 2 ** pageShift;
    if (va % size !== 0 || pa % size !== 0) throw new RangeError(`map: ${hex64(va)} → 0x${pa.toString(16)} is not aligned to ${size}`);
    const leafLevel = pageShift === PAGE_1G ? 3 : pageShift === PAGE_2M ? 2 : 1;
    let table = cr3;
    for (let level = 4; level > leafLevel; level--) {
      const at = table + tableIndex(va, level) * 8;
      const lo = this.mem.read32(at);
      const hi = this.mem.read32(at + 4);
      if ((lo & PTE_P) === 0) {
        const next = this.allocTable();
        this.writeEntry(at, next, PTE_P | PTE_RW | PTE_US, 0);
        table = next;
      } else {
        if ((lo & PTE_PS) !== 0) throw new RangeError(`map: ${hex64(va)} lies inside a ${level === 3 ? '1G' : '2M'} page`);
        table = entryFrame(lo, hi);
      }
    }
    let lo = PTE_P | (flags.write === false ? 0 : PTE_RW);
    if (flags.user) lo |= PTE_US;
    if (flags.global) lo |= PTE_G;
    if (leafLevel > 1) lo |= PTE_PS;
    this.writeEntry(table + tableIndex(va, leafLevel) * 8, pa, lo, flags.noExecute ? PTE_NX_HI : 0);
  }

  /** Maps `bytes` from va to pa with pages of 2^pageShift bytes. */
  mapRange(cr3: number, va: number, pa: number, bytes: number, pageShift: number, flags: MapFlags = {}): void {
    const size = 2 ** pageShift;
    for (let off = 0; off < bytes; off += size) this.map(cr3, va + off, pa + off, pageShift, flags);
  }

  /** Clears the leaf entry mapping va; returns whether one was present. */
  unmap(cr3: number, va: number): boolean {
    const at = this.leafEntry(cr3, va);
    if (at < 0) return false;
    this.mem.write32(at, 0);
    this.mem.write32(at + 4, 0);
    return true;
  }

  /** Physical address of the present leaf entry mapping va, or -1. */
  leafEntry(cr3: number, va: number): number {
    let table = cr3;
    for (let level = 4; level >= 1; level--) {
      const at = table + tableIndex(va, level) * 8;
      const lo = this.mem.read32(at);
      if ((lo & PTE_P) === 0) return -1;
      if (level === 1 || (lo & PTE_PS) !== 0) return at;
      table = entryFrame(lo, this.mem.read32(at + 4));
    }
    return -1;
  }

  private writeEntry(at: number, pa: number, loFlags: number, hiFlags: number): void {
    this.mem.write32(at, ((pa % TWO_32) | loFlags) >>> 0);
    this.mem.write32(at + 4, (Math.floor(pa / TWO_32) | hiFlags) >>> 0);
  }
}

/** A translation: physical page base, page size and the effective permissions. */
export interface Translation {
  pa: number;
  pageShift: number;
  write: boolean;
  user: boolean;
  noExecute: boolean;
  global: boolean;
  dirty: boolean;
}

/**
 * The side-effect-free twin of the walker: translates va through the tables at cr3 reading
 * memory functionally, setting no A/D bits and charging nothing. Returns undefined when the
 * address is not mapped.
 */
export function probeTranslation(mem: PhysMem, cr3: number, va: number): Translation | undefined {
  let table = cr3;
  let write = true;
  let user = true;
  let nx = false;
  for (let level = 4; level >= 1; level--) {
    const at = table + tableIndex(va, level) * 8;
    const lo = mem.read32(at);
    const hi = mem.read32(at + 4);
    if ((lo & PTE_P) === 0) return undefined;
    write &&= (lo & PTE_RW) !== 0;
    user &&= (lo & PTE_US) !== 0;
    nx ||= (hi & PTE_NX_HI) !== 0;
    if (level === 1 || (lo & PTE_PS) !== 0) {
      const pageShift = 12 + 9 * (level - 1);
      return { pa: entryFrame(lo, hi) + (va % 2 ** pageShift), pageShift, write, user, noExecute: nx, global: (lo & PTE_G) !== 0, dirty: (lo & PTE_D) !== 0 };
    }
    table = entryFrame(lo, hi);
  }
  return undefined;
}
