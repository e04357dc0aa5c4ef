// Request validation that depends only on the request itself. The API layer runs it
// BEFORE proposing to Raft (as etcd's v3rpc layer does), so invalid requests never
// reach the log. Rules and their order follow etcd 3.4 (etcdserver/api/v3rpc/key.go).

import {
  ErrDuplicateKey,
  ErrEmptyKey,
  ErrKeyNotFound,
  ErrLeaseProvided,
  ErrTooManyOps,
  ErrValueProvided,
} from './errors.js';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './types.js';

/** etcd's default --max-txn-ops. */
export const DEFAULT_MAX_TXN_OPS = 128;

export function validateRange(req: RangeRequest): void {
  if (req.key.length === 0) throw new ErrEmptyKey();
}

export function validatePut(req: PutRequest): void {
  if (req.key.length === 0) throw new ErrEmptyKey();
  if (req.ignoreValue && req.value !== undefined && req.value.length !== 0) throw new ErrValueProvided();
  if (req.ignoreLease && req.lease !== undefined && req.lease !== 0n) throw new ErrLeaseProvided();
}

export function validateDeleteRange(req: DeleteRangeRequest): void {
  if (req.key.length === 0) throw new ErrEmptyKey();
}

/**
 * Full txn validation: op count limits and per-op checks (recursively), then the
 * duplicate-key rule on each branch. Throws the first violation found.
 */
export function validateTxn(req: TxnRequest, maxTxnOps: number = DEFAULT_MAX_TXN_OPS): void {
  checkTxnRequest(req, maxTxnOps);
  // Overlap checks come after the cheap checks so an oversized txn cannot cost quadratic time.
  checkIntervals(req.success ?? []);
  checkIntervals(req.failure ?? []);
}

/**
 * etcd serves a txn without Raft when every op of both branches is a range. Note a
 * nested txn (even a read-only one) makes the txn a write, as in etcd.
 */
export function isTxnReadOnly(req: TxnRequest): boolean {
  for (const op of req.success ?? []) if (op.requestRange === undefined) return false;
  for (const op of req.failure ?? []) if (op.requestRange === undefined) return false;
  return true;
}

function checkTxnRequest(req: TxnRequest, maxTxnOps: number): void {
  const compares = req.compare ?? [];
  const success = req.success ?? [];
  const failure = req.failure ?? [];
  const opCount = Math.max(compares.length, success.length, failure.length);
  if (opCount > maxTxnOps) throw new ErrTooManyOps();
  for (const c of compares) if (c.key.length === 0) throw new ErrEmptyKey();
  // Like etcd, a nested txn is checked against what is left of the budget at this level.
  for (const op of success) checkRequestOp(op, maxTxnOps - opCount);
  for (const op of failure) checkRequestOp(op, maxTxnOps - opCount);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  if (op.requestRange !== undefined) validateRange(op.requestRange);
  else if (op.requestPut !== undefined) validatePut(op.requestPut);
  else if (op.requestDeleteRange !== undefined) validateDeleteRange(op.requestDeleteRange);
  else if (op.requestTxn !== undefined) checkTxnRequest(op.requestTxn, maxTxnOps);
  // etcd 3.4 answers an empty RequestOp with "key not found".
  else throw new ErrKeyNotFound();
}

/**
 * A delete's key set: a single key, or [begin, end). Keys are latin1 strings, whose
 * ordering equals raw byte ordering.
 */
interface DelInterval {
  begin: string;
  /** null: the single key `begin`. */
  end: string | null;
}

function deleteCovers(d: DelInterval, key: string): boolean {
  if (d.end === null) return key === d.begin;
  // etcd builds [key, range_end) verbatim, so the "\0" (to-the-end) convention yields
  // an interval that covers nothing: a from-key delete does not conflict with puts in
  // etcd (etcd-io/etcd#22445). Reproduced on purpose for wire-level compatibility.
  return d.begin <= key && key < d.end;
}

function anyCovers(dels: readonly DelInterval[], key: string): boolean {
  for (const d of dels) if (deleteCovers(d, key)) return true;
  return false;
}

/**
 * etcd's checkIntervals: within one branch, no key may be put twice, and no put may
 * fall inside a delete of the same level or of an enclosing level. Sibling nested
 * txns are checked against each other; a nested txn's then/else branches may put the
 * same key (only one runs). Returns the branch's puts and deletes for the parent.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: DelInterval[] } {
  const dels: DelInterval[] = [];
  for (const op of ops) {
    const d = op.requestDeleteRange;
    if (d === undefined) continue;
    const begin = d.key.toString('latin1');
    dels.push({
      begin,
      end: d.rangeEnd !== undefined && d.rangeEnd.length !== 0 ? d.rangeEnd.toString('latin1') : null,
    });
  }

  const puts = new Set<string>();
  for (const op of ops) {
    const t = op.requestTxn;
    if (t === undefined) continue;
    const thenSide = checkIntervals(t.success ?? []);
    const elseSide = checkIntervals(t.failure ?? []);
    for (const k of thenSide.puts) {
      if (puts.has(k) || anyCovers(dels, k)) throw new ErrDuplicateKey();
      puts.add(k);
    }
    for (const k of elseSide.puts) {
      if (puts.has(k) && !thenSide.puts.has(k)) throw new ErrDuplicateKey();
      if (anyCovers(dels, k)) throw new ErrDuplicateKey();
      puts.add(k);
    }
    // Child deletes join this level only after the child's own puts were checked, so a
    // later sibling's puts are checked against them but earlier siblings' are not (as in etcd).
    for (const d of thenSide.dels) dels.push(d);
    for (const d of elseSide.dels) dels.push(d);
  }

  for (const op of ops) {
    const p = op.requestPut;
    if (p === undefined) continue;
    const k = p.key.toString('latin1');
    if (puts.has(k) || anyCovers(dels, k)) throw new ErrDuplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}
