// The storage backend: LevelDB (classic-level) with etcd-style write batching.
//
// Writes never go to LevelDB directly. They land in an in-memory pending batch that
// is committed as ONE atomic LevelDB batch every `batchIntervalMs`, when it reaches
// `batchLimit` distinct keys, on forceCommit() and on close(). Reads consult the
// pending batch (and a batch whose commit is in flight) before LevelDB, so callers
// always read their own writes.
//
// Atomicity contract (what makes crash recovery exact): a commit is only ever started
// from a timer / setImmediate callback or from an explicit forceCommit()/close(), never
// from inside put()/del(). Therefore everything a caller writes synchronously (without
// awaiting in between) lands in the same LevelDB batch. The MVCC store relies on this
// to persist a Raft entry's data together with its consistent index.

import { existsSync, promises as fsp } from 'node:fs';
import { fsyncDir } from '../fsync.js';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ClassicLevel } from 'classic-level';
import type { Iterator as ClassicIterator } from 'classic-level';
import { ALL_BUCKETS, BUCKET_NAMES, Bucket, META_CONSISTENT_INDEX, META_SIZE_IN_USE } from './buckets.js';
import { crc32c } from './crc32c.js';
import { encodeSnapshot, decodeSnapshot } from './snapshot.js';

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const NOOP_LOGGER: Logger = { info() {}, warn() {}, error() {} };

export interface BackendOptions {
  /** Maximum time a write waits in the pending batch before being committed. etcd default 100 ms. */
  batchIntervalMs?: number;
  /** Commit as soon as the pending batch holds this many distinct keys. etcd default 10000. */
  batchLimit?: number;
  /** Called after every successful commit with its duration (feeds etcd_disk_backend_commit_duration_seconds). */
  onCommit?: (seconds: number) => void;
  /**
   * Called once if a background commit fails. The backend is unusable afterwards (every
   * later call throws the same error): the server must stop, like etcd panics.
   */
  onFatalError?: (err: Error) => void;
  /** fsync each commit (default true). The WAL is truncated behind backend snapshots, so commits must be durable. */
  syncOnCommit?: boolean;
  logger?: Logger;
}

export interface IterateRange {
  /** Inclusive lower bound (within the bucket); default: start of the bucket. */
  gte?: Buffer;
  /** Exclusive upper bound (within the bucket); default: end of the bucket. */
  lt?: Buffer;
}

interface PendingOp {
  /** Full LevelDB key, bucket prefix included. */
  fullKey: Buffer;
  /** null = delete. */
  value: Buffer | null;
}

type Db = ClassicLevel<Buffer, Buffer>;

const DEFAULT_BATCH_INTERVAL_MS = 100;
const DEFAULT_BATCH_LIMIT = 10_000;
const ITERATOR_BATCH_ENTRIES = 512;
const DISK_SIZE_REFRESH_MIN_INTERVAL_MS = 500;
const EMPTY = Buffer.alloc(0);

export function fullKey(bucket: Bucket, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(key.length + 1);
  out[0] = bucket;
  key.copy(out, 1);
  return out;
}

function mapKey(full: Buffer): string {
  return full.toString('latin1');
}

function entryBytes(full: Buffer, value: Buffer | null): number {
  return value === null ? 0 : full.length + value.length;
}

function encodeU64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/**
 * One LevelDB batch. abstract-level's public batch() clones every operation and runs it
 * through encodings, hooks and events that this backend never uses (Buffer keys and values
 * only): several microseconds per key on the event loop, i.e. per client write. While the
 * database is open, the operations go straight to classic-level's implementation (its
 * documented private API for abstract-level), which copies the Buffers into a native
 * WriteBatch; otherwise the public path raises the proper error.
 */
function writeBatch(db: Db, ops: BatchOp[], sync: boolean): Promise<void> {
  const direct = (db as unknown as { _batch?: (ops: BatchOp[], options: { sync: boolean }) => Promise<void> })._batch;
  if (db.status === 'open' && typeof direct === 'function') return direct.call(db, ops, { sync });
  return db.batch(ops, { sync });
}

export class Backend {
  readonly dir: string;
  private db: Db;
  /** Set while defragment() swaps the database files; reads wait for it. */
  private swapping: Promise<void> | null = null;
  private readonly batchIntervalMs: number;
  private readonly batchLimit: number;
  private readonly syncOnCommit: boolean;
  private readonly onCommit: ((seconds: number) => void) | undefined;
  private readonly onFatalError: ((err: Error) => void) | undefined;
  private readonly logger: Logger;

