import { type, type Msg } from './pb.js';

// How a client request travels through Raft: one Normal entry whose data is
//   [kind: u8][request id: 8 bytes, float64 BE of a <2^53 integer][payload]
// The payload is the request's protobuf encoding, so a gRPC request's raw bytes are
// reused as-is (no re-encoding on the hot path). Members that did not propose the entry
// decode the payload at apply time.

export enum RequestKind {
  Put = 1,
  DeleteRange = 2,
  Txn = 3,
  Compact = 4,
  LeaseGrant = 5,
  LeaseRevoke = 6,
  LeaseCheckpoint = 7,
  Alarm = 8,
  /** A member publishes its name and client URLs after start (JSON payload). */
  MemberAttributes = 9,
  ClusterVersion = 10,
  /** Auth changes (JSON payload: {op, ...}). */
  Auth = 11,
}

const HEADER_BYTES = 9;

const kindTypes: Partial<Record<RequestKind, string>> = {
  [RequestKind.Put]: 'etcdserverpb.PutRequest',
  [RequestKind.DeleteRange]: 'etcdserverpb.DeleteRangeRequest',
  [RequestKind.Txn]: 'etcdserverpb.TxnRequest',
  [RequestKind.Compact]: 'etcdserverpb.CompactionRequest',
  [RequestKind.LeaseGrant]: 'etcdserverpb.LeaseGrantRequest',
  [RequestKind.LeaseRevoke]: 'etcdserverpb.LeaseRevokeRequest',
  [RequestKind.Alarm]: 'etcdserverpb.AlarmRequest',
};

export function encodeRequest(kind: RequestKind, requestId: number, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  buf[0] = kind;
  buf.writeDoubleBE(requestId, 1);
  buf.set(payload, HEADER_BYTES);
  return buf;
}

export interface DecodedHeader {
  kind: RequestKind;
  requestId: number;
}

export function decodeHeader(data: Uint8Array): DecodedHeader {
  if (data.length < HEADER_BYTES) throw new Error(`raft entry too short for a request (${data.length} bytes)`);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { kind: buf[0] as RequestKind, requestId: buf.readDoubleBE(1) };
}

export function payloadOf(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset + HEADER_BYTES, data.byteLength - HEADER_BYTES);
}

/** Decodes a payload of a protobuf-carried request kind. */
export function decodePayload(kind: RequestKind, payload: Uint8Array): Msg {
  const name = kindTypes[kind];
  if (!name) return JSON.parse(Buffer.from(payload).toString('utf8'));
  return type(name).decode(payload);
}

export function encodePayload(kind: RequestKind, msg: Msg): Uint8Array {
  const name = kindTypes[kind];
  if (!name) return Buffer.from(JSON.stringify(msg, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)), 'utf8');
  return type(name).encode(msg).finish();
}

/**
 * Request IDs must be unique across the cluster: a member matches applied entries to its
 * waiting callers by ID. The high bits are derived from the member ID, the low 36 bits
 * count up from a time-based start, all kept below 2^53 so a JS number holds them exactly.
 */
export class RequestIdGenerator {
  private next: number;
  private readonly prefix: number;

  constructor(memberId: bigint, nowMs = Date.now()) {
    this.prefix = Number(memberId & 0xffffn) * 2 ** 36;
    this.next = (nowMs * 16) % 2 ** 36;
  }

  nextId(): number {
    this.next = (this.next + 1) % 2 ** 36;
    return this.prefix + this.next;
  }
}
