// The Raft state machine: elections (with pre-vote and check-quorum), log replication with
// probe/replicate/snapshot flow control, commit by quorum, single-step membership changes,
// leadership transfer and ReadIndex. Pure and synchronous: it only consumes messages and ticks and
// produces outgoing messages plus log/state changes that RawNode turns into Ready batches.
import { decodeConfChange } from './codec.js';
import { ErrCompacted, ErrProposalDropped, ErrSnapshotTemporarilyUnavailable, ErrUnavailable, invariant } from './errors.js';
import { RaftLog } from './log.js';
import { ProgressStateType, ProgressTracker, VoteResult } from './progress.js';
import type { Progress } from './progress.js';
import { ReadOnlyQueue } from './readonly.js';
import type { Storage } from './storage.js';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, ReadState, Snapshot, SoftState } from './types.js';
import { ConfChangeType, EntryType, MessageType, NONE, StateType } from './types.js';
import { EMPTY_BYTES, bytesEqual, isEmptyHardState, makeMessage, payloadSizeBytes, voteResponseType } from './util.js';

export interface RaftLogger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
}

export interface RaftConfig {
  /** This node's id; must not be 0. */
  id: NodeId;
  /** Ticks a follower waits without hearing from a leader before campaigning (randomized up to 2x). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be smaller than electionTick. */
  heartbeatTick: number;
  storage: Storage;
  /** Last applied index when restarting (entries up to it are not handed out again). */
  applied?: number;
  /** Pre-vote phase before real elections, so partitioned nodes do not inflate terms. Default true. */
  preVote?: boolean;
  /** Leader steps down without quorum contact for an election timeout; followers honour leader lease. Default true. */
  checkQuorum?: boolean;
  /** Soft cap on the entry bytes per append message. Default 1 MiB. */
  maxSizePerMsgBytes?: number;
  /** Max append messages in flight per follower in Replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Budget for proposed-but-uncommitted payload bytes on the leader; 0 = unlimited. Default 0. */
  maxUncommittedEntriesBytes?: number;
  /** Cap on committed entry bytes per Ready. Default maxSizePerMsgBytes. */
  maxCommittedSizePerReadyBytes?: number;
  /**
   * When the leader's commit index advances, tell followers with the next append (or
   * heartbeat) instead of sending each an empty append at once, except a follower that
   * proposed a newly committed entry: it is told immediately. The application calls
   * broadcastCommit() a short while after hasPendingCommitBroadcast() turns true, so an
   * idle cluster still spreads the commit. With one request per Raft round this halves the
   * messages per write (no empty append and no reply to it). Default false (etcd-io/raft's
   * behaviour: broadcast at once).
   */
  deferCommitBroadcast?: boolean;
  /** Uniform random number in [0, 1); used for the randomized election timeout. */
  random: () => number;
  logger?: RaftLogger;
}

/**
 * Context of an empty append that only carries the commit index to a follower the leader
 * knows is up to date (deferCommitBroadcast). The follower applies it and does not answer:
 * the answer would tell the leader nothing it does not know.
 */
export const COMMIT_ONLY_CONTEXT: Uint8Array = new TextEncoder().encode('commit');

/** Context marking a vote request caused by leadership transfer: it overrides the leader lease. */
export const CAMPAIGN_TRANSFER_CONTEXT: Uint8Array = new TextEncoder().encode('CampaignTransfer');

enum CampaignType {
  PreElection = 0,
  Election = 1,
  Transfer = 2,
}

const NOOP_LOGGER: RaftLogger = { info() {}, warn() {} };

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressStateType;
  isLearner: boolean;
  recentActive: boolean;
}

