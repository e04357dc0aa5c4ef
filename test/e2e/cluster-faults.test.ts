import { afterAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { ctlOk, etcdctl, eventually, startCluster, stopAll } from './harness.js';

// Faults in a 3-member cluster: a member that was down while the log was compacted catches
// up from a snapshot of the leader's database; without a quorum, requests fail with etcd's
// errors within the request timeout instead of hanging.

afterAll(stopAll);

describe('cluster faults', () => {
  it('a lagging member catches up by snapshot after the leader compacted its log', async () => {
    const { specs, members } = await startCluster(3, ['--snapshot-count', '100', '--snapshot-catchup-entries', '20']);
    await members[2]!.stop();
    const client = new Etcd3({ hosts: `http://127.0.0.1:${specs[0]!.clientPort}` });
    for (let i = 0; i < 400; i++) await client.put(`snap/${i}`).value(`v${i}`);
    client.close();
    members[2]!.start();
    await members[2]!.waitHealthy();
    const ep2 = `http://127.0.0.1:${specs[2]!.clientPort}`;
    await eventually(async () => {
      expect(await ctlOk(ep2, ['get', 'snap/399', '--print-value-only', '--consistency=s'])).toBe('v399\n');
    });
    const count = JSON.parse(await ctlOk(ep2, ['get', 'snap/', '--prefix', '--keys-only', '-w', 'json'])).count;
    expect(count).toBe(400);
    expect(members[2]!.stderr).toMatch(/installed database snapshot from the leader/);
    expect(members.map((m) => m.stderr).join('')).toMatch(/sent database snapshot to peer/);
    // and it keeps replicating normally afterwards
    await ctlOk(`http://127.0.0.1:${specs[1]!.clientPort}`, ['put', 'after', 'snap']);
    await eventually(async () => expect(await ctlOk(ep2, ['get', 'after', '--print-value-only', '--consistency=s'])).toBe('snap\n'));
  }, 120_000);

  it('a delete that takes the leader longer than an election timeout to apply costs no leader', async () => {
    // One thread applies and heartbeats: while the leader applies a large range delete, the
    // followers hear nothing. They must have been told the commit first, so that they apply
    // the same delete meanwhile instead of counting the silence towards an election, and
    // whoever finishes first grants the others as much silence as its own apply took.
    const { specs, members } = await startCluster(3, ['--heartbeat-interval', '30', '--election-timeout', '300']);
    const status = async () => JSON.parse(await ctlOk(specs.map((s) => `http://127.0.0.1:${s.clientPort}`), ['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { header: { member_id: number }; leader: number; raft_term: number } }>;
    const before = await status();
    const leaderIdx = before.findIndex((e) => e.Status.header.member_id === e.Status.leader);
    expect(leaderIdx).toBeGreaterThanOrEqual(0);
    const leaderEp = `http://127.0.0.1:${specs[leaderIdx]!.clientPort}`;
    const client = new Etcd3({ hosts: leaderEp });
    const value = 'v'.repeat(100);
    const keys = 100_000;
    for (let t = 0; t < keys / 100; t += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => {
        const txn = client.if('none', 'Version', '==', 0);
        return txn.then(...Array.from({ length: 100 }, (_, i) => client.put(`big/${String((t + j) * 100 + i).padStart(6, '0')}`).value(value))).commit();
      }));
    }
    client.close();
    const logBefore = members.map((m) => m.stderr.length);
    // Sent to the leader: no follower proposed it, so none is told its commit at once.
    expect(await ctlOk(leaderEp, ['del', 'big/', '--prefix'])).toBe(`${keys}\n`);
    await ctlOk(leaderEp, ['put', 'after', 'x']);
    const logs = members.map((m, i) => m.stderr.slice(logBefore[i]));
    // The precondition: the delete blocked the leader for more than an election timeout.
    const took = /apply request took too long","took":"([\d.]+)ms".*"kind":"DeleteRange"/.exec(logs[leaderIdx]!);
    // (Shorter, and the followers could not have timed out in the first place.)
    expect(took, 'the delete should take the leader over 100 ms to apply').not.toBeNull();
    expect(Number(took![1])).toBeGreaterThan(300);
    for (const log of logs) expect(log).not.toMatch(/lost the leader|became the leader|became candidate|stepped down/);
    const after = await status();
    expect(after.map((e) => e.Status.leader)).toEqual(before.map((e) => e.Status.leader));
    expect(after.map((e) => e.Status.raft_term)).toEqual(before.map((e) => e.Status.raft_term));
  }, 120_000);

  it('without a quorum, writes and linearizable reads fail within the request timeout', async () => {
    const { specs, members } = await startCluster(3);
    const ep0 = `http://127.0.0.1:${specs[0]!.clientPort}`;
    await ctlOk(ep0, ['put', 'k', 'v']);
    await members[1]!.kill();
    await members[2]!.kill();
    const started = Date.now();
    const put = await etcdctl(ep0, ['put', 'k', 'w', '--command-timeout=20s']);
    const tookMs = Date.now() - started;
    expect(put.code).not.toBe(0);
    expect(put.stderr).toMatch(/etcdserver: (request timed out|no leader)/);
    // request timeout = 5 s + 2 x election timeout (500 ms in these tests)
    expect(tookMs).toBeLessThan(12_000);
    const read = await etcdctl(ep0, ['get', 'k', '--command-timeout=20s']);
    expect(read.stderr).toMatch(/etcdserver: (request timed out|no leader)/);
    // serializable reads are still served locally
    expect(await ctlOk(ep0, ['get', 'k', '--consistency=s', '--print-value-only'])).toBe('v\n');
    // health says why
    const health = await (await fetch(`${ep0}/health`)).json();
    expect(health.health).toBe('false');
  }, 90_000);

  it('--force-new-cluster turns a surviving member into a one-member cluster with all its data', async () => {
    const { specs, members } = await startCluster(3);
    const ep0 = `http://127.0.0.1:${specs[0]!.clientPort}`;
    for (let i = 0; i < 20; i++) await ctlOk(ep0, ['put', `fnc/${i}`, `v${i}`]);
    await eventually(async () => expect(await ctlOk(`http://127.0.0.1:${specs[2]!.clientPort}`, ['get', 'fnc/19', '--consistency=s', '--print-value-only'])).toBe('v19\n'));
    for (const m of members) await m.kill();
    const survivor = members[2]!;
    survivor.args = [...survivor.args, '--force-new-cluster'];
    survivor.start();
    await survivor.waitHealthy();
    const ep2 = `http://127.0.0.1:${specs[2]!.clientPort}`;
    const list = (await ctlOk(ep2, ['member', 'list'])).trim().split('\n');
    expect(list).toHaveLength(1);
    expect(list[0]).toContain('infra2');
    expect(await ctlOk(ep2, ['get', 'fnc/', '--prefix', '--keys-only', '-w', 'json'])).toContain('"count":20');
    await ctlOk(ep2, ['put', 'after', 'recovery']);
    expect(survivor.stderr).toMatch(/--force-new-cluster: this member restarts as the only member/);
  }, 90_000);
});
