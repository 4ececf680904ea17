// The machine: CPUs, physical memory, the coherent caches, and the scheduler that runs one
// coroutine per CPU.
//
// Scheduling. Each CPU has its own cycle clock. The scheduler always resumes the runnable CPU
// whose clock is smallest (ties: lowest id). A CPU runs plain loads and stores eagerly, ahead
// of the others if it is ahead in time; at a synchronization point (an atomic, a lock word, a
// sleep or wakeup, an IPI) it proceeds only when its clock is the smallest, so lock order and
// hold intervals are exact in simulated time. At a kernel entry (cpu.checkpoint()) it yields
// when it is more than `syncQuantum` cycles ahead of the slowest runnable CPU.
//
// What the quantum trades: plain accesses by a CPU that runs ahead are applied to the caches
// before earlier-in-time accesses of the CPUs behind it, so coherence events among lines that
// several CPUs touch without synchronizing (false sharing, say) can happen in a slightly
// different order than in real time; a smaller quantum bounds how far (0: never beyond one
// kernel entry, every preset's default), a larger one costs fewer coroutine switches and hides
// coherence traffic (README, "Sync quantum", has the measured error). The same goes for a line's
// busy interval (memsys.ts): a request applied after a run-ahead CPU's transfer of the line but
// earlier in simulated time does not queue behind it (it is taken to have come first), while one
// that falls inside the interval does. Atomics and lock words run only on the CPU with the
// smallest clock, so for them the queueing is exact. Results are deterministic either way:
// same config, seed and programs give the same counters in every run.

import { validateMachineConfig, type MachineConfig, type MachineConfigInput } from './config.js';
import { CounterSnapshot, K, LABEL_CAP, LabelRegistry, NCOUNTERS, ROOT_CONTEXT } from './counters.js';
import { CPU_BLOCKED, CPU_DONE, CPU_RUNNABLE, Cpu, YIELD_INPUT, type Program, type Task } from './cpu.js';
import { MemorySystem } from './memsys.js';
import { PhysMem } from './physmem.js';

/** Every CPU that still has work is blocked and nothing can wake it. */
export class MachineDeadlock extends Error {
  constructor(readonly waiting: readonly { cpu: number; since: number; reason: string }[]) {
    super(`deadlock: every CPU with work is blocked: ${waiting.map((w) => `cpu${w.cpu} since cycle ${w.since} (${w.reason})`).join('; ')}`);
    this.name = 'MachineDeadlock';
  }
}

export class Machine {
  readonly config: MachineConfig;
  readonly mem: PhysMem;
  readonly memsys: MemorySystem;
  readonly labels = new LabelRegistry();
  /** Counter contexts (cpu.setContext), e.g. one per zone a driver replays. */
  readonly contexts = new LabelRegistry(ROOT_CONTEXT, 4096);
  readonly cpus: Cpu[] = [];
  private readonly tasks: (Task<unknown> | undefined)[] = [];
  private readonly ipiLabel: number;

  constructor(config: MachineConfig | MachineConfigInput) {
    this.config = validateMachineConfig(config);
    this.mem = new PhysMem(this.config.memory.size);
    this.memsys = new MemorySystem(this.config);
    for (let c = 0; c < this.config.cpus; c++) this.cpus.push(new Cpu(this, c));
    this.memsys.contexts = this.cpus;
    this.memsys.onWatchInvalidated = (cpu, time) => this.wake(cpu, time);
    this.ipiLabel = this.labels.id('ipi');
  }

  get ncpus(): number {
    return this.cpus.length;
  }

  cpu(id: number): Cpu {
    const c = this.cpus[id];
    if (c === undefined) throw new RangeError(`no cpu${id} on a ${this.ncpus}-CPU machine`);
    return c;
  }

  /** Id of a path label, registering it on first use. */
  label(name: string): number {
    return this.labels.id(name);
  }

  /** Id of a counter context, registering it on first use. */
  context(name: string): number {
    return this.contexts.id(name);
  }

  /**
   * Runs one program per CPU (undefined: that CPU stays idle) until all finish. Clocks and
   * caches carry over from earlier runs. Throws MachineDeadlock when every CPU with work left
   * is blocked with nobody to wake it, and whatever a program throws.
   */
  run(programs: readonly (Program | undefined)[]): void {
    this.start(programs);
    const r = this.resume();
    if (r.state === 'input') throw new Error(`cpu${r.cpu} asked for input and nothing drives this run (use start/resume)`);
  }

