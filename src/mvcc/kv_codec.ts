// mvccpb.KeyValue protobuf encoding, hand-written for the hot path (no reflection,
// no intermediate objects). Field order and zero-value omission follow gogoproto's
// Marshal, so stored bytes equal etcd's and HashKV matches a real etcd.
//
//   1 key bytes | 2 create_revision int64 | 3 mod_revision int64 | 4 version int64
//   5 value bytes | 6 lease int64

import type { KeyValue } from './types.js';

const TAG_KEY = 0x0a;
const TAG_CREATE = 0x10;
const TAG_MOD = 0x18;
const TAG_VERSION = 0x20;
const TAG_VALUE = 0x2a;
const TAG_LEASE = 0x30;
const TWO_POW_32 = 0x1_0000_0000;
const EMPTY = Buffer.alloc(0);
const U64_MASK = 0xffff_ffff_ffff_ffffn;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

function varint64Size(hi: number, lo: number): number {
  let size = 1;
  while (hi !== 0 || lo > 127) {
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
    size++;
  }
  return size;
}

function writeVarint64(buf: Buffer, pos: number, hi: number, lo: number): number {
  while (hi !== 0 || lo > 127) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  buf[pos++] = lo;
  return pos;
}

function assertRevisionField(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`mvcc: ${what} out of range: ${n}`);
}

let valueOffset = 0;

/** Offset of the value bytes inside the record most recently built by encodeKeyValue. */
export function lastValueOffset(): number {
  return valueOffset;
}

/** Encode a KeyValue exactly as etcd's gogoproto Marshal would. */
export function encodeKeyValue(
  key: Buffer,
  createRevision: number,
  modRevision: number,
  version: number,
  value: Buffer,
  lease: bigint,
): Buffer {
  assertRevisionField(createRevision, 'create_revision');
  assertRevisionField(modRevision, 'mod_revision');
  assertRevisionField(version, 'version');
  let size = 0;
  if (key.length > 0) size += 1 + varintSize(key.length) + key.length;
  if (createRevision !== 0) size += 1 + varintSize(createRevision);
  if (modRevision !== 0) size += 1 + varintSize(modRevision);
  if (version !== 0) size += 1 + varintSize(version);
  if (value.length > 0) size += 1 + varintSize(value.length) + value.length;
  let leaseHi = 0;
  let leaseLo = 0;
  if (lease !== 0n) {
    const u = BigInt.asUintN(64, lease);
    leaseHi = Number(u >> 32n);
    leaseLo = Number(u & 0xffff_ffffn);
    size += 1 + varint64Size(leaseHi, leaseLo);
  }
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  valueOffset = 0;
  if (key.length > 0) {
    buf[pos++] = TAG_KEY;
    pos = writeVarint(buf, pos, key.length);
    pos += key.copy(buf, pos);
  }
  if (createRevision !== 0) {
    buf[pos++] = TAG_CREATE;
    pos = writeVarint(buf, pos, createRevision);
  }
  if (modRevision !== 0) {
    buf[pos++] = TAG_MOD;
    pos = writeVarint(buf, pos, modRevision);
  }
  if (version !== 0) {
    buf[pos++] = TAG_VERSION;
    pos = writeVarint(buf, pos, version);
  }
  if (value.length > 0) {
    buf[pos++] = TAG_VALUE;
    pos = writeVarint(buf, pos, value.length);
    valueOffset = pos;
    pos += value.copy(buf, pos);
  }
  if (lease !== 0n) {
    buf[pos++] = TAG_LEASE;
    pos = writeVarint64(buf, pos, leaseHi, leaseLo);
  }
  if (pos !== size) throw new Error(`mvcc: KeyValue encoding size mismatch (${pos} != ${size})`);
  return buf;
}

/** Encoding of a tombstone record: etcd stores KeyValue{Key: key} only. */
export function encodeTombstone(key: Buffer): Buffer {
  return encodeKeyValue(key, 0, 0, 0, EMPTY, 0n);
}

// Decoder state lives in module scope to avoid allocating a cursor object per field.
let dpos = 0;
let dhi = 0;
let dlo = 0;

function readVarint64(buf: Buffer): void {
  let lo = 0;
  let hi = 0;
  let shift = 0;
  for (;;) {
    if (dpos >= buf.length) throw new Error('mvcc: truncated varint in KeyValue');
    const byte = buf[dpos++]!;
    if (shift < 28) lo |= (byte & 0x7f) << shift;
    else if (shift === 28) {
      lo |= (byte & 0x0f) << 28;
      hi |= (byte & 0x7f) >>> 4;
    } else if (shift < 64) hi |= (byte & 0x7f) << (shift - 32);
    if ((byte & 0x80) === 0) break;
    shift += 7;
    if (shift >= 70) throw new Error('mvcc: varint too long in KeyValue');
  }
  dlo = lo >>> 0;
  dhi = hi >>> 0;
}

function readNumber(buf: Buffer): number {
  readVarint64(buf);
  const n = dhi * TWO_POW_32 + dlo;
  if (!Number.isSafeInteger(n)) throw new Error('mvcc: KeyValue integer field exceeds 2^53');
  return n;
}

function readBytes(buf: Buffer): Buffer {
  const len = readNumber(buf);
  const end = dpos + len;
  if (end > buf.length) throw new Error('mvcc: truncated bytes field in KeyValue');
  const out = buf.subarray(dpos, end);
  dpos = end;
  return out;
}

/** Decode a stored KeyValue. Key and value are views into `buf` (no copy). */
export function decodeKeyValue(buf: Buffer): KeyValue {
  let key: Buffer = EMPTY;
  let createRevision = 0;
  let modRevision = 0;
  let version = 0;
  let value: Buffer = EMPTY;
  let lease = 0n;
  dpos = 0;
  while (dpos < buf.length) {
    const tag = buf[dpos++]!;
    switch (tag) {
      case TAG_KEY:
        key = readBytes(buf);
        break;
      case TAG_CREATE:
        createRevision = readNumber(buf);
        break;
      case TAG_MOD:
        modRevision = readNumber(buf);
        break;
      case TAG_VERSION:
        version = readNumber(buf);
        break;
      case TAG_VALUE:
        value = readBytes(buf);
        break;
      case TAG_LEASE:
        readVarint64(buf);
        lease = BigInt.asIntN(64, ((BigInt(dhi) << 32n) | BigInt(dlo)) & U64_MASK);
        break;
      default:
        throw new Error(`mvcc: unexpected protobuf tag 0x${tag.toString(16)} in stored KeyValue`);
    }
  }
  return makeKeyValue(key, createRevision, modRevision, version, value, lease);
}

/** Single construction site so every KeyValue shares one hidden class. */
export function makeKeyValue(
  key: Buffer,
  createRevision: number,
  modRevision: number,
  version: number,
  value: Buffer,
  lease: bigint,
): KeyValue {
  return { key, createRevision, modRevision, version, value, lease };
}
