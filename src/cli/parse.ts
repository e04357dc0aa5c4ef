/**
 * `parseConfig`: etcd-compatible command line + `ETCD_*` environment + YAML config file →
 * typed EtcdConfig, with etcd's validation and error wording.
 *
 * Precedence (etcd 3.6): a config file, when given, replaces flags and environment entirely;
 * otherwise a command-line flag beats its environment variable (tsetcd warns; etcd 3.4 refused).
 */
import { join } from 'node:path';
import { scanArgs } from './argv.js';
import { bootstrapInputOf, checkBootstrapSync, isDataDirInitialized, parseInitialCluster } from './bootstrap.js';
import {
  DEFAULT_BACKEND_BATCH_INTERVAL_MS,
  DEFAULT_BACKEND_BATCH_LIMIT,
  DEFAULT_ETCD_VERSION,
  DEFAULT_QUOTA_BACKEND_BYTES,
  MAX_ELECTION_TIMEOUT_MS,
  MAX_RECOMMENDED_QUOTA_BACKEND_BYTES,
  type AutoCompactionMode,
  type ConfigSource,
  type EtcdConfig,
  type FlagValue,
  type InitialClusterMember,
  type LogFormat,
  type LogLevel,
  type MetricsLevel,
  type TlsConfig,
} from './config.js';
import { convertText, defaultValue } from './convert.js';
import { loadConfigFile } from './configfile.js';
import { ConfigError, ValueError, goQuote, goQuoteList } from './errors.js';
import { FEATURE_GATE_DEFAULTS, FLAGS, envNameOf, getFlag, type FlagSpec } from './flags.js';
import { helpText, versionText } from './help.js';
import { EtcdUrl, bindUrlProblem, hostUrlProblem } from './url.js';
import { formatGoDuration, parseGoDurationNs } from './values.js';

export { ConfigError } from './errors.js';

export type ParseResult =
  | { action: 'run'; config: EtcdConfig; warnings: string[] }
  | { action: 'version'; text: string; etcdVersion: string }
  | { action: 'help'; text: string };

export interface ParseOptions {
  /**
   * Whether the data dir already holds a member (bootstrap flags are then ignored, as in etcd).
   * Default: looked up on disk (`<data-dir>/member` exists, or the WAL dir is non-empty).
   */
  dataDirInitialized?: boolean;
}

interface Setting {
  /** Flag name as spelled (may be an old alias). */
  name: string;
  text: string;
  value: FlagValue;
  source: ConfigSource;
}

const SUBCOMMANDS = new Set(['gateway', 'grpc-proxy']);
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'panic', 'fatal'];
const BOOTSTRAP_DISCOVERY_FLAGS = ['discovery', 'discovery-srv', 'discovery-endpoints'] as const;

// ---- collecting explicit settings ------------------------------------------------------------

/** Environment variable name → flag it sets (every flag except the special `version`/`config-file`). */
const FLAG_BY_ENV: ReadonlyMap<string, string> = new Map(
  FLAGS.filter((f) => f.name !== 'version' && f.name !== 'config-file').map((f) => [envNameOf(f.name), f.name]),
);

function envSettings(env: NodeJS.ProcessEnv, cliNames: ReadonlySet<string>, warnings: string[]): Setting[] {
  const out: Setting[] = [];
  for (const key of Object.keys(env).sort()) {
    if (!key.startsWith('ETCD_') || key === 'ETCD_CONFIG_FILE') continue;
    const value = env[key] ?? '';
    if (key === 'ETCD_VERSION') {
      warnings.push('cannot set special environment variable ETCD_VERSION; it is ignored');
      continue;
    }
    const flagName = FLAG_BY_ENV.get(key);
    if (flagName === undefined) {
      warnings.push(`unrecognized environment variable ${key}`);
      continue;
    }
    if (cliNames.has(flagName)) {
      warnings.push(`environment variable ${key} is shadowed by the command-line flag --${flagName}; the flag wins`);
      continue;
    }
    if (value === '') {
      warnings.push(`environment variable ${key} is empty; it is ignored`);
      continue;
    }
    out.push({ name: flagName, text: value, value: convertEnv(key, getFlag(flagName), value), source: 'env' });
  }
  return out;
}

