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
import { counterCell, type MetricCell } from '../server/metrics.js';

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
  const received = counterCell(server.metrics.grpcReceivedBytes);
  const sent = counterCell(server.metrics.grpcSentBytes);
  const add = (s: { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation }) => {
    grpcServer.addService(countingBytes(s.def, received, sent), s.impl);
    local.addService(s.def, s.impl);
  };
  for (const make of [kvService, maintenanceService, clusterService, leaseService, authService]) add(make(server, auth));
  const watch = watchService(server, server.stateMachine.watchHub, server.cfg.watchProgressNotifyIntervalMs, auth, (n) => sent.inc(n));
  add(watch);
  for (const make of [electionService, lockService]) add(make(server, local));
  return { stop: watch.stop, local };
}

/**
 * The definition with every client message's size counted, as etcd counts them
 * (etcd_network_client_grpc_received_bytes_total / _sent_bytes_total: encoded message bytes,
 * without gRPC's 5-byte prefix). The fast unary path uses these same functions; watch
 * responses written in batches are counted where they are written (response-batcher.ts).
 */
function countingBytes(def: grpc.ServiceDefinition, received: MetricCell, sent: MetricCell): grpc.ServiceDefinition {
  const counted: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    counted[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        received.inc(buf.length);
        return m.requestDeserialize(buf);
      },
      responseSerialize: (value: unknown) => {
        const bytes = m.responseSerialize(value);
        sent.inc(bytes.length);
        return bytes;
      },
    };
  }
  return counted;
}
