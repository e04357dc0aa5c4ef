import client from 'prom-client';
import { idToHex } from './ids.js';

// Prometheus metrics under etcd's own names and buckets, so existing dashboards and
// etcd-mixin alerts work unchanged. One registry per server (tests run several in-process).

/** etcd's disk histograms: 0.001 s doubling to 8.192 s (14 buckets + Inf). */
const diskBuckets = client.exponentialBuckets(0.001, 2, 14);
/** etcd_network_peer_round_trip_time_seconds: 0.0001 s doubling, 16 buckets. */
const rttBuckets = client.exponentialBuckets(0.0001, 2, 16);

/** prom-client calls a metric's collect() before reading it (scrape, get()). */
interface Collectable {
  collect?: (this: unknown) => unknown;
}

/** Runs `fn` whenever `metric` is read, before any collect hook it already had. */
function onCollect(metric: client.Counter | client.Gauge, fn: () => void): void {
  const m = metric as unknown as Collectable;
  const previous = m.collect;
  m.collect = previous
    ? function (this: unknown) {
        fn();
        return previous.call(this);
      }
    : fn;
}

/** Increments on a hot path; see counterCell. */
export interface MetricCell {
  inc(n?: number): void;
}

/**
 * One label set of a counter (or a gauge used as a running total) for hot paths: inc() is a
 * plain addition, folded into the prom-client metric whenever it is read. prom-client's own
 * inc() hashes and validates the labels on every call, about a microsecond, several times
 * per request.
 */
export function counterCell(metric: client.Counter | client.Gauge, labels?: Record<string, string>): MetricCell {
  let pending = 0;
  onCollect(metric, () => {
    if (pending === 0) return;
    if (labels) metric.inc(labels, pending);
    else metric.inc(pending);
    pending = 0;
  });
  return {
    inc(n = 1) {
      pending += n;
    },
  };
}

function cachedCell<K>(cells: Map<K, MetricCell>, key: K, make: () => MetricCell): MetricCell {
  let cell = cells.get(key);
  if (cell === undefined) cells.set(key, (cell = make()));
  return cell;
}

/** A gauge whose value is read from the program when the metric is read, not pushed on every change. */
export function gaugeFrom(gauge: client.Gauge, read: () => number): void {
  onCollect(gauge, () => gauge.set(read()));
}

export class ServerMetrics {
  readonly registry = new client.Registry();
  readonly walFsyncSeconds: client.Histogram;
  readonly walWriteBytes: client.Gauge;
  readonly backendCommitSeconds: client.Histogram;
  readonly backendDefragSeconds: client.Histogram;
  readonly snapshotSaveSeconds: client.Histogram;
  readonly hasLeader: client.Gauge;
  readonly isLeader: client.Gauge;
  readonly isLearner: client.Gauge;
  readonly leaderChanges: client.Counter;
  readonly proposalsCommitted: client.Gauge;
  readonly proposalsApplied: client.Gauge;
  readonly proposalsPending: client.Gauge;
  readonly proposalsFailed: client.Counter;
  readonly slowApply: client.Counter;
  readonly readIndexFailed: client.Counter;
  readonly slowReadIndex: client.Counter;
  readonly heartbeatSendFailures: client.Counter;
  readonly dbTotalSize: client.Gauge;
  readonly dbTotalSizeInUse: client.Gauge;
  readonly quotaBackendBytes: client.Gauge;
  readonly currentRevision: client.Gauge;
  readonly compactRevision: client.Gauge;
  readonly keysTotal: client.Gauge;
  readonly putTotal: client.Counter;
  readonly deleteTotal: client.Counter;
  readonly rangeTotal: client.Counter;
  readonly txnTotal: client.Counter;
  readonly serverVersion: client.Gauge;
  readonly clusterVersion: client.Gauge;
  readonly serverId: client.Gauge;
  readonly healthSuccess: client.Counter;
  readonly healthFailures: client.Counter;
  readonly clientRequests: client.Counter;
  readonly grpcStarted: client.Counter;
  readonly grpcHandled: client.Counter;
  readonly grpcMsgReceived: client.Counter;
  readonly grpcMsgSent: client.Counter;
  readonly grpcReceivedBytes: client.Counter;
  readonly grpcSentBytes: client.Counter;
  readonly peerRttSeconds: client.Histogram;
  readonly peerSentBytes: client.Counter;
  readonly peerReceivedBytes: client.Counter;
  readonly peerSentFailures: client.Counter;
  readonly peerReceivedFailures: client.Counter;
  readonly activePeers: client.Gauge;
  readonly leaseExpired: client.Counter;

  // Peer byte counters change on every message batch and every received chunk: one counter
  // cell per peer (see counterCell), kept for the life of the member, across reconnects.
  private readonly peerSentCells = new Map<bigint, MetricCell>();
  private readonly peerReceivedCells = new Map<string, MetricCell>();

  /** Bytes sent to peer `to`. */
  peerSentCell(to: bigint): MetricCell {
    return cachedCell(this.peerSentCells, to, () => counterCell(this.peerSentBytes, { To: idToHex(to) }));
  }

  /** Bytes received from the peer whose hex ID is `from`. */
  peerReceivedCell(from: string): MetricCell {
    return cachedCell(this.peerReceivedCells, from, () => counterCell(this.peerReceivedBytes, { From: from }));
  }

