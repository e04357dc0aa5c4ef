import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Backend } from '../../../src/backend/backend.js';
import { Bucket } from '../../../src/backend/buckets.js';
import {
  ErrCompacted,
  ErrFutureRev,
  ErrKeyNotFound,
  ErrLeaseNotFound,
} from '../../../src/mvcc/errors.js';
import { MvccStore } from '../../../src/mvcc/store.js';
import {
  CompareResult,
  CompareTarget,
  EventType,
  SortOrder,
  SortTarget,
  type RangeRequest,
  type TxnRequest,
} from '../../../src/mvcc/types.js';
import { b, kvView, makeHarness, type Harness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await makeHarness();
});
afterEach(async () => {
  await h.close();
});

const put = (key: string, value: string, extra: Record<string, unknown> = {}) =>
  h.store.put({ key: b(key), value: b(value), ...extra }, h.ri());
const del = (key: string, rangeEnd?: string, prevKv = false) =>
  h.store.deleteRange({ key: b(key), ...(rangeEnd !== undefined ? { rangeEnd: b(rangeEnd) } : {}), prevKv }, h.ri());
const get = async (req: Partial<RangeRequest> & { key: Buffer }) => h.store.range(req);
const keysOf = (r: { kvs: Array<{ key: Buffer }> }) => r.kvs.map((kv) => kv.key.toString());

describe('revisions and versions', () => {
  it('starts at revision 1; the first write is revision 2', async () => {
    expect(h.store.currentRevision).toBe(1);
    expect(h.store.compactRevision).toBe(-1);
    expect(h.store.consistentIndex).toBe(0);
    expect(put('a', '1').revision).toBe(2);
    const r = await get({ key: b('a') });
    expect(r.revision).toBe(2);
    expect(kvView(r.kvs[0]!)).toEqual({ key: 'a', value: '1', create: 2, mod: 2, ver: 1, lease: 0n });
  });

  it('every put bumps revision and version, even with the same value', async () => {
    put('a', 'x');
    put('a', 'x');
    put('b', 'y');
    put('a', 'x');
    const r = await get({ key: b('a') });
    expect(kvView(r.kvs[0]!)).toMatchObject({ create: 2, mod: 5, ver: 3 });
    expect(r.revision).toBe(5);
  });

  it('delete resets the version; re-creation gets a new create_revision', async () => {
    put('a', '1'); // 2
    put('a', '2'); // 3
    expect(del('a').revision).toBe(4);
    expect((await get({ key: b('a') })).kvs).toEqual([]);
    put('a', '3'); // 5
    expect(kvView((await get({ key: b('a') })).kvs[0]!)).toMatchObject({ create: 5, mod: 5, ver: 1, value: '3' });
  });

  it('a delete that deletes nothing does not bump the revision', () => {
    put('a', '1');
    const r = del('zzz');
    expect(r).toEqual({ revision: 2, deleted: 0, prevKvs: [] });
    expect(h.store.currentRevision).toBe(2);
  });

  it('a txn uses one revision with sub-revisions; read-only or no-op txns do not bump', async () => {
    put('x', '0'); // 2
    const res = await h.store.txn(
      {
        success: [
          { requestPut: { key: b('a'), value: b('1') } },
          { requestPut: { key: b('b'), value: b('2') } },
          { requestDeleteRange: { key: b('x') } },
        ],
      },
      h.ri(),
    );
    expect(res.revision).toBe(3);
    expect(h.store.currentRevision).toBe(3);
    const all = await get({ key: b('\0'), rangeEnd: b('\0') });
    expect(all.kvs.map(kvView)).toEqual([
      { key: 'a', value: '1', create: 3, mod: 3, ver: 1, lease: 0n },
      { key: 'b', value: '2', create: 3, mod: 3, ver: 1, lease: 0n },
    ]);
    // Sub-revisions are 0,1,2 in the backend, the tombstone marked.
    const revKeys: string[] = [];
    for await (const [k] of h.backend.iterate(Bucket.Key)) revKeys.push(k.toString('hex'));
    expect(revKeys.slice(1)).toEqual([
      '0000000000000003' + '5f' + '0000000000000000',
      '0000000000000003' + '5f' + '0000000000000001',
      '0000000000000003' + '5f' + '0000000000000002' + '74',
    ]);
    const ro = await h.store.txn({ success: [{ requestRange: { key: b('a') } }] }, h.ri());
    expect(ro.revision).toBe(3);
    const noop = await h.store.txn(
      { compare: [{ key: b('a'), target: CompareTarget.VALUE, result: CompareResult.EQUAL, value: b('nope') }], success: [{ requestPut: { key: b('a'), value: b('z') } }] },
      h.ri(),
    );
    expect(noop).toEqual({ revision: 3, succeeded: false, responses: [] });
    expect(h.store.currentRevision).toBe(3);
  });
});

