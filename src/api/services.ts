import type * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { kvService } from './kv.js';
import { maintenanceService } from './maintenance.js';
import { clusterService } from './cluster.js';
import { leaseService } from './lease.js';
import { watchService } from './watch.js';
import { electionService } from './election.js';
import { lockService } from './lock.js';
import { InProcessChannel } from './inprocess.js';
import { authService, createAuthGate, DEFAULT_AUTH_OPTIONS, type AuthOptions } from './auth.js';

/**
 * Registers every gRPC service tsetcd implements; others answer UNIMPLEMENTED (grpc-js default).
 * Each is also reachable in-process through `local` (the election/lock recipes and the JSON gateway).
 */
export function registerServices(
  grpcServer: grpc.Server, server: EtcdServer, authOptions: AuthOptions = DEFAULT_AUTH_OPTIONS,
): { stop: () => void; local: InProcessChannel } {
  const local = new InProcessChannel();
  // Throws on a bad --auth-token (the member does not start).
  const auth = createAuthGate(server, authOptions);
  const add = (s: { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation }) => {
    grpcServer.addService(s.def, s.impl);
    local.addService(s.def, s.impl);
  };
  for (const make of [kvService, maintenanceService, clusterService, leaseService, authService]) add(make(server, auth));
  const watch = watchService(server, server.stateMachine.watchHub, server.cfg.watchProgressNotifyIntervalMs, auth);
  add(watch);
  for (const make of [electionService, lockService]) add(make(server, local));
  return { stop: watch.stop, local };
}
