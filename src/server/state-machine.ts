import fs from 'node:fs';
import { fsyncDir } from '../fsync.js';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { Backend, Bucket } from '../backend/index.js';
import { MvccStore } from '../mvcc/store.js';
import { Lessor, minLeaseTtlSec, leaseNotFound, type LeaseRecord } from '../lease/lessor.js';
import { WatchHub } from '../watch/hub.js';
import { Errors, ServerError } from './errors.js';
import { Membership } from './membership.js';
import type { ServerMetrics } from './metrics.js';
import { big, num, toLong, type Msg } from './pb.js';
import { ErrCompacted, ErrFutureRev } from '../mvcc/errors.js';
import { RequestKind } from './request.js';
import * as convert from './convert.js';
import type * as mvcc from '../mvcc/types.js';
import type { ServerConfig } from './server.js';
import { AuthStore, type AuthOp } from '../auth/store.js';

// The replicated state machine: everything a committed entry can change. MVCC keys,
// leases, alarms and membership all live in one LevelDB backend, and each entry's changes
// are written in the same batch as the applied index (consistentIndex), so recovery
// replays exactly the entries the backend has not seen.

export enum AlarmType {
  NONE = 0,
  NOSPACE = 1,
  CORRUPT = 2,
}

export interface Alarm {
  memberId: bigint;
  alarm: AlarmType;
  alarmName: string;
}

/** What the server exposes to the state machine at apply time. */
export interface ApplyContext {
  memberId: bigint;
  applyMemberAttributes(payload: { id: string; name: string; clientUrls: string[] }, index: number): void;
}

/** Membership and alarms are small: each is one JSON value in its bucket. */
const MEMBERSHIP_KEY = Buffer.from('membership');
const ALARMS_KEY = Buffer.from('alarms');

/** Whether `test` holds for an op in either branch of `t`, nested txns included. */
function txnHasOp(t: mvcc.TxnRequest, test: (op: mvcc.RequestOp) => boolean): boolean {
  return opsHave(t.success, test) || opsHave(t.failure, test);
}

function opsHave(ops: mvcc.RequestOp[] | undefined, test: (op: mvcc.RequestOp) => boolean): boolean {
  if (ops === undefined) return false;
  for (const op of ops) {
    if (test(op) || (op.requestTxn !== undefined && txnHasOp(op.requestTxn, test))) return true;
  }
  return false;
}

/** Whether a txn can add data: a put in either branch, nested txns included. */
export function txnHasPuts(t: mvcc.TxnRequest): boolean {
  return txnHasOp(t, (op) => Boolean(op.requestPut));
}

function leaseKey(id: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, id));
  return b;
}

export class StateMachine {
  readonly lessor: Lessor;
  /** Every watcher on this member, fed by the store's applied events. */
  readonly watchHub: WatchHub;
  private clusterIdLong = toLong(0n);
  private memberIdLong = toLong(0n);
  private termOf: () => number = () => 0;
  private activeAlarms: Alarm[] = [];
  private leader = false;
  /** Membership as last persisted (loaded at open; the backend read is async). */
  private persistedMembership?: Membership;
  /** Users, roles and the auth flag/revision (buckets auth, authUsers, authRoles). */
  readonly auth: AuthStore;

  private constructor(
    private backendRef: Backend,
    private mvccRef: MvccStore,
    readonly dbDir: string,
    readonly cfg: ServerConfig,
    readonly logger: Logger,
    readonly metrics: ServerMetrics,
    lessor: Lessor,
  ) {
    this.lessor = lessor;
    this.watchHub = new WatchHub(mvccRef, backendRef, logger);
    this.auth = new AuthStore(logger);
  }

  /** The LevelDB backend (replaced when a snapshot from the leader is installed). */
  get backend(): Backend {
    return this.backendRef;
  }

  /** The MVCC store (replaced when a snapshot from the leader is installed). */
  get mvcc(): MvccStore {
    return this.mvccRef;
  }

