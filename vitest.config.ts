import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // They start a real Slurm cluster: `make test-slurm` runs them (vitest.slurm.config.ts).
    exclude: [...configDefaults.exclude, 'test/slurm/**'],
    testTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/setup/build.ts'],
  },
});