function convertEnv(key: string, spec: FlagSpec, text: string): FlagValue {
  try {
    return convertText(spec, text);
  } catch (e) {
    if (e instanceof ValueError) throw new ConfigError(`invalid value ${goQuote(text)} for ${key}: ${e.message}`);
    throw e;
  }
}

interface Explicit {
  /** Canonical flag name → the setting that set it. */
  byCanonical: Map<string, Setting>;
  /** Feature gate name → value set by an experimental bool flag, with the flag used. */
  gateFlags: Map<string, Setting>;
  raw: Map<string, string>;
  sources: Map<string, ConfigSource>;
}

function collectExplicit(settings: readonly Setting[]): Explicit {
  const ex: Explicit = { byCanonical: new Map(), gateFlags: new Map(), raw: new Map(), sources: new Map() };
  for (const s of settings) {
    const spec = getFlag(s.name);
    ex.raw.set(s.name, s.text);
    ex.sources.set(s.name, s.source);
    if (spec.featureGate !== undefined) {
      ex.gateFlags.set(spec.featureGate, s);
      continue;
    }
    const canonical = spec.aliasOf ?? spec.name;
    const earlier = ex.byCanonical.get(canonical);
    if (earlier !== undefined && earlier.name !== s.name) {
      const [oldName, newName] = spec.aliasOf !== undefined ? [s.name, canonical] : [earlier.name, canonical];
      throw new ConfigError(`cannot set --${oldName} and --${newName} at the same time, please use --${newName} only`);
    }
    ex.byCanonical.set(canonical, s);
  }
  return ex;
}

/** Comparable text of a typed value (lists by element text, maps by sorted entries). */
function valueKey(v: FlagValue): string {
  if (Array.isArray(v)) return v.map(String).join(',');
  if (v instanceof Map) return [...v.entries()].map(([k, b]) => `${k}=${String(b)}`).sort().join(',');
  return String(v);
}

/**
 * Deprecations always warn. A flag tsetcd does not implement warns when its value differs from
 * etcd's default: asking for the default (`auto-tls: false` in etcd's sample file) asks for
 * nothing tsetcd fails to do.
 */
function settingWarnings(ex: Explicit, warnings: string[]): void {
  const all = [...ex.byCanonical.values(), ...ex.gateFlags.values()];
  const ordered = all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const s of ordered) {
    const spec = getFlag(s.name);
    if (spec.deprecation !== undefined) warnings.push(spec.deprecation);
    if (!spec.implemented && valueKey(s.value) !== valueKey(defaultValue(spec))) {
      warnings.push(`flag --${s.name} is accepted but not implemented by tsetcd yet; it has no effect`);
    }
  }
}

// ---- typed access to the merged values -----------------------------------------------------

class Values {
  constructor(private readonly map: ReadonlyMap<string, FlagValue>, readonly explicit: Explicit) {}

  isSet(name: string): boolean {
    return this.explicit.byCanonical.has(name);
  }

  str(name: string): string {
    return this.typed(name, (v): v is string => typeof v === 'string');
  }

  bool(name: string): boolean {
    return this.typed(name, (v): v is boolean => typeof v === 'boolean');
  }

  num(name: string): number {
    return this.typed(name, (v): v is number => typeof v === 'number');
  }

  urls(name: string): EtcdUrl[] {
    return this.typed(name, (v): v is EtcdUrl[] => Array.isArray(v) && v.every((u) => u instanceof EtcdUrl));
  }

  list(name: string): string[] {
    return this.typed(name, (v): v is string[] => Array.isArray(v) && v.every((u) => typeof u === 'string'));
  }

  gates(name: string): ReadonlyMap<string, boolean> {
    return this.typed(name, (v): v is ReadonlyMap<string, boolean> => v instanceof Map);
  }

