import { afterAll, describe, expect, it } from 'vitest';
import { clusterSpecs, ctlOk, etcdctl, eventually, initialClusterOf, Member, memberArgs, stopAll } from './harness.js';

// Learners: added with `member add --learner`, they receive the log but do not vote and
// serve only serializable reads, until `member promote` makes them voters.

afterAll(stopAll);

describe('learners', () => {
  it('add a learner, it catches up, serves serializable reads only, then is promoted', async () => {
    const specs = await clusterSpecs(2);
    const [a, b] = [specs[0]!, specs[1]!];
    const m0 = new Member(a, memberArgs(a, initialClusterOf([a]), 'new')).start();
    await m0.waitHealthy();
    const ep0 = `http://127.0.0.1:${a.clientPort}`;
    const ep1 = `http://127.0.0.1:${b.clientPort}`;
    await ctlOk(ep0, ['put', 'seed', 'x']);
    const added = await ctlOk(ep0, ['member', 'add', 'infra1', `--peer-urls=http://127.0.0.1:${b.peerPort}`, '--learner']);
    const idHex = /Member\s+([0-9a-f]+) added/.exec(added)![1]!;
    expect(await ctlOk(ep0, ['member', 'list'])).toMatch(new RegExp(`${idHex}, unstarted, , http://127.0.0.1:${b.peerPort}, , true`));
    const m1 = new Member(b, memberArgs(b, initialClusterOf(specs), 'existing')).start();
    await eventually(async () => expect(await ctlOk(ep1, ['get', 'seed', '--consistency=s', '--print-value-only'])).toBe('x\n'));
    const st = await ctlOk(ep1, ['endpoint', 'status']);
    expect(st.trim().split(', ')[5]).toBe('true'); // IS LEARNER
    const lin = await etcdctl(ep1, ['get', 'seed']);
    expect(lin.stderr).toContain('etcdserver: rpc not supported for learner');
    const write = await etcdctl(ep1, ['put', 'no', 'writes']);
    expect(write.stderr).toContain('etcdserver: rpc not supported for learner');
    await eventually(() => ctlOk(ep0, ['member', 'promote', idHex]), 10_000, 300);
    await eventually(async () => expect(await ctlOk(ep0, ['member', 'list'])).toMatch(new RegExp(`${idHex}, started, infra1, .*, false`)));
    await eventually(async () => expect(await ctlOk(ep1, ['get', 'seed', '--print-value-only'])).toBe('x\n'));
    await ctlOk(ep1, ['put', 'now', 'voter']);
    void m1;
  }, 90_000);
});
