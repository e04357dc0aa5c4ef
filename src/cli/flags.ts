/**
 * Every server flag etcd 3.6 accepts, plus the 3.4/3.5 spellings that were renamed or removed,
 * plus tsetcd's own `--etcd-version`. The table drives the command-line parser, the `ETCD_*`
 * environment mapping, the config-file keys and `tsetcd --help`.
 *
 * `implemented: false` flags are still parsed and type-checked (so a typo is caught), but
 * setting one yields the warning "flag --x is accepted but not implemented by tsetcd yet; it has
 * no effect": nothing is silently ignored.
 */

export type FlagType =
  | 'string'
  | 'bool'
  /** Go `uint`: non-negative integer, `0x`/`0o`/`0b` prefixes allowed. */
  | 'uint'
  /** Go `int`: signed integer. */
  | 'int'
  | 'uint32'
  /** Go duration: `5s`, `100ms`, `1h30m`. */
  | 'duration'
  /** Comma-separated URLs, validated like etcd's URL flags. */
  | 'url-list'
  /** Comma-separated strings. */
  | 'string-list'
  /** `name=url,name=url` (a name may repeat). */
  | 'initial-cluster'
  /** One of `choices`. */
  | 'enum'
  /** `Name=true,Other=false`. */
  | 'feature-gates';

export type FlagGroup =
  | 'Member'
  | 'Clustering'
  | 'Security'
  | 'Auth'
  | 'Profiling and Monitoring'
  | 'Logging'
  | 'Distributed tracing'
  | 'Features'
  | 'Experimental (deprecated spellings)'
  | 'Unsafe feature'
  | 'tsetcd'
  | 'Removed from etcd 3.6 (accepted for old command lines)';

export interface FlagSpec {
  readonly name: string;
  readonly type: FlagType;
  /** Default in the flag's own syntax, as `--help` shows it ('' = empty). */
  readonly default: string;
  readonly help: string;
  readonly group: FlagGroup;
  readonly implemented: boolean;
  readonly choices?: readonly string[];
  /** This is an older spelling; setting it sets the named canonical flag. */
  readonly aliasOf?: string;
  /** This experimental bool flag sets the named feature gate. */
  readonly featureGate?: string;
  /** Warning issued when the flag is set (etcd 3.6 deprecations). */
  readonly deprecation?: string;
  /** For flags etcd 3.6 no longer has: the release that dropped them. */
  readonly removedIn?: string;
  /** How tsetcd resolves a default that etcd expresses as 0/empty. */
  readonly defaultNote?: string;
}

/** Server feature gates known to etcd 3.6, with their defaults. */
export const FEATURE_GATE_DEFAULTS: ReadonlyMap<string, boolean> = new Map([
  ['StopGRPCServiceOnDefrag', false],
  ['InitialCorruptCheck', false],
  ['CompactHashCheck', false],
  ['TxnModeWriteWithSharedBuffer', true],
  ['LeaseCheckpoint', false],
  ['LeaseCheckpointPersist', false],
  ['SetMemberLocalAddr', false],
]);

const REMOVED_IN_3_6 = 'Removed from etcd 3.6 (accepted for old command lines)' as const;

function deprecatedRename(oldName: string, newName: string): string {
  return `--${oldName} is deprecated in etcd 3.6 and goes away in 3.7; use --${newName} instead`;
}

function deprecatedGate(oldName: string, gate: string): string {
  return `--${oldName} is deprecated in etcd 3.6 and goes away in 3.7; use --feature-gates=${gate}=true instead`;
}

type SpecInput = Omit<FlagSpec, 'implemented'> & { implemented?: boolean };

function spec(s: SpecInput): FlagSpec {
  return { implemented: false, ...s };
}

/** A deprecated `experimental-` spelling of a renamed flag (same type and default). */
function renamed(oldName: string, target: FlagSpec, extra: Partial<FlagSpec> = {}): FlagSpec {
  return {
    name: oldName,
    type: target.type,
    default: target.default,
    help: `Old spelling of --${target.name}.`,
    group: 'Experimental (deprecated spellings)',
    implemented: target.implemented,
    aliasOf: target.name,
    deprecation: deprecatedRename(oldName, target.name),
    ...extra,
  };
}

