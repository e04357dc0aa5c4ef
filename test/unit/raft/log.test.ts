import { describe, expect, it } from 'vitest';
import { RaftLog } from '../../../src/raft/log.js';
import { MemoryStorage } from '../../../src/raft/storage.js';
import { ErrCompacted, RaftInvariantError } from '../../../src/raft/errors.js';
import type { Entry } from '../../../src/raft/types.js';
import { EntryType } from '../../../src/raft/types.js';

function ent(index: number, term: number, size = 0): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(size) };
}

function ents(terms: number[], from = 1): Entry[] {
  return terms.map((t, i) => ent(from + i, t));
}

function logWith(terms: number[]): RaftLog {
  const log = new RaftLog(new MemoryStorage());
  log.append(ents(terms));
  return log;
}

describe('RaftLog', () => {
  it('reads terms across storage and the unstable tail', () => {
    const storage = new MemoryStorage();
    storage.append(ents([1, 1, 2]));
    const log = new RaftLog(storage);
    log.append(ents([3, 3], 4));
    expect([1, 2, 3, 4, 5].map((i) => log.term(i))).toEqual([1, 1, 2, 3, 3]);
    expect(log.term(6)).toBe(0); // out of range
    expect(log.lastIndex()).toBe(5);
    expect(log.slice(2, 6).map((e) => e.term)).toEqual([1, 2, 3, 3]);
    expect(log.unstableEntries().map((e) => e.index)).toEqual([4, 5]);
  });

  it('findConflict returns the first mismatching or new index', () => {
    const log = logWith([1, 2, 3]);
    expect(log.findConflict([])).toBe(0);
    expect(log.findConflict(ents([1, 2, 3]))).toBe(0);
    expect(log.findConflict(ents([2, 3], 2))).toBe(0);
    expect(log.findConflict(ents([2, 3, 4], 2))).toBe(4); // new entry
    expect(log.findConflict(ents([4, 4], 1))).toBe(1); // conflicting term
    expect(log.findConflict(ents([2, 4, 4], 2))).toBe(3);
  });

  it('findConflictByTerm skips whole terms', () => {
    const log = logWith([1, 1, 2, 2, 5, 5, 5]);
    expect(log.findConflictByTerm(7, 3)).toBe(4); // last index with term <= 3
    expect(log.findConflictByTerm(7, 5)).toBe(7);
    expect(log.findConflictByTerm(7, 1)).toBe(2);
    expect(log.findConflictByTerm(7, 0)).toBe(0);
    expect(log.findConflictByTerm(10, 3)).toBe(10); // beyond our log: unchanged
  });

  it('maybeAppend rejects on mismatch, truncates conflicts and caps commit at the last new entry', () => {
    const log = logWith([1, 2, 3]);
    expect(log.maybeAppend(3, 2, 3, [])).toBeUndefined(); // term mismatch at 3
    expect(log.maybeAppend(4, 3, 3, [])).toBeUndefined(); // we do not have 4
    expect(log.maybeAppend(1, 1, 2, ents([4, 4], 2))).toBe(3);
    expect(log.slice(1, 4).map((e) => e.term)).toEqual([1, 4, 4]);
    expect(log.committed).toBe(2);
  });

  it('maybeAppend never commits stale entries beyond the ones the leader vouched for', () => {
    // Follower holds stale entries 3..4 (term 2) that the leader's message does not cover.
    const log = logWith([1, 1, 2, 2]);
    expect(log.maybeAppend(1, 1, 4, [ent(2, 1)])).toBe(2);
    expect(log.committed).toBe(2);
  });

  it('refuses to truncate committed entries', () => {
    const log = logWith([1, 1, 1]);
    log.commitTo(3);
    expect(() => log.maybeAppend(1, 1, 3, ents([2, 2], 2))).toThrow(RaftInvariantError);
  });

  it('commitTo never decreases and may not pass the last index', () => {
    const log = logWith([1, 1]);
    log.commitTo(2);
    log.commitTo(1);
    expect(log.committed).toBe(2);
    expect(() => log.commitTo(3)).toThrow(RaftInvariantError);
  });

  it('asserts applied <= committed and applied never goes back', () => {
    const log = logWith([1, 1, 1]);
    log.commitTo(2);
    expect(() => log.appliedTo(3)).toThrow(RaftInvariantError);
    log.appliedTo(2);
    expect(() => log.appliedTo(1)).toThrow(RaftInvariantError);
  });

  it('hands out committed entries once, bounded by size', () => {
    const log = new RaftLog(new MemoryStorage(), 50);
    log.append([ent(1, 1, 10), ent(2, 1, 10), ent(3, 1, 10)]);
    log.commitTo(3);
    expect(log.hasNextEntries()).toBe(true);
    const first = log.nextEntries();
    expect(first.map((e) => e.index)).toEqual([1]); // 31 bytes each with overhead; 62 > 50
    log.appliedTo(1);
    expect(log.nextEntries().map((e) => e.index)).toEqual([2]);
    log.appliedTo(3);
    expect(log.hasNextEntries()).toBe(false);
    expect(log.nextEntries()).toEqual([]);
  });

  it('maybeCommit only commits entries of the given term', () => {
    const log = logWith([1, 2, 2]);
    expect(log.maybeCommit(2, 1)).toBe(false);
    expect(log.maybeCommit(3, 2)).toBe(true);
    expect(log.committed).toBe(3);
  });

  it('isUpToDate compares last term first, then length', () => {
    const log = logWith([1, 2, 2]);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });

  it('stableTo drops persisted unstable entries, unless they were replaced meanwhile', () => {
    const log = logWith([1, 1, 1]);
    log.stableTo(2, 1);
    expect(log.unstable.offset).toBe(3);
    expect(log.unstableEntries().map((e) => e.index)).toEqual([3]);
    log.append([ent(3, 2)]); // replaces 3/1 before it was persisted
    log.stableTo(3, 1); // acknowledgement for the old entry: ignored
    expect(log.unstableEntries().map((e) => e.term)).toEqual([2]);
    log.stableTo(3, 2);
    expect(log.unstableEntries()).toEqual([]);
  });

  it('restores from a snapshot and throws ErrCompacted below it', () => {
    const log = logWith([1, 1, 1]);
    log.restore({ meta: { index: 10, term: 3, confState: { voters: [], learners: [] } }, data: new Uint8Array() });
    expect(log.firstIndex()).toBe(11);
    expect(log.lastIndex()).toBe(10);
    expect(log.lastTerm()).toBe(3);
    expect(log.committed).toBe(10);
    expect(log.snapshot().meta.index).toBe(10);
    expect(() => log.slice(5, 11)).toThrow(ErrCompacted);
    expect(log.entries(11, Infinity)).toEqual([]);
    log.append([ent(11, 3)]);
    expect(log.lastIndex()).toBe(11);
  });

  it('stops at the size limit within storage without reading the unstable tail', () => {
    const storage = new MemoryStorage();
    storage.append([ent(1, 1, 100), ent(2, 1, 100)]);
    const log = new RaftLog(storage);
    log.append([ent(3, 1, 100)]);
    expect(log.entries(1, 150).map((e) => e.index)).toEqual([1]);
    expect(log.entries(1, 300).map((e) => e.index)).toEqual([1, 2]);
    expect(log.entries(1, Infinity).map((e) => e.index)).toEqual([1, 2, 3]);
  });
});
