// Test fixtures for the kernel: a booted small machine and a way to run one task on one CPU.
import { Machine, machinePresets, mergeConfig, type Cpu, type MachineConfigInput, type Task } from '../../emu/index.js';
import { boot, type Kernel } from '../../kernel/index.js';

/** The coursework machine (32 MiB unless overridden), booted. */
export function bootedMachine(overrides: object = {}): { m: Machine; k: Kernel } {
  const cfg = mergeConfig(mergeConfig(machinePresets['coursework'], { memory: { size: '32m' } }), overrides) as MachineConfigInput;
  const m = new Machine(cfg);
  return { m, k: boot(m) };
}

/** Runs `body` on CPU `cpuId` (others idle) and returns its result. */
export function onCpu<T>(m: Machine, cpuId: number, body: (cpu: Cpu) => Task<T>): T {
  let result: T | undefined;
  let done = false;
  m.run(
    m.cpus.map((c) =>
      c.id === cpuId
        ? function* (cpu: Cpu): Task {
            result = yield* body(cpu);
            done = true;
          }
        : undefined,
    ),
  );
  if (!done) throw new Error('task did not finish');
  return result as T;
}

/**
 * Two CPUs allocating and freeing at once, for "viewing changes nothing" tests: each CPU takes
 * `n` items, freeing the oldest after every third, then frees the rest; `look` runs after each
 * operation. Returns each CPU's items in the order it got them.
 */
export function churnOnTwoCpus(m: Machine, n: number, alloc: (cpu: Cpu) => Task<number>, free: (cpu: Cpu, item: number) => Task, look: () => void): number[][] {
  const got: number[][] = [[], []];
  const program = (id: number) =>
    function* (cpu: Cpu): Task {
      const held: number[] = [];
      for (let i = 0; i < n; i++) {
        const a = yield* alloc(cpu);
        got[id]!.push(a);
        held.push(a);
        look();
        if (i % 3 === 2) {
          yield* free(cpu, held.shift()!);
          look();
        }
      }
      for (const a of held) {
        yield* free(cpu, a);
        look();
      }
    };
  m.run([program(0), program(1)]);
  return got;
}
