/**
 * The typed server configuration that `parseConfig` produces from flags, `ETCD_*` variables or
 * an etcd YAML config file. Every other layer reads its settings from here; names carry units.
 */
import type { LogLevel } from '../log/logger.js';
import type { EtcdUrl } from './url.js';

export type { LogLevel };

export type ClusterState = 'new' | 'existing';
export type LogFormat = 'json' | 'console';
export type MetricsLevel = 'basic' | 'extensive';
export type AutoCompactionMode = 'periodic' | 'revision';
/** Where an explicitly set value came from. */
export type ConfigSource = 'flag' | 'env' | 'config-file';

/** Value of any flag after conversion to its type (see FlagType in flags.ts). */
export type FlagValue = string | boolean | number | EtcdUrl[] | string[] | ReadonlyMap<string, boolean>;

/** One TLS side (client-facing or peer-facing), from `--cert-file`… or `client-transport-security:`. */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
  /** Certificate this member presents when it dials as a client (defaults to certFile in etcd). */
  clientCertFile: string;
  clientKeyFile: string;
  trustedCaFile: string;
  /** `--client-cert-auth` / `--peer-client-cert-auth` exactly as given. */
  clientCertAuth: boolean;
  /**
   * Whether the server must demand and verify client certificates. etcd requires them when
   * client-cert-auth is on *or* a trusted CA file is given (documented in etcd 3.6).
   */
  requireClientCert: boolean;
  autoTls: boolean;
  crlFile: string;
  allowedCn: string[];
  allowedHostname: string[];
  skipClientSanVerification: boolean;
}

export interface InitialClusterMember {
  name: string;
  /** etcd string form (`http://10.0.0.1:2380`), sorted, as etcd hashes them into member IDs. */
  peerUrls: string[];
}

/** 2 GiB: what `--quota-backend-bytes 0` means in etcd. */
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;
/** etcd warns above 8 GiB. */
export const MAX_RECOMMENDED_QUOTA_BACKEND_BYTES = 8 * 1024 * 1024 * 1024;
/** What `--backend-batch-interval` 0/unset means in etcd's backend. */
export const DEFAULT_BACKEND_BATCH_INTERVAL_MS = 100;
/** What `--backend-batch-limit 0` means in etcd's backend. */
export const DEFAULT_BACKEND_BATCH_LIMIT = 10000;
/** etcd refuses election timeouts above this. */
export const MAX_ELECTION_TIMEOUT_MS = 50000;
/** The etcd release tsetcd reports by default (Status.version, /version). */
export const DEFAULT_ETCD_VERSION = '3.6.5';

export interface EtcdConfig {
  name: string;
  dataDir: string;
  /** Resolved: `--wal-dir`, or `<dataDir>/member/wal` when not given. */
  walDir: string;
  /** True when `--wal-dir` was given (a dedicated WAL directory). */
  walDirDedicated: boolean;

  listenClientUrls: EtcdUrl[];
  advertiseClientUrls: EtcdUrl[];
  listenPeerUrls: EtcdUrl[];
  initialAdvertisePeerUrls: EtcdUrl[];
  /** Empty when not given: no separate metrics/health listener. */
  listenMetricsUrls: EtcdUrl[];

  /** Bootstrap membership, in the order first named on the command line. */
  initialCluster: InitialClusterMember[];
  initialClusterToken: string;
  initialClusterState: ClusterState;

  snapshotCount: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  maxTxnOps: number;
  maxRequestBytes: number;
  /** 0 was resolved to 2 GiB; negative means "no quota", as in etcd. */
  quotaBackendBytes: number;
  /** 0/unset was resolved to 100 ms. */
  backendBatchIntervalMs: number;
  /** 0 was resolved to 10000. */
  backendBatchLimit: number;
  strictReconfigCheck: boolean;
  preVote: boolean;

  autoCompactionMode: AutoCompactionMode;
  /** As given (`"0"`, `"1"` = 1 h in periodic mode, `"5m"`, `"1000"` revisions). */
  autoCompactionRetention: string;
  /** Periodic mode: retention window in ms (0 = auto compaction off, or revision mode). */
  autoCompactionPeriodMs: number;
  /** Revision mode: revisions to keep (0 = off, or periodic mode). */
  autoCompactionRetainRevisions: number;

  watchProgressNotifyIntervalMs: number;
  forceNewCluster: boolean;
  unsafeNoFsync: boolean;
  maxLearners: number;

  clientTls: TlsConfig;
  peerTls: TlsConfig;

  /** `simple` or `jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]`, as given. */
  authToken: string;
  bcryptCost: number;
  authTokenTtlSec: number;

  logger: 'zap';
  logLevel: LogLevel;
  /** `default`/`stderr`/`stdout`/file paths; `default` and `systemd/journal` were mapped to `stderr`. */
  logOutputs: string[];
  logFormat: LogFormat;
  metrics: MetricsLevel;

  /** etcd version tsetcd reports (Status.version, /version, etcd_server_version). */
  etcdVersion: string;
  /** Self-connections made at start to warm up the client connection path (0 = none). */
  clientWarmUpConnections: number;

  grpcKeepaliveMinTimeMs: number;
  grpcKeepaliveIntervalMs: number;
  grpcKeepaliveTimeoutMs: number;

  /** Always false: tsetcd serves only the v3 API. */
  enableV2: false;
  /** Server feature gates (`--feature-gates`, or the experimental bool flags that map to them). */
  featureGates: ReadonlyMap<string, boolean>;

  /** Path of the config file used, '' when configured by flags/environment. */
  configFile: string;
  /** Every explicitly set flag (by the name used, e.g. an old `experimental-` spelling) with its text as given. */
  raw: ReadonlyMap<string, string>;
  /** Where each entry of `raw` came from. */
  sources: ReadonlyMap<string, ConfigSource>;
  /** Typed value of every known flag (defaults included), by canonical flag name. */
  flagValues: ReadonlyMap<string, FlagValue>;
}

/** `3.6.5` → `3.6`: the API/cluster version tsetcd reports next to the server version. */
export function etcdApiVersion(etcdVersion: string): string {
  const m = /^(\d+)\.(\d+)/.exec(etcdVersion);
  if (m === null) throw new Error(`invalid etcd version ${JSON.stringify(etcdVersion)}`);
  return `${m[1]}.${m[2]}`;
}

/** `3.6.5` → `3.6.0`: the cluster version etcd reports in /version's `etcdcluster`. */
export function etcdClusterVersion(etcdVersion: string): string {
  return `${etcdApiVersion(etcdVersion)}.0`;
}
