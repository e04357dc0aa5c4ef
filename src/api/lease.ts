import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { EtcdServer } from '../server/server.js';
import { RequestKind, encodePayload } from '../server/request.js';
import { big, toLong, type Msg } from '../server/pb.js';
import { Errors } from '../server/errors.js';
import { serviceDefinition, unary, grpcError, RAW } from './grpc.js';
import { MAX_LEASE_TTL_SEC } from '../lease/lessor.js';
import type { AuthGate, AuthCall } from '../auth/gate.js';

// Lease service. Grant and revoke go through Raft; keep-alive and time-to-live are
// answered by the leader, which alone tracks deadlines.

/** Keep-alive streams are bounded: a client that never reads its responses is cut off. */
const MAX_PENDING_KEEPALIVE_RESPONSES = 1024;

function newLeaseId(): bigint {
  // positive int64, never 0 (0 asks the server to choose)
  const id = randomBytes(8).readBigUInt64BE() & 0x7fffffffffffffffn;
  return id === 0n ? 1n : id;
}

export function leaseService(server: EtcdServer, auth: AuthGate): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  const m = server.metrics;
  const sm = server.stateMachine;
  const svc = 'etcdserverpb.Lease';

  async function grant(req: Msg): Promise<Msg> {
    const ttl = Number(req.TTL ?? 0);
    if (ttl > MAX_LEASE_TTL_SEC) throw Errors.leaseTtlTooLarge();
    let payload = req[RAW] as Buffer;
    let msg = req;
    if (big(req.ID) === 0n) {
      let id = newLeaseId();
      while (sm.lessor.exists(id)) id = newLeaseId();
      msg = { ID: toLong(id, false), TTL: ttl };
      payload = Buffer.from(encodePayload(RequestKind.LeaseGrant, msg));
    }
    // A lease is stored in the backend too: refused like a put when out of space (etcd's quota on LeaseGrant).
    sm.checkQuota(payload.length);
    return (await server.propose(RequestKind.LeaseGrant, payload, msg)) as Msg;
  }

  async function revoke(req: Msg, call: AuthCall): Promise<Msg> {
    // Revoking deletes the attached keys: write permission on each of them.
    await auth.check(call, { op: 'leaseRevoke', id: big(req.ID) });
    if (!sm.lessor.exists(big(req.ID))) throw Errors.leaseNotFound();
    return (await server.propose(RequestKind.LeaseRevoke, req[RAW] as Buffer, req)) as Msg;
  }

  async function timeToLive(req: Msg, call: AuthCall): Promise<Msg> {
    await server.linearizableRead();
    const id = big(req.ID);
    // The answer can list the attached keys: read permission on each of them.
    await auth.check(call, { op: 'leaseTimeToLive', id });
    const lease = sm.lessor.get(id);
    if (!lease) return { header: sm.header(), ID: req.ID, TTL: -1 };
    return {
      header: sm.header(),
      ID: req.ID,
      TTL: await server.leaseRemainingSec(id),
      grantedTTL: lease.ttlSec,
      keys: req.keys ? [...lease.keys].map((k) => Buffer.from(k, 'latin1')) : [],
    };
  }

  async function leases(): Promise<Msg> {
    await server.linearizableRead();
    return { header: sm.header(), leases: sm.lessor.ids().map((id) => ({ ID: toLong(id, false) })) };
  }

  const keepAlive: grpc.handleBidiStreamingCall<Msg, Msg> = (call) => {
    const labels = { grpc_type: 'bidi_stream', grpc_service: svc, grpc_method: 'LeaseKeepAlive' };
    m.grpcStarted.inc(labels);
    // The client may half-close right after its last request: answer every pending renewal first.
    let pending = 0;
    let clientDone = false;
    let finished = false;
    const finishIfDone = () => {
      if (!clientDone || pending > 0 || finished) return;
      finished = true;
      m.grpcHandled.inc({ ...labels, grpc_code: 'OK' });
      call.end();
    };
    call.on('data', (req: Msg) => {
      m.grpcMsgReceived.inc(labels);
      if (call.writableLength > MAX_PENDING_KEEPALIVE_RESPONSES || pending > MAX_PENDING_KEEPALIVE_RESPONSES) {
        finished = true;
        call.destroy(grpcError(Errors.tooManyRequests()));
        return;
      }
      pending++;
      server.renewLease(big(req.ID)).then(
        (ttl) => {
          pending--;
          if (finished) return;
          m.grpcMsgSent.inc(labels);
          call.write({ header: sm.header(), ID: req.ID, TTL: ttl });
          finishIfDone();
        },
        (e: Error) => {
          pending--;
          if (finished) return;
          finished = true;
          call.destroy(grpcError(e));
        },
      );
    });
    call.on('end', () => {
      clientDone = true;
      finishIfDone();
    });
    call.on('error', () => {});
  };

  return {
    def: serviceDefinition(svc),
    impl: {
      LeaseGrant: unary(m, svc, 'LeaseGrant', grant),
      LeaseRevoke: unary(m, svc, 'LeaseRevoke', revoke),
      LeaseTimeToLive: unary(m, svc, 'LeaseTimeToLive', timeToLive),
      LeaseLeases: unary(m, svc, 'LeaseLeases', leases),
      LeaseKeepAlive: keepAlive,
    },
  };
}