describe('range', () => {
  beforeEach(() => {
    for (const k of ['a', 'ab', 'abc', 'b', 'c\xff', 'd']) put(k, `v-${k}`);
  });

  it('single key, prefix, from-key and all-keys range_end conventions', async () => {
    expect(keysOf(await get({ key: b('ab') }))).toEqual(['ab']);
    expect(keysOf(await get({ key: b('nope') }))).toEqual([]);
    expect(keysOf(await get({ key: b('a'), rangeEnd: b('b') }))).toEqual(['a', 'ab', 'abc']);
    expect(keysOf(await get({ key: b('ab'), rangeEnd: b('\0') }))).toEqual(['ab', 'abc', 'b', 'c\xff', 'd']);
    expect(keysOf(await get({ key: b('\0'), rangeEnd: b('\0') }))).toEqual(['a', 'ab', 'abc', 'b', 'c\xff', 'd']);
    expect(keysOf(await get({ key: b('d'), rangeEnd: b('a') }))).toEqual([]);
    // keys compare as raw bytes: "c\xff" (utf8 c3 bf) sorts after "c"
    expect(keysOf(await get({ key: b('c'), rangeEnd: b('d') }))).toEqual(['c\xff']);
  });

  it('limit sets more; count is the full count and ignores limit', async () => {
    const r = await get({ key: b('a'), rangeEnd: b('\0'), limit: 2 });
    expect(keysOf(r)).toEqual(['a', 'ab']);
    expect(r.more).toBe(true);
    expect(r.count).toBe(6);
    const exact = await get({ key: b('a'), rangeEnd: b('b'), limit: 3 });
    expect(exact.more).toBe(false);
    expect(exact.count).toBe(3);
    const neg = await get({ key: b('a'), rangeEnd: b('\0'), limit: -1 });
    expect(neg.kvs.length).toBe(6);
  });

  it('count_only and keys_only', async () => {
    const c = await get({ key: b('a'), rangeEnd: b('\0'), countOnly: true, limit: 1 });
    expect(c).toEqual({ revision: 7, kvs: [], more: false, count: 6 });
    const k = await get({ key: b('a'), rangeEnd: b('b'), keysOnly: true });
    expect(k.kvs.map(kvView)).toEqual([
      { key: 'a', value: '', create: 2, mod: 2, ver: 1, lease: 0n },
      { key: 'ab', value: '', create: 3, mod: 3, ver: 1, lease: 0n },
      { key: 'abc', value: '', create: 4, mod: 4, ver: 1, lease: 0n },
    ]);
  });

  it('sorts by every target in both orders, before applying the limit', async () => {
    put('b', 'zzz'); // b: version 2, mod 8
    put('b', 'a'); // b: version 3, mod 9, value "a"
    const all = { key: b('\0'), rangeEnd: b('\0') };
    const sorted = async (target: SortTarget, order: SortOrder, limit = 0) =>
      keysOf(await get({ ...all, sortTarget: target, sortOrder: order, limit }));
    expect(await sorted(SortTarget.KEY, SortOrder.DESCEND)).toEqual(['d', 'c\xff', 'b', 'abc', 'ab', 'a']);
    expect(await sorted(SortTarget.KEY, SortOrder.NONE, 2)).toEqual(['a', 'ab']);
    expect(await sorted(SortTarget.KEY, SortOrder.DESCEND, 2)).toEqual(['d', 'c\xff']);
    expect(await sorted(SortTarget.VERSION, SortOrder.DESCEND, 1)).toEqual(['b']);
    expect(await sorted(SortTarget.VERSION, SortOrder.NONE)).toEqual(['a', 'ab', 'abc', 'c\xff', 'd', 'b']); // NONE + non-KEY = ascending
    expect(await sorted(SortTarget.MOD, SortOrder.DESCEND, 3)).toEqual(['b', 'd', 'c\xff']);
    expect(await sorted(SortTarget.CREATE, SortOrder.ASCEND, 2)).toEqual(['a', 'ab']);
    expect(await sorted(SortTarget.CREATE, SortOrder.DESCEND, 2)).toEqual(['d', 'c\xff']);
    expect(await sorted(SortTarget.VALUE, SortOrder.ASCEND, 2)).toEqual(['b', 'a']); // "a" < "v-a"
    const r = await get({ ...all, sortTarget: SortTarget.MOD, sortOrder: SortOrder.ASCEND, limit: 2 });
    expect(r.more).toBe(true);
    expect(r.count).toBe(6);
  });

  it('NONE order + non-KEY target + limit sorts only the first limit+1 keys (etcd 3.4 quirk)', async () => {
    // Key order m, ma, mb; mod order mb < ma < m.
    put('mb', '');
    put('ma', '');
    put('m', '');
    const ms = { key: b('m'), rangeEnd: b('n') };
    // etcd fetches m, ma (limit + 1) in key order, sorts those two by mod: ma first.
    // Verified against etcd 3.4.23; the true minimum (mb) only comes with an explicit order.
    const implied = await get({ ...ms, sortTarget: SortTarget.MOD, limit: 1 });
    expect(keysOf(implied)).toEqual(['ma']);
    expect(implied.more).toBe(true);
    expect(implied.count).toBe(3);
    expect(keysOf(await get({ ...ms, sortTarget: SortTarget.MOD, sortOrder: SortOrder.ASCEND, limit: 1 }))).toEqual(['mb']);
    // A revision filter also makes etcd fetch everything first.
    expect(keysOf(await get({ ...ms, sortTarget: SortTarget.MOD, minModRevision: 1, limit: 1 }))).toEqual(['mb']);
    expect(keysOf(await get({ ...ms, sortTarget: SortTarget.MOD, limit: 2 }))).toEqual(['mb', 'ma']);
  });

  it('min/max mod/create revision filters; count ignores them, more reflects them', async () => {
    put('a', 'again'); // a: create 2, mod 8
    const all = { key: b('\0'), rangeEnd: b('\0') };
    expect(keysOf(await get({ ...all, minModRevision: 6 }))).toEqual(['a', 'c\xff', 'd']);
    expect(keysOf(await get({ ...all, maxModRevision: 4 }))).toEqual(['ab', 'abc']);
    expect(keysOf(await get({ ...all, minCreateRevision: 4, maxCreateRevision: 5 }))).toEqual(['abc', 'b']);
    const r = await get({ ...all, maxCreateRevision: 3, limit: 1 });
    expect(keysOf(r)).toEqual(['a']);
    expect(r.more).toBe(true);
    expect(r.count).toBe(6);
    const r2 = await get({ ...all, minCreateRevision: 7, limit: 1 });
    expect(r2.more).toBe(false);
  });

  it('reads past revisions, rejects future and compacted ones', async () => {
    put('a', 'second'); // rev 8
    del('ab'); // rev 9
    const at7 = await get({ key: b('a'), rangeEnd: b('b'), revision: 7 });
    expect(at7.revision).toBe(9);
    expect(at7.kvs.map(kvView)).toEqual([
      { key: 'a', value: 'v-a', create: 2, mod: 2, ver: 1, lease: 0n },
      { key: 'ab', value: 'v-ab', create: 3, mod: 3, ver: 1, lease: 0n },
      { key: 'abc', value: 'v-abc', create: 4, mod: 4, ver: 1, lease: 0n },
    ]);
    expect(keysOf(await get({ key: b('a'), rangeEnd: b('b'), revision: 3 }))).toEqual(['a', 'ab']);
    expect((await get({ key: b('a'), rangeEnd: b('\0'), revision: 1 })).kvs).toEqual([]);
    await expect(get({ key: b('a'), revision: 10 })).rejects.toBeInstanceOf(ErrFutureRev);
    await h.store.compact(5, h.ri());
    await expect(get({ key: b('a'), revision: 4 })).rejects.toBeInstanceOf(ErrCompacted);
    const at5 = await get({ key: b('a'), rangeEnd: b('\0'), revision: 5 });
    expect(keysOf(at5)).toEqual(['a', 'ab', 'abc', 'b']);
    expect(at5.count).toBe(4);
  });
});