  constructor() {
    const r = [this.registry];
    const h = (name: string, help: string, buckets: number[], labelNames: string[] = []) =>
      new client.Histogram({ name, help, buckets, labelNames, registers: r });
    const g = (name: string, help: string, labelNames: string[] = []) => new client.Gauge({ name, help, labelNames, registers: r });
    const c = (name: string, help: string, labelNames: string[] = []) => new client.Counter({ name, help, labelNames, registers: r });

    this.walFsyncSeconds = h('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', diskBuckets);
    this.walWriteBytes = g('etcd_disk_wal_write_bytes_total', 'Total number of bytes written in WAL.');
    this.backendCommitSeconds = h('etcd_disk_backend_commit_duration_seconds', 'The latency distributions of commit called by backend.', diskBuckets);
    this.backendDefragSeconds = h('etcd_disk_backend_defrag_duration_seconds', 'The latency distribution of backend defragmentation.', client.exponentialBuckets(0.1, 2, 13));
    this.snapshotSaveSeconds = h('etcd_disk_backend_snapshot_duration_seconds', 'The latency distribution of backend snapshots.', client.exponentialBuckets(0.01, 2, 17));
    this.hasLeader = g('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.');
    this.isLeader = g('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.');
    this.isLearner = g('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.');
    this.leaderChanges = c('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.');
    this.proposalsCommitted = g('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.');
    this.proposalsApplied = g('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.');
    this.proposalsPending = g('etcd_server_proposals_pending', 'The current number of pending proposals to commit.');
    this.proposalsFailed = c('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.');
    this.slowApply = c('etcd_server_slow_apply_total', 'The total number of slow apply requests (likely overloaded from slow disk).');
    this.readIndexFailed = c('etcd_server_read_indexes_failed_total', 'The total number of failed read indexes seen.');
    this.slowReadIndex = c('etcd_server_slow_read_indexes_total', 'The total number of pending read indexes not in sync with leader\'s or timed out read index requests.');
    this.heartbeatSendFailures = c('etcd_server_heartbeat_send_failures_total', 'The total number of leader heartbeat send failures (likely overloaded from slow disk).');
    this.dbTotalSize = g('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.');
    this.dbTotalSizeInUse = g('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.');
    this.quotaBackendBytes = g('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.');
    this.currentRevision = g('etcd_debugging_mvcc_current_revision', 'The current revision of store.');
    this.compactRevision = g('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.');
    this.keysTotal = g('etcd_debugging_mvcc_keys_total', 'Total number of keys.');
    this.putTotal = c('etcd_mvcc_put_total', 'Total number of puts seen by this member.');
    this.deleteTotal = c('etcd_mvcc_delete_total', 'Total number of deletes seen by this member.');
    this.rangeTotal = c('etcd_mvcc_range_total', 'Total number of ranges seen by this member.');
    this.txnTotal = c('etcd_mvcc_txn_total', 'Total number of txns seen by this member.');
    this.serverVersion = g('etcd_server_version', 'Which version is running. 1 for \'server_version\' label with current version.', ['server_version']);
    this.clusterVersion = g('etcd_cluster_version', 'Which version is running. 1 for \'cluster_version\' label with current cluster version', ['cluster_version']);
    this.serverId = g('etcd_server_id', 'Server or member ID in hexadecimal format. 1 for \'server_id\' label with current ID.', ['server_id']);
    this.healthSuccess = c('etcd_server_health_success', 'The total number of successful health checks');
    this.healthFailures = c('etcd_server_health_failures', 'The total number of failed health checks');
    this.clientRequests = c('etcd_server_client_requests_total', 'The total number of client requests per client version.', ['type', 'client_api_version']);
    const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'];
    this.grpcStarted = c('grpc_server_started_total', 'Total number of RPCs started on the server.', grpcLabels);
    this.grpcHandled = c('grpc_server_handled_total', 'Total number of RPCs completed on the server, regardless of success or failure.', [...grpcLabels, 'grpc_code']);
    this.grpcMsgReceived = c('grpc_server_msg_received_total', 'Total number of RPC stream messages received on the server.', grpcLabels);
    this.grpcMsgSent = c('grpc_server_msg_sent_total', 'Total number of gRPC stream messages sent by the server.', grpcLabels);
    this.grpcReceivedBytes = c('etcd_network_client_grpc_received_bytes_total', 'The total number of bytes received from grpc clients.');
    this.grpcSentBytes = c('etcd_network_client_grpc_sent_bytes_total', 'The total number of bytes sent to grpc clients.');
    this.peerRttSeconds = h('etcd_network_peer_round_trip_time_seconds', 'Round-Trip-Time histogram between peers', rttBuckets, ['To']);
    this.peerSentBytes = c('etcd_network_peer_sent_bytes_total', 'The total number of bytes sent to peers.', ['To']);
    this.peerReceivedBytes = c('etcd_network_peer_received_bytes_total', 'The total number of bytes received from peers.', ['From']);
    this.peerSentFailures = c('etcd_network_peer_sent_failures_total', 'The total number of send failures from peers.', ['To']);
    this.peerReceivedFailures = c('etcd_network_peer_received_failures_total', 'The total number of receive failures from peers.', ['From']);
    this.activePeers = g('etcd_network_active_peers', 'The current number of active peer connections.', ['Local', 'Remote']);
    this.leaseExpired = c('etcd_debugging_server_lease_expired_total', 'The total number of expired leases.');
    client.collectDefaultMetrics({ register: this.registry });
  }

  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
