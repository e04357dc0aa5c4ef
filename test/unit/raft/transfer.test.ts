import { describe, expect, it } from 'vitest';
import { TestCluster, enc } from './helpers.js';
import { ErrProposalDropped } from '../../../src/raft/errors.js';
import { ConfChangeType, MessageType, NONE, StateType } from '../../../src/raft/types.js';

const ids = [1n, 2n, 3n];

describe('leadership transfer', () => {
  it('hands leadership to an up-to-date follower via TimeoutNow (bypassing the lease)', () => {
    const c = new TestCluster(ids, { checkQuorum: true, preVote: true });
    c.elect(1n);
    const term = c.get(1n).raft.term;
    c.get(1n).node.transferLeader(2n);
    c.stabilize();
    expect(c.sentOfType(MessageType.TimeoutNow).map((m) => [m.from, m.to])).toEqual([[1n, 2n]]);
    expect(c.get(2n).state).toBe(StateType.Leader);
    expect(c.get(2n).raft.term).toBe(term + 1);
    expect(c.get(1n).state).toBe(StateType.Follower);
    expect(c.get(1n).raft.lead).toBe(2n);
    c.propose(2n, 'after');
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['after']);
  });

  it('first brings a lagging transferee up to date', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.isolate(3n);
    for (let i = 0; i < 5; i++) c.propose(1n, `v${i}`);
    c.heal();
    c.get(1n).node.transferLeader(3n);
    const rd = c.nextReady(1n);
    expect(rd.messages.some((m) => m.type === MessageType.App && m.to === 3n)).toBe(true);
    expect(rd.messages.some((m) => m.type === MessageType.TimeoutNow)).toBe(false);
    c.stabilize();
    expect(c.get(3n).state).toBe(StateType.Leader);
    expect(c.get(3n).appliedData()).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  it('drops proposals while a transfer is pending and aborts it after an election timeout', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.isolate(3n);
    const leader = c.get(1n);
    leader.node.transferLeader(3n);
    c.stabilize();
    expect(leader.raft.leadTransferee).toBe(3n);
    expect(() => leader.node.propose(enc('x'))).toThrow(ErrProposalDropped);
    c.tick(1n, 10);
    expect(leader.state).toBe(StateType.Leader);
    expect(leader.raft.leadTransferee).toBe(NONE);
    c.propose(1n, 'ok');
    expect(c.get(2n).appliedData()).toEqual(['ok']);
  });

  it('is forwarded when requested on a follower', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.get(3n).node.transferLeader(2n);
    c.stabilize();
    expect(c.get(2n).state).toBe(StateType.Leader);
  });

  it('ignores transfers to itself and to learners', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.addNode(4n);
    c.proposeConfChange(1n, { type: ConfChangeType.AddLearnerNode, nodeId: 4n, context: new Uint8Array() });
    c.tickAll(2);
    c.get(1n).node.transferLeader(1n);
    c.get(1n).node.transferLeader(4n);
    c.stabilize();
    expect(c.get(1n).raft.leadTransferee).toBe(NONE);
    expect(c.sentOfType(MessageType.TimeoutNow)).toEqual([]);
    expect(c.leader().id).toBe(1n);
  });

  it('a second transfer to another node replaces the first', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.isolate(3n);
    c.get(1n).node.transferLeader(3n);
    c.stabilize();
    c.get(1n).node.transferLeader(2n);
    c.stabilize();
    expect(c.get(2n).state).toBe(StateType.Leader);
  });
});
