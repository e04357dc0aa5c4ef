// Small helpers shared by the Raft modules.
import type { ConfState, Entry, HardState, Message, SoftState } from './types.js';
import { MessageType, NONE } from './types.js';

/** Fixed per-entry overhead used for size accounting (term + index + type + length prefix). */
export const ENTRY_OVERHEAD_BYTES = 21;

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** Approximate encoded size of an entry; used for message and Ready size limits. */
export function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Payload size only; used for the uncommitted-proposal budget (the leader's no-op costs nothing). */
export function payloadSizeBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const e of entries) total += e.data.byteLength;
  return total;
}

/**
 * Keep a prefix of `entries` whose total size stays within `maxBytes`, but always at least one entry
 * so that a single oversized entry can still make progress.
 */
export function limitSize(entries: Entry[], maxBytes: number): Entry[] {
  if (entries.length <= 1 || maxBytes === Infinity) return entries;
  let size = entrySizeBytes(entries[0]!);
  let keep = 1;
  for (; keep < entries.length; keep++) {
    size += entrySizeBytes(entries[keep]!);
    if (size > maxBytes) break;
  }
  return keep === entries.length ? entries : entries.slice(0, keep);
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 }) as HardState;

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.state === b.state;
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [] };
}

export function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  const al = a?.byteLength ?? 0;
  const bl = b?.byteLength ?? 0;
  if (al !== bl) return false;
  for (let i = 0; i < al; i++) if (a![i] !== b![i]) return false;
  return true;
}

/** Hex string of a byte array; used as a map key for ReadIndex contexts. */
export function bytesToHex(b: Uint8Array | undefined): string {
  if (!b) return '';
  let s = '';
  for (let i = 0; i < b.byteLength; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

export function maxNum(a: number, b: number): number {
  return a > b ? a : b;
}

export function minNum(a: number, b: number): number {
  return a < b ? a : b;
}

/** Messages that only the node itself generates; they must never arrive from the network. */
export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus ||
    t === MessageType.CheckQuorum
  );
}

/** Messages that answer a request this node sent to a peer. */
export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.Unreachable ||
    t === MessageType.PreVoteResp
  );
}

export function voteResponseType(t: MessageType): MessageType {
  if (t === MessageType.Vote) return MessageType.VoteResp;
  if (t === MessageType.PreVote) return MessageType.PreVoteResp;
  throw new Error(`not a vote message: ${MessageType[t]}`);
}

/** Build a message with every required field defaulted; `from` and `term` are filled in by Raft.send. */
export function makeMessage(fields: Partial<Message> & { type: MessageType }): Message {
  return {
    type: fields.type,
    to: fields.to ?? NONE,
    from: fields.from ?? NONE,
    term: fields.term ?? 0,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? [],
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    ...(fields.snapshot !== undefined ? { snapshot: fields.snapshot } : {}),
    ...(fields.context !== undefined ? { context: fields.context } : {}),
  };
}
