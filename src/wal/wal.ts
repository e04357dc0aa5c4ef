// The write-ahead log: every Raft entry and HardState is made durable here before the
// server acknowledges anything that depends on it.

import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';
import {
  CRC_PAYLOAD_BYTES, entryPayloadBytes, snapshotPayloadBytes, STATE_PAYLOAD_BYTES,
  writeCrcPayload, writeEntryPayload, writeSnapshotPayload, writeStatePayload,
} from './codec.js';
import { WalCorruptError } from './errors.js';
import { BatchEncoder, nextSyncEpoch, RecordType } from './record.js';
import { emptyHardState, Replayer } from './replay.js';
import {
  createSegmentFile, deleteGradually, detachReleasedFiles, fsyncDir, listSegmentsSync, removeReleasedLeftovers, removeTempSegments,
  segmentFileName, segmentsIn,
  timedSync, timedSyncBlocking, writeFullySync, type SegmentName,
} from './segment.js';

export const DEFAULT_SEGMENT_SIZE_BYTES = 64 * 1024 * 1024;
/** save({ mayBlock }) syncs on the calling thread only while recent fdatasyncs average below this. */
export const DEFAULT_MAX_BLOCKING_SYNC_MS = 2;
/** Weight of the newest fdatasync in the latency average (about the last ten count). */
const FSYNC_EWMA_WEIGHT = 0.1;

export interface SaveOptions {
  /** The caller waits for durability and has nothing else to do meanwhile (see Wal.save). */
  mayBlock?: boolean;
}

export interface WalLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface WalOptions {
  /** A segment is cut once it grows past this (and preallocated to it). Default 64 MiB. */
  segmentSizeBytes?: number;
  logger?: WalLogger;
  /** Called with the duration of every fsync/fdatasync of a WAL file (etcd_disk_wal_fsync_duration_seconds). */
  onFsync?: (seconds: number) => void;
  /** Called with the number of bytes of every WAL write (etcd_disk_wal_write_bytes_total). */
  onWriteBytes?: (n: number) => void;
  /** Longest average fdatasync (ms) for which save({ mayBlock: true }) may block; 0 never blocks. Default 2. */
  maxBlockingSyncMs?: number;
}

export interface OpenedWal {
  wal: Wal;
  metadata: Uint8Array;
  /** The last saved HardState ({term: 0, vote: 0n, commit: 0} if none was ever saved). */
  hardState: HardState;
  /** The live log after the latest snapshot marker (all indexes > snapshot.index), contiguous. */
  entries: Entry[];
  /** The latest snapshot marker, if any. */
  snapshot?: SnapshotMeta;
}

const SILENT_LOGGER: WalLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface ResolvedOptions {
  segmentSizeBytes: number;
  maxBlockingSyncMs: number;
  logger: WalLogger;
  onFsync: (seconds: number) => void;
  onWriteBytes: (n: number) => void;
}

function resolveOptions(opts: WalOptions | undefined): ResolvedOptions {
  const segmentSizeBytes = opts?.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES;
  if (!Number.isSafeInteger(segmentSizeBytes) || segmentSizeBytes <= 0) {
    throw new RangeError(`wal: segmentSizeBytes must be a positive integer, got ${segmentSizeBytes}`);
  }
  const maxBlockingSyncMs = opts?.maxBlockingSyncMs ?? DEFAULT_MAX_BLOCKING_SYNC_MS;
  if (!(maxBlockingSyncMs >= 0)) throw new RangeError(`wal: maxBlockingSyncMs must be >= 0, got ${maxBlockingSyncMs}`);
  return {
    segmentSizeBytes,
    maxBlockingSyncMs,
    logger: opts?.logger ?? SILENT_LOGGER,
    onFsync: opts?.onFsync ?? (() => undefined),
    onWriteBytes: opts?.onWriteBytes ?? (() => undefined),
  };
}

function isEmptyHardState(state: HardState): boolean {
  return state.term === 0 && state.vote === 0n && state.commit === 0;
}

function copyHardState(state: HardState): HardState {
  return { term: state.term, vote: state.vote, commit: state.commit };
}

/** Everything the WAL must know to continue appending where the log left off. */
interface WalState {
  metadata: Uint8Array;
  segments: SegmentName[];
  handle: FileHandle;
  offsetBytes: number;
  crc: number;
  syncEpoch: number;
  hardState: HardState;
  snapshot: SnapshotMeta | undefined;
  lastIndex: number;
}

