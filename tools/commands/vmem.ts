// kmemu vmem run and kmemu vmem frag, declared; tools/vmem.ts runs them.

import { Command } from 'commander';

/** The script's operations and their operands (tools/vmem.ts parses them). */
export const VMEM_SCRIPT_USAGE: Readonly<Record<string, string>> = {
  create: 'create NAME BASE SIZE QUANTUM QCACHE_MAX',
  import: 'import CHILD PARENT [IMPORT_QUANTUM]',
  add: 'add NAME BASE SIZE',
  xalloc: 'xalloc NAME SIZE ALIGN PHASE NOCROSS MINADDR MAXADDR STRAT',
  alloc: 'alloc NAME SIZE STRAT',
  xfree: 'xfree NAME ADDR SIZE',
  free: 'free NAME ADDR SIZE',
  size: 'size NAME',
  segs: 'segs NAME',
  destroy: 'destroy NAME',
};

export interface VmemRunOptions {
  check?: boolean;
  cycles?: boolean;
}

export interface FragFlags {
  fragments: string;
  events: string;
  seed: string;
  machine: string;
  json?: boolean;
}

export interface VmemActions {
  run: (file: string, opts: VmemRunOptions) => void;
  frag: (flags: FragFlags) => Promise<void>;
}

const HELP_AFTER = `
Script: one operation a line; blank lines and lines starting with # are skipped.
  ${Object.values(VMEM_SCRIPT_USAGE).join('\n  ')}
Numbers are decimal or 0x-hex; STRAT is bestfit, firstfit or nextfit; ADDR may be @L, the
address the alloc or xalloc on line L returned (skip when it returned ENOMEM). xalloc and
alloc are M_NOWAIT; MINADDR 0 and MAXADDR 0 mean VMEM_ADDR_MIN and VMEM_ADDR_MAX.`;

const stdout = (s: string) => void process.stdout.write(s);

/** `kmemu vmem`; `actions` run its subcommands (by default tools/vmem.ts on the process's stdout). */
export function vmemCommand(actions?: VmemActions): Command {
  const vmemCmd = new Command('vmem').description('vmem(9) arenas alone, driven by a script');
  vmemCmd.addCommand(
    new Command('run')
      .description('Run a vmem script on a booted 1-CPU amd64-host kernel, one result line per operation')
      .argument('<script>', 'the script file')
      .option('--check', 'run vmem_check on every arena after each operation')
      .option('--cycles', "append each operation's cost in cycles on the emulated machine")
      .addHelpText('after', HELP_AFTER)
      .action(async (file: string, opts: VmemRunOptions) => {
        if (actions !== undefined) return actions.run(file, opts);
        const { vmemRunMain } = await import('../vmem.js');
        vmemRunMain(file, opts, stdout);
      }),
  );
  vmemCmd.addCommand(
    new Command('frag')
      .description('Bonwick & Adams 2001 §4.5: cycles per vmem_alloc as fragmentation grows, instant fit vs best fit vs quantum caches')
      .option('--fragments <list>', 'free segments to leave in the arena, comma-separated', '0,64,256,1024,4096')
      .option('--events <m>', 'measured allocations and frees (pairs: m/2)', '2000')
      .option('--seed <s>', 'seed of the workload', '1')
      .option('--machine <preset|file>', 'the machine (1 CPU of it)', 'amd64-host')
      .option('--json', 'print the cells as JSON')
      .action(async (f: FragFlags) => {
        if (actions !== undefined) return actions.frag(f);
        const { vmemFragMain } = await import('../vmem.js');
        await vmemFragMain(f, stdout);
      }),
  );
  return vmemCmd;
}
