// bzero, bcopy and pagezero: the kernel's bulk stores, as amd64 runs them.
//
// Models DragonFly BSD sys/platform/pc64/x86_64/support.s: bzero is `rep stosq` then `rep
// stosb` for the tail, bcopy `rep movsq` then `rep movsb`, pagezero `rep stosq` over
// PAGE_SIZE (the later support.s; the vm_token-era one zeroed a page with a loop of movq
// stores, and a comment in it rules out non-temporal stores). All run on the CPU's
// fast-string model (emu/cpu.ts storeFill, copyBytes): cached stores through the TLB and the
// caches, full lines taken without their data, misses overlapped in the core's miss buffers.
// Deviations: the qword and byte parts of a `rep stos` are one fast string here, and bcopy
// copies forward only (none of our callers' ranges overlap).

import { type Cpu } from '../../emu/index.js';
import { PAGE_SIZE } from './param.js';

/** bzero(9): zeroes `len` bytes at va. */
export function bzero(cpu: Cpu, va: number, len: number): void {
  cpu.storeFill(va, len, 0);
}

/** bcopy(9): copies `len` bytes from src to dst (non-overlapping). */
export function bcopy(cpu: Cpu, src: number, dst: number, len: number): void {
  cpu.copyBytes(dst, src, len);
}

/** pagezero: zeroes the page at kernel virtual address va. */
export function pagezero(cpu: Cpu, va: number): void {
  cpu.storeFill(va, PAGE_SIZE, 0);
}
