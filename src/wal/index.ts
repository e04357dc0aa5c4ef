export { Wal, DEFAULT_SEGMENT_SIZE_BYTES, DEFAULT_MAX_BLOCKING_SYNC_MS, type OpenedWal, type SaveOptions, type WalLogger, type WalOptions } from './wal.js';
export { WalCorruptError } from './errors.js';
export { crc32c } from './crc32c.js';
