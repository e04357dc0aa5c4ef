import type * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { kvService } from './kv.js';
import { maintenanceService } from './maintenance.js';
import { clusterService } from './cluster.js';
import { leaseService } from './lease.js';
import { watchService } from './watch.js';

/** Registers every gRPC service tsetcd implements; others answer UNIMPLEMENTED (grpc-js default). */
export function registerServices(grpcServer: grpc.Server, server: EtcdServer): { stop: () => void } {
  for (const make of [kvService, maintenanceService, clusterService, leaseService]) {
    const { def, impl } = make(server);
    grpcServer.addService(def, impl);
  }
  const watch = watchService(server, server.stateMachine.watchHub, server.cfg.watchProgressNotifyIntervalMs);
  grpcServer.addService(watch.def, watch.impl);
  return { stop: watch.stop };
}
