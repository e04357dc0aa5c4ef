import type http from 'node:http';
import v8 from 'node:v8';
import * as grpc from '@grpc/grpc-js';
import {
  parseConfig, ConfigError, usageText, isDataDirInitialized, verifyBootstrap, bootstrapInputOf, type EtcdConfig, type ParseResult,
} from './cli/index.js';
import { loggerFromConfig, type Logger } from './log/logger.js';
import { EtcdServer, type ServerConfig } from './server/server.js';
import { ServerMetrics } from './server/metrics.js';
import { idToHex } from './server/ids.js';
import { Errors } from './server/errors.js';
import { listenClientUrl, type ClientListener } from './api/listener.js';
import { startClientWarmUp, warmUpHost } from './api/warm-up.js';
import { peerGet, prepareMemberTls } from './api/tls-config.js';
import { runTlsCommand } from './cli/tls/command.js';
import { httpHandler } from './api/http.js';
import { registerServices } from './api/services.js';
import { gatewayHandler } from './api/gateway.js';
import { startPeerListeners, type PeerListener } from './peer/listener.js';
import { PeerTransport } from './peer/transport.js';

// `tsetcd [etcd flags]`: parse the configuration as etcd does, start the member, open the
// client, metrics and peer listeners, and stop gracefully on SIGINT/SIGTERM.

export function toServerConfig(c: EtcdConfig): ServerConfig {
  return {
    name: c.name,
    dataDir: c.dataDir,
    walDir: c.walDir,
    initialCluster: c.initialCluster.map((m) => ({ name: m.name, peerUrls: [...m.peerUrls] })),
    initialClusterToken: c.initialClusterToken,
    initialClusterState: c.initialClusterState,
    initialAdvertisePeerUrls: c.initialAdvertisePeerUrls.map((u) => u.text),
    advertiseClientUrls: c.advertiseClientUrls.map((u) => u.text),
    heartbeatIntervalMs: c.heartbeatIntervalMs,
    electionTimeoutMs: c.electionTimeoutMs,
    snapshotCount: c.snapshotCount,
    maxTxnOps: c.maxTxnOps,
    maxRequestBytes: c.maxRequestBytes,
    quotaBackendBytes: c.quotaBackendBytes,
    backendBatchIntervalMs: c.backendBatchIntervalMs,
    backendBatchLimit: c.backendBatchLimit,
    preVote: c.preVote,
    strictReconfigCheck: c.strictReconfigCheck,
    unsafeNoFsync: c.unsafeNoFsync,
    etcdVersion: c.etcdVersion,
    maxLearners: c.maxLearners,
    watchProgressNotifyIntervalMs: c.watchProgressNotifyIntervalMs,
    snapshotCatchupEntries: Number(c.flagValues.get('snapshot-catchup-entries') ?? 5000),
    forceNewCluster: c.forceNewCluster,
    autoCompaction: {
      mode: c.autoCompactionMode,
      periodMs: c.autoCompactionPeriodMs,
      retainRevisions: c.autoCompactionRetainRevisions,
    },
  };
}

export interface RunningMember {
  server: EtcdServer;
  stop(): Promise<void>;
}

/** Starts a member from a parsed configuration (used by main and by in-process tests). */
export async function startMember(config: EtcdConfig, logger: Logger): Promise<RunningMember> {
  // Certificates are loaded (or made, with --auto-tls) and checked before anything starts.
  const memberTls = await prepareMemberTls(config, logger);
  const metrics = new ServerMetrics();
  let transport: PeerTransport | undefined;
  const serverConfig = { ...toServerConfig(config), peerGet: (url: URL, timeoutMs: number) => peerGet(url, memberTls.peer, timeoutMs) };
  const server = await EtcdServer.start(serverConfig, logger, metrics, (s) => {
    transport = new PeerTransport({
      localId: s.memberId,
      clusterId: () => s.clusterId,
      etcdVersion: config.etcdVersion,
      logger,
      onUnreachable: (id) => s.reportUnreachable(id),
      onSnapshotStatus: (id, ok) => s.reportSnapshot(id, ok),
      onSent: (id, bytes) => metrics.peerSentCell(id).inc(bytes),
      onRoundTrip: (id, seconds) => metrics.peerRttSeconds.observe({ To: idToHex(id) }, seconds),
      onSendFailure: (id) => metrics.peerSentFailures.inc({ To: idToHex(id) }),
      snapshotSource: () => s.snapshotSource(),
      tls: memberTls.peer,
    });
    return transport;
  });
  const grpcServer = new grpc.Server({
    // etcd: the gRPC receive limit is --max-request-bytes plus 512 KiB of envelope, so an
    // oversized request still reaches the server and gets etcd's "request is too large".
    'grpc.max_receive_message_length': config.maxRequestBytes + 512 * 1024,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_time_ms': config.grpcKeepaliveIntervalMs,
    'grpc.keepalive_timeout_ms': config.grpcKeepaliveTimeoutMs,
    // Channelz (grpc-js's call/socket introspection, which nothing here serves) costs about
    // 8 us of event loop per unary call: two Date objects, trackers and closures per call.
    'grpc.enable_channelz': 0,
  });
  // Lease keep-alives and TTL questions that reach a follower go to the leader (only it tracks deadlines).
  const leaderPeerUrls = (): string[] => {
    const leader = server.membership.get(server.leader);
    if (!leader || !transport) throw Errors.noLeader();
    return leader.peerUrls;
  };
  server.leaseForwarder = async (id) =>
    (await transport!.askLeader<{ ttl: number }>(leaderPeerUrls(), '/leases/renew', { id: id.toString() })).ttl;
  server.leaseTtlForwarder = async (id) =>
    (await transport!.askLeader<{ ttl: number }>(leaderPeerUrls(), '/leases/ttl', { id: id.toString() })).ttl;
  let services: ReturnType<typeof registerServices>;
  try {
    services = registerServices(grpcServer, server, {
      authToken: config.authToken, authTokenTtlSec: config.authTokenTtlSec, bcryptCost: config.bcryptCost,
      clientCertAuth: config.clientTls.clientCertAuth,
    });
  } catch (e) {
    await server.stop(0); // e.g. a bad --auth-token: nothing was served yet
    throw e;
  }
  const handler: http.RequestListener = httpHandler({ server });
  // The client port also serves the /v3 JSON gateway (the metrics listener does not).
  const clientHandler: http.RequestListener = httpHandler({ server, fallback: gatewayHandler({ server, channel: services.local }) });
  const listeners: ClientListener[] = [];
  const peers: PeerListener[] = [];
  try {
    for (const url of config.listenClientUrls) {
      listeners.push(await listenClientUrl(url, { grpcServer, httpHandler: clientHandler, tls: memberTls.client, logger }));
      logger.info('serving client traffic', { address: url.text });
    }
    for (const url of config.listenMetricsUrls) {
      listeners.push(await listenClientUrl(url, { httpHandler: handler, tls: memberTls.client, logger }));
      logger.info('serving metrics and health', { address: url.text });
    }
    peers.push(...(await startPeerListeners(config.listenPeerUrls, server, logger, transport, memberTls.peer)));
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all(peers.map((p) => p.close()));
    await server.stop(0);
    memberTls.stop();
    throw e;
  }
  let stopping: Promise<void> | undefined;
  return {
    server,
    stop: () =>
      (stopping ??= (async () => {
        // Stop accepting first, then let in-flight requests finish, then flush and close.
        services.stop();
        await Promise.all(listeners.map((l) => l.close()));
        await server.stop();
        await Promise.all(peers.map((p) => p.close()));
        grpcServer.forceShutdown();
        memberTls.stop();
      })()),
  };
}

