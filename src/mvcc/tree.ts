// Ordered map from key bytes to KeyIndex: a two-level sorted list (an array of sorted
// chunks of at most MAX_CHUNK entries, plus each chunk's last key for the top-level
// binary search). Lookups are two binary searches; inserts/deletes shift at most one
// chunk, so they stay cheap at millions of keys, and in-order range scans walk arrays.
// Keys compare as raw bytes (Buffer.compare's order), like etcd's btree of keyIndex.
//
// The search inside a chunk runs on numbers: every chunk keeps, per entry, a fingerprint of
// the FINGERPRINT_BYTES key bytes that follow the prefix all its keys share (see
// fingerprint()). Comparing keys means following KeyIndex -> Buffer -> bytes, three cache
// misses per step once the tree outgrows the CPU caches; the fingerprints of a chunk are one
// contiguous array. Equal fingerprints fall back to comparing the keys.

import { KeyIndex } from './key_index.js';

/**
 * Entries per chunk at most. An insert shifts half a chunk on average (Array splice), and a
 * search's comparisons each chase a KeyIndex and its key Buffer through memory, so smaller
 * chunks cost a slightly longer top-level search but much less shifting.
 */
const MAX_CHUNK = 256;
/**
 * Leading bytes compared in JS before handing the rest to Buffer.compare. Keys under one
 * prefix (etcdctl check perf's 20-byte "/etcdctl-check-perf/", Kubernetes' /registry/...)
 * differ right after it; the first comparisons of a search start at byte 0, and a JS loop
 * over a few dozen bytes is cheaper than the native call.
 */
const INLINE_COMPARE_BYTES = 64;

/**
 * Byte-wise order of two keys (Buffer.compare's). Keys usually differ within their first
 * bytes, where a JS loop beats the native call (~2/3 of its cost per comparison); a long
 * common prefix is finished by Buffer.compare (memcmp).
 */
export function compareKeys(a: Buffer, b: Buffer): number {
  return compareFrom(a, b, 0);
}

/**
 * How many leading bytes the two keys of the last compareFrom() share: exact when the JS
 * loop found the difference, else a lower bound (the bytes it checked before memcmp).
 */
let sharedBytes = 0;

/**
 * compareKeys for keys known to agree on their first `from` bytes: the comparison starts
 * there. Searches use it to skip the prefix every key in the searched range shares with the
 * key sought (keys under one prefix, like Kubernetes' /registry/..., share dozens of bytes).
 */
function compareFrom(a: Buffer, b: Buffer, from: number): number {
  const n = a.length < b.length ? a.length : b.length;
  const stop = n < from + INLINE_COMPARE_BYTES ? n : from + INLINE_COMPARE_BYTES;
  let i = from;
  for (; i < stop; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) {
      sharedBytes = i;
      return d < 0 ? -1 : 1;
    }
  }
  sharedBytes = i;
  if (i < n) return a.compare(b, i, b.length, i, a.length);
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function keysEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && compareFrom(a, b, 0) === 0;
}

/**
 * Binary-search bookkeeping. If the keys bounding a sorted range share m leading bytes with
 * the key sought, every key inside the range shares them too, so each comparison can start
 * at the smaller of the two bounds' shared lengths. chunkFor() leaves here how many leading
 * bytes the key sought shares with the last key of the chunk it found (a lower bound).
 */
let chunkSharedAt = 0;

/**
 * Key bytes a fingerprint covers. Each byte is a base-257 digit (byte + 1; 0 once the key
 * has ended, which sorts a key before its own extensions), so 6 bytes stay exact in a
 * double: 257^6 < 2^53.
 */
const FINGERPRINT_BYTES = 6;

/** Order-preserving summary of key[from, from + FINGERPRINT_BYTES) (see FINGERPRINT_BYTES). */
function fingerprint(key: Buffer, from: number): number {
  let fp = 0;
  const end = from + FINGERPRINT_BYTES;
  for (let i = from; i < end; i++) fp = fp * 257 + (i < key.length ? key[i]! + 1 : 0);
  return fp;
}

/**
 * Length of the common prefix of a and b, at most `limit`, checking from byte `from` on
 * (the bytes before it are known to be equal).
 */