  /** Starts one program per CPU without running it; resume() runs them. */
  start(programs: readonly (Program | undefined)[]): void {
    for (let c = 0; c < this.ncpus; c++) {
      const p = programs[c];
      const cpu = this.cpus[c]!;
      if (p === undefined) continue;
      this.tasks[c] = p(cpu);
      cpu.status = CPU_RUNNABLE;
    }
  }

  /**
   * Installs programs on CPUs restored from a checkpoint (emu/snapshot.ts), leaving each CPU's
   * status as restored (a CPU that had finished gets none); resume() runs them.
   */
  restart(programs: readonly (Program | undefined)[]): void {
    for (let c = 0; c < this.ncpus; c++) {
      const p = programs[c];
      const cpu = this.cpus[c]!;
      if (p === undefined || cpu.status === CPU_DONE) continue;
      this.tasks[c] = p(cpu);
    }
  }

  /**
   * Runs the started programs until all finish ('done'), or until the CPU whose turn it is
   * yields YIELD_INPUT ('input': the whole machine pauses there so that its driver can read
   * more input; call resume() again). Deadlock and program errors as in run().
   *
   * `proceed`: a CPU that yielded YIELD_INPUT only to let its driver look at the machine (a
   * viewer's pause), not to wait for anything: it goes on first, as it would have had it not
   * yielded, so that pausing never changes the interleaving.
   */
  resume(proceed = -1): { state: 'done' } | { state: 'input'; cpu: number } {
    const cpus = this.cpus;
    for (;;) {
      let next: Cpu | undefined;
      if (proceed >= 0 && cpus[proceed]!.status === CPU_RUNNABLE) next = cpus[proceed];
      else {
        for (let c = 0; c < cpus.length; c++) {
          const cpu = cpus[c]!;
          if (cpu.status === CPU_RUNNABLE && (next === undefined || cpu.clock < next.clock)) next = cpu;
        }
      }
      proceed = -1;
      if (next === undefined) break;
      const step = this.tasks[next.id]!.next();
      if (step.done === true) {
        next.drain();
        next.status = CPU_DONE;
        this.tasks[next.id] = undefined;
      } else if (step.value === YIELD_INPUT) {
        return { state: 'input', cpu: next.id };
      }
    }
    const blocked = cpus.filter((c) => c.status === CPU_BLOCKED);
    if (blocked.length > 0) {
      for (const c of blocked) {
        c.status = CPU_DONE;
        this.tasks[c.id] = undefined;
        this.memsys.watchLine[c.id] = -1;
      }
      throw new MachineDeadlock(blocked.map((c) => ({ cpu: c.id, since: c.blockedSince, reason: c.blockReason })));
    }
    return { state: 'done' };
  }

  /** Runs the same program on every CPU. */
  runAll(program: Program): void {
    this.run(this.cpus.map(() => program));
  }

  /** Whether another runnable CPU comes before this one (smaller clock, or equal and lower id). */
  mustWait(cpu: Cpu): boolean {
    const cpus = this.cpus;
    const t = cpu.clock;
    for (let c = 0; c < cpus.length; c++) {
      const o = cpus[c]!;
      if (o !== cpu && o.status === CPU_RUNNABLE && (o.clock < t || (o.clock === t && o.id < cpu.id))) return true;
    }
    return false;
  }

  /** Whether this CPU is more than the sync quantum ahead of the slowest runnable CPU. */
  aheadOfQuantum(cpu: Cpu): boolean {
    const q = this.config.syncQuantum;
    if (q === 0) return this.mustWait(cpu);
    const cpus = this.cpus;
    for (let c = 0; c < cpus.length; c++) {
      const o = cpus[c]!;
      if (o !== cpu && o.status === CPU_RUNNABLE && cpu.clock - o.clock > q) return true;
    }
    return false;
  }

