// Leader-side bookkeeping of every peer's replication progress, the membership, and vote tallies.
import { invariant } from './errors.js';
import type { ConfState, NodeId } from './types.js';

export enum ProgressStateType {
  /** Unknown follower log position: send one append at a time and wait for the answer. */
  Probe = 0,
  /** Follower is in sync: stream appends optimistically, bounded by the inflight window. */
  Replicate = 1,
  /** Follower needs a snapshot; appends pause until it is installed or the send fails. */
  Snapshot = 2,
}

/**
 * Bounded window of in-flight append messages to one follower, remembered by the last index
 * each carries. A ring buffer so that adding and freeing are O(1) amortized.
 */
export class Inflights {
  private start = 0;
  private count = 0;
  private readonly buffer: number[];

  constructor(readonly capacity: number) {
    invariant(capacity > 0, 'inflight capacity must be positive');
    this.buffer = new Array<number>(capacity).fill(0);
  }

  add(lastIndex: number): void {
    invariant(!this.full(), 'cannot add into a full inflights window');
    const pos = (this.start + this.count) % this.capacity;
    this.buffer[pos] = lastIndex;
    this.count++;
  }

  /** Release every message whose last index is <= `index` (the follower acknowledged them). */
  freeLE(index: number): void {
    while (this.count > 0 && this.buffer[this.start]! <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  size(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

export class Progress {
  /** Highest index known to be replicated on the peer. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressStateType = ProgressStateType.Probe;
  /** Index of the snapshot in flight while in Snapshot state. */
  pendingSnapshot = 0;
  /** Heard from the peer since the last check-quorum round. */
  recentActive = false;
  /** In Probe state: an append was sent and we wait for an answer (or a heartbeat response). */
  probeSent = false;
  readonly inflights: Inflights;
  isLearner: boolean;
  /** Highest commit index told to the peer (in an append or a heartbeat) this term. */
  sentCommit = 0;
  /**
   * Entries the peer forwarded to us as proposals this term: it waits to apply them before
   * answering its clients, so it is told their commit without delay. `proposedFirst` is the
   * lowest such index whose commit the peer was not told yet (0: none), `proposedIndex` the
   * highest.
   */
  proposedFirst = 0;
  proposedIndex = 0;

  constructor(next: number, maxInflightMsgs: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressStateType): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** Forget everything learned about the peer (new term): probe from `next`, nothing matched. */
  resetForNewTerm(next: number): void {
    this.resetState(ProgressStateType.Probe);
    this.match = 0;
    this.next = next;
    this.recentActive = false;
    this.sentCommit = 0;
    this.proposedFirst = 0;
    this.proposedIndex = 0;
  }

  becomeProbe(): void {
    if (this.state === ProgressStateType.Snapshot) {
      // The snapshot may have been installed: continue after it rather than re-probing from match.
      const pending = this.pendingSnapshot;
      this.resetState(ProgressStateType.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressStateType.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressStateType.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressStateType.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** The peer acknowledged index n. Returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Entries up to n were sent (not yet acknowledged). */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * The peer rejected an append whose previous index was `rejected`; `matchHint` is our best guess of
   * the last index both logs agree on. Returns false if the rejection is stale and was ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressStateType.Replicate) {
      // Rejections at or below match are out of date (reordered messages).
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In Probe state only the rejection of the latest probe (next-1) is meaningful.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressStateType.Probe:
        return this.probeSent;
      case ProgressStateType.Replicate:
        return this.inflights.full();
      case ProgressStateType.Snapshot:
        return true;
    }
  }
}

export enum VoteResult {
  Pending = 0,
  Won = 1,
  Lost = 2,
}

/**
 * Membership (single-step changes only: voters + learners, no joint consensus) and per-peer Progress.
 */
export class ProgressTracker {
  readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflightMsgs: number) {}

  voterIds(): NodeId[] {
    const ids: NodeId[] = [];
    for (const [id, pr] of this.progress) if (!pr.isLearner) ids.push(id);
    return ids;
  }

  isVoter(id: NodeId): boolean {
    const pr = this.progress.get(id);
    return pr !== undefined && !pr.isLearner;
  }

  voterCount(): number {
    let n = 0;
    for (const pr of this.progress.values()) if (!pr.isLearner) n++;
    return n;
  }

  quorum(): number {
    return Math.floor(this.voterCount() / 2) + 1;
  }

  isSingleton(): boolean {
    return this.voterCount() === 1;
  }

  add(id: NodeId, next: number, isLearner: boolean): Progress {
    invariant(!this.progress.has(id), () => `progress for ${id} already exists`);
    const pr = new Progress(next, this.maxInflightMsgs, isLearner);
    this.progress.set(id, pr);
    return pr;
  }

  remove(id: NodeId): void {
    this.progress.delete(id);
    this.votes.delete(id);
  }

  clear(): void {
    this.progress.clear();
    this.votes.clear();
  }

  confState(): ConfState {
    const voters: NodeId[] = [];
    const learners: NodeId[] = [];
    for (const [id, pr] of this.progress) (pr.isLearner ? learners : voters).push(id);
    const byId = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
    return { voters: voters.sort(byId), learners: learners.sort(byId) };
  }

  /** Largest index replicated on a quorum of voters (0 when there are no voters). */
  committedIndex(): number {
    // Runs on every append response: no allocation (V8's Array#sort copies the array) and
    // an insertion sort, as there are a handful of voters.
    const matches = this.matchScratch;
    let n = 0;
    for (const pr of this.progress.values()) {
      if (pr.isLearner) continue;
      const m = pr.match;
      let i = n++;
      while (i > 0 && matches[i - 1]! < m) {
        matches[i] = matches[i - 1]!;
        i--;
      }
      matches[i] = m;
    }
    if (n === 0) return 0;
    return matches[Math.floor(n / 2)]!; // sorted descending: the quorum-th largest
  }

  private readonly matchScratch: number[] = [];

  /** Whether a quorum of voters (counting `self` always) was recently active. */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      if (id === self || pr.recentActive) active++;
    }
    return active >= this.quorum();
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tally(): { granted: number; rejected: number } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected };
  }

  voteResult(): VoteResult {
    return resultOf(this.voterIds(), (id) => this.votes.get(id));
  }

  /** Vote-style result for an arbitrary set of acknowledgements (used by ReadIndex). */
  ackResult(acks: ReadonlySet<NodeId>): VoteResult {
    return resultOf(this.voterIds(), (id) => (acks.has(id) ? true : undefined));
  }
}

function resultOf(voters: NodeId[], voteOf: (id: NodeId) => boolean | undefined): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  const quorum = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = voteOf(id);
    if (v === true) granted++;
    else if (v === undefined) missing++;
  }
  if (granted >= quorum) return VoteResult.Won;
  if (granted + missing >= quorum) return VoteResult.Pending;
  return VoteResult.Lost;
}
