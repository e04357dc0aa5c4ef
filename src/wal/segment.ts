// Segment files: naming, listing and durable creation.

import fs from 'node:fs';
import { fsyncDir } from '../fsync.js';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** `<seq 16 hex>-<first raft index 16 hex>.wal`, as etcd names its WAL files. */
const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
/** A segment being created; it only becomes part of the WAL when renamed. */
const TEMP_SUFFIX = '.tmp';

export interface SegmentName {
  /** Position in the chain; consecutive across the live segments. */
  seq: number;
  /** Index of the first Raft entry expected in this segment (last index + 1 when it was cut). */
  firstIndex: number;
  fileName: string;
}

function hex16(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`wal: cannot name a segment with ${value}`);
  return value.toString(16).padStart(16, '0');
}

export function segmentFileName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

function parseHex16(text: string): number | undefined {
  const value = BigInt('0x' + text);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

export function parseSegmentFileName(fileName: string): SegmentName | undefined {
  const match = SEGMENT_NAME.exec(fileName);
  if (!match) return undefined;
  const seq = parseHex16(match[1]!);
  const firstIndex = parseHex16(match[2]!);
  if (seq === undefined || firstIndex === undefined) return undefined;
  return { seq, firstIndex, fileName };
}

/** Segment names in `names`, ordered by sequence number. */
export function segmentsIn(names: readonly string[]): SegmentName[] {
  const segments: SegmentName[] = [];
  for (const name of names) {
    const parsed = parseSegmentFileName(name);
    if (parsed) segments.push(parsed);
  }
  return segments.sort((a, b) => a.seq - b.seq);
}

export function listSegmentsSync(dir: string): SegmentName[] {
  try {
    return segmentsIn(fs.readdirSync(dir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw e;
  }
}

/** Removes segment files whose creation was interrupted before their rename. */
export function removeTempSegments(dir: string): Promise<string[]> {
  return removeFilesEnding(dir, '.wal' + TEMP_SUFFIX);
}

/** Deletes the files of `dir` whose names end with `suffix`; returns their names. */
async function removeFilesEnding(dir: string, suffix: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await fsp.readdir(dir)) {
    if (name.endsWith(suffix)) {
      await fsp.rm(path.join(dir, name), { force: true });
      removed.push(name);
    }
  }
  return removed;
}

/**
 * A released segment on its way out: renamed out of the chain first (so a crash midway never
 * leaves a cut-down segment in it), emptied step by step, then unlinked.
 */
const RELEASED_SUFFIX = '.released';
/** Bytes freed per step while emptying a released segment. */
const RELEASE_STEP_BYTES = 4 * 1024 * 1024;
/** Pause between steps: the journal commits each small free before the next. */
const RELEASE_STEP_PAUSE_MS = 10;

/** Removes what an interrupted release left behind; returns the names removed. */
export function removeReleasedLeftovers(dir: string): Promise<string[]> {
  return removeFilesEnding(dir, '.wal' + RELEASED_SUFFIX);
}

/** Renames released segments out of the chain (oldest first) and makes that durable. */
export async function detachReleasedFiles(dir: string, fileNames: readonly string[]): Promise<string[]> {
  const detached: string[] = [];
  for (const name of fileNames) {
    await fsp.rename(path.join(dir, name), path.join(dir, name + RELEASED_SUFFIX));
    detached.push(name + RELEASED_SUFFIX);
  }
  await fsyncDir(dir);
  return detached;
}

/**
 * Frees a detached segment's blocks a few megabytes at a time, then unlinks it. Unlinking a
 * full 64 MB segment at once made one big journal transaction that every fdatasync on the
 * same file system (this member's WAL appends, and its peers' on one machine) waited for:
 * requests stalled ~140 ms at each release under load. In steps, nothing waits long.
 */
export async function deleteGradually(filePath: string): Promise<void> {
  const handle = await fsp.open(filePath, 'r+');
  try {
    let size = (await handle.stat()).size;
    while (size > 0) {
      size = Math.max(0, size - RELEASE_STEP_BYTES);
      await handle.truncate(size);
      if (size > 0) await new Promise((r) => setTimeout(r, RELEASE_STEP_PAUSE_MS));
    }
  } finally {
    await handle.close();
  }
  await fsp.rm(filePath);
}

export { fsyncDir };

/** Positional write that survives short writes. */
export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    if (bytesWritten <= 0) throw new Error(`wal: write returned ${bytesWritten} bytes`);
    written += bytesWritten;
  }
}

/**
 * Synchronous positional write that survives short writes. The WAL appends with it so that
 * a batch is in the page cache the moment save() is called and its fdatasync is dispatched
 * right away: an asynchronous write would need one more trip through a busy event loop
 * between the write and the fsync, with the disk idle meanwhile. Appending a batch (a few
 * KiB, copied into the page cache) costs tens of microseconds.
 */
export function writeFullySync(fd: number, bytes: Uint8Array, position: number): void {
  let written = 0;
  while (written < bytes.length) {
    const bytesWritten = fs.writeSync(fd, bytes, written, bytes.length - written, position + written);
    if (bytesWritten <= 0) throw new Error(`wal: write returned ${bytesWritten} bytes`);
    written += bytesWritten;
  }
}

/**
 * Creates a segment durably and atomically: the file is built under a temporary name,
 * preallocated, given its header records, fsynced, renamed into place, and the directory
 * fsynced. A crash therefore never leaves a named segment without its header.
 * Returns a read/write handle on the (renamed) file.
 */
export async function createSegmentFile(
  dir: string, fileName: string, header: Uint8Array, preallocateBytes: number, onFsync: (seconds: number) => void,
): Promise<FileHandle> {
  const finalPath = path.join(dir, fileName);
  const tempPath = finalPath + TEMP_SUFFIX;
  const handle = await fsp.open(tempPath, 'w+', 0o600);
  try {
    // Fixing the file size up front means later fdatasyncs of appends inside it do not have to
    // journal a size change. (Node has no fallocate; the file is sparse until written.)
    await handle.truncate(Math.max(preallocateBytes, header.length));
    await writeFully(handle, header, 0);
    await timedSync(handle, onFsync, false);
    await fsp.rename(tempPath, finalPath);
    await fsyncDir(dir);
    return handle;
  } catch (e) {
    await handle.close().catch(() => undefined);
    await fsp.rm(tempPath, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** fdatasync on the calling thread, reporting its duration. */
export function timedSyncBlocking(fd: number, onFsync: (seconds: number) => void): void {
  const startNs = process.hrtime.bigint();
  fs.fdatasyncSync(fd);
  onFsync(Number(process.hrtime.bigint() - startNs) / 1e9);
}

/** fdatasync (or fsync when the size changed and must reach disk too), reporting its duration. */
export async function timedSync(handle: FileHandle, onFsync: (seconds: number) => void, dataOnly: boolean): Promise<void> {
  const startNs = process.hrtime.bigint();
  if (dataOnly) await handle.datasync();
  else await handle.sync();
  onFsync(Number(process.hrtime.bigint() - startNs) / 1e9);
}
