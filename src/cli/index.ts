/**
 * Public surface of the command-line layer. Typical start-up:
 *
 *   const r = parseConfig(process.argv.slice(2), process.env);
 *   if (r.action !== 'run') { process.stdout.write(r.text); process.exit(0); }
 *   const log = loggerFromConfig(r.config);          // from src/log/logger.js
 *   for (const w of r.warnings) log.warn(w);
 *   if (!isDataDirInitialized(r.config.dataDir, r.config.walDir)) await verifyBootstrap(bootstrapInputOf(r.config));
 *
 * On ConfigError: print `e.message` to stderr (plus `usageText()` when `e.showUsage`) and exit with `e.exitCode`.
 */
export { parseConfig, type ParseOptions, type ParseResult } from './parse.js';
export { ConfigError } from './errors.js';
export {
  DEFAULT_BACKEND_BATCH_INTERVAL_MS,
  DEFAULT_BACKEND_BATCH_LIMIT,
  DEFAULT_ETCD_VERSION,
  DEFAULT_QUOTA_BACKEND_BYTES,
  etcdApiVersion,
  etcdClusterVersion,
  type AutoCompactionMode,
  type ClusterState,
  type ConfigSource,
  type EtcdConfig,
  type FlagValue,
  type InitialClusterMember,
  type LogFormat,
  type LogLevel,
  type MetricsLevel,
  type TlsConfig,
} from './config.js';
export { EtcdUrl, parseEtcdUrl, parseEtcdUrlList, type EtcdUrlScheme } from './url.js';
export {
  bootstrapInputOf,
  checkBootstrapSync,
  initialClusterString,
  isDataDirInitialized,
  parseInitialCluster,
  verifyBootstrap,
  type BootstrapInput,
} from './bootstrap.js';
export { helpText, tsetcdVersion, usageText, versionText } from './help.js';
export { FEATURE_GATE_DEFAULTS, FLAGS, envNameOf, findFlag, type FlagSpec, type FlagType } from './flags.js';
