// `kmemu vmem run SCRIPT`: vmem(9) alone, by script, on a booted 1-CPU amd64-host kernel. Each
// operation runs as kernel code on CPU 0 and prints one result line (segs: a count line, then
// one line per segment); the format is shared with a C reference (FreeBSD's subr_vmem.c built
// in userland), so it is exact: addresses and sizes as 0x + lowercase hex, 64 bits.

import { readFileSync } from 'node:fs';
import { type Command } from 'commander';
import { type Cpu, Machine, type MachineConfig, type Task, UsageError, UserError, loadMachineConfig } from '../emu/index.js';
import { type ReplayReport, type VmemStrategy, generatedSource, replay } from '../traces/index.js';
import {
  BT_TYPE_BUSY, BT_TYPE_FREE, BT_TYPE_SPAN, BT_TYPE_SPAN_STATIC, ENOMEM, type Kernel, M_BESTFIT, M_FIRSTFIT, M_NEXTFIT, M_NOWAIT, M_WAITOK,
  VMEM_ADDR_MAX, VMEM_ADDR_MIN, VMEM_ALLOC, VMEM_FREE, boot, vmem_add, vmem_alloc, vmem_check, vmem_create, vmem_destroy, vmem_free,
  vmem_size, vmem_started, vmem_startup, vmem_xalloc, vmem_xfree, vmemImportFrom, vmemSegments,
} from '../kernel/index.js';
import { VMEM_SCRIPT_USAGE, vmemCommand, type FragFlags, type VmemRunOptions } from './commands/vmem.js';

export type { VmemRunOptions } from './commands/vmem.js';

const U64 = (1n << 64n) - 1n;
const STRATS: Record<string, number> = { bestfit: M_BESTFIT, firstfit: M_FIRSTFIT, nextfit: M_NEXTFIT };
const TYPES: Record<number, string> = { [BT_TYPE_FREE]: 'free', [BT_TYPE_BUSY]: 'busy', [BT_TYPE_SPAN]: 'span', [BT_TYPE_SPAN_STATIC]: 'static' };

/** An address operand: a number, or the result of the alloc/xalloc on script line `line`. */
type Addr = { value: bigint } | { line: number };

type Op =
  | { op: 'create'; name: string; base: bigint; size: bigint; quantum: bigint; qcacheMax: bigint }
  | { op: 'import'; child: string; parent: string; quantum: bigint | undefined }
  | { op: 'add'; name: string; base: bigint; size: bigint }
  | { op: 'xalloc'; name: string; size: bigint; align: bigint; phase: bigint; nocross: bigint; min: bigint; max: bigint; strat: number }
  | { op: 'alloc'; name: string; size: bigint; strat: number }
  | { op: 'xfree' | 'free'; name: string; addr: Addr; size: bigint }
  | { op: 'size' | 'segs' | 'destroy'; name: string };

interface Line {
  line: number;
  op: Op;
}