  private pending = new Map<string, PendingOp>();
  /** The batch whose LevelDB write is in flight; still visible to reads until it lands. */
  private committing: Map<string, PendingOp> | null = null;
  private commitInFlight: Promise<void> | null = null;
  private intervalTimer: NodeJS.Timeout | null = null;
  private limitCommitScheduled = false;
  private closed = false;
  private fatal: Error | null = null;

  /** Logical bytes (key + value) of every stored entry except the size record itself. */
  private inUseBytes = 0;
  /**
   * Entry sizes of every key outside the Key bucket. Those buckets hold few keys that
   * get overwritten (consistent index, leases, users), so their old size must be known
   * to keep inUseBytes exact. Key-bucket entries are write-once revisions.
   */
  private readonly smallEntrySizes = new Map<string, number>();
  private diskBytes = 0;
  private diskRefreshInFlight = false;
  private lastDiskRefreshMs = 0;

  private constructor(dir: string, db: Db, opts: BackendOptions) {
    this.dir = dir;
    this.db = db;
    this.batchIntervalMs = opts.batchIntervalMs ?? DEFAULT_BATCH_INTERVAL_MS;
    this.batchLimit = opts.batchLimit ?? DEFAULT_BATCH_LIMIT;
    this.syncOnCommit = opts.syncOnCommit ?? true;
    this.onCommit = opts.onCommit;
    this.onFatalError = opts.onFatalError;
    this.logger = opts.logger ?? NOOP_LOGGER;
    if (!(this.batchIntervalMs > 0)) throw new Error(`backend: batchIntervalMs must be > 0, got ${this.batchIntervalMs}`);
    if (!(this.batchLimit >= 1)) throw new Error(`backend: batchLimit must be >= 1, got ${this.batchLimit}`);
  }

  /** Open (creating if needed) the LevelDB database in `dir`. */
  static async open(dir: string, opts: BackendOptions = {}): Promise<Backend> {
    // A defragment interrupted between its two renames leaves only `<dir>.old`: put it back.
    if (!existsSync(dir) && existsSync(`${dir}.old`)) await fsp.rename(`${dir}.old`, dir);
    await fsp.rm(`${dir}.defrag`, { recursive: true, force: true });
    await fsp.mkdir(dir, { recursive: true });
    const db: Db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const backend = new Backend(dir, db, opts);
    try {
      await backend.loadAccounting();
      await backend.refreshDiskSize();
    } catch (err) {
      await db.close();
      throw err;
    }
    return backend;
  }

  // ---------------------------------------------------------------- writes

  /** Stage a put. Visible to reads immediately; durable after the next commit. */
  put(bucket: Bucket, key: Buffer, value: Buffer): void {
    this.assertUsable();
    const full = fullKey(bucket, key);
    const mk = mapKey(full);
    const oldBytes = this.knownEntryBytes(mk, bucket) ?? 0; // Key bucket: revisions are never overwritten
    const newBytes = entryBytes(full, value);
    this.inUseBytes += newBytes - oldBytes;
    if (bucket !== Bucket.Key) this.smallEntrySizes.set(mk, newBytes);
    this.stage(mk, full, value);
  }

  /**
   * Stage a delete. For Key-bucket entries that are already committed the backend does
   * not know their size; pass `knownEntryBytes` or use deleteMany() to keep sizeInUseBytes exact.
   */
  del(bucket: Bucket, key: Buffer, knownEntryBytes?: number): void {
    this.assertUsable();
    const full = fullKey(bucket, key);
    const mk = mapKey(full);
    const oldBytes = this.knownEntryBytes(mk, bucket) ?? knownEntryBytes ?? 0;
    this.inUseBytes -= oldBytes;
    if (bucket !== Bucket.Key) this.smallEntrySizes.delete(mk);
    this.stage(mk, full, null);
  }

