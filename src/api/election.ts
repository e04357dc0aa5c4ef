import * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { big, bytes, num, type Msg } from '../server/pb.js';
import { serviceDefinition, unary, grpcError } from './grpc.js';
import {
  CMP_CREATE, CMP_EQUAL, EVENT_DELETE, LocalClient, leaseField, prefixEnd, type InProcessChannel,
} from './inprocess.js';

// v3election: leader election as etcd serves it, i.e. clientv3/concurrency's Election recipe
// run inside the server over this member's own KV/Lease/Watch (through the in-process
// channel, so auth and validation apply as for any client).
//   candidate key:  <name>/<lease ID in hex>, attached to the candidate's lease
//   leader:         the key under <name>/ with the lowest create revision
//   Campaign:       create the key (or reuse it), then wait until every key created
//                   before it has been deleted
// Like etcd, every error leaves these services with gRPC code UNKNOWN and the message.

/** What the recipes use of a grpc-js server call (unary or streaming). */
type SurfaceCall = Pick<grpc.ServerUnaryCall<Msg, Msg>, 'metadata' | 'getPeer' | 'getAuthContext' | 'on'>;

/** A session without a lease gets one with clientv3/concurrency's default TTL. */
export const DEFAULT_SESSION_TTL_SEC = 60;
const SLASH = Buffer.from('/');

export const ErrElectionNotLeader = 'election: not leader';
export const ErrElectionNoLeader = 'election: no leader';
export const ErrMissingLeaderKey = '"leader" field must be provided';

/** An error that reaches the client unchanged with code UNKNOWN (etcd's recipes return plain Go errors). */
export function recipeError(e: unknown): Error {
  const msg = typeof (e as { details?: unknown })?.details === 'string' ? (e as { details: string }).details : e instanceof Error ? e.message : String(e);
  return Object.assign(new Error(msg), { code: grpc.status.UNKNOWN, grpcMapped: true });
}

/** The caller's context for the recipes: its metadata (token) and cancellation. */
export function callerClient(channel: InProcessChannel, call: SurfaceCall, signal?: AbortSignal): LocalClient {
  return new LocalClient(channel, { metadata: call.metadata.clone(), peer: call.getPeer(), authContext: call.getAuthContext(), signal });
}

/** An AbortSignal that fires when the client cancels the call (or its deadline passes). */
export function cancellation(call: SurfaceCall): AbortController {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  return ac;
}

/** concurrency.NewSession: the given lease, or a fresh one with the default TTL. */
export async function sessionLease(client: LocalClient, lease: bigint): Promise<bigint> {
  return lease === 0n ? client.leaseGrant(DEFAULT_SESSION_TTL_SEC) : lease;
}

export function ownKey(prefix: Buffer, lease: bigint): Buffer {
  return Buffer.concat([prefix, Buffer.from(lease.toString(16))]);
}

function createRevIs(key: Buffer, rev: number): Msg {
  return { key, target: CMP_CREATE, result: CMP_EQUAL, create_revision: rev };
}

/** Replaces the leader's value if it still holds the key it was elected with. */
async function proclaim(client: LocalClient, key: Buffer, rev: number, lease: bigint, value: Buffer): Promise<Msg> {
  const resp = await client.txn({
    compare: [createRevIs(key, rev)],
    success: [{ request_put: { key, value, lease: leaseField(lease) } }],
  });
  if (!resp.succeeded) throw new Error(ErrElectionNotLeader);
  return resp.header;
}

/** Deletes the leader key if it is still the one elected at `rev`; answers the txn's header. */
async function resign(client: LocalClient, key: Buffer, rev: number): Promise<Msg> {
  const resp = await client.txn({ compare: [createRevIs(key, rev)], success: [{ request_delete_range: { key } }] });
  return resp.header;
}

async function campaign(client: LocalClient, signal: AbortSignal, req: Msg): Promise<Msg> {
  const name = bytes(req.name);
  const value = bytes(req.value);
  const prefix = Buffer.concat([name, SLASH]);
  const lease = await sessionLease(client, big(req.lease));
  const key = ownKey(prefix, lease);
  const resp = await client.txn({
    compare: [createRevIs(key, 0)],
    success: [{ request_put: { key, value, lease: leaseField(lease) } }],
    failure: [{ request_range: { key } }],
  });
  let leaderRev = num(resp.header.revision);
  if (!resp.succeeded) {
    // Already a candidate with this lease: keep the place in line, update the value.
    const kv = resp.responses[0].response_range.kvs[0];
    leaderRev = num(kv.create_revision);
    if (!bytes(kv.value).equals(value)) await proclaim(client, key, leaderRev, lease, value);
  }
  try {
    await client.waitDeletes(prefix, leaderRev - 1);
  } catch (e) {
    // A caller that gave up leaves the line; other failures keep the key (etcd does the same).
    if (signal.aborted) await resign(client.detached(), key, leaderRev).catch(() => {});
    throw e;
  }
  return { header: resp.header, leader: { name, key, rev: leaderRev, lease: leaseField(lease) } };
}

