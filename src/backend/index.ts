export { Backend, NOOP_LOGGER, fullKey } from './backend.js';
export type { BackendOptions, IterateRange, Logger } from './backend.js';
export {
  Bucket,
  BUCKET_NAMES,
  ALL_BUCKETS,
  META_CONSISTENT_INDEX,
  META_SCHEDULED_COMPACT,
  META_FINISHED_COMPACT,
  META_SIZE_IN_USE,
} from './buckets.js';
export { crc32c, Crc32c } from './crc32c.js';
export { SnapshotFormatError, SNAPSHOT_MAGIC } from './snapshot.js';
