// The Raft log: persisted entries (Storage) followed by not-yet-persisted ones (Unstable),
// plus the commit and apply cursors.
//
//   storage:  [snapshot] [firstIndex ............ storage.lastIndex]
//   unstable:                         [offset ........... lastIndex]   (overrides storage from `offset`)
//
// Invariant: applied <= committed <= lastIndex.
import { ErrCompacted, ErrUnavailable, RaftInvariantError, invariant } from './errors.js';
import type { Storage } from './storage.js';
import type { Entry, Snapshot } from './types.js';
import { limitSize } from './util.js';

/** Entries (and possibly a snapshot) the server has not yet persisted. */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  /** Raft index of entries[0]. */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** First index if an unstable snapshot defines it. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.meta.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.meta.index : undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /**
   * Entries up to (i, t) are now persisted. Ignored when the entry at i was replaced meanwhile
   * (different term) or already stabilized.
   */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.meta.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e); // common case: plain append
    } else if (after <= this.offset) {
      // Replaces everything unstable and part of what is persisted; storage truncates on persist.
      this.offset = after;
      this.entries = [...ents];
    } else {
      // Keep the unstable prefix before `after`, drop the conflicting rest.
      this.entries = this.entries.slice(0, after - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    invariant(lo <= hi, () => `invalid unstable.slice ${lo} > ${hi}`);
    const upper = this.offset + this.entries.length;
    invariant(
      lo >= this.offset && hi <= upper,
      () => `unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index the application has applied. */
  applied: number;
  /** Upper bound on the size of committed entries handed out per Ready. */
  readonly maxNextEntsSizeBytes: number;

  constructor(storage: Storage, maxNextEntsSizeBytes: number = Infinity) {
    this.storage = storage;
    this.maxNextEntsSizeBytes = maxNextEntsSizeBytes;
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * Term of entry i. Returns 0 for indexes outside [firstIndex-1, lastIndex]; may throw
   * ErrCompacted/ErrUnavailable if storage changed underneath.
   */
  term(i: number): number {
    const dummyIndex = this.firstIndex() - 1;
    if (i < dummyIndex || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /** term(i), but 0 when the entry is compacted or unavailable. */
  termOrZero(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return 0;
      throw e;
    }
  }

  matchTerm(i: number, t: number): boolean {
    try {
      return this.term(i) === t;
    } catch (e) {
      if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return false;
      throw e;
    }
  }

  /** Raft's election restriction: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries: if our log has (index, logTerm), merge `ents` after it and advance
   * commit to min(committed, last new index). Returns the last new index, or undefined on mismatch.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + ents.length;
    const conflictIndex = this.findConflict(ents);
    if (conflictIndex !== 0) {
      invariant(
        conflictIndex > this.committed,
        () => `entry ${conflictIndex} conflicts with committed entry [committed(${this.committed})]`,
      );
      this.append(ents.slice(conflictIndex - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  /** Append to the unstable tail (truncating a conflicting suffix). Returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    invariant(after >= this.committed, () => `after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry in `ents` whose term differs from ours (or which we do not have),
   * or 0 if every entry is already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Largest index <= `index` whose term is <= `term`. Used to skip a whole term of mismatching
   * entries per rejection instead of probing one index at a time.
   */
  findConflictByTerm(index: number, term: number): number {
    if (index > this.lastIndex()) return index;
    for (; index > 0; index--) {
      let ourTerm: number;
      try {
        ourTerm = this.term(index);
      } catch (e) {
        if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return index;
        throw e;
      }
      if (ourTerm <= term) break;
    }
    return index;
  }

  /** Copy of the entries not yet persisted. */
  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Committed entries not yet applied (bounded by maxNextEntsSizeBytes). */
  nextEntries(): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= lo) return [];
    return this.slice(lo, this.committed + 1, this.maxNextEntsSizeBytes);
  }

  hasNextEntries(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  /** Latest snapshot: the unstable one if present, else the storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(toCommit: number): void {
    if (this.committed >= toCommit) return; // never decrease
    invariant(
      toCommit <= this.lastIndex(),
      () =>
        `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]; was the raft log corrupted, truncated, or lost?`,
    );
    this.committed = toCommit;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(
      i <= this.committed && i >= this.applied,
      () => `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
    );
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Commit up to maxIndex, but only if that entry is from `term` (Raft never commits old terms by counting). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Replace the whole log with a snapshot. */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  /** Entries from i to the end, bounded by maxBytes. Throws ErrCompacted if i was compacted. */
  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /** Entries in [lo, hi), reading storage first and then the unstable tail. */
  slice(lo: number, hi: number, maxBytes: number = Infinity): Entry[] {
    this.checkOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let result: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      } catch (e) {
        if (e instanceof ErrUnavailable) {
          throw new RaftInvariantError(`entries[${lo}:${Math.min(hi, offset)}) is unavailable from storage`);
        }
        throw e;
      }
      // Storage stopped early because of the size limit: do not continue into the unstable part.
      if (stored.length < Math.min(hi, offset) - lo) return stored;
      result = stored;
    }
    if (hi > offset) {
      const fromUnstable = this.unstable.slice(Math.max(lo, offset), hi);
      result = result.length > 0 ? result.concat(fromUnstable) : fromUnstable;
    }
    return limitSize(result, maxBytes);
  }

  private checkOutOfBounds(lo: number, hi: number): void {
    invariant(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const first = this.firstIndex();
    if (lo < first) throw new ErrCompacted();
    const upper = this.lastIndex() + 1;
    invariant(hi <= upper, () => `slice[${lo},${hi}) out of bound [${first},${this.lastIndex()}]`);
  }
}

