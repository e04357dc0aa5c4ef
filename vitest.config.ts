import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // e2e tests start real processes; keep the 2-core machine from thrashing
    maxWorkers: 2,
    fileParallelism: true,
  },
});
