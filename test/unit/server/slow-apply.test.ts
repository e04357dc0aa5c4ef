import { describe, expect, it } from 'vitest';
import { RequestKind } from '../../../src/server/request.js';
import { mayApplySlowly } from '../../../src/server/state-machine.js';

const k = (s: string): Buffer => Buffer.from(s);

describe('mayApplySlowly (the leader tells followers the commit before such an apply)', () => {
  it('single-key requests are quick; anything over a range may not be', () => {
    expect(mayApplySlowly(RequestKind.Put, { key: k('a'), value: k('v') })).toBe(false);
    expect(mayApplySlowly(RequestKind.DeleteRange, { key: k('a') })).toBe(false);
    expect(mayApplySlowly(RequestKind.DeleteRange, { key: k('a'), rangeEnd: Buffer.alloc(0) })).toBe(false);
    expect(mayApplySlowly(RequestKind.DeleteRange, { key: k('a'), rangeEnd: k('b') })).toBe(true);
    expect(mayApplySlowly(RequestKind.Compact, { revision: 5 })).toBe(true);
    expect(mayApplySlowly(RequestKind.LeaseRevoke, { ID: 1 })).toBe(true);
    expect(mayApplySlowly(RequestKind.LeaseGrant, { ID: 1, TTL: 5 })).toBe(false);
  });

  it('a txn is slow when any branch, however nested, holds a ranged read or delete', () => {
    const puts = { success: [{ requestPut: { key: k('a'), value: k('v') } }], failure: [{ requestRange: { key: k('a') } }] };
    expect(mayApplySlowly(RequestKind.Txn, puts)).toBe(false);
    expect(mayApplySlowly(RequestKind.Txn, { ...puts, failure: [{ requestRange: { key: k('a'), rangeEnd: k('\0') } }] })).toBe(true);
    const nested = { success: [{ requestTxn: { failure: [{ requestDeleteRange: { key: k('a'), rangeEnd: k('z') } }] } }] };
    expect(mayApplySlowly(RequestKind.Txn, nested)).toBe(true);
  });
});
