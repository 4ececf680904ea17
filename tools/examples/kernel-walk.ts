// Records the bundled example address trace, traces/examples/kernel-walk.din.gz: the
// references one CPU of the machine makes while it runs a zone-style free-list allocator in
// kernel virtual memory (items of 128 bytes linked through their first word, LIFO), touches
// what it allocates, and looks objects up in a hash table reached through the direct map.
// Data references carry their kernel virtual addresses (ffffffff8…); page-walk loads and A/D
// updates their direct-map addresses (ffff8000…). Deterministic: same bytes every time.
//
//   node dist/tools/examples/kernel-walk.js [OUT]     (default: the bundled file)

import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import seedrandom from 'seedrandom';
import {
  DMAP_BASE, KERNBASE, Machine, PAGE_2M, PAGE_4K, PageTableEditor, hex64, presetConfig,
} from '../../emu/index.js';

const ZONE_VA = KERNBASE + 0x100_0000; // zone header; items start one page later
const ITEM_SIZE = 128;
const ITEM_PAGES = 64;
const NITEMS = (ITEM_PAGES * 4096) / ITEM_SIZE;
const HASH_PA = 0x80_0000; // a 4096-bucket hash table in the direct map, 2M-mapped
const HASH_BUCKETS = 4096;

/** The din text of the example trace: `ops` allocator operations. */
export function recordKernelWalk(ops = 20_000, seed = 'kernel-walk'): string {
  const m = new Machine(presetConfig('amd64-host'));
  let next = 0x10_0000;
  const alloc = () => ((next += 4096), next - 4096);
  const pt = new PageTableEditor(m.mem, alloc);
  const cr3 = alloc();
  pt.mapRange(cr3, ZONE_VA, 0x40_0000, (ITEM_PAGES + 1) * 4096, PAGE_4K, { global: true });
  pt.mapRange(cr3, DMAP_BASE, 0, 0x100_0000, PAGE_2M, { global: true });
  const out: string[] = [];
  const cpu = m.cpus[0]!;
  cpu.setCr3(cr3);
  const record = (write: boolean, va: number, size: number) => void out.push(`${write ? 'w' : 'r'} ${hex64(va)} ${size.toString(16)}\n`);
  const rng = seedrandom.alea(seed);
  const head = ZONE_VA;
  const count = ZONE_VA + 8;
  const item = (i: number) => ZONE_VA + 4096 + i * ITEM_SIZE;
  m.run([
    function* (c) {
      // zinit: thread every item on the free list.
      for (let i = 0; i < NITEMS; i++) c.storePtr(item(i), i + 1 < NITEMS ? item(i + 1) : 0);
      c.storePtr(head, item(0));
      c.store32(count, NITEMS);
      c.tracer = record;
      const live: number[] = [];
      for (let op = 0; op < ops; op++) {
        if (live.length > 0 && (live.length >= 600 || rng() < 0.48)) {
          // free a random live object: find it in the hash table, then push it
          const k = Math.floor(rng() * live.length);
          const obj = live[k]!;
          live[k] = live[live.length - 1]!;
          live.pop();
          const bucket = DMAP_BASE + HASH_PA + ((obj / ITEM_SIZE) % HASH_BUCKETS) * 8;
          c.loadPtr(bucket);
          c.storePtr(bucket, 0);
          c.load64(obj + 8);
          c.storePtr(obj, c.loadPtr(head));
          c.storePtr(head, obj);
          c.store32(count, c.load32(count) + 1);
        } else {
          const obj = c.loadPtr(head);
          if (obj === 0) continue;
          c.storePtr(head, c.loadPtr(obj));
          c.store32(count, c.load32(count) - 1);
          // the consumer initializes the object's first two lines, then indexes it
          for (let off = 8; off < ITEM_SIZE; off += 16) c.store64(obj + off, op);
          c.storePtr(DMAP_BASE + HASH_PA + ((obj / ITEM_SIZE) % HASH_BUCKETS) * 8, obj);
          live.push(obj);
        }
      }
    },
  ]);
  return out.join('');
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) {
  const outFile = process.argv[2] ?? 'traces/examples/kernel-walk.din.gz';
  writeFileSync(outFile, gzipSync(recordKernelWalk(), { level: 9 }));
  process.stdout.write(`wrote ${outFile}\n`);
}
