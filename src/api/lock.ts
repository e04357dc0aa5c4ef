import type * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { big, bytes, num, type Msg } from '../server/pb.js';
import { serviceDefinition, unary } from './grpc.js';
import { CMP_CREATE, CMP_EQUAL, firstCreatedRequest, leaseField, type InProcessChannel } from './inprocess.js';
import { callerClient, cancellation, ownKey, recipeError, sessionLease } from './election.js';

// v3lock: a distributed mutex as etcd serves it, i.e. clientv3/concurrency's Mutex recipe
// run inside the server over this member's own KV/Lease/Watch.
//   waiter key:  <name>/<lease ID in hex>, attached to the caller's lease
//   owner:       the waiter key with the lowest create revision
//   Lock:        enqueue (or find the caller's key), then wait until every key created
//                before it has been deleted; the answer is the key, which Unlock deletes.
// A waiter that gives up (cancelled call) or whose wait fails removes its key. Like etcd
// 3.5, a key that vanished while waiting (its lease expired) is reported, not granted.

export const ErrSessionExpired = 'mutex: session is expired';
const SLASH = Buffer.from('/');

export function lockService(server: EtcdServer, channel: InProcessChannel): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  const m = server.metrics;
  const svc = 'v3lockpb.Lock';

  async function lock(req: Msg, call: grpc.ServerUnaryCall<Msg, Msg>): Promise<Msg> {
    const ac = cancellation(call);
    const client = callerClient(channel, call, ac.signal);
    try {
      const prefix = Buffer.concat([bytes(req.name), SLASH]);
      const lease = await sessionLease(client, big(req.lease));
      const key = ownKey(prefix, lease);
      const owner = { request_range: firstCreatedRequest(prefix) };
      const resp = await client.txn({
        compare: [{ key, target: CMP_CREATE, result: CMP_EQUAL, create_revision: 0 }],
        success: [{ request_put: { key, value: Buffer.alloc(0), lease: leaseField(lease) } }, owner],
        // The caller already waits or holds the lock with this lease: reuse its key.
        failure: [{ request_range: { key } }, owner],
      });
      const myRev = resp.succeeded ? num(resp.header.revision) : num(resp.responses[0].response_range.kvs[0].create_revision);
      const ownerKvs = (resp.responses[1].response_range.kvs ?? []) as Msg[];
      const release = () => client.detached().deleteRange({ key }).catch(() => {});
      if (ownerKvs.length === 0 || num(ownerKvs[0].create_revision) === myRev) {
        // Acquired at once. A caller that went away meanwhile is not left holding a lock it
        // just created (a key it already had, with the same lease, stays as it was).
        if (ac.signal.aborted && resp.succeeded) {
          await release();
          throw new Error('context canceled');
        }
        return { header: resp.header, key };
      }
      try {
        const header = await client.waitDeletes(prefix, myRev - 1);
        const mine = await client.range({ key });
        if (((mine.kvs ?? []) as Msg[]).length === 0) throw new Error(ErrSessionExpired);
        return { header, key };
      } catch (e) {
        // Gave up or failed while queued: leave the queue (etcd unlocks here too).
        await release();
        throw e;
      }
    } catch (e) {
      throw recipeError(e);
    }
  }

  async function unlock(req: Msg, call: grpc.ServerUnaryCall<Msg, Msg>): Promise<Msg> {
    try {
      const resp = await callerClient(channel, call).deleteRange({ key: bytes(req.key) });
      return { header: resp.header };
    } catch (e) {
      throw recipeError(e);
    }
  }

  return {
    def: serviceDefinition(svc),
    impl: {
      Lock: unary(m, svc, 'Lock', lock),
      Unlock: unary(m, svc, 'Unlock', unlock),
    },
  };
}
