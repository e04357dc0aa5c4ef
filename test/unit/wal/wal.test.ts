import fs from 'node:fs';
import path from 'node:path';
import fsp, { type FileHandle } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EntryType, type SnapshotMeta } from '../../../src/raft/types.js';
import { Wal } from '../../../src/wal/index.js';
import { deleteGradually } from '../../../src/wal/segment.js';
import { entries, entry, hardState, makeTempDir, plain, recordingLogger, removeDir, walFiles } from './helpers.js';

const METADATA = Buffer.from('{"memberId":"8e9e05c52164694d","clusterId":"cdf818194e3a8c32"}');

describe('Wal', () => {
  let root: string;
  let dir: string;

  beforeEach(() => {
    root = makeTempDir();
    dir = path.join(root, 'member', 'wal');
  });
  afterEach(() => removeDir(root));

  it('creates atomically: a named first segment, no temp dir left, exists() flips', async () => {
    expect(Wal.exists(dir)).toBe(false);
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 4096 });
    expect(Wal.exists(dir)).toBe(true);
    expect(walFiles(dir)).toEqual(['0000000000000000-0000000000000000.wal']);
    expect(fs.existsSync(dir + '.tmp')).toBe(false);
    // preallocated to the segment size
    expect(fs.statSync(path.join(dir, walFiles(dir)[0]!)).size).toBe(4096);
    await wal.close();
    await expect(Wal.create(dir, METADATA)).rejects.toThrow(/already holds a WAL/);
  });

  it('creates into an existing empty directory but refuses a non-empty one', async () => {
    fs.mkdirSync(dir, { recursive: true });
    const wal = await Wal.create(dir, METADATA);
    await wal.close();
    const other = path.join(root, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'stray'), 'x');
    await expect(Wal.create(other, METADATA)).rejects.toThrow(/not empty/);
  });

  it('round-trips metadata, hard state and entries across close/open', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(hardState(1, 0n, 0), []);
    await wal.save(hardState(1, 0xffff_ffff_ffff_fff1n, 0), entries(1, 3, 1));
    const confChange = { index: 4, term: 2, type: EntryType.ConfChange, data: Buffer.from([0, 1, 2, 255]) };
    const empty = { index: 5, term: 2, type: EntryType.Normal, data: new Uint8Array(0) };
    await wal.save(hardState(2, 7n, 4), [confChange, empty]);
    await wal.close();

    const opened = await Wal.open(dir);
    expect(Buffer.from(opened.metadata).toString()).toBe(METADATA.toString());
    expect(opened.hardState).toEqual(hardState(2, 7n, 4));
    expect(plain(opened.entries)).toEqual(plain([...entries(1, 3, 1), confChange, empty]));
    expect(opened.snapshot).toBeUndefined();
    await opened.wal.close();
  });

  it('returns an empty state for a fresh WAL and rejects use after close', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.close();
    const opened = await Wal.open(dir);
    expect(opened.hardState).toEqual(hardState(0, 0n, 0));
    expect(opened.entries).toEqual([]);
    await opened.wal.close();
    await expect(opened.wal.save(hardState(1, 0n, 0), [])).rejects.toThrow(/closed/);
  });

  it('keeps appending after reopen', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(hardState(1, 1n, 2), entries(1, 2, 1));
    await wal.close();
    const first = await Wal.open(dir);
    await first.wal.save(hardState(1, 1n, 4), entries(3, 4, 1));
    await first.wal.close();
    const second = await Wal.open(dir);
    expect(plain(second.entries)).toEqual(plain(entries(1, 4, 1)));
    expect(second.hardState).toEqual(hardState(1, 1n, 4));
    await second.wal.close();
  });

  it('replaces the tail when entries rewind the log (leader change truncation)', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(hardState(1, 1n, 2), entries(1, 5, 1));
    // new leader in term 2 overwrites from index 4
    await wal.save(hardState(2, 2n, 2), entries(4, 4, 2));
    await wal.save(undefined, entries(5, 6, 2));
    // and a further rewind to index 2 within the same save batch history
    await wal.save(hardState(3, 3n, 1), entries(2, 3, 3));
    await wal.close();
    const opened = await Wal.open(dir);
    expect(plain(opened.entries)).toEqual(plain([entry(1, 1), ...entries(2, 3, 3)]));
    expect(opened.hardState).toEqual(hardState(3, 3n, 1));
    await opened.wal.close();
  });

  it('rejects entry batches that are not contiguous or leave a gap, and stays usable', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(undefined, entries(1, 2, 1));
    await expect(wal.save(undefined, [entry(3, 1), entry(5, 1)])).rejects.toThrow(/contiguous/);
    await expect(wal.save(undefined, [entry(4, 1)])).rejects.toThrow(/gap/);
    await wal.save(undefined, [entry(3, 1)]);
    await wal.close();
    const opened = await Wal.open(dir);
    expect(plain(opened.entries)).toEqual(plain(entries(1, 3, 1)));
    await opened.wal.close();
  });

  it('cuts segments at segmentSizeBytes, names them seq-firstIndex, and replays across them', async () => {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 1024 });
    let index = 1;
    for (let batch = 0; batch < 40; batch++) {
      await wal.save(hardState(1, 1n, index - 1), entries(index, index + 2, 1));
      index += 3;
    }
    const files = walFiles(dir);
    expect(files.length).toBeGreaterThan(3);
    expect(wal.segmentFiles).toEqual(files);
    files.forEach((name, seq) => expect(name.startsWith(seq.toString(16).padStart(16, '0') + '-')).toBe(true));
    // each cut names the segment after the last index written before it
    const firstIndexes = files.map((n) => parseInt(n.slice(17, 33), 16));
    expect(firstIndexes[0]).toBe(0);
    for (let i = 1; i < firstIndexes.length; i++) {
      expect(firstIndexes[i]! > firstIndexes[i - 1]!).toBe(true);
      expect((firstIndexes[i]! - 1) % 3).toBe(0);
    }
    // sealed segments are truncated to their last record, the active one stays preallocated
    for (const name of files.slice(0, -1)) expect(fs.statSync(path.join(dir, name)).size).toBeGreaterThanOrEqual(1024);
    await wal.close();

    const opened = await Wal.open(dir, { segmentSizeBytes: 1024 });
    expect(plain(opened.entries)).toEqual(plain(entries(1, 120, 1)));
    expect(opened.hardState).toEqual(hardState(1, 1n, 117));
    await opened.wal.close();
  });

  it('replays truncation that crosses a segment boundary', async () => {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 512 });
    for (let i = 1; i <= 30; i += 3) await wal.save(hardState(1, 1n, 0), entries(i, i + 2, 1));
    expect(walFiles(dir).length).toBeGreaterThan(2);
    await wal.save(hardState(2, 2n, 0), entries(5, 7, 2));
    await wal.close();
    const opened = await Wal.open(dir, { segmentSizeBytes: 512 });
    expect(plain(opened.entries)).toEqual(plain([...entries(1, 4, 1), ...entries(5, 7, 2)]));
    await opened.wal.close();
  });

  it('replays only entries after the latest snapshot marker, keeping later entries written before it', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(hardState(1, 1n, 10), entries(1, 10, 1));
    const meta: SnapshotMeta = { index: 6, term: 1, confState: { voters: [1n, 0xdeadbeefcafef00dn], learners: [3n] } };
    await wal.saveSnapshot(meta);
    await wal.save(hardState(1, 1n, 12), entries(11, 12, 1));
    await wal.close();
    const opened = await Wal.open(dir);
    expect(opened.snapshot).toEqual(meta);
    expect(plain(opened.entries)).toEqual(plain(entries(7, 12, 1)));
    expect(opened.hardState.commit).toBe(12);
    await opened.wal.close();
  });

  it('replays a rewind to the first entry after the snapshot', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(hardState(1, 1n, 10), entries(1, 15, 1));
    await wal.saveSnapshot({ index: 10, term: 1, confState: { voters: [1n], learners: [] } });
    await wal.save(hardState(2, 2n, 10), entries(11, 12, 2));
    await wal.close();
    const opened = await Wal.open(dir);
    expect(plain(opened.entries)).toEqual(plain(entries(11, 12, 2)));
    await opened.wal.close();
  });

  it('accepts a snapshot beyond the log (installed from the leader) followed by entries after it', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(hardState(1, 1n, 3), entries(1, 3, 1));
    const meta: SnapshotMeta = { index: 100, term: 4, confState: { voters: [1n, 2n, 3n], learners: [] } };
    await wal.saveSnapshot(meta);
    await expect(wal.saveSnapshot({ ...meta, index: 50 })).rejects.toThrow(/behind/);
    await wal.save(hardState(4, 2n, 101), entries(101, 102, 4));
    await wal.close();
    const opened = await Wal.open(dir);
    expect(opened.snapshot).toEqual(meta);
    expect(plain(opened.entries)).toEqual(plain(entries(101, 102, 4)));
    await opened.wal.close();
  });

  it('releaseTo deletes only whole older segments and replay still yields the state', async () => {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 600 });
    for (let i = 1; i <= 60; i += 3) await wal.save(hardState(1, 1n, i + 2), entries(i, i + 2, 1));
    const before = walFiles(dir);
    expect(before.length).toBeGreaterThan(4);
    await expect(wal.releaseTo(41)).rejects.toThrow(/snapshot marker/);
    const meta: SnapshotMeta = { index: 40, term: 1, confState: { voters: [1n], learners: [] } };
    await wal.saveSnapshot(meta);
    await wal.releaseTo(40);
    const after = walFiles(dir);
    expect(after.length).toBeLessThan(before.length);
    expect(wal.segmentFiles).toEqual(after);
    // the oldest kept segment starts at or below 40; the next one starts above 40
    const firstIndexes = after.map((n) => parseInt(n.slice(17, 33), 16));
    expect(firstIndexes[0]!).toBeLessThanOrEqual(40);
    if (firstIndexes.length > 1) expect(firstIndexes[1]!).toBeGreaterThan(40);
    // everything deleted was a prefix of the chain
    expect(before.slice(before.length - after.length)).toEqual(after);
    await wal.save(hardState(1, 1n, 61), entries(61, 61, 1));
    await wal.close();

    const opened = await Wal.open(dir, { segmentSizeBytes: 600 });
    expect(opened.snapshot).toEqual(meta);
    expect(plain(opened.entries)).toEqual(plain(entries(41, 61, 1)));
    expect(opened.hardState).toEqual(hardState(1, 1n, 61));
    expect(Buffer.from(opened.metadata).toString()).toBe(METADATA.toString());
    await opened.wal.close();
  });

  it('keeps snapshot marker and hard state when the segments holding them are released', async () => {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 400 });
    await wal.save(hardState(5, 2n, 10), entries(1, 10, 5));
    const meta: SnapshotMeta = { index: 10, term: 5, confState: { voters: [2n], learners: [] } };
    await wal.saveSnapshot(meta);
    // Small saves without a new hard state push the marker and state into released segments.
    for (let i = 11; i <= 40; i++) await wal.save(undefined, [entry(i, 5)]);
    const meta2: SnapshotMeta = { index: 35, term: 5, confState: { voters: [2n], learners: [] } };
    await wal.saveSnapshot(meta2);
    for (let i = 41; i <= 60; i++) await wal.save(undefined, [entry(i, 5)]);
    await wal.releaseTo(35);
    await wal.close();
    const opened = await Wal.open(dir, { segmentSizeBytes: 400 });
    expect(opened.snapshot).toEqual(meta2);
    expect(opened.hardState).toEqual(hardState(5, 2n, 10));
    expect(plain(opened.entries)).toEqual(plain(entries(36, 60, 5)));
    await opened.wal.close();
  });

  it('serializes concurrent saves in call order without interleaving', async () => {
    const writes: number[] = [];
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 2048, onWriteBytes: (n) => writes.push(n) });
    writes.length = 0;
    const done: number[] = [];
    const pending: Promise<void>[] = [];
    for (let i = 1; i <= 50; i++) {
      // every 10th save rewinds one index, so order matters for the final log
      const batch = i % 10 === 0 ? [entry(i - 1, 2), entry(i, 2)] : [entry(i, 1)];
      pending.push(wal.save(hardState(i % 10 === 0 ? 2 : 1, 1n, i - 1), batch).then(() => { done.push(i); }));
    }
    await Promise.all(pending);
    expect(done).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
    await wal.close();
    const opened = await Wal.open(dir, { segmentSizeBytes: 2048 });
    const expected = Array.from({ length: 50 }, (_, k) => {
      const i = k + 1;
      return entry(i, i % 10 === 0 || (i + 1) % 10 === 0 ? 2 : 1);
    });
    expect(plain(opened.entries)).toEqual(plain(expected));
    expect(opened.hardState).toEqual(hardState(2, 1n, 49));
    await opened.wal.close();
  });

  it('an idle WAL writes a save before save() returns; only the fdatasync is awaited', async () => {
    const fsyncs: number[] = [];
    const wal = await Wal.create(dir, METADATA, { onFsync: (s) => fsyncs.push(s) });
    fsyncs.length = 0;
    const file = path.join(dir, walFiles(dir)[0]!);
    const before = wal.tail.offsetBytes;
    const saving = wal.save(hardState(1, 1n, 0), [entry(1, 1, 'written-synchronously')]);
    // Nothing was awaited yet: the record must already be in the file (page cache).
    expect(wal.tail.offsetBytes).toBeGreaterThan(before);
    expect(fs.readFileSync(file).subarray(before, wal.tail.offsetBytes).includes(Buffer.from('written-synchronously'))).toBe(true);
    expect(fsyncs.length).toBe(0);
    // A save issued while that one syncs waits its turn and follows it in the file.
    const second = wal.save(hardState(1, 1n, 1), [entry(2, 1)]);
    await Promise.all([saving, second]);
    expect(fsyncs.length).toBe(2);
    await wal.close();
    const opened = await Wal.open(dir);
    expect(plain(opened.entries)).toEqual(plain([entry(1, 1, 'written-synchronously'), entry(2, 1)]));
    await opened.wal.close();
  });

  it('mayBlock: an idle WAL with a fast disk syncs on the calling thread; otherwise it queues as usual', async () => {
    const fsyncs: number[] = [];
    const wal = await Wal.create(dir, METADATA, { onFsync: (s) => fsyncs.push(s), segmentSizeBytes: 4096 });
    fsyncs.length = 0;
    // Idle: written and synced before save() returns.
    const blocked = wal.save(hardState(1, 1n, 1), [entry(1, 1)], { mayBlock: true });
    expect(fsyncs.length).toBe(1);
    await blocked;
    // Busy (a save is still syncing through the thread pool): mayBlock waits its turn instead.
    const first = wal.save(hardState(1, 1n, 2), [entry(2, 1)]);
    const second = wal.save(hardState(1, 1n, 3), [entry(3, 1)], { mayBlock: true });
    expect(fsyncs.length).toBe(1);
    await Promise.all([first, second]);
    expect(fsyncs.length).toBe(3);
    // Commit-only changes are not synced on either path.
    await wal.save(hardState(1, 1n, 3), [], { mayBlock: true });
    expect(fsyncs.length).toBe(3);
    // A blocking save that fills the segment still cuts it.
    const big = 'x'.repeat(5000);
    await wal.save(hardState(1, 1n, 4), [entry(4, 1, big)], { mayBlock: true });
    expect(walFiles(dir).length).toBe(2);
    await wal.save(hardState(1, 1n, 5), [entry(5, 1)], { mayBlock: true });
    await wal.close();
    const opened = await Wal.open(dir, { segmentSizeBytes: 4096 });
    expect(plain(opened.entries)).toEqual(plain([entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1, big), entry(5, 1)]));
    expect(opened.hardState).toEqual(hardState(1, 1n, 5));
    await opened.wal.close();
  });

  it('mayBlock never blocks when maxBlockingSyncMs is 0 (or the disk has been slow)', async () => {
    const fsyncs: number[] = [];
    const wal = await Wal.create(dir, METADATA, { onFsync: (s) => fsyncs.push(s), maxBlockingSyncMs: 0 });
    fsyncs.length = 0;
    const saving = wal.save(hardState(1, 1n, 1), [entry(1, 1)], { mayBlock: true });
    expect(fsyncs.length).toBe(0);
    await saving;
    expect(fsyncs.length).toBe(1);
    await wal.close();
    // A "disk" slower than the limit: the first save (no history yet) blocks, later ones do not.
    const slowDir = path.join(root, 'slow');
    const slow = await Wal.create(slowDir, METADATA, { onFsync: (s) => fsyncs.push(s), maxBlockingSyncMs: 1e-9 });
    fsyncs.length = 0;
    const firstSave = slow.save(hardState(1, 1n, 1), [entry(1, 1)], { mayBlock: true });
    expect(fsyncs.length).toBe(1);
    await firstSave;
    const secondSave = slow.save(hardState(1, 1n, 2), [entry(2, 1)], { mayBlock: true });
    expect(fsyncs.length).toBe(1);
    await secondSave;
    expect(fsyncs.length).toBe(2);
    await slow.close();
    await expect(Wal.create(path.join(root, 'other'), METADATA, { maxBlockingSyncMs: -1 })).rejects.toThrow(/maxBlockingSyncMs/);
  });

  it('a rejected save does not disturb queued ones', async () => {
    const wal = await Wal.create(dir, METADATA);
    const results = await Promise.allSettled([
      wal.save(undefined, [entry(1, 1)]),
      wal.save(undefined, [entry(5, 1)]),
      wal.save(undefined, [entry(2, 1)]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    await wal.close();
    const opened = await Wal.open(dir);
    expect(plain(opened.entries)).toEqual(plain(entries(1, 2, 1)));
    await opened.wal.close();
  });

  it('does one write and one fdatasync per save, and skips the fsync for commit-only changes', async () => {
    const fsyncs: number[] = [];
    const writes: number[] = [];
    const wal = await Wal.create(dir, METADATA, { onFsync: (s) => fsyncs.push(s), onWriteBytes: (n) => writes.push(n) });
    fsyncs.length = 0;
    writes.length = 0;
    await wal.save(hardState(1, 1n, 0), entries(1, 20, 1));
    expect(writes.length).toBe(1);
    expect(fsyncs.length).toBe(1);
    expect(fsyncs[0]!).toBeGreaterThanOrEqual(0);
    await wal.save(hardState(1, 1n, 20), []); // commit only
    expect(writes.length).toBe(2);
    expect(fsyncs.length).toBe(1);
    await wal.save(hardState(2, 0n, 20), []); // term change must be durable
    expect(fsyncs.length).toBe(2);
    await wal.save(hardState(2, 3n, 20), []); // vote change must be durable
    expect(fsyncs.length).toBe(3);
    await wal.save(undefined, []); // nothing to do
    expect(writes.length).toBe(4);
    await wal.close();
    const opened = await Wal.open(dir);
    expect(opened.hardState).toEqual(hardState(2, 3n, 20));
    await opened.wal.close();
  });

  it('refuses all further writes after an I/O failure', async () => {
    const logger = recordingLogger();
    const wal = await Wal.create(dir, METADATA, { logger });
    await wal.save(hardState(1, 1n, 0), [entry(1, 1)]);
    // Pull the file out from under the WAL to make the next write fail with EBADF.
    await (wal as unknown as { state: { handle: FileHandle } }).state.handle.close();
    await expect(wal.save(undefined, [entry(2, 1)])).rejects.toThrow();
    expect(logger.lines.some((l) => l.level === 'error')).toBe(true);
    await expect(wal.save(undefined, [entry(2, 1)])).rejects.toThrow(/unusable after an earlier I\/O failure/);
    await wal.close(); // still releases the handle
    const opened = await Wal.open(dir);
    expect(plain(opened.entries)).toEqual(plain([entry(1, 1)]));
    await opened.wal.close();
  });

  it('saves after a releaseTo do not wait while its segments are being deleted', async () => {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 600 });
    for (let i = 1; i <= 60; i += 3) await wal.save(hardState(1, 1n, i + 2), entries(i, i + 2, 1));
    await wal.saveSnapshot({ index: 40, term: 1, confState: { voters: [1n], learners: [] } });
    const before = walFiles(dir);
    // Deleting a 64 MB segment takes a while: hold every unlink until released below.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const realRm = fsp.rm.bind(fsp);
    const rm = vi.spyOn(fsp, 'rm').mockImplementation(async (...args: Parameters<typeof fsp.rm>) => {
      await gate;
      return realRm(...args);
    });
    try {
      let released = false;
      const releasing = wal.releaseTo(40).then(() => (released = true));
      await vi.waitFor(() => expect(rm).toHaveBeenCalled()); // the deletion is under way, held at the unlink
      await wal.save(hardState(1, 1n, 61), entries(61, 61, 1));
      await wal.save(undefined, entries(62, 62, 1));
      expect(released).toBe(false);
      expect(wal.segmentFiles.length).toBeLessThan(before.length); // no longer part of the chain
      // Renamed out of the chain before being emptied: the chain on disk never holds a cut-down segment.
      expect(walFiles(dir)).toEqual(wal.segmentFiles);
      const walDir = dir;
      const leftovers = fs.readdirSync(walDir).filter((n) => n.endsWith('.wal.released'));
      expect(leftovers.length).toBeGreaterThan(0);
      const unlinking = String(rm.mock.calls[0]![0]);
      expect(unlinking.endsWith('.wal.released')).toBe(true);
      expect(fs.statSync(unlinking).size).toBe(0); // emptied step by step before the unlink
      openGate();
      await releasing;
      expect(walFiles(dir)).toEqual(wal.segmentFiles);
      expect(fs.readdirSync(walDir).filter((n) => n.endsWith('.released'))).toEqual([]);
    } finally {
      openGate();
      rm.mockRestore();
    }
    await wal.close();
    const opened = await Wal.open(dir, { segmentSizeBytes: 600 });
    expect(plain(opened.entries)).toEqual(plain(entries(41, 62, 1)));
    await opened.wal.close();
  });

  it('releaseTo keeps the only (active) segment', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(hardState(1, 1n, 5), entries(1, 5, 1));
    await wal.saveSnapshot({ index: 5, term: 1, confState: { voters: [1n], learners: [] } });
    await wal.releaseTo(5);
    expect(walFiles(dir)).toHaveLength(1);
    await wal.close();
  });

  it('logs through the given logger and removes interrupted segment creations on open', async () => {
    const wal = await Wal.create(dir, METADATA);
    await wal.save(hardState(1, 1n, 1), [entry(1, 1)]);
    await wal.close();
    fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000002.wal.tmp'), Buffer.alloc(100, 7));
    const logger = recordingLogger();
    const opened = await Wal.open(dir, { logger });
    expect(fs.readdirSync(dir)).toEqual(['0000000000000000-0000000000000000.wal']);
    expect(logger.lines.some((l) => l.level === 'warn' && l.fields?.['file'] === '0000000000000001-0000000000000002.wal.tmp')).toBe(true);
    expect(plain(opened.entries)).toEqual(plain([entry(1, 1)]));
    await opened.wal.close();
  });

  it('a release interrupted by a crash leaves a renamed leftover outside the chain, which open removes', async () => {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 600 });
    for (let i = 1; i <= 30; i += 3) await wal.save(hardState(1, 1n, i + 2), entries(i, i + 2, 1));
    await wal.saveSnapshot({ index: 20, term: 1, confState: { voters: [1n], learners: [] } });
    await wal.close();
    // The state after the rename step: the oldest segment renamed, cut down halfway.
    const oldest = walFiles(dir)[0]!;
    const leftover = path.join(dir, `${oldest}.released`);
    fs.renameSync(path.join(dir, oldest), leftover);
    fs.truncateSync(leftover, 100);
    const logger = recordingLogger();
    const opened = await Wal.open(dir, { segmentSizeBytes: 600, logger });
    expect(fs.existsSync(leftover)).toBe(false);
    expect(logger.lines.some((l) => l.level === 'info' && l.fields?.['file'] === `${oldest}.released`)).toBe(true);
    expect(plain(opened.entries)).toEqual(plain(entries(21, 30, 1)));
    await opened.wal.close();
  });

  it('empties a released segment a few megabytes at a time before unlinking it', async () => {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'x.wal.released');
    fs.writeFileSync(file, Buffer.alloc(9 * 1024 * 1024 + 5, 1));
    const sizes: (number | undefined)[] = [];
    const realOpen = fsp.open.bind(fsp);
    const open = vi.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      const h = await realOpen(...args);
      const realTruncate = h.truncate.bind(h);
      h.truncate = async (len?: number) => {
        sizes.push(len);
        return realTruncate(len);
      };
      return h;
    });
    try {
      await deleteGradually(file);
    } finally {
      open.mockRestore();
    }
    expect(sizes).toEqual([5 * 1024 * 1024 + 5, 1024 * 1024 + 5, 0]);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('fails to open a directory without segments', async () => {
    fs.mkdirSync(dir, { recursive: true });
    await expect(Wal.open(dir)).rejects.toThrow(/no segment files/);
  });
});
