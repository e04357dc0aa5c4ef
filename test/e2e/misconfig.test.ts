import { afterAll, describe, expect, it } from 'vitest';
import { clusterSpecs, ctlOk, eventually, initialClusterOf, Member, memberArgs, sleep, stopAll } from './harness.js';

// Misconfigurations from the walkthrough: each is refused with an error that says what to
// fix, and no member loses data.

afterAll(stopAll);

describe('misconfiguration is refused clearly', () => {
  it('a --name / --initial-advertise-peer-urls that does not match --initial-cluster', async () => {
    const [a, b] = await clusterSpecs(2);
    const ic = initialClusterOf([a!, b!]);
    const wrongName = new Member(a!, memberArgs({ ...a!, name: 'nosuch' }, ic, 'new')).start();
    expect(await wrongName.exited).toBe(1);
    expect(wrongName.stderr).toContain('couldn\'t find local name "nosuch" in the initial cluster configuration');

    const args = memberArgs(a!, ic, 'new');
    args[args.indexOf('--initial-advertise-peer-urls') + 1] = 'http://127.0.0.9:1';
    const wrongUrl = new Member(a!, args).start();
    expect(await wrongUrl.exited).toBe(1);
    expect(wrongUrl.stderr).toMatch(/--initial-advertise-peer-urls/);
    expect(wrongUrl.stderr).toContain('http://127.0.0.9:1');
    expect(wrongUrl.stderr).toContain(`http://127.0.0.1:${a!.peerPort}`);
  });

  it('a member started with another --initial-cluster-token is refused by the cluster, both sides say why', async () => {
    const specs = await clusterSpecs(3);
    const ic = initialClusterOf(specs);
    const good = specs.slice(0, 2).map((s) => new Member(s, memberArgs(s, ic, 'new', 'token-A')).start());
    const stray = new Member(specs[2]!, memberArgs(specs[2]!, ic, 'new', 'token-B')).start();
    await eventually(async () => {
      expect(await ctlOk(`http://127.0.0.1:${specs[0]!.clientPort}`, ['put', 'k', 'v'])).toBe('OK\n');
    }, 20_000, 300);
    await sleep(1000);
    const all = good.map((m) => m.stderr).join('') + stray.stderr;
    expect(all).toMatch(/different --initial-cluster-token/);
    expect(stray.stderr).toMatch(/cluster/);
    expect(await ctlOk(`http://127.0.0.1:${specs[1]!.clientPort}`, ['get', 'k', '--print-value-only'])).toBe('v\n');
    await stray.stop();
  }, 60_000);

  it('"new" where "existing" was needed after member add: the new member is refused, the cluster keeps its data', async () => {
    const specs = await clusterSpecs(3);
    const two = initialClusterOf(specs.slice(0, 2));
    const ms = specs.slice(0, 2).map((s) => new Member(s, memberArgs(s, two, 'new')).start());
    await Promise.all(ms.map((m) => m.waitHealthy()));
    const ep0 = `http://127.0.0.1:${specs[0]!.clientPort}`;
    await ctlOk(ep0, ['put', 'keep', 'me']);
    await eventually(() => ctlOk(ep0, ['member', 'add', 'infra2', `--peer-urls=http://127.0.0.1:${specs[2]!.peerPort}`]), 20_000, 500);
    const wrong = new Member(specs[2]!, memberArgs(specs[2]!, initialClusterOf(specs), 'new')).start();
    await sleep(3000);
    const logs = ms.map((m) => m.stderr).join('') + wrong.stderr;
    expect(logs).toMatch(/--initial-cluster-state new where existing was needed/);
    expect(await ctlOk(ep0, ['get', 'keep', '--print-value-only'])).toBe('me\n');
    await wrong.stop();
  }, 60_000);

  it('existing without a prior member add tells the operator to run member add', async () => {
    const specs = await clusterSpecs(3);
    const two = initialClusterOf(specs.slice(0, 2));
    const ms = specs.slice(0, 2).map((s) => new Member(s, memberArgs(s, two, 'new')).start());
    await Promise.all(ms.map((m) => m.waitHealthy()));
    const joiner = new Member(specs[2]!, memberArgs(specs[2]!, initialClusterOf(specs), 'existing')).start();
    expect(await joiner.exited).toBe(1);
    expect(joiner.stderr).toContain('etcdctl member add infra2');
  }, 60_000);
});
