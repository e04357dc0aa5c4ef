/**
 * The WAL holds damage that cannot be explained by a crash during the last write
 * (bit rot, a lost or zeroed acknowledged record, a missing segment). Opening refuses
 * instead of silently dropping acknowledged Raft state; an operator has to intervene.
 */
export class WalCorruptError extends Error {
  override readonly name = 'WalCorruptError';

  constructor(
    /** Segment file name (no directory), e.g. `0000000000000000-0000000000000000.wal`. */
    readonly file: string,
    /** Byte offset of the offending record inside `file`. */
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`wal: corrupt record in ${file} at offset ${offset}: ${reason}`);
  }
}

/** A record's payload is malformed even though its checksum is valid: a format bug, never a torn write. */
export class PayloadDecodeError extends Error {
  override readonly name = 'PayloadDecodeError';
}
