// Backend snapshot byte format (ours, not bbolt):
//
//   magic   "TSETCDS1"                                   8 bytes
//   record* bucket u8 (never 0) | keyLen u32 BE | key | valueLen u32 BE | value
//   end     0x00 | recordCount u64 BE | crc32c u32 BE     crc covers every byte before it
//
// The end marker + count + CRC make truncation and corruption detectable, which
// matters because the stream crosses the network (Raft snapshots, Maintenance.Snapshot).

import { Bucket, isBucket } from './buckets.js';
import { crc32c } from './crc32c.js';

export const SNAPSHOT_MAGIC = Buffer.from('TSETCDS1');
const CHUNK_TARGET_BYTES = 64 * 1024;

export class SnapshotFormatError extends Error {
  constructor(msg: string) {
    super(`backend snapshot: ${msg}`);
    this.name = 'SnapshotFormatError';
  }
}

export async function* encodeSnapshot(
  entries: AsyncIterable<[Bucket, Buffer, Buffer]>,
): AsyncGenerator<Buffer> {
  let crc = crc32c(SNAPSHOT_MAGIC);
  let count = 0n;
  yield SNAPSHOT_MAGIC;
  let parts: Buffer[] = [];
  let partsBytes = 0;
  const flush = (): Buffer => {
    const out = Buffer.concat(parts, partsBytes);
    parts = [];
    partsBytes = 0;
    crc = crc32c(out, crc);
    return out;
  };
  for await (const [bucket, key, value] of entries) {
    const head = Buffer.allocUnsafe(5);
    head[0] = bucket;
    head.writeUInt32BE(key.length, 1);
    const vlen = Buffer.allocUnsafe(4);
    vlen.writeUInt32BE(value.length, 0);
    parts.push(head, key, vlen, value);
    partsBytes += 9 + key.length + value.length;
    count++;
    if (partsBytes >= CHUNK_TARGET_BYTES) yield flush();
  }
  const end = Buffer.allocUnsafe(9);
  end[0] = 0;
  end.writeBigUInt64BE(count, 1);
  parts.push(end);
  partsBytes += end.length;
  const last = flush();
  const trailer = Buffer.allocUnsafe(4);
  trailer.writeUInt32BE(crc, 0);
  yield Buffer.concat([last, trailer]);
}

/** Incremental byte reader over an async stream of chunks. */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly src: AsyncIterator<Uint8Array>;
  private done = false;
  crc = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.src = source[Symbol.asyncIterator]();
  }

  /** Read exactly n bytes (folded into the running CRC unless `noCrc`). */
  async read(n: number, noCrc = false): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.done) throw new SnapshotFormatError('unexpected end of stream');
      const r = await this.src.next();
      if (r.done) {
        this.done = true;
        continue;
      }
      const chunk = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    }
    const out = Buffer.from(this.buf.subarray(0, n)); // copy: callers keep keys/values
    this.buf = this.buf.subarray(n);
    if (!noCrc) this.crc = crc32c(out, this.crc);
    return out;
  }

  async expectEnd(): Promise<void> {
    if (this.buf.length > 0) throw new SnapshotFormatError('trailing bytes after trailer');
    while (!this.done) {
      const r = await this.src.next();
      if (r.done) this.done = true;
      else if (r.value.byteLength > 0) throw new SnapshotFormatError('trailing bytes after trailer');
    }
  }
}

export async function* decodeSnapshot(source: AsyncIterable<Uint8Array>): AsyncGenerator<[Bucket, Buffer, Buffer]> {
  const r = new ChunkReader(source);
  const magic = await r.read(SNAPSHOT_MAGIC.length);
  if (!magic.equals(SNAPSHOT_MAGIC)) throw new SnapshotFormatError('bad magic (not a tsetcd backend snapshot)');
  let count = 0n;
  for (;;) {
    const tag = (await r.read(1))[0]!;
    if (tag === 0) break;
    if (!isBucket(tag)) throw new SnapshotFormatError(`unknown bucket 0x${tag.toString(16)}`);
    const klen = (await r.read(4)).readUInt32BE(0);
    const key = await r.read(klen);
    const vlen = (await r.read(4)).readUInt32BE(0);
    const value = await r.read(vlen);
    count++;
    yield [tag, key, value];
  }
  const declared = (await r.read(8)).readBigUInt64BE(0);
  const expectedCrc = r.crc;
  const crc = (await r.read(4, true)).readUInt32BE(0);
  if (declared !== count) throw new SnapshotFormatError(`record count mismatch: trailer says ${declared}, read ${count}`);
  if (crc !== expectedCrc) throw new SnapshotFormatError('checksum mismatch');
  await r.expectEnd();
}
