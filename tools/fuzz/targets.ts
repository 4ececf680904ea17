// The readers the fuzzer feeds, each run in-process the way the CLI runs it: the Linux
// importer (`kmemu trace import`), the trace reader with a short replay (`kmemu replay`), and
// the machine config loader (`--machine FILE`). Each target knows its seed corpus, the words of
// its format, and the command that reproduces a saved input.

import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine, machinePresets } from '../../emu/index.js';
import { TraceReader } from '../../traces/index.js';
import { machineConfigFrom } from '../machine-options.js';
import { runReplay, type ReplayCliOptions } from '../replay.js';
import { runTrace } from '../trace.js';
import { mutateJson, mutateLines, mutateTrace, type MutationContext } from './mutate.js';

export type TargetName = 'importer' | 'trace' | 'machine';
export const TARGET_NAMES: readonly TargetName[] = ['importer', 'trace', 'machine'];

/** One fuzz input: the file's bytes and a variant (which options the run uses). */
export interface FuzzCase {
  input: Uint8Array;
  variant: number;
}

export interface FuzzTarget {
  name: TargetName;
  /** The input file's name (its extension matters to some readers). */
  fileName: string;
  variants: number;
  /** Seed inputs as binary strings, read from the repository at `root`. */
  corpus(root: string): Promise<string[]>;
  dictionary: readonly string[];
  mutate(c: MutationContext, input: string): string;
  /** Runs the reader on `file`, writing any output into `outDir`; throws what the CLI would. */
  run(file: string, outDir: string, variant: number): Promise<void>;
  /** After a success: the output `outDir` must hold (each complete); a failure must leave none. */
  outputs: readonly string[];
  /** Throws when an output of a successful run is not complete. */
  checkOutputs(outDir: string): Promise<void>;
  /** The kmemu command a user runs to see what the input does. */
  command(file: string, variant: number): string;
}

const bin = (b: Buffer): string => b.toString('latin1');

/** A file's lines in windows of at most `size` lines (a big capture makes several seeds). */
function windows(text: string, size: number, most: number): string[] {
  const lines = text.split('\n');
  if (lines.length <= size) return [text];
  const out: string[] = [];
  const step = Math.max(size, Math.floor(lines.length / most));
  for (let i = 0; i < lines.length && out.length < most; i += step) out.push(lines.slice(i, i + size).join('\n'));
  return out;
}

const sink = { write: () => true };

const importer: FuzzTarget = {
  name: 'importer',
  fileName: 'capture.txt',
  variants: 2,
  async corpus(root) {
    const dir = join(root, 'test/fixtures/linux');
    return readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .sort()
      .filter((f) => statSync(join(dir, f)).isFile())
      .flatMap((f) => windows(bin(readFileSync(join(dir, f))), 60, 8));
  },
  dictionary: [
    'kmem_cache_alloc:', 'kmem_cache_alloc_node:', 'kmalloc:', 'kmalloc_node:', 'kfree:', 'kmem_cache_free:', 'mm_page_alloc:',
    'mm_page_free:', 'mm_page_free_batched:', 'kmem:kmalloc:', 'sched:sched_switch:', 'ptr=', 'ptr=(nil)', 'ptr=0',
    'bytes_alloc=0', 'bytes_req=', 'order=53', 'order=', 'pfn=', 'page=', 'name=', 'call_site=', '[LOST 5 EVENTS]', '[000]',
    '[4096]', '(-------)', 'cpus=', '# tracer: nop', 'gfp_flags=', 'node=-1', 'migratetype=',
  ],
  mutate: mutateLines,
  async run(file, outDir, variant) {
    const args = ['import', file, '--from', 'linux-kmem', '-o', join(outDir, 'out.trace')];
    if (variant === 1) args.push('--lenient');
    await runTrace(args, { stdout: sink, stdin: process.stdin });
  },
  outputs: ['out.trace'],
  async checkOutputs(outDir) {
    await readTrace(join(outDir, 'out.trace'));
  },
  command: (file, variant) => `node dist/tools/cli.js trace import ${file} --from linux-kmem -o /tmp/out.trace${variant === 1 ? ' --lenient' : ''}`,
};

/** Reads a whole kmemu trace strictly (the importer's output must be one). */
async function readTrace(file: string): Promise<void> {
  const reader = await TraceReader.open(file, { lenient: false });
  try {
    while ((await reader.next()) !== null) {
      // Reading is the check.
    }
  } finally {
    await reader.close();
  }
}

/** Replay variants: allocator, CPUs, --lenient. */
const REPLAY_VARIANTS: readonly Partial<ReplayCliOptions>[] = [
  { allocator: 'vmzone', cpus: '2' },
  { allocator: 'uma', cpus: '2' },
  { allocator: 'vmzone', cpus: '4', lenient: true },
  { allocator: 'uma', cpus: '4', lenient: true },
];