export class Wal {
  private readonly encoder = new BatchEncoder();
  /** Tail of the operation queue: saves, snapshots, releases and close run strictly one at a time. */
  private queue: Promise<void> = Promise.resolve();
  /** Released segments being deleted, beside the queue (see releaseTo). */
  private deleting: Promise<void> = Promise.resolve();
  /** Operations queued or running; when 0, a new operation starts synchronously inside its call. */
  private activeOps = 0;
  private closeRequested = false;
  /** Set once a write or fsync failed: the on-disk state is unknown, so nothing more may be written. */
  private failure: Error | undefined;
  /** Bytes written since the last fdatasync (commit-only saves are not synced; see save()). */
  private unsyncedBytes = 0;
  /** Moving average of recent fdatasync latencies (ms); gates blocking syncs (see save()). */
  private fsyncEwmaMs = 0;

  private constructor(
    readonly dir: string,
    private readonly opts: ResolvedOptions,
    private readonly state: WalState,
  ) {}

  /** True if `dir` holds at least one WAL segment. */
  static exists(dir: string): boolean {
    return listSegmentsSync(dir).length > 0;
  }

  /**
   * Creates a new WAL in `dir` (which must not hold one). The first segment is written in
   * `<dir>.tmp`, which is then renamed to `dir` and the parent directory fsynced, so a crash
   * leaves either no WAL or a complete one.
   */
  static async create(dir: string, metadata: Uint8Array, opts?: WalOptions): Promise<Wal> {
    const options = resolveOptions(opts);
    if (Wal.exists(dir)) throw new Error(`wal: ${dir} already holds a WAL`);
    const absoluteDir = path.resolve(dir);
    const parent = path.dirname(absoluteDir);
    await fsp.mkdir(parent, { recursive: true });
    const tempDir = absoluteDir + '.tmp';
    await fsp.rm(tempDir, { recursive: true, force: true });
    await fsp.mkdir(tempDir, { mode: 0o700 });

    const metadataCopy = Buffer.from(metadata);
    const encoder = new BatchEncoder();
    encoder.begin(0, 0);
    writeSegmentHeader(encoder, 0, metadataCopy, undefined, undefined);
    const header = encoder.finish(true);
    const fileName = segmentFileName(0, 0);
    const handle = await createSegmentFile(tempDir, fileName, header.bytes, options.segmentSizeBytes, options.onFsync);
    options.onWriteBytes(header.bytes.length);
    try {
      await fsp.rename(tempDir, absoluteDir);
    } catch (e) {
      await handle.close().catch(() => undefined);
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new Error(`wal: cannot create a WAL in ${dir}: directory is not empty`);
      throw e;
    }
    await fsyncDir(parent);
    options.logger.info('wal: created', { dir: absoluteDir, segment: fileName });
    return new Wal(absoluteDir, options, {
      metadata: metadataCopy,
      segments: [{ seq: 0, firstIndex: 0, fileName }],
      handle,
      offsetBytes: header.bytes.length,
      crc: header.crc,
      syncEpoch: nextSyncEpoch(0),
      hardState: emptyHardState(),
      snapshot: undefined,
      lastIndex: 0,
    });
  }

  /**
   * Opens an existing WAL and replays it: returns the metadata, the last HardState, the
   * latest snapshot marker and the live entries after it. A torn final write in the last
   * segment is cut off (with a warning); any other damage throws WalCorruptError.
   */
  static async open(dir: string, opts?: WalOptions): Promise<OpenedWal> {
    const options = resolveOptions(opts);
    const absoluteDir = path.resolve(dir);
    for (const name of await removeTempSegments(absoluteDir)) {
      options.logger.warn('wal: removed a segment whose creation was interrupted', { file: name });
    }
    for (const name of await removeReleasedLeftovers(absoluteDir)) {
      options.logger.info('wal: removed a released segment whose deletion was interrupted', { file: name });
    }
    const segments = segmentsIn(await fsp.readdir(absoluteDir));
    if (segments.length === 0) throw new Error(`wal: no segment files in ${absoluteDir}`);
    for (let i = 1; i < segments.length; i++) {
      if (segments[i]!.seq !== segments[i - 1]!.seq + 1) {
        throw new WalCorruptError(segments[i]!.fileName, 0, `segment sequence jumps from ${segments[i - 1]!.seq} to ${segments[i]!.seq}; a segment is missing`);
      }
    }

    const replayer = new Replayer();
    let endOffset = 0;
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!;
      const isLast = i === segments.length - 1;
      const bytes = await fsp.readFile(path.join(absoluteDir, segment.fileName));
      const result = replayer.replaySegment(segment.fileName, bytes, isLast);
      endOffset = result.endOffset;
      if (result.tornReason !== undefined) {
        options.logger.warn('wal: repairing torn tail of the last segment; discarding the unfinished final write', {
          file: segment.fileName, offset: result.endOffset, reason: result.tornReason, 'discarded-bytes': bytes.length - result.endOffset,
        });
        await repairTail(path.join(absoluteDir, segment.fileName), result.endOffset, options);
      }
    }
    replayer.finish();
    const metadata = replayer.metadata;
    const crc = replayer.crc;
    if (metadata === undefined || crc === undefined) {
      throw new WalCorruptError(segments[0]!.fileName, 0, 'no metadata record');
    }