/** Parses a script; throws UsageError `SCRIPT:LINE: expected ...` at the first bad line. */
export function parseVmemScript(text: string, script: string): Line[] {
  const out: Line[] = [];
  const allocLines = new Set<number>();
  const live = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const t = lines[i]!.trim();
    if (t === '' || t.startsWith('#')) continue;
    const bad = (what: string): never => {
      throw new UsageError(`${script}:${n}: expected ${what}`);
    };
    const w = t.split(/\s+/);
    const verb = w[0]!;
    const usage = VMEM_SCRIPT_USAGE[verb];
    if (usage === undefined) bad(`an operation (${Object.keys(VMEM_SCRIPT_USAGE).join(', ')}), got "${verb}"`);
    const num = (j: number, what: string): bigint => {
      const s = w[j]!;
      if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(s)) bad(`${what} as a decimal or 0x-hex number, got "${s}"`);
      const v = BigInt(s);
      if (v > U64) bad(`${what} below 2^64, got "${s}"`);
      return v;
    };
    const arena = (j: number): string => {
      const s = w[j]!;
      if (!live.has(s)) bad(`an arena created on an earlier line, got "${s}"`);
      return s;
    };
    const strat = (j: number): number => {
      const s = w[j]!;
      const v = STRATS[s];
      if (v === undefined) bad(`STRAT bestfit, firstfit or nextfit, got "${s}"`);
      return v!;
    };
    const addr = (j: number): Addr => {
      const s = w[j]!;
      const m = /^@([0-9]+)$/.exec(s);
      if (m === null) return { value: num(j, 'ADDR') };
      const l = Number(m[1]);
      if (!allocLines.has(l)) bad(`@L to an earlier line with alloc or xalloc, got "${s}"`);
      return { line: l };
    };
    const arity = verb === 'import' ? [3, 4] : [usage!.split(' ').length];
    if (!arity.includes(w.length)) bad(`"${usage}", got ${w.length - 1} operand${w.length === 2 ? '' : 's'}`);
    let op: Op;
    switch (verb) {
      case 'create': {
        const name = w[1]!;
        if (live.has(name)) bad(`a new arena name, got "${name}", which exists`);
        op = { op: 'create', name, base: num(2, 'BASE'), size: num(3, 'SIZE'), quantum: num(4, 'QUANTUM'), qcacheMax: num(5, 'QCACHE_MAX') };
        if (op.quantum === 0n || (op.quantum & (op.quantum - 1n)) !== 0n) bad(`QUANTUM a power of two, got "${w[4]}"`);
        live.add(name);
        break;
      }
      case 'import':
        op = { op: 'import', child: arena(1), parent: arena(2), quantum: w.length === 4 ? num(3, 'IMPORT_QUANTUM') : undefined };
        if (op.quantum === 0n) bad('IMPORT_QUANTUM greater than 0, got "0"');
        break;
      case 'add':
        op = { op: 'add', name: arena(1), base: num(2, 'BASE'), size: num(3, 'SIZE') };
        break;
      case 'xalloc':
        op = {
          op: 'xalloc', name: arena(1), size: num(2, 'SIZE'), align: num(3, 'ALIGN'), phase: num(4, 'PHASE'), nocross: num(5, 'NOCROSS'),
          min: num(6, 'MINADDR'), max: num(7, 'MAXADDR'), strat: strat(8),
        };
        allocLines.add(n);
        break;
      case 'alloc':
        op = { op: 'alloc', name: arena(1), size: num(2, 'SIZE'), strat: strat(3) };
        allocLines.add(n);
        break;
      case 'xfree':
      case 'free':
        op = { op: verb, name: arena(1), addr: addr(2), size: num(3, 'SIZE') };
        break;
      default:
        op = { op: verb as 'size' | 'segs' | 'destroy', name: arena(1) };
        if (verb === 'destroy') live.delete(w[1]!);
    }
    out.push({ line: n, op });
  }
  return out;
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

function onCpu0<T>(m: Machine, body: (cpu: Cpu) => Task<T>): T {
  let result: T | undefined;
  m.run(m.cpus.map((c) => (c.id === 0 ? function* (cpu: Cpu): Task { result = yield* body(cpu); } : undefined)));
  return result as T;
}

/** A booted 1-CPU amd64-host kernel with vmem started. */
export function vmemMachine(): { m: Machine; k: Kernel } {
  const m = new Machine(loadMachineConfig('amd64-host', { cpus: 1 }));
  const k = boot(m);
  if (!vmem_started(k)) onCpu0(m, (cpu) => vmem_startup(k, cpu));
  return { m, k };
}

