// `kmemu sysctl`: boot a kernel and print sysctl names as sysctl(8) does.

import { Machine, UsageError, UserError } from '../emu/index.js';
import { boot, kernelSysctls, sysctlCheck, sysctls } from '../kernel/index.js';
import type { SysctlEntry } from '../kernel/index.js';
import { sysctlCommand, type SysctlOptions } from './commands/sysctl.js';
import { machineConfigFrom, parseTunables } from './machine-options.js';

export interface SysctlIo {
  stdout: { write(text: string): unknown };
}

/** The entries NAME selects: itself, or every entry under it when it is a prefix. */
export function sysctlMatches(name: string): SysctlEntry[] {
  return sysctls.filter((s) => s.name === name || s.name.startsWith(`${name}.`));
}

/** What `kmemu sysctl NAMES` does: prints them, and returns them as name → value. */
export function sysctlMain(names: readonly string[], opts: SysctlOptions, io: SysctlIo): Record<string, number | string> {
  // sysctl(8) ignores -a when names are given.
  if (names.length === 0 && opts.all !== true) throw new UsageError('sysctl: expected a NAME or -a');
  for (const name of names) {
    const eq = name.indexOf('=');
    if (eq >= 0 && !/^-?\d+$/.test(name.slice(eq + 1))) throw new UsageError(`sysctl: ${name.slice(0, eq)}: expected an integer value, got "${name.slice(eq + 1)}"`);
  }
  const tunables = parseTunables(opts.tunable);
  const config = machineConfigFrom(opts);
  const k = boot(new Machine(config), tunables);
  const present = new Set(kernelSysctls(k).map((e) => e.name));
  const unknown: string[] = [];
  const values: Record<string, number | string> = {};
  const lines: string[] = [];
  const show = (name: string, v: number | string) => lines.push(opts.valueOnly === true ? String(v) : `${name}: ${v}`);
  for (const name of names.length === 0 ? [''] : names) {
    const eq = name.indexOf('=');
    if (eq >= 0) {
      // name=value sets a writable name and shows the change, as sysctl(8) does.
      const n = name.slice(0, eq);
      const entry = sysctls.find((e) => e.name === n && present.has(e.name));
      if (entry === undefined) {
        unknown.push(n);
        continue;
      }
      if (entry.set === undefined) throw new UserError(`sysctl: oid '${n}' is read only`);
      const problem = sysctlCheck(n, Number(name.slice(eq + 1)));
      if (problem !== undefined) throw new UsageError(`sysctl: ${problem}`);
      const old = entry.value(k);
      entry.set(k, Number(name.slice(eq + 1)));
      values[n] = entry.value(k);
      lines.push(opts.valueOnly === true ? String(values[n]) : `${n}: ${old} -> ${values[n]}`);
      continue;
    }
    const matches = (name === '' ? [...sysctls] : sysctlMatches(name)).filter((e) => present.has(e.name));
    if (matches.length === 0) unknown.push(name);
    for (const e of matches) {
      values[e.name] = opts.description === true ? e.description : e.value(k);
      show(e.name, values[e.name]!);
    }
  }
  if (opts.json === true) io.stdout.write(`${JSON.stringify(values, null, 2)}\n`);
  else if (lines.length > 0) io.stdout.write(`${lines.join('\n')}\n`);
  // sysctl(8) warns once per unknown name, on its own line; the CLI prefixes each with "kmemu: ".
  if (unknown.length > 0) throw new UserError(unknown.map((n) => `sysctl: unknown oid '${n}'`).join('\nkmemu: '));
  return values;
}

/**
 * Runs `kmemu sysctl ARGS` in-process (ARGS without the subcommand name) and returns what it
 * printed as name → value. User errors throw UserError (after the known names are printed);
 * option errors throw commander's CommanderError.
 */
export async function runSysctl(args: readonly string[], io: Partial<SysctlIo> = {}): Promise<Record<string, number | string>> {
  let result: Record<string, number | string> = {};
  const stdout = io.stdout ?? process.stdout;
  const command = sysctlCommand((names, opts) => {
    result = sysctlMain(names, opts, { stdout });
  })
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  await command.parseAsync([...args], { from: 'user' });
  return result;
}