    const lastSegment = segments[segments.length - 1]!;
    const handle = await fsp.open(path.join(absoluteDir, lastSegment.fileName), 'r+');
    const wal = new Wal(absoluteDir, options, {
      metadata,
      segments,
      handle,
      offsetBytes: endOffset,
      crc,
      syncEpoch: replayer.syncEpoch,
      hardState: copyHardState(replayer.hardState),
      snapshot: replayer.snapshot,
      lastIndex: replayer.lastIndex(),
    });
    options.logger.info('wal: opened', {
      dir: absoluteDir, segments: segments.length, entries: replayer.entries.length,
      'snapshot-index': replayer.snapshot?.index ?? 0, 'last-index': replayer.lastIndex(),
    });
    const opened: OpenedWal = { wal, metadata, hardState: replayer.hardState, entries: replayer.entries };
    if (replayer.snapshot) opened.snapshot = replayer.snapshot;
    return opened;
  }

  /**
   * Appends `entries` (contiguous; the first may rewind the log to truncate a conflicting
   * tail) and then `hardState`, as ONE write. The write is followed by one fdatasync unless
   * nothing in it needs durability before acknowledgement: like etcd, a save that carries
   * no entries and only changes the commit index is not synced (the commit index can be
   * relearned from the leader); it becomes durable with the next synced write or close().
   * Calls made while another is in flight are queued and run in call order. When the WAL is
   * idle the bytes are written before save() returns and only the fdatasync is awaited, so
   * the caller may do other work while the disk syncs.
   *
   * `opts.mayBlock`: the caller has nothing to do until this save is durable. If the WAL is
   * idle and its recent fdatasyncs were fast (under `maxBlockingSyncMs`), it then syncs on
   * the calling thread: a blocking fdatasync skips the thread-pool hand-off and the wake-up
   * after it, which here is a third of a small fsync's latency (p50 ~0.15 vs ~0.21 ms). The
   * returned promise is already settled. A slow disk never stalls the event loop this way.
   */
  save(hardState: HardState | undefined, entries: Entry[], opts?: SaveOptions): Promise<void> {
    if (opts?.mayBlock && this.activeOps === 0 && !this.closeRequested && !this.failure && this.fsyncEwmaMs < this.opts.maxBlockingSyncMs) {
      try {
        if (this.writeBatch(hardState, entries)) this.syncActiveBlocking();
      } catch (e) {
        return Promise.reject(e);
      }
      return this.state.offsetBytes >= this.opts.segmentSizeBytes ? this.enqueue(() => this.cutIfFull()) : Promise.resolve();
    }
    return this.enqueue(() => this.saveNow(hardState, entries));
  }

  /** Records a snapshot marker: replay will start after `meta.index`. Synced. */
  saveSnapshot(meta: SnapshotMeta): Promise<void> {
    return this.enqueue(() => this.saveSnapshotNow(meta));
  }

  /**
   * Deletes whole segments that only hold entries below `index` (the newest segment is
   * always kept). `index` must not exceed the latest snapshot marker's index + 1, so nothing
   * the snapshot does not cover is ever deleted.
   */
  releaseTo(index: number): Promise<void> {
    // Only the bookkeeping waits its turn in the queue. Deleting the files (unlinking a
    // 64 MB segment and an fsync of the directory: ~0.2 s under load here) runs beside the
    // queue, so the saves behind it, and every write waiting for them, do not stall.
    let released: readonly SegmentName[] = [];
    const detached = this.enqueue(async () => {
      released = this.detachSegmentsUpTo(index);
    });
    return detached.then(() => this.deleteSegments(index, released));
  }

  /** Waits for queued operations, syncs anything unsynced and closes the active segment. */
  close(): Promise<void> {
    if (this.closeRequested) return this.queue;
    // Runs even after an I/O failure: the file handle must not leak.
    const closing = this.enqueue(async () => {
      try {
        await this.deleting;
        if (this.unsyncedBytes > 0 && !this.failure) await this.syncActive();
      } finally {
        await this.state.handle.close().catch((e: unknown) => {
          if (!this.failure) throw e;
        });
      }
    }, true);
    this.closeRequested = true;
    return closing;
  }

  /** Where the next record will be written (for diagnostics and tests). */
  get tail(): { file: string; offsetBytes: number } {
    return { file: this.state.segments[this.state.segments.length - 1]!.fileName, offsetBytes: this.state.offsetBytes };
  }

  /** Live segment file names, oldest first. */
  get segmentFiles(): string[] {
    return this.state.segments.map((s) => s.fileName);
  }

  // ---------------------------------------------------------------- queued operations

  private enqueue(op: () => Promise<void>, evenAfterFailure = false): Promise<void> {
    if (this.closeRequested) return Promise.reject(new Error('wal: closed'));
    const run = async (): Promise<void> => {
      try {
        if (this.failure && !evenAfterFailure) throw new Error(`wal: unusable after an earlier I/O failure: ${this.failure.message}`);
        await op();
      } finally {
        // Before the caller's continuation runs: an operation it issues next starts at once.
        this.activeOps--;
      }
    };
    // Nothing queued: start now rather than a microtask later, so the write is issued before
    // the caller goes on (e.g. to apply the previous batch while this one syncs).
    const idle = this.activeOps === 0;
    this.activeOps++;
    const result = idle ? run() : this.queue.then(run);
    this.queue = result.then(() => undefined, () => undefined);
    return result;
  }

  private async saveNow(hardState: HardState | undefined, entries: Entry[]): Promise<void> {
    const mustSync = this.writeBatch(hardState, entries);
    if (mustSync === undefined) return;
    if (mustSync) await this.syncActive();
    await this.cutIfFull();
  }

  /**
   * Encodes and writes one save (synchronously, into the page cache) and advances the WAL's
   * state past it. Returns whether it must be fdatasynced before it counts as durable, or
   * undefined when there was nothing to write.
   */
  private writeBatch(hardState: HardState | undefined, entries: Entry[]): boolean | undefined {
    if (hardState === undefined && entries.length === 0) return undefined;
    this.assertEntriesFollowLog(entries);
    const previous = this.state.hardState;
    const mustSync = entries.length > 0 || (hardState !== undefined && (hardState.term !== previous.term || hardState.vote !== previous.vote));

    const encoder = this.encoder;
    encoder.begin(this.state.crc, this.state.syncEpoch);
    // Entries before the state: if the write is torn, a state whose commit index points
    // into the lost entries must be lost with them.
    for (const entry of entries) addEntryRecord(encoder, entry);
    if (hardState) addStateRecord(encoder, hardState);
    const batch = encoder.finish(mustSync);

    this.writeToActive(batch.bytes);
    // A failed fdatasync after this poisons the WAL, so advancing the state now is safe.
    this.state.crc = batch.crc;
    if (mustSync) this.state.syncEpoch = nextSyncEpoch(this.state.syncEpoch);
    const lastEntry = entries[entries.length - 1];
    if (lastEntry) this.state.lastIndex = lastEntry.index;
    if (hardState) this.state.hardState = copyHardState(hardState);
    return mustSync;
  }

  private async saveSnapshotNow(meta: SnapshotMeta): Promise<void> {
    const previousIndex = this.state.snapshot?.index ?? 0;
    if (!Number.isSafeInteger(meta.index) || meta.index < previousIndex) {
      throw new RangeError(`wal: snapshot index ${meta.index} is behind the latest snapshot marker ${previousIndex}`);
    }
    const encoder = this.encoder;
    encoder.begin(this.state.crc, this.state.syncEpoch);
    addSnapshotRecord(encoder, meta);
    const batch = encoder.finish(true);
    await this.appendToActive(batch.bytes, true);
    this.state.crc = batch.crc;
    this.state.syncEpoch = nextSyncEpoch(this.state.syncEpoch);
    this.state.snapshot = { index: meta.index, term: meta.term, confState: { voters: [...meta.confState.voters], learners: [...meta.confState.learners] } };
    this.state.lastIndex = Math.max(this.state.lastIndex, meta.index);
    await this.cutIfFull();
  }

  /** Drops the segments `releaseTo(index)` may delete from the live chain; returns them. */
  private detachSegmentsUpTo(index: number): readonly SegmentName[] {
    const snapshotIndex = this.state.snapshot?.index ?? 0;
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`wal: releaseTo(${index}): not a valid index`);
    if (index > snapshotIndex + 1) {
      throw new RangeError(`wal: releaseTo(${index}) would drop entries above the latest snapshot marker (index ${snapshotIndex})`);
    }
    const segments = this.state.segments;
    // Keep from the newest segment that was started at or below `index`: every older segment
    // was sealed while the log ended below that segment's first index, so whatever it holds
    // is below `index` (or was overwritten later).
    let keepFrom = 0;
    for (let i = 1; i < segments.length; i++) if (segments[i]!.firstIndex <= index) keepFrom = i;
    if (keepFrom === 0) return [];
    this.state.segments = segments.slice(keepFrom);
    return segments.slice(0, keepFrom);
  }

  /** Deletes detached segments, one release after another (close() waits for them). */
  private deleteSegments(index: number, released: readonly SegmentName[]): Promise<void> {
    if (released.length === 0) return Promise.resolve();
    const run = async (): Promise<void> => {
      // Out of the chain first, oldest first: a crash midway leaves a shorter but still
      // contiguous chain, and at most leftovers that open() removes.
      const detached = await this.guardIo(() => detachReleasedFiles(this.dir, released.map((s) => s.fileName)));
      for (const name of detached) await this.guardIo(() => deleteGradually(path.join(this.dir, name)));
      await this.guardIo(() => fsyncDir(this.dir));
      this.opts.logger.info('wal: released segments', { index, files: released.map((s) => s.fileName) });
    };
    const deleting = this.deleting.then(run, run);
    this.deleting = deleting.catch(() => undefined);
    return deleting;
  }

  // ---------------------------------------------------------------- internals

  private assertEntriesFollowLog(entries: Entry[]): void {
    const first = entries[0];
    if (!first) return;
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.index !== entries[i - 1]!.index + 1) {
        throw new RangeError(`wal: entries in one save must be contiguous (index ${entries[i - 1]!.index} followed by ${entries[i]!.index})`);
      }
    }
    if (first.index > this.state.lastIndex + 1) {
      throw new RangeError(`wal: entry index ${first.index} would leave a gap after the last index ${this.state.lastIndex}`);
    }
  }

  private writeToActive(bytes: Buffer): void {
    this.guardIoSync(() => writeFullySync(this.state.handle.fd, bytes, this.state.offsetBytes));
    this.state.offsetBytes += bytes.length;
    this.unsyncedBytes += bytes.length;
    this.opts.onWriteBytes(bytes.length);
  }

  private async appendToActive(bytes: Buffer, sync: boolean): Promise<void> {
    this.writeToActive(bytes);
    if (sync) await this.syncActive();
  }

  private async syncActive(): Promise<void> {
    await this.guardIo(() => timedSync(this.state.handle, this.onFsync, true));
    this.unsyncedBytes = 0;
  }

  private syncActiveBlocking(): void {
    this.guardIoSync(() => timedSyncBlocking(this.state.handle.fd, this.onFsync));
    this.unsyncedBytes = 0;
  }

  /** Every fdatasync of the active segment: the caller's callback and the latency average. */
  private readonly onFsync = (seconds: number): void => {
    this.fsyncEwmaMs += FSYNC_EWMA_WEIGHT * (seconds * 1000 - this.fsyncEwmaMs);
    this.opts.onFsync(seconds);
  };

  private guardIoSync<T>(step: () => T): T {
    try {
      return step();
    } catch (e) {
      this.poison(e as Error);
      throw e;
    }
  }

  private poison(e: Error): void {
    this.failure = e;
    this.opts.logger.error('wal: I/O failed; the WAL refuses further writes', { dir: this.dir, error: e.message });
  }

  /** Runs an I/O step; a failure poisons the WAL (after a failed fsync nothing can be assumed about the file). */
  private async guardIo<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (e) {
      this.poison(e as Error);
      throw e;
    }
  }

  private async cutIfFull(): Promise<void> {
    if (this.state.offsetBytes >= this.opts.segmentSizeBytes) await this.cut();
  }

  /**
   * Seals the active segment and starts the next one. The sealed file is truncated to its
   * last record (so any later damage in a non-last segment is unambiguous corruption) and
   * fsynced before the new segment is renamed into place.
   */
  private async cut(): Promise<void> {
    const state = this.state;
    await this.guardIo(async () => {
      await state.handle.truncate(state.offsetBytes);
      await timedSync(state.handle, this.opts.onFsync, false);
    });
    this.unsyncedBytes = 0;

    const previous = state.segments[state.segments.length - 1]!;
    const next: SegmentName = { seq: previous.seq + 1, firstIndex: state.lastIndex + 1, fileName: '' };
    next.fileName = segmentFileName(next.seq, next.firstIndex);
    const encoder = this.encoder;
    encoder.begin(state.crc, state.syncEpoch);
    // Every segment restates the metadata, the latest snapshot marker and HardState, so
    // releasing older segments never loses them.
    writeSegmentHeader(encoder, state.crc, state.metadata, state.snapshot, isEmptyHardState(state.hardState) ? undefined : state.hardState);
    const header = encoder.finish(true);
    const handle = await this.guardIo(() =>
      createSegmentFile(this.dir, next.fileName, header.bytes, this.opts.segmentSizeBytes, this.opts.onFsync));
    this.opts.onWriteBytes(header.bytes.length);
    await state.handle.close().catch(() => undefined);
    state.handle = handle;
    state.offsetBytes = header.bytes.length;
    state.crc = header.crc;
    state.syncEpoch = nextSyncEpoch(state.syncEpoch);
    state.segments.push(next);
    this.opts.logger.info('wal: cut segment', { file: next.fileName, previous: previous.fileName });
  }
}

