import { describe, expect, it } from 'vitest';
import { defaultValue } from '../../../src/cli/convert.js';
import { FLAGS, envNameOf, findFlag } from '../../../src/cli/flags.js';
import { helpText, tsetcdVersion, versionText } from '../../../src/cli/help.js';

/** Every flag name registered by etcd v3.6.5's server (embed.Config.AddFlags + etcdmain). */
const ETCD_3_6_FLAGS = [
  'advertise-client-urls',
  'auth-token',
  'auth-token-ttl',
  'auto-compaction-mode',
  'auto-compaction-retention',
  'auto-tls',
  'backend-batch-interval',
  'backend-batch-limit',
  'backend-bbolt-freelist-type',
  'bcrypt-cost',
  'bootstrap-defrag-threshold-megabytes',
  'cert-file',
  'cipher-suites',
  'client-cert-allowed-hostname',
  'client-cert-auth',
  'client-cert-file',
  'client-crl-file',
  'client-key-file',
  'compact-hash-check-time',
  'compaction-batch-limit',
  'compaction-sleep-interval',
  'config-file',
  'corrupt-check-time',
  'cors',
  'data-dir',
  'discovery',
  'discovery-cacert',
  'discovery-cert',
  'discovery-dial-timeout',
  'discovery-endpoints',
  'discovery-fallback',
  'discovery-insecure-skip-tls-verify',
  'discovery-insecure-transport',
  'discovery-keepalive-time',
  'discovery-keepalive-timeout',
  'discovery-key',
  'discovery-password',
  'discovery-proxy',
  'discovery-request-timeout',
  'discovery-srv',
  'discovery-srv-name',
  'discovery-token',
  'discovery-user',
  'distributed-tracing-address',
  'distributed-tracing-instance-id',
  'distributed-tracing-sampling-rate',
  'distributed-tracing-service-name',
  'downgrade-check-time',
  'election-timeout',
  'enable-distributed-tracing',
  'enable-grpc-gateway',
  'enable-log-rotation',
  'enable-pprof',
  'experimental-bootstrap-defrag-threshold-megabytes',
  'experimental-compact-hash-check-enabled',
  'experimental-compact-hash-check-time',
  'experimental-compaction-batch-limit',
  'experimental-compaction-sleep-interval',
  'experimental-corrupt-check-time',
  'experimental-distributed-tracing-address',
  'experimental-distributed-tracing-instance-id',
  'experimental-distributed-tracing-sampling-rate',
  'experimental-distributed-tracing-service-name',
  'experimental-downgrade-check-time',
  'experimental-enable-distributed-tracing',
  'experimental-enable-lease-checkpoint',
  'experimental-enable-lease-checkpoint-persist',
  'experimental-initial-corrupt-check',
  'experimental-memory-mlock',
  'experimental-peer-skip-client-san-verification',
  'experimental-snapshot-catchup-entries',
  'experimental-stop-grpc-service-on-defrag',
  'experimental-txn-mode-write-with-shared-buffer',
  'experimental-warning-apply-duration',
  'experimental-warning-unary-request-duration',
  'experimental-watch-progress-notify-interval',
  'feature-gates',
  'force-new-cluster',
  'grpc-keepalive-interval',
  'grpc-keepalive-min-time',
  'grpc-keepalive-timeout',
  'heartbeat-interval',
  'host-whitelist',
  'initial-advertise-peer-urls',
  'initial-cluster',
  'initial-cluster-state',
  'initial-cluster-token',
  'initial-election-tick-advance',
  'key-file',
  'listen-client-http-urls',
  'listen-client-urls',
  'listen-metrics-urls',
  'listen-peer-urls',
  'log-format',
  'log-level',
  'log-outputs',
  'log-rotation-config-json',
  'logger',
  'max-concurrent-streams',
  'max-learners',
  'max-request-bytes',
  'max-snapshots',
  'max-txn-ops',
  'max-wals',
  'memory-mlock',
  'metrics',
  'name',
  'peer-auto-tls',
  'peer-cert-allowed-cn',
  'peer-cert-allowed-hostname',
  'peer-cert-file',
  'peer-client-cert-auth',
  'peer-client-cert-file',
  'peer-client-key-file',
  'peer-crl-file',
  'peer-key-file',
  'peer-skip-client-san-verification',
  'peer-trusted-ca-file',
  'pre-vote',
  'quota-backend-bytes',
  'raft-read-timeout',
  'raft-write-timeout',
  'self-signed-cert-validity',
  'snapshot-catchup-entries',
  'snapshot-count',
  'socket-reuse-address',
  'socket-reuse-port',
  'strict-reconfig-check',
  'tls-max-version',
  'tls-min-version',
  'trusted-ca-file',
  'unsafe-no-fsync',
  'v2-deprecation',
  'version',
  'wal-dir',
  'warning-apply-duration',
  'warning-unary-request-duration',
  'watch-progress-notify-interval',
];

