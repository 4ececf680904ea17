// Path labels as the viewer draws them: a colour per kind of path, so that the fast per-CPU
// paths (green) stand apart from the locked depot/zone paths (orange), the slab layer (red) and
// the VM backend (purple), in the timeline and in the chart alike.

import { LABELS } from '../../explain.js';

interface Kind {
  name: string;
  test: RegExp;
  /** Allocation, then free. */
  colours: [string, string];
}

const KINDS: readonly Kind[] = [
  { name: 'per-CPU cache (no lock)', test: /\.(pcpu|cpucache|qcache)$/, colours: ['#1a9850', '#91cf60'] },
  { name: 'depot / locked zone list', test: /\.(depot|locked)$/, colours: ['#e66101', '#fdb863'] },
  { name: 'slab layer', test: /\.(slab|zget)$|^uma\.reclaim$/, colours: ['#c51b7d', '#f1b6da'] },
  { name: 'VM backend', test: /^(kmem|vm_page|vm_map|pmap|vmem|vm_fault|vm\.)|\.backend$/, colours: ['#5e3c99', '#b2abd2'] },
];

const OTHER = '#8c8c8c';

export function pathColour(path: string): string {
  const kind = KINDS.find((k) => k.test.test(path));
  if (kind === undefined) return OTHER;
  return /\.free\b|free$/.test(path) ? kind.colours[1] : kind.colours[0];
}

/** The legend: each kind and its two colours. */
export const PATH_KINDS = KINDS.map((k) => ({ name: k.name, alloc: k.colours[0], free: k.colours[1] }));

/** What a label's code does, from the report's glossary (tools/explain.ts). */
export function pathInfo(path: string): string {
  const info = LABELS[path];
  if (info === undefined) return path;
  return info.lock === undefined ? `${path}: ${info.what}` : `${path}: ${info.what} (takes ${info.lock})`;
}

/** The labels an allocator's operations end on, for the "next event on path" menu. */
export function knownPaths(allocator: 'vmzone' | 'uma'): string[] {
  const prefix = allocator === 'uma' ? 'uma.' : 'zone.';
  return Object.keys(LABELS).filter((l) => l.startsWith(prefix) || l.startsWith('vm_page.') || l.startsWith('kmem.'));
}