async function leader(client: LocalClient, req: Msg): Promise<Msg> {
  const resp = await client.firstCreated(Buffer.concat([bytes(req.name), SLASH]));
  const kvs = (resp.kvs ?? []) as Msg[];
  if (kvs.length === 0) throw new Error(ErrElectionNoLeader);
  return { header: resp.header, kv: kvs[0] };
}

/** The first key put under `prefix` from `revision` on (nothing elected yet); null if the watch ends. */
async function firstPut(client: LocalClient, prefix: Buffer, revision: number): Promise<{ header: Msg; kv: Msg } | null> {
  const cursor = client.watch({ key: prefix, range_end: prefixEnd(prefix), start_revision: revision });
  try {
    for (;;) {
      const resp = await cursor.next();
      if (!resp || resp.canceled) return null;
      const put = ((resp.events ?? []) as Msg[]).find((ev) => (ev.type ?? 0) !== EVENT_DELETE);
      if (put) return { header: { ...resp.header, revision: put.kv.mod_revision }, kv: put.kv };
    }
  } finally {
    cursor.close();
  }
}

/** Streams the leader key's new values until it is deleted (true) or the watch ends (false). */
async function followLeader(client: LocalClient, key: Buffer, fromRev: number, send: (m: Msg) => void): Promise<boolean> {
  const cursor = client.watch({ key, start_revision: fromRev });
  try {
    for (;;) {
      const resp = await cursor.next();
      if (!resp) return false;
      for (const ev of (resp.events ?? []) as Msg[]) {
        if ((ev.type ?? 0) === EVENT_DELETE) return true;
        send({ header: resp.header, kv: ev.kv });
      }
    }
  } finally {
    cursor.close();
  }
}

/** Sends the current leader, then every change of leader or of its value, until cancelled. */
async function observe(client: LocalClient, signal: AbortSignal, name: Buffer, send: (m: Msg) => void): Promise<void> {
  const prefix = Buffer.concat([name, SLASH]);
  while (!signal.aborted) {
    let resp: Msg;
    try {
      resp = await client.firstCreated(prefix);
    } catch {
      return;
    }
    const kvs = (resp.kvs ?? []) as Msg[];
    const current = kvs.length > 0 ? { header: resp.header, kv: kvs[0] } : await firstPut(client, prefix, num(resp.header.revision));
    if (!current || signal.aborted) return;
    send(current);
    if (!(await followLeader(client, bytes(current.kv.key), num(current.header.revision) + 1, send))) return;
  }
}

export function electionService(server: EtcdServer, channel: InProcessChannel): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  const m = server.metrics;
  const svc = 'v3electionpb.Election';

  /** Runs a recipe with the caller's context; errors become etcd's UNKNOWN-coded ones. */
  function recipe(fn: (client: LocalClient, signal: AbortSignal, req: Msg) => Promise<Msg>) {
    return async (req: Msg, call: grpc.ServerUnaryCall<Msg, Msg>): Promise<Msg> => {
      const ac = cancellation(call);
      try {
        return await fn(callerClient(channel, call, ac.signal), ac.signal, req);
      } catch (e) {
        throw recipeError(e);
      }
    };
  }

  const observeCall: grpc.handleServerStreamingCall<Msg, Msg> = (call) => {
    const labels = { grpc_type: 'server_stream', grpc_service: svc, grpc_method: 'Observe' };
    m.grpcStarted.inc(labels);
    m.grpcMsgReceived.inc(labels);
    const ac = cancellation(call);
    const send = (msg: Msg) => {
      m.grpcMsgSent.inc(labels);
      call.write(msg);
    };
    call.on('error', () => ac.abort());
    observe(callerClient(channel, call, ac.signal), ac.signal, bytes(call.request.name), send).then(
      () => {
        m.grpcHandled.inc({ ...labels, grpc_code: ac.signal.aborted ? 'Canceled' : 'OK' });
        if (!ac.signal.aborted) call.end();
      },
      (e: unknown) => {
        m.grpcHandled.inc({ ...labels, grpc_code: 'Unknown' });
        call.emit('error', grpcError(recipeError(e)));
      },
    );
  };

  return {
    def: serviceDefinition(svc),
    impl: {
      Campaign: unary(m, svc, 'Campaign', recipe(campaign)),
      Proclaim: unary(m, svc, 'Proclaim', recipe(async (client, _signal, req) => {
        if (!req.leader) throw new Error(ErrMissingLeaderKey);
        const l = req.leader;
        const lease = await sessionLease(client, big(l.lease));
        return { header: await proclaim(client, bytes(l.key), num(l.rev), lease, bytes(req.value)) };
      })),
      Leader: unary(m, svc, 'Leader', recipe((client, _signal, req) => leader(client, req))),
      Observe: observeCall,
      Resign: unary(m, svc, 'Resign', recipe(async (client, _signal, req) => {
        if (!req.leader) throw new Error(ErrMissingLeaderKey);
        const l = req.leader;
        await sessionLease(client, big(l.lease)); // etcd opens a session here too (granting a lease if none is given)
        return { header: await resign(client, bytes(l.key), num(l.rev)) };
      })),
    },
  };
}
