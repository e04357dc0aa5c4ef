import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Wal, WalCorruptError } from '../../../src/wal/index.js';
import { entries, entry, hardState, makeTempDir, plain, recordingLogger, removeDir, walFiles } from './helpers.js';

const METADATA = Buffer.from('node-1/cluster-9');
const SEGMENT_BYTES = 4096;
const FIRST_SEGMENT = '0000000000000000-0000000000000000.wal';

/** Record start offsets in [from, to), read from the documented framing (u32 length, 16-byte header, 8-byte padding). */
function recordStarts(bytes: Buffer, from: number, to: number): number[] {
  const starts: number[] = [];
  for (let at = from; at < to; at += 16 + Math.ceil(bytes.readUInt32LE(at) / 8) * 8) starts.push(at);
  return starts;
}

function recordContaining(starts: number[], offset: number): number {
  return starts.filter((s) => s <= offset).pop()!;
}

describe('Wal recovery', () => {
  let root: string;
  let dir: string;
  let segmentPath: string;

  beforeEach(() => {
    root = makeTempDir();
    dir = path.join(root, 'wal');
    segmentPath = path.join(dir, FIRST_SEGMENT);
  });
  afterEach(() => removeDir(root));

  /** Two acknowledged saves (entries 1..5, commit 3), then `last` as the final write; returns its byte range. */
  async function writeWithFinalSave(last: () => Parameters<Wal['save']>): Promise<{ start: number; end: number; bytes: Buffer }> {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: SEGMENT_BYTES });
    await wal.save(hardState(1, 1n, 0), entries(1, 3, 1));
    await wal.save(hardState(1, 1n, 3), entries(4, 5, 1));
    const start = wal.tail.offsetBytes;
    await wal.save(...last());
    const end = wal.tail.offsetBytes;
    await wal.close();
    return { start, end, bytes: fs.readFileSync(segmentPath) };
  }

  it('recovers all complete records when the file is cut at every byte offset of the last record', async () => {
    const { start, end, bytes } = await writeWithFinalSave(() => [undefined, [entry(6, 1, 'the-last-record')]]);
    expect(end - start).toBeGreaterThan(16);
    for (let cut = start; cut <= end; cut++) {
      fs.writeFileSync(segmentPath, bytes.subarray(0, cut));
      const logger = recordingLogger();
      const opened = await Wal.open(dir, { logger, segmentSizeBytes: SEGMENT_BYTES });
      const expected = cut === end ? [...entries(1, 5, 1), entry(6, 1, 'the-last-record')] : entries(1, 5, 1);
      expect(plain(opened.entries)).toEqual(plain(expected));
      expect(opened.hardState).toEqual(hardState(1, 1n, 3));
      const warnings = logger.lines.filter((l) => l.level === 'warn');
      if (cut === start || cut === end) {
        expect(warnings).toEqual([]);
      } else {
        expect(warnings).toHaveLength(1);
        expect(warnings[0]!.fields).toMatchObject({ file: FIRST_SEGMENT, offset: start });
        // the repair restores the preallocated size
        expect(fs.statSync(segmentPath).size).toBe(SEGMENT_BYTES);
      }
      // the repaired log keeps working: a new write continues the crc chain
      if (cut % 7 === 0 || cut === start + 1) {
        await opened.wal.save(hardState(2, 1n, 3), [entry(6, 2, 'rewritten')]);
        await opened.wal.close();
        const again = await Wal.open(dir, { segmentSizeBytes: SEGMENT_BYTES });
        expect(plain(again.entries)).toEqual(plain([...entries(1, 5, 1), entry(6, 2, 'rewritten')]));
        expect(again.hardState).toEqual(hardState(2, 1n, 3));
        await again.wal.close();
      } else {
        await opened.wal.close();
      }
    }
  });

  it('recovers a prefix of a multi-record final write cut at any byte', async () => {
    const { start, end, bytes } = await writeWithFinalSave(() => [hardState(1, 1n, 8), entries(6, 8, 1)]);
    const starts = recordStarts(bytes, start, end);
    expect(starts).toHaveLength(4); // three entries and the state
    for (let cut = start; cut <= end; cut++) {
      fs.writeFileSync(segmentPath, bytes.subarray(0, cut));
      const opened = await Wal.open(dir, { segmentSizeBytes: SEGMENT_BYTES });
      const completeRecords = starts.filter((s, i) => (starts[i + 1] ?? end) <= cut && s >= start).length;
      const completeEntries = Math.min(completeRecords, 3);
      expect(plain(opened.entries)).toEqual(plain(entries(1, 5 + completeEntries, 1)));
      expect(opened.hardState).toEqual(completeRecords === 4 ? hardState(1, 1n, 8) : hardState(1, 1n, 3));
      await opened.wal.close();
    }
  });

  it('recovers when the tail is zero-filled (preallocated space never written)', async () => {
    const { start, end, bytes } = await writeWithFinalSave(() => [hardState(1, 1n, 7), entries(6, 7, 1)]);
    const starts = recordStarts(bytes, start, end);
    for (let zeroFrom = start; zeroFrom < end; zeroFrom++) {
      // Zeroing bytes that already are zero (padding) changes nothing: the damage begins at the first non-zero byte.
      let firstChanged = zeroFrom;
      while (firstChanged < end && bytes[firstChanged] === 0) firstChanged++;
      const cleanBoundary = firstChanged === end || starts.includes(firstChanged);
      const damaged = Buffer.from(bytes);
      damaged.fill(0, zeroFrom);
      fs.writeFileSync(segmentPath, damaged);
      const logger = recordingLogger();
      const opened = await Wal.open(dir, { logger, segmentSizeBytes: SEGMENT_BYTES });
      const intactRecords = starts.filter((_, i) => (starts[i + 1] ?? end) <= firstChanged).length;
      expect(plain(opened.entries)).toEqual(plain(entries(1, 5 + Math.min(intactRecords, 2), 1)));
      expect(opened.hardState).toEqual(intactRecords === 3 ? hardState(1, 1n, 7) : hardState(1, 1n, 3));
      expect(logger.lines.filter((l) => l.level === 'warn').length).toBe(cleanBoundary ? 0 : 1);
      await opened.wal.close();
    }
  });

  it('treats a lost sector inside the final write as torn even if later records of that write survived', async () => {
    const { start, end, bytes } = await writeWithFinalSave(() => [hardState(1, 1n, 8), entries(6, 8, 1)]);
    const starts = recordStarts(bytes, start, end);
    const damaged = Buffer.from(bytes);
    damaged.fill(0, starts[0]!, starts[1]!); // entry 6 lost, entries 7, 8 and the state intact
    fs.writeFileSync(segmentPath, damaged);
    const logger = recordingLogger();
    const opened = await Wal.open(dir, { logger, segmentSizeBytes: SEGMENT_BYTES });
    expect(plain(opened.entries)).toEqual(plain(entries(1, 5, 1)));
    expect(opened.hardState).toEqual(hardState(1, 1n, 3));
    expect(logger.lines.find((l) => l.level === 'warn')?.fields).toMatchObject({ file: FIRST_SEGMENT, offset: start });
    await opened.wal.close();
  });

  it('is not fooled by WAL-looking bytes inside a torn record\'s payload', async () => {
    // An etcd value can hold anything, including a copy of a valid WAL record of an older write.
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: SEGMENT_BYTES });
    const firstRecordAt = wal.tail.offsetBytes;
    await wal.save(undefined, [entry(1, 1)]);
    const firstRecordEnd = wal.tail.offsetBytes;
    await wal.close();
    const embedded = fs.readFileSync(segmentPath).subarray(firstRecordAt, firstRecordEnd);
    const reopened = await Wal.open(dir, { segmentSizeBytes: SEGMENT_BYTES });
    const start = reopened.wal.tail.offsetBytes;
    // entry payload = 17-byte entry header + data; 7 filler bytes put the copy on the 8-byte grid
    const value = Buffer.concat([Buffer.alloc(7, 0x61), embedded, Buffer.alloc(40, 0x62)]);
    await reopened.wal.save(undefined, [{ index: 2, term: 1, type: 0, data: value }]);
    await reopened.wal.close();
    const bytes = fs.readFileSync(segmentPath);
    expect(bytes.subarray(start + 40, start + 40 + embedded.length).equals(embedded)).toBe(true);
    fs.writeFileSync(segmentPath, bytes.subarray(0, start + 40 + embedded.length + 8)); // torn after the copy
    const opened = await Wal.open(dir, { segmentSizeBytes: SEGMENT_BYTES });
    expect(plain(opened.entries)).toEqual(plain([entry(1, 1)]));
    await opened.wal.close();
  });

  it('refuses to open when a damaged record is followed by a later acknowledged write', async () => {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: SEGMENT_BYTES });
    await wal.save(hardState(1, 1n, 0), entries(1, 3, 1));
    const start = wal.tail.offsetBytes;
    await wal.save(hardState(1, 1n, 3), entries(4, 5, 1));
    const end = wal.tail.offsetBytes;
    await wal.save(hardState(1, 1n, 5), entries(6, 6, 1));
    await wal.close();
    const bytes = fs.readFileSync(segmentPath);
    const starts = recordStarts(bytes, start, end);

    // every single flipped byte of the middle write, wherever it lands (header, payload, padding)
    for (let at = start; at < end; at++) {
      const damaged = Buffer.from(bytes);
      damaged[at] = damaged[at]! ^ 0x40;
      fs.writeFileSync(segmentPath, damaged);
      const recordStart = recordContaining(starts, at);
      const error = await Wal.open(dir).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(WalCorruptError);
      const corrupt = error as WalCorruptError;
      expect(corrupt.file).toBe(FIRST_SEGMENT);
      expect(corrupt.offset).toBe(recordStart);
      expect(corrupt.message).toMatch(new RegExp(`^wal: corrupt record in ${FIRST_SEGMENT} at offset ${recordStart}: `));
    }

    // zeroing an acknowledged record is corruption too, not a torn tail
    const zeroed = Buffer.from(bytes);
    zeroed.fill(0, starts[0]!, starts[1]!);
    fs.writeFileSync(segmentPath, zeroed);
    await expect(Wal.open(dir)).rejects.toThrow(/corrupt record .* at offset \d+: zeroed record header.*later write/);
  });

  it('names the crc mismatch with expected and actual values', async () => {
    const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: SEGMENT_BYTES });
    await wal.save(hardState(1, 1n, 0), entries(1, 2, 1));
    const start = wal.tail.offsetBytes;
    await wal.save(hardState(1, 1n, 2), [entry(3, 1, 'some payload bytes')]);
    await wal.save(hardState(1, 1n, 3), [entry(4, 1)]);
    await wal.close();
    const bytes = fs.readFileSync(segmentPath);
    bytes[start + 20] = bytes[start + 20]! ^ 1; // inside the payload
    fs.writeFileSync(segmentPath, bytes);
    await expect(Wal.open(dir)).rejects.toThrow(
      new RegExp(`^wal: corrupt record in ${FIRST_SEGMENT} at offset ${start}: crc mismatch \\(expected 0x[0-9a-f]{8}, got 0x[0-9a-f]{8}\\)`),
    );
  });

  describe('with several segments', () => {
    async function writeSegments(): Promise<string[]> {
      const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 512 });
      for (let i = 1; i <= 40; i += 2) await wal.save(hardState(1, 1n, i - 1), entries(i, i + 1, 1));
      await wal.close();
      const files = walFiles(dir);
      expect(files.length).toBeGreaterThanOrEqual(3);
      return files;
    }

    function flipByte(file: string, offset: number): void {
      const bytes = fs.readFileSync(path.join(dir, file));
      bytes[offset] = bytes[offset]! ^ 0x10;
      fs.writeFileSync(path.join(dir, file), bytes);
    }

    it('refuses a flipped byte anywhere in a non-last segment, even in its final record', async () => {
      const files = await writeSegments();
      const sealed = path.join(dir, files[1]!);
      const original = fs.readFileSync(sealed);
      for (const offset of [0, 20, Math.floor(original.length / 2), original.length - 1]) {
        fs.writeFileSync(sealed, original);
        flipByte(files[1]!, offset);
        const error = await Wal.open(dir).then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(WalCorruptError);
        expect((error as WalCorruptError).file).toBe(files[1]);
        expect((error as Error).message).toContain(`wal: corrupt record in ${files[1]} at offset`);
      }
    });

    it('refuses a truncated non-last segment (torn tails are only repaired in the last one)', async () => {
      const files = await writeSegments();
      const sealed = path.join(dir, files[0]!);
      const bytes = fs.readFileSync(sealed);
      fs.writeFileSync(sealed, bytes.subarray(0, bytes.length - 5));
      await expect(Wal.open(dir)).rejects.toThrow(new RegExp(`corrupt record in ${files[0]} at offset \\d+: .*non-last`));
    });

    it('detects a lost record at the end of a sealed segment through the crc chain', async () => {
      const files = await writeSegments();
      const sealed = path.join(dir, files[0]!);
      const bytes = fs.readFileSync(sealed);
      const starts = recordStarts(bytes, 0, bytes.length);
      fs.writeFileSync(sealed, bytes.subarray(0, starts[starts.length - 1]!)); // drop its last record cleanly
      await expect(Wal.open(dir)).rejects.toThrow(new RegExp(`corrupt record in ${files[1]} at offset 0: crc chain broken`));
    });

    it('refuses damage to the header of the last segment', async () => {
      const files = await writeSegments();
      flipByte(files[files.length - 1]!, 18);
      await expect(Wal.open(dir)).rejects.toThrow(WalCorruptError);
    });

    it('refuses a missing middle segment', async () => {
      const files = await writeSegments();
      fs.rmSync(path.join(dir, files[1]!));
      await expect(Wal.open(dir)).rejects.toThrow(new RegExp(`corrupt record in ${files[2]} at offset 0: segment sequence jumps`));
    });

    it('repairs a torn tail in the last segment and keeps the earlier ones', async () => {
      const wal = await Wal.create(dir, METADATA, { segmentSizeBytes: 512 });
      for (let i = 1; i <= 40; i += 2) await wal.save(hardState(1, 1n, i - 1), entries(i, i + 1, 1));
      const { file, offsetBytes } = wal.tail;
      await wal.save(hardState(1, 1n, 42), entries(41, 42, 1));
      await wal.close();
      const lastPath = path.join(dir, file);
      const bytes = fs.readFileSync(lastPath);
      fs.writeFileSync(lastPath, bytes.subarray(0, offsetBytes + 30));
      const logger = recordingLogger();
      const opened = await Wal.open(dir, { logger, segmentSizeBytes: 512 });
      expect(plain(opened.entries)).toEqual(plain(entries(1, 40, 1)));
      expect(opened.hardState).toEqual(hardState(1, 1n, 38));
      expect(logger.lines.find((l) => l.level === 'warn')?.fields).toMatchObject({ file, offset: offsetBytes });
      await opened.wal.close();
    });
  });
});
