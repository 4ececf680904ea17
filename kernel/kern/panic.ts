// panic(9): the kernel's own diagnosis of misuse. Modeled code panics with the upstream
// message; the CLI prints it as the kernel would ("panic: zone: freeing free entry") with the
// CPU it happened on.

export class KernelPanic extends Error {
  constructor(
    readonly cpu: number,
    readonly panicMessage: string,
  ) {
    super(`panic: ${panicMessage} (cpu${cpu})`);
    this.name = 'KernelPanic';
  }
}

export function panic(cpu: { id: number }, message: string): never {
  throw new KernelPanic(cpu.id, message);
}
