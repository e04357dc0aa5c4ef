// Public API of the Raft core.
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
