// Internal request/response shapes of the MVCC store. They mirror etcd's protobuf
// messages (etcdserverpb.RangeRequest & co., mvccpb.KeyValue/Event) field by field,
// in the camelCase spelling @grpc/proto-loader produces, minus the response headers.
// Bytes are Buffers, revisions/versions/counts are numbers (they stay below 2^53),
// lease IDs are bigints (they use all 64 bits).
//
// Omitted optional fields mean the protobuf default (0 / false / empty).

import type { Logger } from '../backend/backend.js';

export type { Logger };

export interface KeyValue {
  readonly key: Buffer;
  /** Revision of the key's latest creation (0 on a DELETE event's kv). */
  readonly createRevision: number;
  /** Revision of the key's latest modification. */
  readonly modRevision: number;
  /** 1 on creation, +1 per put; 0 on a DELETE event's kv. */
  readonly version: number;
  readonly value: Buffer;
  /** Attached lease ID, 0n when none. */
  readonly lease: bigint;
}

export enum SortOrder {
  NONE = 0,
  ASCEND = 1,
  DESCEND = 2,
}

export enum SortTarget {
  KEY = 0,
  VERSION = 1,
  CREATE = 2,
  MOD = 3,
  VALUE = 4,
}

export interface RangeRequest {
  key: Buffer;
  /** Empty/absent = just `key`; "\0" = every key >= key; otherwise [key, rangeEnd). */
  rangeEnd?: Buffer;
  /** 0 (or negative) = no limit. */
  limit?: number;
  /** 0 (or negative) = current revision. */
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  /** Ignored by the store (the server decides linearizable vs serializable). */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface RangeResult {
  /** The response header revision etcd would report. */
  revision: number;
  kvs: KeyValue[];
  more: boolean;
  /** Number of keys in the range at the read revision, ignoring limit and filters. */
  count: number;
}

export interface PutRequest {
  key: Buffer;
  value?: Buffer;
  lease?: bigint;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface PutResult {
  revision: number;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  prevKv?: boolean;
}

export interface DeleteRangeResult {
  revision: number;
  deleted: number;
  /** Filled only when the request asked for prev_kv. */
  prevKvs: KeyValue[];
}

export enum CompareResult {
  EQUAL = 0,
  GREATER = 1,
  LESS = 2,
  NOT_EQUAL = 3,
}

export enum CompareTarget {
  VERSION = 0,
  CREATE = 1,
  MOD = 2,
  VALUE = 3,
  LEASE = 4,
}

/** etcdserverpb.Compare; the target_union member matching `target` is read (absent = 0 / empty). */
export interface Compare {
  result: CompareResult;
  target: CompareTarget;
  key: Buffer;
  version?: number;
  createRevision?: number;
  modRevision?: number;
  value?: Buffer;
  lease?: bigint;
  rangeEnd?: Buffer;
}

/** etcdserverpb.RequestOp: exactly one member set (none = an empty op). */
export interface RequestOp {
  requestRange?: RangeRequest;
  requestPut?: PutRequest;
  requestDeleteRange?: DeleteRangeRequest;
  requestTxn?: TxnRequest;
}

export interface TxnRequest {
  compare?: Compare[];
  success?: RequestOp[];
  failure?: RequestOp[];
}

/** etcdserverpb.ResponseOp: the member matching the request op (none for an empty op). */
export interface ResponseOp {
  responseRange?: RangeResult;
  responsePut?: PutResult;
  responseDeleteRange?: DeleteRangeResult;
  responseTxn?: TxnResult;
}

export interface TxnResult {
  /**
   * Header revision. For the outermost txn: the txn's revision (current revision after
   * it). For a nested txn etcd leaves the header revision 0, and so do we.
   */
  revision: number;
  succeeded: boolean;
  responses: ResponseOp[];
}

export enum EventType {
  PUT = 0,
  DELETE = 1,
}

/** mvccpb.Event. A DELETE's kv carries only the key and modRevision = the deletion revision. */
export interface MvccEvent {
  type: EventType;
  kv: KeyValue;
  /** The key's previous live value, if there was one. */
  prevKv?: KeyValue;
}

export interface HashKVResult {
  hash: number;
  /** The store's compact revision when hashing (-1 if never compacted). */
  compactRevision: number;
  /** The revision the hash covers. */
  hashRevision: number;
  /** The current revision (response header revision). */
  revision: number;
}

/** What the store needs from the lessor. */
export interface LeaseHooks {
  exists(id: bigint): boolean;
  attach(id: bigint, key: Buffer): void;
  detach(id: bigint, key: Buffer): void;
}
