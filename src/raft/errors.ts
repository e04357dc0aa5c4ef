// Error classes thrown by the Raft core. Callers distinguish them with `instanceof`.

/** Requested index is older than the storage's first entry (it was compacted into a snapshot). */
export class ErrCompacted extends Error {
  constructor(message = 'requested index is unavailable due to compaction') {
    super(message);
    this.name = 'ErrCompacted';
  }
}

/** Requested index is newer than anything the storage holds. */
export class ErrUnavailable extends Error {
  constructor(message = 'requested entry at index is unavailable') {
    super(message);
    this.name = 'ErrUnavailable';
  }
}

/** A snapshot older than (or as old as) the current one was applied or created. */
export class ErrSnapOutOfDate extends Error {
  constructor(message = 'requested index is older than the existing snapshot') {
    super(message);
    this.name = 'ErrSnapOutOfDate';
  }
}

/** Storage cannot produce a snapshot right now; the leader retries later. */
export class ErrSnapshotTemporarilyUnavailable extends Error {
  constructor(message = 'snapshot is temporarily unavailable') {
    super(message);
    this.name = 'ErrSnapshotTemporarilyUnavailable';
  }
}

/** A proposal was not accepted (no known leader, leadership transfer in progress, size limit, ...). */
export class ErrProposalDropped extends Error {
  constructor(message = 'raft proposal dropped') {
    super(message);
    this.name = 'ErrProposalDropped';
  }
}

/** RawNode.step was handed a message type that only the node itself may generate. */
export class ErrStepLocalMsg extends Error {
  constructor(message = 'raft: cannot step raft local message') {
    super(message);
    this.name = 'ErrStepLocalMsg';
  }
}

/** An internal invariant was violated: the log or the caller's usage is corrupt. Never caught internally. */
export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RaftInvariantError';
  }
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new RaftInvariantError(typeof message === 'string' ? message : message());
  }
}