function gateFlag(oldName: string, gate: string, help: string): FlagSpec {
  const gateDefault = FEATURE_GATE_DEFAULTS.get(gate);
  if (gateDefault === undefined) throw new Error(`unknown feature gate ${gate}`);
  return {
    name: oldName,
    type: 'bool',
    default: String(gateDefault),
    help: `${help} Same as --feature-gates=${gate}=true.`,
    group: 'Experimental (deprecated spellings)',
    implemented: false,
    featureGate: gate,
    deprecation: deprecatedGate(oldName, gate),
  };
}

// ---- canonical flags -------------------------------------------------------------------------

const MEMBER: FlagSpec[] = [
  spec({ name: 'name', type: 'string', default: 'default', group: 'Member', implemented: true,
    help: 'Name of this member; must appear in --initial-cluster.' }),
  spec({ name: 'data-dir', type: 'string', default: '${name}.etcd', group: 'Member', implemented: true,
    help: 'Directory holding this member\'s data (member/snap, member/wal).' }),
  spec({ name: 'wal-dir', type: 'string', default: '', group: 'Member', implemented: true,
    help: 'Put the write-ahead log in this directory instead of <data-dir>/member/wal (e.g. on a faster disk).' }),
  spec({ name: 'snapshot-count', type: 'uint', default: '10000', group: 'Member', implemented: true,
    help: 'Committed entries between two raft snapshots.',
    deprecation: '--snapshot-count is deprecated in etcd 3.6 and goes away in 3.7' }),
  spec({ name: 'heartbeat-interval', type: 'uint', default: '100', group: 'Member', implemented: true,
    help: 'Leader heartbeat period, in milliseconds (an integer, not a duration).' }),
  spec({ name: 'election-timeout', type: 'uint', default: '1000', group: 'Member', implemented: true,
    help: 'Follower wait before calling an election, in milliseconds; at least 5x --heartbeat-interval.' }),
  spec({ name: 'initial-election-tick-advance', type: 'bool', default: 'true', group: 'Member',
    help: 'Skip most of the first election timeout after boot so a leader is elected sooner.' }),
  spec({ name: 'listen-peer-urls', type: 'url-list', default: 'http://localhost:2380', group: 'Member', implemented: true,
    help: 'Sockets to open for traffic from other members (IP addresses or localhost; http or https).' }),
  spec({ name: 'listen-client-urls', type: 'url-list', default: 'http://localhost:2379', group: 'Member', implemented: true,
    help: 'Sockets to open for clients (gRPC, plus HTTP unless --listen-client-http-urls is set).' }),
  spec({ name: 'listen-client-http-urls', type: 'url-list', default: '', group: 'Member',
    help: 'Separate sockets for HTTP-only client traffic; HTTP then leaves --listen-client-urls.' }),
  spec({ name: 'max-snapshots', type: 'uint', default: '5', group: 'Member',
    help: 'Snapshot files to keep (0 keeps all).',
    deprecation: '--max-snapshots is deprecated in etcd 3.6 and goes away in 3.7' }),
  spec({ name: 'max-wals', type: 'uint', default: '5', group: 'Member',
    help: 'WAL files to keep (0 keeps all).' }),
  spec({ name: 'memory-mlock', type: 'bool', default: 'false', group: 'Member',
    help: 'Lock the process memory in RAM so it is never swapped out.' }),
  spec({ name: 'quota-backend-bytes', type: 'int', default: '0', group: 'Member', implemented: true,
    help: 'Database size that raises the NOSPACE alarm and makes the store read-only (0 = 2 GiB).' }),
  spec({ name: 'backend-bbolt-freelist-type', type: 'string', default: 'map', group: 'Member',
    help: 'bbolt free-list layout (array or map); tsetcd does not use bbolt.' }),
  spec({ name: 'backend-batch-interval', type: 'duration', default: '', group: 'Member', implemented: true,
    help: 'Longest time a backend write batch stays open before it is committed.',
    defaultNote: 'unset/0 = 100ms' }),
  spec({ name: 'backend-batch-limit', type: 'int', default: '0', group: 'Member', implemented: true,
    help: 'Most operations in one backend write batch before it is committed.',
    defaultNote: '0 = 10000' }),
  spec({ name: 'max-txn-ops', type: 'uint', default: '128', group: 'Member', implemented: true,
    help: 'Most operations allowed in one transaction.' }),
  spec({ name: 'max-request-bytes', type: 'uint', default: '1572864', group: 'Member', implemented: true,
    help: 'Largest client request accepted, in bytes.' }),
  spec({ name: 'max-concurrent-streams', type: 'uint32', default: '4294967295', group: 'Member',
    help: 'Most concurrent HTTP/2 streams one client connection may open.' }),
  spec({ name: 'grpc-keepalive-min-time', type: 'duration', default: '5s', group: 'Member',
    help: 'Shortest interval at which clients may ping the server; faster pingers are disconnected.' }),
  spec({ name: 'grpc-keepalive-interval', type: 'duration', default: '2h', group: 'Member', implemented: true,
    help: 'How often the server pings an idle client connection (0 disables).' }),
  spec({ name: 'grpc-keepalive-timeout', type: 'duration', default: '20s', group: 'Member', implemented: true,
    help: 'How long to wait for a ping answer before closing the connection (0 disables).' }),
  spec({ name: 'socket-reuse-port', type: 'bool', default: 'false', group: 'Member',
    help: 'Set SO_REUSEPORT on listeners.' }),
  spec({ name: 'socket-reuse-address', type: 'bool', default: 'false', group: 'Member',
    help: 'Set SO_REUSEADDR on listeners.' }),
  spec({ name: 'enable-grpc-gateway', type: 'bool', default: 'true', group: 'Member',
    help: 'Serve the JSON/HTTP gateway to the gRPC API (/v3/...).' }),
  spec({ name: 'raft-read-timeout', type: 'duration', default: '5s', group: 'Member',
    help: 'Read timeout on peer (raft) connections.' }),
  spec({ name: 'raft-write-timeout', type: 'duration', default: '5s', group: 'Member',
    help: 'Write timeout on peer (raft) connections.' }),
  spec({ name: 'feature-gates', type: 'feature-gates', default: '', group: 'Member',
    help: `Server feature switches, e.g. InitialCorruptCheck=true. Known: ${[...FEATURE_GATE_DEFAULTS.keys()].join(', ')}.` }),
];

