import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyIndex, located } from '../../../src/mvcc/key_index.js';
import { decodeKeyValue, encodeKeyValue, encodeTombstone, makeKeyValue } from '../../../src/mvcc/kv_codec.js';
import { isTombstoneKey, revMainOf, revSubOf, revToBytes } from '../../../src/mvcc/revision.js';
import { compareKeys, KeyTree } from '../../../src/mvcc/tree.js';

const b = (s: string): Buffer => Buffer.from(s);

describe('KeyValue codec (mvccpb protobuf)', () => {
  it('produces the exact bytes gogoproto produces', () => {
    // KeyValue{key:"a", create:2, mod:2, version:1, value:"1"} as etcd stores it
    expect(encodeKeyValue(b('a'), 2, 2, 1, b('1'), 0n).toString('hex')).toBe('0a01611002180220012a0131');
    expect(encodeTombstone(b('foo')).toString('hex')).toBe('0a03666f6f');
    // lease 0x694d77aa9e4a3d04 (a typical etcd lease ID): 64-bit varint
    const withLease = encodeKeyValue(b('k'), 300, 300, 1, Buffer.alloc(0), 0x694d77aa9e4a3d04n);
    expect(withLease.toString('hex')).toBe('0a016b10ac0218ac0220013084faa8f2a9f5dda669');
    expect(decodeKeyValue(withLease).lease).toBe(0x694d77aa9e4a3d04n);
    // int64 -1 is a 10-byte varint on the wire
    expect(encodeKeyValue(b('k'), 0, 0, 0, Buffer.alloc(0), -1n).toString('hex')).toBe('0a016b30ffffffffffffffffff01');
  });

  it('round-trips arbitrary KeyValues', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: 2 ** 40 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        (key, create, mod, ver, value, lease) => {
          const enc = encodeKeyValue(Buffer.from(key), create, mod, ver, Buffer.from(value), lease);
          const dec = decodeKeyValue(enc);
          expect(dec).toEqual(makeKeyValue(Buffer.from(key), create, mod, ver, Buffer.from(value), lease));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects malformed records', () => {
    expect(() => decodeKeyValue(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/truncated/);
    expect(() => decodeKeyValue(Buffer.from([0x38, 0x01]))).toThrow(/unexpected protobuf tag/);
  });
});

describe('revision keys', () => {
  it('use etcd\'s 17/18-byte layout and sort by (main, sub)', () => {
    const k = revToBytes(0x1_0000_0002, 3, true);
    expect(k.toString('hex')).toBe('0000000100000002' + '5f' + '0000000000000003' + '74');
    expect(isTombstoneKey(k)).toBe(true);
    expect(revMainOf(k)).toBe(0x1_0000_0002);
    expect(revSubOf(k)).toBe(3);
    expect(Buffer.compare(revToBytes(2, 9), revToBytes(3, 0))).toBe(-1);
    expect(Buffer.compare(revToBytes(3, 1), revToBytes(3, 0, true))).toBe(1);
    expect(() => revToBytes(-1, 0)).toThrow();
  });
});

describe('KeyIndex', () => {
  const kv = (main: number) => makeKeyValue(b('k'), main, main, 1, b(String(main)), 0n);
  function history(ops: Array<['p' | 't', number]>): KeyIndex {
    const ki = new KeyIndex(b('k'));
    for (const [op, main] of ops) {
      if (op === 'p') ki.put(main, 0, kv(main));
      else ki.tombstone(main, 0);
    }
    return ki;
  }
  const at = (ki: KeyIndex, rev: number): number | null =>
    ki.locate(rev) ? ki.gens[located.gen]![2 * located.pair]! : null;

  it('locates the value at any revision across generations', () => {
    const ki = history([
      ['p', 2],
      ['p', 4],
      ['t', 6],
      ['p', 8],
      ['t', 9],
      ['p', 12],
    ]);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 99].map((r) => at(ki, r))).toEqual([
      null, 2, 2, 4, 4, null, null, 8, null, null, 12, 12,
    ]);
    expect(ki.latest!.modRevision).toBe(12);
    expect(ki.tombstone(13, 0)).toBe(true);
    expect(ki.tombstone(14, 0)).toBe(false); // already deleted
    expect(ki.latest).toBeNull();
  });

  it('compacts like etcd: keeps the newest revision <= atRev of the live generation', () => {
    const ki = history([
      ['p', 2],
      ['p', 4],
      ['t', 6],
      ['p', 8],
      ['p', 10],
    ]);
    const removed: Buffer[] = [];
    ki.compact(5, removed);
    expect(removed.map((r) => `${revMainOf(r)}${isTombstoneKey(r) ? 't' : ''}`)).toEqual(['2']);
    expect(ki.gens).toEqual([[4, 0, 6, 0], [8, 0, 10, 0]]);
    removed.length = 0;
    ki.compact(6, removed); // the deleting tombstone at exactly atRev goes with its generation
    expect(removed.map((r) => `${revMainOf(r)}${isTombstoneKey(r) ? 't' : ''}`)).toEqual(['4', '6t']);
    expect(ki.gens).toEqual([[8, 0, 10, 0]]);
    removed.length = 0;
    ki.compact(9, removed); // 8 is still the value at 9
    expect(removed).toEqual([]);
    ki.tombstone(11, 0);
    ki.compact(11, removed);
    expect(ki.isEmpty()).toBe(true);
  });

  it('keep() lists what a compaction at rev would keep, never a tombstone', () => {
    const ki = history([
      ['p', 2],
      ['t', 3],
      ['p', 5],
    ]);
    const keep = new Set<string>();
    ki.keep(2, keep);
    expect([...keep]).toEqual(['2_0']);
    keep.clear();
    ki.keep(4, keep);
    expect([...keep]).toEqual([]);
    ki.keep(7, keep);
    expect([...keep]).toEqual(['5_0']);
  });
});

