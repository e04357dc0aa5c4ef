// Compact big-endian binary encoding of the Raft types, used by the peer transport (and available to
// the WAL). Layouts (u64 = 8 bytes BE, u32 = 4 bytes BE, bytes = u32 length + raw bytes):
//   Entry       u64 term, u64 index, u8 type, bytes data
//   HardState   u64 term, u64 vote, u64 commit
//   ConfState   u32 nVoters, u64 voter*, u32 nLearners, u64 learner*
//   Snapshot    u64 index, u64 term, ConfState, bytes data
//   ConfChange  u8 type, u64 nodeId, bytes context
//   Message     u8 type, u8 flags(1=reject,2=snapshot,4=context), u64 to, u64 from, u64 term,
//               u64 logTerm, u64 index, u64 commit, u64 rejectHint, u32 nEntries, Entry*,
//               [Snapshot], [bytes context]
// Decoded byte payloads are zero-copy views into the input buffer: do not mutate the input afterwards.
import type { ConfChange, ConfState, Entry, HardState, Message, Snapshot } from './types.js';
import { ConfChangeType, EntryType, MessageType } from './types.js';

export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

const TWO_POW_32 = 0x1_0000_0000;

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_CONTEXT = 4;

/** Growable output buffer. */
export class BinaryWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialCapacityBytes = 256) {
    this.buf = new Uint8Array(initialCapacityBytes);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(extraBytes: number): void {
    const needed = this.pos + extraBytes;
    if (needed <= this.buf.byteLength) return;
    let cap = this.buf.byteLength * 2;
    while (cap < needed) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }

  u32(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v >= TWO_POW_32) throw new CodecError(`u32 out of range: ${v}`);
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  /** A non-negative safe integer (index, term) as 8 bytes; avoids BigInt on the hot path. */
  u64n(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new CodecError(`u64 number out of range: ${v}`);
    this.ensure(8);
    this.view.setUint32(this.pos, Math.floor(v / TWO_POW_32));
    this.view.setUint32(this.pos + 4, v >>> 0);
    this.pos += 8;
  }

  /** A 64-bit node id. */
  u64b(v: bigint): void {
    this.ensure(8);
    this.view.setBigUint64(this.pos, v);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.byteLength);
    this.ensure(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /** Writes a u32 placeholder and returns its offset, for patchU32 once the value is known. */
  reserveU32(): number {
    this.ensure(4);
    const at = this.pos;
    this.pos += 4;
    return at;
  }

  patchU32(at: number, v: number): void {
    if (!Number.isInteger(v) || v < 0 || v >= TWO_POW_32) throw new CodecError(`u32 out of range: ${v}`);
    this.view.setUint32(at, v);
  }

  /** The bytes written, as a view (no copy): the writer must not be used afterwards. */
  finishView(): Buffer {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset, this.pos);
  }
}

