import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd3, EtcdLeaseInvalidError, GRPCOutOfRangeError, GRPCInvalidArgumentError } from 'etcd3';
import { singleNode, stopAll, type Member } from './harness.js';

// The npm etcd3 client, unchanged, against a tsetcd process.

let m: Member;
let client: Etcd3;

beforeAll(async () => {
  m = await singleNode();
  client = new Etcd3({ hosts: m.clientUrl });
});
afterAll(async () => {
  client?.close();
  await stopAll();
});

describe('npm etcd3 client against tsetcd', () => {
  it('put, get, getAll with prefix/limit/sort/count/keys', async () => {
    await client.put('a/1').value('one');
    await client.put('a/2').value('two');
    await client.put('a/3').value('three');
    expect(await client.get('a/1').string()).toBe('one');
    expect(await client.get('missing').string()).toBeNull();
    expect(await client.getAll().prefix('a/').strings()).toEqual({ 'a/1': 'one', 'a/2': 'two', 'a/3': 'three' });
    expect(await client.getAll().prefix('a/').limit(2).keys()).toEqual(['a/1', 'a/2']);
    expect(await client.getAll().prefix('a/').sort('Key', 'Descend').keys()).toEqual(['a/3', 'a/2', 'a/1']);
    expect(await client.getAll().prefix('a/').count()).toBe(3);
    const raw = await client.getAll().prefix('a/').exec();
    expect(raw.count).toBe('3');
    expect(raw.kvs[0]!.version).toBe('1');
  });

  it('count_only and keys_only over raw gRPC fields', async () => {
    const res = await client.kv.range({ key: Buffer.from('a/'), range_end: Buffer.from('a0'), count_only: true });
    expect(res.count).toBe('3');
    expect(res.kvs).toHaveLength(0);
    const keysOnly = await client.kv.range({ key: Buffer.from('a/'), range_end: Buffer.from('a0'), keys_only: true });
    expect(keysOnly.kvs.map((kv) => kv.value.length)).toEqual([0, 0, 0]);
  });

  it('delete with prev kv, txn via if/then/else', async () => {
    const del = await client.delete().key('a/1').getPrevious();
    expect(del.map((kv) => kv.value.toString())).toEqual(['one']);
    const t = await client.if('a/2', 'Value', '==', 'two').then(client.put('a/2').value('2')).else(client.put('a/x').value('no')).commit();
    expect(t.succeeded).toBe(true);
    expect(await client.get('a/2').string()).toBe('2');
    const f = await client.if('a/2', 'Version', '>', 10).then(client.put('z').value('bad')).else(client.get('a/2')).commit();
    expect(f.succeeded).toBe(false);
    expect(f.responses[0]!.response_range!.kvs[0]!.value.toString()).toBe('2');
  });

  it('a compacted revision gives etcd\'s OutOfRange error class', async () => {
    const first = await client.put('cmp').value('1').exec();
    await client.put('cmp').value('2');
    const last = await client.put('cmp').value('3').exec();
    await client.kv.compact({ revision: last.header.revision, physical: true });
    const err = await client.get('cmp').revision(first.header.revision).string().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GRPCOutOfRangeError);
    expect((err as Error).message).toContain('required revision has been compacted');
  });

  it('an unknown lease gives EtcdLeaseInvalidError; a real lease works', async () => {
    const err = await client.put('leased').value('v').lease('123456').exec().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdLeaseInvalidError);
    const lease = client.lease(10, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put('leased').value('v');
    expect(await client.get('leased').string()).toBe('v');
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    expect(Number(ttl.TTL)).toBeGreaterThan(5);
    expect(ttl.grantedTTL).toBe('10');
    expect(ttl.keys.map((k) => k.toString())).toEqual(['leased']);
    const once = await lease.keepaliveOnce();
    expect(once.TTL).toBe('10');
    await lease.revoke();
    expect(await client.get('leased').string()).toBeNull();
    const gone = await client.leaseClient.leaseTimeToLive({ ID: id });
    expect(gone.TTL).toBe('-1');
    const revokeErr = await client.leaseClient.leaseRevoke({ ID: id }).catch((e: unknown) => e);
    expect(revokeErr).toBeInstanceOf(EtcdLeaseInvalidError);
    expect(id).toMatch(/^\d+$/);
  });

  it('empty key gives InvalidArgument with etcd\'s message', async () => {
    const err = await client.put('').value('v').exec().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GRPCInvalidArgumentError);
    expect((err as Error).message).toContain('etcdserver: key is not provided');
  });
});