  private typed<T extends FlagValue>(name: string, guard: (v: FlagValue) => v is T): T {
    const v = this.map.get(name);
    if (v === undefined || !guard(v)) throw new Error(`config invariant: --${name} missing or of the wrong type`);
    return v;
  }
}

function mergeValues(ex: Explicit): Map<string, FlagValue> {
  const map = new Map<string, FlagValue>();
  for (const spec of FLAGS) {
    if (spec.aliasOf !== undefined || spec.featureGate !== undefined) continue;
    map.set(spec.name, defaultValue(spec));
  }
  for (const [name, s] of ex.byCanonical) map.set(name, s.value);
  return map;
}

// ---- validation (etcd order and wording) -----------------------------------------------------

function refuseUnsupportedModes(v: Values): void {
  if (v.bool('enable-v2')) {
    throw new ConfigError('--enable-v2=true is not supported: tsetcd serves only the etcd v3 API (etcd 3.6 removed v2 too)');
  }
  if (v.str('proxy') !== 'off') {
    throw new ConfigError(`--proxy=${v.str('proxy')} is not supported: tsetcd runs only as a cluster member (etcd 3.6 removed the v2 proxy)`);
  }
  if (v.str('discovery-fallback') === 'proxy') {
    throw new ConfigError('v2 proxy is deprecated, and --discovery-fallback can\'t be configured as "proxy"');
  }
}

function validateFeatureGates(v: Values, ex: Explicit): Map<string, boolean> {
  const fromFlag = v.gates('feature-gates');
  for (const [gate, s] of ex.gateFlags) {
    if (fromFlag.has(gate)) {
      const enabled = fromFlag.get(gate)!;
      throw new ConfigError(
        `cannot specify both flags: --${s.name}=${String(s.value)} and --feature-gates=${gate}=${enabled} at the same time, ` +
          `please just use --feature-gates=${gate}=${enabled}`,
      );
    }
  }
  const gates = new Map(FEATURE_GATE_DEFAULTS);
  for (const [gate, s] of ex.gateFlags) gates.set(gate, s.value as boolean);
  for (const [gate, on] of fromFlag) gates.set(gate, on);
  if (gates.get('LeaseCheckpointPersist') === true && gates.get('LeaseCheckpoint') !== true) {
    throw new ConfigError('enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint');
  }
  return gates;
}

function validateLogging(v: Values, warnings: string[]): { level: LogLevel; format: LogFormat; outputs: string[] } {
  const logger = v.str('logger');
  if (logger === 'capnslog') throw new ConfigError('--logger=capnslog is removed in v3.5');
  if (logger !== 'zap') throw new ConfigError(`unknown logger option ${goQuote(logger)}`);
  const outputs = v.list('log-outputs');
  if (outputs.length > 1 && outputs.includes('default')) {
    throw new ConfigError('multi logoutput for "default" is not supported yet');
  }
  if (outputs.length > 1 && outputs.includes('systemd/journal')) {
    throw new ConfigError(
      `running with systemd/journal but other '--log-outputs' values (${goQuoteList(outputs)}) are configured with 'default'; override 'default' value with something else`,
    );
  }
  const resolvedOutputs = outputs.length === 0 ? ['stderr'] : outputs.map((o) => (o === 'default' ? 'stderr' : o));
  if (outputs.includes('systemd/journal')) {
    warnings.push('log output systemd/journal is not implemented by tsetcd; logging to stderr (journald captures it under systemd)');
    resolvedOutputs.splice(0, resolvedOutputs.length, 'stderr');
  }
  const levelText = v.str('log-level');
  const level = levelText === '' ? 'info' : levelText.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(`unrecognized level: ${goQuote(levelText)}`);
  }
  const formatText = v.str('log-format');
  const format = formatText === '' ? 'json' : formatText;
  if (format !== 'json' && format !== 'console') {
    throw new ConfigError(`unknown log format: ${formatText}, supported values json, console`);
  }
  return { level: level as LogLevel, format, outputs: resolvedOutputs };
}