/** Bounds-checked reader over a byte array. */
export class BinaryReader {
  private readonly view: DataView;
  private pos = 0;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.byteLength) {
      throw new CodecError(`truncated input: need ${n} bytes at offset ${this.pos} of ${this.buf.byteLength}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64n(): number {
    this.need(8);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    this.pos += 8;
    const v = hi * TWO_POW_32 + lo;
    if (!Number.isSafeInteger(v)) throw new CodecError(`u64 value exceeds 2^53: hi=${hi}`);
    return v;
  }

  u64b(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  bytes(): Uint8Array {
    const len = this.u32();
    this.need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  remaining(): number {
    return this.buf.byteLength - this.pos;
  }

  expectEnd(what: string): void {
    if (this.remaining() !== 0) throw new CodecError(`${this.remaining()} trailing bytes after ${what}`);
  }
}

function checkEnum(value: number, names: object, what: string): number {
  if (!(value in names)) throw new CodecError(`invalid ${what}: ${value}`);
  return value;
}

// ---- Entry ----
export function writeEntry(w: BinaryWriter, e: Entry): void {
  w.u64n(e.term);
  w.u64n(e.index);
  w.u8(e.type);
  w.bytes(e.data);
}

export function readEntry(r: BinaryReader): Entry {
  const term = r.u64n();
  const index = r.u64n();
  const type = checkEnum(r.u8(), EntryType, 'entry type') as EntryType;
  const data = r.bytes();
  return { term, index, type, data };
}

export function encodeEntry(e: Entry): Uint8Array {
  const w = new BinaryWriter(32 + e.data.byteLength);
  writeEntry(w, e);
  return w.finish();
}

export function decodeEntry(buf: Uint8Array): Entry {
  const r = new BinaryReader(buf);
  const e = readEntry(r);
  r.expectEnd('entry');
  return e;
}

// ---- HardState ----
export function writeHardState(w: BinaryWriter, hs: HardState): void {
  w.u64n(hs.term);
  w.u64b(hs.vote);
  w.u64n(hs.commit);
}

export function readHardState(r: BinaryReader): HardState {
  const term = r.u64n();
  const vote = r.u64b();
  const commit = r.u64n();
  return { term, vote, commit };
}

export function encodeHardState(hs: HardState): Uint8Array {
  const w = new BinaryWriter(24);
  writeHardState(w, hs);
  return w.finish();
}

export function decodeHardState(buf: Uint8Array): HardState {
  const r = new BinaryReader(buf);
  const hs = readHardState(r);
  r.expectEnd('hard state');
  return hs;
}

// ---- ConfState ----
export function writeConfState(w: BinaryWriter, cs: ConfState): void {
  w.u32(cs.voters.length);
  for (const id of cs.voters) w.u64b(id);
  w.u32(cs.learners.length);
  for (const id of cs.learners) w.u64b(id);
}

export function readConfState(r: BinaryReader): ConfState {
  const voters: bigint[] = [];
  const nVoters = r.u32();
  for (let i = 0; i < nVoters; i++) voters.push(r.u64b());
  const learners: bigint[] = [];
  const nLearners = r.u32();
  for (let i = 0; i < nLearners; i++) learners.push(r.u64b());
  return { voters, learners };
}

export function encodeConfState(cs: ConfState): Uint8Array {
  const w = new BinaryWriter(8 + 8 * (cs.voters.length + cs.learners.length));
  writeConfState(w, cs);
  return w.finish();
}

export function decodeConfState(buf: Uint8Array): ConfState {
  const r = new BinaryReader(buf);
  const cs = readConfState(r);
  r.expectEnd('conf state');
  return cs;
}

// ---- Snapshot ----
export function writeSnapshot(w: BinaryWriter, s: Snapshot): void {
  w.u64n(s.meta.index);
  w.u64n(s.meta.term);
  writeConfState(w, s.meta.confState);
  w.bytes(s.data);
}

export function readSnapshot(r: BinaryReader): Snapshot {
  const index = r.u64n();
  const term = r.u64n();
  const confState = readConfState(r);
  const data = r.bytes();
  return { meta: { index, term, confState }, data };
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const w = new BinaryWriter(64 + s.data.byteLength);
  writeSnapshot(w, s);
  return w.finish();
}

export function decodeSnapshot(buf: Uint8Array): Snapshot {
  const r = new BinaryReader(buf);
  const s = readSnapshot(r);
  r.expectEnd('snapshot');
  return s;
}

// ---- ConfChange ----
export function writeConfChange(w: BinaryWriter, cc: ConfChange): void {
  w.u8(cc.type);
  w.u64b(cc.nodeId);
  w.bytes(cc.context);
}

export function readConfChange(r: BinaryReader): ConfChange {
  const type = checkEnum(r.u8(), ConfChangeType, 'conf change type') as ConfChangeType;
  const nodeId = r.u64b();
  const context = r.bytes();
  return { type, nodeId, context };
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const w = new BinaryWriter(16 + cc.context.byteLength);
  writeConfChange(w, cc);
  return w.finish();
}

export function decodeConfChange(buf: Uint8Array): ConfChange {
  const r = new BinaryReader(buf);
  const cc = readConfChange(r);
  r.expectEnd('conf change');
  return cc;
}

// ---- Message ----
export function writeMessage(w: BinaryWriter, m: Message): void {
  let flags = 0;
  if (m.reject) flags |= FLAG_REJECT;
  if (m.snapshot !== undefined) flags |= FLAG_SNAPSHOT;
  if (m.context !== undefined) flags |= FLAG_CONTEXT;
  w.u8(m.type);
  w.u8(flags);
  w.u64b(m.to);
  w.u64b(m.from);
  w.u64n(m.term);
  w.u64n(m.logTerm);
  w.u64n(m.index);
  w.u64n(m.commit);
  w.u64n(m.rejectHint);
  w.u32(m.entries.length);
  for (const e of m.entries) writeEntry(w, e);
  if (m.snapshot !== undefined) writeSnapshot(w, m.snapshot);
  if (m.context !== undefined) w.bytes(m.context);
}

export function readMessage(r: BinaryReader): Message {
  const type = checkEnum(r.u8(), MessageType, 'message type') as MessageType;
  const flags = r.u8();
  if ((flags & ~(FLAG_REJECT | FLAG_SNAPSHOT | FLAG_CONTEXT)) !== 0) throw new CodecError(`invalid message flags: ${flags}`);
  const to = r.u64b();
  const from = r.u64b();
  const term = r.u64n();
  const logTerm = r.u64n();
  const index = r.u64n();
  const commit = r.u64n();
  const rejectHint = r.u64n();
  const nEntries = r.u32();
  // Each entry needs at least 21 bytes; reject absurd counts before allocating.
  if (nEntries * 21 > r.remaining()) throw new CodecError(`entry count ${nEntries} exceeds input size`);
  const entries: Entry[] = new Array<Entry>(nEntries);
  for (let i = 0; i < nEntries; i++) entries[i] = readEntry(r);
  const m: Message = { type, to, from, term, logTerm, index, entries, commit, reject: (flags & FLAG_REJECT) !== 0, rejectHint };
  if (flags & FLAG_SNAPSHOT) m.snapshot = readSnapshot(r);
  if (flags & FLAG_CONTEXT) m.context = r.bytes();
  return m;
}

function messageSizeHint(m: Message): number {
  let size = 80;
  for (const e of m.entries) size += 21 + e.data.byteLength;
  if (m.snapshot) size += 64 + m.snapshot.data.byteLength;
  if (m.context) size += 4 + m.context.byteLength;
  return size;
}

/**
 * Messages as one buffer of u32-length-prefixed encodings (the peer stream's framing),
 * written in place: one allocation for the whole batch.
 */
export function encodeMessageBatch(msgs: readonly Message[]): Buffer {
  let hint = 0;
  for (const m of msgs) hint += 4 + messageSizeHint(m);
  const w = new BinaryWriter(hint);
  for (const m of msgs) {
    const at = w.reserveU32();
    writeMessage(w, m);
    w.patchU32(at, w.length - at - 4);
  }
  return w.finishView();
}

export function encodeMessage(m: Message): Uint8Array {
  const w = new BinaryWriter(messageSizeHint(m));
  writeMessage(w, m);
  return w.finish();
}

export function decodeMessage(buf: Uint8Array): Message {
  const r = new BinaryReader(buf);
  const m = readMessage(r);
  r.expectEnd('message');
  return m;
}