describe('put options and leases', () => {
  it('prev_kv returns the previous value', () => {
    expect(put('a', '1', { prevKv: true })).toEqual({ revision: 2 });
    const r = put('a', '2', { prevKv: true });
    expect(kvView(r.prevKv!)).toEqual({ key: 'a', value: '1', create: 2, mod: 2, ver: 1, lease: 0n });
  });

  it('ignore_value keeps the value, ignore_lease keeps the lease', async () => {
    h.lessor.grant(7n);
    h.lessor.grant(8n);
    put('a', 'orig', { lease: 7n });
    h.store.put({ key: b('a'), ignoreValue: true, lease: 8n }, h.ri());
    expect(kvView((await get({ key: b('a') })).kvs[0]!)).toMatchObject({ value: 'orig', lease: 8n, ver: 2 });
    h.store.put({ key: b('a'), value: b('new'), ignoreLease: true }, h.ri());
    expect(kvView((await get({ key: b('a') })).kvs[0]!)).toMatchObject({ value: 'new', lease: 8n, ver: 3 });
    expect(h.lessor.keys(7n)).toEqual([]);
    expect(h.lessor.keys(8n)).toEqual(['a']);
  });

  it('errors: key not found for ignore_* on a missing key, lease not found (checked first)', () => {
    expect(() => h.store.put({ key: b('a'), ignoreValue: true }, h.ri())).toThrow(ErrKeyNotFound);
    expect(() => h.store.put({ key: b('a'), ignoreLease: true }, h.ri())).toThrow(ErrKeyNotFound);
    expect(() => h.store.put({ key: b('a'), value: b('v'), lease: 99n }, h.ri())).toThrow(ErrLeaseNotFound);
    expect(() => h.store.put({ key: b('a'), ignoreValue: true, lease: 99n }, h.ri())).toThrow(ErrLeaseNotFound);
    expect(h.store.currentRevision).toBe(1);
    // Failed entries still count as applied.
    expect(h.store.consistentIndex).toBe(4);
  });

  it('attaches on put, detaches on overwrite without lease and on delete', () => {
    h.lessor.grant(1n);
    put('a', '1', { lease: 1n });
    put('b', '1', { lease: 1n });
    expect(h.lessor.keys(1n)).toEqual(['a', 'b']);
    put('a', '2');
    expect(h.lessor.keys(1n)).toEqual(['b']);
    del('b');
    expect(h.lessor.keys(1n)).toEqual([]);
  });

  it('deleteKeys removes a lease\'s keys in one revision', async () => {
    put('a', '1');
    put('b', '1');
    const r = h.store.deleteKeys([b('a'), b('b'), b('missing')], h.ri());
    expect(r).toEqual({ revision: 4, deleted: 2 });
    expect(h.events.at(-1)!.events.map((e) => [e.type, e.kv.key.toString()])).toEqual([
      [EventType.DELETE, 'a'],
      [EventType.DELETE, 'b'],
    ]);
  });
});

