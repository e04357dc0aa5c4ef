// Model-based test: random sequences of put / delete / txn / compact / range (and
// restarts) run against the real store and against a deliberately naive model — a
// flat list of every version ever written, re-scanned for every read — and must give
// identical responses: revisions, versions, kvs, more, count, errors, and events.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backend } from '../../../src/backend/backend.js';
import { ErrCompacted, ErrFutureRev, ErrKeyNotFound, ErrLeaseNotFound } from '../../../src/mvcc/errors.js';
import { MvccStore } from '../../../src/mvcc/store.js';
import {
  type Compare,
  CompareResult,
  CompareTarget,
  type DeleteRangeRequest,
  EventType,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  SortOrder,
  SortTarget,
  type TxnRequest,
} from '../../../src/mvcc/types.js';
import { validateTxn } from '../../../src/mvcc/validate.js';
import { FakeLessor } from './helpers.js';

// ------------------------------------------------------------------ model

interface MKv {
  key: string; // latin1: string order == byte order
  value: string;
  create: number;
  mod: number;
  ver: number;
  lease: bigint;
}

interface MVersion {
  key: string;
  rev: number;
  kv: MKv | null; // null = tombstone
}

const GRANTED_LEASES = [1n, 2n];

class Model {
  versions: MVersion[] = [];
  rev = 1;
  compacted = -1;
  events: unknown[] = [];
  private txRev = 0;
  private txChanges = 0;
  private txEvents: unknown[] = [];

  stateAt(rev: number): Map<string, MKv> {
    const m = new Map<string, MKv>();
    for (const v of this.versions) {
      if (v.rev > rev) break;
      if (v.kv === null) m.delete(v.key);
      else m.set(v.key, v.kv);
    }
    return m;
  }

  // --- writes: a "transaction" frame around every write request
  private begin(): void {
    this.txRev = this.rev;
    this.txChanges = 0;
    this.txEvents = [];
  }
  private end(): void {
    if (this.txChanges > 0) {
      this.rev = this.txRev + 1;
      this.events.push({ revision: this.rev, events: this.txEvents });
    }
  }
  private viewRev(): number {
    return this.txChanges > 0 ? this.txRev + 1 : this.txRev;
  }

  put(req: PutRequest): unknown {
    const lease = req.lease ?? 0n;
    if (lease !== 0n && !GRANTED_LEASES.includes(lease)) throw new ErrLeaseNotFound();
    const k = req.key.toString('latin1');
    if ((req.ignoreValue || req.ignoreLease) && !this.stateAt(this.rev).has(k)) throw new ErrKeyNotFound();
    this.begin();
    const r = this.doPut(req);
    this.end();
    return r;
  }

  private doPut(req: PutRequest): unknown {
    const k = req.key.toString('latin1');
    const prev = this.stateAt(this.viewRev()).get(k);
    if ((req.ignoreValue || req.ignoreLease) && prev === undefined) throw new ErrKeyNotFound();
    const rev = this.txRev + 1;
    const kv: MKv = {
      key: k,
      value: req.ignoreValue ? prev!.value : (req.value ?? Buffer.alloc(0)).toString('latin1'),
      create: prev ? prev.create : rev,
      mod: rev,
      ver: prev ? prev.ver + 1 : 1,
      lease: req.ignoreLease ? prev!.lease : (req.lease ?? 0n),
    };
    this.versions.push({ key: k, rev, kv });
    this.txChanges++;
    this.txEvents.push({ type: EventType.PUT, kv, prevKv: prev });
    return { revision: rev, prevKv: req.prevKv ? prev : undefined };
  }

  deleteRange(req: DeleteRangeRequest): unknown {
    this.begin();
    const r = this.doDelete(req);
    this.end();
    return r;
  }

  private doDelete(req: DeleteRangeRequest): unknown {
    const state = this.stateAt(this.viewRev());
    const victims = [...state.values()].filter((kv) => inRange(kv.key, req.key, req.rangeEnd)).sort(byKey);
    if (victims.length === 0) return { revision: this.viewRev(), deleted: 0, prevKvs: [] };
    const rev = this.txRev + 1;
    for (const prev of victims) {
      this.versions.push({ key: prev.key, rev, kv: null });
      this.txChanges++;
      this.txEvents.push({
        type: EventType.DELETE,
        kv: { key: prev.key, value: '', create: 0, mod: rev, ver: 0, lease: 0n },
        prevKv: prev,
      });
    }
    return { revision: rev, deleted: victims.length, prevKvs: req.prevKv ? victims : [] };
  }

