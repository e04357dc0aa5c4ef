import type * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { big, toLong, type Msg } from '../server/pb.js';
import { serviceDefinition, unary } from './grpc.js';
import type { Member } from '../server/membership.js';
import type { AuthGate, AuthCall } from '../auth/gate.js';

// Cluster service: member list/add/remove/update/promote. The membership rules live in the
// server (server/reconfig.ts); this adapter only converts messages.

export function memberToPb(m: Member): Msg {
  return { ID: toLong(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

export function clusterService(server: EtcdServer, auth: AuthGate): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  const m = server.metrics;
  const sm = server.stateMachine;
  const svc = 'etcdserverpb.Cluster';
  const list = () => server.membership.list().map(memberToPb);

  async function memberList(req: Msg): Promise<Msg> {
    if (req.linearizable) await server.linearizableRead();
    return { header: sm.header(), members: list() };
  }

  // Listing members is open (etcd); changing them is for root.
  async function memberAdd(req: Msg, call: AuthCall): Promise<Msg> {
    await auth.check(call, { op: 'admin' });
    const added = await server.addMember((req.peerURLs ?? []) as string[], !!req.isLearner);
    return { header: sm.header(), member: memberToPb(added), members: list() };
  }

  async function memberRemove(req: Msg, call: AuthCall): Promise<Msg> {
    await auth.check(call, { op: 'admin' });
    await server.removeMember(big(req.ID));
    return { header: sm.header(), members: list() };
  }

  async function memberUpdate(req: Msg, call: AuthCall): Promise<Msg> {
    await auth.check(call, { op: 'admin' });
    await server.updateMember(big(req.ID), (req.peerURLs ?? []) as string[]);
    return { header: sm.header(), members: list() };
  }

  async function memberPromote(req: Msg, call: AuthCall): Promise<Msg> {
    await auth.check(call, { op: 'admin' });
    await server.promoteMember(big(req.ID));
    return { header: sm.header(), members: list() };
  }

  return {
    def: serviceDefinition(svc),
    impl: {
      MemberList: unary(m, svc, 'MemberList', memberList),
      MemberAdd: unary(m, svc, 'MemberAdd', memberAdd),
      MemberRemove: unary(m, svc, 'MemberRemove', memberRemove),
      MemberUpdate: unary(m, svc, 'MemberUpdate', memberUpdate),
      MemberPromote: unary(m, svc, 'MemberPromote', memberPromote),
    },
  };
}
