import type * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { kvService } from './kv.js';
import { maintenanceService } from './maintenance.js';
import { clusterService } from './cluster.js';
import { leaseService } from './lease.js';

/** Registers every gRPC service tsetcd implements; others answer UNIMPLEMENTED (grpc-js default). */
export function registerServices(grpcServer: grpc.Server, server: EtcdServer): void {
  for (const make of [kvService, maintenanceService, clusterService, leaseService]) {
    const { def, impl } = make(server);
    grpcServer.addService(def, impl);
  }
}