  range(req: RangeRequest, curRev = this.rev): unknown {
    let rev = req.revision ?? 0;
    if (rev > curRev) throw new ErrFutureRev();
    if (rev <= 0) rev = curRev;
    if (rev < this.compacted) throw new ErrCompacted();
    let kvs = [...this.stateAt(rev).values()].filter((kv) => inRange(kv.key, req.key, req.rangeEnd)).sort(byKey);
    const count = kvs.length;
    if (req.countOnly) kvs = [];
    const f = (n: number | undefined) => n ?? 0;
    kvs = kvs.filter(
      (kv) =>
        (f(req.maxModRevision) === 0 || kv.mod <= f(req.maxModRevision)) &&
        (f(req.minModRevision) === 0 || kv.mod >= f(req.minModRevision)) &&
        (f(req.maxCreateRevision) === 0 || kv.create <= f(req.maxCreateRevision)) &&
        (f(req.minCreateRevision) === 0 || kv.create >= f(req.minCreateRevision)),
    );
    const target = req.sortTarget ?? SortTarget.KEY;
    let order = req.sortOrder ?? SortOrder.NONE;
    // etcd 3.4 quirk (etcdserver/apply.go, applierV3backend.Range): it fetches every
    // key only when sort_order != NONE or a revision filter is set. Otherwise — even
    // when a non-KEY sort_target implies an ascending sort — it fetches just the first
    // `limit + 1` keys in key order (the extra one to learn `more`), sorts those, and
    // then truncates to `limit`. So {sort_target: MOD, limit: 1} over a, b, ba with
    // mod revisions 5, 4, 2 returns b, not ba (checked against etcd 3.4.23); an
    // explicit ASCEND returns ba.
    const fetchAll =
      order !== SortOrder.NONE ||
      [req.minModRevision, req.maxModRevision, req.minCreateRevision, req.maxCreateRevision].some((n) => f(n) !== 0);
    if (!fetchAll && f(req.limit) > 0) kvs = kvs.slice(0, f(req.limit) + 1);
    if (target !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND;
    if (order !== SortOrder.NONE) {
      const field = (kv: MKv): number | string =>
        target === SortTarget.KEY ? kv.key : target === SortTarget.VERSION ? kv.ver : target === SortTarget.CREATE ? kv.create : target === SortTarget.MOD ? kv.mod : kv.value;
      const cmp = (a: MKv, b: MKv) => (field(a) < field(b) ? -1 : field(a) > field(b) ? 1 : 0);
      kvs = [...kvs].sort(order === SortOrder.ASCEND ? cmp : (a, b) => cmp(b, a));
    }
    let more = false;
    const limit = req.limit ?? 0;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    if (req.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: '' }));
    return { revision: curRev, kvs, more, count };
  }

  compact(rev: number): void {
    if (rev <= this.compacted) throw new ErrCompacted();
    if (rev > this.rev) throw new ErrFutureRev();
    this.compacted = rev;
  }

  txn(req: TxnRequest): unknown {
    const before = this.stateAt(this.rev);
    const path: boolean[] = [];
    const evalPath = (t: TxnRequest): void => {
      const ok = (t.compare ?? []).every((c) => compareHolds(c, before));
      path.push(ok);
      for (const op of (ok ? t.success : t.failure) ?? []) if (op.requestTxn) evalPath(op.requestTxn);
    };
    evalPath(req);
    // Walk the chosen ops (pre-order, matching `path`).
    const walk = (t: TxnRequest, pos: { i: number }, visit: (op: RequestOp) => void): void => {
      const ok = path[pos.i++]!;
      for (const op of (ok ? t.success : t.failure) ?? []) {
        if (op.requestTxn) walk(op.requestTxn, pos, visit);
        else visit(op);
      }
    };
    const readOnly = [...(req.success ?? []), ...(req.failure ?? [])].every((op) => op.requestRange !== undefined);
    if (!readOnly) {
      walk(req, { i: 0 }, (op) => {
        const p = op.requestPut;
        if (!p) return;
        if ((p.ignoreValue || p.ignoreLease) && !before.has(p.key.toString('latin1'))) throw new ErrKeyNotFound();
        if ((p.lease ?? 0n) !== 0n && !GRANTED_LEASES.includes(p.lease!)) throw new ErrLeaseNotFound();
      });
    }
    walk(req, { i: 0 }, (op) => {
      const r = op.requestRange;
      if (!r || (r.revision ?? 0) === 0) return;
      if (r.revision! > this.rev) throw new ErrFutureRev();
      if (r.revision! < this.compacted) throw new ErrCompacted();
    });
    this.begin();
    const apply = (t: TxnRequest, pos: { i: number }, nestedRevision: number): unknown => {
      const ok = path[pos.i++]!;
      const responses: unknown[] = [];
      for (const op of (ok ? t.success : t.failure) ?? []) {
        if (op.requestRange) responses.push({ responseRange: this.range(op.requestRange, this.viewRev()) });
        else if (op.requestPut) responses.push({ responsePut: this.doPut(op.requestPut) });
        else if (op.requestDeleteRange) responses.push({ responseDeleteRange: this.doDelete(op.requestDeleteRange) });
        else if (op.requestTxn) responses.push({ responseTxn: apply(op.requestTxn, pos, 0) });
        else responses.push({});
      }
      return { revision: nestedRevision, succeeded: ok, responses };
    };
    // A txn either applies completely or not at all: an ignore_* put whose key an
    // earlier op of the same txn deleted fails the whole txn.
    const versionsBefore = this.versions.length;
    try {
      const out = apply(req, { i: 0 }, -1) as { revision: number };
      out.revision = this.viewRev();
      this.end();
      return out;
    } catch (err) {
      this.versions.length = versionsBefore;
      throw err;
    }
  }
}

