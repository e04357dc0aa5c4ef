import { describe, expect, it } from 'vitest';
import { TestCluster, TestNode } from './helpers.js';
import { RawNode } from '../../../src/raft/rawnode.js';
import { MemoryStorage } from '../../../src/raft/storage.js';
import { CAMPAIGN_TRANSFER_CONTEXT } from '../../../src/raft/raft.js';
import { makeMessage } from '../../../src/raft/util.js';
import { ConfChangeType, EntryType, MessageType, NONE, StateType } from '../../../src/raft/types.js';
import { Prng } from './sim/prng.js';

const ids = [1n, 2n, 3n];

describe('leader election', () => {
  it('a bootstrapped cluster elects exactly one leader by timeout and it appends a no-op', () => {
    const c = new TestCluster(ids);
    c.tickAll(25); // randomized timeouts are in [10, 20)
    const leader = c.leader();
    expect(leader.raft.term).toBe(2);
    for (const n of c.nodes.values()) {
      expect(n.raft.lead).toBe(leader.id);
      expect(n.raft.term).toBe(2);
    }
    // Bootstrap conf changes at 1..3, then the leader's empty entry at 4, committed everywhere.
    const noop = leader.raft.raftLog.slice(4, 5)[0]!;
    expect(noop).toMatchObject({ index: 4, term: 2, type: EntryType.Normal });
    expect(noop.data.byteLength).toBe(0);
    for (const n of c.nodes.values()) expect(n.raft.raftLog.committed).toBe(4);
  });

  it('randomizes the election timeout within [electionTick, 2*electionTick)', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Prng(seed);
      const storage = new MemoryStorage();
      const node = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: () => rng.next() });
      node.bootstrap([{ id: 1n }, { id: 2n }]);
      const rd = node.ready();
      storage.append(rd.entries);
      node.advance(rd);
      let ticks = 0;
      while (node.raft.state === StateType.Follower && ticks < 100) {
        node.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(3);
  });

  it('a candidate with a stale log cannot win', () => {
    const c = new TestCluster(ids, { checkQuorum: false });
    c.elect(1n);
    c.isolate(3n);
    c.propose(1n, 'x'); // 3 misses it
    c.heal();
    c.campaign(3n);
    expect(c.get(3n).state).not.toBe(StateType.Leader);
    // 1 and 2 refused the pre-vote: 3's log is behind.
    expect(c.sentOfType(MessageType.PreVoteResp).filter((m) => m.to === 3n && m.reject).length).toBeGreaterThan(0);
  });

  it('grants at most one vote per term, and the vote survives a restart', () => {
    const c = new TestCluster(ids, { preVote: false, checkQuorum: false });
    const n2 = c.get(2n);
    n2.node.step(makeMessage({ type: MessageType.Vote, from: 1n, to: 2n, term: 5, index: 3, logTerm: 1 }));
    c.processReady(2n);
    expect(n2.raft.vote).toBe(1n);
    c.stop(2n);
    c.restartNode(2n);
    expect(n2.raft.term).toBe(5);
    expect(n2.raft.vote).toBe(1n);
    c.queue = [];
    n2.node.step(makeMessage({ type: MessageType.Vote, from: 3n, to: 2n, term: 5, index: 3, logTerm: 1 }));
    c.processReady(2n);
    const resp = c.queue.find((m) => m.to === 3n && m.type === MessageType.VoteResp);
    expect(resp?.reject).toBe(true);
    // A repeated request from the same candidate is granted again (it may have lost the response).
    n2.node.step(makeMessage({ type: MessageType.Vote, from: 1n, to: 2n, term: 5, index: 3, logTerm: 1 }));
    c.processReady(2n);
    expect(c.queue.find((m) => m.to === 1n && m.type === MessageType.VoteResp)?.reject).toBe(false);
  });

  it('persists term and vote before the vote response leaves (mustSync)', () => {
    const c = new TestCluster(ids, { preVote: false });
    const n2 = c.get(2n);
    n2.node.step(makeMessage({ type: MessageType.Vote, from: 1n, to: 2n, term: 7, index: 3, logTerm: 1 }));
    const rd = n2.node.ready();
    expect(rd.mustSync).toBe(true);
    expect(rd.hardState).toEqual({ term: 7, vote: 1n, commit: 3 });
    expect(rd.messages.map((m) => m.type)).toEqual([MessageType.VoteResp]);
    n2.node.advance(rd);
  });

  it('pre-vote keeps a partitioned node from inflating its term and disrupting the leader', () => {
    const c = new TestCluster(ids, { preVote: true, checkQuorum: true });
    c.elect(1n);
    const leaderTerm = c.get(1n).raft.term;
    c.isolate(3n);
    c.tickAll(200);
    const n3 = c.get(3n);
    expect(n3.raft.term).toBe(leaderTerm); // pre-candidate, term never bumped
    expect(n3.state).toBe(StateType.PreCandidate);
    c.heal();
    c.tickAll(5);
    expect(c.leader().id).toBe(1n);
    expect(c.get(1n).raft.term).toBe(leaderTerm);
    expect(n3.state).toBe(StateType.Follower);
    expect(n3.raft.lead).toBe(1n);
  });

  it('without pre-vote a partitioned node inflates its term', () => {
    const c = new TestCluster(ids, { preVote: false, checkQuorum: false });
    c.elect(1n);
    const leaderTerm = c.get(1n).raft.term;
    c.isolate(3n);
    c.tickAll(200);
    expect(c.get(3n).raft.term).toBeGreaterThan(leaderTerm + 5);
  });

  it('with check-quorum, a follower that recently heard from the leader ignores higher-term votes (lease)', () => {
    const c = new TestCluster(ids, { preVote: false, checkQuorum: true });
    c.elect(1n);
    const n2 = c.get(2n);
    const term = n2.raft.term;
    c.queue = [];
    n2.node.step(makeMessage({ type: MessageType.Vote, from: 3n, to: 2n, term: term + 3, index: 100, logTerm: 100 }));
    expect(n2.raft.term).toBe(term);
    expect(n2.raft.vote).not.toBe(3n);
    expect(n2.node.hasReady()).toBe(false); // not even a rejection
    // A leadership-transfer campaign overrides the lease.
    n2.node.step(
      makeMessage({
        type: MessageType.Vote,
        from: 3n,
        to: 2n,
        term: term + 3,
        index: 100,
        logTerm: 100,
        context: CAMPAIGN_TRANSFER_CONTEXT,
      }),
    );
    expect(n2.raft.term).toBe(term + 3);
    expect(n2.raft.vote).toBe(3n);
  });

  it('the lease expires after an election timeout without the leader', () => {
    const c = new TestCluster(ids, { preVote: false, checkQuorum: true });
    c.elect(1n);
    c.stop(1n);
    const n2 = c.get(2n);
    for (let i = 0; i < 10; i++) n2.node.tick(); // may campaign itself; either way the lease is over
    const term = n2.raft.term;
    n2.node.step(makeMessage({ type: MessageType.Vote, from: 3n, to: 2n, term: term + 1, index: 100, logTerm: 100 }));
    expect(n2.raft.term).toBe(term + 1);
  });

  it('check-quorum: a leader that cannot reach a quorum steps down', () => {
    const c = new TestCluster(ids, { checkQuorum: true });
    c.elect(1n);
    c.isolate(1n);
    c.tick(1n, 21); // two check-quorum rounds: the first clears recentActive, the second fails
    expect(c.get(1n).state).toBe(StateType.Follower);
    expect(c.get(1n).raft.lead).toBe(NONE);
  });

  it('postponeElection: a silent leader is given that many more ticks, by followers and by the leader', () => {
    const c = new TestCluster(ids, { checkQuorum: true, preVote: true });
    c.elect(1n);
    const term = c.get(1n).raft.term;
    // A follower that postponed by 30 ticks does not campaign within 30 + 9 ticks of silence
    // (its randomized election timeout is at least 10 ticks).
    c.isolate(1n);
    c.get(2n).node.postponeElection(30);
    c.get(3n).node.postponeElection(30);
    c.tick(2n, 39);
    c.tick(3n, 39);
    expect(c.get(2n).state).toBe(StateType.Follower);
    expect(c.get(3n).state).toBe(StateType.Follower);
    expect(c.get(2n).raft.lead).toBe(1n);
    // The leader that postponed steps down 30 ticks late: after 30 + 2 election timeouts
    // (the first check still finds the followers active from before the silence).
    c.get(1n).node.postponeElection(30);
    c.tick(1n, 30 + 19);
    expect(c.get(1n).state).toBe(StateType.Leader);
    c.tick(1n, 1);
    expect(c.get(1n).state).toBe(StateType.Follower);
    for (let i = 0; i < 30 && c.get(2n).state !== StateType.Leader && c.get(3n).state !== StateType.Leader; i++) {
      c.tick(2n);
      c.tick(3n);
    }
    expect([c.get(2n).state, c.get(3n).state]).toContain(StateType.Leader);
    expect(Math.max(c.get(2n).raft.term, c.get(3n).raft.term)).toBe(term + 1);
    expect(() => c.get(2n).node.postponeElection(-1)).toThrow(/non-negative/);
  });

  it('check-quorum: a leader in contact with a quorum stays leader', () => {
    const c = new TestCluster(ids, { checkQuorum: true });
    c.elect(1n);
    c.cutLink(1n, 3n);
    c.tickAll(50);
    expect(c.get(1n).state).toBe(StateType.Leader);
  });

  it('a stale leader learns the new term from a lower-term append response and steps down', () => {
    const c = new TestCluster(ids, { checkQuorum: true, preVote: true });
    c.elect(1n);
    c.isolate(1n);
    // Only 2 and 3 see time pass: their lease on 1 expires and one of them takes over.
    for (let i = 0; i < 30 && c.get(2n).state !== StateType.Leader && c.get(3n).state !== StateType.Leader; i++) {
      c.tick(2n);
      c.tick(3n);
    }
    const newLeader = c.get(2n).state === StateType.Leader ? 2n : 3n;
    const follower = newLeader === 2n ? 3n : 2n;
    const newTerm = c.get(newLeader).raft.term;
    expect(c.get(1n).state).toBe(StateType.Leader); // still believes it leads
    c.cutLink(1n, newLeader); // only the follower can tell it about the new term
    c.heal();
    c.cutLink(1n, newLeader);
    c.tick(1n, 1); // old leader heartbeats; the follower answers with its higher term
    expect(c.sent.some((m) => m.from === follower && m.to === 1n && m.type === MessageType.AppResp && m.term === newTerm)).toBe(
      true,
    );
    expect(c.get(1n).state).toBe(StateType.Follower);
    expect(c.get(1n).raft.term).toBe(newTerm);
  });

  it('learners and removed nodes never campaign', () => {
    const c = new TestCluster([1n, 2n]);
    c.elect(1n);
    const learner = c.addNode(3n);
    c.proposeConfChange(1n, { type: ConfChangeType.AddLearnerNode, nodeId: 3n, context: new Uint8Array() });
    c.tickAll(5);
    expect(learner.confState.learners).toEqual([3n]);
    c.stop(1n);
    c.stop(2n);
    for (let i = 0; i < 100; i++) learner.node.tick();
    c.stabilize();
    expect(learner.state).toBe(StateType.Follower);
    expect(c.sent.filter((m) => m.from === 3n && (m.type === MessageType.PreVote || m.type === MessageType.Vote))).toEqual(
      [],
    );
  });

  it('does not campaign while committed conf changes are unapplied', () => {
    const storage = new MemoryStorage();
    const rng = new Prng(3);
    const node = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: () => rng.next() });
    node.bootstrap([{ id: 1n }, { id: 2n }]);
    // The bootstrap conf changes are committed but the first Ready was not applied yet.
    node.campaign();
    expect(node.raft.state).toBe(StateType.Follower);
    const rd = node.ready();
    storage.append(rd.entries);
    node.advance(rd);
    node.campaign();
    expect(node.raft.state).toBe(StateType.PreCandidate);
  });

  it('a single voter elects itself immediately', () => {
    const c = new TestCluster([1n]);
    c.campaign(1n);
    expect(c.get(1n).state).toBe(StateType.Leader);
    expect(c.get(1n).raft.term).toBe(2);
  });

  it('a candidate that loses the vote returns to follower', () => {
    const c = new TestCluster(ids, { preVote: false, checkQuorum: false });
    c.elect(1n);
    c.propose(1n, 'a');
    c.isolate(3n);
    c.propose(1n, 'b');
    c.heal();
    c.campaign(3n); // 3 lacks 'b': both others reject
    expect(c.get(3n).state).toBe(StateType.Follower);
    c.tickAll(40);
    expect(c.leaders().length).toBe(1);
    expect(c.leader().id).not.toBe(3n);
  });

  it('survives split votes and converges to one leader per term', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const c = new TestCluster([1n, 2n, 3n, 4n, 5n], { preVote: false, checkQuorum: false }, seed);
      for (const n of c.nodes.values()) n.node.campaign(); // everyone at once
      c.stabilize();
      c.tickAll(60);
      const leaders = c.leaders();
      expect(leaders.length).toBe(1);
      const term = leaders[0]!.raft.term;
      for (const n of c.nodes.values()) expect(n.raft.term).toBe(term);
    }
  });
});

export type { TestNode };