describe('KeyTree', () => {
  it('behaves like a sorted map under random inserts, deletes and range scans', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 3 })), { maxLength: 3000 }),
        (ops) => {
          const tree = new KeyTree();
          const model = new Map<string, Buffer>();
          for (const [insert, raw] of ops) {
            const key = Buffer.from(raw);
            const s = key.toString('hex');
            if (insert && !model.has(s)) {
              tree.insert(new KeyIndex(key));
              model.set(s, key);
            } else if (!insert) {
              expect(tree.delete(key)).toBe(model.delete(s));
            }
          }
          const sorted = [...model.values()].sort(Buffer.compare);
          expect(tree.size).toBe(sorted.length);
          const cur = tree.cursor();
          const seen: Buffer[] = [];
          for (let ki = cur.first(); ki; ki = cur.next()) seen.push(ki.key);
          expect(seen).toEqual(sorted);
          for (const probe of [Buffer.from([0x80]), Buffer.from([0x10, 0x20]), Buffer.from([0xff, 0xff, 0xff])]) {
            const expected = sorted.find((k) => Buffer.compare(k, probe) >= 0);
            expect(tree.cursor().seek(probe)?.key).toEqual(expected);
            expect(tree.get(probe)?.key).toEqual(model.get(probe.toString('hex')));
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('compareKeys orders exactly like Buffer.compare, short keys and long common prefixes alike', () => {
    const prefix = Buffer.from('/registry/pods/default/');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), fc.nat(2), (x, y, shared) => {
        const p = prefix.subarray(0, shared * 12);
        const a = Buffer.concat([p, x]);
        const c = Buffer.concat([p, y]);
        expect(Math.sign(compareKeys(a, c))).toBe(Buffer.compare(a, c));
        expect(compareKeys(a, Buffer.from(a))).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('finds every key when keys share long prefixes of many lengths (searches skip the shared bytes)', () => {
    // Keys are a cut of one long prefix plus a short tail from a tiny alphabet: many keys are
    // prefixes of others and neighbours share 0..60 bytes, over several chunks of the tree.
    const prefix = Buffer.from('/registry/services/endpoints/kube-system/kube-controller-man');
    const keyArb = fc.tuple(fc.integer({ min: 0, max: prefix.length }), fc.array(fc.constantFrom(0x00, 0x2f, 0x61, 0xff), { maxLength: 4 }))
      .map(([cut, tail]) => Buffer.concat([prefix.subarray(0, cut), Buffer.from(tail)]))
      .filter((k) => k.length > 0);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(3), keyArb), { minLength: 200, maxLength: 3000 }), fc.array(keyArb, { maxLength: 50 }), (ops, probes) => {
        const tree = new KeyTree();
        const model = new Map<string, Buffer>();
        for (const [op, key] of ops) {
          const s = key.toString('hex');
          if (op !== 0) {
            // get() first, as a put does: insert() may reuse the slot it remembered.
            expect(tree.get(key)?.key).toEqual(model.get(s));
            if (!model.has(s)) {
              tree.insert(new KeyIndex(key));
              model.set(s, key);
            }
          } else {
            expect(tree.delete(key)).toBe(model.delete(s));
          }
        }
        const sorted = [...model.values()].sort(Buffer.compare);
        for (const k of sorted) expect(tree.get(Buffer.from(k))?.key).toEqual(k);
        for (const probe of probes) {
          expect(tree.get(probe)?.key).toEqual(model.get(probe.toString('hex')));
          expect(tree.cursor().seek(probe)?.key).toEqual(sorted.find((k) => Buffer.compare(k, probe) >= 0));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('stays a sorted map when inserts follow lookups of the same or of other keys (the remembered slot)', () => {
    const keyArb = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 2 }),
      fc.uint8Array({ minLength: 1, maxLength: 2 }).map((t) => new Uint8Array([...Buffer.from('a-long-shared-prefix-'), ...t])),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('get', 'put', 'putOther', 'delete'), keyArb, keyArb), { maxLength: 2500 }), (ops) => {
        const tree = new KeyTree();
        const model = new Map<string, Buffer>();
        const insert = (key: Buffer) => {
          if (model.has(key.toString('hex'))) return;
          tree.insert(new KeyIndex(Buffer.from(key)));
          model.set(key.toString('hex'), key);
        };
        for (const [op, raw, other] of ops) {
          const key = Buffer.from(raw);
          if (op === 'get') expect(tree.get(key)?.key).toEqual(model.get(key.toString('hex')));
          else if (op === 'put') {
            // the MVCC pattern: a lookup, then the insert of that key
            if (tree.get(key) === undefined) insert(key);
          } else if (op === 'putOther') {
            tree.get(key); // a miss (or hit) for one key, then an insert of another
            insert(Buffer.from(other));
          } else expect(tree.delete(key)).toBe(model.delete(key.toString('hex')));
        }
        const sorted = [...model.values()].sort(Buffer.compare);
        const seen: Buffer[] = [];
        const cur = tree.cursor();
        for (let ki = cur.first(); ki; ki = cur.next()) seen.push(ki.key);
        expect(seen).toEqual(sorted);
        expect(() => {
          const any = sorted[0];
          if (any) {
            tree.get(Buffer.from([0]));
            tree.insert(new KeyIndex(Buffer.from(any)));
          } else throw new Error('duplicate key inserted into index');
        }).toThrow(/duplicate key/);
      }),
      { numRuns: 60 },
    );
  });

  it('keeps its search indexes right when chunks empty out and the shared prefix shrinks and grows', () => {
    const tree = new KeyTree();
    const model = new Map<string, Buffer>();
    const check = () => {
      // Compared as strings, all at once: a failure prints a short diff.
      const sorted = [...model.values()].sort(Buffer.compare);
      expect(tree.size).toBe(sorted.length);
      const missing = sorted.filter((k) => tree.get(Buffer.from(k))?.key.equals(k) !== true).map((k) => k.toString());
      expect(missing).toEqual([]);
      for (const probe of [b(''), b('\x00'), b('/registry/'), b('/registry/pods/x'), b('/registry/pods/ns-0005/'), b('/s'), b('\xff')]) {
        expect(tree.get(probe)?.key.toString()).toBe(model.get(probe.toString('hex'))?.toString());
        expect(tree.cursor().seek(probe)?.key.toString()).toBe(sorted.find((k) => Buffer.compare(k, probe) >= 0)?.toString());
      }
    };
    const put = (k: Buffer) => {
      if (tree.get(k) !== undefined) return;
      tree.insert(new KeyIndex(k));
      model.set(k.toString('hex'), k);
    };
    const del = (k: Buffer) => expect([k.toString(), tree.delete(k)]).toEqual([k.toString(), model.delete(k.toString('hex'))]);
    // Thousands of keys under one long prefix (many chunks, every index on a long shared prefix).
    const pod = (i: number) => b(`/registry/pods/ns-${String(i % 97).padStart(4, '0')}/pod-${i}`);
    for (let i = 0; i < 3000; i++) put(pod(i));
    check();
    // New first and last keys outside the prefix: both index levels must shrink their prefix.
    put(b('/a'));
    put(b('/registry/services/z'));
    put(b('\x00'));
    check();
    // Empty out whole chunks (every key of the first half) and the extremes again.
    for (let i = 0; i < 1500; i++) del(pod(i));
    del(b('\x00'));
    del(b('/a'));
    check();
    for (let i = 1500; i < 3000; i += 2) del(pod(i));
    for (let i = 0; i < 600; i++) put(pod(i * 5));
    check();
  });

  it('bulkLoad builds a tree equivalent to inserting, and rejects unsorted input', () => {
    const keys = Array.from({ length: 2000 }, (_, i) => b(`key-${String(i).padStart(5, '0')}`));
    const tree = new KeyTree();
    tree.bulkLoad(keys.map((k) => new KeyIndex(k)));
    expect(tree.size).toBe(2000);
    expect(tree.get(b('key-01234'))?.key.toString()).toBe('key-01234');
    tree.insert(new KeyIndex(b('key-01234x')));
    expect(tree.cursor().seek(b('key-01234\x01'))?.key.toString()).toBe('key-01234x');
    expect(() => tree.bulkLoad([new KeyIndex(b('b')), new KeyIndex(b('a'))])).toThrow(/sorted/);
  });
});