function inRange(k: string, key: Buffer, end: Buffer | undefined): boolean {
  const from = key.toString('latin1');
  if (end === undefined || end.length === 0) return k === from;
  if (end.length === 1 && end[0] === 0) return k >= from;
  return k >= from && k < end.toString('latin1');
}

function byKey(a: MKv, b: MKv): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function compareHolds(c: Compare, state: Map<string, MKv>): boolean {
  const kvs = [...state.values()].filter((kv) => inRange(kv.key, c.key, c.rangeEnd));
  if (kvs.length === 0) {
    if (c.target === CompareTarget.VALUE) return false;
    return compareOne(c, { key: '', value: '', create: 0, mod: 0, ver: 0, lease: 0n });
  }
  return kvs.every((kv) => compareOne(c, kv));
}

function compareOne(c: Compare, kv: MKv): boolean {
  const sign = (a: number | bigint | string, b: number | bigint | string) => (a < b ? -1 : a > b ? 1 : 0);
  const r =
    c.target === CompareTarget.VALUE
      ? sign(kv.value, (c.value ?? Buffer.alloc(0)).toString('latin1'))
      : c.target === CompareTarget.CREATE
        ? sign(kv.create, c.createRevision ?? 0)
        : c.target === CompareTarget.MOD
          ? sign(kv.mod, c.modRevision ?? 0)
          : c.target === CompareTarget.VERSION
            ? sign(kv.ver, c.version ?? 0)
            : sign(kv.lease, c.lease ?? 0n);
  switch (c.result) {
    case CompareResult.EQUAL:
      return r === 0;
    case CompareResult.NOT_EQUAL:
      return r !== 0;
    case CompareResult.GREATER:
      return r > 0;
    case CompareResult.LESS:
      return r < 0;
  }
}

// ------------------------------------------------------- normalisation

/** Turn store results (Buffers, KeyValue objects) into the model's plain shapes. */
function norm(x: unknown): unknown {
  if (x === undefined || x === null) return undefined;
  if (Buffer.isBuffer(x)) return x.toString('latin1');
  if (Array.isArray(x)) return x.map(norm);
  if (typeof x === 'object') {
    const o = x as Record<string, unknown>;
    if ('createRevision' in o && 'modRevision' in o) {
      return {
        key: (o.key as Buffer).toString('latin1'),
        value: (o.value as Buffer).toString('latin1'),
        create: o.createRevision,
        mod: o.modRevision,
        ver: o.version,
        lease: o.lease,
      };
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      const n = norm(v);
      if (n !== undefined) out[k] = n;
    }
    return out;
  }
  return x;
}

// ---------------------------------------------------------- generators

const KEYS = ['a', 'aa', 'ab', 'b', 'ba', 'c', '\xff'];
const key = fc.constantFrom(...KEYS).map((k) => Buffer.from(k, 'latin1'));
const rangeEnd = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant(Buffer.from([0])) },
  { weight: 2, arbitrary: key },
  { weight: 1, arbitrary: fc.constant(Buffer.from('b\x00', 'latin1')) },
);
const value = fc.constantFrom('', 'x', 'y', 'zz').map((v) => Buffer.from(v));
const lease = fc.constantFrom(0n, 0n, 0n, 1n, 2n, 99n);
const revision = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: -1, max: 30 }) });
const small = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 25 }) });

