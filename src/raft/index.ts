// Public API of the Raft core (pure, synchronous, etcd-io/raft style).
//
// Server contract, per loop iteration:
//   node.tick() every heartbeat interval / electionTick unit; node.step(m) for every peer message
//   (ErrStepLocalMsg = bug in the caller); node.propose()/proposeConfChange() throw ErrProposalDropped.
//   if (node.hasReady()) {
//     const rd = node.ready();                      // exactly one outstanding Ready at a time
//     WAL: save rd.snapshot, rd.entries, rd.hardState (fsync if rd.mustSync), then
//          storage.applySnapshot(rd.snapshot) / storage.append(rd.entries) / storage.setHardState(rd.hardState)
//     send rd.messages (after the fsync; only a leader may send before it). After sending a Snap,
//          call node.reportSnapshot(to, ok); on a failed send, node.reportUnreachable(to).
//     apply rd.snapshot, then rd.committedEntries in order; for EntryType.ConfChange entries call
//          node.applyConfChange(decodeConfChange(e.data)) (a member that applied its own removal stops).
//     serve rd.readStates once applied >= readState.index (ReadIndex contexts must be unique).
//     node.advance(rd);
//   }
// Proposals made between two ready() calls are sent as one append per follower, so call ready()
// once per batch rather than after every proposal (hasReady() also flushes the batch).
// Restart: storage.applySnapshot(snap); storage.setHardState(hs); storage.append(walEntries); then
// new RawNode({ ..., applied: snap.meta.index }) -- conf changes after the snapshot are re-applied.
// Snapshots: the leader sends storage.snapshot(); create them with createSnapshot(applied, confState,
// image) and compact only up to the snapshot index, otherwise a lagging follower cannot catch up.
export * from './types.js';
export * from './errors.js';
export { MemoryStorage } from './storage.js';
export type { Storage, InitialState } from './storage.js';
export { RaftLog, Unstable } from './log.js';
export { Raft, CAMPAIGN_TRANSFER_CONTEXT } from './raft.js';
export type { RaftConfig, RaftLogger, ProgressStatus } from './raft.js';
export { RawNode } from './rawnode.js';
export type { Peer, Status } from './rawnode.js';
export { ProgressStateType, Progress, ProgressTracker, Inflights } from './progress.js';
export * from './codec.js';
export { entrySizeBytes, payloadSizeBytes, isEmptyHardState, makeMessage, isLocalMessage, isResponseMessage } from './util.js';