  /**
   * Delete many keys, looking up the sizes of committed entries first so that
   * sizeInUseBytes stays exact. The deletes are staged together after the lookup.
   */
  async deleteMany(bucket: Bucket, keys: readonly Buffer[]): Promise<void> {
    this.assertUsable();
    const fulls = keys.map((k) => fullKey(bucket, k));
    const unknownIdx: number[] = [];
    for (let i = 0; i < fulls.length; i++) {
      if (this.knownEntryBytes(mapKey(fulls[i]!), bucket) === undefined) unknownIdx.push(i);
    }
    const sizes = new Map<number, number>();
    if (unknownIdx.length > 0) {
      const values = await this.db.getMany(unknownIdx.map((i) => fulls[i]!));
      for (let j = 0; j < unknownIdx.length; j++) {
        const v = values[j];
        sizes.set(unknownIdx[j]!, v === undefined ? 0 : fulls[unknownIdx[j]!]!.length + v.length);
      }
    }
    this.assertUsable();
    for (let i = 0; i < keys.length; i++) this.del(bucket, keys[i]!, sizes.get(i));
  }

  private stage(mk: string, full: Buffer, value: Buffer | null): void {
    this.pending.set(mk, { fullKey: full, value });
    if (this.pending.size >= this.batchLimit) {
      // Deferred, never synchronous: the caller may be in the middle of a multi-key write
      // that must land in one LevelDB batch (see the atomicity contract above).
      if (!this.limitCommitScheduled) {
        this.limitCommitScheduled = true;
        setImmediate(() => {
          this.limitCommitScheduled = false;
          if (this.pending.size >= this.batchLimit) this.backgroundCommit();
        });
      }
    } else if (this.intervalTimer === null) {
      this.intervalTimer = setTimeout(() => {
        this.intervalTimer = null;
        this.backgroundCommit();
      }, this.batchIntervalMs);
      this.intervalTimer.unref();
    }
  }

  /** Size of the entry as currently visible, when the backend can know it synchronously. */
  private knownEntryBytes(mk: string, bucket: Bucket): number | undefined {
    const p = this.pending.get(mk) ?? this.committing?.get(mk);
    if (p !== undefined) return entryBytes(p.fullKey, p.value);
    if (bucket !== Bucket.Key) return this.smallEntrySizes.get(mk) ?? 0;
    return undefined;
  }

  // --------------------------------------------------------------- commits

  /** Commit everything staged so far; resolves once it is durable in LevelDB. */
  async forceCommit(): Promise<void> {
    this.assertUsable();
    while (this.commitInFlight !== null) await this.commitInFlight;
    if (this.pending.size > 0) await this.startCommit();
  }

  /** Number of distinct keys waiting for the next commit. */
  get pendingOps(): number {
    return this.pending.size;
  }

  private backgroundCommit(): void {
    if (this.closed || this.fatal !== null) return;
    if (this.commitInFlight !== null) {
      // One LevelDB batch at a time keeps commits ordered; retry when it lands.
      this.commitInFlight.then(
        () => this.backgroundCommit(),
        () => {},
      );
      return;
    }
    if (this.pending.size === 0) return;
    this.startCommit().catch(() => {
      // reported through failWith()/onFatalError
    });
  }

  private startCommit(): Promise<void> {
    if (this.commitInFlight !== null) throw new Error('backend: invariant violated: overlapping commits');
    if (this.intervalTimer !== null) {
      clearTimeout(this.intervalTimer);
      this.intervalTimer = null;
    }
    const batch = this.pending;
    this.pending = new Map();
    this.committing = batch;
    const ops: BatchOp[] = [];
    for (const op of batch.values()) {
      if (op.value === null) ops.push({ type: 'del', key: op.fullKey });
      else ops.push({ type: 'put', key: op.fullKey, value: op.value });
    }
    // The size record rides in the same batch, so it always matches the committed data.
    ops.push({ type: 'put', key: fullKey(Bucket.Meta, META_SIZE_IN_USE), value: encodeU64(Math.max(0, this.inUseBytes)) });
    const startNs = process.hrtime.bigint();
    const p = writeBatch(this.db, ops, this.syncOnCommit).then(
      () => {
        this.committing = null;
        this.commitInFlight = null;
        const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
        this.onCommit?.(seconds);
        this.maybeRefreshDiskSize();
        // Writes staged during the commit may already exceed the limit.
        if (this.pending.size >= this.batchLimit) this.backgroundCommit();
      },
      (err: unknown) => {
        this.commitInFlight = null;
        throw this.failWith(err);
      },
    );
    this.commitInFlight = p;
    return p;
  }