/** The records every segment starts with; the chain continues from `previousCrc`. */
function writeSegmentHeader(
  encoder: BatchEncoder, previousCrc: number, metadata: Uint8Array, snapshot: SnapshotMeta | undefined, hardState: HardState | undefined,
): void {
  if (encoder.currentCrc !== previousCrc) throw new Error('wal: segment header must start from the chain crc');
  const crcAt = encoder.reserve(RecordType.Crc, CRC_PAYLOAD_BYTES);
  writeCrcPayload(encoder.buffer, crcAt, previousCrc);
  const metadataAt = encoder.reserve(RecordType.Metadata, metadata.length);
  encoder.buffer.set(metadata, metadataAt);
  if (snapshot) addSnapshotRecord(encoder, snapshot);
  if (hardState) addStateRecord(encoder, hardState);
}

// reserve() may grow (reallocate) the scratch buffer, so the buffer is read only after it.
function addEntryRecord(encoder: BatchEncoder, entry: Entry): void {
  const at = encoder.reserve(RecordType.Entry, entryPayloadBytes(entry));
  writeEntryPayload(encoder.buffer, at, entry);
}

function addStateRecord(encoder: BatchEncoder, hardState: HardState): void {
  const at = encoder.reserve(RecordType.State, STATE_PAYLOAD_BYTES);
  writeStatePayload(encoder.buffer, at, hardState);
}

function addSnapshotRecord(encoder: BatchEncoder, meta: SnapshotMeta): void {
  const at = encoder.reserve(RecordType.Snapshot, snapshotPayloadBytes(meta));
  writeSnapshotPayload(encoder.buffer, at, meta);
}

/** Cuts a torn tail off and restores the preallocated (zeroed) space after it. */
async function repairTail(filePath: string, endOffset: number, options: ResolvedOptions): Promise<void> {
  const handle = await fsp.open(filePath, 'r+');
  try {
    // Shrinking then growing guarantees the discarded bytes read back as zeros, so no stale
    // fragment of the torn write can later look like data.
    await handle.truncate(endOffset);
    await handle.truncate(Math.max(endOffset, options.segmentSizeBytes));
    await timedSync(handle, options.onFsync, false);
  } finally {
    await handle.close();
  }
}
