import type * as mvcc from '../mvcc/types.js';
import { big, bytes, num, toLong, type Msg } from './pb.js';
import { RequestKind } from './request.js';

// protobuf (etcdserverpb, snake_case, Long) <-> the MVCC store's internal shapes
// (camelCase, Buffer, number, bigint). Requests are converted once: at the gRPC adapter
// for requests this member proposes, at apply time for entries proposed by others.

const EMPTY = Buffer.alloc(0);

function optBytes(v: unknown): Buffer | undefined {
  const b = bytes(v);
  return b.length > 0 ? b : undefined;
}

export function rangeFromPb(r: Msg): mvcc.RangeRequest {
  return {
    key: bytes(r.key),
    rangeEnd: optBytes(r.range_end),
    limit: num(r.limit),
    revision: num(r.revision),
    sortOrder: r.sort_order ?? 0,
    sortTarget: r.sort_target ?? 0,
    serializable: !!r.serializable,
    keysOnly: !!r.keys_only,
    countOnly: !!r.count_only,
    minModRevision: num(r.min_mod_revision),
    maxModRevision: num(r.max_mod_revision),
    minCreateRevision: num(r.min_create_revision),
    maxCreateRevision: num(r.max_create_revision),
  };
}

export function putFromPb(r: Msg): mvcc.PutRequest {
  return {
    key: bytes(r.key),
    value: bytes(r.value),
    lease: big(r.lease),
    prevKv: !!r.prev_kv,
    ignoreValue: !!r.ignore_value,
    ignoreLease: !!r.ignore_lease,
  };
}

export function deleteFromPb(r: Msg): mvcc.DeleteRangeRequest {
  return { key: bytes(r.key), rangeEnd: optBytes(r.range_end), prevKv: !!r.prev_kv };
}

function compareFromPb(c: Msg): mvcc.Compare {
  const out: mvcc.Compare = { result: c.result ?? 0, target: c.target ?? 0, key: bytes(c.key), rangeEnd: optBytes(c.range_end) };
  // Only the target_union member matching `target` counts; protobufjs leaves others unset.
  if (c.version != null) out.version = num(c.version);
  if (c.create_revision != null) out.createRevision = num(c.create_revision);
  if (c.mod_revision != null) out.modRevision = num(c.mod_revision);
  if (c.value != null) out.value = bytes(c.value);
  if (c.lease != null) out.lease = big(c.lease);
  return out;
}

function opFromPb(op: Msg): mvcc.RequestOp {
  if (op.request_range) return { requestRange: rangeFromPb(op.request_range) };
  if (op.request_put) return { requestPut: putFromPb(op.request_put) };
  if (op.request_delete_range) return { requestDeleteRange: deleteFromPb(op.request_delete_range) };
  if (op.request_txn) return { requestTxn: txnFromPb(op.request_txn) };
  return {};
}

export function txnFromPb(r: Msg): mvcc.TxnRequest {
  return {
    compare: ((r.compare ?? []) as Msg[]).map(compareFromPb),
    success: ((r.success ?? []) as Msg[]).map(opFromPb),
    failure: ((r.failure ?? []) as Msg[]).map(opFromPb),
  };
}

/** Converts a decoded request payload of a KV kind to the store's shape (other kinds pass through). */
export function internalFromPb(kind: RequestKind, msg: Msg): unknown {
  switch (kind) {
    case RequestKind.Put:
      return putFromPb(msg);
    case RequestKind.DeleteRange:
      return deleteFromPb(msg);
    case RequestKind.Txn:
      return txnFromPb(msg);
    default:
      return msg;
  }
}

// ---------------------------------------------------------------- results -> protobuf

export function kvToPb(kv: mvcc.KeyValue): Msg {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value ?? EMPTY,
    lease: kv.lease === 0n ? 0 : toLong(kv.lease, false),
  };
}

export function rangeResultToPb(r: mvcc.RangeResult): Msg {
  return { kvs: r.kvs.map(kvToPb), more: r.more, count: r.count };
}

type HeaderFn = (revision: number) => Msg;

/** etcd fills only the revision in the headers of responses nested in a txn. */
const nestedHeader: HeaderFn = (revision) => ({ revision });

function responseOpToPb(op: mvcc.ResponseOp, header: HeaderFn): Msg {
  if (op.responseRange) return { response_range: { header: header(op.responseRange.revision), ...rangeResultToPb(op.responseRange) } };
  if (op.responsePut) {
    return { response_put: { header: header(op.responsePut.revision), prev_kv: op.responsePut.prevKv ? kvToPb(op.responsePut.prevKv) : null } };
  }
  if (op.responseDeleteRange) {
    const d = op.responseDeleteRange;
    return { response_delete_range: { header: header(d.revision), deleted: d.deleted, prev_kvs: d.prevKvs.map(kvToPb) } };
  }
  if (op.responseTxn) return { response_txn: txnResultToPb(op.responseTxn, header) };
  return {};
}

export function txnResultToPb(r: mvcc.TxnResult, header: HeaderFn): Msg {
  return { header: header(r.revision), succeeded: r.succeeded, responses: r.responses.map((op) => responseOpToPb(op, nestedHeader)) };
}