describe('deleteRange', () => {
  it('deletes a range, returns prev_kvs and the count', () => {
    put('a', '1');
    put('b', '2');
    put('c', '3');
    const r = del('a', 'c', true);
    expect(r.revision).toBe(5);
    expect(r.deleted).toBe(2);
    expect(r.prevKvs.map(kvView)).toEqual([
      { key: 'a', value: '1', create: 2, mod: 2, ver: 1, lease: 0n },
      { key: 'b', value: '2', create: 3, mod: 3, ver: 1, lease: 0n },
    ]);
    expect(del('a', '\0').deleted).toBe(1);
  });
});

describe('txn', () => {
  const cmp = (key: string, target: CompareTarget, result: CompareResult, v: Record<string, unknown>, rangeEnd?: string) => ({
    key: b(key),
    target,
    result,
    ...v,
    ...(rangeEnd !== undefined ? { rangeEnd: b(rangeEnd) } : {}),
  });
  const succeeds = async (compare: TxnRequest['compare']) => (await h.store.txn({ compare }, h.ri())).succeeded;

  it('compares every target with every operator', async () => {
    h.lessor.grant(5n);
    put('k', 'mid'); // create 2
    put('k', 'mid', { lease: 5n }); // mod 3, version 2
    const T = CompareTarget;
    const R = CompareResult;
    expect(await succeeds([cmp('k', T.VERSION, R.EQUAL, { version: 2 })])).toBe(true);
    expect(await succeeds([cmp('k', T.VERSION, R.GREATER, { version: 1 })])).toBe(true);
    expect(await succeeds([cmp('k', T.VERSION, R.LESS, { version: 2 })])).toBe(false);
    expect(await succeeds([cmp('k', T.CREATE, R.EQUAL, { createRevision: 2 })])).toBe(true);
    expect(await succeeds([cmp('k', T.MOD, R.NOT_EQUAL, { modRevision: 3 })])).toBe(false);
    expect(await succeeds([cmp('k', T.MOD, R.LESS, { modRevision: 4 })])).toBe(true);
    expect(await succeeds([cmp('k', T.VALUE, R.EQUAL, { value: b('mid') })])).toBe(true);
    expect(await succeeds([cmp('k', T.VALUE, R.GREATER, { value: b('mia') })])).toBe(true);
    expect(await succeeds([cmp('k', T.VALUE, R.LESS, { value: b('mid') })])).toBe(false);
    expect(await succeeds([cmp('k', T.LEASE, R.EQUAL, { lease: 5n })])).toBe(true);
    expect(await succeeds([cmp('k', T.LEASE, R.GREATER, { lease: 4n })])).toBe(true);
    // Conjunction: one false compare fails the txn.
    expect(await succeeds([cmp('k', T.VERSION, R.EQUAL, { version: 2 }), cmp('k', T.LEASE, R.EQUAL, { lease: 0n })])).toBe(false);
  });

  it('a missing key compares as zero, except VALUE which always fails', async () => {
    const T = CompareTarget;
    const R = CompareResult;
    expect(await succeeds([cmp('nope', T.VERSION, R.EQUAL, { version: 0 })])).toBe(true);
    expect(await succeeds([cmp('nope', T.CREATE, R.EQUAL, {})])).toBe(true);
    expect(await succeeds([cmp('nope', T.LEASE, R.EQUAL, { lease: 0n })])).toBe(true);
    expect(await succeeds([cmp('nope', T.VALUE, R.EQUAL, { value: b('') })])).toBe(false);
    expect(await succeeds([cmp('nope', T.VALUE, R.NOT_EQUAL, { value: b('x') })])).toBe(false);
  });

  it('compare with range_end requires every key in the range to match', async () => {
    put('p/1', 'a');
    put('p/2', 'a');
    put('q', 'b');
    const T = CompareTarget;
    const R = CompareResult;
    expect(await succeeds([cmp('p/', T.VALUE, R.EQUAL, { value: b('a') }, 'p0')])).toBe(true);
    expect(await succeeds([cmp('p/', T.VALUE, R.EQUAL, { value: b('a') }, '\0')])).toBe(false);
    expect(await succeeds([cmp('p/', T.CREATE, R.LESS, { createRevision: 4 }, 'p0')])).toBe(true);
    expect(await succeeds([cmp('x/', T.VERSION, R.EQUAL, { version: 0 }, 'x0')])).toBe(true);
    expect(await succeeds([cmp('x/', T.VALUE, R.EQUAL, { value: b('') }, 'x0')])).toBe(false);
  });

  it('runs success or failure ops in order; ranges see the txn\'s earlier writes', async () => {
    put('a', '1'); // 2
    const res = await h.store.txn(
      {
        compare: [cmp('a', CompareTarget.VALUE, CompareResult.EQUAL, { value: b('1') })],
        success: [
          { requestRange: { key: b('a') } },
          { requestPut: { key: b('a'), value: b('2'), prevKv: true } },
          { requestRange: { key: b('a') } },
          { requestDeleteRange: { key: b('zz') } },
          { requestRange: { key: b('a'), revision: 2 } },
          {},
        ],
        failure: [{ requestPut: { key: b('f'), value: b('x') } }],
      },
      h.ri(),
    );
    expect(res.succeeded).toBe(true);
    expect(res.revision).toBe(3);
    const [r0, p1, r2, d3, r4, empty] = res.responses;
    expect(r0!.responseRange!.revision).toBe(2);
    expect(kvView(r0!.responseRange!.kvs[0]!).value).toBe('1');
    expect(p1!.responsePut!.revision).toBe(3);
    expect(kvView(p1!.responsePut!.prevKv!).value).toBe('1');
    expect(r2!.responseRange!.revision).toBe(3);
    expect(kvView(r2!.responseRange!.kvs[0]!)).toMatchObject({ value: '2', mod: 3, ver: 2 });
    expect(d3!.responseDeleteRange).toEqual({ revision: 3, deleted: 0, prevKvs: [] });
    expect(kvView(r4!.responseRange!.kvs[0]!)).toMatchObject({ value: '1', mod: 2 });
    expect(r4!.responseRange!.revision).toBe(3);
    expect(empty).toEqual({});
  });

  it('nested txns: all compares are evaluated against the state before the txn', async () => {
    const res = await h.store.txn(
      {
        success: [
          { requestPut: { key: b('a'), value: b('outer') } },
          {
            requestTxn: {
              // 'a' does not exist before the txn, so this holds even though the outer put ran first
              compare: [cmp('a', CompareTarget.VERSION, CompareResult.EQUAL, { version: 0 })],
              success: [{ requestPut: { key: b('b'), value: b('inner') } }, { requestRange: { key: b('a') } }],
              failure: [{ requestPut: { key: b('c'), value: b('inner-fail') } }],
            },
          },
          {
            requestTxn: {
              compare: [cmp('a', CompareTarget.VERSION, CompareResult.GREATER, { version: 0 })],
              success: [{ requestPut: { key: b('d'), value: b('no') } }],
              failure: [{ requestDeleteRange: { key: b('a'), prevKv: true } }],
            },
          },
        ],
      },
      h.ri(),
    );
    expect(res.revision).toBe(2);
    const n1 = res.responses[1]!.responseTxn!;
    expect(n1.succeeded).toBe(true);
    expect(n1.revision).toBe(0);
    expect(n1.responses[0]!.responsePut!.revision).toBe(2);
    expect(kvView(n1.responses[1]!.responseRange!.kvs[0]!).value).toBe('outer');
    const n2 = res.responses[2]!.responseTxn!;
    expect(n2.succeeded).toBe(false);
    expect(kvView(n2.responses[0]!.responseDeleteRange!.prevKvs[0]!).value).toBe('outer');
    const all = await get({ key: b('\0'), rangeEnd: b('\0') });
    expect(keysOf(all)).toEqual(['b']);
  });

  it('rejects the whole txn on a failed precondition, applying nothing', async () => {
    put('a', '1');
    const bad = (ops: TxnRequest['success']) => () => h.store.txn({ success: ops }, h.ri());
    expect(bad([{ requestPut: { key: b('x'), value: b('1') } }, { requestPut: { key: b('m'), ignoreValue: true } }])).toThrow(ErrKeyNotFound);
    expect(bad([{ requestPut: { key: b('x'), value: b('1'), lease: 42n } }])).toThrow(ErrLeaseNotFound);
    expect(bad([{ requestPut: { key: b('x'), value: b('1') } }, { requestRange: { key: b('a'), revision: 3 } }])).toThrow(ErrFutureRev);
    // ignore_value is checked before the lease of the same op inside a txn
    expect(bad([{ requestPut: { key: b('m'), ignoreValue: true, lease: 42n } }])).toThrow(ErrKeyNotFound);
    // nested ops on the chosen path are checked too
    expect(bad([{ requestTxn: { success: [{ requestPut: { key: b('m'), ignoreLease: true } }] } }])).toThrow(ErrKeyNotFound);
    expect(h.store.currentRevision).toBe(2);
    expect((await get({ key: b('x') })).kvs).toEqual([]);
    // ops on the branch not taken are not checked
    const ok = await h.store.txn({ success: [], failure: [{ requestPut: { key: b('m'), ignoreValue: true } }] }, h.ri());
    expect(ok.succeeded).toBe(true);
  });

  it('a txn range on a compacted revision fails with ErrCompacted', async () => {
    put('a', '1');
    put('a', '2');
    await h.store.compact(3, h.ri());
    expect(() => h.store.txn({ success: [{ requestRange: { key: b('a'), revision: 2 } }] }, h.ri())).toThrow(ErrCompacted);
  });

  it('returns a promise for historical reads and refuses other writes until it settles', async () => {
    put('a', '1');
    put('a', '2');
    const pending = h.store.txn(
      { success: [{ requestRange: { key: b('a'), revision: 2 } }, { requestPut: { key: b('b'), value: b('x') } }] },
      h.ri(),
    );
    expect(pending).toBeInstanceOf(Promise);
    expect(() => put('c', '1')).toThrow(/still being applied/);
    const res = await pending;
    expect(kvView(res.responses[0]!.responseRange!.kvs[0]!).value).toBe('1');
    expect(res.revision).toBe(4);
    expect(put('c', '1').revision).toBe(5);
  });

  it('rejects atomically an ignore_value put of a key an earlier from-key delete removes (etcd would panic)', async () => {
    put('b', 'old');
    expect(() =>
      h.store.txn(
        {
          success: [
            { requestTxn: { success: [{ requestDeleteRange: { key: b('a'), rangeEnd: b('\0') } }] } },
            { requestPut: { key: b('b'), ignoreValue: true } },
          ],
        },
        h.ri(),
      ),
    ).toThrow(ErrKeyNotFound);
    expect(h.store.currentRevision).toBe(2);
    expect(kvView((await get({ key: b('b') })).kvs[0]!)).toMatchObject({ value: 'old', ver: 1 });
  });

  it('a from-key delete and a put of a key inside it may share a txn (etcd quirk): delete then recreate', async () => {
    put('b', 'old');
    const res = await h.store.txn(
      { success: [{ requestDeleteRange: { key: b('a'), rangeEnd: b('\0') } }, { requestPut: { key: b('b'), value: b('new') } }] },
      h.ri(),
    );
    expect(res.revision).toBe(3);
    expect(kvView((await get({ key: b('b') })).kvs[0]!)).toMatchObject({ value: 'new', create: 3, mod: 3, ver: 1 });
    expect(kvView((await get({ key: b('b'), revision: 2 })).kvs[0]!)).toMatchObject({ value: 'old' });
    await h.store.compact(3, h.ri());
    expect(kvView((await get({ key: b('b') })).kvs[0]!)).toMatchObject({ value: 'new' });
    await h.reopen();
    expect(kvView((await get({ key: b('b') })).kvs[0]!)).toMatchObject({ value: 'new', create: 3 });
  });
});

