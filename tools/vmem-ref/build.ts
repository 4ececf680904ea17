// Builds and runs vmem-ref, FreeBSD's subr_vmem.c on kmemu's userland shim (tools/vmem-ref/):
// the oracle that kmemu's vmem model (kernel/kern/subr_vmem.ts, `kmemu vmem run`) is compared with,
// byte for byte, on the same script. The binary is built once per version of its sources with
// the system cc and cached under the OS temp directory (as calibrate --host does for calib.c).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../emu/index.js';

const CFLAGS = ['-O1', '-std=gnu11', '-w'];

/** tools/vmem-ref/, from the TypeScript sources or from dist/tools/vmem-ref/. */
export function referenceSourceDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const dir of [here, path.join(here, '..', '..', '..', 'tools', 'vmem-ref')]) {
    if (fs.existsSync(path.join(dir, 'vmem-ref.c')) && fs.existsSync(path.join(dir, 'subr_vmem.c'))) return dir;
  }
  throw new UserError('vmem-ref: cannot find the reference\'s C sources (tools/vmem-ref/vmem-ref.c)');
}

/** Every file the build reads, relative to tools/vmem-ref/, in a fixed order. */
function sourceFiles(dir: string): string[] {
  const out: string[] = ['subr_vmem.c', 'vmem-ref.c'];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.posix.join(rel, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.[ch]$/.test(e.name)) out.push(p);
    }
  };
  walk('shim');
  return out;
}

/** Builds vmem-ref with the system cc (or $CC), once per source version; returns the binary. */
export function buildReference(cc = process.env.CC ?? 'cc'): string {
  const dir = referenceSourceDir();
  const hash = createHash('sha256').update(cc).update(CFLAGS.join(' '));
  for (const f of sourceFiles(dir)) hash.update(f).update('\0').update(fs.readFileSync(path.join(dir, f))).update('\0');
  const cache = path.join(os.tmpdir(), `kmemu-vmem-ref-${os.userInfo().uid}`);
  const bin = path.join(cache, `vmem-ref-${hash.digest('hex').slice(0, 16)}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(cache, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = spawnSync(cc, [...CFLAGS, '-I', path.join(dir, 'shim'), '-o', tmp,
    path.join(dir, 'vmem-ref.c'), path.join(dir, 'shim', 'kmemu_shim.c')], { encoding: 'utf8' });
  if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new UserError(`vmem-ref: no C compiler: "${cc}" is not on PATH (install gcc or clang, or set CC); the vmem reference needs one`);
  }
  if (r.status !== 0) {
    throw new UserError(`vmem-ref: ${cc} could not build ${path.join(dir, 'vmem-ref.c')}:\n${(r.stderr || String(r.error)).trim()}`);
  }
  fs.renameSync(tmp, bin);
  return bin;
}

export interface ReferenceRun {
  /** 0 done; 2 a script error; 3 an operation this subr_vmem.c lacks (nextfit); 4 a panic. */
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a script on the reference and returns whatever it did, failure included. */
export function runReferenceRaw(scriptText: string): ReferenceRun {
  const r = spawnSync(buildReference(), ['-'], { input: scriptText, encoding: 'utf8', maxBuffer: 1 << 30, timeout: 120_000 });
  if (r.error !== undefined) throw new UserError(`vmem-ref: could not run the reference: ${String(r.error)}`);
  if (r.status === null) throw new UserError(`vmem-ref: the reference died of ${r.signal ?? 'a signal'}: ${r.stderr.trim()}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a script on the reference and returns its output; throws, with its message, unless it exits 0. */
export function runReference(scriptText: string): string {
  const r = runReferenceRaw(scriptText);
  if (r.status !== 0) throw new UserError(`vmem-ref exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}
