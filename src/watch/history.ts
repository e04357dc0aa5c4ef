import { Bucket, type Backend } from '../backend/index.js';
import { decodeKeyValue } from '../mvcc/kv_codec.js';
import { isTombstoneKey, revMainOf, revToBytes } from '../mvcc/revision.js';
import { EventType, type KeyValue, type MvccEvent } from '../mvcc/types.js';

// Reads past events straight from the backend's revision-ordered key bucket, for watchers
// that start in the past or fell behind. Each record is one change: a put (the full
// KeyValue) or a tombstone (a delete).

export interface RevisionEvents {
  revision: number;
  events: MvccEvent[];
}

/**
 * Events with fromRev <= revision <= toRev, grouped by revision, in order. Stops early
 * (at a revision boundary) after `maxEvents` events; the caller continues from the last
 * revision returned + 1.
 */
export async function readHistory(backend: Backend, fromRev: number, toRev: number, maxEvents: number): Promise<RevisionEvents[]> {
  const out: RevisionEvents[] = [];
  if (fromRev > toRev) return out;
  let count = 0;
  for await (const [revKey, value] of backend.iterate(Bucket.Key, { gte: revToBytes(fromRev, 0), lt: revToBytes(toRev + 1, 0) })) {
    const revision = revMainOf(revKey);
    let group = out[out.length - 1];
    if (!group || group.revision !== revision) {
      if (count >= maxEvents) break;
      group = { revision, events: [] };
      out.push(group);
    }
    const kv = decodeKeyValue(value);
    if (isTombstoneKey(revKey)) {
      const deleted: KeyValue = { key: kv.key, createRevision: 0, modRevision: revision, version: 0, value: EMPTY, lease: 0n };
      group.events.push({ type: EventType.DELETE, kv: deleted });
    } else {
      group.events.push({ type: EventType.PUT, kv });
    }
    count++;
  }
  return out;
}

const EMPTY = Buffer.alloc(0);
