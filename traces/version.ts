// The kmemu version and how a document names its input, apart from run.ts (the zod schemas)
// so that commands which need only these (kmemu cachesim) load without zod.

import { basename } from 'node:path';

/** The kmemu version (package.json's; test/traces/run.test.ts keeps them equal). */
export const KMEMU_VERSION = '0.1.0';

/** A trace file's name in a document: its base name, or "stdin" for "-". */
export function inputName(file: string): string {
  return file === '-' ? 'stdin' : basename(file);
}
