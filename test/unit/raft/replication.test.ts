import { describe, expect, it } from 'vitest';
import { TestCluster, enc } from './helpers.js';
import { ErrProposalDropped } from '../../../src/raft/errors.js';
import { ProgressStateType } from '../../../src/raft/progress.js';
import { RawNode } from '../../../src/raft/rawnode.js';
import { MemoryStorage } from '../../../src/raft/storage.js';
import { makeMessage } from '../../../src/raft/util.js';
import type { Message, NodeId } from '../../../src/raft/types.js';
import { EntryType, MessageType, StateType } from '../../../src/raft/types.js';

const ids = [1n, 2n, 3n];

function appsTo(msgs: Message[], to: NodeId): Message[] {
  return msgs.filter((m) => m.type === MessageType.App && m.to === to);
}

function logTerms(c: TestCluster, id: NodeId): number[] {
  const log = c.get(id).raft.raftLog;
  return log.slice(log.firstIndex(), log.lastIndex() + 1).map((e) => e.term);
}

describe('log replication', () => {
  it('replicates proposals from leader and followers and applies them everywhere in order', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.propose(1n, 'a');
    c.propose(2n, 'b'); // forwarded to the leader
    c.propose(3n, 'c');
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['a', 'b', 'c']);
  });

  it('throws ErrProposalDropped when there is no leader', () => {
    const c = new TestCluster(ids);
    expect(() => c.get(1n).node.propose(enc('x'))).toThrow(ErrProposalDropped);
    c.get(1n).node.campaign(); // pre-candidate now
    expect(() => c.get(1n).node.propose(enc('x'))).toThrow(ErrProposalDropped);
  });

  it('repairs a follower whose log diverged (uncommitted entries of an old leader are overwritten)', () => {
    const c = new TestCluster(ids, { checkQuorum: false });
    c.elect(1n);
    c.propose(1n, 'committed');
    c.isolate(1n);
    for (let i = 0; i < 5; i++) c.propose(1n, `lost${i}`); // only on node 1
    c.elect(2n);
    for (let i = 0; i < 3; i++) c.propose(2n, `kept${i}`);
    c.heal();
    c.tickAll(3);
    expect(c.leader().id).toBe(2n);
    expect(logTerms(c, 1n)).toEqual(logTerms(c, 2n));
    for (const n of c.nodes.values()) {
      expect(n.appliedData()).toEqual(['committed', 'kept0', 'kept1', 'kept2']);
    }
  });

  it('finds the divergence point by term in few round trips', () => {
    const c = new TestCluster(ids, { checkQuorum: false });
    c.elect(1n);
    c.isolate(1n);
    for (let i = 0; i < 100; i++) c.get(1n).node.propose(enc(`lost${i}`));
    c.stabilize();
    c.elect(2n);
    for (let i = 0; i < 50; i++) c.get(2n).node.propose(enc(`new${i}`));
    c.stabilize();
    // A fresh leader starts probing node 1 at its own last index, far past the divergence point.
    c.get(2n).node.transferLeader(3n);
    c.stabilize();
    expect(c.get(3n).state).toBe(StateType.Leader);
    c.heal();
    c.sent = [];
    c.tickAll(2);
    const rejects = c.sent.filter((m) => m.type === MessageType.AppResp && m.from === 1n && m.reject);
    expect(rejects.length).toBeGreaterThan(0);
    expect(rejects.length).toBeLessThanOrEqual(3); // not one per divergent entry
    expect(logTerms(c, 1n)).toEqual(logTerms(c, 2n));
  });

  it('leader commits only entries of its own term by counting replicas (Figure 8)', () => {
    const all = [1n, 2n, 3n, 4n, 5n];
    // One entry per append message, so the leader can hear about index 7 before index 8.
    const c = new TestCluster(all, { preVote: false, checkQuorum: false, maxSizePerMsgBytes: 1 });
    c.elect(1n); // term 2, no-op at 6
    c.isolate(3n);
    c.isolate(4n);
    c.isolate(5n);
    c.propose(1n, 'x'); // 7/2 on nodes 1 and 2 only
    expect(c.get(2n).raft.raftLog.lastIndex()).toBe(7);
    c.stop(1n);
    c.heal();
    c.dropFilter = (m) => m.from === 5n && m.type === MessageType.App;
    c.elect(5n); // term 3 with votes from 3 and 4; its no-op 7/3 stays local
    expect(c.get(5n).raft.raftLog.term(7)).toBe(3);
    c.stop(5n);
    c.restartNode(1n);
    // Node 1's no-op (index 8) never gets accepted anywhere, but index 7 (term 2) does reach node 3.
    c.dropFilter = (m) =>
      m.from === 1n &&
      m.type === MessageType.App &&
      m.entries.some((e) => e.index === 8) &&
      c.get(m.to).raft.raftLog.lastIndex() >= 7;
    for (let i = 0; i < 5 && c.get(1n).state !== StateType.Leader; i++) c.campaign(1n);
    const n1 = c.get(1n);
    expect(n1.state).toBe(StateType.Leader);
    expect(n1.raft.term).toBe(4);
    c.tick(1n, 3); // heartbeats trigger the probes
    // Index 7 now sits on 1, 2 and 3 (a majority) but is from term 2: it must not be committed.
    expect(c.get(3n).raft.raftLog.term(7)).toBe(2);
    expect(n1.raft.raftLog.committed).toBe(6);
    // Node 5 can still win (its last term 3 beats 2) and overwrite index 7: safe, since nothing committed it.
    c.stop(1n);
    c.dropFilter = undefined;
    c.restartNode(5n);
    for (let i = 0; i < 5 && c.get(5n).state !== StateType.Leader; i++) c.campaign(5n);
    expect(c.get(5n).state).toBe(StateType.Leader);
    c.propose(5n, 'y');
    for (const id of [2n, 3n, 4n, 5n]) {
      expect(c.get(id).raft.raftLog.term(7)).toBe(3);
      expect(c.get(id).appliedData()).toEqual(['y']);
    }
  });

  it('once an entry of the current term commits, earlier entries commit with it', () => {
    const c = new TestCluster(ids, { checkQuorum: false });
    c.elect(1n);
    c.isolate(2n);
    c.isolate(3n);
    c.propose(1n, 'old'); // uncommitted, term 2
    c.heal();
    c.stop(1n);
    c.restartNode(1n);
    c.elect(1n); // term 3: the no-op commits 'old' indirectly
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['old']);
  });

  it('heartbeats never tell a follower to commit beyond what it is known to hold', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.isolate(3n);
    c.propose(1n, 'a');
    c.heal();
    c.dropFilter = (m) => m.type === MessageType.App || m.type === MessageType.AppResp;
    c.sent = [];
    c.tick(1n);
    const hb = c.sent.filter((m) => m.type === MessageType.Heartbeat);
    const committed = c.get(1n).raft.raftLog.committed;
    expect(hb.find((m) => m.to === 2n)?.commit).toBe(committed);
    expect(hb.find((m) => m.to === 3n)?.commit).toBeLessThan(committed);
  });

  it('batches proposals made between two Readies into one append per follower', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    const leader = c.get(1n).node;
    c.queue = [];
    for (let i = 0; i < 50; i++) leader.propose(enc(`v${i}`));
    const rd = c.nextReady(1n);
    expect(rd.entries.length).toBe(50);
    for (const to of [2n, 3n]) {
      const apps = appsTo(rd.messages, to);
      expect(apps.length).toBe(1);
      expect(apps[0]!.entries.length).toBe(50);
    }
    // The leader may send before persisting: the appends travel in the same Ready as the entries.
    expect(rd.mustSync).toBe(true);
    c.stabilize();
    for (const n of c.nodes.values()) expect(n.appliedData()).toHaveLength(50);
  });

  it('deferCommitBroadcast: no empty append per commit; the proposer hears at once, the rest on broadcastCommit()', () => {
    const c = new TestCluster(ids, { deferCommitBroadcast: true });
    c.elect(1n);
    const leader = c.get(1n).node;
    // A leader proposal: the commit rides on no empty append until broadcastCommit().
    c.sent = [];
    c.propose(1n, 'a');
    expect(c.get(1n).appliedData()).toEqual(['a']);
    const emptyApps = c.sent.filter((m) => m.type === MessageType.App && m.entries.length === 0);
    expect(emptyApps).toHaveLength(0);
    for (const id of [2n, 3n]) expect(c.get(id).appliedData()).toEqual([]);
    expect(leader.hasPendingCommitBroadcast()).toBe(true);
    // The next append carries the commit index along.
    c.propose(1n, 'b');
    for (const id of [2n, 3n]) expect(c.get(id).appliedData()).toEqual(['a']);
    c.sent = [];
    leader.broadcastCommit();
    c.stabilize();
    expect(leader.hasPendingCommitBroadcast()).toBe(false);
    for (const id of [2n, 3n]) expect(c.get(id).appliedData()).toEqual(['a', 'b']);
    // Followers known to hold the whole log get a commit-only append and do not answer it.
    expect(c.sent.filter((m) => m.type === MessageType.App).map((m) => [m.to, m.entries.length])).toEqual([[2n, 0], [3n, 0]]);
    expect(c.sent.filter((m) => m.type === MessageType.AppResp)).toHaveLength(0);
    // A follower's (forwarded) proposal: that follower learns the commit without waiting.
    c.propose(2n, 'c');
    expect(c.get(2n).appliedData()).toEqual(['a', 'b', 'c']);
    expect(c.get(3n).appliedData()).toEqual(['a', 'b']);
    leader.broadcastCommit();
    c.stabilize();
    expect(c.get(3n).appliedData()).toEqual(['a', 'b', 'c']);
  });

  it('takeLeaderMessages: the leader hands out a deferred commit broadcast at once; a follower may not', () => {
    const c = new TestCluster(ids, { deferCommitBroadcast: true });
    c.elect(1n);
    const leader = c.get(1n).node;
    c.propose(1n, 'a');
    expect(leader.hasPendingCommitBroadcast()).toBe(true);
    leader.broadcastCommit();
    const taken = leader.takeLeaderMessages();
    const commit = leader.status().hardState.commit;
    expect(taken.map((m) => [m.type, m.to, m.commit])).toEqual([[MessageType.App, 2n, commit], [MessageType.App, 3n, commit]]);
    expect(leader.hasReady()).toBe(false); // taken, so not sent a second time with the next Ready
    c.queue.push(...taken);
    c.stabilize();
    for (const id of [2n, 3n]) expect(c.get(id).appliedData()).toEqual(['a']);
    expect(() => c.get(2n).node.takeLeaderMessages()).toThrow(/only a leader/);
  });

  it('deferCommitBroadcast: a proposer hears at once that its earlier proposal committed, while a later one is pending', () => {
    const c = new TestCluster(ids, { deferCommitBroadcast: true });
    c.elect(1n);
    const leader = c.get(1n).node;
    const last = leader.raft.raftLog.lastIndex();
    const prop = (v: string) => makeMessage({ type: MessageType.Prop, from: 2n, to: 1n, entries: [{ term: 0, index: 0, type: EntryType.Normal, data: enc(v) }] });
    leader.step(prop('x'));
    leader.step(prop('y'));
    c.processReady(1n);
    c.queue = []; // the appends are lost; only node 3's acknowledgement of 'x' arrives
    leader.step(makeMessage({ type: MessageType.AppResp, from: 3n, to: 1n, term: leader.raft.term, index: last + 1 }));
    expect(leader.raft.raftLog.committed).toBe(last + 1);
    const rd = c.nextReady(1n);
    expect(rd.messages.some((m) => m.to === 2n && m.type === MessageType.App && m.commit === last + 1)).toBe(true);
  });

  it('deferCommitBroadcast: a heartbeat also carries the commit index', () => {
    const c = new TestCluster(ids, { deferCommitBroadcast: true, heartbeatTick: 1 });
    c.elect(1n);
    c.propose(1n, 'a');
    expect(c.get(3n).appliedData()).toEqual([]);
    c.tickAll(1);
    expect(c.get(3n).appliedData()).toEqual(['a']);
  });

  it('pipelines appends in replicate state, bounded by the inflight window', () => {
    const c = new TestCluster(ids, { maxInflightMsgs: 3, maxSizePerMsgBytes: 1 });
    c.elect(1n);
    const leaderRaft = c.get(1n).raft;
    expect(leaderRaft.prs.progress.get(2n)!.state).toBe(ProgressStateType.Replicate);
    const leader = c.get(1n).node;
    for (let i = 0; i < 10; i++) leader.propose(enc(`v${i}`));
    const rd = c.nextReady(1n);
    // One entry per message (size limit) and at most 3 unacknowledged messages per follower.
    expect(appsTo(rd.messages, 2n).map((m) => m.entries.length)).toEqual([1, 1, 1]);
    expect(leaderRaft.prs.progress.get(2n)!.inflights.full()).toBe(true);
    c.stabilize(); // acknowledgements release the window; everything gets through
    for (const n of c.nodes.values()) expect(n.appliedData()).toHaveLength(10);
  });

  it('sends one append at a time to a follower in probe state', () => {
    const c = new TestCluster(ids, { maxSizePerMsgBytes: 1 });
    c.elect(1n);
    const leader = c.get(1n);
    leader.node.reportUnreachable(2n); // replicate -> probe
    expect(leader.raft.prs.progress.get(2n)!.state).toBe(ProgressStateType.Probe);
    c.cutLink(1n, 2n);
    for (let i = 0; i < 5; i++) leader.node.propose(enc(`v${i}`));
    const rd = c.nextReady(1n);
    expect(appsTo(rd.messages, 2n)).toHaveLength(1);
    expect(appsTo(rd.messages, 3n).length).toBeGreaterThan(1);
  });

  it('a single voter commits its own entries in the same Ready that carries them', () => {
    const c = new TestCluster([1n]);
    c.elect(1n);
    const node = c.get(1n).node;
    node.propose(enc('solo'));
    const rd = node.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([3]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([3]);
    expect(rd.hardState?.commit).toBe(3);
    node.advance(rd);
    expect(node.hasReady()).toBe(false);
  });

  it('drops proposals beyond the uncommitted size budget and accepts them again after commit', () => {
    const c = new TestCluster(ids, { maxUncommittedEntriesBytes: 100 });
    c.elect(1n);
    c.isolate(1n); // nothing commits
    const node = c.get(1n).node;
    node.propose(new Uint8Array(60));
    expect(() => node.propose(new Uint8Array(60))).toThrow(ErrProposalDropped);
    node.propose(new Uint8Array(40)); // fits exactly
    c.heal();
    c.stabilize();
    c.tick(1n);
    node.propose(new Uint8Array(60));
    c.stabilize();
    expect(c.get(2n).applied.filter((e) => e.data.byteLength > 0).map((e) => e.data.byteLength)).toEqual([60, 40, 60]);
  });

  it('bounds the committed entries handed out per Ready', () => {
    const storage = new MemoryStorage();
    const node = new RawNode({
      id: 1n,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      random: () => 0.5,
      maxCommittedSizePerReadyBytes: 100,
    });
    node.bootstrap([{ id: 1n }]);
    const drain = (): number[][] => {
      const batches: number[][] = [];
      while (node.hasReady()) {
        const rd = node.ready();
        storage.append(rd.entries);
        if (rd.hardState) storage.setHardState(rd.hardState);
        batches.push(rd.committedEntries.map((e) => e.index));
        node.advance(rd);
      }
      return batches;
    };
    drain();
    node.campaign();
    drain();
    for (let i = 0; i < 6; i++) node.propose(new Uint8Array(30));
    const batches = drain().filter((b) => b.length > 0);
    expect(batches.flat()).toEqual([3, 4, 5, 6, 7, 8]);
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(2);
  });

  it('ignores stale append responses and rejections', () => {
    const c = new TestCluster(ids);
    c.elect(1n);
    c.propose(1n, 'a');
    const leader = c.get(1n);
    const pr = leader.raft.prs.progress.get(2n)!;
    const before = { match: pr.match, next: pr.next, state: pr.state };
    leader.node.step(
      makeMessage({ type: MessageType.AppResp, from: 2n, to: 1n, term: leader.raft.term, index: 1, reject: true, rejectHint: 0 }),
    );
    expect({ match: pr.match, next: pr.next, state: pr.state }).toEqual(before);
    leader.node.step(makeMessage({ type: MessageType.AppResp, from: 2n, to: 1n, term: leader.raft.term, index: 2 }));
    expect(pr.match).toBe(before.match);
  });
});

describe('proposal forwarding', () => {
  it('a follower forwards proposals made before its next Ready in one message', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    const follower = c.get(2n).node;
    for (let i = 0; i < 20; i++) follower.propose(enc(`f${i}`));
    const rd = c.nextReady(2n);
    const props = rd.messages.filter((m) => m.type === MessageType.Prop);
    expect(props).toHaveLength(1);
    expect(props[0]!.to).toBe(1n);
    expect(props[0]!.entries).toHaveLength(20);
    c.stabilize();
    expect(c.get(3n).appliedData()).toEqual(Array.from({ length: 20 }, (_, i) => `f${i}`));
  });
});
