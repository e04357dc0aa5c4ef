import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EtcdConfig } from '../../../src/cli/config.js';
import { ConfigError, parseConfig, type ParseOptions } from '../../../src/cli/parse.js';

const FRESH: ParseOptions = { dataDirInitialized: false };

function run(argv: string[], env: NodeJS.ProcessEnv = {}, opts: ParseOptions = FRESH): { config: EtcdConfig; warnings: string[] } {
  const r = parseConfig(argv, env, opts);
  if (r.action !== 'run') throw new Error(`expected a run result, got ${r.action}`);
  return r;
}

function cfg(argv: string[], env: NodeJS.ProcessEnv = {}): EtcdConfig {
  return run(argv, env).config;
}

function errorOf(argv: string[], env: NodeJS.ProcessEnv = {}, opts: ParseOptions = FRESH): ConfigError {
  try {
    parseConfig(argv, env, opts);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(argv)}`);
}

const NOT_IMPLEMENTED = (flag: string): string => `flag --${flag} is accepted but not implemented by tsetcd yet; it has no effect`;

describe('defaults (etcd 3.6)', () => {
  const c = cfg([]);

  it('member and URL defaults', () => {
    expect(c.name).toBe('default');
    expect(c.dataDir).toBe('default.etcd');
    expect(c.walDir).toBe(path.join('default.etcd', 'member', 'wal'));
    expect(c.walDirDedicated).toBe(false);
    expect(c.listenClientUrls.map(String)).toEqual(['http://localhost:2379']);
    expect(c.advertiseClientUrls.map(String)).toEqual(['http://localhost:2379']);
    expect(c.listenPeerUrls.map(String)).toEqual(['http://localhost:2380']);
    expect(c.initialAdvertisePeerUrls.map(String)).toEqual(['http://localhost:2380']);
    expect(c.listenMetricsUrls).toEqual([]);
    expect(c.initialCluster).toEqual([{ name: 'default', peerUrls: ['http://localhost:2380'] }]);
    expect(c.initialClusterToken).toBe('etcd-cluster');
    expect(c.initialClusterState).toBe('new');
  });

  it('numeric defaults, with etcd\'s 0-means-default resolved', () => {
    expect(c.snapshotCount).toBe(10000);
    expect(c.heartbeatIntervalMs).toBe(100);
    expect(c.electionTimeoutMs).toBe(1000);
    expect(c.maxTxnOps).toBe(128);
    expect(c.maxRequestBytes).toBe(1572864);
    expect(c.quotaBackendBytes).toBe(2 * 1024 ** 3);
    expect(c.backendBatchIntervalMs).toBe(100);
    expect(c.backendBatchLimit).toBe(10000);
    expect(c.watchProgressNotifyIntervalMs).toBe(600_000);
    expect(c.maxLearners).toBe(1);
    expect(c.grpcKeepaliveMinTimeMs).toBe(5000);
    expect(c.grpcKeepaliveIntervalMs).toBe(2 * 3600 * 1000);
    expect(c.grpcKeepaliveTimeoutMs).toBe(20000);
  });

  it('switches, auth, logging and version defaults', () => {
    expect(c.preVote).toBe(true);
    expect(c.strictReconfigCheck).toBe(true);
    expect(c.forceNewCluster).toBe(false);
    expect(c.unsafeNoFsync).toBe(false);
    expect(c.autoCompactionMode).toBe('periodic');
    expect(c.autoCompactionRetention).toBe('0');
    expect(c.autoCompactionPeriodMs).toBe(0);
    expect(c.authToken).toBe('simple');
    expect(c.bcryptCost).toBe(10);
    expect(c.authTokenTtlSec).toBe(300);
    expect(c.logger).toBe('zap');
    expect(c.logLevel).toBe('info');
    expect(c.logFormat).toBe('json');
    expect(c.logOutputs).toEqual(['stderr']);
    expect(c.metrics).toBe('basic');
    expect(c.etcdVersion).toBe('3.6.5');
    expect(c.enableV2).toBe(false);
    expect(c.configFile).toBe('');
    expect(c.raw.size).toBe(0);
    expect(c.featureGates.get('TxnModeWriteWithSharedBuffer')).toBe(true);
    expect(c.featureGates.get('InitialCorruptCheck')).toBe(false);
  });

  it('TLS is off by default', () => {
    expect(c.clientTls).toMatchObject({ certFile: '', keyFile: '', clientCertAuth: false, requireClientCert: false, trustedCaFile: '' });
    expect(c.peerTls).toMatchObject({ certFile: '', keyFile: '', clientCertAuth: false, requireClientCert: false });
  });

  it('only warns about the default name', () => {
    expect(run([]).warnings).toEqual([
      '--name is "default"; give each member its own name, or members added later may be confused with this one',
    ]);
  });
});

describe('derived defaults', () => {
  it('data dir follows --name; initial cluster follows --name and the advertised peer URLs', () => {
    const c = cfg(['--name', 'infra0', '--initial-advertise-peer-urls', 'http://10.0.0.2:2380,http://10.0.0.1:2380']);
    expect(c.dataDir).toBe('infra0.etcd');
    expect(c.initialCluster).toEqual([{ name: 'infra0', peerUrls: ['http://10.0.0.1:2380', 'http://10.0.0.2:2380'] }]);
  });

  it('--wal-dir is used as given and marked dedicated', () => {
    const c = cfg(['--data-dir', '/var/lib/etcd', '--wal-dir', '/nvme/wal']);
    expect(c.dataDir).toBe('/var/lib/etcd');
    expect(c.walDir).toBe('/nvme/wal');
    expect(c.walDirDedicated).toBe(true);
    expect(cfg(['--data-dir', '/var/lib/etcd']).walDir).toBe('/var/lib/etcd/member/wal');
  });

  it('quota and batching keep explicit non-zero values; a negative quota means none, as etcd', () => {
    const c = cfg(['--quota-backend-bytes', '8589934592', '--backend-batch-interval', '10ms', '--backend-batch-limit', '500']);
    expect(c.quotaBackendBytes).toBe(8589934592);
    expect(c.backendBatchIntervalMs).toBe(10);
    expect(c.backendBatchLimit).toBe(500);
    expect(cfg(['--quota-backend-bytes', '-1']).quotaBackendBytes).toBe(-1);
  });
});

describe('the operator walkthrough command line', () => {
  const argv = [
    '--name', 'infra0',
    '--initial-advertise-peer-urls', 'http://172.16.80.20:2380',
    '--initial-cluster', 'infra0=http://172.16.80.20:2380,infra1=http://172.16.80.21:2380',
    '--listen-peer-urls', 'http://172.16.80.20:2380',
    '--listen-client-urls', 'http://172.16.80.20:2379,http://127.0.0.1:2379',
    '--advertise-client-urls', 'http://172.16.80.20:2379',
    '--initial-cluster-token', 'etcd-cluster-1',
    '--initial-cluster-state', 'new',
    '--data-dir', '/root/ETCD/infra0',
  ];

  it('parses without warnings into the expected config', () => {
    const { config: c, warnings } = run(argv);
    expect(warnings).toEqual([]);
    expect(c.name).toBe('infra0');
    expect(c.initialCluster).toEqual([
      { name: 'infra0', peerUrls: ['http://172.16.80.20:2380'] },
      { name: 'infra1', peerUrls: ['http://172.16.80.21:2380'] },
    ]);
    expect(c.listenClientUrls.map(String)).toEqual(['http://127.0.0.1:2379', 'http://172.16.80.20:2379']);
    expect(c.advertiseClientUrls.map(String)).toEqual(['http://172.16.80.20:2379']);
    expect(c.initialClusterToken).toBe('etcd-cluster-1');
    expect(c.dataDir).toBe('/root/ETCD/infra0');
    expect(c.raw.get('initial-cluster-token')).toBe('etcd-cluster-1');
    expect(c.sources.get('name')).toBe('flag');
  });

  it('accepts the join form with --initial-cluster-state existing', () => {
    const join = argv.map((a) => (a === 'new' ? 'existing' : a));
    expect(cfg(join).initialClusterState).toBe('existing');
  });

  it('a name may repeat in --initial-cluster to give a member several peer URLs', () => {
    const c = cfg([
      '--name', 'a',
      '--initial-advertise-peer-urls', 'http://10.0.0.1:2380,http://10.0.1.1:2380',
      '--initial-cluster', 'a=http://10.0.1.1:2380,b=http://10.0.0.2:2380,a=http://10.0.0.1:2380',
    ]);
    expect(c.initialCluster).toEqual([
      { name: 'a', peerUrls: ['http://10.0.0.1:2380', 'http://10.0.1.1:2380'] },
      { name: 'b', peerUrls: ['http://10.0.0.2:2380'] },
    ]);
  });
});

describe('Go flag syntax', () => {
  it.each([
    [['--name', 'n1']],
    [['--name=n1']],
    [['-name', 'n1']],
    [['-name=n1']],
  ])('%j sets the name', (argv) => {
    expect(cfg(argv).name).toBe('n1');
  });

  it('booleans: bare flag is true, =value parses Go bool words', () => {
    expect(cfg(['--force-new-cluster']).forceNewCluster).toBe(true);
    expect(cfg(['-force-new-cluster']).forceNewCluster).toBe(true);
    expect(cfg(['--pre-vote=false']).preVote).toBe(false);
    expect(cfg(['--pre-vote=0']).preVote).toBe(false);
    expect(cfg(['--strict-reconfig-check=F']).strictReconfigCheck).toBe(false);
    expect(cfg(['--unsafe-no-fsync=True']).unsafeNoFsync).toBe(true);
  });

  it('a bool flag does not consume the next argument', () => {
    expect(errorOf(['--pre-vote', 'false']).message).toBe('"false" is not a valid flag');
  });

  it('a non-bool flag takes the next argument even if it starts with a dash', () => {
    expect(cfg(['--name', '-weird']).name).toBe('-weird');
  });

  it('an empty URL list keeps the default, as etcd\'s URL flags do', () => {
    expect(cfg(['--listen-peer-urls=']).listenPeerUrls.map(String)).toEqual(['http://localhost:2380']);
    expect(cfg(['--listen-metrics-urls=']).listenMetricsUrls).toEqual([]);
  });

  it('the last occurrence wins', () => {
    expect(cfg(['--name', 'a', '--name', 'b']).name).toBe('b');
  });

  it('"--" ends the flags; anything after it is refused like other positional arguments', () => {
    expect(cfg(['--name', 'a', '--']).name).toBe('a');
    expect(errorOf(['--name', 'a', '--', '--name']).message).toBe('"--name" is not a valid flag');
    expect(errorOf(['extra']).message).toBe('"extra" is not a valid flag');
  });

  it('integers in ms for --heartbeat-interval/--election-timeout, Go durations for duration flags', () => {
    const c = cfg([
      '--heartbeat-interval', '0x32', '--election-timeout=500',
      '--watch-progress-notify-interval', '5s', '--grpc-keepalive-interval=1h30m', '--grpc-keepalive-timeout', '0',
      '--grpc-keepalive-min-time', '1.5s',
    ]);
    expect(c.heartbeatIntervalMs).toBe(50);
    expect(c.electionTimeoutMs).toBe(500);
    expect(c.watchProgressNotifyIntervalMs).toBe(5000);
    expect(c.grpcKeepaliveIntervalMs).toBe(5_400_000);
    expect(c.grpcKeepaliveTimeoutMs).toBe(0);
    expect(c.grpcKeepaliveMinTimeMs).toBe(1500);
  });

  it('syntax errors use Go\'s wording, exit code 2 and ask for the usage text', () => {
    const unknown = errorOf(['--foo']);
    expect(unknown.message).toBe('flag provided but not defined: -foo');
    expect(unknown.exitCode).toBe(2);
    expect(unknown.showUsage).toBe(true);
    expect(errorOf(['-foo=1']).message).toBe('flag provided but not defined: -foo');
    expect(errorOf(['--name']).message).toBe('flag needs an argument: -name');
    expect(errorOf(['---name', 'x']).message).toBe('bad flag syntax: ---name');
    expect(errorOf(['-=x']).message).toBe('bad flag syntax: -=x');
  });

  it.each([
    [['--snapshot-count', 'abc'], 'invalid value "abc" for flag -snapshot-count: parse error'],
    [['--snapshot-count', '-1'], 'invalid value "-1" for flag -snapshot-count: parse error'],
    [['--max-txn-ops', '99999999999999999999'], 'invalid value "99999999999999999999" for flag -max-txn-ops: value out of range'],
    [['--heartbeat-interval', '5s'], 'invalid value "5s" for flag -heartbeat-interval: parse error'],
    [['--grpc-keepalive-min-time', '5'], 'invalid value "5" for flag -grpc-keepalive-min-time: parse error'],
    [['--pre-vote=maybe'], 'invalid boolean value "maybe" for -pre-vote: parse error'],
    [['--initial-cluster-state', 'bogus'], 'invalid value "bogus" for flag -initial-cluster-state: invalid value (must be one of: new, existing)'],
    [['--listen-client-urls', 'ftp://127.0.0.1:3379'], 'invalid value "ftp://127.0.0.1:3379" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:3379'],
    [['--listen-peer-urls', 'http://127.0.0.1:3379/x'], 'invalid value "http://127.0.0.1:3379/x" for flag -listen-peer-urls: URL must not contain a path: http://127.0.0.1:3379/x'],
    [['--advertise-client-urls', 'http://127.0.0.1'], 'invalid value "http://127.0.0.1" for flag -advertise-client-urls: URL address does not have the form "host:port": http://127.0.0.1'],
    [['--metrics', 'full'], 'invalid value "full" for flag -metrics: invalid value (must be one of: basic, extensive)'],
    [['--feature-gates', 'Bogus=true'], 'invalid value "Bogus=true" for flag -feature-gates: unrecognized feature gate: Bogus'],
    [['--feature-gates', 'InitialCorruptCheck'], 'invalid value "InitialCorruptCheck" for flag -feature-gates: missing bool value for InitialCorruptCheck'],
  ])('%j → %s', (argv, message) => {
    const e = errorOf(argv);
    expect(e.message).toBe(message);
    expect(e.exitCode).toBe(2);
  });

  it('refuses the etcd proxy subcommands explicitly', () => {
    expect(errorOf(['gateway', 'start']).message).toBe('"etcd gateway" is not implemented by tsetcd; it only runs cluster members');
    expect(errorOf(['grpc-proxy', 'start']).message).toContain('"etcd grpc-proxy" is not implemented');
  });

  it('swallows etcd 0.4 flags with a warning, as etcd does', () => {
    const { warnings } = run(['--name', 'x', '--v', '-snapshot=true']);
    expect(warnings).toContain('flag --v is obsolete (etcd 0.4) and ignored');
    expect(warnings).toContain('flag --snapshot is obsolete (etcd 0.4) and ignored');
  });
});

describe('help and version actions', () => {
  it.each([[['--help']], [['-h']], [['-help']], [['--name', 'x', '--help', '--bogus']]])('%j returns the help action', (argv) => {
    const r = parseConfig(argv, {});
    expect(r.action).toBe('help');
    if (r.action === 'help') expect(r.text).toContain('--initial-cluster');
  });

  it('a bad flag before --help is reported first, as Go does', () => {
    expect(errorOf(['--bogus', '--help']).message).toBe('flag provided but not defined: -bogus');
  });

  it('--version returns the version action with the reported etcd version', () => {
    const r = parseConfig(['--version'], {});
    expect(r).toMatchObject({ action: 'version', etcdVersion: '3.6.5' });
    if (r.action === 'version') expect(r.text).toMatch(/^tsetcd Version: \d+\.\d+\.\d+\netcd Version: 3\.6\.5 \(compatible\)\nAPI version: 3\.6\n/);
    const r2 = parseConfig(['--etcd-version', '3.5.13', '--version'], {});
    expect(r2).toMatchObject({ action: 'version', etcdVersion: '3.5.13' });
  });

  it('--version still needs a syntactically valid command line; --version=false runs', () => {
    expect(errorOf(['--version', '--nope']).message).toBe('flag provided but not defined: -nope');
    expect(parseConfig(['--version=false'], {}, FRESH).action).toBe('run');
  });
});

describe('environment variables', () => {
  it('every flag is also ETCD_<UPPER_SNAKE>', () => {
    const c = cfg([], {
      ETCD_NAME: 'envnode',
      ETCD_INITIAL_CLUSTER_TOKEN: 'tok',
      ETCD_PRE_VOTE: 'false',
      ETCD_SNAPSHOT_COUNT: '5000',
      ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL: '5s',
      ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:2379',
      ETCD_ADVERTISE_CLIENT_URLS: 'http://127.0.0.1:2379',
      ETCD_ETCD_VERSION: '3.5.17',
    });
    expect(c.name).toBe('envnode');
    expect(c.initialClusterToken).toBe('tok');
    expect(c.preVote).toBe(false);
    expect(c.snapshotCount).toBe(5000);
    expect(c.watchProgressNotifyIntervalMs).toBe(5000);
    expect(c.listenClientUrls.map(String)).toEqual(['http://127.0.0.1:2379']);
    expect(c.etcdVersion).toBe('3.5.17');
    expect(c.sources.get('name')).toBe('env');
    expect(c.raw.get('pre-vote')).toBe('false');
  });

  it('the command line wins over the environment, with a warning', () => {
    const { config, warnings } = run(['--name', 'flagnode'], { ETCD_NAME: 'envnode' });
    expect(config.name).toBe('flagnode');
    expect(config.sources.get('name')).toBe('flag');
    expect(warnings).toContain('environment variable ETCD_NAME is shadowed by the command-line flag --name; the flag wins');
  });

  it('warns about unknown ETCD_* variables, ignores ETCDCTL_*, and refuses ETCD_VERSION', () => {
    const { warnings } = run(['--name', 'x'], { ETCD_FOO: '1', ETCDCTL_API: '3', ETCD_VERSION: '3.4.0', PATH: '/bin' });
    expect(warnings).toContain('unrecognized environment variable ETCD_FOO');
    expect(warnings).toContain('cannot set special environment variable ETCD_VERSION; it is ignored');
    expect(warnings.join('\n')).not.toContain('ETCDCTL_API');
  });

  it('an empty variable is ignored with a warning', () => {
    const { config, warnings } = run(['--name', 'x'], { ETCD_DATA_DIR: '' });
    expect(config.dataDir).toBe('x.etcd');
    expect(warnings).toContain('environment variable ETCD_DATA_DIR is empty; it is ignored');
  });

  it('bad values name the variable', () => {
    expect(errorOf([], { ETCD_SNAPSHOT_COUNT: 'abc' }).message).toBe('invalid value "abc" for ETCD_SNAPSHOT_COUNT: parse error');
    expect(errorOf([], { ETCD_LISTEN_PEER_URLS: 'peer:2380' }).message).toBe(
      'invalid value "peer:2380" for ETCD_LISTEN_PEER_URLS: URL scheme must be http, https, unix, or unixs: peer:2380',
    );
  });

  it('a listen URL set by environment also requires an advertise URL (etcd counts it as set)', () => {
    expect(errorOf([], { ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:2379' }).message).toBe(
      '--advertise-client-urls is required when --listen-client-urls is set explicitly',
    );
  });

  it('old and new spellings across flag and environment conflict as in etcd', () => {
    expect(errorOf(['--watch-progress-notify-interval', '5s'], { ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL: '1s' }).message).toBe(
      'cannot set --experimental-watch-progress-notify-interval and --watch-progress-notify-interval at the same time, please use --watch-progress-notify-interval only',
    );
  });
});

describe('renamed and experimental flags', () => {
  it('--experimental-watch-progress-notify-interval sets watch-progress-notify-interval, with etcd 3.6\'s deprecation', () => {
    const { config, warnings } = run(['--name', 'x', '--experimental-watch-progress-notify-interval=5s']);
    expect(config.watchProgressNotifyIntervalMs).toBe(5000);
    expect(config.raw.get('experimental-watch-progress-notify-interval')).toBe('5s');
    expect(warnings).toEqual([
      '--experimental-watch-progress-notify-interval is deprecated in etcd 3.6 and goes away in 3.7; use --watch-progress-notify-interval instead',
    ]);
  });

  it('--experimental-max-learners sets max-learners', () => {
    expect(cfg(['--experimental-max-learners', '3']).maxLearners).toBe(3);
  });

  it('both spellings at once are refused with etcd\'s message', () => {
    expect(errorOf(['--experimental-compaction-batch-limit=10', '--compaction-batch-limit=20']).message).toBe(
      'cannot set --experimental-compaction-batch-limit and --compaction-batch-limit at the same time, please use --compaction-batch-limit only',
    );
  });

  it('experimental bool flags set feature gates', () => {
    const { config, warnings } = run(['--name', 'x', '--experimental-initial-corrupt-check=true']);
    expect(config.featureGates.get('InitialCorruptCheck')).toBe(true);
    expect(warnings).toContain(NOT_IMPLEMENTED('experimental-initial-corrupt-check'));
    expect(warnings).toContain(
      '--experimental-initial-corrupt-check is deprecated in etcd 3.6 and goes away in 3.7; use --feature-gates=InitialCorruptCheck=true instead',
    );
    expect(cfg(['--feature-gates=InitialCorruptCheck=true,CompactHashCheck=1']).featureGates.get('CompactHashCheck')).toBe(true);
  });

  it('an experimental gate flag and the same gate in --feature-gates conflict', () => {
    expect(errorOf(['--experimental-initial-corrupt-check=true', '--feature-gates=InitialCorruptCheck=false']).message).toBe(
      'cannot specify both flags: --experimental-initial-corrupt-check=true and --feature-gates=InitialCorruptCheck=false at the same time, please just use --feature-gates=InitialCorruptCheck=false',
    );
  });

  it('LeaseCheckpointPersist needs LeaseCheckpoint', () => {
    expect(errorOf(['--feature-gates=LeaseCheckpointPersist=true']).message).toBe(
      'enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint',
    );
  });

  it('the kubeadm (etcd 3.5 image) command line is accepted', () => {
    const { config } = run([
      '--advertise-client-urls=https://10.0.0.5:2379', '--cert-file=/pki/server.crt', '--client-cert-auth=true',
      '--data-dir=/var/lib/etcd', '--experimental-initial-corrupt-check=true',
      '--experimental-watch-progress-notify-interval=5s', '--initial-advertise-peer-urls=https://10.0.0.5:2380',
      '--initial-cluster=cp1=https://10.0.0.5:2380', '--key-file=/pki/server.key',
      '--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.5:2379', '--listen-metrics-urls=http://127.0.0.1:2381',
      '--listen-peer-urls=https://10.0.0.5:2380', '--name=cp1', '--peer-cert-file=/pki/peer.crt',
      '--peer-client-cert-auth=true', '--peer-key-file=/pki/peer.key', '--peer-trusted-ca-file=/pki/ca.crt',
      '--snapshot-count=10000', '--trusted-ca-file=/pki/ca.crt',
    ]);
    expect(config.clientTls).toMatchObject({ certFile: '/pki/server.crt', keyFile: '/pki/server.key', clientCertAuth: true, requireClientCert: true, trustedCaFile: '/pki/ca.crt' });
    expect(config.peerTls).toMatchObject({ certFile: '/pki/peer.crt', keyFile: '/pki/peer.key', clientCertAuth: true, trustedCaFile: '/pki/ca.crt' });
    expect(config.listenMetricsUrls.map(String)).toEqual(['http://127.0.0.1:2381']);
    expect(config.watchProgressNotifyIntervalMs).toBe(5000);
  });
});

describe('flags accepted but not implemented', () => {
  it.each([
    ['--enable-pprof'],
    ['--max-wals=10'],
    ['--cors=https://ui.example'],
    ['--client-cert-file=/pki/client.pem'],
    ['--discovery-dial-timeout=3s'],
    ['--enable-grpc-gateway=false'],
    ['--experimental-enable-v2v3=/v2'],
    ['--log-package-levels=etcdserver=DEBUG'],
  ])('%s warns that it has no effect', (arg) => {
    const flag = arg.replace(/^--/, '').split('=')[0]!;
    const { warnings } = run(['--name', 'x', arg]);
    expect(warnings).toContain(NOT_IMPLEMENTED(flag));
  });

  it('setting one to etcd\'s default asks for nothing missing, so it does not warn', () => {
    const { warnings } = run(['--name', 'x', '--max-wals=5', '--auto-tls=false', '--cors=*', '--experimental-initial-corrupt-check=false']);
    expect(warnings).toEqual([
      '--experimental-initial-corrupt-check is deprecated in etcd 3.6 and goes away in 3.7; use --feature-gates=InitialCorruptCheck=true instead',
    ]);
  });

  it('implemented flags do not warn', () => {
    const { warnings } = run(['--name', 'x', '--max-txn-ops', '256', '--pre-vote=false', '--snapshot-catchup-entries', '100', '--log-level', 'debug']);
    expect(warnings).toEqual([]);
  });

  it('is still type-checked', () => {
    expect(errorOf(['--max-wals', 'lots']).message).toBe('invalid value "lots" for flag -max-wals: parse error');
  });
});

describe('validation with etcd\'s wording', () => {
  it.each([
    [['--election-timeout', '400'], '--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]'],
    [['--heartbeat-interval', '300'], '--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]'],
    [['--heartbeat-interval', '0'], '--heartbeat-interval must be >0 (set to 0ms)'],
    [['--election-timeout', '0'], '--election-timeout must be >0 (set to 0ms)'],
    [['--election-timeout', '60000'], '--election-timeout[60000ms] is too long, and should be set less than 50000ms'],
    [['--listen-client-urls', 'http://127.0.0.1:3379'], '--advertise-client-urls is required when --listen-client-urls is set explicitly'],
    [['--listen-client-urls', 'http://example.com:3379', '--advertise-client-urls', 'http://127.0.0.1:3379'], 'expected IP in URL for binding (http://example.com:3379)'],
    [['--listen-peer-urls', 'http://node1:2380'], 'expected IP in URL for binding (http://node1:2380)'],
    [['--listen-metrics-urls', 'http://metrics.local:2381'], 'expected IP in URL for binding (http://metrics.local:2381)'],
    [['--initial-advertise-peer-urls', 'http://:3380'], '--initial-advertise-peer-urls "http://:3380" must be "host:port" (unexpected empty host (http://:3380))'],
    [['--name', 'a', '--initial-cluster', 'b=http://127.0.0.1:3380'], 'couldn\'t find local name "a" in the initial cluster configuration'],
    [['--initial-cluster', 'default=127.0.0.1:2380'], 'error setting up initial cluster: parse "127.0.0.1:2380": first path segment in URL cannot contain colon'],
    [['--initial-cluster', 'a'], 'error setting up initial cluster: URL scheme must be http, https, unix, or unixs: '],
    [['--auto-compaction-mode', 'foo'], 'unknown auto-compaction-mode "foo"'],
    [['--auto-compaction-mode', ''], 'undefined auto-compaction-mode'],
    [['--auto-compaction-retention', '1x'], 'error parsing CompactionRetention: time: unknown unit "x" in duration "1x"'],
    [['--logger', 'capnslog'], '--logger=capnslog is removed in v3.5'],
    [['--logger', 'glog'], 'unknown logger option "glog"'],
    [['--log-level', 'verbose'], 'unrecognized level: "verbose"'],
    [['--log-format', 'text'], 'unknown log format: text, supported values json, console'],
    [['--log-outputs', 'default,/tmp/x.log'], 'multi logoutput for "default" is not supported yet'],
    [['--enable-v2'], '--enable-v2=true is not supported: tsetcd serves only the etcd v3 API (etcd 3.6 removed v2 too)'],
    [['--proxy', 'on'], '--proxy=on is not supported: tsetcd runs only as a cluster member (etcd 3.6 removed the v2 proxy)'],
    [['--discovery-fallback', 'proxy'], 'v2 proxy is deprecated, and --discovery-fallback can\'t be configured as "proxy"'],
    [['--discovery', 'https://discovery.etcd.io/abc'], '--discovery is not supported: tsetcd does not implement discovery; list the members with --initial-cluster instead'],
    [['--discovery-srv', 'example.com', '--initial-cluster', 'default=http://localhost:2380'], 'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery", "discovery-endpoints" or "discovery-srv"'],
    [['--tls-min-version', 'TLS1.3', '--tls-max-version', 'TLS1.2'], 'min version (TLS1.3) is greater than max version (TLS1.2)'],
    [['--tls-min-version', 'TLS1.3', '--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'], 'cipher suites cannot be configured when only TLS1.3 is enabled'],
    [['--compact-hash-check-time', '0s'], '--compact-hash-check-time must be >0 (set to 0s)'],
    [['--etcd-version', 'latest'], 'invalid value "latest" for flag -etcd-version: must be an etcd 3.x release such as 3.6.5'],
    [['--auth-token', 'oauth'], 'invalid value "oauth" for flag -auth-token: token type must be "simple" or "jwt,..."'],
    [['--listen-client-urls', 'https://127.0.0.1:2379', '--advertise-client-urls', 'https://127.0.0.1:2379'], 'TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme'],
    [['--listen-peer-urls', 'https://127.0.0.1:2380'], 'TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url https://127.0.0.1:2380 with HTTPS scheme'],
    [['--listen-metrics-urls', 'https://127.0.0.1:2381'], 'client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url'],
    [['--cert-file', '/pki/server.crt'], '--cert-file and --key-file must be given together'],
    [['--peer-key-file', '/pki/peer.key'], '--peer-cert-file and --peer-key-file must be given together'],
  ])('%j → %s', (argv, message) => {
    const e = errorOf(argv);
    expect(e.message).toBe(message);
    expect(e.exitCode).toBe(1);
  });

  it('accepts the boundary 5 x heartbeat', () => {
    expect(cfg(['--heartbeat-interval', '200', '--election-timeout', '1000']).electionTimeoutMs).toBe(1000);
  });

  it('auto compaction retention: hours or a duration in periodic mode, revisions in revision mode', () => {
    expect(cfg(['--auto-compaction-retention', '1']).autoCompactionPeriodMs).toBe(3_600_000);
    expect(cfg(['--auto-compaction-retention', '5m']).autoCompactionPeriodMs).toBe(300_000);
    const rev = cfg(['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '1000']);
    expect(rev.autoCompactionRetainRevisions).toBe(1000);
    expect(rev.autoCompactionPeriodMs).toBe(0);
    expect(rev.autoCompactionMode).toBe('revision');
  });

  it('an out-of-range bcrypt cost falls back to 10 with a warning, as etcd', () => {
    const { config, warnings } = run(['--name', 'x', '--bcrypt-cost', '3']);
    expect(config.bcryptCost).toBe(10);
    expect(warnings).toContain('invalid bcrypt-cost 3 (must be between 4 and 31); using the default 10');
  });

  it('log settings: upper-case levels, file outputs, journald mapped to stderr', () => {
    const c = cfg(['--log-level', 'DEBUG', '--log-format', 'console', '--log-outputs', 'stdout,/var/log/etcd.log']);
    expect(c.logLevel).toBe('debug');
    expect(c.logFormat).toBe('console');
    expect(c.logOutputs).toEqual(['stdout', '/var/log/etcd.log']);
    const { config, warnings } = run(['--name', 'x', '--log-outputs', 'systemd/journal']);
    expect(config.logOutputs).toEqual(['stderr']);
    expect(warnings[0]).toContain('systemd/journal is not implemented');
  });

  it('TLS material on plain-http URLs earns a warning, as in etcd', () => {
    const { warnings } = run(['--name', 'x', '--cert-file', 'a.crt', '--key-file', 'a.key']);
    expect(warnings).toContain('client URL http://localhost:2379 is http/unix while --cert-file/--key-file are set; TLS is not used on it');
  });

  it('--trusted-ca-file alone makes client certificates required (etcd 3.6 rule)', () => {
    const c = cfg(['--trusted-ca-file', 'ca.pem']);
    expect(c.clientTls.clientCertAuth).toBe(false);
    expect(c.clientTls.requireClientCert).toBe(true);
  });

  it('a quota above 8 GiB is allowed with a warning', () => {
    const { warnings } = run(['--name', 'x', '--quota-backend-bytes', String(16 * 1024 ** 3)]);
    expect(warnings).toContain('--quota-backend-bytes 17179869184 exceeds the recommended maximum of 8 GiB');
  });
});

describe('bootstrap flags against the data dir', () => {
  it('advertised peer URLs must equal the member\'s --initial-cluster entry (etcd wording)', () => {
    expect(errorOf(['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:3380', '--initial-advertise-peer-urls', 'http://127.0.0.2:3380']).message).toBe(
      '--initial-cluster has a=http://127.0.0.1:3380 but missing from --initial-advertise-peer-urls=http://127.0.0.2:3380 (resolved urls: "http://127.0.0.2:3380" != "http://127.0.0.1:3380")',
    );
    expect(errorOf(['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:3380', '--initial-advertise-peer-urls', 'http://127.0.0.1:3380,http://127.0.0.2:3380']).message).toBe(
      '--initial-advertise-peer-urls has http://127.0.0.2:3380 but missing from --initial-cluster=a=http://127.0.0.1:3380,a=http://127.0.0.2:3380',
    );
  });

  it('a peer URL listed twice is refused', () => {
    expect(errorOf(['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:3380,b=http://127.0.0.1:3380', '--initial-advertise-peer-urls', 'http://127.0.0.1:3380']).message).toBe(
      'initial cluster a=http://127.0.0.1:3380,b=http://127.0.0.1:3380 has duplicate url',
    );
  });

  it('host names that only DNS can compare are left to verifyBootstrap', () => {
    const c = cfg(['--name', 'a', '--initial-cluster', 'a=http://node-a.example:2380', '--initial-advertise-peer-urls', 'http://10.0.0.1:2380']);
    expect(c.initialCluster[0]!.peerUrls).toEqual(['http://node-a.example:2380']);
  });

  it('once the data dir holds a member, bootstrap mistakes only warn (etcd ignores the flags)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
    try {
      fs.mkdirSync(path.join(dir, 'member', 'wal'), { recursive: true });
      const { config, warnings } = parseConfig(['--name', 'a', '--data-dir', dir, '--initial-cluster', 'b=http://127.0.0.1:3380'], {}) as {
        config: EtcdConfig;
        warnings: string[];
      };
      expect(config.dataDir).toBe(dir);
      expect(warnings).toEqual([
        `data dir ${dir} already holds a member, so the bootstrap flags are ignored (they would fail: couldn't find local name "a" in the initial cluster configuration)`,
      ]);
      // A fresh directory is checked.
      const fresh = path.join(dir, 'fresh');
      expect(() => parseConfig(['--name', 'a', '--data-dir', fresh, '--initial-cluster', 'b=http://127.0.0.1:3380'], {})).toThrow(
        'couldn\'t find local name "a" in the initial cluster configuration',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
