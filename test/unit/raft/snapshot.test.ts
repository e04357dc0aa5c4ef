import { describe, expect, it } from 'vitest';
import { TestCluster, enc } from './helpers.js';
import { ProgressStateType } from '../../../src/raft/progress.js';
import { makeMessage } from '../../../src/raft/util.js';
import { ConfChangeType, MessageType, StateType } from '../../../src/raft/types.js';

const ids = [1n, 2n, 3n];

/** 3-node cluster where node 3 missed entries the leader has already compacted away. */
function laggingFollowerCluster(): TestCluster {
  const c = new TestCluster(ids);
  c.elect(1n);
  c.propose(1n, 'early');
  c.isolate(3n);
  for (let i = 0; i < 10; i++) c.propose(1n, `v${i}`);
  c.snapshotAndCompact(1n);
  return c;
}

describe('snapshots', () => {
  it('the leader sends a snapshot when the follower needs compacted entries, and the follower restores it', () => {
    const c = laggingFollowerCluster();
    const snapIndex = c.get(1n).storage.snapshot().meta.index;
    c.heal();
    c.tickAll(3);
    const snaps = c.sentOfType(MessageType.Snap);
    expect(snaps.map((m) => [m.from, m.to, m.snapshot!.meta.index])).toEqual([[1n, 3n, snapIndex]]);
    const n3 = c.get(3n);
    expect(n3.storage.snapshot().meta.index).toBe(snapIndex);
    expect(n3.raft.raftLog.committed).toBeGreaterThanOrEqual(snapIndex);
    expect(n3.confState).toEqual({ voters: [1n, 2n, 3n], learners: [] });
    expect(n3.appliedData()).toEqual(['early', ...Array.from({ length: 10 }, (_, i) => `v${i}`)]);
    // Afterwards it follows normally from the log.
    c.get(1n).node.reportSnapshot(3n, true);
    c.propose(1n, 'after');
    expect(n3.appliedData().at(-1)).toBe('after');
    expect(c.get(1n).raft.prs.progress.get(3n)!.state).toBe(ProgressStateType.Replicate);
  });

  it('pauses appends while a snapshot is in flight; a failure report returns the peer to probing', () => {
    const c = laggingFollowerCluster();
    c.dropFilter = (m) => m.type === MessageType.Snap;
    c.heal();
    c.tick(1n, 1);
    const pr = c.get(1n).raft.prs.progress.get(3n)!;
    expect(pr.state).toBe(ProgressStateType.Snapshot);
    c.sent = [];
    c.propose(1n, 'while-snapshotting');
    expect(c.sent.filter((m) => m.type === MessageType.App && m.to === 3n)).toEqual([]);
    c.get(1n).node.reportSnapshot(3n, false);
    expect(pr.state).toBe(ProgressStateType.Probe);
    expect(pr.pendingSnapshot).toBe(0);
    c.dropFilter = undefined;
    c.tickAll(3); // heartbeat response unpauses; the snapshot is sent again
    expect(c.get(3n).appliedData().at(-1)).toBe('while-snapshotting');
  });

  it('ignores a snapshot that is not newer than its commit index', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.propose(1n, 'a');
    const n2 = c.get(2n);
    const committed = n2.raft.raftLog.committed;
    c.sent = [];
    n2.node.step(
      makeMessage({
        type: MessageType.Snap,
        from: 1n,
        to: 2n,
        term: n2.raft.term,
        snapshot: { meta: { index: committed - 1, term: 1, confState: { voters: ids, learners: [] } }, data: enc('[]') },
      }),
    );
    c.stabilize();
    const resp = c.sent.find((m) => m.type === MessageType.AppResp && m.from === 2n);
    expect(resp?.index).toBe(committed);
    expect(n2.storage.snapshot().meta.index).toBe(0);
  });

  it('ignores a snapshot whose configuration does not contain the node', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    const n2 = c.get(2n);
    n2.node.step(
      makeMessage({
        type: MessageType.Snap,
        from: 1n,
        to: 2n,
        term: n2.raft.term,
        snapshot: { meta: { index: 100, term: 2, confState: { voters: [1n, 3n], learners: [] } }, data: enc('[]') },
      }),
    );
    c.stabilize();
    expect(n2.storage.snapshot().meta.index).toBe(0);
    expect(n2.raft.raftLog.lastIndex()).toBeLessThan(100);
  });

  it('fast-forwards the commit index when the snapshot matches an entry it already has', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.isolate(2n);
    c.propose(1n, 'a');
    c.heal();
    // Node 2 lacks the last entry; give it everything but withhold commit information.
    c.dropFilter = (m) => m.type === MessageType.Heartbeat;
    const leaderLog = c.get(1n).raft.raftLog;
    const n2 = c.get(2n);
    const ents = leaderLog.slice(n2.raft.raftLog.lastIndex() + 1, leaderLog.lastIndex() + 1);
    n2.node.step(
      makeMessage({
        type: MessageType.App,
        from: 1n,
        to: 2n,
        term: n2.raft.term,
        index: n2.raft.raftLog.lastIndex(),
        logTerm: n2.raft.raftLog.lastTerm(),
        entries: ents,
        commit: 0,
      }),
    );
    c.processReady(2n);
    const last = n2.raft.raftLog.lastIndex();
    expect(n2.raft.raftLog.committed).toBeLessThan(last);
    n2.node.step(
      makeMessage({
        type: MessageType.Snap,
        from: 1n,
        to: 2n,
        term: n2.raft.term,
        snapshot: { meta: { index: last, term: n2.raft.raftLog.lastTerm(), confState: { voters: ids, learners: [] } }, data: enc('[]') },
      }),
    );
    expect(n2.raft.raftLog.committed).toBe(last);
    expect(n2.raft.raftLog.unstable.snapshot).toBeUndefined();
  });

  it('a node restarts from snapshot + later entries + hard state', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    for (let i = 0; i < 5; i++) c.propose(1n, `a${i}`);
    c.snapshotAndCompact(2n);
    c.propose(1n, 'tail');
    c.stop(2n);
    const n2 = c.restartNode(2n);
    expect(n2.raft.raftLog.firstIndex()).toBe(n2.storage.snapshot().meta.index + 1);
    expect(n2.appliedData()).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'tail']);
    expect(n2.raft.prs.confState()).toEqual({ voters: ids, learners: [] });
    c.propose(1n, 'more');
    expect(n2.appliedData().at(-1)).toBe('more');
    expect(n2.state).toBe(StateType.Follower);
  });

  it('a new member joining after compaction is brought up by snapshot', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    for (let i = 0; i < 5; i++) c.propose(1n, `a${i}`);
    c.addNode(4n);
    c.proposeConfChange(1n, { type: ConfChangeType.AddLearnerNode, nodeId: 4n, context: new Uint8Array() });
    c.snapshotAndCompact(1n);
    c.tickAll(3);
    const n4 = c.get(4n);
    expect(n4.storage.snapshot().meta.index).toBeGreaterThan(0);
    expect(n4.confState.learners).toEqual([4n]);
    expect(n4.appliedData()).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
  });
});
