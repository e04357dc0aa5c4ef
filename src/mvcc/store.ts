// The MVCC key-value store: etcd's revisioned state machine on top of the LevelDB
// backend. Semantics follow etcd 3.4 (mvcc/kvstore*.go + etcdserver/apply.go).
//
// Layout of state:
//  - Backend Key bucket: one record per revision (see revision.ts / kv_codec.ts);
//    Meta bucket: consistent index and compaction marks.
//  - Memory: a KeyTree of KeyIndex (every key's revision history + its latest value).
//
// Writes (put / deleteRange / txn / deleteKeys / compact / setConsistentIndex) are
// applied in Raft order, each tagged with the Raft index of its entry. All backend
// writes of one call — data and consistent index — are staged synchronously, so they
// land in the same backend batch (see backend.ts): after a crash the store reopens at
// a consistent index whose effects are either fully present or fully absent.
//
// Raft index 0 means "not from the Raft log" (e.g. a read-only txn served locally)
// and leaves the consistent index untouched.

import type { Backend } from '../backend/backend.js';
import { NOOP_LOGGER } from '../backend/backend.js';
import {
  Bucket,
  META_CONSISTENT_INDEX,
  META_FINISHED_COMPACT,
  META_SCHEDULED_COMPACT,
} from '../backend/buckets.js';
import { crc32c } from '../backend/crc32c.js';
import { ErrCompacted, ErrFutureRev, ErrKeyNotFound, ErrLeaseNotFound } from './errors.js';
import { KeyIndex } from './key_index.js';
import { decodeKeyValue, encodeKeyValue, encodeTombstone, lastValueOffset, makeKeyValue } from './kv_codec.js';
import {
  assertRevKey,
  compactMarkBytes,
  isTombstoneKey,
  revMainOf,
  revSubOf,
  revToBytes,
} from './revision.js';
import { KeyTree } from './tree.js';
import {
  type Compare,
  CompareResult,
  CompareTarget,
  type DeleteRangeRequest,
  type DeleteRangeResult,
  EventType,
  type HashKVResult,
  type KeyValue,
  type LeaseHooks,
  type Logger,
  type MvccEvent,
  type PutRequest,
  type PutResult,
  type RangeRequest,
  type RangeResult,
  type ResponseOp,
  SortOrder,
  SortTarget,
  type TxnRequest,
  type TxnResult,
} from './types.js';
import { isTxnReadOnly } from './validate.js';

export interface MvccStoreOptions {
  logger?: Logger;
  /** The lessor. Without it every non-zero lease is "not found". Can be set later with attachLeases(). */
  leases?: LeaseHooks;
}

const EMPTY = Buffer.alloc(0);
/** rangeEnd normalised: null = single key, TO_END = unbounded, otherwise exclusive end. */
const TO_END = Buffer.alloc(0);
const KEY_BUCKET_NAME = Buffer.from('key');
const COMPACTION_DELETE_CHUNK = 1000;
const CHECK_PUTS = 0;
const CHECK_RANGES = 1;
const CHECK_IGNORES_AFTER_DELETE = 2;

function normalizeEnd(rangeEnd: Buffer | undefined): Buffer | null {
  if (rangeEnd === undefined || rangeEnd.length === 0) return null;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return TO_END; // "\0": every key >= key
  return rangeEnd;
}

/** Whether applying delete request `d` removes `key` (real delete semantics, "\0" = to the end). */
function deleteCoversKey(d: DeleteRangeRequest, key: Buffer): boolean {
  const end = normalizeEnd(d.rangeEnd);
  if (end === null) return d.key.equals(key);
  return Buffer.compare(key, d.key) >= 0 && !pastEnd(key, end);
}

function pastEnd(key: Buffer, end: Buffer): boolean {
  return end.length > 0 && Buffer.compare(key, end) >= 0;
}

