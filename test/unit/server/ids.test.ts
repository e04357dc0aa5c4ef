import { describe, expect, it } from 'vitest';
import { computeClusterId, computeMemberId, idToHex, parseHexId } from '../../../src/server/ids.js';
import { bootstrapMembers } from '../../../src/server/membership.js';
import { ConfigError } from '../../../src/cli/errors.js';
import { decodeHeader, encodeRequest, payloadOf, RequestIdGenerator, RequestKind } from '../../../src/server/request.js';
import { toRpcError } from '../../../src/api/errors.js';
import { status } from '@grpc/grpc-js';

describe('member and cluster IDs match etcd', () => {
  it('a member ID observed on real etcd 3.4.23', () => {
    // etcd --initial-advertise-peer-urls http://127.0.0.1:23800 (token etcd-cluster) reported 2e1259d415f2a040
    const id = computeMemberId(['http://127.0.0.1:23800'], 'etcd-cluster');
    expect(idToHex(id)).toBe('2e1259d415f2a040');
    expect(computeClusterId([id])).toBe(324952591200643719n);
  });

  it('IDs depend on the token and on URL order only through sorting', () => {
    const a = computeMemberId(['http://b:2380', 'http://a:2380'], 't');
    const b = computeMemberId(['http://a:2380', 'http://b:2380'], 't');
    expect(a).toBe(b);
    expect(computeMemberId(['http://a:2380'], 't1')).not.toBe(computeMemberId(['http://a:2380'], 't2'));
    expect(computeClusterId([1n, 2n])).toBe(computeClusterId([2n, 1n]));
  });

  it('hex round trip', () => {
    expect(parseHexId('8e9e05c52164694d')).toBe(0x8e9e05c52164694dn);
    expect(() => parseHexId('xyz')).toThrow(/invalid member ID/);
  });
});

describe('bootstrap membership', () => {
  const cluster = [
    { name: 'infra0', peerUrls: ['http://10.0.0.1:2380'] },
    { name: 'infra1', peerUrls: ['http://10.0.0.2:2380'] },
  ];
  it('finds the local member and computes the cluster ID', () => {
    const r = bootstrapMembers(cluster, 'etcd-cluster-1', 'infra1', ['http://10.0.0.2:2380']);
    expect(r.members).toHaveLength(2);
    expect(r.localId).toBe(computeMemberId(['http://10.0.0.2:2380'], 'etcd-cluster-1'));
    expect(r.clusterId).toBe(computeClusterId(r.members.map((m) => m.id)));
  });
  it('refuses a name missing from --initial-cluster, naming it', () => {
    expect(() => bootstrapMembers(cluster, 't', 'infra9', ['http://10.0.0.9:2380'])).toThrow(ConfigError);
    expect(() => bootstrapMembers(cluster, 't', 'infra9', ['http://10.0.0.9:2380'])).toThrow(/couldn't find local name "infra9"/);
  });
  it('refuses advertise URLs that differ from the --initial-cluster entry, naming both', () => {
    expect(() => bootstrapMembers(cluster, 't', 'infra0', ['http://1.1.1.1:2380'])).toThrow(
      /infra0=http:\/\/10\.0\.0\.1:2380.*--initial-advertise-peer-urls=http:\/\/1\.1\.1\.1:2380/,
    );
  });
});

describe('raft entry request framing', () => {
  it('round-trips kind, request id and payload', () => {
    const gen = new RequestIdGenerator(0xabcdn, 1_700_000_000_000);
    const id = gen.nextId();
    expect(Number.isSafeInteger(id)).toBe(true);
    expect(gen.nextId()).toBe(id + 1);
    const data = encodeRequest(RequestKind.Txn, id, Buffer.from('payload'));
    expect(decodeHeader(data)).toEqual({ kind: RequestKind.Txn, requestId: id });
    expect(payloadOf(data).toString()).toBe('payload');
  });
  it('different members never share request ids', () => {
    const a = new RequestIdGenerator(1n, 5);
    const b = new RequestIdGenerator(2n, 5);
    expect(a.nextId()).not.toBe(b.nextId());
  });
});

describe('error table', () => {
  it('maps internal errors to etcd codes and exact messages', () => {
    expect(toRpcError(new Error('mvcc: required revision has been compacted'))).toEqual({
      code: status.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision has been compacted',
    });
    expect(toRpcError(new Error('lease not found'))).toEqual({ code: status.NOT_FOUND, message: 'etcdserver: requested lease not found' });
    expect(toRpcError(new Error('key is not provided')).code).toBe(status.INVALID_ARGUMENT);
    expect(toRpcError(new Error('no leader'))).toEqual({ code: status.UNAVAILABLE, message: 'etcdserver: no leader' });
    expect(toRpcError(new Error('something else')).code).toBe(status.UNKNOWN);
  });
});