function validateUrls(v: Values): void {
  for (const flag of ['listen-peer-urls', 'listen-client-urls', 'listen-client-http-urls', 'listen-metrics-urls']) {
    const problem = bindUrlProblem(v.urls(flag));
    if (problem !== null) throw new ConfigError(problem);
  }
  for (const flag of ['initial-advertise-peer-urls', 'advertise-client-urls']) {
    const urls = v.urls(flag);
    const problem = hostUrlProblem(urls);
    if (problem !== null) {
      const joined = urls.map((u) => u.text).join(',');
      throw new ConfigError(`--${flag} ${goQuote(joined)} must be "host:port" (${problem})`);
    }
  }
}

function validateBootstrapSource(v: Values): void {
  const sources = [
    v.str('discovery') !== '',
    v.isSet('initial-cluster'),
    v.str('discovery-srv') !== '',
    v.list('discovery-endpoints').length > 0,
  ].filter(Boolean).length;
  if (sources > 1) {
    throw new ConfigError(
      'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery", "discovery-endpoints" or "discovery-srv"',
    );
  }
  for (const flag of BOOTSTRAP_DISCOVERY_FLAGS) {
    const used = flag === 'discovery-endpoints' ? v.list(flag).length > 0 : v.str(flag) !== '';
    if (used) {
      throw new ConfigError(
        `--${flag} is not supported: tsetcd does not implement discovery; list the members with --initial-cluster instead`,
      );
    }
  }
}

function validateTimeouts(v: Values): void {
  const heartbeatMs = v.num('heartbeat-interval');
  const electionMs = v.num('election-timeout');
  if (heartbeatMs === 0) throw new ConfigError(`--heartbeat-interval must be >0 (set to ${heartbeatMs}ms)`);
  if (electionMs === 0) throw new ConfigError(`--election-timeout must be >0 (set to ${electionMs}ms)`);
  if (5 * heartbeatMs > electionMs) {
    throw new ConfigError(
      `--election-timeout[${electionMs}ms] should be at least as 5 times as --heartbeat-interval[${heartbeatMs}ms]`,
    );
  }
  if (electionMs > MAX_ELECTION_TIMEOUT_MS) {
    throw new ConfigError(`--election-timeout[${electionMs}ms] is too long, and should be set less than ${MAX_ELECTION_TIMEOUT_MS}ms`);
  }
}

function validateAdvertiseClient(v: Values, fromFile: boolean, warnings: string[]): void {
  if (!v.isSet('listen-client-urls') || v.isSet('advertise-client-urls')) return;
  if (!fromFile) throw new ConfigError('--advertise-client-urls is required when --listen-client-urls is set explicitly');
  // etcd keeps the default here; that publishes localhost to clients, which is rarely meant.
  warnings.push(
    'config file sets listen-client-urls but not advertise-client-urls; advertising http://localhost:2379 as etcd does. ' +
      'Set advertise-client-urls to the URL clients should use.',
  );
}

interface Compaction {
  mode: AutoCompactionMode;
  periodMs: number;
  retainRevisions: number;
}

/** etcd's reading of --auto-compaction-retention: an integer is hours (periodic) or revisions, else a duration. */
function validateCompaction(v: Values): Compaction {
  const mode = v.str('auto-compaction-mode');
  if (mode === '') throw new ConfigError('undefined auto-compaction-mode');
  if (mode !== 'periodic' && mode !== 'revision') throw new ConfigError(`unknown auto-compaction-mode ${goQuote(mode)}`);
  const retention = v.str('auto-compaction-retention');
  if (/^[+-]?\d+$/.test(retention) && Number(retention) >= 0) {
    const n = Number(retention);
    return mode === 'revision'
      ? { mode, periodMs: 0, retainRevisions: n }
      : { mode, periodMs: n * 3_600_000, retainRevisions: 0 };
  }
  let ns: bigint;
  try {
    ns = parseGoDurationNs(retention);
  } catch (e) {
    throw new ConfigError(`error parsing CompactionRetention: ${(e as Error).message}`);
  }
  // As in etcd, a duration in revision mode counts nanoseconds as revisions.
  return mode === 'revision'
    ? { mode, periodMs: 0, retainRevisions: Number(ns) }
    : { mode, periodMs: Number(ns) / 1e6, retainRevisions: 0 };
}

