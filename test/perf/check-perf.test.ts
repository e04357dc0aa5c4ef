import { afterAll, beforeAll, expect, it } from 'vitest';
import { etcdctl, singleNode, stopAll, type Member } from '../e2e/harness.js';

// `etcdctl check perf` is a verdict on the machine as much as on the server (its slowest
// request must stay under 0.5 s), so like etcd's own advice it runs on an otherwise idle
// machine: vitest runs this project alone, after every other test file (vitest.config.ts).

let m: Member;

beforeAll(async () => {
  m = await singleNode(['--client-warm-up-connections', '800']); // as an operator runs it: the default
});
afterAll(stopAll);

it('etcdctl check perf --load=s passes against a single member', async () => {
  const r = await etcdctl(m.clientUrl, ['check', 'perf', '--load=s'], undefined, 120_000);
  expect(r.stdout).toMatch(/PASS: Throughput is \d+ writes\/s/);
  expect(r.stdout).toMatch(/PASS: Slowest request took [\d.]+s/);
  expect(r.stdout).toMatch(/\nPASS\n?$/);
}, 120_000);