function commonPrefix(a: Buffer, b: Buffer, from: number, limit = Infinity): number {
  const n = Math.min(a.length, b.length, limit);
  let i = from;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * The search index of one chunk: `sharedPrefix` bytes every key of the chunk starts with (a
 * lower bound is fine: only the first and last key are compared to set it, and deletes keep
 * it), and each entry's fingerprint of the bytes after it, in entry order.
 */
interface ChunkIndex {
  sharedPrefix: number;
  fingerprints: Float64Array;
}

/** End of the run fingerprintRun() found (exclusive). */
let fingerprintRunEnd = 0;

/**
 * The run of entries whose fingerprint equals `fp` in the sorted fps[0, count): returns its
 * start and leaves its end in fingerprintRunEnd. Keys with the same fingerprint agree on the
 * bytes it covers (or ended together), so the caller orders the run by the bytes after them.
 */
function fingerprintRun(fps: Float64Array, count: number, fp: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fps[mid]! < fp) lo = mid + 1;
    else hi = mid;
  }
  let end = count;
  for (let a = lo; a < end; ) {
    const mid = (a + end) >>> 1;
    if (fps[mid]! === fp) a = mid + 1;
    else end = mid;
  }
  fingerprintRunEnd = end;
  return lo;
}

/** The search index of the sorted keys keyAt(0 .. count-1), with room for `capacity` keys. */
function buildIndex(keyAt: (i: number) => Buffer, count: number, capacity: number): ChunkIndex {
  const sharedPrefix = count === 0 ? 0 : commonPrefix(keyAt(0), keyAt(count - 1), 0);
  const fingerprints = new Float64Array(capacity);
  for (let i = 0; i < count; i++) fingerprints[i] = fingerprint(keyAt(i), sharedPrefix);
  return { sharedPrefix, fingerprints };
}

function buildChunkIndex(chunk: KeyIndex[]): ChunkIndex {
  return buildIndex((i) => chunk[i]!.key, chunk.length, MAX_CHUNK + 1);
}

/**
 * Updates `index` of a sorted list of keys that now holds `count` keys, `key` newly at
 * position i (first and last: the list's ends). False when the index must be rebuilt
 * instead: no room, or a new first or last key sharing less than the index's prefix.
 */
function indexInsert(index: ChunkIndex, i: number, count: number, key: Buffer, first: Buffer, last: Buffer): boolean {
  const { sharedPrefix, fingerprints } = index;
  if (fingerprints.length < count) return false;
  if ((i === 0 || i === count - 1) && commonPrefix(first, last, 0, sharedPrefix) < sharedPrefix) return false;
  fingerprints.copyWithin(i + 1, i, count - 1);
  fingerprints[i] = fingerprint(key, sharedPrefix);
  return true;
}

/**
 * Updates `index` after the key at position i left a list that now holds `count` keys. The
 * keys left still share the index's prefix (maybe more), so the fingerprints stay valid.
 */
function indexRemove(index: ChunkIndex, i: number, count: number): void {
  index.fingerprints.copyWithin(i, i + 1, count + 1);
}

export class KeyTree {
  private readonly chunks: KeyIndex[][] = [];
  /** indexes[c] is the search index of chunks[c]. */
  private readonly indexes: ChunkIndex[] = [];
  /** lastKeys[c] = key of the last entry of chunks[c]. Change only through setLastKey() or reindexLastKeys(). */
  private readonly lastKeys: Buffer[] = [];
  /** The search index of lastKeys, as a ChunkIndex is of a chunk (fingerprints grow as needed). */
  private top: ChunkIndex = { sharedPrefix: 0, fingerprints: new Float64Array(0) };
  private count = 0;
  /**
   * Where the last get() that found nothing would insert its key. A put of a new key does
   * get() then insert() of that key: insert() checks that the slot still fits (two
   * comparisons) instead of searching again. Cleared by every change to the tree.
   */
  private lastMiss: { c: number; i: number } | undefined;

  get size(): number {
    return this.count;
  }

  /** Replace the contents with `sorted` (strictly ascending by key). */
  bulkLoad(sorted: KeyIndex[]): void {
    for (let i = 1; i < sorted.length; i++) {
      if (Buffer.compare(sorted[i - 1]!.key, sorted[i]!.key) >= 0) throw new Error('mvcc: bulkLoad input not strictly sorted');
    }
    // Mutate in place: cursors hold a reference to the chunk array.
    this.lastMiss = undefined;
    this.chunks.length = 0;
    this.indexes.length = 0;
    this.lastKeys.length = 0;
    this.top = { sharedPrefix: 0, fingerprints: new Float64Array(0) };
    const half = MAX_CHUNK / 2;
    for (let i = 0; i < sorted.length; i += half) {
      const chunk = sorted.slice(i, i + half);
      this.chunks.push(chunk);
      this.indexes.push(buildChunkIndex(chunk));
      this.lastKeys.push(chunk[chunk.length - 1]!.key);
    }
    this.reindexLastKeys();
    this.count = sorted.length;
  }