const rarely = fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

const putReq: fc.Arbitrary<PutRequest> = fc
  .record({
    key,
    value,
    lease,
    prevKv: fc.boolean(),
    ignoreValue: rarely,
    ignoreLease: rarely,
  })
  .map((r) => ({
    ...r,
    value: r.ignoreValue ? Buffer.alloc(0) : r.value,
    lease: r.ignoreLease ? 0n : r.lease,
  }));
const deleteReq: fc.Arbitrary<DeleteRangeRequest> = fc.record({ key, rangeEnd, prevKv: fc.boolean() });
const rangeReq: fc.Arbitrary<RangeRequest> = fc.record({
  key,
  rangeEnd,
  limit: fc.integer({ min: -1, max: 4 }),
  revision,
  sortOrder: fc.constantFrom(SortOrder.NONE, SortOrder.NONE, SortOrder.ASCEND, SortOrder.DESCEND),
  sortTarget: fc.constantFrom(SortTarget.KEY, SortTarget.KEY, SortTarget.VERSION, SortTarget.CREATE, SortTarget.MOD, SortTarget.VALUE),
  keysOnly: fc.boolean(),
  countOnly: rarely,
  minModRevision: small,
  maxModRevision: small,
  minCreateRevision: small,
  maxCreateRevision: small,
});
const compare: fc.Arbitrary<Compare> = fc.record({
  key,
  rangeEnd: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: rangeEnd }),
  target: fc.constantFrom(CompareTarget.VERSION, CompareTarget.CREATE, CompareTarget.MOD, CompareTarget.VALUE, CompareTarget.LEASE),
  result: fc.constantFrom(CompareResult.EQUAL, CompareResult.GREATER, CompareResult.LESS, CompareResult.NOT_EQUAL),
  version: fc.integer({ min: 0, max: 3 }),
  createRevision: fc.integer({ min: 0, max: 20 }),
  modRevision: fc.integer({ min: 0, max: 20 }),
  value,
  lease,
});
const { txn: txnReq } = fc.letrec<{ txn: TxnRequest; op: RequestOp }>((tie) => ({
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ requestRange: rangeReq }),
    fc.record({ requestPut: putReq }),
    fc.record({ requestDeleteRange: deleteReq }),
    fc.record({ requestTxn: tie('txn') as fc.Arbitrary<TxnRequest> }),
  ),
  txn: fc.record({
    compare: fc.array(compare, { maxLength: 2 }),
    success: fc.array(tie('op') as fc.Arbitrary<RequestOp>, { maxLength: 3 }),
    failure: fc.array(tie('op') as fc.Arbitrary<RequestOp>, { maxLength: 3 }),
  }),
}));

type Cmd =
  | { t: 'put'; req: PutRequest }
  | { t: 'del'; req: DeleteRangeRequest }
  | { t: 'range'; req: RangeRequest }
  | { t: 'txn'; req: TxnRequest }
  | { t: 'compact'; rev: number }
  | { t: 'reopen' };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: putReq.map((req) => ({ t: 'put' as const, req })) },
  { weight: 2, arbitrary: deleteReq.map((req) => ({ t: 'del' as const, req })) },
  { weight: 4, arbitrary: rangeReq.map((req) => ({ t: 'range' as const, req })) },
  { weight: 4, arbitrary: txnReq.map((req) => ({ t: 'txn' as const, req })) },
  { weight: 1, arbitrary: fc.integer({ min: -1, max: 30 }).map((rev) => ({ t: 'compact' as const, rev })) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
);

// ----------------------------------------------------------------- run

async function outcome(f: () => unknown): Promise<unknown> {
  try {
    return { ok: norm(await f()) };
  } catch (err) {
    if (err instanceof ErrCompacted || err instanceof ErrFutureRev || err instanceof ErrKeyNotFound || err instanceof ErrLeaseNotFound) {
      return { error: err.constructor.name };
    }
    throw err;
  }
}

