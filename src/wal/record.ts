// On-disk record framing.
//
//   offset  size  field
//   0       4     payloadBytes (u32 LE)
//   4       1     type (RecordType)
//   5       1     flags (bit 0: SYNC_END — an fdatasync followed the write this record ended)
//   6       2     syncEpoch (u16 LE): number of SYNC_END records written before this one, mod 2^16
//                 (records of one write share it; a write that is not synced on its own — a
//                 commit-only save — shares the epoch of the next synced write)
//   8       4     crc (u32 LE): CRC-32C over bytes [0, 8) of this header + payload + padding,
//                 seeded with the previous record's crc (the chain); a crc record seeds with its own payload
//   12      4     headerCrc (u32 LE): CRC-32C over bytes [0, 12), unchained
//   16      ...   payload, then zero padding to an 8-byte boundary
//
// Why the extra fields:
// - headerCrc makes a header verifiable on its own, so a damaged length can never be
//   mistaken for "the record runs past the end of the file" (a torn write), and so recovery
//   can scan forward for intact records without knowing the chain seed.
// - syncEpoch + SYNC_END let recovery tell a torn final write (everything damaged or
//   intact after the first bad record belongs to the write that was in flight at the crash)
//   from corruption of acknowledged data (an intact record of a LATER write follows, which
//   could only have been written after the damaged record's write was fsynced).
// - 8-byte alignment keeps every record start on a predictable grid for that scan.

import { crc32c } from './crc32c.js';

export const RECORD_HEADER_BYTES = 16;
export const RECORD_ALIGN_BYTES = 8;

export enum RecordType {
  Metadata = 1,
  Entry = 2,
  State = 3,
  Crc = 4,
  Snapshot = 5,
}

export const FLAG_SYNC_END = 0x01;
const KNOWN_FLAGS = FLAG_SYNC_END;
export const SYNC_EPOCH_MODULUS = 0x1_0000;

/** Largest payload a u32 length can describe after padding. */
export const MAX_PAYLOAD_BYTES = 0xffff_fff0;

