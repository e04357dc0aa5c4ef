import { describe, expect, it } from 'vitest';
import { TestCluster, dec, enc } from './helpers.js';
import { MessageType, StateType } from '../../../src/raft/types.js';

const ids = [1n, 2n, 3n];

describe('ReadIndex', () => {
  it('leader answers only after a quorum acknowledged a heartbeat carrying the request', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.propose(1n, 'a');
    const leader = c.get(1n);
    const committed = leader.raft.raftLog.committed;
    leader.node.readIndex(enc('req1'));
    const rd = c.nextReady(1n);
    expect(rd.readStates).toEqual([]);
    const hbs = rd.messages.filter((m) => m.type === MessageType.Heartbeat);
    expect(hbs.map((m) => dec(m.context!))).toEqual(['req1', 'req1']);
    c.stabilize();
    expect(leader.readStates.map((rs) => [rs.index, dec(rs.requestCtx)])).toEqual([[committed, 'req1']]);
  });

  it('one follower ack plus the leader is a quorum of three', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.isolate(3n);
    c.get(1n).node.readIndex(enc('r'));
    c.stabilize();
    expect(c.get(1n).readStates).toHaveLength(1);
  });

  it('a leader cut off from the quorum never answers', () => {
    const c = new TestCluster(ids, { checkQuorum: false });
    c.elect(1n);
    c.isolate(1n);
    c.get(1n).node.readIndex(enc('r'));
    c.stabilize();
    c.tick(1n, 5);
    expect(c.get(1n).readStates).toEqual([]);
  });

  it('acknowledgements from a minority are not enough', () => {
    const c = new TestCluster([1n, 2n, 3n, 4n, 5n], { checkQuorum: false });
    c.elect(1n);
    c.isolate(3n);
    c.isolate(4n);
    c.isolate(5n);
    c.get(1n).node.readIndex(enc('r'));
    c.stabilize();
    c.tick(1n, 3);
    expect(c.get(1n).readStates).toEqual([]); // only 1 and 2 of 5
    c.heal();
    c.tick(1n, 1);
    expect(c.get(1n).readStates).toHaveLength(1);
  });

  it('a single voter answers immediately', () => {
    const c = new TestCluster([1n]);
    c.elect(1n);
    c.get(1n).node.readIndex(enc('solo'));
    const rd = c.nextReady(1n);
    expect(rd.readStates.map((rs) => dec(rs.requestCtx))).toEqual(['solo']);
    expect(rd.readStates[0]!.index).toBe(c.get(1n).raft.raftLog.committed);
  });

  it('a follower forwards the request and receives the leader commit index', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.propose(1n, 'a');
    c.get(2n).node.readIndex(enc('via-follower'));
    c.stabilize();
    const rs = c.get(2n).readStates;
    expect(rs.map((r) => dec(r.requestCtx))).toEqual(['via-follower']);
    expect(rs[0]!.index).toBe(c.get(1n).raft.raftLog.committed);
    expect(c.sent.some((m) => m.type === MessageType.ReadIndex && m.from === 2n && m.to === 1n)).toBe(true);
    expect(c.sent.some((m) => m.type === MessageType.ReadIndexResp && m.to === 2n)).toBe(true);
  });

  it('a follower without a leader drops the request', () => {
    const c = new TestCluster(ids);
    c.get(2n).node.readIndex(enc('lost'));
    expect(c.get(2n).node.hasReady()).toBe(false);
  });

  it('a new leader waits until it committed an entry of its term', () => {
    const c = new TestCluster(ids);
    // Appends and their responses are held back so the new leader's no-op stays uncommitted.
    c.dropFilter = (m) => m.type === MessageType.App || m.type === MessageType.AppResp;
    c.campaign(1n);
    const leader = c.get(1n);
    expect(leader.state).toBe(StateType.Leader);
    const noopIndex = leader.raft.raftLog.lastIndex();
    expect(leader.raft.raftLog.committed).toBeLessThan(noopIndex);
    leader.node.readIndex(enc('early'));
    c.stabilize();
    c.tick(1n, 2); // heartbeats get acked, but the request is not even in flight yet
    expect(leader.readStates).toEqual([]);
    c.dropFilter = undefined;
    c.tick(1n, 1);
    expect(leader.raft.raftLog.committed).toBe(noopIndex);
    expect(leader.readStates.map((r) => [r.index, dec(r.requestCtx)])).toEqual([[noopIndex, 'early']]);
  });

  it('an acknowledgement of a later request confirms all earlier ones', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.dropFilter = (m) => m.type === MessageType.HeartbeatResp;
    const leader = c.get(1n);
    leader.node.readIndex(enc('r1'));
    c.stabilize();
    leader.node.readIndex(enc('r2'));
    c.stabilize();
    c.dropFilter = undefined;
    leader.node.readIndex(enc('r3'));
    c.stabilize();
    expect(leader.readStates.map((r) => dec(r.requestCtx))).toEqual(['r1', 'r2', 'r3']);
  });

  it('pending requests are abandoned when leadership is lost', () => {
    const c = new TestCluster(ids, { checkQuorum: true });
    c.elect(1n);
    c.isolate(1n);
    c.get(1n).node.readIndex(enc('r'));
    c.stabilize();
    c.tick(1n, 25);
    expect(c.get(1n).state).toBe(StateType.Follower);
    c.heal();
    c.tickAll(30);
    expect(c.get(1n).readStates).toEqual([]);
  });
});
