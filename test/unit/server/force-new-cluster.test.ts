import { describe, expect, it } from 'vitest';
import { forceNewClusterLog, membersAfter } from '../../../src/server/force-new-cluster.js';
import { encodeConfChange, decodeConfChange } from '../../../src/raft/codec.js';
import { ConfChangeType, EntryType, type Entry } from '../../../src/raft/types.js';

const cc = (index: number, type: ConfChangeType, nodeId: bigint): Entry => ({
  term: 1, index, type: EntryType.ConfChange, data: encodeConfChange({ type, nodeId, context: new Uint8Array() }),
});
const normal = (index: number, term = 2): Entry => ({ term, index, type: EntryType.Normal, data: new Uint8Array([1]) });

describe('--force-new-cluster log rewrite', () => {
  it('keeps the committed log, drops the rest, and removes every other member', () => {
    const entries = [cc(1, ConfChangeType.AddNode, 1n), cc(2, ConfChangeType.AddNode, 2n), cc(3, ConfChangeType.AddNode, 3n), normal(4), normal(5), normal(6)];
    const out = forceNewClusterLog(2n, { term: 2, vote: 1n, commit: 5 }, entries);
    expect(out.removed).toEqual([1n, 3n]);
    expect(out.appended.map((e) => e.index)).toEqual([6, 7]); // replaces the uncommitted entry 6
    expect(out.appended.map((e) => decodeConfChange(e.data).nodeId)).toEqual([1n, 3n]);
    expect(out.appended.every((e) => e.term === 2 && decodeConfChange(e.data).type === ConfChangeType.RemoveNode)).toBe(true);
    expect(out.hardState).toEqual({ term: 2, vote: 1n, commit: 7 });
  });

  it('starts from the snapshot configuration and follows later conf changes', () => {
    const ids = membersAfter({ voters: [1n, 2n], learners: [5n] }, [cc(11, ConfChangeType.RemoveNode, 2n), cc(12, ConfChangeType.AddLearnerNode, 7n)]);
    expect([...ids].sort()).toEqual([1n, 5n, 7n]);
    const out = forceNewClusterLog(1n, { term: 4, vote: 1n, commit: 12 }, [cc(11, ConfChangeType.RemoveNode, 2n), cc(12, ConfChangeType.AddLearnerNode, 7n)], { index: 10, confState: { voters: [1n, 2n], learners: [5n] } });
    expect(out.removed).toEqual([5n, 7n]);
    expect(out.appended[0]!.index).toBe(13);
  });

  it('a member that is already alone changes nothing', () => {
    const out = forceNewClusterLog(1n, { term: 1, vote: 1n, commit: 1 }, [cc(1, ConfChangeType.AddNode, 1n)]);
    expect(out.appended).toEqual([]);
    expect(out.hardState.commit).toBe(1);
  });
});
