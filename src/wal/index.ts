export { Wal, DEFAULT_SEGMENT_SIZE_BYTES, type OpenedWal, type WalLogger, type WalOptions } from './wal.js';
export { WalCorruptError } from './errors.js';
export { crc32c } from './crc32c.js';