const CLUSTERING: FlagSpec[] = [
  spec({ name: 'initial-advertise-peer-urls', type: 'url-list', default: 'http://localhost:2380', group: 'Clustering', implemented: true,
    help: 'Peer URLs this member tells the others to reach it at (not a socket); must match its entry in --initial-cluster.' }),
  spec({ name: 'initial-cluster', type: 'initial-cluster', default: 'default=http://localhost:2380', group: 'Clustering', implemented: true,
    help: 'Members of a new cluster as name=peer-url pairs, comma separated.',
    defaultNote: 'when not given: <name>=<initial-advertise-peer-urls>' }),
  spec({ name: 'initial-cluster-state', type: 'enum', default: 'new', choices: ['new', 'existing'], group: 'Clustering', implemented: true,
    help: '"new" to form a new cluster, "existing" to join a running one after `member add`. Ignored once the data dir holds data.' }),
  spec({ name: 'initial-cluster-token', type: 'string', default: 'etcd-cluster', group: 'Clustering', implemented: true,
    help: 'Shared secret of a new cluster; mixed into member and cluster IDs so separate clusters never merge.' }),
  spec({ name: 'advertise-client-urls', type: 'url-list', default: 'http://localhost:2379', group: 'Clustering', implemented: true,
    help: 'Client URLs this member publishes (member list); they must lead to a listening socket. Required when --listen-client-urls is set.' }),
  spec({ name: 'discovery', type: 'string', default: '', group: 'Clustering',
    help: 'v2 discovery service URL for bootstrapping.' }),
  spec({ name: 'discovery-token', type: 'string', default: '', group: 'Clustering',
    help: 'v3 discovery: token of the cluster to bootstrap.' }),
  spec({ name: 'discovery-endpoints', type: 'string-list', default: '', group: 'Clustering',
    help: 'v3 discovery: gRPC endpoints of the discovery service.' }),
  spec({ name: 'discovery-dial-timeout', type: 'duration', default: '2s', group: 'Clustering',
    help: 'v3 discovery: dial timeout.' }),
  spec({ name: 'discovery-request-timeout', type: 'duration', default: '5s', group: 'Clustering',
    help: 'v3 discovery: per-request timeout.' }),
  spec({ name: 'discovery-keepalive-time', type: 'duration', default: '2s', group: 'Clustering',
    help: 'v3 discovery: keepalive ping interval.' }),
  spec({ name: 'discovery-keepalive-timeout', type: 'duration', default: '6s', group: 'Clustering',
    help: 'v3 discovery: keepalive ping timeout.' }),
  spec({ name: 'discovery-insecure-transport', type: 'bool', default: 'true', group: 'Clustering',
    help: 'v3 discovery: talk to the service without TLS.' }),
  spec({ name: 'discovery-insecure-skip-tls-verify', type: 'bool', default: 'false', group: 'Clustering',
    help: 'v3 discovery: do not verify the service certificate (testing only).' }),
  spec({ name: 'discovery-cert', type: 'string', default: '', group: 'Clustering',
    help: 'v3 discovery: client certificate file.' }),
  spec({ name: 'discovery-key', type: 'string', default: '', group: 'Clustering',
    help: 'v3 discovery: client key file.' }),
  spec({ name: 'discovery-cacert', type: 'string', default: '', group: 'Clustering',
    help: 'v3 discovery: CA bundle to verify the service.' }),
  spec({ name: 'discovery-user', type: 'string', default: '', group: 'Clustering',
    help: 'v3 discovery: user[:password].' }),
  spec({ name: 'discovery-password', type: 'string', default: '', group: 'Clustering',
    help: 'v3 discovery: password.' }),
  spec({ name: 'discovery-fallback', type: 'enum', default: 'exit', choices: ['exit', 'proxy'], group: 'Clustering',
    help: 'What to do when discovery fails; only "exit" is valid since the v2 proxy is gone.' }),
  spec({ name: 'discovery-proxy', type: 'string', default: '', group: 'Clustering',
    help: 'HTTP proxy for reaching the discovery service.' }),
  spec({ name: 'discovery-srv', type: 'string', default: '', group: 'Clustering',
    help: 'DNS domain whose SRV records list the initial members.' }),
  spec({ name: 'discovery-srv-name', type: 'string', default: '', group: 'Clustering',
    help: 'Suffix appended to the SRV service name.' }),
  spec({ name: 'strict-reconfig-check', type: 'bool', default: 'true', group: 'Clustering', implemented: true,
    help: 'Refuse membership changes that would leave the cluster without quorum.' }),
  spec({ name: 'pre-vote', type: 'bool', default: 'true', group: 'Clustering', implemented: true,
    help: 'Raft pre-vote: a member returning from a partition cannot disrupt a healthy leader.' }),
  spec({ name: 'auto-compaction-retention', type: 'string', default: '0', group: 'Clustering', implemented: true,
    help: 'How much history auto compaction keeps: hours or a duration ("5m") in periodic mode, revisions in revision mode; 0 = off.' }),
  spec({ name: 'auto-compaction-mode', type: 'string', default: 'periodic', group: 'Clustering', implemented: true,
    help: 'How --auto-compaction-retention is read: periodic or revision.' }),
  spec({ name: 'v2-deprecation', type: 'enum', default: 'write-only', choices: ['write-only', 'write-only-drop-data', 'gone'], group: 'Clustering',
    help: 'Stage of the v2 store retirement; etcd 3.6 enforces its default whatever is given.',
    deprecation: '--v2-deprecation is deprecated and its default is enforced; the value given is ignored' }),
];