  private failWith(err: unknown): Error {
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.fatal === null) {
      this.fatal = e;
      this.logger.error('backend commit failed; backend is now unusable', { error: e.message });
      this.onFatalError?.(e);
    }
    return this.fatal;
  }

  private assertUsable(): void {
    if (this.fatal !== null) throw this.fatal;
    if (this.closed) throw new Error('backend: closed');
  }

  // ----------------------------------------------------------------- reads

  async get(bucket: Bucket, key: Buffer): Promise<Buffer | undefined> {
    this.assertUsable();
    const full = fullKey(bucket, key);
    const p = this.overlayLookup(mapKey(full));
    if (p !== undefined) return p.value ?? undefined;
    if (this.swapping !== null) await this.swapping;
    return this.db.get(full);
  }

  /** Batched get; one LevelDB round trip for everything not in the pending overlay. */
  async getMany(bucket: Bucket, keys: readonly Buffer[]): Promise<Array<Buffer | undefined>> {
    this.assertUsable();
    const out: Array<Buffer | undefined> = new Array(keys.length);
    const missIdx: number[] = [];
    const missKeys: Buffer[] = [];
    for (let i = 0; i < keys.length; i++) {
      const full = fullKey(bucket, keys[i]!);
      const p = this.overlayLookup(mapKey(full));
      if (p !== undefined) out[i] = p.value ?? undefined;
      else {
        missIdx.push(i);
        missKeys.push(full);
      }
    }
    if (missKeys.length > 0) {
      const values = await this.db.getMany(missKeys);
      for (let j = 0; j < missIdx.length; j++) out[missIdx[j]!] = values[j];
    }
    return out;
  }

  private overlayLookup(mk: string): PendingOp | undefined {
    return this.pending.get(mk) ?? this.committing?.get(mk);
  }

  /**
   * Iterate a bucket in key order, yielding [key (without bucket prefix), value].
   * The view is fixed when iterate() is called (LevelDB snapshot + a copy of the
   * pending writes), so later writes never show up mid-iteration.
   */
  iterate(bucket: Bucket, range: IterateRange = {}): AsyncIterableIterator<[Buffer, Buffer]> {
    this.assertUsable();
    const lo = fullKey(bucket, range.gte ?? EMPTY);
    const hi = range.lt !== undefined ? fullKey(bucket, range.lt) : Buffer.from([bucket + 1]);
    const overlay = this.overlaySlice(lo, hi);
    const it = this.db.iterator({ gte: lo, lt: hi });
    return mergeIterate(it, overlay, 1);
  }

  /** Staged writes within [lo, hi), sorted, the newest write per key winning. */
  private overlaySlice(lo: Buffer, hi: Buffer): PendingOp[] {
    const merged = new Map<string, PendingOp>();
    const add = (m: Map<string, PendingOp> | null): void => {
      if (m === null) return;
      for (const [k, op] of m) {
        if (Buffer.compare(op.fullKey, lo) >= 0 && Buffer.compare(op.fullKey, hi) < 0) merged.set(k, op);
      }
    };
    add(this.committing);
    add(this.pending);
    return [...merged.values()].sort((a, b) => Buffer.compare(a.fullKey, b.fullKey));
  }

  // --------------------------------------------------------- size / maintenance

  /** Approximate bytes on disk (sum of the database directory's files), refreshed after commits. */
  sizeBytes(): number {
    return this.diskBytes;
  }

  /** Logical bytes in use: sum of key + value lengths of every stored entry (pending writes included). */
  sizeInUseBytes(): number {
    return Math.max(0, this.inUseBytes);
  }

  /** Re-read the on-disk size now. */
  async refreshDiskSize(): Promise<number> {
    let total = 0;
    const names = await fsp.readdir(this.dir);
    for (const name of names) {
      try {
        const st = await fsp.stat(path.join(this.dir, name));
        if (st.isFile()) total += st.size;
      } catch {
        // LevelDB deletes obsolete files concurrently; a vanished file simply counts 0.
      }
    }
    this.diskBytes = total;
    this.lastDiskRefreshMs = Date.now();
    return total;
  }

  private maybeRefreshDiskSize(): void {
    if (this.diskRefreshInFlight || Date.now() - this.lastDiskRefreshMs < DISK_SIZE_REFRESH_MIN_INTERVAL_MS) return;
    this.diskRefreshInFlight = true;
    this.refreshDiskSize()
      .catch((err: unknown) => this.logger.warn('backend: failed to measure database size', { error: String(err) }))
      .finally(() => {
        this.diskRefreshInFlight = false;
      });
  }

  /** Commit, then compact the whole LevelDB keyspace so deleted data is dropped from disk. */
  /**
   * Rebuilds the database from its live records into a fresh directory and swaps it in,
   * as etcd's defrag rewrites bbolt: LevelDB's own compactRange cannot reclaim space held in
   * a single level-0 file. Commits wait meanwhile (writes keep landing in the pending batch,
   * visible to reads), so the copy is a consistent image.
   */
  async defragment(): Promise<void> {
    await this.forceCommit();
    while (this.commitInFlight !== null) await this.commitInFlight;
    let release!: () => void;
    this.commitInFlight = new Promise<void>((resolve) => (release = resolve));
    const tmp = `${this.dir}.defrag`;
    const old = `${this.dir}.old`;
    try {
      await fsp.rm(tmp, { recursive: true, force: true });
      const fresh: Db = new ClassicLevel<Buffer, Buffer>(tmp, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await fresh.open();
      try {
        let ops: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [];
        for await (const [key, value] of this.db.iterator()) {
          ops.push({ type: 'put', key, value });
          if (ops.length >= 1000) {
            await fresh.batch(ops);
            ops = [];
          }
        }
        await fresh.batch(ops, { sync: true });
      } finally {
        await fresh.close();
      }
      let reopened!: () => void;
      this.swapping = new Promise<void>((resolve) => (reopened = resolve));
      try {
        await this.db.close();
        await fsp.rm(old, { recursive: true, force: true });
        await fsp.rename(this.dir, old);
        await fsp.rename(tmp, this.dir);
        await fsyncDir(path.dirname(this.dir));
        this.db = new ClassicLevel<Buffer, Buffer>(this.dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
        await this.db.open();
      } finally {
        this.swapping = null;
        reopened();
      }
      await fsp.rm(old, { recursive: true, force: true });
    } catch (err) {
      throw this.failWith(err);
    } finally {
      this.commitInFlight = null;
      release();
    }
    this.diskBytes = 0;
    await this.refreshDiskSize();
    this.backgroundCommit();
  }

  /**
   * CRC-32C over all buckets in etcd bucket-name order: name, then every key/value,
   * skipping the consistent index (like etcd's DefaultIgnores) and backend-private records.
   */
  async hash(): Promise<number> {
    this.assertUsable();
    const buckets = [...ALL_BUCKETS].sort((a, b) => (BUCKET_NAMES.get(a)! < BUCKET_NAMES.get(b)! ? -1 : 1));
    // Open every iterator first so all buckets are read from the same point in time.
    const iters = buckets.map((b) => this.iterate(b));
    let crc = 0;
    for (let i = 0; i < buckets.length; i++) {
      const bucket = buckets[i]!;
      crc = crc32c(Buffer.from(BUCKET_NAMES.get(bucket)!), crc);
      for await (const [k, v] of iters[i]!) {
        if (bucket === Bucket.Meta && (k.equals(META_CONSISTENT_INDEX) || k.equals(META_SIZE_IN_USE))) continue;
        crc = crc32c(k, crc);
        crc = crc32c(v, crc);
      }
    }
    return crc;
  }

  /** Every stored (bucket, key, value), point-in-time as of this call, excluding backend-private records. */
  entries(): AsyncIterableIterator<[Bucket, Buffer, Buffer]> {
    this.assertUsable();
    const lo = Buffer.from([0x00]);
    const hi = Buffer.from([0xff]);
    const overlay = this.overlaySlice(lo, hi);
    const it = this.db.iterator({ gte: lo, lt: hi });
    return allEntries(mergeIterate(it, overlay, 0));
  }

  /**
   * A byte stream holding a point-in-time image of the whole backend (format in
   * snapshot.ts, with a CRC-32C trailer). Restore it with Backend.restoreSnapshot().
   */
  snapshot(): Readable {
    return Readable.from(encodeSnapshot(this.entries()), { objectMode: false });
  }

  /**
   * Create a new backend directory from a snapshot stream. `dir` must not contain a
   * database. On any error (truncated/corrupt stream) the partial directory is removed.
   */
  static async restoreSnapshot(dir: string, source: AsyncIterable<Uint8Array>): Promise<void> {
    const existing = await fsp.readdir(dir).catch(() => [] as string[]);
    if (existing.length > 0) throw new Error(`backend: restore target ${dir} is not empty`);
    await fsp.mkdir(dir, { recursive: true });
    const db: Db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    let ok = false;
    try {
      let inUse = 0;
      let ops: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [];
      for await (const [bucket, key, value] of decodeSnapshot(source)) {
        const full = fullKey(bucket, key);
        inUse += entryBytes(full, value);
        ops.push({ type: 'put', key: full, value });
        if (ops.length >= 1000) {
          await db.batch(ops);
          ops = [];
        }
      }
      ops.push({ type: 'put', key: fullKey(Bucket.Meta, META_SIZE_IN_USE), value: encodeU64(inUse) });
      await db.batch(ops, { sync: true });
      ok = true;
    } finally {
      await db.close();
      if (!ok) await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  // -------------------------------------------------------------- lifecycle

  /** Commit pending writes and close LevelDB. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.fatal === null) await this.forceCommit();
    this.stopTimers();
    this.closed = true;
    await this.db.close();
  }

  /**
   * Close WITHOUT committing the pending batch — exactly what a process crash does to
   * it. Used by crash-recovery tests and by a fail-stop path that must not persist
   * half-applied state.
   */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.stopTimers();
    this.closed = true;
    this.pending = new Map();
    if (this.commitInFlight !== null) await this.commitInFlight.catch(() => {});
    await this.db.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private stopTimers(): void {
    if (this.intervalTimer !== null) {
      clearTimeout(this.intervalTimer);
      this.intervalTimer = null;
    }
  }

  /** Restore the size accounting from the persisted record (or by scanning a DB that has none). */
  private async loadAccounting(): Promise<void> {
    const stored = await this.db.get(fullKey(Bucket.Meta, META_SIZE_IN_USE));
    let scanned = 0;
    const sizeKey = mapKey(fullKey(Bucket.Meta, META_SIZE_IN_USE));
    for (const bucket of ALL_BUCKETS) {
      if (bucket === Bucket.Key && stored !== undefined) continue;
      for await (const [k, v] of this.db.iterator({ gte: Buffer.from([bucket]), lt: Buffer.from([bucket + 1]) })) {
        const mk = mapKey(k);
        if (mk === sizeKey) continue;
        const bytes = entryBytes(k, v);
        scanned += bytes;
        if (bucket !== Bucket.Key) this.smallEntrySizes.set(mk, bytes);
      }
    }
    this.inUseBytes = stored !== undefined ? Number(stored.readBigUInt64BE(0)) : scanned;
  }
}

type LevelIterator = ClassicIterator<Db, Buffer, Buffer>;

/**
 * Merge a LevelDB iterator with sorted staged writes (which win on equal keys, and
 * hide deleted keys). Yields keys with the first `stripPrefix` bytes removed.
 */
async function* mergeIterate(
  it: LevelIterator,
  overlay: PendingOp[],
  stripPrefix: number,
): AsyncGenerator<[Buffer, Buffer]> {
  let oi = 0;
  try {
    for (;;) {
      const chunk = await it.nextv(ITERATOR_BATCH_ENTRIES);
      if (chunk.length === 0) break;
      for (const [k, v] of chunk) {
        // Emit overlay entries that sort before this committed key.
        while (oi < overlay.length && Buffer.compare(overlay[oi]!.fullKey, k) < 0) {
          const op = overlay[oi++]!;
          if (op.value !== null) yield [op.fullKey.subarray(stripPrefix), op.value];
        }
        if (oi < overlay.length && overlay[oi]!.fullKey.equals(k)) {
          const op = overlay[oi++]!;
          if (op.value !== null) yield [op.fullKey.subarray(stripPrefix), op.value];
          continue;
        }
        yield [k.subarray(stripPrefix), v];
      }
    }
    while (oi < overlay.length) {
      const op = overlay[oi++]!;
      if (op.value !== null) yield [op.fullKey.subarray(stripPrefix), op.value];
    }
  } finally {
    await it.close();
  }
}

const SIZE_KEY_FULL = fullKey(Bucket.Meta, META_SIZE_IN_USE);

async function* allEntries(src: AsyncGenerator<[Buffer, Buffer]>): AsyncGenerator<[Bucket, Buffer, Buffer]> {
  for await (const [full, value] of src) {
    if (full.equals(SIZE_KEY_FULL)) continue;
    const bucket = full[0]!;
    if (!BUCKET_NAMES.has(bucket as Bucket)) throw new Error(`backend: unknown bucket prefix 0x${bucket.toString(16)}`);
    yield [bucket as Bucket, full.subarray(1), value];
  }
}
