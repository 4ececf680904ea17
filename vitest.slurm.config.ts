// Vitest for `make test-slurm`: only the tests that start a real single-node Slurm
// (test/slurm/), which the default config leaves out. The build step stays so a test can run the
// compiled CLI under Slurm.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/slurm/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['test/setup/build.ts'],
  },
});
