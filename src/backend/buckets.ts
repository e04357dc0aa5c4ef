// LevelDB has a single flat keyspace; etcd's bbolt has named buckets. We emulate
// buckets with a one-byte prefix on every LevelDB key. The byte values are part of
// the on-disk format: never renumber them.

export enum Bucket {
  /** MVCC revisions: key = rev bytes (8 main BE + '_' + 8 sub BE [+ 't']), value = mvccpb.KeyValue. */
  Key = 0x01,
  /** Bookkeeping: consistent index, compaction marks, backend statistics. */
  Meta = 0x02,
  Lease = 0x03,
  Alarm = 0x04,
  Cluster = 0x05,
  Members = 0x06,
  MembersRemoved = 0x07,
  Auth = 0x08,
  AuthUsers = 0x09,
  AuthRoles = 0x0a,
}

/** etcd's bucket names; used when hashing so the hash covers bucket identity like etcd's. */
export const BUCKET_NAMES: ReadonlyMap<Bucket, string> = new Map([
  [Bucket.Key, 'key'],
  [Bucket.Meta, 'meta'],
  [Bucket.Lease, 'lease'],
  [Bucket.Alarm, 'alarm'],
  [Bucket.Cluster, 'cluster'],
  [Bucket.Members, 'members'],
  [Bucket.MembersRemoved, 'members_removed'],
  [Bucket.Auth, 'auth'],
  [Bucket.AuthUsers, 'authUsers'],
  [Bucket.AuthRoles, 'authRoles'],
]);

export const ALL_BUCKETS: readonly Bucket[] = [...BUCKET_NAMES.keys()];

/** Meta bucket keys (same names as etcd's meta bucket). */
export const META_CONSISTENT_INDEX = Buffer.from('consistent_index');
export const META_SCHEDULED_COMPACT = Buffer.from('scheduledCompactRev');
export const META_FINISHED_COMPACT = Buffer.from('finishedCompactRev');
/** Backend-private: logical bytes in use, persisted with every commit so open() need not scan. */
export const META_SIZE_IN_USE = Buffer.from('tsetcd_size_in_use');

export function isBucket(b: number): b is Bucket {
  return BUCKET_NAMES.has(b as Bucket);
}
