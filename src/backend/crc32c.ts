// CRC-32C (Castagnoli), the checksum etcd uses for HashKV and backend hashes. The table
// implementation lives with the WAL (src/wal/crc32c.ts); this adapter gives the backend
// and MVCC layers Go's calling shape: crc32c(data, crc) and a streaming hasher.
import { crc32c as continueCrc32c } from '../wal/crc32c.js';

/** CRC-32C of `data`, continuing from `crc` (0 to start fresh). */
export function crc32c(data: Uint8Array, crc = 0): number {
  return continueCrc32c(crc, data);
}

/** Streaming helper mirroring Go's crc32.New(castagnoliTable). */
export class Crc32c {
  private value = 0;
  update(data: Uint8Array): this {
    this.value = continueCrc32c(this.value, data);
    return this;
  }
  digest(): number {
    return this.value;
  }
}
