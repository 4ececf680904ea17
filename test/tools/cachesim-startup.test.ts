// kmemu cachesim starts fast: the modules it loads up front (static imports, followed through
// the sources) include neither zod, nor the machine or kernel (emu/index.ts and the modules
// behind it), nor seedrandom's whole package, nor the progress bar.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '..', '..');

/** The modules `entry` loads when it is imported: relative .ts sources and package names. */
function staticImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const stack = [path.join(root, entry)];
  while (stack.length > 0) {
    const file = stack.pop()!;
    const name = path.relative(root, file);
    if (seen.has(name)) continue;
    seen.add(name);
    const source = fs.readFileSync(file, 'utf8');
    for (const m of source.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) stack.push(path.join(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else seen.add(spec);
    }
  }
  return seen;
}

describe('kmemu cachesim start-up', () => {
  it('tools/cachesim.ts loads neither zod, nor emu/index.ts or traces/index.ts, nor seedrandom or the progress bar', () => {
    const loaded = staticImports('tools/cachesim.ts');
    expect(loaded).toContain('emu/cachesim.ts');
    expect(loaded).toContain('traces/din-core.ts');
    for (const heavy of ['zod', 'seedrandom', 'cli-progress', 'node:crypto', 'node:zlib', 'node:worker_threads', 'emu/index.ts', 'traces/index.ts', 'emu/config.ts', 'tools/progress.ts']) {
      expect(loaded).not.toContain(heavy);
    }
  });
});
