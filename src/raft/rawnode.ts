// RawNode: the application-facing wrapper around Raft. The server drives it from a single loop:
//
//   tick() on a timer, step(m) for peer messages, propose()/readIndex()/... for clients;
//   while (node.hasReady()) {
//     const rd = node.ready();
//     persist rd.snapshot, rd.entries, rd.hardState (fsync if rd.mustSync);
//     send rd.messages;               // a leader may send before persisting, a follower must not
//     apply rd.snapshot / rd.committedEntries (applyConfChange for conf change entries);
//     node.advance(rd);
//   }
//
// Each ready() must be followed by advance(rd) before the next ready().
import { encodeConfChange } from './codec.js';
import { ErrProposalDropped, ErrStepLocalMsg, invariant } from './errors.js';
import { Raft } from './raft.js';
import type { ProgressStatus, RaftConfig } from './raft.js';
import type { ConfChange, ConfState, HardState, Message, NodeId, Ready, SoftState } from './types.js';
import { ConfChangeType, EntryType, MessageType, NONE, StateType } from './types.js';
import {
  EMPTY_BYTES,
  EMPTY_HARD_STATE,
  hardStateEqual,
  isLocalMessage,
  isResponseMessage,
  makeMessage,
  softStateEqual,
} from './util.js';

export interface Peer {
  id: NodeId;
  context?: Uint8Array;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  /** Only on the leader. */
  progress?: Map<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
}