type StepFn = (m: Message) => void;

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: StateType = StateType.Follower;
  readonly raftLog: RaftLog;
  readonly prs: ProgressTracker;
  /** This node is currently a learner. */
  isLearner = false;
  /** Outgoing messages, drained by RawNode.ready(). */
  msgs: Message[] = [];
  /** Completed ReadIndex requests, drained by RawNode.ready(). */
  readStates: ReadState[] = [];
  leadTransferee: NodeId = NONE;
  /** Index of the latest conf change in the log; a new one is refused until this is applied. */
  pendingConfIndex = 0;
  /** Payload bytes of entries appended by this leader and not yet handed out as committed. */
  uncommittedSizeBytes = 0;

  readonly electionTimeoutTicks: number;
  readonly heartbeatTimeoutTicks: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly maxMsgSizeBytes: number;
  readonly maxUncommittedSizeBytes: number;
  readonly deferCommitBroadcast: boolean;
  /** A follower may not know the current commit index yet (see deferCommitBroadcast). */
  private commitBroadcastPending = false;

  private readOnly = new ReadOnlyQueue();
  /** ReadIndex requests received before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Proposals were appended since the last broadcast; flushed once per Ready so they batch. */
  private appendsPending = false;
  private readonly random: () => number;
  private readonly logger: RaftLogger;
  private step_: StepFn;

  constructor(cfg: RaftConfig) {
    invariant(cfg.id !== NONE, 'cannot use none as id');
    invariant(cfg.heartbeatTick > 0, 'heartbeat tick must be greater than 0');
    invariant(cfg.electionTick > cfg.heartbeatTick, 'election tick must be greater than heartbeat tick');
    const maxInflight = cfg.maxInflightMsgs ?? 256;
    invariant(maxInflight > 0, 'max inflight messages must be greater than 0');
    this.id = cfg.id;
    this.electionTimeoutTicks = cfg.electionTick;
    this.heartbeatTimeoutTicks = cfg.heartbeatTick;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.preVote = cfg.preVote ?? true;
    this.maxMsgSizeBytes = cfg.maxSizePerMsgBytes ?? 1024 * 1024;
    this.maxUncommittedSizeBytes = cfg.maxUncommittedEntriesBytes ?? 0;
    this.deferCommitBroadcast = cfg.deferCommitBroadcast ?? false;
    this.random = cfg.random;
    this.logger = cfg.logger ?? NOOP_LOGGER;
    this.raftLog = new RaftLog(cfg.storage, cfg.maxCommittedSizePerReadyBytes ?? this.maxMsgSizeBytes);
    this.prs = new ProgressTracker(maxInflight);
    this.step_ = this.stepFollower;

    const { hardState, confState } = cfg.storage.initialState();
    this.restoreConfig(confState);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (cfg.applied !== undefined && cfg.applied > 0) this.raftLog.appliedTo(cfg.applied);
    this.becomeFollower(this.term, NONE);
    this.logger.info('raft node started', {
      id: this.id.toString(16),
      term: this.term,
      commit: this.raftLog.committed,
      applied: this.raftLog.applied,
      lastIndex: this.raftLog.lastIndex(),
      voters: confState.voters.map((v) => v.toString(16)),
    });
  }

  // ---------------------------------------------------------------- state accessors

  softState(): SoftState {
    return { lead: this.lead, state: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** A voter of the current configuration (learners and removed nodes never campaign). */
  promotable(): boolean {
    return this.prs.isVoter(this.id);
  }

  progressStatus(): Map<NodeId, ProgressStatus> {
    const out = new Map<NodeId, ProgressStatus>();
    for (const [id, pr] of this.prs.progress) {
      out.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        isLearner: pr.isLearner,
        recentActive: pr.recentActive,
      });
    }
    return out;
  }

  private loadState(hs: HardState): void {
    invariant(
      hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      () => `hard state commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** Rebuild the membership from a ConfState (startup or snapshot restore). */
  private restoreConfig(cs: ConfState): void {
    this.prs.clear();
    const next = this.raftLog.lastIndex() + 1;
    for (const id of cs.voters) this.prs.add(id, next, false);
    for (const id of cs.learners) {
      invariant(!this.prs.progress.has(id), () => `node ${id} is both voter and learner`);
      this.prs.add(id, next, true);
    }
    this.isLearner = this.prs.progress.get(this.id)?.isLearner ?? false;
  }

  // ---------------------------------------------------------------- sending

  /**
   * Queue a message. `from` defaults to us (kept when forwarding on someone's behalf); the term is
   * stamped here except for votes (which carry the campaign term) and for forwarded proposals and
   * read requests (term 0 makes the leader treat them as local).
   */
  private send(fields: Partial<Message> & { type: MessageType; to: NodeId }): void {
    const m = makeMessage(fields);
    if (m.from === NONE) m.from = this.id;
    const t = m.type;
    if (t === MessageType.Vote || t === MessageType.VoteResp || t === MessageType.PreVote || t === MessageType.PreVoteResp) {
      invariant(m.term !== 0, () => `term should be set when sending ${MessageType[t]}`);
    } else {
      invariant(m.term === 0, () => `term should not be set when sending ${MessageType[t]} (was ${m.term})`);
      if (t !== MessageType.Prop && t !== MessageType.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /**
   * Send an append (or a snapshot when the needed entries are compacted) to `to`.
   * With sendIfEmpty, an empty append is sent too (it carries the commit index). Returns whether
   * a message was sent.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      ents = this.raftLog.entries(pr.next, this.maxMsgSizeBytes);
    } catch (e) {
      if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return this.maybeSendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({
      to,
      type: MessageType.App,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.raftLog.committed,
    });
    if (this.raftLog.committed > pr.sentCommit) pr.sentCommit = this.raftLog.committed;
    if (ents.length > 0) {
      const last = ents[ents.length - 1]!.index;
      switch (pr.state) {
        case ProgressStateType.Replicate:
          pr.optimisticUpdate(last);
          pr.inflights.add(last);
          break;
        case ProgressStateType.Probe:
          pr.probeSent = true;
          break;
        case ProgressStateType.Snapshot:
          invariant(false, () => `sending append to ${to} in snapshot state`);
      }
    } else if (pr.state === ProgressStateType.Probe) {
      pr.probeSent = true;
    }
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) {
      // A snapshot is expensive; wait until the peer shows signs of life.
      return false;
    }
    let snap: Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof ErrSnapshotTemporarilyUnavailable) return false;
      throw e;
    }
    invariant(snap.meta.index !== 0, 'need non-empty snapshot');
    pr.becomeSnapshot(snap.meta.index);
    this.logger.info('sending snapshot', { to: to.toString(16), index: snap.meta.index, term: snap.meta.term });
    this.send({ to, type: MessageType.Snap, snapshot: snap });
    return true;
  }

  /** Send an append, then keep pipelining more while the peer is replicating and the window allows. */
  private sendAppend(to: NodeId): void {
    if (!this.maybeSendAppend(to, true)) return;
    this.pipelineAppends(to);
  }

  private pipelineAppends(to: NodeId): void {
    const pr = this.prs.progress.get(to);
    while (pr && pr.state === ProgressStateType.Replicate && this.maybeSendAppend(to, false)) {
      // keep filling the inflight window
    }
  }

  private bcastAppend(): void {
    for (const id of this.prs.progress.keys()) {
      if (id !== this.id) this.sendAppend(id);
    }
  }

  /** The commit index advanced: tell followers now, or (deferCommitBroadcast) when due. */
  private announceCommit(previousCommit: number): void {
    const confChangeCommitted = this.pendingConfIndex > previousCommit && this.pendingConfIndex <= this.raftLog.committed;
    // A membership change is announced at once: a member it removes learns of it only from
    // us, and only while it is still in our progress map (until we apply the change).
    if (!this.deferCommitBroadcast || confChangeCommitted) {
      this.bcastAppend();
      return;
    }
    const committed = this.raftLog.committed;
    let behind = false;
    for (const [id, pr] of this.prs.progress) {
      if (id === this.id) continue;
      if (pr.proposedFirst !== 0 && pr.proposedFirst <= committed) {
        this.sendCommit(id); // it waits for this commit to answer its client
        this.noteProposerTold(pr, committed);
      } else if (this.maybeSendAppend(id, false)) {
        this.pipelineAppends(id);
      }
      if (pr.sentCommit < committed) behind = true;
    }
    if (behind) this.commitBroadcastPending = true;
  }

  /** Followers may not know the current commit index yet: call broadcastCommit() soon. */
  hasPendingCommitBroadcast(): boolean {
    return this.commitBroadcastPending && this.state === StateType.Leader;
  }

  /** Sends an (empty, if need be) append to every follower not yet told the commit index. */
  broadcastCommit(): void {
    if (!this.commitBroadcastPending) return;
    this.commitBroadcastPending = false;
    if (this.state !== StateType.Leader) return;
    const committed = this.raftLog.committed;
    for (const [id, pr] of this.prs.progress) {
      if (id === this.id || pr.sentCommit >= committed) continue;
      this.sendCommit(id);
      if (pr.proposedFirst !== 0 && pr.proposedFirst <= committed) this.noteProposerTold(pr, committed);
    }
  }

  /** Once a proposer was sent the commit of its proposals, only later ones (above it) wait. */
  private noteProposerTold(pr: Progress, committed: number): void {
    if (pr.sentCommit < pr.proposedFirst) return; // not sent (paused): try again next time
    pr.proposedFirst = pr.proposedIndex > committed ? committed + 1 : 0;
  }

  /**
   * Tells `to` the commit index: with a commit-only append (no reply expected) when the
   * follower is known to hold our whole log, else with a regular append.
   */
  private sendCommit(to: NodeId): void {
    const pr = this.prs.progress.get(to);
    if (!pr) return;
    const last = this.raftLog.lastIndex();
    if (pr.state !== ProgressStateType.Replicate || pr.match !== last || pr.next !== last + 1) {
      this.sendAppend(to);
      return;
    }
    let logTerm: number;
    try {
      logTerm = this.raftLog.term(last);
    } catch {
      this.sendAppend(to);
      return;
    }
    const committed = this.raftLog.committed;
    this.send({ to, type: MessageType.App, index: last, logTerm, entries: [], commit: committed, context: COMMIT_ONLY_CONTEXT });
    if (committed > pr.sentCommit) pr.sentCommit = committed;
  }

  /** Send the proposals appended since the last flush: one batch of appends per follower. */
  flushPendingAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.state !== StateType.Leader) return;
    for (const id of this.prs.progress.keys()) {
      if (id === this.id) continue;
      if (this.maybeSendAppend(id, false)) this.pipelineAppends(id);
    }
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.prs.progress.get(to)!;
    // Never tell a follower to commit beyond what it is known to hold: its log might still differ.
    const commit = Math.min(pr.match, this.raftLog.committed);
    if (commit > pr.sentCommit) pr.sentCommit = commit;
    this.send({ to, type: MessageType.Heartbeat, commit, ...(ctx !== undefined ? { context: ctx } : {}) });
  }

  private bcastHeartbeat(ctx: Uint8Array | undefined): void {
    for (const id of this.prs.progress.keys()) {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ to, type: MessageType.TimeoutNow });
  }

  // ---------------------------------------------------------------- commit and append

  /** Advance commit to the quorum-replicated index, if that entry is from the current term. */
  private maybeCommit(): boolean {
    const advanced = this.raftLog.maybeCommit(this.prs.committedIndex(), this.term);
    if (advanced) this.releasePendingReadIndexMessages();
    return advanced;
  }

  /** Stamp and append entries as leader; returns false if the uncommitted budget is exhausted. */
  private appendEntry(es: readonly Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    const stamped = es.map((e, i) => ({ term: this.term, index: li + 1 + i, type: e.type, data: e.data }));
    if (!this.increaseUncommittedSize(stamped)) {
      this.logger.warn('appending new entries would exceed the uncommitted entry size limit; dropping proposal', {
        id: this.id.toString(16),
      });
      return false;
    }
    const newLast = this.raftLog.append(stamped);
    const self = this.prs.progress.get(this.id);
    invariant(self !== undefined, 'leader must be in its own configuration');
    // The leader counts its own (possibly not yet persisted) entries: RawNode's contract persists
    // a Ready's entries before applying its committed entries or handing out the next Ready.
    self.maybeUpdate(newLast);
    this.maybeCommit();
    return true;
  }

  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    const size = payloadSizeBytes(ents);
    if (
      this.maxUncommittedSizeBytes > 0 &&
      this.uncommittedSizeBytes > 0 &&
      size > 0 &&
      this.uncommittedSizeBytes + size > this.maxUncommittedSizeBytes
    ) {
      return false;
    }
    this.uncommittedSizeBytes += size;
    return true;
  }

  /** Called when committed entries are handed to the application. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.uncommittedSizeBytes === 0) return;
    const size = payloadSizeBytes(ents);
    this.uncommittedSizeBytes = size > this.uncommittedSizeBytes ? 0 : this.uncommittedSizeBytes - size;
  }

  // ---------------------------------------------------------------- role transitions

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.prs.resetVotes();
    const lastIndex = this.raftLog.lastIndex();
    for (const [id, pr] of this.prs.progress) {
      pr.resetForNewTerm(lastIndex + 1);
      if (id === this.id) {
        pr.match = lastIndex;
        pr.recentActive = true;
      }
    }
    this.pendingConfIndex = 0;
    this.uncommittedSizeBytes = 0;
    this.readOnly = new ReadOnlyQueue();
    this.pendingReadIndexMessages = [];
    this.appendsPending = false;
    this.commitBroadcastPending = false;
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.random();
    invariant(r >= 0 && r < 1, () => `random() must return a value in [0, 1), got ${r}`);
    this.randomizedElectionTimeout = this.electionTimeoutTicks + Math.floor(r * this.electionTimeoutTicks);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.step_ = this.stepFollower;
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  private becomeCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.step_ = this.stepCandidate;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info('became candidate', { id: this.id.toString(16), term: this.term });
  }

  private becomePreCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    // Pre-vote changes neither term nor vote: a partitioned node keeps its term.
    this.step_ = this.stepCandidate;
    this.prs.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
  }

  private becomeLeader(): void {
    invariant(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.step_ = this.stepLeader;
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    this.prs.progress.get(this.id)!.becomeReplicate();
    // Conservatively assume any conf change in the log is still pending.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op lets this leader commit (and thus learn the commit index of) earlier terms' entries.
    const ok = this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }]);
    invariant(ok, 'empty entry was dropped');
    this.logger.info('became leader', { id: this.id.toString(16), term: this.term });
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  /**
   * Restarts the election clock (on a leader: the quorum-check clock) `ticks` ticks in the
   * past's favour: the next election (or step-down for lack of quorum) comes that much later
   * than after a message from the leader. For the application, after its thread was busy
   * for that long, e.g. applying an entry every member applies at about the same time: the
   * others' silence meanwhile says nothing about whether they are alive. While the clock is
   * below zero this member also keeps rejecting votes as one that heard from a leader.
   */
  postponeElection(ticks: number): void {
    invariant(Number.isInteger(ticks) && ticks >= 0, 'postponeElection: ticks must be a non-negative integer');
    this.electionElapsed = Math.min(this.electionElapsed, -ticks);
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(makeMessage({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(makeMessage({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeoutTicks) {
      this.heartbeatElapsed = 0;
      this.step(makeMessage({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---------------------------------------------------------------- campaigning

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.logger.warn('not promotable; cannot campaign', { id: this.id.toString(16) });
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      // The outcome of the election could depend on a membership we have not applied yet.
      this.logger.warn('cannot campaign while committed conf changes are unapplied', { id: this.id.toString(16) });
      return;
    }
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    const hi = this.raftLog.committed + 1;
    if (lo >= hi) return false;
    const ents = this.raftLog.slice(lo, hi);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  private campaign(t: CampaignType): void {
    let voteType: MessageType;
    let term: number;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      term = this.term + 1; // the term we would campaign in, without adopting it yet
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // Single voter: we win immediately.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else {
        this.becomeLeader();
        this.bcastAppend();
      }
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.prs.voterIds()) {
      if (id === this.id) continue;
      this.send({
        to: id,
        type: voteType,
        term,
        index: lastIndex,
        logTerm: lastTerm,
        ...(t === CampaignType.Transfer ? { context: CAMPAIGN_TRANSFER_CONTEXT } : {}),
      });
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    this.prs.recordVote(id, granted);
    return this.prs.voteResult();
  }

  // ---------------------------------------------------------------- step

  /** Process one message (local or from a peer). May throw ErrProposalDropped for proposals. */
  step(m: Message): void {
    if (m.term === 0) {
      // local message (or a forwarded proposal / read request)
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER_CONTEXT);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeoutTicks;
        if (!force && inLease) {
          // We heard from a live leader within the minimum election timeout: the sender is probably
          // partitioned or removed; do not let it disrupt the cluster (neither bump term nor vote).
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; we adopt it only once we win the pre-vote.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader (e.g. on the minority side of a healed partition) learns our higher term
        // from this response and steps down; otherwise it might never hear it, since with
        // pre-vote/check-quorum we do not campaign at higher terms while it looks alive to others.
        this.send({ to: m.from, type: MessageType.AppResp });
      } else if (m.type === MessageType.PreVote) {
        this.send({ to: m.from, term: this.term, type: MessageType.PreVoteResp, reject: true });
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        this.step_(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    const respType = voteResponseType(m.type);
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      // A granted response carries the requested term so the candidate can count it.
      this.send({ to: m.from, term: m.term, type: respType });
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ to: m.from, term: this.term, type: respType, reject: true });
    }
  }

  private stepLeader = (m: Message): void => {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat(this.readOnly.lastPendingRequestCtx());
        return;
      case MessageType.CheckQuorum:
        if (!this.prs.quorumActive(this.id)) {
          this.logger.warn('stepped down to follower since quorum is not active', { id: this.id.toString(16), term: this.term });
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.prs.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.Prop:
        this.leaderPropose(m);
        return;
      case MessageType.ReadIndex:
        this.leaderReadIndex(m);
        return;
      default:
        break;
    }

    const pr = this.prs.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      case MessageType.SnapStatus:
        if (pr.state !== ProgressStateType.Snapshot) return;
        if (m.reject) pr.pendingSnapshot = 0; // failed: do not assume it was installed
        pr.becomeProbe();
        // Wait for the next heartbeat response before probing again.
        pr.probeSent = true;
        return;
      case MessageType.Unreachable:
        // Optimistic streaming probably lost messages; fall back to probing.
        if (pr.state === ProgressStateType.Replicate) pr.becomeProbe();
        return;
      case MessageType.TransferLeader:
        this.handleTransferLeader(m, pr);
        return;
      default:
        return;
    }
  };

  private leaderPropose(m: Message): void {
    invariant(m.entries.length > 0, 'stepped empty proposal');
    if (!this.prs.progress.has(this.id)) throw new ErrProposalDropped('leader was removed from the configuration');
    if (this.leadTransferee !== NONE) throw new ErrProposalDropped('leadership transfer in progress');
    let entries = m.entries;
    let confIndex = 0;
    for (let i = 0; i < entries.length; i++) {
      if (entries[i]!.type !== EntryType.ConfChange) continue;
      if (this.pendingConfIndex > this.raftLog.applied || confIndex !== 0) {
        // Only one membership change at a time: neutralise this one (keeps the rest of the batch).
        this.logger.warn('ignoring conf change while another is pending', {
          pendingConfIndex: this.pendingConfIndex,
          applied: this.raftLog.applied,
        });
        if (entries === m.entries) entries = [...m.entries];
        entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES };
      } else {
        confIndex = this.raftLog.lastIndex() + i + 1;
      }
    }
    if (!this.appendEntry(entries)) throw new ErrProposalDropped('uncommitted entry size limit exceeded');
    if (confIndex !== 0) this.pendingConfIndex = confIndex;
    this.appendsPending = true;
    if (m.from !== this.id && m.from !== NONE) {
      const proposer = this.prs.progress.get(m.from);
      if (proposer) {
        const last = this.raftLog.lastIndex();
        if (proposer.proposedFirst === 0) proposer.proposedFirst = last - entries.length + 1;
        proposer.proposedIndex = last;
      }
    }
  }

  private leaderReadIndex(m: Message): void {
    if (this.prs.isSingleton()) {
      // Nobody else can have been elected: our commit index is current.
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    if (!this.committedEntryInCurrentTerm()) {
      // Until our no-op commits, our commit index may lag what earlier leaders committed.
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.startReadIndexRound(m);
  }

  private startReadIndexRound(m: Message): void {
    const ctx = m.context ?? EMPTY_BYTES;
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, ctx);
    this.bcastHeartbeat(ctx);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.startReadIndexRound(m);
  }

  private respondToReadIndex(req: Message, readIndex: number): void {
    const ctx = req.context ?? EMPTY_BYTES;
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: ctx });
      return;
    }
    this.send({ to: req.from, type: MessageType.ReadIndexResp, index: readIndex, context: ctx });
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbeIndex = m.rejectHint;
      if (m.logTerm > 0) {
        // Skip every entry of ours whose term is above the follower's term at the hint.
        nextProbeIndex = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm);
      }
      if (pr.maybeDecrTo(m.index, nextProbeIndex)) {
        if (pr.state === ProgressStateType.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === ProgressStateType.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressStateType.Snapshot && pr.match + 1 >= this.raftLog.firstIndex()) {
      // The follower can now be served from the log, whichever snapshot got it there.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressStateType.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    const previousCommit = this.raftLog.committed;
    if (this.maybeCommit()) {
      this.announceCommit(previousCommit);
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    this.pipelineAppends(m.from);
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.logger.info('sent TimeoutNow after log caught up', { to: m.from.toString(16) });
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    // Unstick a full window whose acknowledgements may have been lost.
    if (pr.state === ProgressStateType.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from);
    if (m.context === undefined || m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks || this.prs.ackResult(acks) !== VoteResult.Won) return;
    for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
  }

  private handleTransferLeader(m: Message, pr: Progress): void {
    if (pr.isLearner) {
      this.logger.warn('ignored transferring leadership to a learner', { to: m.from.toString(16) });
      return;
    }
    const transferee = m.from;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return; // same transfer already under way
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return; // already leader
    // The transfer must finish within one election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private stepCandidate = (m: Message): void => {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw new ErrProposalDropped('no leader (campaigning)');
      case MessageType.App:
        this.becomeFollower(m.term, m.from); // a leader exists in our term
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        const result = this.poll(m.from, !m.reject);
        if (result === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign(CampaignType.Election);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          // Our term may be stale in pre-vote; followers will correct it via messages.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return; // TimeoutNow and others are meaningless for a candidate
    }
  };

  private stepFollower = (m: Message): void => {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) throw new ErrProposalDropped('no leader');
        this.forwardProposal(m);
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.TimeoutNow:
        this.logger.info('received TimeoutNow; campaigning to take over leadership', { id: this.id.toString(16), term: this.term });
        this.hup(CampaignType.Transfer);
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) return; // dropped; the caller times out and retries
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY_BYTES });
        return;
      default:
        return;
    }
  };

  /**
   * Forward a proposal to the leader. Consecutive proposals made before the next Ready travel in one
   * message, mirroring the leader-side batching.
   */
  private forwardProposal(m: Message): void {
    const last = this.msgs[this.msgs.length - 1];
    if (last && last.type === MessageType.Prop && last.to === this.lead && last.from === (m.from === NONE ? this.id : m.from)) {
      last.entries = last.entries.concat(m.entries);
      return;
    }
    this.send({ ...m, to: this.lead, term: 0 });
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index is already known to match.
      this.send({ to: m.from, type: MessageType.AppResp, index: this.raftLog.committed });
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      if (m.entries.length === 0 && bytesEqual(m.context, COMMIT_ONLY_CONTEXT)) return; // the leader knows our match
      this.send({ to: m.from, type: MessageType.AppResp, index: lastNew });
      return;
    }
    // Mismatch: suggest the leader retry from the last index where our term is <= its term there.
    const hintIndex = this.raftLog.findConflictByTerm(Math.min(m.index, this.raftLog.lastIndex()), m.logTerm);
    const hintTerm = this.raftLog.termOrZero(hintIndex);
    this.send({
      to: m.from,
      type: MessageType.AppResp,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    });
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send({ to: m.from, type: MessageType.HeartbeatResp, ...(m.context !== undefined ? { context: m.context } : {}) });
  }

  private handleSnapshot(m: Message): void {
    invariant(m.snapshot !== undefined, 'snapshot message without snapshot');
    const s = m.snapshot;
    if (this.restore(s)) {
      this.logger.info('restored snapshot', { id: this.id.toString(16), index: s.meta.index, term: s.meta.term });
      this.send({ to: m.from, type: MessageType.AppResp, index: this.raftLog.lastIndex() });
    } else {
      this.send({ to: m.from, type: MessageType.AppResp, index: this.raftLog.committed });
    }
  }

  /** Install a snapshot from the leader. Returns false if it was ignored (stale or already covered). */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only followers install snapshots; step() turns recipients into followers first, so reaching
      // here means something is off. Step down into the next term rather than corrupting state.
      this.logger.warn('non-follower attempted to restore snapshot', { id: this.id.toString(16), state: this.state });
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.meta.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) {
      this.logger.warn('ignoring snapshot whose configuration does not contain this node', {
        id: this.id.toString(16),
        index: s.meta.index,
      });
      return false;
    }
    if (this.raftLog.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold the entry the snapshot ends at: just fast-forward the commit index.
      this.raftLog.commitTo(s.meta.index);
      return false;
    }
    this.raftLog.restore(s);
    this.restoreConfig(cs);
    const self = this.prs.progress.get(this.id);
    if (self) self.match = this.raftLog.lastIndex();
    return true;
  }

  // ---------------------------------------------------------------- membership

  /**
   * Apply a committed ConfChange (single-step: one voter or learner added/removed/promoted).
   * Returns the resulting configuration.
   */
  applyConfChange(cc: ConfChange): ConfState {
    switch (cc.type) {
      case ConfChangeType.AddNode:
        this.addNode(cc.nodeId, false);
        break;
      case ConfChangeType.AddLearnerNode:
        this.addNode(cc.nodeId, true);
        break;
      case ConfChangeType.RemoveNode:
        this.prs.remove(cc.nodeId);
        break;
      case ConfChangeType.UpdateNode:
        break; // membership unchanged; the payload is for the application
    }
    this.isLearner = this.prs.progress.get(this.id)?.isLearner ?? false;
    this.afterConfChange();
    return this.prs.confState();
  }

  /** Apply a conf change given as an encoded entry payload. */
  applyConfChangeEntry(e: Entry): ConfState {
    invariant(e.type === EntryType.ConfChange, 'not a conf change entry');
    return this.applyConfChange(decodeConfChange(e.data));
  }

  private addNode(id: NodeId, asLearner: boolean): void {
    const pr = this.prs.progress.get(id);
    if (!pr) {
      const added = this.prs.add(id, this.raftLog.lastIndex() + 1, asLearner);
      // Count a new node as active so check-quorum does not immediately fail and snapshots can flow.
      added.recentActive = true;
      return;
    }
    if (asLearner && !pr.isLearner) {
      this.logger.warn('ignored demoting a voter to learner (not supported in single-step changes)', {
        id: id.toString(16),
      });
      return;
    }
    if (!asLearner && pr.isLearner) pr.isLearner = false; // promotion
  }

  private afterConfChange(): void {
    if (this.state !== StateType.Leader) return;
    if (!this.prs.isVoter(this.id)) {
      // We were removed: keep no authority over a cluster we are not part of.
      this.logger.info('leader removed from configuration; stepping down', { id: this.id.toString(16) });
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.prs.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    // The quorum may have changed (e.g. a voter was removed), which can advance commit.
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      for (const id of this.prs.progress.keys()) {
        if (id !== this.id && this.maybeSendAppend(id, false)) this.pipelineAppends(id);
      }
    }
  }
}
