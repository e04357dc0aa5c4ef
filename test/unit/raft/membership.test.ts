import { describe, expect, it } from 'vitest';
import { TestCluster, enc } from './helpers.js';
import { decodeConfChange } from '../../../src/raft/codec.js';
import { ErrProposalDropped, RaftInvariantError } from '../../../src/raft/errors.js';
import { RawNode } from '../../../src/raft/rawnode.js';
import { MemoryStorage } from '../../../src/raft/storage.js';
import type { ConfChange, NodeId } from '../../../src/raft/types.js';
import { ConfChangeType, EntryType, MessageType, StateType } from '../../../src/raft/types.js';

const cc = (type: ConfChangeType, nodeId: NodeId): ConfChange => ({ type, nodeId, context: enc(`member-${nodeId}`) });

describe('membership changes (single-step)', () => {
  it('bootstrap commits the initial membership as term-1 conf change entries', () => {
    const storage = new MemoryStorage();
    const node = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: () => 0 });
    node.bootstrap([{ id: 1n, context: enc('a') }, { id: 2n }, { id: 3n }]);
    const rd = node.ready();
    expect(rd.entries.map((e) => [e.index, e.term, e.type])).toEqual([
      [1, 1, EntryType.ConfChange],
      [2, 1, EntryType.ConfChange],
      [3, 1, EntryType.ConfChange],
    ]);
    expect(decodeConfChange(rd.entries[0]!.data)).toEqual({
      type: ConfChangeType.AddNode,
      nodeId: 1n,
      context: enc('a'),
    });
    expect(rd.hardState).toEqual({ term: 1, vote: 0n, commit: 3 });
    expect(rd.committedEntries).toHaveLength(3);
    expect(rd.mustSync).toBe(true);
    // Re-applying the bootstrap changes is harmless.
    for (const e of rd.committedEntries) node.applyConfChange(decodeConfChange(e.data));
    expect(node.raft.prs.confState()).toEqual({ voters: [1n, 2n, 3n], learners: [] });
    storage.append(rd.entries);
    node.advance(rd);
    const again = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: () => 0 });
    expect(() => again.bootstrap([{ id: 1n }])).toThrow(RaftInvariantError);
  });

  it('adds a voter that joins with an empty log and then counts toward the quorum', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    c.propose(1n, 'before');
    c.addNode(4n); // fresh, empty storage, not bootstrapped
    c.proposeConfChange(1n, cc(ConfChangeType.AddNode, 4n));
    c.tickAll(3);
    const n4 = c.get(4n);
    expect(n4.confState).toEqual({ voters: [1n, 2n, 3n, 4n], learners: [] });
    expect(n4.appliedData()).toEqual(['before']);
    // 4 voters: quorum is 3. With two of them unreachable nothing commits.
    c.isolate(3n);
    c.isolate(4n);
    const committed = c.get(1n).raft.raftLog.committed;
    c.propose(1n, 'stuck');
    expect(c.get(1n).raft.raftLog.committed).toBe(committed);
    c.heal();
    c.tickAll(2);
    expect(c.get(4n).appliedData()).toEqual(['before', 'stuck']);
  });

  it('with deferCommitBroadcast, a removed member still hears that its removal committed', () => {
    const c = new TestCluster([1n, 2n, 3n, 4n], { deferCommitBroadcast: true });
    c.elect(1n);
    c.proposeConfChange(1n, cc(ConfChangeType.RemoveNode, 4n));
    expect(c.get(1n).raft.prs.progress.has(4n)).toBe(false);
    // Without any broadcastCommit() or heartbeat, node 4 applied its own removal.
    expect(c.get(4n).confState.voters).toEqual([1n, 2n, 3n]);
  });

  it('removing a voter shrinks the quorum', () => {
    const c = new TestCluster([1n, 2n, 3n, 4n]);
    c.elect(1n);
    c.proposeConfChange(1n, cc(ConfChangeType.RemoveNode, 4n));
    expect(c.get(1n).confState.voters).toEqual([1n, 2n, 3n]);
    c.stop(4n);
    c.isolate(3n);
    c.propose(1n, 'two-of-three');
    expect(c.get(2n).appliedData()).toEqual(['two-of-three']);
    expect(c.get(1n).raft.prs.progress.has(4n)).toBe(false);
  });

  it('learners receive the log but are not part of the quorum; promotion makes them voters', () => {
    const c = new TestCluster([1n, 2n]);
    c.elect(1n);
    const learner = c.addNode(3n);
    c.proposeConfChange(1n, cc(ConfChangeType.AddLearnerNode, 3n));
    c.propose(1n, 'a');
    c.tickAll(2);
    expect(learner.confState).toEqual({ voters: [1n, 2n], learners: [3n] });
    expect(learner.appliedData()).toEqual(['a']);
    expect(learner.raft.isLearner).toBe(true);
    // Only the learner acknowledges: leader + learner is not a quorum of {1, 2}.
    c.isolate(2n);
    const committed = c.get(1n).raft.raftLog.committed;
    c.propose(1n, 'b');
    expect(c.get(3n).raft.raftLog.lastIndex()).toBeGreaterThan(committed);
    expect(c.get(1n).raft.raftLog.committed).toBe(committed);
    c.heal();
    c.tickAll(2);
    c.proposeConfChange(1n, cc(ConfChangeType.AddNode, 3n));
    c.tickAll(2);
    expect(learner.confState).toEqual({ voters: [1n, 2n, 3n], learners: [] });
    expect(learner.raft.isLearner).toBe(false);
    // Now 1 + 3 form a quorum of three.
    c.isolate(2n);
    c.propose(1n, 'c');
    expect(learner.appliedData()).toEqual(['a', 'b', 'c']);
  });

  it('refuses a second conf change while one is pending', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    c.isolate(2n);
    c.isolate(3n); // keep the first change uncommitted
    const leader = c.get(1n).node;
    leader.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4n));
    expect(() => leader.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5n))).toThrow(ErrProposalDropped);
    c.heal();
    c.stabilize();
    c.tickAll(2);
    expect(c.get(1n).confState.learners).toEqual([4n]);
    // Applied now, so the next one is accepted.
    leader.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5n));
    c.stabilize();
    expect(c.get(1n).confState.learners).toEqual([4n, 5n]);
  });

  it('a forwarded conf change that arrives while another is pending becomes a no-op entry', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    c.dropFilter = (m) => m.type === MessageType.App && m.from === 1n; // hold replication
    c.get(1n).node.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4n));
    c.get(2n).node.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5n)); // forwarded
    c.stabilize();
    c.dropFilter = undefined;
    c.tickAll(2);
    const log = c.get(1n).raft.raftLog;
    const confEntries = log.slice(log.firstIndex(), log.lastIndex() + 1).filter((e) => e.type === EntryType.ConfChange);
    expect(confEntries.map((e) => decodeConfChange(e.data).nodeId)).toEqual([1n, 2n, 3n, 4n]);
    expect(c.get(1n).confState.learners).toEqual([4n]);
  });

  it('a leader that removes itself steps down and the rest elect a new leader', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    c.proposeConfChange(1n, cc(ConfChangeType.RemoveNode, 1n));
    const old = c.get(1n);
    expect(old.state).toBe(StateType.Follower);
    expect(old.confState.voters).toEqual([2n, 3n]);
    c.stop(1n); // the server shuts down a removed member
    c.tickAll(40);
    const leader = c.leader();
    expect([2n, 3n]).toContain(leader.id);
    c.propose(leader.id, 'without-1');
    expect(c.get(2n).appliedData()).toEqual(['without-1']);
    expect(c.get(3n).appliedData()).toEqual(['without-1']);
  });

  it('applyConfChange reports the configuration and ignores demoting a voter', () => {
    const c = new TestCluster([1n, 2n]);
    const node = c.get(1n).node;
    expect(node.applyConfChange(cc(ConfChangeType.AddLearnerNode, 3n))).toEqual({ voters: [1n, 2n], learners: [3n] });
    expect(node.applyConfChange(cc(ConfChangeType.AddLearnerNode, 2n))).toEqual({ voters: [1n, 2n], learners: [3n] });
    expect(node.applyConfChange(cc(ConfChangeType.UpdateNode, 2n))).toEqual({ voters: [1n, 2n], learners: [3n] });
    expect(node.applyConfChange(cc(ConfChangeType.RemoveNode, 3n))).toEqual({ voters: [1n, 2n], learners: [] });
  });

  it('removing the last blocker lets pending entries commit', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    c.stop(3n);
    // {1,2} commit the removal of 3; then with 2 voters both are needed, so stop nothing else.
    c.proposeConfChange(1n, cc(ConfChangeType.RemoveNode, 3n));
    c.propose(1n, 'x');
    expect(c.get(2n).appliedData()).toEqual(['x']);
    expect(c.get(1n).raft.prs.quorum()).toBe(2);
  });
});