  /**
   * Index of the first chunk whose last key is >= key; chunks.length if none. Leaves in
   * chunkSharedAt how many leading bytes key shares with that chunk's last key (a lower bound).
   */
  private chunkFor(key: Buffer): number {
    const count = this.lastKeys.length;
    const { sharedPrefix, fingerprints } = this.top;
    if (count === 0) {
      chunkSharedAt = 0;
      return 0;
    }
    if (sharedPrefix > 0) {
      const first = this.lastKeys[0]!;
      const shared = commonPrefix(key, first, 0, sharedPrefix);
      if (shared < sharedPrefix) {
        // The key leaves the prefix every last key shares: below all of them or above all.
        chunkSharedAt = shared;
        return shared === key.length || key[shared]! < first[shared]! ? 0 : count;
      }
    }
    let lo = fingerprintRun(fingerprints, count, fingerprint(key, sharedPrefix));
    let runEnd = fingerprintRunEnd;
    const from = sharedPrefix + FINGERPRINT_BYTES;
    while (lo < runEnd) {
      const mid = (lo + runEnd) >>> 1;
      if (compareFrom(this.lastKeys[mid]!, key, from) < 0) lo = mid + 1;
      else runEnd = mid;
    }
    chunkSharedAt = sharedPrefix;
    return lo;
  }

  /** Rebuilds the index of lastKeys (after chunks were added, split or removed). */
  private reindexLastKeys(): void {
    const keys = this.lastKeys;
    this.top = buildIndex((c) => keys[c]!, keys.length, Math.max(64, keys.length * 2));
  }

  /**
   * After a split put a new last key at lastKeys[c] (the old one moved to c + 1). It lies
   * between its neighbours; only as the new first one (c = 0) may it share less with the rest.
   */
  private lastKeyInserted(c: number): void {
    const keys = this.lastKeys;
    if (!indexInsert(this.top, c, keys.length, keys[c]!, keys[0]!, keys[keys.length - 1]!)) this.reindexLastKeys();
  }

  /** lastKeys[c] = key, keeping the index of lastKeys current. */
  private setLastKey(c: number, key: Buffer): void {
    const keys = this.lastKeys;
    keys[c] = key;
    const last = keys.length - 1;
    if ((c === 0 || c === last) && commonPrefix(keys[0]!, keys[last]!, 0, this.top.sharedPrefix) < this.top.sharedPrefix) {
      this.reindexLastKeys();
      return;
    }
    this.top.fingerprints[c] = fingerprint(key, this.top.sharedPrefix);
  }

  get(key: Buffer): KeyIndex | undefined {
    const c = this.chunkFor(key);
    if (c === this.chunks.length) {
      this.lastMiss = { c, i: 0 };
      return undefined;
    }
    const chunk = this.chunks[c]!;
    const i = this.lowerBoundIn(c, key, chunkSharedAt);
    const ki = chunk[i];
    if (ki !== undefined && keysEqual(ki.key, key)) return ki;
    this.lastMiss = { c, i };
    return undefined;
  }

  /** Insert a KeyIndex whose key is not present yet. */
  insert(ki: KeyIndex): void {
    const miss = this.lastMiss;
    this.lastMiss = undefined;
    if (this.chunks.length === 0) {
      this.chunks.push([ki]);
      this.indexes.push(buildChunkIndex(this.chunks[0]!));
      this.lastKeys.push(ki.key);
      this.reindexLastKeys();
      this.count = 1;
      return;
    }
    let c: number;
    let i: number;
    if (miss !== undefined && this.slotFits(miss.c, miss.i, ki.key)) {
      c = miss.c;
      i = miss.i;
      if (c === this.chunks.length) {
        c--; // beyond every key: append to the last chunk
        i = this.chunks[c]!.length;
      }
    } else {
      c = this.chunkFor(ki.key);
      if (c === this.chunks.length) {
        c--; // beyond every key: append to the last chunk
        i = this.chunks[c]!.length;
      } else {
        i = this.lowerBoundIn(c, ki.key, chunkSharedAt);
      }
    }
    const chunk = this.chunks[c]!;
    if (i < chunk.length && keysEqual(chunk[i]!.key, ki.key)) throw new Error('mvcc: duplicate key inserted into index');
    chunk.splice(i, 0, ki);
    if (i === chunk.length - 1) this.setLastKey(c, ki.key);
    this.count++;
    if (chunk.length > MAX_CHUNK) {
      const right = chunk.splice(chunk.length >>> 1);
      this.chunks.splice(c + 1, 0, right);
      this.indexes.splice(c, 1, buildChunkIndex(chunk), buildChunkIndex(right));
      this.lastKeys.splice(c, 1, chunk[chunk.length - 1]!.key, right[right.length - 1]!.key);
      this.lastKeyInserted(c);
      return;
    }
    this.indexInserted(c, i);
  }

