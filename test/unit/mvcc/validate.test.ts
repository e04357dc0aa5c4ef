import { describe, expect, it } from 'vitest';
import {
  ErrDuplicateKey,
  ErrEmptyKey,
  ErrKeyNotFound,
  ErrLeaseProvided,
  ErrTooManyOps,
  ErrValueProvided,
} from '../../../src/mvcc/errors.js';
import { CompareResult, CompareTarget, type RequestOp, type TxnRequest } from '../../../src/mvcc/types.js';
import {
  isTxnReadOnly,
  validateDeleteRange,
  validatePut,
  validateRange,
  validateTxn,
} from '../../../src/mvcc/validate.js';

const b = (s: string): Buffer => Buffer.from(s);
const P = (key: string): RequestOp => ({ requestPut: { key: b(key), value: b('v') } });
const D = (key: string, end?: string): RequestOp => ({
  requestDeleteRange: { key: b(key), ...(end !== undefined ? { rangeEnd: b(end) } : {}) },
});
const R = (key: string): RequestOp => ({ requestRange: { key: b(key) } });
const T = (success: RequestOp[], failure: RequestOp[] = []): RequestOp => ({ requestTxn: { success, failure } });
const ok = (txn: TxnRequest, max = 128) => expect(() => validateTxn(txn, max)).not.toThrow();
const bad = (txn: TxnRequest, err: new () => Error, max = 128) => expect(() => validateTxn(txn, max)).toThrow(err);

describe('single request validation', () => {
  it('rejects empty keys and contradictory ignore_* flags', () => {
    expect(() => validateRange({ key: b('') })).toThrow(ErrEmptyKey);
    expect(() => validateDeleteRange({ key: b('') })).toThrow(ErrEmptyKey);
    expect(() => validatePut({ key: b('') })).toThrow(ErrEmptyKey);
    expect(() => validatePut({ key: b('k'), ignoreValue: true, value: b('x') })).toThrow(ErrValueProvided);
    expect(() => validatePut({ key: b('k'), ignoreLease: true, lease: 5n })).toThrow(ErrLeaseProvided);
    expect(() => validatePut({ key: b('k'), ignoreValue: true, value: b(''), ignoreLease: true, lease: 0n })).not.toThrow();
  });

  it('errors carry etcd\'s client-visible messages and gRPC codes', () => {
    const e = new ErrDuplicateKey();
    expect(e.message).toBe('duplicate key given in txn request');
    expect(e.grpcMessage).toBe('etcdserver: duplicate key given in txn request');
    expect(e.grpcCode).toBe(3);
    expect(e.name).toBe('ErrDuplicateKey');
  });
});

describe('validateTxn: op limits and per-op checks', () => {
  it('limits compares/success/failure each to maxTxnOps', () => {
    const puts = (n: number) => Array.from({ length: n }, (_, i) => P(`k${i}`));
    ok({ success: puts(3), failure: puts(3) }, 3);
    bad({ success: puts(4) }, ErrTooManyOps, 3);
    bad({ failure: puts(4) }, ErrTooManyOps, 3);
    const cmps = Array.from({ length: 4 }, () => ({ key: b('a'), target: CompareTarget.VERSION, result: CompareResult.EQUAL }));
    bad({ compare: cmps }, ErrTooManyOps, 3);
  });

  it('a nested txn gets the budget left at its level (etcd: maxTxnOps - opCount)', () => {
    // outer uses 2 of 4, so the nested txn may have at most 2
    ok({ success: [P('a'), T([P('b'), P('c')])] }, 4);
    bad({ success: [P('a'), T([P('b'), P('c'), P('d')])] }, ErrTooManyOps, 4);
  });

  it('checks compare keys, nested ops, and rejects an empty RequestOp with "key not found"', () => {
    bad({ compare: [{ key: b(''), target: CompareTarget.VALUE, result: CompareResult.EQUAL }] }, ErrEmptyKey);
    bad({ success: [T([{ requestPut: { key: b('') } }])] }, ErrEmptyKey);
    bad({ failure: [{ requestPut: { key: b('k'), ignoreValue: true, value: b('v') } }] }, ErrValueProvided);
    bad({ success: [{}] }, ErrKeyNotFound);
  });
});

describe('validateTxn: duplicate key rule (etcd checkIntervals)', () => {
  it('rejects two puts of one key, and a put inside a delete of the same branch, in any order', () => {
    bad({ success: [P('a'), P('a')] }, ErrDuplicateKey);
    bad({ success: [P('a'), D('a')] }, ErrDuplicateKey);
    bad({ success: [D('a'), P('a')] }, ErrDuplicateKey);
    bad({ success: [D('a', 'c'), P('b')] }, ErrDuplicateKey);
    bad({ failure: [P('b'), D('a', 'c')] }, ErrDuplicateKey);
  });

  it('allows distinct keys, deletes overlapping deletes, ranges of written keys, and keys outside the delete', () => {
    ok({ success: [P('a'), P('b'), R('a'), D('c', 'e'), D('d', 'f')] });
    ok({ success: [D('a', 'c'), P('c'), P('0')] }); // range end is exclusive
    ok({ success: [P('a')], failure: [P('a')] }); // different branches never both run
  });

  it('from-key deletes (range_end "\\0") do not conflict with puts, as in etcd', () => {
    ok({ success: [D('a', '\0'), P('b')] });
    ok({ success: [D('\0', '\0'), P('b')] });
  });

  it('checks nested txns against the enclosing level and against earlier siblings', () => {
    bad({ success: [P('a'), T([P('a')])] }, ErrDuplicateKey);
    bad({ success: [D('a', 'z'), T([], [P('m')])] }, ErrDuplicateKey);
    bad({ success: [T([P('a')]), T([P('a')])] }, ErrDuplicateKey);
    bad({ success: [T([D('a', 'z')]), T([P('m')])] }, ErrDuplicateKey); // earlier sibling's delete
    bad({ success: [T([T([P('q')])]), P('q')] }, ErrDuplicateKey); // deep nesting
    bad({ success: [T([P('a')], [P('b')]), T([], [P('b')])] }, ErrDuplicateKey);
  });

  it('allows the same key in the then and else branches of one nested txn, and the etcd sibling-order gap', () => {
    ok({ success: [T([P('a')], [P('a')])] });
    // a later sibling's delete is not checked against an earlier sibling's put (etcd behavior)
    ok({ success: [T([P('m')]), T([D('a', 'z')])] });
    bad({ success: [T([P('m')]), T([D('a', 'z')]), P('m')] }, ErrDuplicateKey);
  });

  it('checks each top-level branch separately', () => {
    ok({ success: [P('a'), D('b')], failure: [P('b'), D('a')] });
    bad({ success: [P('a')], failure: [P('b'), P('b')] }, ErrDuplicateKey);
  });
});

describe('isTxnReadOnly', () => {
  it('is true only when every op in both branches is a range (a nested txn counts as a write)', () => {
    expect(isTxnReadOnly({})).toBe(true);
    expect(isTxnReadOnly({ success: [R('a')], failure: [R('b')] })).toBe(true);
    expect(isTxnReadOnly({ success: [R('a')], failure: [P('b')] })).toBe(false);
    expect(isTxnReadOnly({ success: [T([R('a')])] })).toBe(false);
    expect(isTxnReadOnly({ success: [{}] })).toBe(false);
  });
});
