import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // e2e tests start real processes; keep the 2-core machine from thrashing
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ['test/perf/**'] } },
      // Performance verdicts (etcdctl check perf) run last and alone: beside two other test
      // files on two cores, a request can wait 0.5 s for a core and fail "slowest request".
      { extends: true, test: { name: 'perf', include: ['test/perf/**/*.test.ts'], sequence: { groupOrder: 1 } } },
    ],
  },
});