export function paddedPayloadBytes(payloadBytes: number): number {
  return Math.ceil(payloadBytes / RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES;
}

export function recordBytes(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + paddedPayloadBytes(payloadBytes);
}

export function nextSyncEpoch(epoch: number): number {
  return (epoch + 1) % SYNC_EPOCH_MODULUS;
}

function isKnownType(type: number): boolean {
  return type >= RecordType.Metadata && type <= RecordType.Snapshot;
}

/** Fills in the header of a record whose payload and padding are already in place; returns its chained crc. */
export function sealRecord(
  buf: Buffer, start: number, type: RecordType, payloadBytes: number, flags: number, syncEpoch: number, seedCrc: number,
): number {
  buf.writeUInt32LE(payloadBytes, start);
  buf[start + 4] = type;
  buf[start + 5] = flags;
  buf.writeUInt16LE(syncEpoch, start + 6);
  let crc = crc32c(seedCrc, buf, start, start + 8);
  crc = crc32c(crc, buf, start + RECORD_HEADER_BYTES, start + recordBytes(payloadBytes));
  buf.writeUInt32LE(crc, start + 8);
  buf.writeUInt32LE(crc32c(0, buf, start, start + 12), start + 12);
  return crc;
}

// ---------------------------------------------------------------- encoding

/** Initial scratch size; grows with the largest batch and is reused (writes are serialized). */
const INITIAL_SCRATCH_BYTES = 64 * 1024;
/** A scratch buffer grown past this by a huge batch is dropped afterwards instead of pinned forever. */
const MAX_RETAINED_SCRATCH_BYTES = 8 * 1024 * 1024;

/**
 * Encodes one write batch (one "sync group") into a single contiguous buffer. The last
 * record's header is sealed only in finish(), because only then is it known whether the
 * batch ends with an fdatasync (the SYNC_END flag is covered by both checksums).
 */
export class BatchEncoder {
  private scratch = Buffer.alloc(INITIAL_SCRATCH_BYTES);
  private usedBytes = 0;
  private crc = 0;
  private syncEpoch = 0;
  private pendingStart = -1;
  private pendingType = RecordType.Metadata;
  private pendingPayloadBytes = 0;

  begin(seedCrc: number, syncEpoch: number): void {
    if (this.scratch.length > MAX_RETAINED_SCRATCH_BYTES) this.scratch = Buffer.alloc(INITIAL_SCRATCH_BYTES);
    this.usedBytes = 0;
    this.crc = seedCrc;
    this.syncEpoch = syncEpoch;
    this.pendingStart = -1;
  }

  /** Reserves a record; returns where its payload must be written. */
  reserve(type: RecordType, payloadBytes: number): number {
    if (payloadBytes > MAX_PAYLOAD_BYTES) throw new RangeError(`wal: record payload of ${payloadBytes} bytes is too large`);
    this.sealPending(0);
    const total = recordBytes(payloadBytes);
    this.ensureCapacity(this.usedBytes + total);
    const start = this.usedBytes;
    this.usedBytes += total;
    // Padding is covered by the crc, so it must be deterministic.
    this.scratch.fill(0, start + RECORD_HEADER_BYTES + payloadBytes, start + total);
    this.pendingStart = start;
    this.pendingType = type;
    this.pendingPayloadBytes = payloadBytes;
    return start + RECORD_HEADER_BYTES;
  }

  get buffer(): Buffer {
    return this.scratch;
  }

  /** The chained crc so far (the seed the next record will use). */
  get currentCrc(): number {
    return this.crc;
  }

  finish(syncEnd: boolean): { bytes: Buffer; crc: number } {
    if (this.pendingStart < 0) throw new Error('wal: finishing an empty batch');
    this.sealPending(syncEnd ? FLAG_SYNC_END : 0);
    return { bytes: this.scratch.subarray(0, this.usedBytes), crc: this.crc };
  }

  private sealPending(flags: number): void {
    if (this.pendingStart < 0) return;
    this.crc = sealRecord(
      this.scratch, this.pendingStart, this.pendingType, this.pendingPayloadBytes, flags, this.syncEpoch, this.crc,
    );
    this.pendingStart = -1;
  }

  private ensureCapacity(bytes: number): void {
    if (bytes <= this.scratch.length) return;
    let size = this.scratch.length;
    while (size < bytes) size *= 2;
    const grown = Buffer.alloc(size);
    this.scratch.copy(grown, 0, 0, this.usedBytes);
    this.scratch = grown;
  }
}

// ---------------------------------------------------------------- decoding

export interface RecordRead {
  kind: 'record';
  type: RecordType;
  flags: number;
  syncEpoch: number;
  /** This record's chained crc (the seed for the next record). */
  crc: number;
  payloadStart: number;
  payloadEnd: number;
  /** Offset of the following record. */
  next: number;
}

/** Nothing but zeros (preallocated space) or end of file from here on. */
export interface EndRead {
  kind: 'end';
}

/** The bytes at this offset are not a valid record; whether that is a torn tail or corruption is decided by the caller. */
export interface DamagedRead {
  kind: 'damaged';
  reason: string;
}

export type ReadResult = RecordRead | EndRead | DamagedRead;

const END: EndRead = { kind: 'end' };
const ZERO_CHUNK = Buffer.alloc(64 * 1024);

export function isAllZero(buf: Buffer, start: number, end: number): boolean {
  for (let at = start; at < end; at += ZERO_CHUNK.length) {
    const chunkEnd = Math.min(end, at + ZERO_CHUNK.length);
    if (ZERO_CHUNK.compare(buf, at, chunkEnd, 0, chunkEnd - at) !== 0) return false;
  }
  return true;
}

function hex32(value: number): string {
  return '0x' + value.toString(16).padStart(8, '0');
}

/** True if a self-consistent header (known type and flags, matching header crc) starts at `at`. */
function isValidHeaderAt(buf: Buffer, at: number): boolean {
  if (at + RECORD_HEADER_BYTES > buf.length) return false;
  // Cheap filters first: this runs at every 8-byte position of a damaged tail.
  if (!isKnownType(buf[at + 4]!) || (buf[at + 5]! & ~KNOWN_FLAGS) !== 0) return false;
  return crc32c(0, buf, at, at + 12) === buf.readUInt32LE(at + 12);
}

/** True if a valid header starts at `at` and the whole record it describes fits in `buf`. */
export function isIntactHeaderAt(buf: Buffer, at: number): boolean {
  return isValidHeaderAt(buf, at) && at + recordBytes(buf.readUInt32LE(at)) <= buf.length;
}

/**
 * Reads the record at `offset`. `seedCrc` is the previous record's crc, or undefined at the
 * start of a segment (where only a crc record, which carries its own seed, is acceptable).
 */
export function readRecordAt(buf: Buffer, offset: number, seedCrc: number | undefined): ReadResult {
  const remaining = buf.length - offset;
  if (remaining === 0) return END;
  if (remaining < RECORD_HEADER_BYTES) {
    return isAllZero(buf, offset, buf.length) ? END : { kind: 'damaged', reason: `partial record header (${remaining} bytes before end of file)` };
  }
  if (isAllZero(buf, offset, offset + RECORD_HEADER_BYTES)) {
    return isAllZero(buf, offset + RECORD_HEADER_BYTES, buf.length)
      ? END
      : { kind: 'damaged', reason: 'zeroed record header followed by non-zero bytes' };
  }
  const storedHeaderCrc = buf.readUInt32LE(offset + 12);
  const headerCrc = crc32c(0, buf, offset, offset + 12);
  if (headerCrc !== storedHeaderCrc) {
    return { kind: 'damaged', reason: `header crc mismatch (expected ${hex32(storedHeaderCrc)}, got ${hex32(headerCrc)})` };
  }
  const type = buf[offset + 4]!;
  const flags = buf[offset + 5]!;
  if (!isKnownType(type)) return { kind: 'damaged', reason: `unknown record type ${type}` };
  if ((flags & ~KNOWN_FLAGS) !== 0) return { kind: 'damaged', reason: `unknown record flags ${hex32(flags)}` };
  const payloadBytes = buf.readUInt32LE(offset);
  const total = recordBytes(payloadBytes);
  if (total > remaining) {
    return { kind: 'damaged', reason: `record of ${total} bytes runs past end of file (${remaining} bytes left)` };
  }
  const payloadStart = offset + RECORD_HEADER_BYTES;
  let seed: number;
  if (type === RecordType.Crc) {
    if (payloadBytes !== 4) return { kind: 'damaged', reason: `crc record payload is ${payloadBytes} bytes, expected 4` };
    seed = buf.readUInt32LE(payloadStart);
  } else if (seedCrc === undefined) {
    return { kind: 'damaged', reason: `segment does not begin with a crc record (found type ${type})` };
  } else {
    seed = seedCrc;
  }
  let crc = crc32c(seed, buf, offset, offset + 8);
  crc = crc32c(crc, buf, payloadStart, offset + total);
  const storedCrc = buf.readUInt32LE(offset + 8);
  if (crc !== storedCrc) return { kind: 'damaged', reason: `crc mismatch (expected ${hex32(storedCrc)}, got ${hex32(crc)})` };
  return {
    kind: 'record',
    type,
    flags,
    syncEpoch: buf.readUInt16LE(offset + 6),
    crc,
    payloadStart,
    payloadEnd: payloadStart + payloadBytes,
    next: offset + total,
  };
}

/**
 * After a damaged record at `damagedOffset`, looks for an intact record written by a later
 * sync group than `damagedEpoch`. Finding one proves the damaged record's write had been
 * fsynced (a later write only starts after the previous fdatasync returned), so the damage
 * is corruption of acknowledged data rather than a torn final write.
 */
export function findLaterSyncGroup(buf: Buffer, damagedOffset: number, damagedEpoch: number): number | undefined {
  // If only the damaged record's payload is bad, its length is trustworthy: skip the payload,
  // which may legitimately contain bytes that look like WAL records (an etcd value can).
  const first = isValidHeaderAt(buf, damagedOffset)
    ? damagedOffset + recordBytes(buf.readUInt32LE(damagedOffset))
    : damagedOffset + RECORD_ALIGN_BYTES;
  for (let at = first; at + RECORD_HEADER_BYTES <= buf.length; at += RECORD_ALIGN_BYTES) {
    if (!isIntactHeaderAt(buf, at)) continue;
    if (buf.readUInt16LE(at + 6) !== damagedEpoch) return at;
    // Same (torn) write: skip the whole intact record rather than re-scanning its payload.
    at += recordBytes(buf.readUInt32LE(at)) - RECORD_ALIGN_BYTES;
  }
  return undefined;
}