function encodeIndex(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Copy a buffer that is a small view into a much larger allocation, so caching it does not pin the allocation. */
function ownBytes(b: Buffer): Buffer {
  return b.buffer.byteLength > 2 * b.length + 8192 ? Buffer.from(b) : b;
}

export class MvccStore {
  private readonly backend: Backend;
  private readonly tree = new KeyTree();
  private readonly logger: Logger;
  private leases: LeaseHooks | undefined;

  private currentRev = 1;
  private compactRev = -1;
  private consistentIdx = 0;
  private closed = false;

  /** Set while a write is being applied (including a txn awaiting its historical reads). */
  private writing = false;
  private wBeginRev = 0;
  private wChanges = 0;
  private wEvents: MvccEvent[] = [];

  /** Physical compactions run one after another, in order. */
  private compactionTail: Promise<void> = Promise.resolve();
  private compactionsQueued = 0;

  /**
   * Called synchronously after every revision-bumping write with all of its events
   * (in order). The Watch layer hangs off this. Exceptions are logged, never propagated:
   * the write has been applied regardless.
   */
  onEvents?: (revision: number, events: MvccEvent[]) => void;

  private constructor(backend: Backend, opts: MvccStoreOptions) {
    this.backend = backend;
    this.logger = opts.logger ?? NOOP_LOGGER;
    this.leases = opts.leases;
  }

  /** Open the store on `backend`, rebuilding the in-memory index from it. */
  static async open(backend: Backend, opts: MvccStoreOptions = {}): Promise<MvccStore> {
    const store = new MvccStore(backend, opts);
    await store.restore();
    return store;
  }

  /** The revision of the last write (1 for an empty store). */
  get currentRevision(): number {
    return this.currentRev;
  }

  /** The last compaction revision (-1 if never compacted, as in etcd). */
  get compactRevision(): number {
    return this.compactRev;
  }

  /** Raft index of the last applied entry. */
  get consistentIndex(): number {
    return this.consistentIdx;
  }

  set consistentIndex(raftIndex: number) {
    this.setConsistentIndex(raftIndex);
  }

  /** Number of keys in the index (live or with retained history). */
  get indexedKeys(): number {
    return this.tree.size;
  }

  /** Record that the Raft entry `raftIndex` was applied without touching keys (lease grant, member change...). */
  setConsistentIndex(raftIndex: number): void {
    this.assertUsable();
    this.assertNotWriting();
    this.noteApplied(raftIndex);
  }

  /** Connect (or replace) the lessor and attach every live key that carries a lease. */
  attachLeases(leases: LeaseHooks): void {
    this.leases = leases;
    this.attachAllLeases();
  }

  /** Wait for background compaction; afterwards the store refuses writes. Does not close the backend. */
  async close(): Promise<void> {
    while (this.compactionsQueued > 0) await this.compactionTail;
    this.closed = true;
  }

  // =============================================================== reads

  /** Range over the current state or, with `revision`, a historical one. */
  range(req: RangeRequest): Promise<RangeResult> {
    try {
      this.assertUsable();
      const r = this.rangeAt(req, this.currentRev);
      return r instanceof Promise ? r : Promise.resolve(r);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * etcd's applierV3backend.Range + storeTxnRead.rangeKeys, reading at most
   * `curRev` (the read view's revision). In-memory state must equal the state at
   * curRev. Returns synchronously unless historical values must be read from disk.
   */
  private rangeAt(req: RangeRequest, curRev: number): RangeResult | Promise<RangeResult> {
    const reqLimit = req.limit ?? 0;
    const needAll =
      (req.sortOrder ?? SortOrder.NONE) !== SortOrder.NONE ||
      (req.minModRevision ?? 0) !== 0 ||
      (req.maxModRevision ?? 0) !== 0 ||
      (req.minCreateRevision ?? 0) !== 0 ||
      (req.maxCreateRevision ?? 0) !== 0;
    // Sorting/filtering needs every kv; otherwise one extra tells whether there is more.
    // Like etcd 3.4, "sorting" here means an explicit sort_order only: sort_order NONE
    // with a non-KEY sort_target (implicitly ascending) still fetches just limit + 1
    // keys in key order and sorts those — a quirk clients can observe, kept on purpose.
    const fetchLimit = needAll || reqLimit <= 0 ? 0 : reqLimit + 1;

    let rev = req.revision ?? 0;
    if (rev > curRev) throw new ErrFutureRev();
    if (rev <= 0) rev = curRev;
    if (rev < this.compactRev) throw new ErrCompacted();

    const countOnly = req.countOnly === true;
    const end = normalizeEnd(req.rangeEnd);
    if (rev === curRev) {
      const kvs: KeyValue[] = [];
      let count = 0;
      if (end === null) {
        const kv = this.tree.get(req.key)?.latest;
        if (kv) {
          count = 1;
          if (!countOnly) kvs.push(kv);
        }
      } else {
        const cur = this.tree.cursor();
        for (let ki = cur.seek(req.key); ki !== undefined && !pastEnd(ki.key, end); ki = cur.next()) {
          const kv = ki.latest;
          if (kv === null) continue;
          count++;
          if (!countOnly && (fetchLimit === 0 || kvs.length < fetchLimit)) kvs.push(kv);
        }
      }
      return finishRange(req, kvs, count, curRev);
    }
    return this.rangeHistorical(req, rev, curRev, end, fetchLimit, countOnly);
  }

  private rangeHistorical(
    req: RangeRequest,
    rev: number,
    curRev: number,
    end: Buffer | null,
    fetchLimit: number,
    countOnly: boolean,
  ): RangeResult | Promise<RangeResult> {
    // Resolve every key to its revision at `rev` now, synchronously; only the values
    // are fetched asynchronously. Values equal to the cached latest need no disk read.
    const kvs: Array<KeyValue | undefined> = [];
    const fetchPos: number[] = [];
    const fetchKeys: Buffer[] = [];
    let count = 0;
    const visit = (ki: KeyIndex): void => {
      if (!ki.locate(rev)) return;
      count++;
      if (countOnly || (fetchLimit !== 0 && kvs.length >= fetchLimit)) return;
      if (ki.locatedIsLatest()) kvs.push(ki.latest!);
      else {
        fetchPos.push(kvs.length);
        fetchKeys.push(ki.locatedRevKey());
        kvs.push(undefined);
      }
    };
    if (end === null) {
      const ki = this.tree.get(req.key);
      if (ki !== undefined) visit(ki);
    } else {
      const cur = this.tree.cursor();
      for (let ki = cur.seek(req.key); ki !== undefined && !pastEnd(ki.key, end); ki = cur.next()) visit(ki);
    }
    if (fetchKeys.length === 0) return finishRange(req, kvs as KeyValue[], count, curRev);
    return this.backend.getMany(Bucket.Key, fetchKeys).then((values) => {
      // A compaction applied meanwhile may have removed what we were about to read.
      if (rev < this.compactRev) throw new ErrCompacted();
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v === undefined) {
          throw new Error(`mvcc: revision ${fetchKeys[i]!.toString('hex')} missing from backend (index/backend diverged)`);
        }
        kvs[fetchPos[i]!] = decodeKeyValue(v);
      }
      return finishRange(req, kvs as KeyValue[], count, curRev);
    });
  }

  // ============================================================== writes

  /** Apply a Put (etcd applierV3backend.Put, standalone). */
  put(req: PutRequest, raftIndex: number): PutResult {
    this.assertUsable();
    this.assertNotWriting();
    this.noteApplied(raftIndex);
    const lease = req.lease ?? 0n;
    if (lease !== 0n && !this.leaseExists(lease)) throw new ErrLeaseNotFound();
    if ((req.ignoreValue || req.ignoreLease) && !this.tree.get(req.key)?.latest) throw new ErrKeyNotFound();
    this.beginWrite();
    try {
      return this.writePut(req);
    } finally {
      this.endWrite();
    }
  }

  /** Apply a DeleteRange. Deleting nothing does not bump the revision. */
  deleteRange(req: DeleteRangeRequest, raftIndex: number): DeleteRangeResult {
    this.assertUsable();
    this.assertNotWriting();
    this.noteApplied(raftIndex);
    this.beginWrite();
    try {
      return this.writeDeleteRange(req.key, normalizeEnd(req.rangeEnd), req.prevKv === true);
    } finally {
      this.endWrite();
    }
  }

  /**
   * Delete the given single keys in ONE revision (what etcd does when a lease is
   * revoked or expires). Keys that do not exist are skipped.
   */
  deleteKeys(keys: readonly Buffer[], raftIndex: number): { revision: number; deleted: number } {
    this.assertUsable();
    this.assertNotWriting();
    this.noteApplied(raftIndex);
    this.beginWrite();
    let deleted = 0;
    try {
      for (const key of keys) deleted += this.writeDeleteRange(key, null, false).deleted;
    } finally {
      this.endWrite();
    }
    return { revision: this.currentRev, deleted };
  }

  /**
   * Apply a Txn (etcd applierV3backend.Txn). Compares of the whole txn tree are
   * evaluated first against the pre-txn state; then the chosen ops run in order and
   * share one revision. Returns a Promise only when some range op reads a past
   * revision from disk; in that case no other write may be applied until it settles.
   */
  txn(req: TxnRequest, raftIndex: number): Promise<TxnResult> | TxnResult {
    this.assertUsable();
    this.assertNotWriting();
    const path: boolean[] = [];
    this.compareToPath(req, path);
    const isWrite = !isTxnReadOnly(req);
    // A read-only txn changes nothing: its Raft entry (if any) is applied right now.
    if (!isWrite) this.noteApplied(raftIndex);
    try {
      if (isWrite) this.checkRequests(req, path, 0, CHECK_PUTS);
      this.checkRequests(req, path, 0, CHECK_RANGES);
      // Divergence from etcd, on purpose: the duplicate-key rule lets a from-key delete
      // precede an ignore_* put of a key it removes (see validate.ts); etcd then panics
      // half-way through applying the txn, taking every member down. We reject such a
      // txn up front instead — atomically, identically on every member — and only after
      // etcd's own checks, so every txn etcd answers still gets etcd's answer.
      if (isWrite) this.checkRequests(req, path, 0, CHECK_IGNORES_AFTER_DELETE);
    } catch (err) {
      this.noteApplied(raftIndex);
      throw err;
    }

    // Ranges that must be answered from the pre-txn view are computed up front: all
    // of them for a read-only txn (one consistent view), explicit-revision ones for a
    // write txn (history at or below the txn's start never changes, so reading it
    // before applying the writes is equivalent — and keeps the writes synchronous).
    const beginRev = this.currentRev;
    const pre = new Map<RangeRequest, RangeResult | Promise<RangeResult>>();
    try {
      this.prefetchRanges(req, path, 0, !isWrite, beginRev, pre);
    } catch (err) {
      this.noteApplied(raftIndex);
      throw err;
    }
    let needsAwait = false;
    for (const r of pre.values()) if (r instanceof Promise) needsAwait = true;

    if (!needsAwait) {
      const ready = pre as Map<RangeRequest, RangeResult>;
      return isWrite ? this.applyWriteTxn(req, path, raftIndex, ready) : readOnlyTxnResult(req, path[0]!, beginRev, ready);
    }
    if (isWrite) this.writing = true; // hold off other writes: the planned reads assume the pre-txn state
    return (async () => {
      const done = new Map<RangeRequest, RangeResult>();
      try {
        for (const [k, v] of pre) done.set(k, await v);
      } catch (err) {
        if (isWrite) {
          this.writing = false;
          this.noteApplied(raftIndex);
        }
        throw err;
      }
      if (!isWrite) return readOnlyTxnResult(req, path[0]!, beginRev, done);
      this.writing = false;
      this.assertUsable();
      return this.applyWriteTxn(req, path, raftIndex, done);
    })();
  }

  private applyWriteTxn(req: TxnRequest, path: boolean[], raftIndex: number, pre: Map<RangeRequest, RangeResult>): TxnResult {
    this.noteApplied(raftIndex);
    this.beginWrite();
    const out: TxnResult = { revision: 0, succeeded: path[0]!, responses: [] };
    try {
      this.applyTxn(req, path, 0, pre, out);
      out.revision = this.wChanges > 0 ? this.wBeginRev + 1 : this.wBeginRev;
    } finally {
      this.endWrite();
    }
    return out;
  }

  /**
   * Compact away history before `rev` (etcd store.Compact). The logical part — errors,
   * compact revision, index compaction, consistent index — happens synchronously in
   * this call; the returned promise settles when the backend records are deleted.
   * Writes may continue meanwhile. ErrCompacted if rev <= compacted, ErrFutureRev if
   * rev > current (as rejections).
   */
  compact(rev: number, raftIndex: number): Promise<void> {
    try {
      this.assertUsable();
      this.assertNotWriting();
      this.noteApplied(raftIndex);
      if (!Number.isSafeInteger(rev)) throw new Error(`mvcc: invalid compaction revision ${rev}`);
      if (rev <= this.compactRev) throw new ErrCompacted();
      if (rev > this.currentRev) throw new ErrFutureRev();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.startCompaction(rev);
  }

  /**
   * CRC-32C of the key-value history in (compactRevision, rev] plus what a compaction
   * at rev would keep — etcd's HashByRev, byte-compatible with it. rev 0 = current.
   */
  async hashKV(rev: number): Promise<HashKVResult> {
    this.assertUsable();
    // Settle physical compactions first, so the hash never depends on their progress.
    while (this.compactionsQueued > 0) await this.compactionTail;
    const compactRev = this.compactRev;
    const currentRev = this.currentRev;
    if (rev > 0 && rev <= compactRev) throw new ErrCompacted();
    if (rev > 0 && rev > currentRev) throw new ErrFutureRev();
    if (rev <= 0) rev = currentRev;

    const keep = new Set<string>();
    const cur = this.tree.cursor();
    for (let ki = cur.first(); ki !== undefined; ki = cur.next()) ki.keep(rev, keep);
    // Created in the same tick as `keep`: both describe the same state.
    const it = this.backend.iterate(Bucket.Key, { lt: revToBytes(rev + 1, 0) });
    let crc = crc32c(KEY_BUCKET_NAME);
    for await (const [k, v] of it) {
      const main = revMainOf(k);
      if (main <= compactRev && keep.size > 0 && !keep.has(`${main}_${revSubOf(k)}`)) continue;
      crc = crc32c(k, crc);
      crc = crc32c(v, crc);
    }
    return { hash: crc, compactRevision: compactRev, hashRevision: rev, revision: currentRev };
  }

  // ====================================================== write internals

  private beginWrite(): void {
    this.writing = true;
    this.wBeginRev = this.currentRev;
    this.wChanges = 0;
    this.wEvents = [];
  }

  private endWrite(): void {
    const changed = this.wChanges > 0;
    const events = this.wEvents;
    if (changed) this.currentRev = this.wBeginRev + 1;
    this.writing = false;
    this.wChanges = 0;
    this.wEvents = [];
    if (changed && this.onEvents !== undefined) {
      try {
        this.onEvents(this.currentRev, events);
      } catch (err) {
        this.logger.error('mvcc: onEvents handler threw', { error: String(err), revision: this.currentRev });
      }
    }
  }

  /** The txn-level put (storeTxnWrite.put + applierV3backend.Put). Preconditions already checked. */
  private writePut(req: PutRequest): PutResult {
    let ki = this.tree.get(req.key);
    const prev = ki?.latest ?? null;
    if ((req.ignoreValue || req.ignoreLease) && prev === null) throw new ErrKeyNotFound();
    const value = req.ignoreValue ? prev!.value : (req.value ?? EMPTY);
    const lease = req.ignoreLease ? prev!.lease : (req.lease ?? 0n);
    const rev = this.wBeginRev + 1;
    const sub = this.wChanges++;
    const createRev = prev !== null ? prev.createRevision : rev;
    const version = prev !== null ? prev.version + 1 : 1;
    if (ki === undefined) {
      ki = new KeyIndex(Buffer.from(req.key)); // own copy: request buffers may be pooled
      this.tree.insert(ki);
    }
    const record = encodeKeyValue(ki.key, createRev, rev, version, value, lease);
    // The cached value is a view of the record we just built: no second copy, and it
    // does not pin the request's buffer.
    const stored = record.subarray(lastValueOffset(), lastValueOffset() + value.length);
    const kv = makeKeyValue(ki.key, createRev, rev, version, stored, lease);
    this.backend.put(Bucket.Key, revToBytes(rev, sub), record);
    ki.put(rev, sub, kv);
    if (prev !== null && prev.lease !== 0n) this.leases?.detach(prev.lease, ki.key);
    if (lease !== 0n) this.leaseHooks().attach(lease, ki.key);
    this.wEvents.push(prev !== null ? { type: EventType.PUT, kv, prevKv: prev } : { type: EventType.PUT, kv });
    const res: PutResult = { revision: rev };
    if (req.prevKv && prev !== null) res.prevKv = prev;
    return res;
  }

  /** The txn-level delete (storeTxnWrite.deleteRange + applierV3backend.DeleteRange). */
  private writeDeleteRange(key: Buffer, end: Buffer | null, wantPrev: boolean): DeleteRangeResult {
    const victims: KeyIndex[] = [];
    if (end === null) {
      const ki = this.tree.get(key);
      if (ki !== undefined && ki.latest !== null) victims.push(ki);
    } else {
      const cur = this.tree.cursor();
      for (let ki = cur.seek(key); ki !== undefined && !pastEnd(ki.key, end); ki = cur.next()) {
        if (ki.latest !== null) victims.push(ki);
      }
    }
    const prevKvs: KeyValue[] = [];
    if (victims.length === 0) {
      return { revision: this.wChanges > 0 ? this.wBeginRev + 1 : this.wBeginRev, deleted: 0, prevKvs };
    }
    const rev = this.wBeginRev + 1;
    for (const ki of victims) {
      const prev = ki.latest!;
      const sub = this.wChanges++;
      this.backend.put(Bucket.Key, revToBytes(rev, sub, true), encodeTombstone(ki.key));
      ki.tombstone(rev, sub);
      if (prev.lease !== 0n) this.leases?.detach(prev.lease, ki.key);
      this.wEvents.push({ type: EventType.DELETE, kv: makeKeyValue(ki.key, 0, rev, 0, EMPTY, 0n), prevKv: prev });
      if (wantPrev) prevKvs.push(prev);
    }
    return { revision: rev, deleted: victims.length, prevKvs };
  }

  // ======================================================= txn internals

  /** Evaluate compares along the branches that will run, in pre-order (etcd compareToPath). */
  private compareToPath(rt: TxnRequest, path: boolean[]): void {
    let ok = true;
    for (const c of rt.compare ?? []) {
      if (!this.applyCompare(c)) {
        ok = false;
        break;
      }
    }
    path.push(ok);
    for (const op of (ok ? rt.success : rt.failure) ?? []) {
      if (op.requestTxn !== undefined) this.compareToPath(op.requestTxn, path);
    }
  }

  private applyCompare(c: Compare): boolean {
    const end = normalizeEnd(c.rangeEnd);
    if (end === null) {
      const kv = this.tree.get(c.key)?.latest ?? null;
      // Comparing the value of a missing key always fails (no way to express "absent").
      if (kv === null) return c.target === CompareTarget.VALUE ? false : compareKV(c, null);
      return compareKV(c, kv);
    }
    let any = false;
    const cur = this.tree.cursor();
    for (let ki = cur.seek(c.key); ki !== undefined && !pastEnd(ki.key, end); ki = cur.next()) {
      if (ki.latest === null) continue;
      any = true;
      if (!compareKV(c, ki.latest)) return false;
    }
    if (!any) return c.target === CompareTarget.VALUE ? false : compareKV(c, null);
    return true;
  }

  /** etcd checkRequests: validate the ops on the chosen path against the pre-txn state. Returns the next path position. */
  private checkRequests(
    rt: TxnRequest,
    path: boolean[],
    pos: number,
    kind: number,
    deletesSoFar: DeleteRangeRequest[] = [],
  ): number {
    const ops = (path[pos] ? rt.success : rt.failure) ?? [];
    let next = pos + 1;
    for (const op of ops) {
      if (op.requestTxn !== undefined) {
        next = this.checkRequests(op.requestTxn, path, next, kind, deletesSoFar);
        continue;
      }
      if (kind === CHECK_PUTS) {
        const p = op.requestPut;
        if (p === undefined) continue;
        const ignoring = p.ignoreValue === true || p.ignoreLease === true;
        if (ignoring && !this.tree.get(p.key)?.latest) throw new ErrKeyNotFound();
        const lease = p.lease ?? 0n;
        if (lease !== 0n && !this.leaseExists(lease)) throw new ErrLeaseNotFound();
      } else if (kind === CHECK_IGNORES_AFTER_DELETE) {
        if (op.requestDeleteRange !== undefined) deletesSoFar.push(op.requestDeleteRange);
        const p = op.requestPut;
        if (p === undefined || !(p.ignoreValue || p.ignoreLease)) continue;
        for (const d of deletesSoFar) if (deleteCoversKey(d, p.key)) throw new ErrKeyNotFound();
      } else {
        const r = op.requestRange;
        if (r === undefined) continue;
        const rev = r.revision ?? 0;
        if (rev === 0) continue;
        if (rev > this.currentRev) throw new ErrFutureRev();
        if (rev < this.compactRev) throw new ErrCompacted();
      }
    }
    return next;
  }

  private prefetchRanges(
    rt: TxnRequest,
    path: boolean[],
    pos: number,
    all: boolean,
    beginRev: number,
    out: Map<RangeRequest, RangeResult | Promise<RangeResult>>,
  ): number {
    const ops = (path[pos] ? rt.success : rt.failure) ?? [];
    let next = pos + 1;
    for (const op of ops) {
      if (op.requestTxn !== undefined) {
        next = this.prefetchRanges(op.requestTxn, path, next, all, beginRev, out);
        continue;
      }
      const r = op.requestRange;
      if (r === undefined || out.has(r)) continue;
      if (all || (r.revision ?? 0) > 0) out.set(r, this.rangeAt(r, beginRev));
    }
    return next;
  }

  /** etcd applyTxn: run the chosen branch's ops in order. Returns the next path position. */
  private applyTxn(
    rt: TxnRequest,
    path: boolean[],
    pos: number,
    pre: Map<RangeRequest, RangeResult>,
    out: TxnResult,
  ): number {
    const ops = (path[pos] ? rt.success : rt.failure) ?? [];
    let next = pos + 1;
    for (const op of ops) {
      const resp: ResponseOp = {};
      if (op.requestRange !== undefined) {
        // Ranges see the txn's earlier writes: the read view is at the txn's revision once it changed something.
        const viewRev = this.wChanges > 0 ? this.wBeginRev + 1 : this.wBeginRev;
        const fetched = pre.get(op.requestRange);
        if (fetched !== undefined) resp.responseRange = { ...fetched, revision: viewRev };
        else {
          const r = this.rangeAt(op.requestRange, viewRev);
          if (r instanceof Promise) throw new Error('mvcc: invariant violated: txn range needed an unplanned disk read');
          resp.responseRange = r;
        }
      } else if (op.requestPut !== undefined) {
        resp.responsePut = this.writePut(op.requestPut);
      } else if (op.requestDeleteRange !== undefined) {
        const d = op.requestDeleteRange;
        resp.responseDeleteRange = this.writeDeleteRange(d.key, normalizeEnd(d.rangeEnd), d.prevKv === true);
      } else if (op.requestTxn !== undefined) {
        // etcd leaves a nested txn's header revision at 0.
        const nested: TxnResult = { revision: 0, succeeded: path[next]!, responses: [] };
        next = this.applyTxn(op.requestTxn, path, next, pre, nested);
        resp.responseTxn = nested;
      }
      out.responses.push(resp);
    }
    return next;
  }

  // ========================================================== compaction

  private startCompaction(rev: number): Promise<void> {
    this.compactRev = rev;
    this.backend.put(Bucket.Meta, META_SCHEDULED_COMPACT, compactMarkBytes(rev));
    const removed = this.compactIndex(rev);
    this.compactionsQueued++;
    const job = this.compactionTail.then(() => this.deleteCompacted(rev, removed));
    this.compactionTail = job.then(
      () => {
        this.compactionsQueued--;
      },
      (err: unknown) => {
        this.compactionsQueued--;
        this.logger.error('mvcc: physical compaction failed', { revision: rev, error: String(err) });
      },
    );
    return job;
  }

  /** Compact the in-memory index; returns the revision keys to delete, in ascending order. */
  private compactIndex(rev: number): Buffer[] {
    const removed: Buffer[] = [];
    const emptied: Buffer[] = [];
    const cur = this.tree.cursor();
    for (let ki = cur.first(); ki !== undefined; ki = cur.next()) {
      ki.compact(rev, removed);
      if (ki.isEmpty()) emptied.push(ki.key);
    }
    for (const key of emptied) this.tree.delete(key);
    // Ascending revision order matters for crash safety: if we die half-way, what
    // remains is a suffix of each key's history, which rebuilds into a valid index
    // (a lone tombstone is ignored; a lone put without its later tombstone would not be).
    removed.sort(Buffer.compare);
    return removed;
  }

  private async deleteCompacted(rev: number, removed: Buffer[]): Promise<void> {
    for (let i = 0; i < removed.length; i += COMPACTION_DELETE_CHUNK) {
      await this.backend.deleteMany(Bucket.Key, removed.slice(i, i + COMPACTION_DELETE_CHUNK));
    }
    this.backend.put(Bucket.Meta, META_FINISHED_COMPACT, compactMarkBytes(rev));
  }

  // ============================================================= restore

  private async restore(): Promise<void> {
    const [ciBytes, finishedBytes, scheduledBytes] = await this.backend.getMany(Bucket.Meta, [
      META_CONSISTENT_INDEX,
      META_FINISHED_COMPACT,
      META_SCHEDULED_COMPACT,
    ]);
    if (ciBytes !== undefined) this.consistentIdx = Number(ciBytes.readBigUInt64BE(0));
    if (finishedBytes !== undefined) this.compactRev = revMainOf(finishedBytes);
    const scheduled = scheduledBytes !== undefined ? revMainOf(scheduledBytes) : -1;

    const byKey = new Map<string, KeyIndex>();
    let maxMain = 0;
    for await (const [k, v] of this.backend.iterate(Bucket.Key)) {
      assertRevKey(k);
      const main = revMainOf(k);
      const sub = revSubOf(k);
      if (main < maxMain) throw new Error('mvcc: key bucket not in revision order');
      maxMain = main;
      const kv = decodeKeyValue(v);
      const kstr = kv.key.toString('latin1');
      let ki = byKey.get(kstr);
      if (isTombstoneKey(k)) {
        // A tombstone whose put was compacted away: the key simply does not exist.
        ki?.tombstone(main, sub);
        continue;
      }
      if (ki === undefined) {
        ki = new KeyIndex(Buffer.from(kv.key));
        byKey.set(kstr, ki);
      }
      ki.put(main, sub, makeKeyValue(ki.key, kv.createRevision, kv.modRevision, kv.version, ownBytes(kv.value), kv.lease));
    }
    const all = [...byKey.values()].filter((ki) => !ki.isEmpty());
    all.sort((a, b) => Buffer.compare(a.key, b.key));
    this.tree.bulkLoad(all);
    this.currentRev = Math.max(1, maxMain, this.compactRev);

    if (scheduled > this.compactRev) {
      // A compaction was recorded but its deletions may not all have landed: redo it.
      this.logger.info('mvcc: resuming interrupted compaction', { revision: scheduled });
      await this.startCompaction(scheduled);
    }
    this.attachAllLeases();
    this.logger.info('mvcc: store restored', {
      currentRevision: this.currentRev,
      compactRevision: this.compactRev,
      consistentIndex: this.consistentIdx,
      keys: this.tree.size,
    });
  }

  private attachAllLeases(): void {
    if (this.leases === undefined) return;
    const cur = this.tree.cursor();
    for (let ki = cur.first(); ki !== undefined; ki = cur.next()) {
      const kv = ki.latest;
      if (kv === null || kv.lease === 0n) continue;
      if (this.leases.exists(kv.lease)) this.leases.attach(kv.lease, ki.key);
      else this.logger.warn('mvcc: key refers to an unknown lease', { key: ki.key.toString(), lease: kv.lease.toString() });
    }
  }

  // ============================================================= helpers

  private leaseExists(id: bigint): boolean {
    return this.leases !== undefined && this.leases.exists(id);
  }

  private leaseHooks(): LeaseHooks {
    if (this.leases === undefined) throw new Error('mvcc: invariant violated: lease attach without a lessor');
    return this.leases;
  }

  /** Persist the consistent index in the current backend batch (0 = not from Raft: ignored). */
  private noteApplied(raftIndex: number): void {
    if (raftIndex === 0) return;
    if (!Number.isSafeInteger(raftIndex) || raftIndex < 0) throw new Error(`mvcc: invalid raft index ${raftIndex}`);
    if (raftIndex < this.consistentIdx) {
      throw new Error(`mvcc: raft index ${raftIndex} applied after ${this.consistentIdx} (entries must be applied in order)`);
    }
    if (raftIndex === this.consistentIdx) return;
    this.consistentIdx = raftIndex;
    this.backend.put(Bucket.Meta, META_CONSISTENT_INDEX, encodeIndex(raftIndex));
  }

  private assertNotWriting(): void {
    if (this.writing) throw new Error('mvcc: a write was issued while a previous txn was still being applied');
  }

  private assertUsable(): void {
    if (this.closed) throw new Error('mvcc: store closed');
  }
}

// ====================================================== range finishing

/** A read-only txn (only range ops, no nested txns): every answer was prefetched at beginRev. */
function readOnlyTxnResult(
  req: TxnRequest,
  succeeded: boolean,
  beginRev: number,
  pre: Map<RangeRequest, RangeResult>,
): TxnResult {
  const ops = (succeeded ? req.success : req.failure) ?? [];
  const responses: ResponseOp[] = [];
  for (const op of ops) {
    const r = pre.get(op.requestRange!);
    if (r === undefined) throw new Error('mvcc: invariant violated: read-only txn range not prefetched');
    responses.push({ responseRange: r });
  }
  return { revision: beginRev, succeeded, responses };
}

function hasFilters(req: RangeRequest): boolean {
  return (
    (req.maxModRevision ?? 0) !== 0 ||
    (req.minModRevision ?? 0) !== 0 ||
    (req.maxCreateRevision ?? 0) !== 0 ||
    (req.minCreateRevision ?? 0) !== 0
  );
}

/** Filters, sort, limit, keys_only — the tail of etcd's applierV3backend.Range. */
function finishRange(req: RangeRequest, fetched: KeyValue[], count: number, revision: number): RangeResult {
  let kvs = fetched;
  if (hasFilters(req)) {
    const maxMod = req.maxModRevision ?? 0;
    const minMod = req.minModRevision ?? 0;
    const maxCreate = req.maxCreateRevision ?? 0;
    const minCreate = req.minCreateRevision ?? 0;
    kvs = kvs.filter(
      (kv) =>
        !(maxMod !== 0 && kv.modRevision > maxMod) &&
        !(minMod !== 0 && kv.modRevision < minMod) &&
        !(maxCreate !== 0 && kv.createRevision > maxCreate) &&
        !(minCreate !== 0 && kv.createRevision < minCreate),
    );
  }
  const target = req.sortTarget ?? SortTarget.KEY;
  let order = req.sortOrder ?? SortOrder.NONE;
  // Results come out key-ascending already; any other target implies ascending by default.
  if (target !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND;
  if (order === SortOrder.ASCEND || order === SortOrder.DESCEND) {
    const cmp = comparatorFor(target);
    if (kvs === fetched) kvs = kvs.slice();
    // Array.prototype.sort is stable: equal elements keep key-ascending order either way.
    if (order === SortOrder.ASCEND) kvs.sort(cmp);
    else kvs.sort((a, b) => cmp(b, a));
  }
  const limit = req.limit ?? 0;
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  if (req.keysOnly) {
    kvs = kvs.map((kv) => makeKeyValue(kv.key, kv.createRevision, kv.modRevision, kv.version, EMPTY, kv.lease));
  }
  return { revision, kvs, more, count };
}

function comparatorFor(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case SortTarget.KEY:
      return (a, b) => Buffer.compare(a.key, b.key);
    case SortTarget.VERSION:
      return (a, b) => a.version - b.version;
    case SortTarget.CREATE:
      return (a, b) => a.createRevision - b.createRevision;
    case SortTarget.MOD:
      return (a, b) => a.modRevision - b.modRevision;
    case SortTarget.VALUE:
      return (a, b) => Buffer.compare(a.value, b.value);
    default:
      // etcd leaves an unknown sort target unsorted (nil sorter); keep key order.
      return () => 0;
  }
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** etcd compareKV; `kv` null stands for the zero KeyValue of a missing key. */
function compareKV(c: Compare, kv: KeyValue | null): boolean {
  let result = 0;
  switch (c.target) {
    case CompareTarget.VALUE:
      result = Buffer.compare(kv?.value ?? EMPTY, c.value ?? EMPTY);
      break;
    case CompareTarget.CREATE:
      result = compareNumbers(kv?.createRevision ?? 0, c.createRevision ?? 0);
      break;
    case CompareTarget.MOD:
      result = compareNumbers(kv?.modRevision ?? 0, c.modRevision ?? 0);
      break;
    case CompareTarget.VERSION:
      result = compareNumbers(kv?.version ?? 0, c.version ?? 0);
      break;
    case CompareTarget.LEASE: {
      const a = kv?.lease ?? 0n;
      const b = c.lease ?? 0n;
      result = a < b ? -1 : a > b ? 1 : 0;
      break;
    }
  }
  switch (c.result) {
    case CompareResult.EQUAL:
      return result === 0;
    case CompareResult.NOT_EQUAL:
      return result !== 0;
    case CompareResult.GREATER:
      return result > 0;
    case CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}