async function runScenario(cmds: Cmd[]): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  const model = new Model();
  const storeEvents: unknown[] = [];
  let raftIndex = 0;
  let lessor = new FakeLessor();
  let backend: Backend | undefined;
  let store: MvccStore | undefined;
  const open = async (): Promise<void> => {
    lessor = new FakeLessor();
    for (const id of GRANTED_LEASES) lessor.grant(id);
    backend = await Backend.open(dir, { batchIntervalMs: 5, batchLimit: 7 });
    store = await MvccStore.open(backend, { leases: lessor });
    store.onEvents = (revision, events) => storeEvents.push(norm({ revision, events }));
  };
  try {
    await open();
    for (const c of cmds) {
      const s = store!;
      let got: unknown;
      let want: unknown;
      switch (c.t) {
        case 'put':
          got = await outcome(() => s.put(c.req, ++raftIndex));
          want = await outcome(() => model.put(c.req));
          break;
        case 'del':
          got = await outcome(() => s.deleteRange(c.req, ++raftIndex));
          want = await outcome(() => model.deleteRange(c.req));
          break;
        case 'range':
          got = await outcome(() => s.range(c.req));
          want = await outcome(() => model.range(c.req));
          break;
        case 'txn':
          try {
            validateTxn(c.req);
          } catch {
            continue; // the API layer rejects it before Raft; nothing to compare
          }
          got = await outcome(() => s.txn(c.req, ++raftIndex));
          want = await outcome(() => model.txn(c.req));
          break;
        case 'compact':
          got = await outcome(() => s.compact(c.rev, ++raftIndex));
          want = await outcome(() => model.compact(c.rev));
          break;
        case 'reopen':
          await s.close();
          await backend!.close();
          await open();
          expect(store!.consistentIndex).toBe(raftIndex);
          continue;
      }
      expect(got, JSON.stringify(c, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))).toEqual(want);
      expect(store!.currentRevision).toBe(model.rev);
      expect(store!.compactRevision).toBe(model.compacted);
    }
    // Every readable revision, read back in full, agrees with the model.
    const s = store!;
    for (let rev = Math.max(1, model.compacted); rev <= model.rev; rev++) {
      const req: RangeRequest = { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), revision: rev };
      expect(await outcome(() => s.range(req))).toEqual(await outcome(() => model.range(req)));
    }
    expect(storeEvents).toEqual(norm(model.events));
    // The lessor ends up with exactly the live keys that carry each lease.
    const live = model.stateAt(model.rev);
    for (const id of GRANTED_LEASES) {
      const want = [...live.values()].filter((kv) => kv.lease === id).map((kv) => kv.key).sort();
      expect([...(lessor.leases.get(id) ?? [])].map((k) => k).sort()).toEqual(want);
    }
  } finally {
    await store?.close().catch(() => {});
    await backend?.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Replaying a failure: every run picks a fresh random seed (unless MVCC_MODEL_SEED is
// set) and a failure message names it, plus the shrink path, as environment variables:
//   MVCC_MODEL_SEED=<seed> [MVCC_MODEL_PATH=<path>] npx vitest run test/unit/mvcc/model.test.ts
// MVCC_MODEL_RUNS sets the number of cases (default 150).
function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

const numRuns = envInt('MVCC_MODEL_RUNS') ?? 150;
// ~30 ms per case on a loaded 2-core machine; generous so big soak runs are not cut short.
const timeoutMs = Math.max(60_000, numRuns * 100);

describe('MvccStore vs. a naive model', () => {
  it('gives identical responses for random operation sequences', async () => {
    const seed = envInt('MVCC_MODEL_SEED') ?? (Math.random() * 2 ** 31) | 0;
    const replayPath = process.env.MVCC_MODEL_PATH || undefined;
    // Printed up front too, so even a crash or hang can be replayed.
    console.log(`mvcc model test: MVCC_MODEL_SEED=${seed} MVCC_MODEL_RUNS=${numRuns}`);
    const details = await fc.check(
      fc.asyncProperty(fc.array(cmd, { minLength: 10, maxLength: 45, size: 'max' }), (cmds) => runScenario(cmds)),
      {
        numRuns,
        seed,
        path: replayPath,
        // With a path the counterexample is already shrunk: run just it, do not shrink again.
        endOnFailure: replayPath !== undefined,
        // Stop (and report the seed) before vitest's timeout would swallow the report.
        interruptAfterTimeLimit: timeoutMs - 5_000,
        markInterruptAsFailure: true,
      },
    );
    if (!details.failed) return;
    const replay = `replay: MVCC_MODEL_SEED=${details.seed}${details.counterexamplePath ? ` MVCC_MODEL_PATH=${details.counterexamplePath}` : ''}`;
    console.error(`mvcc model test failed (seed ${details.seed}); ${replay}`);
    throw new Error(`${fc.defaultReportMessage(details)}\n${replay}`, { cause: details.errorInstance });
  }, timeoutMs);
});
