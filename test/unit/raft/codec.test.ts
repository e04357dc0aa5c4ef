import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  CodecError,
  decodeConfChange,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeMessageBatch,
  encodeSnapshot,
} from '../../../src/raft/codec.js';
import { StreamDecoder } from '../../../src/peer/transport.js';
import type { Entry, Message, Snapshot } from '../../../src/raft/types.js';
import { ConfChangeType, EntryType, MessageType } from '../../../src/raft/types.js';

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const num = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 64 });
const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: num,
  index: num,
  type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
  data: bytes,
});
const confStateArb = fc.record({ voters: fc.array(u64, { maxLength: 5 }), learners: fc.array(u64, { maxLength: 3 }) });
const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({
  meta: fc.record({ index: num, term: num, confState: confStateArb }),
  data: bytes,
});
const messageArb: fc.Arbitrary<Message> = fc
  .record({
    type: fc.integer({ min: 0, max: 18 }) as fc.Arbitrary<MessageType>,
    to: u64,
    from: u64,
    term: num,
    logTerm: num,
    index: num,
    entries: fc.array(entryArb, { maxLength: 4 }),
    commit: num,
    reject: fc.boolean(),
    rejectHint: num,
    snapshot: fc.option(snapshotArb, { nil: undefined }),
    context: fc.option(bytes, { nil: undefined }),
  })
  .map((m) => {
    // Optional fields are absent (not undefined) in real messages.
    const out: Message = { ...m };
    if (out.snapshot === undefined) delete out.snapshot;
    if (out.context === undefined) delete out.context;
    return out;
  });

/** Compare after normalising Uint8Array subclasses/views to plain arrays. */
function norm(v: unknown): unknown {
  return JSON.parse(
    JSON.stringify(v, (_k, x: unknown) =>
      typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? Array.from(x) : x,
    ),
  );
}

describe('codec', () => {
  it('round-trips entries', () => {
    fc.assert(fc.property(entryArb, (e) => {
        expect(norm(decodeEntry(encodeEntry(e)))).toEqual(norm(e));
      }));
  });

  it('round-trips hard states, including 64-bit votes', () => {
    fc.assert(
      fc.property(fc.record({ term: num, vote: u64, commit: num }), (hs) => {
        expect(decodeHardState(encodeHardState(hs))).toEqual(hs);
      }),
    );
    const hs = { term: 7, vote: 0xfedcba9876543210n, commit: 2 ** 40 };
    expect(decodeHardState(encodeHardState(hs))).toEqual(hs);
  });

  it('round-trips conf states, snapshots and conf changes', () => {
    fc.assert(fc.property(confStateArb, (cs) => {
        expect(decodeConfState(encodeConfState(cs))).toEqual(cs);
      }));
    fc.assert(fc.property(snapshotArb, (s) => {
        expect(norm(decodeSnapshot(encodeSnapshot(s)))).toEqual(norm(s));
      }));
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constantFrom(
            ConfChangeType.AddNode,
            ConfChangeType.RemoveNode,
            ConfChangeType.UpdateNode,
            ConfChangeType.AddLearnerNode,
          ),
          nodeId: u64,
          context: bytes,
        }),
        (cc) => {
          expect(norm(decodeConfChange(encodeConfChange(cc)))).toEqual(norm(cc));
        },
      ),
    );
  });

  it('round-trips messages', () => {
    fc.assert(fc.property(messageArb, (m) => {
        expect(norm(decodeMessage(encodeMessage(m)))).toEqual(norm(m));
      }));
  });

  it('keeps an empty context distinct from no context', () => {
    const base: Message = {
      type: MessageType.Heartbeat,
      to: 1n,
      from: 2n,
      term: 3,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 1,
      reject: false,
      rejectHint: 0,
    };
    expect(decodeMessage(encodeMessage(base)).context).toBeUndefined();
    expect(decodeMessage(encodeMessage({ ...base, context: new Uint8Array() })).context).toEqual(new Uint8Array());
  });

  it('rejects truncated input, trailing bytes and invalid enums', () => {
    const e = encodeEntry({ term: 1, index: 2, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) });
    for (let cut = 0; cut < e.byteLength; cut++) expect(() => decodeEntry(e.subarray(0, cut))).toThrow(CodecError);
    const extended = new Uint8Array(e.byteLength + 1);
    extended.set(e);
    expect(() => decodeEntry(extended)).toThrow(CodecError);
    const badType = e.slice();
    badType[16] = 9;
    expect(() => decodeEntry(badType)).toThrow(CodecError);
    const m = encodeMessage({
      type: MessageType.App,
      to: 1n,
      from: 2n,
      term: 1,
      logTerm: 1,
      index: 1,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    });
    const huge = m.slice();
    new DataView(huge.buffer).setUint32(58, 0xffffffff); // absurd entry count
    expect(() => decodeMessage(huge)).toThrow(CodecError);
  });

  it('a message batch is length-prefixed encodings, decodable from any split of the stream', () => {
    fc.assert(fc.property(fc.array(messageArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 4 }), (msgs, cuts) => {
      const batch = encodeMessageBatch(msgs);
      const expected = Buffer.concat(msgs.flatMap((m) => {
        const enc = encodeMessage(m);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(enc.length);
        return [len, enc];
      }));
      expect(Buffer.compare(batch, expected)).toBe(0);
      const points = [...new Set(cuts.map((c) => (batch.length === 0 ? 0 : c % batch.length)))].sort((a, b) => a - b);
      const decoder = new StreamDecoder();
      const out: Message[] = [];
      let from = 0;
      for (const p of [...points, batch.length]) {
        out.push(...decoder.push(Buffer.from(batch.subarray(from, p))));
        from = p;
      }
      expect(out.map((m) => Buffer.from(encodeMessage(m)).toString('hex'))).toEqual(msgs.map((m) => Buffer.from(encodeMessage(m)).toString('hex')));
    }));
  });

  it('refuses to encode unsafe integers', () => {
    expect(() => encodeEntry({ term: 2 ** 53, index: 1, type: EntryType.Normal, data: new Uint8Array() })).toThrow(
      CodecError,
    );
    expect(() => encodeEntry({ term: -1, index: 1, type: EntryType.Normal, data: new Uint8Array() })).toThrow(CodecError);
  });
});
