// Payload encodings of the WAL record types. All integers are little-endian.
// Raft indexes/terms are JS numbers (< 2^53) stored as u64 so the format never needs to
// change if they grow; node IDs are full u64 bigints.
//
//   entry     : u8 entryType | u64 term | u64 index | data...
//   state     : u64 term | u64 vote | u64 commit
//   snapshot  : u64 index | u64 term | u32 voterCount | u64 voter... | u32 learnerCount | u64 learner...
//   crc       : u32 CRC of the previous record (the chain seed of a segment)
//   metadata  : opaque bytes given to Wal.create

import { EntryType, type ConfState, type Entry, type HardState, type NodeId, type SnapshotMeta } from '../raft/types.js';
import { PayloadDecodeError } from './errors.js';

const TWO_POW_32 = 0x1_0000_0000;
/** Largest high word of a u64 that still yields a safe integer (2^53 - 1 >> 32). */
const MAX_SAFE_HIGH_WORD = 0x1f_ffff;

export const ENTRY_FIXED_BYTES = 1 + 8 + 8;
export const STATE_PAYLOAD_BYTES = 8 + 8 + 8;
export const CRC_PAYLOAD_BYTES = 4;

function assertU64Number(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`wal: ${what} must be a non-negative safe integer, got ${value}`);
  }
}

function writeU64Number(buf: Buffer, offset: number, value: number): void {
  const low = value >>> 0;
  buf.writeUInt32LE(low, offset);
  buf.writeUInt32LE((value - low) / TWO_POW_32, offset + 4);
}

function readU64Number(buf: Buffer, offset: number, what: string): number {
  const high = buf.readUInt32LE(offset + 4);
  if (high > MAX_SAFE_HIGH_WORD) throw new PayloadDecodeError(`${what} exceeds 2^53`);
  return high * TWO_POW_32 + buf.readUInt32LE(offset);
}

function assertPayloadBytes(actual: number, expected: number, what: string): void {
  if (actual !== expected) throw new PayloadDecodeError(`${what} payload is ${actual} bytes, expected ${expected}`);
}

// ---------------------------------------------------------------- entry

export function entryPayloadBytes(entry: Entry): number {
  return ENTRY_FIXED_BYTES + entry.data.length;
}

export function writeEntryPayload(buf: Buffer, offset: number, entry: Entry): void {
  assertU64Number(entry.term, 'entry term');
  assertU64Number(entry.index, 'entry index');
  if (entry.type !== EntryType.Normal && entry.type !== EntryType.ConfChange) {
    throw new RangeError(`wal: unknown entry type ${String(entry.type)}`);
  }
  buf[offset] = entry.type;
  writeU64Number(buf, offset + 1, entry.term);
  writeU64Number(buf, offset + 9, entry.index);
  buf.set(entry.data, offset + ENTRY_FIXED_BYTES);
}

export function readEntryPayload(buf: Buffer, start: number, end: number): Entry {
  if (end - start < ENTRY_FIXED_BYTES) {
    throw new PayloadDecodeError(`entry payload is ${end - start} bytes, shorter than its ${ENTRY_FIXED_BYTES}-byte header`);
  }
  const type = buf[start]!;
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new PayloadDecodeError(`unknown entry type ${type}`);
  return {
    type,
    term: readU64Number(buf, start + 1, 'entry term'),
    index: readU64Number(buf, start + 9, 'entry index'),
    // Copy: the segment buffer is large and must not be kept alive by every entry.
    data: Buffer.from(buf.subarray(start + ENTRY_FIXED_BYTES, end)),
  };
}

// ---------------------------------------------------------------- hard state

export function writeStatePayload(buf: Buffer, offset: number, state: HardState): void {
  assertU64Number(state.term, 'hard state term');
  assertU64Number(state.commit, 'hard state commit');
  writeU64Number(buf, offset, state.term);
  buf.writeBigUInt64LE(state.vote, offset + 8);
  writeU64Number(buf, offset + 16, state.commit);
}

export function readStatePayload(buf: Buffer, start: number, end: number): HardState {
  assertPayloadBytes(end - start, STATE_PAYLOAD_BYTES, 'hard state');
  return {
    term: readU64Number(buf, start, 'hard state term'),
    vote: buf.readBigUInt64LE(start + 8),
    commit: readU64Number(buf, start + 16, 'hard state commit'),
  };
}

// ---------------------------------------------------------------- snapshot marker

export function snapshotPayloadBytes(meta: SnapshotMeta): number {
  return 8 + 8 + 4 + 8 * meta.confState.voters.length + 4 + 8 * meta.confState.learners.length;
}

function writeIdList(buf: Buffer, offset: number, ids: readonly NodeId[]): number {
  buf.writeUInt32LE(ids.length, offset);
  let at = offset + 4;
  for (const id of ids) {
    buf.writeBigUInt64LE(id, at);
    at += 8;
  }
  return at;
}

export function writeSnapshotPayload(buf: Buffer, offset: number, meta: SnapshotMeta): void {
  assertU64Number(meta.index, 'snapshot index');
  assertU64Number(meta.term, 'snapshot term');
  writeU64Number(buf, offset, meta.index);
  writeU64Number(buf, offset + 8, meta.term);
  const afterVoters = writeIdList(buf, offset + 16, meta.confState.voters);
  writeIdList(buf, afterVoters, meta.confState.learners);
}

function readIdList(buf: Buffer, offset: number, end: number, what: string): { ids: NodeId[]; next: number } {
  if (offset + 4 > end) throw new PayloadDecodeError(`snapshot ${what} count is cut off`);
  const count = buf.readUInt32LE(offset);
  const next = offset + 4 + 8 * count;
  if (next > end) throw new PayloadDecodeError(`snapshot ${what} list of ${count} ids overruns the payload`);
  const ids: NodeId[] = [];
  for (let at = offset + 4; at < next; at += 8) ids.push(buf.readBigUInt64LE(at));
  return { ids, next };
}

export function readSnapshotPayload(buf: Buffer, start: number, end: number): SnapshotMeta {
  if (end - start < 16) throw new PayloadDecodeError(`snapshot payload is ${end - start} bytes, too short`);
  const index = readU64Number(buf, start, 'snapshot index');
  const term = readU64Number(buf, start + 8, 'snapshot term');
  const voters = readIdList(buf, start + 16, end, 'voter');
  const learners = readIdList(buf, voters.next, end, 'learner');
  if (learners.next !== end) throw new PayloadDecodeError(`snapshot payload has ${end - learners.next} trailing bytes`);
  const confState: ConfState = { voters: voters.ids, learners: learners.ids };
  return { index, term, confState };
}

// ---------------------------------------------------------------- crc seed

export function writeCrcPayload(buf: Buffer, offset: number, previousCrc: number): void {
  buf.writeUInt32LE(previousCrc, offset);
}

export function readCrcPayload(buf: Buffer, start: number, end: number): number {
  assertPayloadBytes(end - start, CRC_PAYLOAD_BYTES, 'crc');
  return buf.readUInt32LE(start);
}