describe('events', () => {
  it('reports PUT/DELETE events with prev kvs, one call per revision', async () => {
    put('a', '1');
    put('a', '2');
    del('nothing');
    await h.store.txn({ success: [{ requestDeleteRange: { key: b('a') } }, { requestPut: { key: b('b'), value: b('3') } }] }, h.ri());
    expect(h.events.map((e) => e.revision)).toEqual([2, 3, 4]);
    const [e1, e2, e3] = h.events;
    expect(e1!.events).toHaveLength(1);
    expect(e1!.events[0]!.type).toBe(EventType.PUT);
    expect(e1!.events[0]!.prevKv).toBeUndefined();
    expect(kvView(e2!.events[0]!.prevKv!).value).toBe('1');
    expect(e3!.events.map((e) => e.type)).toEqual([EventType.DELETE, EventType.PUT]);
    expect(kvView(e3!.events[0]!.kv)).toEqual({ key: 'a', value: '', create: 0, mod: 4, ver: 0, lease: 0n });
    expect(kvView(e3!.events[0]!.prevKv!)).toMatchObject({ value: '2', mod: 3 });
  });
});

describe('compaction', () => {
  it('validates the revision like etcd', async () => {
    put('a', '1');
    await expect(h.store.compact(3, h.ri())).rejects.toBeInstanceOf(ErrFutureRev);
    await h.store.compact(0, h.ri()); // allowed: the initial compact revision is -1
    await expect(h.store.compact(0, h.ri())).rejects.toBeInstanceOf(ErrCompacted);
    await h.store.compact(2, h.ri());
    await expect(h.store.compact(2, h.ri())).rejects.toBeInstanceOf(ErrCompacted);
    await expect(h.store.compact(1, h.ri())).rejects.toBeInstanceOf(ErrCompacted);
    expect(h.store.compactRevision).toBe(2);
  });

  it('drops superseded history and deleted keys, keeps what reads at >= rev need', async () => {
    put('a', '1'); // 2
    put('a', '2'); // 3
    put('b', '1'); // 4
    del('b'); // 5
    put('c', '1'); // 6
    del('c'); // 7
    put('a', '3'); // 8
    const before = await Promise.all([5, 6, 7, 8].map((rev) => get({ key: b('\0'), rangeEnd: b('\0'), revision: rev })));
    await h.store.compact(6, h.ri());
    const after = await Promise.all([6, 7, 8].map((rev) => get({ key: b('\0'), rangeEnd: b('\0'), revision: rev })));
    expect(after).toEqual(before.slice(1));
    await expect(get({ key: b('a'), revision: 5 })).rejects.toBeInstanceOf(ErrCompacted);
    // b's whole history is gone from the index; c still has its generation (deleted after 6)
    expect(h.store.indexedKeys).toBe(2);
    const revs: string[] = [];
    for await (const [k] of h.backend.iterate(Bucket.Key)) revs.push(`${k.readUInt32BE(4)}:${k.length === 18 ? 't' : ''}`);
    expect(revs).toEqual(['3:', '6:', '7:t', '8:']);
    await h.store.compact(8, h.ri());
    expect(h.store.indexedKeys).toBe(1);
    const revs2: string[] = [];
    for await (const [k] of h.backend.iterate(Bucket.Key)) revs2.push(String(k.readUInt32BE(4)));
    expect(revs2).toEqual(['8']);
    expect(kvView((await get({ key: b('a') })).kvs[0]!)).toEqual({ key: 'a', value: '3', create: 2, mod: 8, ver: 3, lease: 0n });
  });
});