function validateTlsVersions(v: Values): void {
  const rank = (t: string): number => (t === 'TLS1.2' ? 2 : t === 'TLS1.3' ? 3 : 0);
  const min = v.str('tls-min-version');
  const max = v.str('tls-max-version');
  if (max !== '' && rank(min) > rank(max)) {
    throw new ConfigError(`min version (${min}) is greater than max version (${max})`);
  }
  if (min === 'TLS1.3' && v.list('cipher-suites').length > 0) {
    throw new ConfigError('cipher suites cannot be configured when only TLS1.3 is enabled');
  }
}

function validateCompactHashCheck(v: Values): void {
  if (v.num('compact-hash-check-time') <= 0) {
    const ns = BigInt(Math.round(v.num('compact-hash-check-time') * 1e6));
    throw new ConfigError(`--compact-hash-check-time must be >0 (set to ${formatGoDuration(ns)})`);
  }
}

function validateEtcdVersion(text: string): string {
  if (!/^3\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(text)) {
    throw new ConfigError(`invalid value ${goQuote(text)} for flag -etcd-version: must be an etcd 3.x release such as ${DEFAULT_ETCD_VERSION}`);
  }
  return text;
}

function validateAuth(v: Values, warnings: string[]): { token: string; bcryptCost: number } {
  const token = v.str('auth-token');
  const kind = token.split(',')[0];
  if (kind !== 'simple' && kind !== 'jwt') {
    throw new ConfigError(`invalid value ${goQuote(token)} for flag -auth-token: token type must be "simple" or "jwt,..."`);
  }
  let bcryptCost = v.num('bcrypt-cost');
  if (bcryptCost < 4 || bcryptCost > 31) {
    // etcd warns and falls back rather than refusing to start.
    warnings.push(`invalid bcrypt-cost ${bcryptCost} (must be between 4 and 31); using the default 10`);
    bcryptCost = 10;
  }
  return { token, bcryptCost };
}

function tlsConfig(v: Values, side: 'client' | 'peer', clientOnly: { allowedCn: string[]; skipSan: boolean }): TlsConfig {
  const p = side === 'peer' ? 'peer-' : '';
  const trustedCaFile = v.str(`${p}trusted-ca-file`);
  const clientCertAuth = v.bool(`${p}client-cert-auth`);
  return {
    certFile: v.str(`${p}cert-file`),
    keyFile: v.str(`${p}key-file`),
    clientCertFile: v.str(side === 'peer' ? 'peer-client-cert-file' : 'client-cert-file'),
    clientKeyFile: v.str(side === 'peer' ? 'peer-client-key-file' : 'client-key-file'),
    trustedCaFile,
    clientCertAuth,
    requireClientCert: clientCertAuth || trustedCaFile !== '',
    autoTls: v.bool(side === 'peer' ? 'peer-auto-tls' : 'auto-tls'),
    crlFile: v.str(side === 'peer' ? 'peer-crl-file' : 'client-crl-file'),
    allowedCn: side === 'peer' ? v.list('peer-cert-allowed-cn') : clientOnly.allowedCn,
    allowedHostname: v.list(side === 'peer' ? 'peer-cert-allowed-hostname' : 'client-cert-allowed-hostname'),
    skipClientSanVerification: side === 'peer' ? v.bool('peer-skip-client-san-verification') : clientOnly.skipSan,
  };
}

