import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctlOk, etcdctl, singleNode, stopAll, type Member } from './harness.js';

// The real etcdctl against a single tsetcd member: every KV flag the issue names.

let m: Member;
let ep: string;

beforeAll(async () => {
  m = await singleNode();
  ep = m.clientUrl;
});
afterAll(stopAll);

const ctl = (...args: string[]) => ctlOk(ep, args);

describe('etcdctl KV against tsetcd', () => {
  it('put and get, with revisions as etcd counts them', async () => {
    expect(await ctl('put', 'foo', 'bar')).toBe('OK\n');
    expect(await ctl('get', 'foo')).toBe('foo\nbar\n');
    const j = JSON.parse(await ctl('get', 'foo', '-w', 'json'));
    expect(j.kvs[0].create_revision).toBe(2);
    expect(j.kvs[0].mod_revision).toBe(2);
    expect(j.kvs[0].version).toBe(1);
    expect(Buffer.from(j.kvs[0].key, 'base64').toString()).toBe('foo');
    expect(j.header.revision).toBe(2);
    expect(typeof j.header.cluster_id).toBe('number');
    expect(j.header.raft_term).toBeGreaterThanOrEqual(1);
    await ctl('put', 'foo', 'baz');
    const j2 = JSON.parse(await ctl('get', 'foo', '-w', 'json'));
    expect(j2.kvs[0]).toMatchObject({ create_revision: 2, mod_revision: 3, version: 2 });
  });

  it('--prefix, --from-key, --limit, --sort-by, --order, --keys-only, --print-value-only', async () => {
    for (const k of ['p/a', 'p/b', 'p/c', 'q']) await ctl('put', k, `v-${k}`);
    expect(await ctl('get', 'p/', '--prefix')).toBe('p/a\nv-p/a\np/b\nv-p/b\np/c\nv-p/c\n');
    expect(await ctl('get', 'p/', '--prefix', '--print-value-only')).toBe('v-p/a\nv-p/b\nv-p/c\n');
    expect(await ctl('get', 'p/', '--prefix', '--keys-only')).toBe('p/a\n\np/b\n\np/c\n\n');
    expect(await ctl('get', 'p/', '--prefix', '--limit', '2', '--keys-only')).toBe('p/a\n\np/b\n\n');
    expect(await ctl('get', 'p/b', '--from-key', '--keys-only')).toBe('p/b\n\np/c\n\nq\n\n');
    expect(await ctl('get', 'p/', '--prefix', '--sort-by', 'KEY', '--order', 'DESCEND', '--keys-only')).toBe('p/c\n\np/b\n\np/a\n\n');
    const lim = JSON.parse(await ctl('get', 'p/', '--prefix', '--limit', '1', '-w', 'json'));
    expect(lim.count).toBe(3);
    expect(lim.more).toBe(true);
    await ctl('put', 'p/a', 'newer');
    expect(await ctl('get', 'p/', '--prefix', '--sort-by', 'MODIFY', '--order', 'DESCEND', '--keys-only', '--limit', '1')).toBe('p/a\n\n');
    expect(await ctl('get', 'p/', '--prefix', '--sort-by', 'VALUE', '--order', 'ASCEND', '--print-value-only')).toBe('newer\nv-p/b\nv-p/c\n');
  });

  it('--rev reads history', async () => {
    await ctl('put', 'h', 'one');
    const rev = JSON.parse(await ctl('get', 'h', '-w', 'json')).header.revision as number;
    await ctl('put', 'h', 'two');
    expect(await ctl('get', 'h', '--rev', String(rev), '--print-value-only')).toBe('one\n');
    expect(await ctl('get', 'h', '--print-value-only')).toBe('two\n');
  });

  it('del with --prefix and --prev-kv; deleting nothing does not bump the revision', async () => {
    for (const k of ['d/1', 'd/2', 'd/3']) await ctl('put', k, 'x');
    expect(await ctl('del', 'd/1', '--prev-kv')).toBe('1\nd/1\nx\n');
    expect(await ctl('del', 'd/', '--prefix')).toBe('2\n');
    const before = JSON.parse(await ctl('get', 'd', '-w', 'json')).header.revision;
    expect(await ctl('del', 'nothing-here')).toBe('0\n');
    const after = JSON.parse(await ctl('get', 'd', '-w', 'json')).header.revision;
    expect(after).toBe(before);
  });

  it('txn on stdin (interactive mode)', async () => {
    await ctl('put', 'tx', 'old');
    const input = 'value("tx") = "old"\n\nput tx new\nput tx2 created\n\nput tx failed\n\n';
    const out = await ctlOk(ep, ['txn', '-i'], input);
    expect(out).toContain('SUCCESS');
    expect(await ctl('get', 'tx', '--print-value-only')).toBe('new\n');
    expect(await ctl('get', 'tx2', '--print-value-only')).toBe('created\n');
    const out2 = await ctlOk(ep, ['txn'], 'value("tx") = "old"\n\nput tx x\n\nget tx\n\n');
    expect(out2).toBe('FAILURE\n\ntx\nnew\n');
    const out3 = await ctlOk(ep, ['txn'], 'mod("tx") > "0"\nversion("tx") = "2"\ncreate("tx") > "0"\n\ndel tx2\n\n\n');
    expect(out3).toBe('SUCCESS\n\n1\n');
  });

  it('compaction: old revisions are gone with etcd\'s error, current data stays', async () => {
    await ctl('put', 'c', '1');
    const r1 = JSON.parse(await ctl('get', 'c', '-w', 'json')).header.revision as number;
    await ctl('put', 'c', '2');
    await ctl('put', 'c', '3');
    const r3 = JSON.parse(await ctl('get', 'c', '-w', 'json')).header.revision as number;
    expect(await ctl('compaction', String(r3))).toBe(`compacted revision ${r3}\n`);
    const bad = await etcdctl(ep, ['get', 'c', '--rev', String(r1)]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('etcdserver: mvcc: required revision has been compacted');
    const future = await etcdctl(ep, ['get', 'c', '--rev', String(r3 + 1000)]);
    expect(future.stderr).toContain('etcdserver: mvcc: required revision is a future revision');
    expect(await ctl('get', 'c', '--print-value-only')).toBe('3\n');
    expect(await ctl('get', 'foo', '--print-value-only')).toBe('baz\n');
    const again = await etcdctl(ep, ['compaction', String(r3)]);
    expect(again.stderr).toContain('etcdserver: mvcc: required revision has been compacted');
  });

  it('bad input gets etcd\'s errors and the server keeps serving', async () => {
    const empty = await etcdctl(ep, ['put', '', 'v']);
    expect(empty.stderr).toContain('etcdserver: key is not provided');
    const big = await etcdctl(ep, ['put', 'big'], 'x'.repeat(1600 * 1024));
    expect(big.stderr).toContain('etcdserver: request is too large');
    const noLease = await etcdctl(ep, ['put', 'x', 'y', '--lease=123']);
    expect(noLease.stderr).toContain('etcdserver: requested lease not found');
    const ignore = await etcdctl(ep, ['put', 'nokey', '--ignore-value']);
    expect(ignore.stderr).toContain('etcdserver: key not found');
    expect(await ctl('get', 'foo', '--print-value-only')).toBe('baz\n');
  });

  it('endpoint status, health, hashkv and member list', async () => {
    const st = JSON.parse(await ctl('endpoint', 'status', '-w', 'json'));
    expect(st[0].Endpoint).toBe(ep);
    expect(st[0].Status.version).toMatch(/^3\.\d+\.\d+$/);
    expect(st[0].Status.leader).toBe(st[0].Status.header.member_id);
    expect(st[0].Status.raftIndex).toBeGreaterThan(0);
    expect(st[0].Status.dbSize).toBeGreaterThan(0);
    const table = await ctl('endpoint', 'status', '-w', 'table');
    expect(table).toMatch(/IS LEADER/);
    expect(table).toMatch(/\|\s+true\s+\|/);
    const health = await etcdctl(ep, ['endpoint', 'health']);
    expect(health.stdout + health.stderr).toMatch(/is healthy: successfully committed proposal/);
    const hk = JSON.parse(await ctl('endpoint', 'hashkv', '-w', 'json'));
    expect(hk[0].HashKV.hash).toBeGreaterThan(0);
    const ml = await ctl('member', 'list');
    expect(ml).toMatch(/^[0-9a-f]+, started, infra0, http:\/\/127\.0\.0\.1:\d+, http:\/\/127\.0\.0\.1:\d+, false\n$/);
    const mlj = JSON.parse(await ctl('member', 'list', '-w', 'json'));
    expect(mlj.members).toHaveLength(1);
  });
});
