// Revision keys in the Key bucket use etcd's byte layout exactly:
//   8-byte main revision BE | '_' | 8-byte sub revision BE [| 't' for a tombstone]
// Sorting these bytes sorts by (main, sub), which is what compaction-by-prefix,
// index rebuild and HashKV iterate in. Identical bytes also make HashKV values
// identical to a real etcd holding the same history.

export const REV_BYTES_LEN = 17;
export const MARKED_REV_BYTES_LEN = 18;
const SEPARATOR = 0x5f; // '_'
const TOMBSTONE_MARK = 0x74; // 't'
const TWO_POW_32 = 0x1_0000_0000;

function writeU64(buf: Buffer, n: number, offset: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`mvcc: revision out of range: ${n}`);
  buf.writeUInt32BE(Math.floor(n / TWO_POW_32), offset);
  buf.writeUInt32BE(n >>> 0, offset + 4);
}

function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * TWO_POW_32 + buf.readUInt32BE(offset + 4);
}

export function revToBytes(main: number, sub: number, tombstone = false): Buffer {
  const out = Buffer.allocUnsafe(tombstone ? MARKED_REV_BYTES_LEN : REV_BYTES_LEN);
  writeU64(out, main, 0);
  out[8] = SEPARATOR;
  writeU64(out, sub, 9);
  if (tombstone) out[17] = TOMBSTONE_MARK;
  return out;
}

export function revMainOf(bytes: Buffer): number {
  return readU64(bytes, 0);
}

export function revSubOf(bytes: Buffer): number {
  return readU64(bytes, 9);
}

export function isTombstoneKey(bytes: Buffer): boolean {
  return bytes.length === MARKED_REV_BYTES_LEN && bytes[17] === TOMBSTONE_MARK;
}

export function assertRevKey(bytes: Buffer): void {
  const ok =
    (bytes.length === REV_BYTES_LEN || (bytes.length === MARKED_REV_BYTES_LEN && bytes[17] === TOMBSTONE_MARK)) &&
    bytes[8] === SEPARATOR;
  if (!ok) throw new Error(`mvcc: malformed revision key ${bytes.toString('hex')}`);
}

/** Encode a bare revision as etcd stores compaction marks: revToBytes(main, 0). */
export function compactMarkBytes(main: number): Buffer {
  return revToBytes(main, 0);
}
