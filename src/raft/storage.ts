// Storage: the persisted part of the Raft log as seen by the Raft core, and an in-memory implementation.
//
// The server appends every Ready's entries (and hard state / snapshot) here only after they are durable
// in the WAL, so Storage always describes persisted state. The Raft core reads it but never writes it.
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable, RaftInvariantError, invariant } from './errors.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { EntryType, NONE } from './types.js';
import { EMPTY_BYTES, limitSize } from './util.js';

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface Storage {
  /** Persisted hard state and the membership as of the latest snapshot. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), truncated to roughly maxBytes (but at least one entry).
   * Throws ErrCompacted if lo is at or below the snapshot index, ErrUnavailable if nothing is stored.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i; valid for i in [firstIndex()-1, lastIndex()]. Throws ErrCompacted / ErrUnavailable. */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  /** The most recent snapshot. May throw ErrSnapshotTemporarilyUnavailable. */
  snapshot(): Snapshot;
}

function emptySnapshot(): Snapshot {
  return { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: EMPTY_BYTES };
}

function dummyEntry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: EMPTY_BYTES };
}

/**
 * Storage backed by an array. ents[0] is a dummy entry carrying the snapshot's index and term, so
 * term(snapshotIndex) stays answerable after compaction (needed for the log-matching check).
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  private snap: Snapshot = emptySnapshot();
  private ents: Entry[] = [dummyEntry(0, 0)];

  initialState(): InitialState {
    const cs = this.snap.meta.confState;
    return {
      hardState: { ...this.hardState },
      confState: { voters: [...cs.voters], learners: [...cs.learners] },
    };
  }

  setHardState(hs: HardState): void {
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  private offset(): number {
    return this.ents[0]!.index;
  }

  entries(lo: number, hi: number, maxBytes: number = Infinity): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new ErrCompacted();
    invariant(hi <= this.lastIndex() + 1, () => `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    invariant(lo <= hi, () => `invalid entries range lo(${lo}) > hi(${hi})`);
    // Only the dummy entry: nothing has been stored since the last snapshot.
    if (this.ents.length === 1) throw new ErrUnavailable();
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.offset();
    if (i < offset) throw new ErrCompacted();
    if (i - offset >= this.ents.length) throw new ErrUnavailable();
    return this.ents[i - offset]!.term;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace the whole content with a snapshot received from the leader (after persisting it). */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.meta.index >= snap.meta.index) throw new ErrSnapOutOfDate();
    this.snap = snap;
    this.ents = [dummyEntry(snap.meta.index, snap.meta.term)];
  }

  /**
   * Record a snapshot of the application state as of index i (i <= applied). The log is not
   * compacted here; call compact() separately (usually to an index a little below i, so slow
   * followers can still be served from the log).
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.meta.index) throw new ErrSnapOutOfDate();
    const offset = this.offset();
    invariant(i <= this.lastIndex(), () => `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    const confState = cs ?? this.snap.meta.confState;
    this.snap = {
      meta: {
        index: i,
        term: this.ents[i - offset]!.term,
        confState: { voters: [...confState.voters], learners: [...confState.learners] },
      },
      data,
    };
    return this.snap;
  }

  /** Discard entries up to and including compactIndex (which becomes the new dummy entry). */
  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset) throw new ErrCompacted();
    invariant(
      compactIndex <= this.lastIndex(),
      () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`,
    );
    const i = compactIndex - offset;
    const kept = this.ents.slice(i + 1);
    this.ents = [dummyEntry(compactIndex, this.ents[i]!.term), ...kept];
  }

  /**
   * Append persisted entries. Entries that overlap existing ones replace them and everything after
   * (the leader overwrote a conflicting suffix); entries at or below the snapshot are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // everything already compacted
    let toAdd = entries;
    if (first > entries[0]!.index) toAdd = entries.slice(first - entries[0]!.index);
    const pos = toAdd[0]!.index - this.offset();
    if (pos > this.ents.length) {
      throw new RaftInvariantError(
        `missing log entry [last: ${this.lastIndex()}, append at: ${toAdd[0]!.index}]`,
      );
    }
    // Truncate any conflicting suffix in place, then append; cheaper than copying the array.
    this.ents.length = pos;
    for (const e of toAdd) this.ents.push(e);
  }
}
