import type * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { RequestKind } from '../server/request.js';
import type { Msg } from '../server/pb.js';
import { counterCell } from '../server/metrics.js';
import { serviceDefinition, unary, RAW } from './grpc.js';
import { Errors } from '../server/errors.js';
import { validateDeleteRange, validatePut, validateRange, validateTxn, isTxnReadOnly } from '../mvcc/validate.js';
import type { TxnRequest } from '../mvcc/types.js';
import * as convert from '../server/convert.js';
import type { AuthGate, AuthCall } from '../auth/gate.js';
import { txnHasPuts } from '../server/state-machine.js';

/** etcd serves a read-only txn serializably only when every range in it asks for that. */
function isTxnSerializable(t: TxnRequest): boolean {
  for (const op of [...(t.success ?? []), ...(t.failure ?? [])]) if (!op.requestRange?.serializable) return false;
  return true;
}

// KV service: validate, then either read locally (serializable, or after ReadIndex for
// linearizable) or propose through Raft and answer with what the apply produced.

export function kvService(server: EtcdServer, auth: AuthGate): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  const m = server.metrics;
  const rangeTotal = counterCell(m.rangeTotal);
  const putTotal = counterCell(m.putTotal);
  const deleteTotal = counterCell(m.deleteTotal);
  const txnTotal = counterCell(m.txnTotal);
  const sm = server.stateMachine;
  const maxBytes = server.cfg.maxRequestBytes;
  const maxTxnOps = server.cfg.maxTxnOps;

  /** A learner serves only serializable reads (etcd: "rpc not supported for learner"). */
  function notOnLearner(): void {
    if (server.isLearner) throw Errors.learnerNotSupported();
  }

  function rawOf(req: Msg): Buffer {
    const raw = req[RAW] as Buffer;
    if (raw.length > maxBytes) throw Errors.requestTooLarge();
    return raw;
  }

  async function range(req: Msg, call: AuthCall): Promise<Msg> {
    const r = convert.rangeFromPb(req);
    validateRange(r);
    if (!r.serializable) notOnLearner();
    await auth.check(call, { op: 'range', key: r.key, rangeEnd: r.rangeEnd });
    if (!r.serializable) await server.linearizableRead();
    rangeTotal.inc();
    return sm.range(r);
  }

  async function put(req: Msg, call: AuthCall): Promise<Msg> {
    const r = convert.putFromPb(req);
    validatePut(r);
    notOnLearner();
    await auth.check(call, { op: 'put', key: r.key, prevKv: r.prevKv, lease: r.lease });
    const raw = rawOf(req);
    sm.checkQuota(raw.length);
    const res = (await server.propose(RequestKind.Put, raw, r)) as Msg;
    putTotal.inc();
    return res;
  }

  async function deleteRange(req: Msg, call: AuthCall): Promise<Msg> {
    const r = convert.deleteFromPb(req);
    validateDeleteRange(r);
    notOnLearner();
    await auth.check(call, { op: 'deleteRange', key: r.key, rangeEnd: r.rangeEnd, prevKv: r.prevKv });
    const res = (await server.propose(RequestKind.DeleteRange, rawOf(req), r)) as Msg;
    deleteTotal.inc();
    return res;
  }

  async function txn(req: Msg, call: AuthCall): Promise<Msg> {
    const t = convert.txnFromPb(req);
    validateTxn(t, maxTxnOps);
    notOnLearner();
    await auth.check(call, { op: 'txn', txn: t });
    txnTotal.inc();
    if (isTxnReadOnly(t)) {
      // A read-only txn needs no consensus round, like a Range (etcd does the same).
      if (!isTxnSerializable(t)) await server.linearizableRead();
      return sm.readOnlyTxn(t);
    }
    const raw = rawOf(req);
    // Only a txn that can add data counts against the quota: deleting must work when out of space.
    if (txnHasPuts(t)) sm.checkQuota(raw.length);
    return (await server.propose(RequestKind.Txn, raw, t)) as Msg;
  }

  async function compact(req: Msg, call: AuthCall): Promise<Msg> {
    notOnLearner();
    await auth.check(call, { op: 'admin' });
    const res = (await server.propose(RequestKind.Compact, rawOf(req), req)) as Msg & { done?: Promise<void> };
    if (req.physical && res.done) await res.done;
    return { header: res.header };
  }

  const svc = 'etcdserverpb.KV';
  return {
    def: serviceDefinition(svc),
    impl: {
      Range: unary(m, svc, 'Range', range),
      Put: unary(m, svc, 'Put', put),
      DeleteRange: unary(m, svc, 'DeleteRange', deleteRange),
      Txn: unary(m, svc, 'Txn', txn),
      Compact: unary(m, svc, 'Compact', compact),
    },
  };
}