const SECURITY: FlagSpec[] = [
  spec({ name: 'cert-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'Server certificate for client connections (https client URLs).' }),
  spec({ name: 'key-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'Private key of --cert-file.' }),
  spec({ name: 'client-cert-auth', type: 'bool', default: 'false', group: 'Security', implemented: true,
    help: 'Require clients to present a certificate signed by --trusted-ca-file (its CN becomes the auth user).' }),
  spec({ name: 'client-cert-file', type: 'string', default: '', group: 'Security',
    help: 'Certificate this member presents when it connects to the client port as a client (default: --cert-file).' }),
  spec({ name: 'client-key-file', type: 'string', default: '', group: 'Security',
    help: 'Private key of --client-cert-file.' }),
  spec({ name: 'client-crl-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'Revoked client certificates.' }),
  spec({ name: 'client-cert-allowed-hostname', type: 'string-list', default: '', group: 'Security', implemented: true,
    help: 'Client certificates must carry one of these SAN host names.' }),
  spec({ name: 'trusted-ca-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'CA bundle that client certificates must chain to; setting it also requires client certificates.' }),
  spec({ name: 'auto-tls', type: 'bool', default: 'false', group: 'Security', implemented: true,
    help: 'Serve clients with a generated self-signed certificate.' }),
  spec({ name: 'peer-cert-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'Certificate for peer connections (https peer URLs), used as server and as client.' }),
  spec({ name: 'peer-key-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'Private key of --peer-cert-file.' }),
  spec({ name: 'peer-client-cert-auth', type: 'bool', default: 'false', group: 'Security', implemented: true,
    help: 'Require peers to present a certificate signed by --peer-trusted-ca-file.' }),
  spec({ name: 'peer-client-cert-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'Certificate presented when dialing peers (default: --peer-cert-file).' }),
  spec({ name: 'peer-client-key-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'Private key of --peer-client-cert-file.' }),
  spec({ name: 'peer-trusted-ca-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'CA bundle that peer certificates must chain to.' }),
  spec({ name: 'peer-cert-allowed-cn', type: 'string-list', default: '', group: 'Security', implemented: true,
    help: 'Peer certificates must carry one of these common names.' }),
  spec({ name: 'peer-cert-allowed-hostname', type: 'string-list', default: '', group: 'Security', implemented: true,
    help: 'Peer certificates must carry one of these SAN host names.' }),
  spec({ name: 'peer-auto-tls', type: 'bool', default: 'false', group: 'Security', implemented: true,
    help: 'Use a generated self-signed certificate for peers when no peer certificate is given.' }),
  spec({ name: 'self-signed-cert-validity', type: 'uint', default: '1', group: 'Security', implemented: true,
    help: 'Validity in years of certificates made by --auto-tls / --peer-auto-tls.' }),
  spec({ name: 'peer-crl-file', type: 'string', default: '', group: 'Security', implemented: true,
    help: 'Revoked peer certificates.' }),
  spec({ name: 'cipher-suites', type: 'string-list', default: '', group: 'Security', implemented: true,
    help: 'Allowed TLS cipher suites (Go names), comma separated; empty = runtime defaults.' }),
  spec({ name: 'cors', type: 'string-list', default: '*', group: 'Security',
    help: 'Origins allowed for CORS on the HTTP endpoints (* = any).' }),
  spec({ name: 'host-whitelist', type: 'string-list', default: '*', group: 'Security',
    help: 'Host headers accepted on insecure HTTP endpoints (* = any).' }),
  spec({ name: 'tls-min-version', type: 'enum', default: 'TLS1.2', choices: ['TLS1.2', 'TLS1.3'], group: 'Security', implemented: true,
    help: 'Lowest TLS version accepted.' }),
  spec({ name: 'tls-max-version', type: 'enum', default: '', choices: ['', 'TLS1.2', 'TLS1.3'], group: 'Security', implemented: true,
    help: 'Highest TLS version accepted (empty = runtime default).' }),
  spec({ name: 'peer-skip-client-san-verification', type: 'bool', default: 'false', group: 'Security', implemented: true,
    help: 'Do not check the SAN of peer client certificates against the peer address.' }),
];

const AUTH: FlagSpec[] = [
  spec({ name: 'auth-token', type: 'string', default: 'simple', group: 'Auth', implemented: true,
    help: 'Auth token kind: "simple", or "jwt,pub-key=<file>,priv-key=<file>,sign-method=<alg>[,ttl=<duration>]".' }),
  spec({ name: 'bcrypt-cost', type: 'uint', default: '10', group: 'Auth', implemented: true,
    help: 'bcrypt cost for stored passwords (4 to 31).' }),
  spec({ name: 'auth-token-ttl', type: 'uint', default: '300', group: 'Auth', implemented: true,
    help: 'Lifetime of a simple auth token, in seconds.' }),
];

const MONITORING: FlagSpec[] = [
  spec({ name: 'enable-pprof', type: 'bool', default: 'false', group: 'Profiling and Monitoring',
    help: 'Serve Go runtime profiles under /debug/pprof/.' }),
  spec({ name: 'metrics', type: 'enum', default: 'basic', choices: ['basic', 'extensive'], group: 'Profiling and Monitoring',
    help: 'Metric detail: "extensive" adds per-RPC latency histograms.' }),
  spec({ name: 'listen-metrics-urls', type: 'url-list', default: '', group: 'Profiling and Monitoring', implemented: true,
    help: 'Extra sockets serving only /metrics, /health, /livez and /readyz (kubeadm: http://127.0.0.1:2381).' }),
];

const LOGGING: FlagSpec[] = [
  spec({ name: 'logger', type: 'string', default: 'zap', group: 'Logging', implemented: true,
    help: 'Logger kind; only "zap" (structured JSON lines) exists.' }),
  spec({ name: 'log-outputs', type: 'string-list', default: 'default', group: 'Logging', implemented: true,
    help: 'Where logs go: default (stderr), stderr, stdout or file paths, comma separated.' }),
  spec({ name: 'log-level', type: 'string', default: 'info', group: 'Logging', implemented: true,
    help: 'Lowest level logged: debug, info, warn, error, panic or fatal.' }),
  spec({ name: 'log-format', type: 'string', default: 'json', group: 'Logging', implemented: true,
    help: 'Log line format: json or console.' }),
  spec({ name: 'enable-log-rotation', type: 'bool', default: 'false', group: 'Logging',
    help: 'Rotate the log file (needs exactly one file in --log-outputs).' }),
  spec({ name: 'log-rotation-config-json', type: 'string', default: '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}', group: 'Logging',
    help: 'Rotation settings as JSON: maxsize (MB), maxage (days), maxbackups, localtime, compress.' }),
  spec({ name: 'warning-unary-request-duration', type: 'duration', default: '300ms', group: 'Logging',
    help: 'Log a warning for unary requests slower than this.' }),
];

const TRACING: FlagSpec[] = [
  spec({ name: 'enable-distributed-tracing', type: 'bool', default: 'false', group: 'Distributed tracing',
    help: 'Export OpenTelemetry traces.' }),
  spec({ name: 'distributed-tracing-address', type: 'string', default: 'localhost:4317', group: 'Distributed tracing',
    help: 'OpenTelemetry collector address.' }),
  spec({ name: 'distributed-tracing-service-name', type: 'string', default: 'etcd', group: 'Distributed tracing',
    help: 'Service name in traces; keep it equal on all members.' }),
  spec({ name: 'distributed-tracing-instance-id', type: 'string', default: '', group: 'Distributed tracing',
    help: 'Instance ID in traces; unique per member.' }),
  spec({ name: 'distributed-tracing-sampling-rate', type: 'int', default: '0', group: 'Distributed tracing',
    help: 'Spans sampled per million.' }),
];

const FEATURES: FlagSpec[] = [
  spec({ name: 'corrupt-check-time', type: 'duration', default: '0s', group: 'Features',
    help: 'Period of the cluster-wide data corruption check (0 = off).' }),
  spec({ name: 'compact-hash-check-time', type: 'duration', default: '1m', group: 'Features',
    help: 'Period at which the leader compares compaction hashes with followers.' }),
  spec({ name: 'compaction-batch-limit', type: 'int', default: '1000', group: 'Features',
    help: 'Revisions removed per compaction batch.' }),
  spec({ name: 'compaction-sleep-interval', type: 'duration', default: '0s', group: 'Features',
    help: 'Pause between compaction batches.', defaultNote: '0 = 10ms' }),
  spec({ name: 'watch-progress-notify-interval', type: 'duration', default: '10m', group: 'Features', implemented: true,
    help: 'Period of progress notifications sent to watchers that asked for them (kubeadm uses 5s).' }),
  spec({ name: 'warning-apply-duration', type: 'duration', default: '100ms', group: 'Features',
    help: 'Log a warning when applying one request takes longer than this.' }),
  spec({ name: 'bootstrap-defrag-threshold-megabytes', type: 'uint', default: '0', group: 'Features',
    help: 'Defragment at start when that frees at least this many MB (0 = never).' }),
  spec({ name: 'max-learners', type: 'int', default: '1', group: 'Features', implemented: true,
    help: 'Most learner (non-voting) members the cluster may hold.' }),
  spec({ name: 'downgrade-check-time', type: 'duration', default: '5s', group: 'Features',
    help: 'Period of the downgrade status check.' }),
  spec({ name: 'snapshot-catchup-entries', type: 'uint', default: '5000', group: 'Features', implemented: true,
    help: 'Raft entries kept after a snapshot so slow followers can catch up without one.' }),
];

const UNSAFE: FlagSpec[] = [
  spec({ name: 'force-new-cluster', type: 'bool', default: 'false', group: 'Unsafe feature', implemented: true,
    help: 'Disaster recovery: restart this member as the only member of its cluster, keeping its data.' }),
  spec({ name: 'unsafe-no-fsync', type: 'bool', default: 'false', group: 'Unsafe feature',
    help: 'Never fsync; a crash can lose acknowledged writes. Tests only.' }),
];

const TSETCD: FlagSpec[] = [
  spec({ name: 'config-file', type: 'string', default: '', group: 'tsetcd', implemented: true,
    help: 'etcd YAML config file; when given, all other flags and ETCD_* variables are ignored.' }),
  spec({ name: 'etcd-version', type: 'string', default: '3.6.5', group: 'tsetcd', implemented: true,
    help: 'etcd version tsetcd reports in Status and /version (Kubernetes enables features by it).' }),
  spec({ name: 'client-warm-up-connections', type: 'uint', default: '800', group: 'tsetcd', implemented: true,
    help: 'Connections a starting member opens to its own first http client URL, one serializable Range each (not counted in metrics), so that serving a new client connection is optimized code before clients arrive. 0 = off.' }),
  spec({ name: 'version', type: 'bool', default: 'false', group: 'tsetcd', implemented: true,
    help: 'Print the version and exit.' }),
];

const CANONICAL: FlagSpec[] = [
  ...MEMBER, ...CLUSTERING, ...SECURITY, ...AUTH, ...MONITORING, ...LOGGING, ...TRACING, ...FEATURES, ...UNSAFE, ...TSETCD,
];

function canonical(name: string): FlagSpec {
  const found = CANONICAL.find((f) => f.name === name);
  if (found === undefined) throw new Error(`flag table: no canonical flag --${name}`);
  return found;
}

// ---- older spellings -------------------------------------------------------------------------

const EXPERIMENTAL: FlagSpec[] = [
  gateFlag('experimental-initial-corrupt-check', 'InitialCorruptCheck', 'Check data for corruption before serving.'),
  renamed('experimental-corrupt-check-time', canonical('corrupt-check-time')),
  gateFlag('experimental-compact-hash-check-enabled', 'CompactHashCheck', 'Let the leader compare compaction hashes with followers.'),
  renamed('experimental-compact-hash-check-time', canonical('compact-hash-check-time')),
  gateFlag('experimental-enable-lease-checkpoint', 'LeaseCheckpoint', 'Let the leader checkpoint remaining lease TTLs to followers.'),
  gateFlag('experimental-enable-lease-checkpoint-persist', 'LeaseCheckpointPersist', 'Persist lease TTL checkpoints.'),
  renamed('experimental-compaction-batch-limit', canonical('compaction-batch-limit')),
  renamed('experimental-compaction-sleep-interval', canonical('compaction-sleep-interval')),
  renamed('experimental-peer-skip-client-san-verification', canonical('peer-skip-client-san-verification')),
  renamed('experimental-watch-progress-notify-interval', canonical('watch-progress-notify-interval')),
  renamed('experimental-warning-apply-duration', canonical('warning-apply-duration')),
  renamed('experimental-warning-unary-request-duration', canonical('warning-unary-request-duration')),
  gateFlag('experimental-txn-mode-write-with-shared-buffer', 'TxnModeWriteWithSharedBuffer', 'Share the read buffer inside write transactions.'),
  renamed('experimental-bootstrap-defrag-threshold-megabytes', canonical('bootstrap-defrag-threshold-megabytes')),
  renamed('experimental-memory-mlock', canonical('memory-mlock')),
  renamed('experimental-snapshot-catchup-entries', canonical('snapshot-catchup-entries')),
  renamed('experimental-downgrade-check-time', canonical('downgrade-check-time')),
  gateFlag('experimental-stop-grpc-service-on-defrag', 'StopGRPCServiceOnDefrag', 'Stop serving gRPC while defragmenting.'),
  renamed('experimental-enable-distributed-tracing', canonical('enable-distributed-tracing')),
  renamed('experimental-distributed-tracing-address', canonical('distributed-tracing-address')),
  renamed('experimental-distributed-tracing-service-name', canonical('distributed-tracing-service-name')),
  renamed('experimental-distributed-tracing-instance-id', canonical('distributed-tracing-instance-id')),
  renamed('experimental-distributed-tracing-sampling-rate', canonical('distributed-tracing-sampling-rate')),
  renamed('experimental-max-learners', canonical('max-learners')),
];

const REMOVED: FlagSpec[] = [
  spec({ name: 'enable-v2', type: 'bool', default: 'false', group: REMOVED_IN_3_6, implemented: true, removedIn: '3.6',
    help: 'Serve the v2 API. tsetcd serves only v3: false is accepted, true is refused.' }),
  spec({ name: 'experimental-enable-v2v3', type: 'string', default: '', group: REMOVED_IN_3_6, removedIn: '3.6',
    help: 'Serve v2 requests from the v3 store under this prefix.' }),
  renamed('experimental-backend-bbolt-freelist-type', canonical('backend-bbolt-freelist-type'),
    { group: REMOVED_IN_3_6, removedIn: '3.5',
      deprecation: '--experimental-backend-bbolt-freelist-type was renamed in etcd 3.5; use --backend-bbolt-freelist-type' }),
  renamed('log-output', canonical('log-outputs'),
    { group: REMOVED_IN_3_6, removedIn: '3.5',
      deprecation: '--log-output was removed in etcd 3.5; use --log-outputs' }),
  spec({ name: 'debug', type: 'bool', default: 'false', group: REMOVED_IN_3_6, removedIn: '3.5',
    help: 'Old switch for debug logging; use --log-level=debug.' }),
  spec({ name: 'log-package-levels', type: 'string', default: '', group: REMOVED_IN_3_6, removedIn: '3.5',
    help: 'Old per-package log levels (capnslog).' }),
  spec({ name: 'next-cluster-version-compatible', type: 'bool', default: 'false', group: REMOVED_IN_3_6, removedIn: '3.5',
    help: 'Let a 3.4 member join a 3.5 cluster.' }),
  spec({ name: 'proxy', type: 'enum', default: 'off', choices: ['off', 'readonly', 'on'], group: REMOVED_IN_3_6, removedIn: '3.6',
    help: 'v2 proxy mode; tsetcd only runs as a member ("off").' }),
  spec({ name: 'proxy-failure-wait', type: 'uint', default: '5000', group: REMOVED_IN_3_6, removedIn: '3.6',
    help: 'v2 proxy: ms an endpoint stays marked failed.' }),
  spec({ name: 'proxy-refresh-interval', type: 'uint', default: '30000', group: REMOVED_IN_3_6, removedIn: '3.6',
    help: 'v2 proxy: ms between endpoint refreshes.' }),
  spec({ name: 'proxy-dial-timeout', type: 'uint', default: '1000', group: REMOVED_IN_3_6, removedIn: '3.6',
    help: 'v2 proxy: dial timeout in ms.' }),
  spec({ name: 'proxy-write-timeout', type: 'uint', default: '5000', group: REMOVED_IN_3_6, removedIn: '3.6',
    help: 'v2 proxy: write timeout in ms.' }),
  spec({ name: 'proxy-read-timeout', type: 'uint', default: '0', group: REMOVED_IN_3_6, removedIn: '3.6',
    help: 'v2 proxy: read timeout in ms.' }),
];

/**
 * Flags of etcd 0.4 that etcd still swallows (registered as ignored bool-like flags) so that
 * ancient unit files keep starting. tsetcd does the same, with a warning.
 */
export const LEGACY_IGNORED_FLAGS: ReadonlySet<string> = new Set([
  'cluster-active-size', 'cluster-remove-delay', 'cluster-sync-interval', 'config', 'force',
  'max-result-buffer', 'max-retry-attempts', 'peer-heartbeat-interval', 'peer-election-timeout',
  'retry-interval', 'snapshot', 'v', 'vv',
]);

/** The whole table, in help order. */
export const FLAGS: readonly FlagSpec[] = Object.freeze([...CANONICAL, ...EXPERIMENTAL, ...REMOVED]);

const BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((f) => [f.name, f]));

export function findFlag(name: string): FlagSpec | undefined {
  return BY_NAME.get(name);
}

export function getFlag(name: string): FlagSpec {
  const f = BY_NAME.get(name);
  if (f === undefined) throw new Error(`unknown flag --${name}`);
  return f;
}

/** The canonical flag a spelling sets (itself unless it is an old alias). */
export function canonicalName(name: string): string {
  return getFlag(name).aliasOf ?? name;
}

/** `initial-cluster-token` → `ETCD_INITIAL_CLUSTER_TOKEN`. */
export function envNameOf(flagName: string): string {
  return 'ETCD_' + flagName.toUpperCase().replace(/-/g, '_');
}

function checkTableInvariants(): void {
  const seen = new Set<string>();
  for (const f of FLAGS) {
    if (seen.has(f.name)) throw new Error(`flag table: duplicate --${f.name}`);
    seen.add(f.name);
    if (f.aliasOf !== undefined) {
      const target = BY_NAME.get(f.aliasOf);
      if (target === undefined || target.aliasOf !== undefined) throw new Error(`flag table: bad alias --${f.name}`);
      if (target.type !== f.type) throw new Error(`flag table: alias --${f.name} type differs`);
    }
    if (f.type === 'enum' && (f.choices === undefined || !f.choices.includes(f.default))) {
      throw new Error(`flag table: enum --${f.name} default not among choices`);
    }
    if (LEGACY_IGNORED_FLAGS.has(f.name)) throw new Error(`flag table: --${f.name} is also legacy-ignored`);
  }
}
checkTableInvariants();
