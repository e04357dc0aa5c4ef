import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { ctlOk, eventually, Member, sleep, startCluster, stopAll, type MemberSpec } from './harness.js';

// A key on a 5 s lease survives the leader's death while kept alive, and disappears within
// TTL ± 1 s once keep-alives stop, never earlier.

let specs: MemberSpec[];
let members: Member[];
const ep = (s: MemberSpec) => `http://127.0.0.1:${s.clientPort}`;

beforeAll(async () => {
  ({ specs, members } = await startCluster(3));
});
afterAll(stopAll);

async function leaderIndex(eps: MemberSpec[]): Promise<number> {
  const rows = (await ctlOk(eps.map(ep), ['endpoint', 'status'])).trim().split('\n').map((l) => l.split(', '));
  const leaderRow = rows.find((r) => r[4] === 'true');
  if (!leaderRow) throw new Error('no leader');
  return specs.findIndex((s) => ep(s) === leaderRow[0]);
}

describe('lease across a leader failure', () => {
  it('survives while kept alive, expires within TTL ± 1 s after keep-alives stop', async () => {
    const leader = await leaderIndex(specs);
    const follower = specs.findIndex((_, i) => i !== leader);
    const client = new Etcd3({ hosts: ep(specs[follower]!) });
    const lease = client.lease(5);
    let lost = false;
    lease.on('lost', () => (lost = true));
    await lease.put('lk').value('v');

    await members[leader]!.kill();
    const survivors = specs.filter((_, i) => i !== leader);
    await eventually(() => leaderIndex(survivors), 10_000, 200);
    for (let t = 0; t < 7; t++) {
      await sleep(1000);
      expect(await ctlOk(ep(specs[follower]!), ['get', 'lk', '--print-value-only'])).toBe('v\n');
    }
    expect(lost).toBe(false);

    // stop keeping it alive: the last keep-alive was at most ~TTL/3 ago
    const lastKeepAliveBound = Date.now();
    lease.release(); // stop keep-alives without revoking
    let goneAt = 0;
    while (Date.now() - lastKeepAliveBound < 10_000) {
      const v = await ctlOk(ep(specs[follower]!), ['get', 'lk', '--print-value-only', '--consistency=s']);
      if (v === '') {
        goneAt = Date.now();
        break;
      }
      await sleep(100);
    }
    expect(goneAt).toBeGreaterThan(0);
    const aliveFor = goneAt - lastKeepAliveBound;
    // keep-alives were sent every ~TTL/3, so the key may go up to ~1.7 s before this bound + TTL
    expect(aliveFor).toBeGreaterThan(5000 - 1700 - 1000);
    expect(aliveFor).toBeLessThan(5000 + 1000);
    client.close();
  }, 90_000);
});