describe('hashKV', () => {
  it('is byte-compatible with etcd 3.4 (values observed on a real etcd)', async () => {
    expect((await h.store.hashKV(0)).hash).toBe(1084519789);
    h.store.put({ key: b('a'), value: b('1') }, h.ri());
    const r = await h.store.hashKV(0);
    expect(r).toEqual({ hash: 2587454935, compactRevision: -1, hashRevision: 2, revision: 2 });
    await h.store.compact(1, h.ri());
    expect((await h.store.hashKV(0)).hash).toBe(2587454935);
    await h.store.compact(2, h.ri());
    expect(await h.store.hashKV(0)).toEqual({ hash: 2587454935, compactRevision: 2, hashRevision: 2, revision: 2 });
  });

  it('is the same for the same history and compactions regardless of batching, timing and restarts', async () => {
    const other = await makeHarness({ batchLimit: 3 });
    try {
      for (const s of [h, other]) {
        for (let i = 0; i < 20; i++) s.store.put({ key: b(`k${i % 7}`), value: b(`v${i}`) }, s.ri());
        s.store.deleteRange({ key: b('k3') }, s.ri());
      }
      const uncompacted = (await h.store.hashKV(20)).hash;
      await h.store.compact(15, h.ri());
      void other.store.compact(15, other.ri()); // not awaited: hashKV must wait for it
      await other.reopen();
      // Superseded history at or below the compact revision no longer counts (as in etcd).
      expect((await h.store.hashKV(20)).hash).not.toBe(uncompacted);
      expect((await h.store.hashKV(20)).hash).toBe((await other.store.hashKV(20)).hash);
      expect((await h.store.hashKV(0)).hash).toBe((await other.store.hashKV(0)).hash);
      expect((await h.store.hashKV(18)).hash).toBe((await other.store.hashKV(18)).hash);
      expect((await h.store.hashKV(18)).hash).not.toBe((await h.store.hashKV(19)).hash);
      await expect(h.store.hashKV(15)).rejects.toBeInstanceOf(ErrCompacted);
      await expect(h.store.hashKV(23)).rejects.toBeInstanceOf(ErrFutureRev);
    } finally {
      await other.close();
    }
  });
});