  /** Updates chunk c's search index after an insert at position i. */
  private indexInserted(c: number, i: number): void {
    const chunk = this.chunks[c]!;
    const n = chunk.length;
    if (!indexInsert(this.indexes[c]!, i, n, chunk[i]!.key, chunk[0]!.key, chunk[n - 1]!.key)) this.indexes[c] = buildChunkIndex(chunk);
  }

  /**
   * First position in chunk c whose key is >= key, for a key known to be <= the chunk's last
   * key and to share `sharedWithLast` leading bytes with it (a lower bound is fine).
   */
  private lowerBoundIn(c: number, key: Buffer, sharedWithLast: number): number {
    const chunk = this.chunks[c]!;
    const { sharedPrefix, fingerprints } = this.indexes[c]!;
    const n = chunk.length;
    if (sharedWithLast < sharedPrefix) {
      sharedWithLast = commonPrefix(key, chunk[n - 1]!.key, sharedWithLast);
      // The key leaves the chunk's common prefix, below its last key: below all of its keys.
      if (sharedWithLast < sharedPrefix) return 0;
    }
    let lo = fingerprintRun(fingerprints, n, fingerprint(key, sharedPrefix));
    let runEnd = fingerprintRunEnd;
    const from = sharedPrefix + FINGERPRINT_BYTES;
    while (lo < runEnd) {
      const mid = (lo + runEnd) >>> 1;
      if (compareFrom(chunk[mid]!.key, key, from) < 0) lo = mid + 1;
      else runEnd = mid;
    }
    return lo;
  }

  /** Whether `key` belongs at position i of chunk c (c === chunks.length: after every key). */
  private slotFits(c: number, i: number, key: Buffer): boolean {
    const last = this.chunks.length - 1;
    if (c > last) return c === last + 1 && i === 0 && compareKeys(this.lastKeys[last]!, key) < 0;
    const chunk = this.chunks[c]!;
    if (i >= chunk.length) return false;
    // chunk[i] must be the first key >= key: it is >= key and its predecessor is < key.
    if (compareKeys(chunk[i]!.key, key) < 0) return false;
    const before = i > 0 ? chunk[i - 1]!.key : c > 0 ? this.lastKeys[c - 1]! : undefined;
    return before === undefined || compareKeys(before, key) < 0;
  }

  delete(key: Buffer): boolean {
    this.lastMiss = undefined;
    const c = this.chunkFor(key);
    if (c === this.chunks.length) return false;
    const chunk = this.chunks[c]!;
    const i = this.lowerBoundIn(c, key, chunkSharedAt);
    if (i === chunk.length || !keysEqual(chunk[i]!.key, key)) return false;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
      this.indexes.splice(c, 1);
      this.lastKeys.splice(c, 1);
      indexRemove(this.top, c, this.lastKeys.length);
      return true;
    }
    indexRemove(this.indexes[c]!, i, chunk.length);
    if (i === chunk.length) this.setLastKey(c, chunk[chunk.length - 1]!.key);
    return true;
  }

  /** A cursor positioned nowhere; call seek() or first(). Do not mutate the tree while using it. */
  cursor(): TreeCursor {
    return new TreeCursor(this.chunks, this);
  }

  /** @internal Position of the first entry with key >= `key`: [chunk, index in it]. */
  seekPosition(key: Buffer): [number, number] {
    const c = this.chunkFor(key);
    return c === this.chunks.length ? [c, 0] : [c, this.lowerBoundIn(c, key, chunkSharedAt)];
  }
}

export class TreeCursor {
  private c = 0;
  private i = 0;
  constructor(
    private readonly chunks: KeyIndex[][],
    private readonly tree: KeyTree,
  ) {}

  /** Position at the first entry with key >= `key` and return it. */
  seek(key: Buffer): KeyIndex | undefined {
    [this.c, this.i] = this.tree.seekPosition(key);
    return this.current();
  }

  first(): KeyIndex | undefined {
    this.c = 0;
    this.i = 0;
    return this.current();
  }

  next(): KeyIndex | undefined {
    this.i++;
    return this.current();
  }

  private current(): KeyIndex | undefined {
    while (this.c < this.chunks.length) {
      const chunk = this.chunks[this.c]!;
      if (this.i < chunk.length) return chunk[this.i];
      this.c++;
      this.i = 0;
    }
    return undefined;
  }
}