/** etcd's listener rules for TLS: https needs a key pair; http with TLS material only earns a warning. */
function validateTlsUse(cfg: EtcdConfig, warnings: string[]): void {
  const clientTlsGiven = cfg.clientTls.certFile !== '' || cfg.clientTls.keyFile !== '';
  // --auto-tls / --peer-auto-tls make the certificate at start (src/api/tls-config.ts).
  const clientTlsAvailable = clientTlsGiven || cfg.clientTls.autoTls;
  for (const u of cfg.listenClientUrls) {
    if (u.secure && !clientTlsAvailable) {
      throw new ConfigError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${u.text} with HTTPS scheme`);
    }
    if (!u.secure && clientTlsGiven) {
      warnings.push(`client URL ${u.text} is http/unix while --cert-file/--key-file are set; TLS is not used on it`);
    }
  }
  const peerTlsGiven = cfg.peerTls.certFile !== '' || cfg.peerTls.keyFile !== '';
  for (const u of cfg.listenPeerUrls) {
    if (u.secure && !peerTlsGiven && !cfg.peerTls.autoTls) {
      throw new ConfigError(`TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${u.text} with HTTPS scheme`);
    }
    if (!u.secure && peerTlsGiven) {
      warnings.push(`peer URL ${u.text} is http while --peer-cert-file/--peer-key-file are set; TLS is not used on it`);
    }
  }
  if (cfg.listenMetricsUrls.some((u) => u.secure) && !clientTlsAvailable) {
    throw new ConfigError('client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url');
  }
  for (const tls of [cfg.clientTls, cfg.peerTls]) {
    const prefix = tls === cfg.peerTls ? '--peer-' : '--';
    if ((tls.certFile === '') !== (tls.keyFile === '')) {
      throw new ConfigError(`${prefix}cert-file and ${prefix}key-file must be given together`);
    }
  }
}

// ---- building EtcdConfig ---------------------------------------------------------------------

/** etcd derives `<name>=<advertised peer URLs>` when --initial-cluster is not given. */
function initialClusterOf(v: Values, name: string, advertisePeer: readonly EtcdUrl[]): InitialClusterMember[] {
  if (v.isSet('initial-cluster')) return parseInitialCluster(v.str('initial-cluster'));
  return [{ name, peerUrls: advertisePeer.map((u) => u.text) }];
}

function buildConfig(v: Values, ctx: BuildContext): EtcdConfig {
  const name = v.str('name');
  const dataDir = v.str('data-dir') === '${name}.etcd' ? `${name}.etcd` : v.str('data-dir');
  const walDirGiven = v.str('wal-dir');
  const advertisePeer = v.urls('initial-advertise-peer-urls');
  const quota = v.num('quota-backend-bytes');
  const batchIntervalMs = v.num('backend-batch-interval');
  const batchLimit = v.num('backend-batch-limit');
  const clientOnly = { allowedCn: ctx.clientAllowedCn, skipSan: ctx.clientSkipSan };
  return {
    name,
    dataDir,
    walDir: walDirGiven !== '' ? walDirGiven : join(dataDir, 'member', 'wal'),
    walDirDedicated: walDirGiven !== '',
    listenClientUrls: v.urls('listen-client-urls'),
    advertiseClientUrls: v.urls('advertise-client-urls'),
    listenPeerUrls: v.urls('listen-peer-urls'),
    initialAdvertisePeerUrls: advertisePeer,
    listenMetricsUrls: v.urls('listen-metrics-urls'),
    initialCluster: initialClusterOf(v, name, advertisePeer),
    initialClusterToken: v.str('initial-cluster-token'),
    initialClusterState: v.str('initial-cluster-state') === 'existing' ? 'existing' : 'new',
    snapshotCount: v.num('snapshot-count'),
    heartbeatIntervalMs: v.num('heartbeat-interval'),
    electionTimeoutMs: v.num('election-timeout'),
    maxTxnOps: v.num('max-txn-ops'),
    clientWarmUpConnections: v.num('client-warm-up-connections'),
    maxRequestBytes: v.num('max-request-bytes'),
    quotaBackendBytes: quota === 0 ? DEFAULT_QUOTA_BACKEND_BYTES : quota,
    backendBatchIntervalMs: batchIntervalMs <= 0 ? DEFAULT_BACKEND_BATCH_INTERVAL_MS : batchIntervalMs,
    backendBatchLimit: batchLimit <= 0 ? DEFAULT_BACKEND_BATCH_LIMIT : batchLimit,
    strictReconfigCheck: v.bool('strict-reconfig-check'),
    preVote: v.bool('pre-vote'),
    autoCompactionMode: ctx.compaction.mode,
    autoCompactionRetention: v.str('auto-compaction-retention'),
    autoCompactionPeriodMs: ctx.compaction.periodMs,
    autoCompactionRetainRevisions: ctx.compaction.retainRevisions,
    watchProgressNotifyIntervalMs: v.num('watch-progress-notify-interval'),
    forceNewCluster: v.bool('force-new-cluster'),
    unsafeNoFsync: v.bool('unsafe-no-fsync'),
    maxLearners: v.num('max-learners'),
    clientTls: tlsConfig(v, 'client', clientOnly),
    peerTls: tlsConfig(v, 'peer', clientOnly),
    authToken: ctx.auth.token,
    bcryptCost: ctx.auth.bcryptCost,
    authTokenTtlSec: v.num('auth-token-ttl'),
    logger: 'zap',
    logLevel: ctx.logging.level,
    logOutputs: ctx.logging.outputs,
    logFormat: ctx.logging.format,
    metrics: v.str('metrics') as MetricsLevel,
    etcdVersion: ctx.etcdVersion,
    grpcKeepaliveMinTimeMs: v.num('grpc-keepalive-min-time'),
    grpcKeepaliveIntervalMs: v.num('grpc-keepalive-interval'),
    grpcKeepaliveTimeoutMs: v.num('grpc-keepalive-timeout'),
    enableV2: false,
    featureGates: ctx.featureGates,
    configFile: ctx.configFile,
    raw: v.explicit.raw,
    sources: v.explicit.sources,
    flagValues: ctx.flagValues,
  };
}

interface BuildContext {
  compaction: Compaction;
  logging: { level: LogLevel; format: LogFormat; outputs: string[] };
  auth: { token: string; bcryptCost: number };
  etcdVersion: string;
  featureGates: ReadonlyMap<string, boolean>;
  configFile: string;
  clientAllowedCn: string[];
  clientSkipSan: boolean;
  flagValues: ReadonlyMap<string, FlagValue>;
}

function miscWarnings(cfg: EtcdConfig, warnings: string[]): void {
  if (cfg.name === 'default') {
    warnings.push('--name is "default"; give each member its own name, or members added later may be confused with this one');
  }
  if (cfg.quotaBackendBytes > MAX_RECOMMENDED_QUOTA_BACKEND_BYTES) {
    warnings.push(`--quota-backend-bytes ${cfg.quotaBackendBytes} exceeds the recommended maximum of 8 GiB`);
  }
}

/** Bootstrap flags matter only for a member that does not exist yet. */
function checkBootstrap(cfg: EtcdConfig, opts: ParseOptions, warnings: string[]): void {
  const initialized = opts.dataDirInitialized ?? isDataDirInitialized(cfg.dataDir, cfg.walDir);
  try {
    checkBootstrapSync(bootstrapInputOf(cfg));
  } catch (e) {
    if (!(e instanceof ConfigError) || !initialized) throw e;
    warnings.push(`data dir ${cfg.dataDir} already holds a member, so the bootstrap flags are ignored (they would fail: ${e.message})`);
  }
}

// ---- entry point ------------------------------------------------------------------------------

function namesOf(settings: readonly { name: string }[]): Set<string> {
  return new Set(settings.map((s) => s.name));
}

interface Gathered {
  settings: Setting[];
  configFile: string;
  clientAllowedCn: string[];
  clientSkipSan: boolean;
}

/** Explicit settings from the config file if there is one (etcd then ignores flags and env), else flags + env. */
function gatherSettings(cli: readonly Setting[], env: NodeJS.ProcessEnv, warnings: string[]): Gathered {
  const cliNames = namesOf(cli);
  const configFile = [...cli].reverse().find((s) => s.name === 'config-file')?.text ?? env['ETCD_CONFIG_FILE'] ?? '';
  if (configFile === '') {
    const fromEnv = envSettings(env, cliNames, warnings);
    return { settings: [...cli.filter((s) => s.name !== 'config-file'), ...fromEnv], configFile, clientAllowedCn: [], clientSkipSan: false };
  }
  const loaded = loadConfigFile(configFile);
  warnings.push(...loaded.warnings);
  const ignored = [
    ...[...cliNames].filter((n) => n !== 'config-file').map((n) => `--${n}`),
    ...Object.keys(env).filter((k) => k.startsWith('ETCD_') && k !== 'ETCD_CONFIG_FILE').sort(),
  ];
  if (ignored.length > 0) {
    warnings.push(`configuration is read from ${configFile}; these command-line flags and environment variables are ignored: ${ignored.join(', ')}`);
  }
  return {
    settings: loaded.settings.map((s) => ({ name: s.name, text: s.text, value: s.value, source: 'config-file' as const })),
    configFile,
    clientAllowedCn: loaded.clientAllowedCn,
    clientSkipSan: loaded.clientSkipClientSanVerification,
  };
}

/**
 * Parse etcd-style arguments (without the program name) and environment.
 * Returns the config and warnings to log, or a help/version action; throws ConfigError.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv, opts: ParseOptions = {}): ParseResult {
  if (argv.length > 0 && SUBCOMMANDS.has(argv[0]!)) {
    throw new ConfigError(`"etcd ${argv[0]!}" is not implemented by tsetcd; it only runs cluster members`);
  }
  const scanned = scanArgs(argv);
  if (scanned.helpRequested) return { action: 'help', text: helpText() };
  if (scanned.positional.length > 0) throw new ConfigError(`${goQuote(scanned.positional[0]!)} is not a valid flag`);

  const cli: Setting[] = scanned.settings.map((s) => ({ ...s, source: 'flag' as const }));
  const cliLast = new Map(cli.map((s) => [s.name, s]));
  if (cliLast.get('version')?.value === true) {
    const given = cliLast.get('etcd-version');
    const etcdVersion = given !== undefined ? validateEtcdVersion(given.text) : DEFAULT_ETCD_VERSION;
    return { action: 'version', etcdVersion, text: versionText(etcdVersion) };
  }

  const warnings: string[] = [];
  for (const legacy of scanned.legacyIgnored) warnings.push(`flag --${legacy} is obsolete (etcd 0.4) and ignored`);

  const { settings, configFile, clientAllowedCn, clientSkipSan } = gatherSettings(cli, env, warnings);
  const explicit = collectExplicit(settings);
  settingWarnings(explicit, warnings);
  const flagValues = mergeValues(explicit);
  const v = new Values(flagValues, explicit);

  const featureGates = validateFeatureGates(v, explicit);
  refuseUnsupportedModes(v);
  const logging = validateLogging(v, warnings);
  validateUrls(v);
  validateBootstrapSource(v);
  validateTimeouts(v);
  validateAdvertiseClient(v, configFile !== '', warnings);
  const compaction = validateCompaction(v);
  validateCompactHashCheck(v);
  validateTlsVersions(v);
  const etcdVersion = validateEtcdVersion(v.str('etcd-version'));
  const auth = validateAuth(v, warnings);

  const config = buildConfig(v, {
    compaction, logging, auth, etcdVersion, featureGates, configFile, clientAllowedCn, clientSkipSan, flagValues,
  });
  validateTlsUse(config, warnings);
  miscWarnings(config, warnings);
  checkBootstrap(config, opts, warnings);
  return { action: 'run', config, warnings };
}