/** Runs a parsed script, writing each op's lines as it completes. Panics propagate (KernelPanic). */
export function runVmemScript(script: readonly Line[], opts: VmemRunOptions, write: (text: string) => void): void {
  const { m, k } = vmemMachine();
  const arenas = new Map<string, number>();
  const results = new Map<number, bigint | undefined>();
  const cpu0 = m.cpu(0);
  const vmOf = (name: string, line: number): number => {
    const vm = arenas.get(name);
    if (vm === undefined) throw new UserError(`line ${line}: arena "${name}" was not created (its create failed)`);
    return vm;
  };
  for (const { line, op } of script) {
    const t0 = cpu0.clock;
    let lines: string[];
    switch (op.op) {
      case 'create': {
        const vm = onCpu0(m, (cpu) => vmem_create(k, cpu, op.name, op.base, op.size, op.quantum, op.qcacheMax, M_WAITOK));
        if (vm !== 0) arenas.set(op.name, vm);
        lines = [vm === 0 ? 'ENOMEM' : 'ok'];
        break;
      }
      case 'import': {
        const child = vmOf(op.child, line);
        const parent = vmOf(op.parent, line);
        onCpu0(m, (cpu) => vmemImportFrom(k, cpu, child, parent, op.quantum));
        lines = ['ok'];
        break;
      }
      case 'add': {
        const vm = vmOf(op.name, line);
        const e = onCpu0(m, (cpu) => vmem_add(k, cpu, vm, op.base, op.size, M_WAITOK));
        lines = [e === 0 ? 'ok' : 'ENOMEM'];
        break;
      }
      case 'xalloc':
      case 'alloc': {
        const vm = vmOf(op.name, line);
        const r = op.op === 'xalloc'
          ? onCpu0(m, (cpu) => vmem_xalloc(
            k, cpu, vm, op.size, op.align, op.phase, op.nocross, op.min === 0n ? VMEM_ADDR_MIN : op.min, op.max === 0n ? VMEM_ADDR_MAX : op.max,
            M_NOWAIT | op.strat,
          ))
          : onCpu0(m, (cpu) => vmem_alloc(k, cpu, vm, op.size, M_NOWAIT | op.strat));
        results.set(line, r.error === 0 ? r.addr : undefined);
        lines = [r.error === 0 ? hex(r.addr) : r.error === ENOMEM ? 'ENOMEM' : `error ${r.error}`];
        break;
      }
      case 'xfree':
      case 'free': {
        const vm = vmOf(op.name, line);
        const addr = 'value' in op.addr ? op.addr.value : results.get(op.addr.line);
        if (addr === undefined) {
          lines = ['skip'];
          break;
        }
        onCpu0(m, (cpu) => (op.op === 'xfree' ? vmem_xfree(k, cpu, vm, addr, op.size) : vmem_free(k, cpu, vm, addr, op.size)));
        lines = ['ok'];
        break;
      }
      case 'size': {
        const vm = vmOf(op.name, line);
        const [a, f, t] = onCpu0(m, function* (cpu) {
          return [yield* vmem_size(k, cpu, vm, VMEM_ALLOC), yield* vmem_size(k, cpu, vm, VMEM_FREE), yield* vmem_size(k, cpu, vm, VMEM_ALLOC | VMEM_FREE)];
        });
        lines = [`size ${op.name} alloc=${hex(a!)} free=${hex(f!)} total=${hex(t!)}`];
        break;
      }
      case 'segs': {
        const vm = vmOf(op.name, line);
        const segs = onCpu0(m, function* (cpu) {
          return vmemSegments(cpu, vm);
        });
        // Address order, a span before the segments it starts with (a stable sort keeps the
        // list order otherwise; the list is already in that order unless spans came in out of order).
        const ordered = segs
          .map((s, i) => ({ s, i }))
          .sort((x, y) => (x.s.start < y.s.start ? -1 : x.s.start > y.s.start ? 1 : span(y.s.type) - span(x.s.type) || x.i - y.i))
          .map((x) => x.s);
        lines = [`segs ${op.name} ${ordered.length}`, ...ordered.map((s) => `seg ${hex(s.start)} ${hex(s.size)} ${TYPES[s.type] ?? `type${s.type}`}`)];
        break;
      }
      case 'destroy': {
        const vm = vmOf(op.name, line);
        onCpu0(m, (cpu) => vmem_destroy(k, cpu, vm));
        arenas.delete(op.name);
        lines = ['ok'];
        break;
      }
    }
    if (opts.cycles === true) lines[0] += ` ${cpu0.clock - t0}`;
    write(`${lines.join('\n')}\n`);
    if (opts.check === true) {
      for (const vm of arenas.values()) {
        onCpu0(m, function* (cpu) {
          vmem_check(k, cpu, vm);
        });
      }
    }
  }
}

const span = (type: number): number => (type === BT_TYPE_SPAN || type === BT_TYPE_SPAN_STATIC ? 1 : 0);

// ---------------------------------------------------------------------------------------------
// `kmemu vmem frag`: Bonwick & Adams 2001 §4.5, allocation latency as fragmentation grows. Each
// cell replays the vmem-frag workload twice on a 1-CPU machine, its fragmentation phase alone
// (--events 0) and with the measured phase after it; the model is deterministic and one CPU
// runs the events in order, so the second run's figures minus the first's are exactly the
// measured phase's.

export interface FragConfig {
  name: string;
  strategy: VmemStrategy;
  qcacheMax: number;
}

/** The three configurations of the table: instant fit, best fit, instant fit with quantum caches of 8 quanta. */
export const FRAG_CONFIGS: readonly FragConfig[] = [
  { name: 'instant fit', strategy: 'firstfit', qcacheMax: 0 },
  { name: 'best fit', strategy: 'bestfit', qcacheMax: 0 },
  { name: 'instant fit + qcache', strategy: 'firstfit', qcacheMax: 8 },
];

export interface FragPath {
  path: string;
  ops: number;
  cycles: number;
  mean: number;
}

export interface FragCell {
  fragments: number;
  config: string;
  /** The measured phase's vmem allocations: all of them, and by the path they completed on. */
  allocs: FragPath;
  paths: FragPath[];
}

export interface FragOptions {
  fragments: readonly number[];
  events: number;
  seed: string;
  machine: MachineConfig;
  configs?: readonly FragConfig[];
}

function allocRows(r: ReplayReport): Map<string, { ops: number; cycles: number }> {
  return new Map((r.vmem?.allocs ?? []).map((p) => [p.path, { ops: p.ops, cycles: p.cycles.total }]));
}

const fragPath = (path: string, ops: number, cycles: number): FragPath => ({ path, ops, cycles, mean: ops === 0 ? 0 : Math.round((100 * cycles) / ops) / 100 });

