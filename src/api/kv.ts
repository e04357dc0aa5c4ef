import type * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { RequestKind } from '../server/request.js';
import type { Msg } from '../server/pb.js';
import { serviceDefinition, unary, RAW } from './grpc.js';
import { checkDeleteRange, checkPut, checkRange, checkTxn, isTxnReadOnly, isTxnSerializable } from './validate.js';
import { Errors } from '../server/errors.js';

// KV service: validate, then either read locally (serializable, or after ReadIndex for
// linearizable) or propose through Raft and answer with what the apply produced.

export function kvService(server: EtcdServer): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  const m = server.metrics;
  const sm = server.stateMachine;
  const maxBytes = server.cfg.maxRequestBytes;
  const maxTxnOps = server.cfg.maxTxnOps;

  function rawOf(req: Msg): Buffer {
    const raw = req[RAW] as Buffer;
    if (raw.length > maxBytes) throw Errors.requestTooLarge();
    return raw;
  }

  async function range(req: Msg): Promise<Msg> {
    checkRange(req);
    if (!req.serializable) await server.linearizableRead();
    m.rangeTotal.inc();
    const res = await sm.range(req);
    res.header = sm.header();
    return res;
  }

  async function put(req: Msg): Promise<Msg> {
    checkPut(req);
    const raw = rawOf(req);
    sm.checkQuota(raw.length);
    const res = (await server.propose(RequestKind.Put, raw, req)) as Msg;
    m.putTotal.inc();
    return res;
  }

  async function deleteRange(req: Msg): Promise<Msg> {
    checkDeleteRange(req);
    const res = (await server.propose(RequestKind.DeleteRange, rawOf(req), req)) as Msg;
    m.deleteTotal.inc();
    return res;
  }

  async function txn(req: Msg): Promise<Msg> {
    checkTxn(req, maxTxnOps);
    m.txnTotal.inc();
    if (isTxnReadOnly(req)) {
      // A read-only txn needs no consensus round, like a Range (etcd does the same).
      if (!isTxnSerializable(req)) await server.linearizableRead();
      const res = await sm.readOnlyTxn(req);
      res.header = sm.header();
      return res;
    }
    const raw = rawOf(req);
    sm.checkQuota(raw.length);
    return (await server.propose(RequestKind.Txn, raw, req)) as Msg;
  }

  async function compact(req: Msg): Promise<Msg> {
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
