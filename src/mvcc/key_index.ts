// Per-key revision history, modelled on etcd's keyIndex.
//
// A key's life is a sequence of generations. A generation starts with the put that
// (re)creates the key and ends with the tombstone that deletes it; the last
// generation is open (empty when the key is currently deleted). Revisions are kept
// as flat number arrays [main0, sub0, main1, sub1, ...] — two numbers per revision,
// no per-revision objects — because this structure exists for every key in memory.
//
// The latest live value is cached on the KeyIndex so that current-revision reads and
// Txn compares never touch the backend.

import { revToBytes } from './revision.js';
import type { KeyValue } from './types.js';

/** Result slot for locate(): avoids allocating a tuple per lookup on the read path. */
export const located = { gen: -1, pair: -1 };

export class KeyIndex {
  readonly key: Buffer;
  /** The current value, or null while the key is deleted. */
  latest: KeyValue | null = null;
  /**
   * Generations, oldest first; every generation but the last ends with a tombstone. Kept as
   * the open (last) generation plus the closed ones, if any: most keys were never deleted,
   * and an index of millions of keys is what every full GC walks, so no wrapper array each.
   */
  private open: number[] = [];
  private closed: number[][] | null = null;

  constructor(key: Buffer) {
    this.key = key;
  }

  /** Number of generations (closed ones + the open one). */
  private get genCount(): number {
    return this.closed === null ? 1 : this.closed.length + 1;
  }

  /** Generation `i`, oldest first. */
  private gen(i: number): number[] {
    return this.closed !== null && i < this.closed.length ? this.closed[i]! : this.open;
  }

  /** All generations, oldest first (a copy of the outer list; for tests and diagnostics). */
  get gens(): number[][] {
    return this.closed === null ? [this.open] : [...this.closed, this.open];
  }

  /** Record a put at (main, sub) whose stored value is `kv`. */
  put(main: number, sub: number, kv: KeyValue): void {
    const g = this.open;
    const n = g.length;
    if (n > 0 && (g[n - 2]! > main || (g[n - 2] === main && g[n - 1]! >= sub))) {
      throw new Error(`mvcc: revision (${main},${sub}) not after the latest of key ${this.key.toString('hex')}`);
    }
    // A key's first revision gets an array of exactly two slots: push() onto an empty array
    // reserves 17, and most keys are written once (~120 bytes per key of a heap every GC walks).
    if (n === 0) this.open = [main, sub];
    else g.push(main, sub);
    this.latest = kv;
  }

  /**
   * Record a deletion at (main, sub): closes the open generation and starts an empty one.
   * Returns false (and changes nothing) if the key is already deleted, which only
   * happens while rebuilding from a partially compacted backend.
   */
  tombstone(main: number, sub: number): boolean {
    const g = this.open;
    if (g.length === 0) return false;
    g.push(main, sub);
    (this.closed ??= []).push(g);
    this.open = [];
    this.latest = null;
    return true;
  }

  /** True when no revision is left (the key can be dropped from the tree). */
  isEmpty(): boolean {
    return this.closed === null && this.open.length === 0;
  }

  /**
   * Find the revision that holds the key's value as of `rev`. On success sets
   * `located.gen/pair` (pair = index of the revision within the generation) and
   * returns true; returns false when the key did not exist at `rev`.
   */
  locate(rev: number): boolean {
    const lastGen = this.genCount - 1;
    for (let gi = lastGen; gi >= 0; gi--) {
      const g = this.gen(gi);
      if (g.length === 0) continue;
      // A closed generation whose tombstone is at or before rev: the key was deleted then.
      if (gi !== lastGen && g[g.length - 2]! <= rev) return false;
      if (g[0]! <= rev) {
        for (let p = g.length / 2 - 1; p >= 0; p--) {
          if (g[2 * p]! <= rev) {
            located.gen = gi;
            located.pair = p;
            return true;
          }
        }
        return false;
      }
    }
    return false;
  }

  /** Whether `located` (set by locate) points at the cached latest value. */
  locatedIsLatest(): boolean {
    return this.latest !== null && located.gen === this.genCount - 1 && located.pair === this.open.length / 2 - 1;
  }

  /** Revision key of the pair `located` points at (always a put, never a tombstone). */
  locatedRevKey(): Buffer {
    const g = this.gen(located.gen);
    return revToBytes(g[2 * located.pair]!, g[2 * located.pair + 1]!);
  }

  /**
   * Drop every revision superseded at `atRev`, exactly as etcd's keyIndex.compact does:
   * generations deleted at or before atRev go entirely; in the generation alive at
   * atRev only the newest revision <= atRev and later ones stay. The revision keys
   * to delete from the backend (all with main <= atRev) are appended to `removed`.
   */
  compact(atRev: number, removed: Buffer[]): void {
    const count = this.genCount;
    let genIdx = this.firstGenAliveAfter(atRev);
    for (let gi = 0; gi < genIdx; gi++) pushGeneration(this.gen(gi), true, removed);
    const g = this.gen(genIdx);
    if (g.length > 0) {
      const keepFrom = newestPairAtOrBefore(g, atRev);
      if (keepFrom > 0) {
        for (let p = 0; p < keepFrom; p++) removed.push(revToBytes(g[2 * p]!, g[2 * p + 1]!));
        g.splice(0, 2 * keepFrom);
      }
      // A closed generation reduced to its tombstone carries no value any more.
      // (Unreachable with a well-formed history — the tombstone of a generation alive at
      // atRev is > atRev — but kept for parity with etcd's defensive check.)
      if (g.length === 2 && genIdx !== count - 1) {
        if (g[0]! <= atRev) removed.push(revToBytes(g[0]!, g[1]!, true));
        genIdx++;
      }
    }
    if (genIdx > 0) {
      // Drop the first genIdx generations; the open one always stays (genIdx < count).
      const rest = this.closed!.slice(genIdx);
      this.closed = rest.length > 0 ? rest : null;
    }
  }

  /**
   * The revisions a compaction at `atRev` would keep (etcd's keyIndex.keep), added to
   * `keep` as "main_sub" strings. Used by HashKV to skip superseded history.
   */
  keep(atRev: number, keep: Set<string>): void {
    if (this.isEmpty()) return;
    const genIdx = this.firstGenAliveAfter(atRev);
    const g = this.gen(genIdx);
    if (g.length === 0) return;
    const p = newestPairAtOrBefore(g, atRev);
    if (p === -1) return;
    if (p === g.length / 2 - 1 && genIdx !== this.genCount - 1) return; // a tombstone is not kept
    keep.add(`${g[2 * p]}_${g[2 * p + 1]}`);
  }

  /** Index of the first generation not deleted at or before atRev (the last one at most). */
  private firstGenAliveAfter(atRev: number): number {
    const last = this.genCount - 1;
    let gi = 0;
    while (gi < last) {
      const g = this.gen(gi);
      if (g[g.length - 2]! > atRev) break;
      gi++;
    }
    return gi;
  }
}

/** Index of the newest pair with main <= atRev, or -1. */
function newestPairAtOrBefore(g: number[], atRev: number): number {
  for (let p = g.length / 2 - 1; p >= 0; p--) if (g[2 * p]! <= atRev) return p;
  return -1;
}

function pushGeneration(g: number[], closed: boolean, out: Buffer[]): void {
  const pairs = g.length / 2;
  for (let p = 0; p < pairs; p++) out.push(revToBytes(g[2 * p]!, g[2 * p + 1]!, closed && p === pairs - 1));
}