describe('consistent index and restart', () => {
  it('persists index, revision, compact revision, consistent index and values across reopen', async () => {
    h.lessor.grant(9n);
    put('a', '1');
    put('b', '2', { lease: 9n });
    put('a', '3');
    del('b');
    put('c', '4', { lease: 9n });
    await h.store.compact(3, h.ri());
    h.store.setConsistentIndex(h.ri());
    const snapshot = async () => ({
      rev: h.store.currentRevision,
      compact: h.store.compactRevision,
      ci: h.store.consistentIndex,
      keys: h.store.indexedKeys,
      now: (await get({ key: b('\0'), rangeEnd: b('\0') })).kvs.map(kvView),
      at4: (await get({ key: b('\0'), rangeEnd: b('\0'), revision: 4 })).kvs.map(kvView),
      hash: (await h.store.hashKV(0)).hash,
    });
    const before = await snapshot();
    expect(before.ci).toBe(7);
    h.lessor.leases.clear();
    h.lessor.grant(9n);
    await h.reopen();
    expect(await snapshot()).toEqual(before);
    expect(h.lessor.keys(9n)).toEqual(['c']); // re-attached on open
    expect(put('d', '5').revision).toBe(7);
  });

  it('a crash keeps data and consistent index together: both at the last commit', async () => {
    put('a', '1');
    await h.backend.forceCommit();
    const ci = h.store.consistentIndex;
    put('a', '2');
    put('b', '3');
    h.store.setConsistentIndex(h.ri());
    await h.reopen({ crash: true });
    expect(h.store.consistentIndex).toBe(ci);
    expect(h.store.currentRevision).toBe(2);
    expect((await get({ key: b('\0'), rangeEnd: b('\0') })).kvs.map(kvView)).toEqual([
      { key: 'a', value: '1', create: 2, mod: 2, ver: 1, lease: 0n },
    ]);
  });

  it('current revision survives compaction of a trailing delete', async () => {
    put('a', '1'); // 2
    del('a'); // 3
    await h.store.compact(3, h.ri());
    await h.reopen();
    expect(h.store.currentRevision).toBe(3);
    expect(h.store.indexedKeys).toBe(0);
    expect(put('a', '2').revision).toBe(4);
  });

  it('resumes a compaction interrupted by a crash', async () => {
    for (let i = 0; i < 30; i++) put(`k${i % 3}`, String(i));
    const done = h.store.compact(25, h.ri());
    await h.backend.forceCommit(); // the schedule mark is durable, the deletions are not
    await h.backend.abandon();
    await done.catch(() => {});
    await h.store.close();
    await h.reopen();
    expect(h.store.compactRevision).toBe(25);
    expect(await h.backend.get(Bucket.Meta, b('finishedCompactRev'))).toBeDefined();
    const revs: number[] = [];
    for await (const [k] of h.backend.iterate(Bucket.Key)) revs.push(k.readUInt32BE(4));
    expect(revs).toEqual([23, 24, 25, 26, 27, 28, 29, 30, 31]);
    // Same hash as a store that compacted without crashing.
    const clean = await makeHarness();
    try {
      for (let i = 0; i < 30; i++) clean.store.put({ key: b(`k${i % 3}`), value: b(String(i)) }, clean.ri());
      await clean.store.compact(25, clean.ri());
      expect((await h.store.hashKV(0)).hash).toBe((await clean.store.hashKV(0)).hash);
    } finally {
      await clean.close();
    }
  });

  it('a backend snapshot restored elsewhere reopens to the same store (Raft snapshot transfer)', async () => {
    put('a', '1');
    put('b', '2');
    del('a');
    await h.store.compact(3, h.ri());
    put('c', '3'); // still pending in the batch: snapshots include it
    const want = await h.store.hashKV(0);
    const dst = path.join(h.dir, 'restored');
    await Backend.restoreSnapshot(dst, h.backend.snapshot());
    const be = await Backend.open(dst);
    try {
      const st = await MvccStore.open(be);
      expect(await st.hashKV(0)).toEqual(want);
      expect([st.currentRevision, st.compactRevision, st.consistentIndex]).toEqual([
        h.store.currentRevision,
        h.store.compactRevision,
        h.store.consistentIndex,
      ]);
      expect(keysOf(await st.range({ key: b('\0'), rangeEnd: b('\0') }))).toEqual(['b', 'c']);
    } finally {
      await be.close();
    }
  });

  it('refuses out-of-order raft indexes; index 0 is "not from raft"', () => {
    put('a', '1');
    put('a', '2');
    const ci = h.store.consistentIndex;
    expect(() => h.store.put({ key: b('a'), value: b('x') }, ci - 1)).toThrow(/applied after/);
    h.store.put({ key: b('a'), value: b('x') }, 0);
    expect(h.store.consistentIndex).toBe(ci);
  });
});
