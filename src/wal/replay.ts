// Rebuilds Raft state from segment bytes, verifying the crc chain, and decides whether
// damage at the end of the last segment is a torn write (repairable) or corruption.

import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';
import {
  readCrcPayload, readEntryPayload, readSnapshotPayload, readStatePayload,
} from './codec.js';
import { PayloadDecodeError, WalCorruptError } from './errors.js';
import { FLAG_SYNC_END, findLaterSyncGroup, nextSyncEpoch, readRecordAt, RecordType, type RecordRead } from './record.js';

export interface SegmentReplayResult {
  /** Where valid data ends: the next record goes here. */
  endOffset: number;
  /** Set when the last segment ended in a torn write that must be cut off at `endOffset`. */
  tornReason?: string;
}

export function emptyHardState(): HardState {
  return { term: 0, vote: 0n, commit: 0 };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

export class Replayer {
  metadata: Uint8Array | undefined;
  hardState: HardState = emptyHardState();
  snapshot: SnapshotMeta | undefined;
  /** The live log: contiguous, later writes at an index replace everything from that index on. */
  entries: Entry[] = [];
  /** Chained crc of the last good record (seed for the next write). */
  crc: number | undefined;
  /** Sync epoch the next record belongs to. */
  syncEpoch = 0;
  private snapshotFile = '';
  private snapshotOffset = 0;

  /**
   * Replays one segment. Damage in a non-last segment, inside a segment's header group, or
   * followed by an intact record of a later write is corruption and throws WalCorruptError.
   * Damage at the end of the last segment is reported as a torn tail.
   */
  replaySegment(fileName: string, bytes: Buffer, isLast: boolean): SegmentReplayResult {
    let offset = 0;
    let recordCount = 0;
    // The header group (crc, metadata, ...) was fsynced before the segment got its name,
    // so it can never be torn; it ends with the first SYNC_END record.
    let headerGroupDone = false;
    for (;;) {
      const read = readRecordAt(bytes, offset, recordCount === 0 ? undefined : this.crc);
      if (read.kind === 'end') {
        if (!headerGroupDone) throw new WalCorruptError(fileName, offset, 'segment ends before its header records are complete');
        return { endOffset: offset };
      }
      if (read.kind === 'damaged') {
        if (!isLast) throw new WalCorruptError(fileName, offset, `${read.reason} (in a sealed, non-last segment)`);
        if (!headerGroupDone) throw new WalCorruptError(fileName, offset, `${read.reason} (in the segment's fsynced header)`);
        const later = findLaterSyncGroup(bytes, offset, this.syncEpoch);
        if (later !== undefined) {
          throw new WalCorruptError(fileName, offset, `${read.reason}; an intact record of a later write follows at offset ${later}`);
        }
        return { endOffset: offset, tornReason: read.reason };
      }
      this.applyRecord(fileName, bytes, offset, read, recordCount === 0);
      recordCount++;
      this.crc = read.crc;
      if (read.flags & FLAG_SYNC_END) {
        headerGroupDone = true;
        this.syncEpoch = nextSyncEpoch(read.syncEpoch);
      } else {
        this.syncEpoch = read.syncEpoch;
      }
      offset = read.next;
    }
  }

  /** Final consistency checks once every segment has been replayed. */
  finish(): void {
    const snapshot = this.snapshot;
    if (!snapshot) return;
    this.dropEntriesUpTo(snapshot.index);
    const first = this.entries[0];
    if (first && first.index > snapshot.index + 1) {
      throw new WalCorruptError(
        this.snapshotFile, this.snapshotOffset,
        `entries after snapshot index ${snapshot.index} begin at ${first.index}; entries ${snapshot.index + 1}..${first.index - 1} are missing`,
      );
    }
  }

  /** Index of the last entry, or of the snapshot when the log holds nothing after it. */
  lastIndex(): number {
    const last = this.entries[this.entries.length - 1];
    return Math.max(last?.index ?? 0, this.snapshot?.index ?? 0);
  }

  private applyRecord(fileName: string, bytes: Buffer, offset: number, read: RecordRead, firstInSegment: boolean): void {
    const corrupt = (reason: string) => new WalCorruptError(fileName, offset, reason);
    if (firstInSegment !== (read.type === RecordType.Crc)) {
      throw corrupt(firstInSegment ? 'segment does not begin with a crc record' : 'crc record in the middle of a segment');
    }
    try {
      switch (read.type) {
        case RecordType.Crc: {
          const previousCrc = readCrcPayload(bytes, read.payloadStart, read.payloadEnd);
          // The first live segment (older ones may have been released) adopts its seed.
          if (this.crc !== undefined && previousCrc !== this.crc) {
            throw corrupt(`crc chain broken between segments (segment starts from ${previousCrc}, previous segment ended at ${this.crc})`);
          }
          return;
        }
        case RecordType.Metadata: {
          const metadata = bytes.subarray(read.payloadStart, read.payloadEnd);
          if (this.metadata === undefined) this.metadata = Buffer.from(metadata);
          else if (!sameBytes(this.metadata, metadata)) throw corrupt('metadata differs from the earlier segments');
          return;
        }
        case RecordType.Entry:
          this.applyEntry(readEntryPayload(bytes, read.payloadStart, read.payloadEnd), corrupt);
          return;
        case RecordType.State:
          this.hardState = readStatePayload(bytes, read.payloadStart, read.payloadEnd);
          return;
        case RecordType.Snapshot:
          this.applySnapshot(readSnapshotPayload(bytes, read.payloadStart, read.payloadEnd), fileName, offset);
          return;
      }
    } catch (e) {
      if (e instanceof PayloadDecodeError) throw corrupt(`undecodable payload: ${e.message}`);
      throw e;
    }
  }

  private applyEntry(entry: Entry, corrupt: (reason: string) => WalCorruptError): void {
    const first = this.entries[0];
    if (!first) {
      this.entries.push(entry);
      return;
    }
    const lastIndex = first.index + this.entries.length - 1;
    if (entry.index > lastIndex + 1) {
      throw corrupt(`entry index ${entry.index} leaves a gap after index ${lastIndex}`);
    }
    // Raft log truncation after a leader change: an entry at index i replaces i..end.
    if (entry.index <= first.index) this.entries.length = 0;
    else this.entries.length = entry.index - first.index;
    this.entries.push(entry);
  }

  private applySnapshot(meta: SnapshotMeta, fileName: string, offset: number): void {
    this.snapshot = meta;
    this.snapshotFile = fileName;
    this.snapshotOffset = offset;
    this.dropEntriesUpTo(meta.index);
  }

  private dropEntriesUpTo(index: number): void {
    const first = this.entries[0];
    if (!first || first.index > index) return;
    this.entries.splice(0, Math.min(this.entries.length, index - first.index + 1));
  }
}
