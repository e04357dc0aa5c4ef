import { afterAll, describe, expect, it } from 'vitest';
import {
  clusterSpecs, ctlOk, etcdctl, eventually, initialClusterOf, Member, memberArgs, sleep, stopAll, type MemberSpec,
} from './harness.js';

// The operator's walkthrough (seed-walkthrough.md §2-5) with tsetcd processes on 127.0.0.1
// and the real etcdctl: bootstrap two, grow to three live, restart, kill the leader, remove.

afterAll(stopAll);

interface StatusRow {
  Endpoint: string;
  Status: { header: { member_id: number; revision: number }; leader: number; raftIndex: number; raftTerm: number; raftAppliedIndex: number };
}

async function status(endpoints: string[]): Promise<StatusRow[]> {
  return JSON.parse(await ctlOk(endpoints, ['endpoint', 'status', '-w', 'json'])) as StatusRow[];
}

function memberList(out: string): string[][] {
  return out.trim().split('\n').map((l) => l.split(', '));
}

describe('the walkthrough: bootstrap two, grow to three, restart, lose the leader', () => {
  it('works step by step, and no acknowledged write is lost', async () => {
    const specs = await clusterSpecs(3);
    const [s0, s1, s2] = specs as [MemberSpec, MemberSpec, MemberSpec];
    const two = initialClusterOf([s0, s1]);
    const members = new Map<string, Member>();
    for (const s of [s0, s1]) members.set(s.name, new Member(s, memberArgs(s, two, 'new')).start());
    await Promise.all([...members.values()].map((m) => m.waitHealthy()));
    const ep = (s: MemberSpec) => `http://127.0.0.1:${s.clientPort}`;

    // member list shows 2 started
    const list2 = memberList(await ctlOk(ep(s0), ['member', 'list']));
    expect(list2).toHaveLength(2);
    expect(list2.every((r) => r[1] === 'started')).toBe(true);
    expect(list2.map((r) => r[2]).sort()).toEqual(['infra0', 'infra1']);

    // put on one, get from the other
    expect(await ctlOk(ep(s0), ['put', 'key1', 'vasya'])).toBe('OK\n');
    expect(await ctlOk(ep(s1), ['get', 'key1'])).toBe('key1\nvasya\n');

    // member add infra2: it is unstarted, without a name
    const added = await eventually(() => ctlOk(ep(s0), ['member', 'add', 'infra2', `--peer-urls=http://127.0.0.1:${s2.peerPort}`]), 20_000, 500);
    expect(added).toContain('ETCD_INITIAL_CLUSTER_STATE="existing"');
    const list3 = memberList(await ctlOk(ep(s0), ['member', 'list']));
    const unstarted = list3.find((r) => r[3] === `http://127.0.0.1:${s2.peerPort}`)!;
    expect(unstarted[1]).toBe('unstarted');
    expect(unstarted[2]).toBe('');

    // start infra2 with existing
    const three = initialClusterOf(specs);
    members.set('infra2', new Member(s2, memberArgs(s2, three, 'existing')).start());
    await members.get('infra2')!.waitHealthy();
    await eventually(async () => {
      const l = memberList(await ctlOk(ep(s0), ['member', 'list']));
      expect(l.filter((r) => r[1] === 'started'), `member list: ${JSON.stringify(l)}\n${logTails(members)}`).toHaveLength(3);
    });
    expect(await ctlOk(ep(s2), ['get', 'key1', '--print-value-only'])).toBe('vasya\n');

    // exactly one leader; equal raft index over all three
    const all = specs.map(ep);
    await eventually(async () => {
      const st = await status(all);
      const leaders = new Set(st.map((r) => r.Status.leader));
      expect(leaders.size).toBe(1);
      expect(st.filter((r) => r.Status.header.member_id === r.Status.leader)).toHaveLength(1);
      expect(new Set(st.map((r) => r.Status.raftIndex)).size).toBe(1);
    });

    // restart a node with the same "new" flags: still the same 3-member cluster
    const m1 = members.get('infra1')!;
    await m1.stop();
    m1.start();
    await m1.waitHealthy();
    expect(m1.stderr).toMatch(/ignored/);
    const afterRestart = memberList(await ctlOk(ep(s1), ['member', 'list']));
    expect(afterRestart).toHaveLength(3);
    expect(afterRestart.every((r) => r[1] === 'started')).toBe(true);

    // writes from several clients while we SIGKILL the leader
    const acked = new Map<string, string>();
    let writing = true;
    const writer = async (w: number) => {
      for (let i = 0; writing; i++) {
        const key = `w/${w}/${i}`;
        const target = all[(w + i) % all.length]!;
        const r = await etcdctl(target, ['put', key, `v${i}`, '--command-timeout=3s']);
        if (r.code === 0) acked.set(key, `v${i}`);
      }
    };
    const writers = [0, 1, 2].map(writer);
    await sleep(1000);
    const st = await status(all);
    const leaderId = st[0]!.Status.leader;
    const leaderRow = st.find((r) => r.Status.header.member_id === leaderId)!;
    const leaderSpec = specs.find((s) => ep(s) === leaderRow.Endpoint)!;
    const leaderMember = members.get(leaderSpec.name)!;
    await leaderMember.kill();
    const survivors = specs.filter((s) => s !== leaderSpec).map(ep);
    const killedAt = Date.now();
    await eventually(async () => {
      const s = await status(survivors);
      expect(s[0]!.Status.leader).not.toBe(leaderId);
      expect(s[0]!.Status.leader).toBe(s[1]!.Status.leader);
    }, 10_000, 100);
    expect(Date.now() - killedAt).toBeLessThan(5000);
    await ctlOk(survivors[0]!, ['put', 'after-failover', 'yes']);
    await sleep(1000);
    writing = false;
    await Promise.all(writers);
    expect(acked.size).toBeGreaterThan(10);
    for (const [k, v] of acked) {
      expect(await ctlOk(survivors[0]!, ['get', k, '--print-value-only'])).toBe(`${v}\n`);
    }

    // bring the old leader back: it catches up
    leaderMember.start();
    await leaderMember.waitHealthy();
    expect(await ctlOk(ep(leaderSpec), ['get', 'after-failover', '--print-value-only'])).toBe('yes\n');

    // member remove (a follower; IDs as hex from the simple output: JSON numbers lose 64-bit precision)
    const rows = (await ctlOk(all, ['endpoint', 'status'])).trim().split('\n').map((l) => l.split(', '));
    const victim = rows.find((r) => r[4] === 'false')!;
    const [victimEp, victimHex] = [victim[0]!, victim[1]!];
    const others = all.filter((e) => e !== victimEp);
    await eventually(() => ctlOk(others[0]!, ['member', 'remove', victimHex]), 20_000, 500);
    const finalList = memberList(await ctlOk(others, ['member', 'list']));
    expect(finalList).toHaveLength(2);
    expect(finalList.map((r) => r[0])).not.toContain(victimHex);
    // the removed member shuts itself down
    const removed = [...members.values()].find((m) => `http://127.0.0.1:${m.spec.clientPort}` === victimEp)!;
    await eventually(async () => expect(removed.exitCode).not.toBeNull(), 10_000, 200);
    await ctlOk(others[0]!, ['put', 'after-remove', 'ok']);
  }, 180_000);
});

/** The end of every member's log, for a failure message. */
function logTails(members: Map<string, Member>): string {
  return [...members].map(([name, m]) => `--- ${name}\n${m.stderr.split('\n').slice(-25).join('\n')}`).join('\n');
}