/** What tsetcd implements (the rest is accepted with a warning). */
const IMPLEMENTED = [
  'name', 'data-dir', 'wal-dir', 'listen-client-urls', 'advertise-client-urls', 'listen-peer-urls',
  'initial-advertise-peer-urls', 'listen-metrics-urls', 'initial-cluster', 'initial-cluster-token', 'initial-cluster-state',
  'snapshot-count', 'heartbeat-interval', 'election-timeout', 'max-txn-ops', 'max-request-bytes', 'quota-backend-bytes',
  'backend-batch-interval', 'backend-batch-limit', 'strict-reconfig-check', 'pre-vote', 'logger', 'log-level', 'log-outputs',
  'log-format', 'config-file', 'auto-compaction-mode', 'auto-compaction-retention', 'snapshot-catchup-entries', 'experimental-snapshot-catchup-entries',
  'watch-progress-notify-interval', 'experimental-watch-progress-notify-interval', 'force-new-cluster', 'max-learners',
  'experimental-max-learners', 'cert-file', 'key-file', 'trusted-ca-file', 'client-cert-auth', 'peer-cert-file', 'peer-key-file',
  'peer-trusted-ca-file', 'peer-client-cert-auth', 'auth-token', 'bcrypt-cost', 'auth-token-ttl', 'enable-v2',
  'grpc-keepalive-interval', 'grpc-keepalive-timeout', 'etcd-version', 'client-warm-up-connections', 'version', 'log-output',
  'client-crl-file', 'client-cert-allowed-hostname', 'auto-tls', 'peer-client-cert-file', 'peer-client-key-file',
  'peer-cert-allowed-cn', 'peer-cert-allowed-hostname', 'peer-auto-tls', 'self-signed-cert-validity', 'peer-crl-file',
  'cipher-suites', 'tls-min-version', 'tls-max-version', 'peer-skip-client-san-verification', 'experimental-peer-skip-client-san-verification',
];

describe('flag table', () => {
  it('has every etcd 3.6 server flag', () => {
    const missing = ETCD_3_6_FLAGS.filter((f) => findFlag(f) === undefined);
    expect(missing).toEqual([]);
  });

  it('keeps the 3.4/3.5 spellings that 3.6 renamed or dropped', () => {
    for (const f of ['experimental-watch-progress-notify-interval', 'experimental-backend-bbolt-freelist-type', 'enable-v2', 'proxy', 'log-output', 'debug', 'log-package-levels', 'experimental-enable-v2v3']) {
      expect(findFlag(f), f).toBeDefined();
    }
    expect(findFlag('experimental-watch-progress-notify-interval')!.aliasOf).toBe('watch-progress-notify-interval');
    expect(findFlag('experimental-initial-corrupt-check')!.featureGate).toBe('InitialCorruptCheck');
  });

  it('marks exactly the implemented flags as implemented', () => {
    const implemented = FLAGS.filter((f) => f.implemented).map((f) => f.name).sort();
    expect(implemented).toEqual([...IMPLEMENTED].sort());
  });

  it('uses etcd 3.6 defaults and every default parses as its own type', () => {
    const expected: Record<string, string> = {
      'snapshot-count': '10000', 'pre-vote': 'true', 'heartbeat-interval': '100', 'election-timeout': '1000',
      'max-request-bytes': '1572864', 'max-txn-ops': '128', 'initial-cluster': 'default=http://localhost:2380',
      'watch-progress-notify-interval': '10m', 'logger': 'zap', 'log-format': 'json', 'max-learners': '1',
      'discovery-fallback': 'exit', 'etcd-version': '3.6.5', 'bcrypt-cost': '10', 'auth-token-ttl': '300',
      'client-warm-up-connections': '800',
    };
    for (const [name, def] of Object.entries(expected)) expect(findFlag(name)!.default, name).toBe(def);
    for (const f of FLAGS) expect(() => defaultValue(f), f.name).not.toThrow();
  });

  it('every flag has help text and an ETCD_ variable name', () => {
    for (const f of FLAGS) {
      expect(f.help.length, f.name).toBeGreaterThan(5);
      expect(envNameOf(f.name)).toMatch(/^ETCD_[A-Z0-9_]+$/);
    }
    expect(envNameOf('initial-cluster-token')).toBe('ETCD_INITIAL_CLUSTER_TOKEN');
  });
});

describe('help and version text', () => {
  const help = helpText();

  it('lists every flag with its default, in etcd-like groups', () => {
    for (const f of FLAGS) expect(help, f.name).toContain(`  --${f.name} `);
    expect(help).toContain("  --name 'default'\n");
    expect(help).toContain('  --snapshot-count 10000\n');
    expect(help).toContain("  --listen-client-urls 'http://localhost:2379'\n");
    for (const group of ['Member:', 'Clustering:', 'Security:', 'Auth:', 'Logging:', 'Unsafe feature:']) expect(help).toContain(`\n${group}\n`);
    expect(help.indexOf('Member:')).toBeLessThan(help.indexOf('Clustering:'));
  });

  it('marks flags tsetcd does not implement', () => {
    const block = help.slice(help.indexOf('  --enable-pprof '), help.indexOf('  --metrics '));
    expect(block).toContain('not implemented');
    const nameBlock = help.slice(help.indexOf('  --name '), help.indexOf('  --data-dir '));
    expect(nameBlock).not.toContain('not implemented');
  });

  it('version text names tsetcd, the reported etcd version and the API version', () => {
    expect(tsetcdVersion()).toMatch(/^\d+\.\d+\.\d+/);
    const text = versionText('3.5.13');
    expect(text.split('\n')).toEqual([
      `tsetcd Version: ${tsetcdVersion()}`,
      'etcd Version: 3.5.13 (compatible)',
      'API version: 3.5',
      `Node.js Version: ${process.version}`,
      `OS/Arch: ${process.platform}/${process.arch}`,
      '',
    ]);
  });
});
