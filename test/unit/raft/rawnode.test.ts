import { describe, expect, it } from 'vitest';
import { TestCluster, enc } from './helpers.js';
import { ErrStepLocalMsg, RaftInvariantError } from '../../../src/raft/errors.js';
import { ProgressStateType } from '../../../src/raft/progress.js';
import { RawNode } from '../../../src/raft/rawnode.js';
import { MemoryStorage } from '../../../src/raft/storage.js';
import { makeMessage } from '../../../src/raft/util.js';
import { MessageType, StateType } from '../../../src/raft/types.js';

describe('RawNode', () => {
  it('refuses local-only message types from the network', () => {
    const c = new TestCluster([1n, 2n]);
    const node = c.get(1n).node;
    for (const type of [MessageType.Hup, MessageType.Beat, MessageType.Unreachable, MessageType.SnapStatus, MessageType.CheckQuorum]) {
      expect(() => node.step(makeMessage({ type, from: 2n, to: 1n }))).toThrow(ErrStepLocalMsg);
    }
  });

  it('ignores responses from nodes outside the configuration', () => {
    const c = new TestCluster([1n, 2n]);
    c.elect(1n);
    const node = c.get(1n).node;
    node.step(makeMessage({ type: MessageType.AppResp, from: 9n, to: 1n, term: c.get(1n).raft.term, index: 100 }));
    expect(node.hasReady()).toBe(false);
  });

  it('forwarded proposals the leader refuses are dropped quietly', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    c.isolate(3n);
    c.get(1n).node.transferLeader(3n); // proposals refused while transferring
    c.stabilize();
    expect(() =>
      c.get(1n).node.step(
        makeMessage({
          type: MessageType.Prop,
          from: 2n,
          to: 1n,
          entries: [{ term: 0, index: 0, type: 0, data: enc('x') }],
        }),
      ),
    ).not.toThrow();
  });

  it('enforces the ready/advance pairing', () => {
    const storage = new MemoryStorage();
    const node = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: () => 0 });
    node.bootstrap([{ id: 1n }]);
    const rd = node.ready();
    expect(() => node.ready()).toThrow(RaftInvariantError);
    storage.append(rd.entries);
    node.advance(rd);
    expect(() => node.advance(rd)).toThrow(RaftInvariantError);
    expect(node.hasReady()).toBe(false);
  });

  it('reports soft state only on change and mustSync only for term/vote/entries', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.campaign(1n);
    const n2 = c.get(2n);
    // A heartbeat that only moves the commit index: no fsync needed.
    c.propose(1n, 'a');
    // Node 2 receives 'b' but not the later notifications that it committed.
    c.dropFilter = (m) =>
      m.to === 2n && ((m.type === MessageType.App && m.entries.length === 0) || m.type === MessageType.Heartbeat);
    c.get(1n).node.propose(enc('b'));
    c.stabilize();
    c.dropFilter = undefined;
    expect(n2.node.hasReady()).toBe(false);
    expect(n2.raft.raftLog.committed).toBeLessThan(c.get(1n).raft.raftLog.committed);
    n2.node.step(
      makeMessage({
        type: MessageType.App,
        from: 1n,
        to: 2n,
        term: n2.raft.term,
        index: n2.raft.raftLog.lastIndex(),
        logTerm: n2.raft.raftLog.lastTerm(),
        commit: c.get(1n).raft.raftLog.committed,
      }),
    );
    const rd = c.nextReady(2n);
    expect(rd.softState).toBeUndefined();
    expect(rd.entries).toEqual([]);
    expect(rd.mustSync).toBe(false);
    expect(rd.hardState?.commit).toBe(c.get(1n).raft.raftLog.committed);
    // Losing the leader changes the soft state.
    c.stop(1n);
    let sawSoftState = false;
    for (let i = 0; i < 30 && !sawSoftState; i++) {
      n2.node.tick();
      if (n2.node.hasReady()) sawSoftState = c.nextReady(2n).softState !== undefined;
    }
    expect(sawSoftState).toBe(true);
  });

  it('restores term, vote and commit from storage on restart', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    c.propose(1n, 'x');
    const before = c.get(2n).raft.hardState();
    c.stop(2n);
    const n2 = c.restartNode(2n);
    expect(n2.raft.hardState()).toEqual(before);
    expect(n2.state).toBe(StateType.Follower);
    expect(n2.raft.lead).toBe(0n);
    expect(n2.appliedData()).toEqual(['x']);
  });

  it('status exposes progress on the leader only', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    const st = c.get(1n).node.status();
    expect(st.softState).toEqual({ lead: 1n, state: StateType.Leader });
    expect(st.applied).toBe(c.get(1n).raft.raftLog.committed);
    expect([...st.progress!.keys()]).toEqual([1n, 2n, 3n]);
    expect(st.progress!.get(2n)).toMatchObject({ match: 4, next: 5, state: ProgressStateType.Replicate, isLearner: false });
    expect(c.get(2n).node.status().progress).toBeUndefined();
  });

  it('validates its configuration', () => {
    const storage = new MemoryStorage();
    const base = { storage, random: () => 0 };
    expect(() => new RawNode({ ...base, id: 0n, electionTick: 10, heartbeatTick: 1 })).toThrow(RaftInvariantError);
    expect(() => new RawNode({ ...base, id: 1n, electionTick: 1, heartbeatTick: 1 })).toThrow(RaftInvariantError);
    expect(() => new RawNode({ ...base, id: 1n, electionTick: 10, heartbeatTick: 0 })).toThrow(RaftInvariantError);
    // random() outside [0, 1) would break the election-timeout range.
    expect(() => new RawNode({ ...base, id: 1n, electionTick: 10, heartbeatTick: 1, random: () => 1 })).toThrow(
      RaftInvariantError,
    );
  });
});