/** A quarter of V8's default (67584 bytes of bytecode); see main(). */
const V8_INTERRUPT_BUDGET = 16384;

export async function main(argv: string[]): Promise<void> {
  // V8 optimizes a function once it has used up an "interrupt budget" of executed bytecode.
  // A quarter of the default budget gets the request path optimized after a few hundred
  // requests instead of a few thousand: a freshly started member reaches its steady speed
  // sooner (1 client puts right after start: ~1.12k -> ~1.29k/s); steady state is unchanged.
  // Set before any request-path function has run, so they all get the smaller budget.
  v8.setFlagsFromString(`--interrupt-budget=${V8_INTERRUPT_BUDGET}`);
  if (argv[0] === 'tls') {
    // `tsetcd tls init|check`: certificates, not a member.
    process.exitCode = await runTlsCommand(argv.slice(1), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
    return;
  }
  let parsed: ParseResult;
  try {
    parsed = parseConfig(argv, process.env);
    if (parsed.action === 'run' && !isDataDirInitialized(parsed.config.dataDir, parsed.config.walDir)) {
      await verifyBootstrap(bootstrapInputOf(parsed.config));
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n${e.showUsage ? usageText() : ''}`);
      process.exit(e.exitCode);
    }
    throw e;
  }
  if (parsed.action !== 'run') {
    process.stdout.write(parsed.text);
    process.exit(0);
  }
  const { config, warnings } = parsed;
  const logger = loggerFromConfig(config);
  for (const w of warnings) logger.warn(w);
  logger.info('starting tsetcd', {
    'etcd-version': config.etcdVersion, name: config.name, 'data-dir': config.dataDir, 'wal-dir': config.walDir,
    'listen-client-urls': config.listenClientUrls.map((u) => u.text), 'listen-peer-urls': config.listenPeerUrls.map((u) => u.text),
    'node-version': process.version, pid: process.pid,
  });
  let member: RunningMember;
  try {
    member = await startMember(config, logger);
  } catch (e) {
    logger.error('failed to start', { error: (e as Error).message });
    process.stderr.write(`tsetcd: ${(e as Error).message}\n`);
    process.exit(1);
  }
  logger.info('ready to serve client requests', { 'local-member-id': idToHex(member.server.memberId) });
  let signals = 0;
  let removed = false;
  const plainClientUrl = config.listenClientUrls.find((u) => u.scheme === 'http');
  const warmUpTarget = plainClientUrl && { host: warmUpHost(plainClientUrl.hostname), port: plainClientUrl.portNumber };
  void startClientWarmUp(warmUpTarget, config.clientWarmUpConnections, () => signals > 0 || removed, logger);
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      logger.warn('second signal; exiting now', { signal: sig });
      process.exit(1);
    }
    logger.info('received signal; shutting down', { signal: sig });
    const force = setTimeout(() => {
      logger.error('graceful shutdown took too long; exiting');
      process.exit(1);
    }, 15_000);
    force.unref();
    member.stop().then(
      () => process.exit(0),
      (e: Error) => {
        logger.error('error during shutdown', { error: e.message });
        process.exit(1);
      },
    );
  };
  member.server.onRemoved = () => {
    removed = true;
    member.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
