import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import type { EtcdServer } from '../server/server.js';
import { RequestKind } from '../server/request.js';
import { big, toLong, type Msg } from '../server/pb.js';
import { Errors } from '../server/errors.js';
import { serviceDefinition, unary, RAW, grpcError, unimplemented } from './grpc.js';
import type { AuthGate, AuthCall } from '../auth/gate.js';
import { etcdClusterVersion } from '../cli/config.js';

// Maintenance service: Status, Alarm, Defragment, Hash, HashKV, MoveLeader, Snapshot.

export function maintenanceService(server: EtcdServer, auth: AuthGate): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  const m = server.metrics;
  const sm = server.stateMachine;
  const svc = 'etcdserverpb.Maintenance';

  function status(): Msg {
    const sizes = sm.dbSizes();
    const v = server.cfg.etcdVersion;
    return {
      header: sm.header(),
      version: v,
      dbSize: sizes.totalBytes,
      leader: toLong(server.leader),
      raftIndex: server.committed,
      raftTerm: server.term,
      raftAppliedIndex: server.applied,
      errors: server.fatal ? [server.fatal.message] : sm.alarms().map((a) => `memberID:${a.memberId.toString()} alarm:${a.alarmName}`),
      dbSizeInUse: sizes.inUseBytes,
      isLearner: server.isLearner,
      storageVersion: etcdClusterVersion(v),
      dbSizeQuota: server.cfg.quotaBackendBytes,
    };
  }

  async function alarm(req: Msg, call: AuthCall): Promise<Msg> {
    const action = Number(req.action ?? 0); // 0 GET, 1 ACTIVATE, 2 DEACTIVATE
    // Listing alarms is open (etcd); raising or disarming one is for root.
    if (action !== 0) await auth.check(call, { op: 'admin' });
    if (action === 0) {
      const memberId = big(req.memberID);
      const alarmType = Number(req.alarm ?? 0);
      const list = sm.alarms().filter((a) => (memberId === 0n || a.memberId === memberId) && (alarmType === 0 || a.alarm === alarmType));
      return { header: sm.header(), alarms: list.map((a) => ({ memberID: toLong(a.memberId), alarm: a.alarm })) };
    }
    return (await server.propose(RequestKind.Alarm, req[RAW] as Buffer, req)) as Msg;
  }

  async function defragment(_req: Msg, call: AuthCall): Promise<Msg> {
    await auth.check(call, { op: 'admin' });
    const start = performance.now();
    await sm.defragment();
    m.backendDefragSeconds.observe((performance.now() - start) / 1000);
    return { header: sm.header() };
  }

  async function hash(_req: Msg, call: AuthCall): Promise<Msg> {
    await auth.check(call, { op: 'admin' });
    return { header: sm.header(), hash: await sm.backendHash() };
  }

  async function hashKV(req: Msg, call: AuthCall): Promise<Msg> {
    await auth.check(call, { op: 'admin' });
    const r = await sm.hashKV(Number(req.revision ?? 0));
    return { header: sm.header(), hash: r.hash, compact_revision: r.compactRevision, hash_revision: r.hashRevision };
  }

  async function moveLeader(req: Msg, call: AuthCall): Promise<Msg> {
    await auth.check(call, { op: 'admin' });
    const target = big(req.targetID);
    if (!server.isLeader) throw Errors.notLeader();
    const member = server.membership.get(target);
    if (!member || member.isLearner || target === server.memberId) throw Errors.badLeaderTransferee();
    await server.transferLeadership(target);
    return { header: sm.header() };
  }

  // `etcdctl snapshot save`: the member's database image in chunks, followed (as etcd does)
  // by the SHA-256 of everything sent, so a restore can verify the file. The image is
  // tsetcd's own format (LevelDB records, zero-padded to 512 bytes), not bbolt: `etcdctl snapshot
  // status` cannot read it.
  const snapshot: grpc.handleServerStreamingCall<Msg, Msg> = (call) => {
    auth.check(call, { op: 'admin' }).then(
      async () => {
        const hash = createHash('sha256');
        const image = sm.backend.snapshot();
        const chunkBytes = 32 * 1024;
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        let sentBytes = 0;
        const flush = async () => {
          if (pendingBytes === 0) return;
          const blob = Buffer.concat(pending, pendingBytes);
          sentBytes += pendingBytes;
          pending = [];
          pendingBytes = 0;
          hash.update(blob);
          if (!call.write({ header: sm.header(), remaining_bytes: 1, blob, version: server.cfg.etcdVersion })) {
            await new Promise<void>((resolve) => call.once('drain', resolve));
          }
        };
        for await (const chunk of image as AsyncIterable<Buffer>) {
          if (call.cancelled) return;
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= chunkBytes) await flush();
        }
        // etcdctl expects the image (like bbolt's pages) to be a multiple of 512 bytes before the hash.
        const pad = (512 - (sentBytes + pendingBytes) % 512) % 512;
        if (pad > 0) {
          pending.push(Buffer.alloc(pad));
          pendingBytes += pad;
        }
        await flush();
        call.write({ header: sm.header(), remaining_bytes: 0, blob: hash.digest(), version: server.cfg.etcdVersion });
        call.end();
      },
    ).catch((e: unknown) => call.emit('error', grpcError(e)));
  };

  const downgrade = unary(m, svc, 'Downgrade', async (_req, call) => {
    await auth.check(call, { op: 'admin' });
    throw unimplementedError('Maintenance.Downgrade');
  });

  return {
    def: serviceDefinition(svc),
    impl: {
      Status: unary(m, svc, 'Status', status),
      Alarm: unary(m, svc, 'Alarm', alarm),
      Defragment: unary(m, svc, 'Defragment', defragment),
      Hash: unary(m, svc, 'Hash', hash),
      HashKV: unary(m, svc, 'HashKV', hashKV),
      MoveLeader: unary(m, svc, 'MoveLeader', moveLeader),
      Snapshot: snapshot,
      Downgrade: downgrade,
    },
  };
}

function unimplementedError(what: string): Error {
  const e = unimplemented(what);
  return Object.assign(e, { grpcMapped: true, code: grpc.status.UNIMPLEMENTED, message: e.message });
}

export { grpcError };
