// Shared Raft data types. The Raft core (this folder) is pure and synchronous;
// the WAL, the peer transport and the server's ready loop all speak these types.
// Node IDs are 64-bit (etcd member IDs exceed 2^53), so they are bigint.
// Log indexes and terms stay below 2^53 in any realistic lifetime, so they are numbers.

export type NodeId = bigint;

/** 0n means "nobody" (no leader, no vote). */
export const NONE: NodeId = 0n;

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Opaque payload: an encoded client request, or an encoded ConfChange. Empty for the leader's no-op. */
  data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  /** The application state machine image (opaque to Raft). */
  data: Uint8Array;
}

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  UpdateNode = 2,
  AddLearnerNode = 3,
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to Raft: the server stores the encoded member (name, peer URLs) here. */
  context: Uint8Array;
}

export enum MessageType {
  Hup = 0, // local: start an election
  Beat = 1, // local: leader should send heartbeats
  Prop = 2, // proposal (local, or forwarded from a follower)
  App = 3, // append entries
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  Snap = 7, // install snapshot
  Heartbeat = 8,
  HeartbeatResp = 9,
  Unreachable = 10, // local: transport reports a peer unreachable
  SnapStatus = 11, // local: transport reports snapshot send result
  CheckQuorum = 12, // local
  TransferLeader = 13,
  TimeoutNow = 14,
  ReadIndex = 15,
  ReadIndexResp = 16,
  PreVote = 17,
  PreVoteResp = 18,
}

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot?: Snapshot;
  /** ReadIndex request context, heartbeat context, campaign-transfer marker. */
  context?: Uint8Array;
}

export enum StateType {
  Follower = 0,
  Candidate = 1,
  Leader = 2,
  PreCandidate = 3,
}

export interface SoftState {
  lead: NodeId;
  state: StateType;
}

export interface ReadState {
  /** Commit index at the time the read was requested; safe to serve once applied >= index. */
  index: number;
  requestCtx: Uint8Array;
}

/**
 * A batch of work the Raft core hands to the server. Contract (as in etcd-io/raft):
 * 1. persist hardState + entries (+ snapshot) durably (WAL fsync) when mustSync,
 * 2. send messages (a leader may send before its own fsync; a follower must persist first),
 * 3. apply committedEntries in order,
 * 4. call advance(ready).
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  mustSync: boolean;
}
