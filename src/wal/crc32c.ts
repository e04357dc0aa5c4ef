// CRC-32C (Castagnoli), the checksum etcd's WAL uses. Node 20 ships only the IEEE
// polynomial (and only from 20.15), so this is a small slicing-by-8 table implementation:
// eight 256-entry tables let the hot loop consume 8 bytes per iteration, which matters
// because every WAL byte is checksummed on write and again on replay.

/** Reversed (LSB-first) form of the Castagnoli polynomial 0x1EDC6F41. */
const CASTAGNOLI_REVERSED = 0x82f63b78;

function buildTables(): Int32Array[] {
  const tables: Int32Array[] = [];
  const base = new Int32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ CASTAGNOLI_REVERSED : crc >>> 1;
    base[byte] = crc;
  }
  tables.push(base);
  // tables[k][b] = CRC state after feeding byte b followed by k zero bytes.
  for (let k = 1; k < 8; k++) {
    const prev = tables[k - 1]!;
    const table = new Int32Array(256);
    for (let byte = 0; byte < 256; byte++) {
      const p = prev[byte]!;
      table[byte] = base[p & 0xff]! ^ (p >>> 8);
    }
    tables.push(table);
  }
  return tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = buildTables() as [
  Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array,
];

/**
 * Continues a CRC-32C over `data[start, end)` from `seed` (the CRC of everything before;
 * 0 to start fresh). Chaining holds: crc32c(crc32c(0, a), b) === crc32c(0, a ++ b).
 * Returns an unsigned 32-bit value.
 */
export function crc32c(seed: number, data: Uint8Array, start = 0, end = data.length): number {
  if (start < 0 || end > data.length || start > end) {
    throw new RangeError(`crc32c: range [${start}, ${end}) outside buffer of ${data.length} bytes`);
  }
  let crc = ~seed;
  let i = start;
  const last8 = end - 8;
  while (i <= last8) {
    crc ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    crc =
      T7[crc & 0xff]! ^
      T6[(crc >>> 8) & 0xff]! ^
      T5[(crc >>> 16) & 0xff]! ^
      T4[crc >>> 24]! ^
      T3[data[i + 4]!]! ^
      T2[data[i + 5]!]! ^
      T1[data[i + 6]!]! ^
      T0[data[i + 7]!]!;
    i += 8;
  }
  while (i < end) crc = T0[(crc ^ data[i++]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}