export class RawNode {
  /** The underlying state machine; exposed for tests and diagnostics, not for mutation. */
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private readyOutstanding = false;

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Initialise a brand-new cluster member: the initial membership becomes committed ConfChange
   * entries at term 1 (indexes 1..n), as etcd does. They are handed out in the first Ready for
   * persisting and applying (re-applying AddNode is a no-op). Storage must be empty.
   */
  bootstrap(peers: Peer[]): void {
    invariant(peers.length > 0, 'must provide at least one peer to bootstrap');
    invariant(this.raft.raftLog.storage.lastIndex() === 0, "can't bootstrap a nonempty storage");
    invariant(!this.readyOutstanding, 'bootstrap must precede the first ready()');
    this.prevHardState = { ...EMPTY_HARD_STATE };
    this.raft.becomeFollower(1, NONE);
    const ents = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.AddNode, nodeId: p.id, context: p.context ?? EMPTY_BYTES }),
    }));
    this.raft.raftLog.append(ents);
    // The initial membership is agreed upon out of band, so it is committed by fiat.
    this.raft.raftLog.committed = ents.length;
    for (const p of peers) {
      this.raft.applyConfChange({ type: ConfChangeType.AddNode, nodeId: p.id, context: p.context ?? EMPTY_BYTES });
    }
  }

  tick(): void {
    this.raft.tick();
  }

  /** Start an election now (instead of waiting for the election timeout). */
  campaign(): void {
    this.raft.step(makeMessage({ type: MessageType.Hup, from: this.raft.id }));
  }

  /** Propose a client payload. Throws ErrProposalDropped if there is no leader or a transfer is under way. */
  propose(data: Uint8Array): void {
    this.raft.step(
      makeMessage({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
    );
  }

  /**
   * Propose a membership change; it takes effect when the application calls applyConfChange for the
   * committed entry. Throws ErrProposalDropped if this node is leader and a change is still pending.
   */
  proposeConfChange(cc: ConfChange): void {
    const r = this.raft;
    if (r.state === StateType.Leader && r.pendingConfIndex > r.raftLog.applied) {
      throw new ErrProposalDropped('a configuration change is already pending');
    }
    r.step(
      makeMessage({
        type: MessageType.Prop,
        from: r.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }],
      }),
    );
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Feed a message received from a peer. Local-only message types throw ErrStepLocalMsg; responses
   * from nodes not in the configuration, and proposals the leader refuses, are ignored.
   */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw new ErrStepLocalMsg();
    if (isResponseMessage(m.type) && !this.raft.prs.progress.has(m.from)) return;
    try {
      this.raft.step(m);
    } catch (e) {
      // A forwarded proposal refused here is lost like any dropped message; the proposer retries.
      if (e instanceof ErrProposalDropped) return;
      throw e;
    }
  }

  /** Request a linearizable read point; the result arrives as a ReadState carrying `ctx`. */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(makeMessage({ type: MessageType.ReadIndex, context: ctx }));
  }

  /** Ask the leader to hand leadership to `to` (works on any node; followers forward it). */
  transferLeader(to: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.TransferLeader, from: to }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.Unreachable, from: id }));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(makeMessage({ type: MessageType.SnapStatus, from: id, reject: !ok }));
  }

  /** See RaftConfig.deferCommitBroadcast: true when broadcastCommit() has work to do. */
  hasPendingCommitBroadcast(): boolean {
    return this.raft.hasPendingCommitBroadcast();
  }

  /** Tells every follower that does not know it yet the current commit index. */
  broadcastCommit(): void {
    this.raft.broadcastCommit();
  }

  /** See Raft.postponeElection. */
  postponeElection(ticks: number): void {
    this.raft.postponeElection(ticks);
  }

  /**
   * The leader's outgoing messages, taken now instead of with the next Ready. Only a leader
   * may send before it persists (its appends go out before its own fsync anyway), so only
   * a leader may call this.
   */
  takeLeaderMessages(): Message[] {
    const r = this.raft;
    invariant(r.state === StateType.Leader, 'only a leader may send before it persists');
    const msgs = r.msgs;
    r.msgs = [];
    return msgs;
  }

  hasReady(): boolean {
    const r = this.raft;
    r.flushPendingAppends();
    if (!softStateEqual(r.softState(), this.prevSoftState)) return true;
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHardState) && !hardStateEqual(hs, EMPTY_HARD_STATE)) return true;
    if (r.raftLog.unstable.snapshot !== undefined) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.raftLog.unstable.entries.length > 0) return true;
    return r.raftLog.hasNextEntries();
  }

  ready(): Ready {
    invariant(!this.readyOutstanding, 'ready() called again before advance() of the previous Ready');
    const r = this.raft;
    r.flushPendingAppends();
    const entries = r.raftLog.unstableEntries();
    const rd: Ready = {
      readStates: r.readStates,
      entries,
      committedEntries: r.raftLog.nextEntries(),
      messages: r.msgs,
      mustSync: false,
    };
    const soft = r.softState();
    if (!softStateEqual(soft, this.prevSoftState)) {
      rd.softState = soft;
      this.prevSoftState = soft;
    }
    const hs = r.hardState();
    const prevHs = this.prevHardState;
    if (!hardStateEqual(hs, prevHs)) {
      rd.hardState = hs;
      this.prevHardState = hs;
    }
    if (r.raftLog.unstable.snapshot !== undefined) rd.snapshot = r.raftLog.unstable.snapshot;
    // A commit-index change alone need not be fsynced: it can be recovered from the quorum.
    rd.mustSync = entries.length > 0 || rd.snapshot !== undefined || hs.term !== prevHs.term || hs.vote !== prevHs.vote;
    r.msgs = [];
    r.readStates = [];
    this.readyOutstanding = true;
    return rd;
  }

  /** The Ready was persisted, sent and applied. */
  advance(rd: Ready): void {
    invariant(this.readyOutstanding, 'advance() without a preceding ready()');
    this.readyOutstanding = false;
    const log = this.raft.raftLog;
    let applied = 0;
    if (rd.snapshot) applied = rd.snapshot.meta.index;
    if (rd.committedEntries.length > 0) {
      applied = Math.max(applied, rd.committedEntries[rd.committedEntries.length - 1]!.index);
    }
    if (applied > log.applied) log.appliedTo(applied);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      log.stableTo(last.index, last.term);
    }
    if (rd.snapshot) log.stableSnapTo(rd.snapshot.meta.index);
    this.raft.reduceUncommittedSize(rd.committedEntries);
  }

  status(): Status {
    const r = this.raft;
    const st: Status = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
    };
    if (r.state === StateType.Leader) st.progress = r.progressStatus();
    return st;
  }
}