  /** Makes a blocked CPU runnable; it resumes no earlier than `time`. */
  wake(id: number, time: number): void {
    const cpu = this.cpu(id);
    if (cpu.status !== CPU_BLOCKED) return;
    cpu.status = CPU_RUNNABLE;
    cpu.wakeTime = Math.max(time, cpu.blockedSince);
    this.memsys.watchLine[id] = -1;
  }

  /**
   * Sends an IPI from `sender` to each target and waits for every acknowledgement. Each target
   * runs `handler` when the interrupt reaches it (ipiLatency after sending, or at once if it is
   * already later than that), under the path label `ipi`, then acknowledges by a locked
   * increment of the 32-bit word at `ackVa`; the sender spins until it has seen them all. The
   * handler's cycles are stolen from the target; the sender's wait is counted as
   * ipi.waitCycles, and the final read of the ack word pays for the line's transfer.
   */
  *ipi(sender: Cpu, targets: readonly number[], handler: (target: Cpu) => void, ackVa: number): Task {
    yield* sender.sync();
    sender.store32(ackVa, 0);
    const sent = sender.clock;
    const arrival = sent + this.config.cpu.ipiLatency;
    let lastAck = sent;
    for (const t of targets) {
      const target = this.cpu(t);
      if (target === sender) throw new RangeError(`cpu${t} cannot send an IPI to itself`);
      sender.count(K['ipi.sent']);
      const saved = target.clock;
      const start = Math.max(saved, arrival);
      target.clock = start;
      target.enter(this.ipiLabel);
      target.count(K['ipi.received']);
      handler(target);
      target.rmwNow(ackVa, 4, 1 /* xadd */, 1, 0);
      const spent = target.clock - start;
      target.count(K['ipi.handlerCycles'], spent);
      target.leave();
      lastAck = Math.max(lastAck, target.clock);
      if (target.status === CPU_BLOCKED) {
        target.clock = saved;
        target.stolenWhileBlocked += spent;
      } else {
        target.clock = saved + spent;
      }
    }
    if (lastAck > sender.clock) {
      const wait = lastAck - sender.clock;
      sender.tick(wait);
      sender.count(K['ipi.waitCycles'], wait);
    }
    const acks = sender.load32(ackVa);
    if (acks !== targets.length) throw new Error(`ipi: expected ${targets.length} acknowledgements at the ack word, found ${acks}`);
  }

  /**
   * TLB shootdown: invalidates `vas` (or, with 'all', every non-global translation) on the
   * sender and then, by IPI, on every target, waiting for all acknowledgements.
   */
  *shootdown(sender: Cpu, targets: readonly number[], vas: readonly number[] | 'all', ackVa: number): Task {
    yield* sender.sync();
    sender.count(K['tlb.shootdown']);
    const invalidate = (cpu: Cpu) => {
      if (vas === 'all') cpu.flushTlb(false);
      else for (const va of vas) cpu.invlpg(va);
    };
    invalidate(sender);
    if (targets.length > 0) yield* this.ipi(sender, targets, invalidate, ackVa);
  }

  /**
   * Brings every CPU's clock up to the latest one, counting the gap as idle: a barrier between
   * a warm-up phase and a measured one. Call it between runs.
   */
  barrier(): void {
    for (const cpu of this.cpus) cpu.drain();
    const t = this.makespan;
    for (const cpu of this.cpus) {
      const gap = t - cpu.clock;
      if (gap > 0) {
        cpu.tick(gap);
        cpu.count(K.idleCycles, gap);
      }
    }
  }

  /** Every CPU other than `cpu`. */
  others(cpu: Cpu): number[] {
    return this.cpus.filter((c) => c !== cpu).map((c) => c.id);
  }

  /** A frozen copy of every counter and clock; subtract two for a warm-up delta. */
  snapshot(): CounterSnapshot {
    return new CounterSnapshot(
      [...this.labels.names],
      this.cpus.map((c) => {
        const t = new Float64Array(this.contexts.size * LABEL_CAP * NCOUNTERS);
        t.set(c.ctr.subarray(0, Math.min(c.ctr.length, t.length)));
        return t;
      }),
      this.cpus.map((c) => c.clock),
      [...this.contexts.names],
    );
  }

  /** The latest CPU clock: the run's makespan in cycles. */
  get makespan(): number {
    return Math.max(...this.cpus.map((c) => c.clock));
  }
}
