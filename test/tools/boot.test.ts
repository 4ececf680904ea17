import { describe, expect, it } from 'vitest';
import { UsageError, hex64 } from '../../emu/index.js';
import { KERNBASE, KvaEnd, KvaStart } from '../../kernel/index.js';
import { formatBytes, runBoot } from '../../tools/boot.js';

async function run(args: string[]): Promise<string> {
  let out = '';
  await runBoot(args, { stdout: { write: (s: string) => (out += s) } });
  return out;
}

/** The lines of one section of the text layout, without its title and column header. */
function section(out: string, title: RegExp): string[] {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => title.test(l));
  expect(at).toBeGreaterThanOrEqual(0);
  const end = lines.indexOf('', at);
  return lines.slice(at + 2, end);
}

const start = (line: string) => parseInt(line.slice(0, 16), 16);
const end = (line: string) => parseInt(line.slice(18, 34), 16);

describe('kmemu boot --layout', () => {
  it('kmemu boot --layout prints the fixed addresses of the x86_64 kernel layout', async () => {
    const out = await run(['--layout', '--machine', 'coursework']);
    const lines = out.split('\n');
    expect(lines[0]).toBe('kernel virtual address space (coursework: 4 CPUs, 256M RAM)');
    expect(lines[1]).toBe('start             end                  size  what');
    expect(lines).toContain(
      'ffff800000000000  ffff808000000000     512G  recursive page-table map (PTmap): PML4[256] points at the PML4; va\'s PTE is at PTmap + 8·(va >> 12)',
    );
    expect(lines).toContain(
      'ffffff0000000000  ffffff8000000000     512G  direct map (DMAP, PML4[510]): physical address pa at ffffff0000000000 + pa, 1G pages',
    );
    expect(lines).toContain('ffffff0000000000  ffffff0010000000     256M    RAM: physical 0–256M');
    expect(lines).toContain('ffffff0010000000  ffffff0100000000    3.75G    mapped without RAM behind it (the direct map has at least 4 1G pages)');
    expect(lines).toContain(
      'ffffffe000000000  ffffffffff1ff000  127.99G  kernel_map [KvaStart, KvaEnd): the kernel virtual memory vm_map manages (vm.kvm_size)',
    );
    expect(lines).toContain('ffffffe000000000  ffffffe000780000     7.5M      vm_page_array: 65504 struct vm_page of 120 bytes');
    expect(lines).toContain('ffffffe000800000  ffffffff80000000  125.99G    free: [virtual2_start, virtual2_end), the cutout below KERNBASE');
    expect(lines).toContain('ffffffff80000000                               KERNBASE (-2G): here va = pa + KERNBASE');
    expect(lines).toContain('ffffffff80200000  ffffffff80600000       4M      kernel text and read-only data, at KERNBASE + KERNLOAD');
    expect(lines).toContain('ffffffff80c21000  ffffffff80e00000    1.87M      rest of the last 2M page: virtual_start is rounded up to 2M');
    expect(lines).toContain('ffffffff80e00000  ffffffffff1ff000    1.97G    free: [virtual_start, virtual_end)');
    expect(section(out, /^kernel_map entries: 2$/)).toEqual([
      'ffffffe000000000  ffffffe000800000       8M  none       0',
      'ffffffff80000000  ffffffff80e00000      14M  none       0',
    ]);
    expect(lines).toContain('start             end                  size  backed by  wired');
  });

  it('kmemu boot --layout lists every section in address order', async () => {
    const out = await run(['--layout', '--machine', 'coursework', '--cpus', '2']);
    for (const title of [/^kernel virtual address space/, /^physical memory$/, /^kernel_map entries/]) {
      const starts = section(out, title).map(start);
      expect(starts.length).toBeGreaterThan(1);
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
    }
    const entries = section(out, /^kernel_map entries/);
    for (let i = 1; i < entries.length; i++) expect(start(entries[i]!)).toBeGreaterThanOrEqual(end(entries[i - 1]!));
    expect(out.split('\n')[0]).toBe('kernel virtual address space (coursework: 2 CPUs, 256M RAM)');
  });

  it('kmemu boot --layout tiles physical memory from 0 to its size without overlap', async () => {
    const phys = section(await run(['--layout', '--machine', 'coursework']), /^physical memory$/);
    let at = 0;
    for (const line of phys) {
      expect(start(line)).toBe(at);
      at = end(line);
    }
    expect(at).toBe(256 * 2 ** 20);
    expect(phys[0]).toBe('0000000000000000  0000000000020000     128K  not in phys_avail: page 0, up to the first 128K boundary (PHYSMAP_ALIGN)');
    expect(phys).toContain('0000000000200000  0000000000600000       4M  kernel text and read-only data (loaded at KERNLOAD)');
    expect(phys.at(-1)).toBe(
      '000000000f800000  0000000010000000       8M  vm_page_array and the page hash (mapped at KvaStart), cut off the top of phys_avail[2]',
    );
  });

  it('kmemu boot --layout --json prints the kmemu.layout/1 document', async () => {
    const doc = JSON.parse(await run(['--layout', '--json'])) as {
      schema: string;
      machine: object;
      symbols: Record<string, string>;
      virtual: { name: string; start: string; end: string; size: number; depth: number }[];
      physical: { start: string; end: string }[];
      kernelMapEntries: { start: string; end: string; size: number; backing: string; object: string | null; wired: number }[];
    };
    expect(doc.schema).toBe('kmemu.layout/1');
    expect(doc.machine).toEqual({ name: 'amd64-host', cpus: 2, memory: 4 * 2 ** 30 });
    expect(doc.symbols).toMatchObject({
      KERNBASE: 'ffffffff80000000', KvaStart: 'ffffffe000000000', KvaEnd: 'ffffffffff1ff000', DMAP_MIN_ADDRESS: 'ffffff0000000000',
      PTmap: 'ffff800000000000',
    });
    expect(doc.virtual.find((r) => r.name === 'kernel_map')).toEqual(expect.objectContaining({
      start: hex64(KvaStart), end: hex64(KvaEnd), size: KvaEnd - KvaStart, depth: 0,
    }));
    expect(doc.virtual.find((r) => r.name === 'KERNBASE')).toEqual(expect.objectContaining({ start: hex64(KERNBASE), size: 0 }));
    expect(doc.virtual.find((r) => r.name === 'dmap.ram')).toEqual(expect.objectContaining({ size: 4 * 2 ** 30 }));
    expect(doc.kernelMapEntries).toEqual([
      { start: 'ffffffe000000000', end: 'ffffffe008000000', size: 128 * 2 ** 20, backing: 'none', object: null, wired: 0 },
      { start: 'ffffffff80000000', end: 'ffffffff80e00000', size: 14 * 2 ** 20, backing: 'none', object: null, wired: 0 },
    ]);
  });

  it('kmemu boot without --layout prints a boot summary', async () => {
    const lines = (await run(['--machine', 'coursework'])).split('\n');
    expect(lines[0]).toBe('booted coursework: 4 CPUs, 256M RAM');
    expect(lines[1]).toMatch(/^boot: \d+ cycles \([\d.]+ µs at 1 GHz\); cpu0 \d+, cpu1 \d+, cpu2 \d+, cpu3 \d+$/);
    expect(lines[2]).toBe('pages: 60704 managed, 60704 free; kernel_map: 2 entries');
  });

  it('kmemu boot --json without --layout is a user error', async () => {
    await expect(run(['--json'])).rejects.toThrow(new UsageError('boot: --json goes with --layout'));
  });
});

describe('formatBytes()', () => {
  it('formatBytes() prints exact sizes with a unit and others to two decimals that do not look exact', () => {
    expect([0, 1000, 4096, 2 ** 21, 3 * 2 ** 30, 2 ** 40].map(formatBytes)).toEqual(['0B', '1000B', '4K', '2M', '3G', '1T']);
    expect(formatBytes(KvaEnd - KvaStart)).toBe('127.99G');
    expect(formatBytes(2 ** 21 - 4096)).toBe('2044K');
    expect(formatBytes(1.5 * 2 ** 20)).toBe('1.5M');
    expect(formatBytes(5 * 1024 + 512)).toBe('5.5K');
  });
});
