// Vitest global setup: tests that run the kmemu command spawn the compiled CLI, so build it
// first (make's stamps make this a no-op when dist/ is up to date).
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('make', ['-s', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
}
