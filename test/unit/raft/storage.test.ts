import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/raft/storage.js';
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable, RaftInvariantError } from '../../../src/raft/errors.js';
import type { Entry } from '../../../src/raft/types.js';
import { EntryType } from '../../../src/raft/types.js';

function ent(index: number, term: number, size = 0): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(size) };
}

/** Storage holding a snapshot at 3 (term 3) followed by entries 4/4 and 5/5, like etcd's tests. */
function storage345(): MemoryStorage {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 2), ent(3, 3), ent(4, 4), ent(5, 5)]);
  s.createSnapshot(3, { voters: [1n], learners: [] }, new Uint8Array([9]));
  s.compact(3);
  return s;
}

describe('MemoryStorage', () => {
  it('starts empty with a dummy entry at index 0', () => {
    const s = new MemoryStorage();
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
    expect(s.term(0)).toBe(0);
    expect(() => s.entries(1, 1, Infinity)).toThrow(ErrUnavailable);
    expect(s.initialState().hardState).toEqual({ term: 0, vote: 0n, commit: 0 });
  });

  it('answers term() for the snapshot index and rejects compacted / unavailable indexes', () => {
    const s = storage345();
    expect(s.term(3)).toBe(3);
    expect(s.term(5)).toBe(5);
    expect(() => s.term(2)).toThrow(ErrCompacted);
    expect(() => s.term(6)).toThrow(ErrUnavailable);
    expect(s.firstIndex()).toBe(4);
    expect(s.lastIndex()).toBe(5);
  });

  it('returns entry ranges, honouring maxBytes but always at least one entry', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1, 100), ent(2, 1, 100), ent(3, 1, 100)]);
    expect(s.entries(1, 4, Infinity).map((e) => e.index)).toEqual([1, 2, 3]);
    expect(s.entries(1, 4, 250).map((e) => e.index)).toEqual([1, 2]);
    expect(s.entries(1, 4, 1).map((e) => e.index)).toEqual([1]);
    expect(s.entries(2, 2, Infinity)).toEqual([]);
    expect(() => s.entries(1, 5, Infinity)).toThrow(RaftInvariantError);
  });

  it('throws ErrCompacted for ranges starting at or below the snapshot', () => {
    const s = storage345();
    expect(() => s.entries(3, 5, Infinity)).toThrow(ErrCompacted);
    expect(s.entries(4, 6, Infinity).map((e) => e.term)).toEqual([4, 5]);
  });

  it('append truncates a conflicting suffix and ignores compacted entries', () => {
    const s = storage345();
    s.append([ent(3, 3), ent(4, 6), ent(5, 6)]); // 3 is compacted, 4..5 replaced
    expect([s.term(4), s.term(5)]).toEqual([6, 6]);
    s.append([ent(5, 7)]); // replace the tail only
    expect(s.lastIndex()).toBe(5);
    expect(s.term(5)).toBe(7);
    s.append([ent(6, 7)]); // plain append
    expect(s.lastIndex()).toBe(6);
    s.append([ent(1, 1), ent(2, 2)]); // entirely compacted: ignored
    expect(s.lastIndex()).toBe(6);
    expect(() => s.append([ent(8, 7)])).toThrow(RaftInvariantError); // gap
  });

  it('compact keeps the term of the new dummy entry and refuses to go backwards', () => {
    const s = storage345();
    s.compact(4);
    expect(s.firstIndex()).toBe(5);
    expect(s.term(4)).toBe(4);
    expect(() => s.compact(4)).toThrow(ErrCompacted);
    expect(() => s.compact(9)).toThrow(RaftInvariantError);
  });

  it('createSnapshot records index, term and conf state; stale snapshots are refused', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 2), ent(3, 2)]);
    const snap = s.createSnapshot(2, { voters: [1n, 2n], learners: [3n] }, new Uint8Array([1, 2]));
    expect(snap.meta).toEqual({ index: 2, term: 2, confState: { voters: [1n, 2n], learners: [3n] } });
    expect(s.snapshot()).toBe(snap);
    expect(s.initialState().confState).toEqual({ voters: [1n, 2n], learners: [3n] });
    expect(() => s.createSnapshot(2, undefined, new Uint8Array())).toThrow(ErrSnapOutOfDate);
    expect(() => s.createSnapshot(4, undefined, new Uint8Array())).toThrow(RaftInvariantError);
    // Creating a snapshot does not compact by itself.
    expect(s.firstIndex()).toBe(1);
  });

  it('applySnapshot replaces the whole content', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1)]);
    s.applySnapshot({ meta: { index: 10, term: 4, confState: { voters: [1n], learners: [] } }, data: new Uint8Array() });
    expect(s.firstIndex()).toBe(11);
    expect(s.lastIndex()).toBe(10);
    expect(s.term(10)).toBe(4);
    expect(() =>
      s.applySnapshot({ meta: { index: 9, term: 4, confState: { voters: [], learners: [] } }, data: new Uint8Array() }),
    ).toThrow(ErrSnapOutOfDate);
  });

  it('stores the hard state', () => {
    const s = new MemoryStorage();
    s.setHardState({ term: 3, vote: 2n, commit: 0 });
    expect(s.initialState().hardState).toEqual({ term: 3, vote: 2n, commit: 0 });
  });
});