const trace: FuzzTarget = {
  name: 'trace',
  fileName: 'input.trace',
  variants: REPLAY_VARIANTS.length,
  async corpus(root) {
    const dir = join(root, 'test/fixtures/traces');
    const seeds = readdirSync(dir).sort().flatMap((f) => windows(bin(readFileSync(join(dir, f))), 100, 1));
    const generated: string[] = [];
    const tmp = mkdtempSync(join(tmpdir(), 'kmemu-fuzz-corpus-'));
    for (const [workload, extra] of [['slab-concurrent-pairs', []], ['kernel-mix', []], ['larson', ['--chunks', '8']], ['xmalloc', ['--batch', '8']], ['slab-bulk', ['--count', '16', '--api', 'malloc']]] as const) {
      const out = join(tmp, `${workload}.trace`);
      await runTrace(['gen', workload, '--cpus', '3', '--events', '60', '--seed', '7', ...extra, '-o', out], { stdout: sink });
      generated.push(bin(readFileSync(out)));
    }
    rmSync(tmp, { recursive: true, force: true });
    return [...seeds, ...generated];
  },
  dictionary: ['zone', 'a', 'f', 'm', 'x', 'P', 'Q', 't', 'v', 'b', '0', '1', '2', '3', '20', '53', 'reclaim', 'nofree', 'interrupt', 'kmemu-trace 1', 'kmemu-trace 2', '# cpus: 4096', '# source: x'],
  mutate: mutateTrace,
  async run(file, outDir, variant) {
    const opts = {
      machine: 'coursework', allocator: 'vmzone', touch: '1', sysctl: [], zones: '8', json: true, output: join(outDir, 'report.json'),
      ...REPLAY_VARIANTS[variant],
    } as ReplayCliOptions;
    await runReplay(file, opts, { out: () => undefined, err: () => undefined });
  },
  outputs: ['report.json'],
  async checkOutputs(outDir) {
    JSON.parse(readFileSync(join(outDir, 'report.json'), 'utf8'));
  },
  command(file, variant) {
    const v = REPLAY_VARIANTS[variant]!;
    return `node dist/tools/cli.js replay ${file} --machine coursework --cpus ${v.cpus} --allocator ${v.allocator}${v.lenient === true ? ' --lenient' : ''} --json -o /tmp/report.json`;
  },
};

/** --cpus values the machine target tries beside the file's own. */
const CPUS_VARIANTS: readonly (string | undefined)[] = [undefined, undefined, '1', '64', '0', '65', ' 8', '1e1', '4294967297'];

const machine: FuzzTarget = {
  name: 'machine',
  fileName: 'machine.json',
  variants: CPUS_VARIANTS.length,
  async corpus() {
    const presets = Object.values(machinePresets).map((p) => JSON.stringify(p, null, 2));
    const overrides = [
      { base: 'coursework', cpus: 8 },
      { base: 'amd64-host', l2: { size: '2m' }, memory: { size: '8g' } },
      { base: 'coursework', l1d: { size: '2k', ways: 4, replacement: 'plru' }, coherence: { protocol: 'moesi' } },
      { base: 'epyc-7763', tlb: { l2: { entries: 1024, ways: 8 } }, cpu: { pauseLatency: 40 } },
      { cpus: 4, name: 'mine' },
      {},
    ];
    return [...presets, ...overrides.map((o) => JSON.stringify(o))];
  },
  dictionary: [
    'base', 'name', 'cpus', 'clockGHz', 'seed', 'syncQuantum', 'memory', 'size', 'dramLatency', 'l1d', 'l2', 'llc', 'ways', 'line',
    'hitLatency', 'replacement', 'inclusive', 'coherence', 'protocol', 'transferLatency', 'invalidateLatency', 'farTransferLatency', 'farInvalidateLatency', 'coresPerComplex', 'tlb', 'l1Small', 'l1Large',
    'entries', 'walkLatency', 'invlpgLatency', 'cpu', 'lockedOpLatency', 'pauseLatency', 'mfenceLatency', 'ipiLatency',
  ],
  mutate: mutateJson,
  async run(file, _outDir, variant) {
    const cpus = CPUS_VARIANTS[variant];
    const config = machineConfigFrom(cpus === undefined ? { machine: file } : { machine: file, cpus });
    new Machine(config);
  },
  outputs: [],
  async checkOutputs() {},
  command(file, variant) {
    const cpus = CPUS_VARIANTS[variant];
    return `node dist/tools/cli.js boot --machine ${file}${cpus === undefined ? '' : ` --cpus '${cpus}'`}`;
  },
};

export const targets: Readonly<Record<TargetName, FuzzTarget>> = { importer, trace, machine };