/** Runs the experiment: one cell per fragment count and configuration, in that order. */
export async function runFragExperiment(o: FragOptions, onCell?: (c: FragCell) => void): Promise<FragCell[]> {
  const cells: FragCell[] = [];
  for (const fragments of o.fragments) {
    for (const c of o.configs ?? FRAG_CONFIGS) {
      const gen = (events: number) => generatedSource('vmem-frag', { cpus: 1, events, seed: o.seed, fragments, strategy: c.strategy, qcacheMax: c.qcacheMax });
      const before = allocRows(await replay(gen(0), { machine: o.machine, touch: 0 }));
      const after = allocRows(await replay(gen(o.events), { machine: o.machine, touch: 0 }));
      const paths: FragPath[] = [];
      for (const [path, a] of after) {
        const b = before.get(path) ?? { ops: 0, cycles: 0 };
        if (a.ops > b.ops) paths.push(fragPath(path, a.ops - b.ops, a.cycles - b.cycles));
      }
      paths.sort((x, y) => y.ops - x.ops || x.path.localeCompare(y.path));
      const ops = paths.reduce((n, p) => n + p.ops, 0);
      const cell = { fragments, config: c.name, allocs: fragPath('all', ops, paths.reduce((n, p) => n + p.cycles, 0)), paths };
      cells.push(cell);
      onCell?.(cell);
    }
  }
  return cells;
}

export function formatFragTable(cells: readonly FragCell[], o: FragOptions): string {
  const configs = o.configs ?? FRAG_CONFIGS;
  const head = ['free segments', ...configs.map((c) => c.name)];
  const rows: string[][] = [];
  const detail: string[][] = [];
  for (const f of o.fragments) {
    const mine = cells.filter((c) => c.fragments === f);
    rows.push([String(f), ...configs.map((c) => mine.find((x) => x.config === c.name)?.allocs.mean.toFixed(1) ?? '-')]);
    for (const cell of mine) {
      detail.push([String(f), cell.config, ...cell.paths.map((p) => `${p.path} ${p.ops} × ${p.mean.toFixed(1)}`)]);
    }
  }
  const width = (t: string[][], i: number) => Math.max(...t.map((r) => (r[i] ?? '').length));
  const fmt = (t: string[][], left: number) =>
    t.map((r) => r.map((cell, i) => (i < left ? cell.padEnd(width(t, i)) : cell.padStart(width(t, i)))).join('  ').trimEnd()).join('\n');
  const pairs = Math.floor(o.events / 2);
  return [
    `vmem-frag on ${o.machine.name} (1 CPU), seed ${o.seed}: mean cycles per vmem_alloc of the measured phase (${pairs} alloc/free pairs of 1, 2, 4, 8, 56 quanta)`,
    fmt([head, ...rows], 1),
    '',
    'by the path each allocation completed on (ops × mean cycles):',
    fmt(detail.map((r) => [r[0]!, r[1]!, r.slice(2).join(', ')]), 3),
    '',
  ].join('\n');
}

/** What `kmemu vmem frag` does with its options (tools/commands/vmem.ts declares them). */
export async function vmemFragMain(f: FragFlags, write: (text: string) => void): Promise<void> {
  const fragments = f.fragments.split(',').map((x) => {
    if (!/^\d+$/.test(x) || Number(x) > 1 << 20) throw new UsageError(`option --fragments: expected numbers from 0 to ${1 << 20}, comma-separated, got ${JSON.stringify(f.fragments)}`);
    return Number(x);
  });
  if (!/^\d+$/.test(f.events) || Number(f.events) < 2 || Number(f.events) > 1 << 30) throw new UsageError(`option --events: expected an integer from 2 to ${1 << 30}, got ${JSON.stringify(f.events)}`);
  const o: FragOptions = { fragments, events: Number(f.events), seed: f.seed, machine: loadMachineConfig(f.machine, { cpus: 1 }) };
  const cells = await runFragExperiment(o);
  write(f.json === true ? `${JSON.stringify({ machine: o.machine.name, seed: o.seed, events: o.events, cells }, null, 2)}\n` : formatFragTable(cells, o));
}

/** What `kmemu vmem run SCRIPT` does. */
export function vmemRunMain(file: string, opts: VmemRunOptions, write: (text: string) => void): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read the script: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  runVmemScript(parseVmemScript(text, file), opts, write);
}

/** Runs `kmemu vmem ARGS` in-process (ARGS after `vmem`), writing to `write`. */
export async function runVmem(args: readonly string[], write: (text: string) => void): Promise<void> {
  const command = vmemCommand({ run: (file, opts) => vmemRunMain(file, opts, write), frag: (f) => vmemFragMain(f, write) });
  const quiet = (c: Command) => {
    c.exitOverride().configureOutput({ writeOut: write, writeErr: () => undefined });
    c.commands.forEach(quiet);
  };
  quiet(command);
  await command.parseAsync([...args], { from: 'user' });
}