  private static async openBackend(dir: string, cfg: ServerConfig, logger: Logger, metrics: ServerMetrics): Promise<Backend> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      return await Backend.open(dir, {
        batchIntervalMs: cfg.backendBatchIntervalMs,
        batchLimit: cfg.backendBatchLimit,
        onCommit: (seconds: number) => metrics.backendCommitSeconds.observe(seconds),
        onFatalError: (err: Error) => logger.error('backend commit failed; stopping', { error: err.message }),
        logger,
      });
    } catch (e) {
      const msg = String((e as Error & { cause?: Error }).cause?.message ?? (e as Error).message);
      if (/lock/i.test(msg)) {
        throw new ServerError(
          `data dir ${cfg.dataDir} is in use by another process (the database ${dir} is locked): stop the other tsetcd/etcd or use another --data-dir`,
        );
      }
      throw e;
    }
  }

  static async open(dir: string, cfg: ServerConfig, logger: Logger, metrics: ServerMetrics): Promise<StateMachine> {
    const backend = await StateMachine.openBackend(dir, cfg, logger, metrics);
    const lessor = new Lessor(minLeaseTtlSec(cfg.electionTimeoutMs));
    const mvcc = await MvccStore.open(backend, { logger });
    const sm = new StateMachine(backend, mvcc, dir, cfg, logger, metrics, lessor);
    await sm.loadDerivedState();
    return sm;
  }

  /** Leases, alarms and membership as stored in the (current) backend. */
  private async loadDerivedState(): Promise<void> {
    const lessor = this.lessor;
    await this.auth.load(this.backend);
    await this.loadLeases();
    // Connecting the lessor re-attaches every live key to its lease.
    this.mvcc.attachLeases({
      exists: (id: bigint) => lessor.exists(id),
      attach: (id: bigint, key: Buffer) => {
        if (lessor.exists(id)) lessor.attach(id, key);
      },
      detach: (id: bigint, key: Buffer) => lessor.detach(id, key),
    });
    this.activeAlarms = await this.loadAlarms();
    const ms = await this.backend.get(Bucket.Members, MEMBERSHIP_KEY);
    this.persistedMembership = ms ? Membership.fromJSON(ms.toString()) : undefined;
  }

  /**
   * Installs a database image received from the leader (already restored into `newDir`):
   * the old database is closed and replaced, and everything derived from it reloaded.
   * Watchers catch up from the new history.
   */
  async installSnapshot(newDir: string): Promise<void> {
    await this.mvcc.close();
    await this.backend.close();
    const old = `${this.dbDir}.old-${Date.now()}`;
    await fsp.rename(this.dbDir, old);
    await fsp.rename(newDir, this.dbDir);
    await fsyncDir(path.dirname(this.dbDir));
    this.backendRef = await StateMachine.openBackend(this.dbDir, this.cfg, this.logger, this.metrics);
    this.mvccRef = await MvccStore.open(this.backendRef, { logger: this.logger });
    this.lessor.clear();
    await this.loadDerivedState();
    if (this.leader) this.lessor.promote(this.cfg.electionTimeoutMs);
    this.watchHub.rebind(this.mvccRef, this.backendRef);
    await fsp.rm(old, { recursive: true, force: true });
    this.logger.info('installed database snapshot from the leader', {
      'consistent-index': this.mvcc.consistentIndex, revision: this.mvcc.currentRevision,
    });
  }

  // ------------------------------------------------------------------ identity / header

  setClusterId(id: bigint): void {
    this.clusterIdLong = toLong(id);
  }

  setIdentity(memberId: bigint, term: () => number): void {
    this.memberIdLong = toLong(memberId);
    this.termOf = term;
  }

  header(revision = this.mvcc.currentRevision): Msg {
    return { cluster_id: this.clusterIdLong, member_id: this.memberIdLong, revision, raft_term: this.termOf() };
  }

  get consistentIndex(): number {
    return this.mvcc.consistentIndex;
  }

  setConsistentIndex(index: number): void {
    this.mvcc.setConsistentIndex(index);
  }

  // ------------------------------------------------------------------ reads

  async range(req: mvcc.RangeRequest): Promise<Msg> {
    const r = await this.mvcc.range(req);
    const out = convert.rangeResultToPb(r);
    out.header = this.header(r.revision);
    return out;
  }

  async rangeKey(key: Buffer): Promise<void> {
    await this.mvcc.range(convert.rangeFromPb({ key }));
  }

  async readOnlyTxn(req: mvcc.TxnRequest): Promise<Msg> {
    // Raft index 0: a read-only txn is not an applied entry.
    const res = await this.mvcc.txn(req, 0);
    return convert.txnResultToPb(res, (rev) => this.header(rev));
  }

  // ------------------------------------------------------------------ apply

  apply(kind: RequestKind, msg: Msg, index: number, ctx: ApplyContext): unknown {
    if (this.refusedForNoSpace(kind, msg)) {
      this.setConsistentIndex(index);
      throw Errors.noSpace();
    }
    switch (kind) {
      case RequestKind.Put: {
        const r = this.mvcc.put(msg as mvcc.PutRequest, index);
        return { header: this.header(r.revision), prev_kv: r.prevKv ? convert.kvToPb(r.prevKv) : null };
      }
      case RequestKind.DeleteRange: {
        const r = this.mvcc.deleteRange(msg as mvcc.DeleteRangeRequest, index);
        return { header: this.header(r.revision), deleted: r.deleted, prev_kvs: r.prevKvs.map(convert.kvToPb) };
      }
      case RequestKind.Txn: {
        const r = this.mvcc.txn(msg as mvcc.TxnRequest, index);
        if (r instanceof Promise) return r.then((x) => convert.txnResultToPb(x, (rev) => this.header(rev)));
        return convert.txnResultToPb(r, (rev) => this.header(rev));
      }
      case RequestKind.Compact:
        return this.applyCompact(msg, index);
      case RequestKind.LeaseGrant:
        return this.applyLeaseGrant(msg, index);
      case RequestKind.LeaseRevoke:
        return this.applyLeaseRevoke(big(msg.ID), index);
      case RequestKind.LeaseCheckpoint:
        return this.applyLeaseCheckpoint(msg as { checkpoints: { id: string; remainingTtlSec: number }[] }, index);
      case RequestKind.Alarm:
        return this.applyAlarm(msg, index);
      case RequestKind.Auth:
        return this.applyAuth(msg as AuthOp, index);
      case RequestKind.MemberAttributes:
        ctx.applyMemberAttributes(msg as { id: string; name: string; clientUrls: string[] }, index);
        this.setConsistentIndex(index);
        return undefined;
      default:
        this.setConsistentIndex(index);
        throw Errors.unknownMethod();
    }
  }

  /** Auth changes are written in this entry's batch, with its index, whether they succeed or not. */
  private applyAuth(op: AuthOp, index: number): Msg {
    try {
      return { header: this.header(), ...this.auth.apply(op, index) };
    } finally {
      this.setConsistentIndex(index);
    }
  }

  private applyCompact(msg: Msg, index: number): Msg {
    const revision = num(msg.revision);
    // Report etcd's errors to the caller synchronously (the store reports them through the promise).
    if (revision <= this.mvcc.compactRevision) throw new ErrCompacted();
    if (revision > this.mvcc.currentRevision) throw new ErrFutureRev();
    // The store validates and removes the compacted revisions from its index right away;
    // the backend part may continue in the background ("physical" waits for it).
    const done = this.mvcc.compact(revision, index);
    done.catch((e: Error) => this.logger.error('compaction failed', { revision, error: e.message }));
    this.lastCompaction = done.catch(() => {});
    const header = this.header();
    return { header, done };
  }

  private applyLeaseGrant(msg: Msg, index: number): Msg {
    const id = big(msg.ID);
    const lease = this.lessor.grant(id, Number(msg.TTL ?? 0));
    this.persistLease({ id, ttlSec: lease.ttlSec, remainingTtlSec: 0 });
    this.setConsistentIndex(index);
    return { header: this.header(), ID: toLong(id, false), TTL: lease.ttlSec, error: '' };
  }

  private applyLeaseRevoke(id: bigint, index: number): Msg {
    if (!this.lessor.exists(id)) {
      this.setConsistentIndex(index);
      throw leaseNotFound();
    }
    const keys = this.lessor.revoke(id);
    this.deleteLeaseRecord(id);
    let revision = this.mvcc.currentRevision;
    if (keys.length > 0) {
      // All attached keys go in one revision, as etcd does.
      revision = this.mvcc.deleteKeys(keys, index).revision;
    } else {
      this.setConsistentIndex(index);
    }
    return { header: this.header(revision) };
  }

  private applyLeaseCheckpoint(msg: { checkpoints: { id: string; remainingTtlSec: number }[] }, index: number): undefined {
    for (const c of msg.checkpoints) {
      const id = BigInt(c.id);
      const lease = this.lessor.get(id);
      if (!lease) continue;
      this.lessor.checkpoint(id, c.remainingTtlSec);
      this.persistLease({ id, ttlSec: lease.ttlSec, remainingTtlSec: c.remainingTtlSec });
    }
    this.setConsistentIndex(index);
    return undefined;
  }

  private applyAlarm(msg: Msg, index: number): Msg {
    const action = Number(msg.action ?? 0);
    const memberId = big(msg.memberID);
    const alarm = Number(msg.alarm ?? 0) as AlarmType;
    const changed: Alarm[] = [];
    if (action === 1 && alarm !== AlarmType.NONE) {
      if (!this.activeAlarms.some((a) => a.memberId === memberId && a.alarm === alarm)) {
        const a = { memberId, alarm, alarmName: AlarmType[alarm] ?? String(alarm) };
        this.activeAlarms.push(a);
        changed.push(a);
        this.logger.warn('alarm raised', { alarm: a.alarmName, 'member-id': memberId.toString(16) });
      }
    } else if (action === 2) {
      const keep: Alarm[] = [];
      for (const a of this.activeAlarms) {
        if ((memberId === 0n || a.memberId === memberId) && (alarm === AlarmType.NONE || a.alarm === alarm)) changed.push(a);
        else keep.push(a);
      }
      this.activeAlarms = keep;
      for (const a of changed) this.logger.info('alarm disarmed', { alarm: a.alarmName, 'member-id': a.memberId.toString(16) });
    }
    this.backend.put(Bucket.Alarm, ALARMS_KEY, Buffer.from(JSON.stringify(this.activeAlarms.map((a) => ({ m: a.memberId.toString(), a: a.alarm })))));
    this.setConsistentIndex(index);
    return { header: this.header(), alarms: changed.map((a) => ({ memberID: toLong(a.memberId), alarm: a.alarm })) };
  }

  // ------------------------------------------------------------------ alarms & quota

  alarms(): Alarm[] {
    return this.activeAlarms;
  }

  private async loadAlarms(): Promise<Alarm[]> {
    const raw = await this.backend.get(Bucket.Alarm, ALARMS_KEY);
    if (!raw) return [];
    return (JSON.parse(raw.toString()) as { m: string; a: number }[]).map((x) => ({
      memberId: BigInt(x.m), alarm: x.a as AlarmType, alarmName: AlarmType[x.a] ?? String(x.a),
    }));
  }

  /**
   * While NOSPACE is raised, entries that add data (puts, txns with a put, lease grants) are
   * refused when applied, on every member alike (etcd's "capped" applier): the API checks
   * alone would let through what was proposed just before the alarm.
   */
  private refusedForNoSpace(kind: RequestKind, msg: Msg): boolean {
    if (kind !== RequestKind.Put && kind !== RequestKind.Txn && kind !== RequestKind.LeaseGrant) return false;
    if (!this.activeAlarms.some((a) => a.alarm === AlarmType.NOSPACE)) return false;
    return kind !== RequestKind.Txn || txnHasPuts(msg as mvcc.TxnRequest);
  }

  /**
   * Refuses a write when the NOSPACE alarm is active, or when this write would take the
   * backend past --quota-backend-bytes (then the caller raises the alarm, as etcd does).
   */
  checkQuota(requestBytes: number): void {
    if (this.activeAlarms.some((a) => a.alarm === AlarmType.NOSPACE)) throw Errors.noSpace();
    const quota = this.cfg.quotaBackendBytes;
    if (quota <= 0) return;
    // etcd's estimate: a put costs its bytes plus per-key overhead in the backend.
    if (this.backend.sizeBytes() + requestBytes * 2 + 256 > quota) {
      this.onQuotaExceeded?.();
      throw Errors.noSpace();
    }
  }

  onQuotaExceeded?: () => void;

  // ------------------------------------------------------------------ leases

  private persistLease(rec: LeaseRecord): void {
    this.backend.put(Bucket.Lease, leaseKey(rec.id), Buffer.from(JSON.stringify({ ttl: rec.ttlSec, rem: rec.remainingTtlSec })));
  }

  private deleteLeaseRecord(id: bigint): void {
    this.backend.del(Bucket.Lease, leaseKey(id));
  }

  private async loadLeases(): Promise<void> {
    for await (const [key, value] of this.backend.iterate(Bucket.Lease)) {
      const id = BigInt.asIntN(64, key.readBigUInt64BE(0));
      const o = JSON.parse(value.toString()) as { ttl: number; rem: number };
      this.lessor.restore({ id, ttlSec: o.ttl, remainingTtlSec: o.rem });
    }
  }

  onLeaderChange(isLeader: boolean, electionTimeoutMs = this.cfg.electionTimeoutMs): void {
    if (isLeader && !this.leader) this.lessor.promote(electionTimeoutMs);
    else if (!isLeader && this.leader) this.lessor.demote();
    this.leader = isLeader;
  }

  // ------------------------------------------------------------------ membership

  saveMembership(ms: Membership, index: number): void {
    const json = JSON.stringify(ms.toJSON());
    this.backend.put(Bucket.Members, MEMBERSHIP_KEY, Buffer.from(json));
    this.persistedMembership = Membership.fromJSON(json);
    this.setConsistentIndex(index);
  }

  /** The membership as of the backend's consistent index (a copy). */
  loadMembership(): Membership | undefined {
    return this.persistedMembership ? Membership.fromJSON(JSON.stringify(this.persistedMembership.toJSON())) : undefined;
  }

  // ------------------------------------------------------------------ maintenance

  dbSizes(): { totalBytes: number; inUseBytes: number } {
    return { totalBytes: this.backend.sizeBytes(), inUseBytes: this.backend.sizeInUseBytes() };
  }

  /** The physical part of the latest compaction (compactions run in order). */
  private lastCompaction: Promise<void> = Promise.resolve();

  async defragment(): Promise<void> {
    // "compact, then defrag" must reclaim what the compaction freed (the quota recovery
    // path): let a compaction still deleting in the background finish first.
    await this.lastCompaction;
    await this.backend.defragment();
  }

  async backendHash(): Promise<number> {
    return this.backend.hash();
  }

  hashKV(revision: number): Promise<{ hash: number; compactRevision: number; hashRevision: number }> {
    return this.mvcc.hashKV(revision);
  }

  async forceCommit(): Promise<void> {
    await this.backend.forceCommit();
  }

  refreshMetrics(): void {
    const m = this.metrics;
    const sizes = this.dbSizes();
    m.dbTotalSize.set(sizes.totalBytes);
    m.dbTotalSizeInUse.set(sizes.inUseBytes);
    m.currentRevision.set(this.mvcc.currentRevision);
    m.compactRevision.set(this.mvcc.compactRevision);
    m.keysTotal.set(this.mvcc.indexedKeys);
  }

  async close(): Promise<void> {
    await this.backend.close();
  }
}

/**
 * Whether applying this request may take long: it can touch any number of keys (a range
 * delete, a txn with a ranged op, a compaction, a lease revoke with its keys). Single-key
 * puts, gets and deletes cannot.
 */
export function mayApplySlowly(kind: RequestKind, msg: unknown): boolean {
  switch (kind) {
    case RequestKind.DeleteRange:
      return isRanged((msg as mvcc.DeleteRangeRequest).rangeEnd);
    case RequestKind.Txn:
      return txnHasOp(msg as mvcc.TxnRequest, (op) => isRanged(op.requestDeleteRange?.rangeEnd) || isRanged(op.requestRange?.rangeEnd));
    case RequestKind.Compact:
    case RequestKind.LeaseRevoke:
      return true;
    default:
      return false;
  }
}

function isRanged(rangeEnd: Buffer | undefined): boolean {
  return rangeEnd !== undefined && rangeEnd.length > 0;
}
