import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EtcdConfig } from '../../../src/cli/config.js';
import { ConfigError, parseConfig } from '../../../src/cli/parse.js';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function writeConfig(yaml: string, name = 'etcd.conf.yml'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, yaml);
  return file;
}

function load(argv: string[], env: NodeJS.ProcessEnv = {}): { config: EtcdConfig; warnings: string[] } {
  const r = parseConfig(argv, env, { dataDirInitialized: false });
  if (r.action !== 'run') throw new Error('expected run');
  return r;
}

function loadError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(argv, env, { dataDirInitialized: false });
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const CLUSTER_YAML = `
name: infra0
data-dir: /var/lib/etcd/infra0
wal-dir: /nvme/wal
snapshot-count: 20000
heartbeat-interval: 200
election-timeout: 2000
quota-backend-bytes: 4294967296
listen-peer-urls: https://10.0.0.1:2380
listen-client-urls: https://10.0.0.1:2379,https://127.0.0.1:2379
initial-advertise-peer-urls: https://10.0.0.1:2380
advertise-client-urls: https://10.0.0.1:2379
initial-cluster: "infra0=https://10.0.0.1:2380,infra1=https://10.0.0.2:2380"
initial-cluster-token: 'etcd-cluster-1'
initial-cluster-state: 'new'
strict-reconfig-check: false
pre-vote: true
auto-compaction-mode: periodic
auto-compaction-retention: "1"
log-level: debug
logger: zap
log-outputs: [stderr]
watch-progress-notify-interval: 5000000000
backend-batch-interval: 10ms
client-transport-security:
  cert-file: /pki/server.crt
  key-file: /pki/server.key
  client-cert-auth: true
  trusted-ca-file: /pki/ca.crt
  auto-tls: false
peer-transport-security:
  cert-file: /pki/peer.crt
  key-file: /pki/peer.key
  client-cert-auth: true
  trusted-ca-file: /pki/ca.crt
  auto-tls: false
  allowed-cn:
  allowed-hostname:
`;

describe('--config-file (etcd YAML format)', () => {
  it('reads flags by name, nested TLS blocks and etcd\'s nanosecond durations', () => {
    const file = writeConfig(CLUSTER_YAML);
    const { config: c, warnings } = load(['--config-file', file]);
    // auto-tls: false is etcd's default, so it asks for nothing tsetcd lacks; snapshot-count is deprecated in 3.6.
    expect(warnings).toEqual(['--snapshot-count is deprecated in etcd 3.6 and goes away in 3.7']);
    expect(c.configFile).toBe(file);
    expect(c.name).toBe('infra0');
    expect(c.dataDir).toBe('/var/lib/etcd/infra0');
    expect(c.walDir).toBe('/nvme/wal');
    expect(c.snapshotCount).toBe(20000);
    expect(c.heartbeatIntervalMs).toBe(200);
    expect(c.electionTimeoutMs).toBe(2000);
    expect(c.quotaBackendBytes).toBe(4294967296);
    expect(c.listenClientUrls.map(String)).toEqual(['https://10.0.0.1:2379', 'https://127.0.0.1:2379']);
    expect(c.initialCluster).toEqual([
      { name: 'infra0', peerUrls: ['https://10.0.0.1:2380'] },
      { name: 'infra1', peerUrls: ['https://10.0.0.2:2380'] },
    ]);
    expect(c.initialClusterToken).toBe('etcd-cluster-1');
    expect(c.strictReconfigCheck).toBe(false);
    expect(c.autoCompactionPeriodMs).toBe(3_600_000);
    expect(c.logLevel).toBe('debug');
    expect(c.logOutputs).toEqual(['stderr']);
    expect(c.watchProgressNotifyIntervalMs).toBe(5000);
    expect(c.backendBatchIntervalMs).toBe(10);
    expect(c.clientTls).toMatchObject({
      certFile: '/pki/server.crt', keyFile: '/pki/server.key', clientCertAuth: true, trustedCaFile: '/pki/ca.crt', autoTls: false,
    });
    expect(c.peerTls).toMatchObject({
      certFile: '/pki/peer.crt', keyFile: '/pki/peer.key', clientCertAuth: true, trustedCaFile: '/pki/ca.crt', allowedCn: [],
    });
    expect(c.sources.get('name')).toBe('config-file');
    expect(c.raw.get('peer-cert-file')).toBe('/pki/peer.crt');
  });

  it('ignores command-line flags and ETCD_* variables when a config file is used, and says so', () => {
    const file = writeConfig('name: fromfile\n');
    const { config, warnings } = load(['--config-file', file, '--name', 'fromflag'], { ETCD_DATA_DIR: '/x' });
    expect(config.name).toBe('fromfile');
    expect(config.dataDir).toBe('fromfile.etcd');
    expect(warnings).toContain(
      `configuration is read from ${file}; these command-line flags and environment variables are ignored: --name, ETCD_DATA_DIR`,
    );
  });

  it('ETCD_CONFIG_FILE works like --config-file; the flag wins', () => {
    const a = writeConfig('name: a\n', 'a.yml');
    const b = writeConfig('name: b\n', 'b.yml');
    expect(load([], { ETCD_CONFIG_FILE: a }).config.name).toBe('a');
    expect(load(['--config-file', b], { ETCD_CONFIG_FILE: a }).config.name).toBe('b');
  });

  it('still rejects an unknown command-line flag, since flags are parsed first (as etcd)', () => {
    const file = writeConfig('name: a\n');
    expect(loadError(['--config-file', file, '--bogus'])).toBe('flag provided but not defined: -bogus');
  });

  it('empty values count as unset, like the keys left blank in etcd.conf.yml.sample', () => {
    const file = writeConfig('name: n\ndata-dir:\nwal-dir:\ndiscovery:\ncors:\n');
    const { config, warnings } = load(['--config-file', file]);
    expect(config.dataDir).toBe('n.etcd');
    expect(warnings).toEqual([]);
  });

  it('accepts duration strings and lists where etcd wants numbers and comma strings', () => {
    const file = writeConfig(
      'name: n\nwatch-progress-notify-interval: 5s\ngrpc-keepalive-timeout: 30000000000\n' +
        'listen-peer-urls: [http://127.0.0.1:2380, http://127.0.0.2:2380]\nheartbeat-interval: "150"\n',
    );
    const c = load(['--config-file', file]).config;
    expect(c.watchProgressNotifyIntervalMs).toBe(5000);
    expect(c.grpcKeepaliveTimeoutMs).toBe(30000);
    expect(c.listenPeerUrls.map(String)).toEqual(['http://127.0.0.1:2380', 'http://127.0.0.2:2380']);
    expect(c.heartbeatIntervalMs).toBe(150);
  });

  it('reads feature gates as a string or as a mapping', () => {
    const s = writeConfig('name: n\nfeature-gates: InitialCorruptCheck=true\n', 's.yml');
    expect(load(['--config-file', s]).config.featureGates.get('InitialCorruptCheck')).toBe(true);
    const m = writeConfig('name: n\nfeature-gates:\n  CompactHashCheck: true\n', 'm.yml');
    expect(load(['--config-file', m]).config.featureGates.get('CompactHashCheck')).toBe(true);
  });

  it('maps the remaining nested TLS keys to their flags', () => {
    const file = writeConfig(`
name: n
client-transport-security:
  crl-file: /pki/client.crl
  allowed-hostname: [a.example, b.example]
  allowed-cn: [root]
peer-transport-security:
  allowed-cn: [etcd-peer]
  crl-file: /pki/peer.crl
  skip-client-san-verification: true
`);
    const { config, warnings } = load(['--config-file', file]);
    expect(config.clientTls.crlFile).toBe('/pki/client.crl');
    expect(config.clientTls.allowedHostname).toEqual(['a.example', 'b.example']);
    expect(config.clientTls.allowedCn).toEqual(['root']);
    expect(config.peerTls.allowedCn).toEqual(['etcd-peer']);
    expect(config.peerTls.crlFile).toBe('/pki/peer.crl');
    expect(config.peerTls.skipClientSanVerification).toBe(true);
    expect(warnings).not.toContain('config key client-transport-security.allowed-cn is accepted but not implemented by tsetcd yet; it has no effect');
    expect(config.clientTls.allowedCn).toEqual(['root']);
    expect(warnings).not.toContain('flag --peer-cert-allowed-cn is accepted but not implemented by tsetcd yet; it has no effect');
  });

  it('warns about unknown keys and non-implemented settings', () => {
    const file = writeConfig('name: n\nbogus-key: 1\nenable-pprof: true\nclient-transport-security:\n  weird: 1\n');
    const { warnings } = load(['--config-file', file]);
    expect(warnings).toContain(`unrecognized key "bogus-key" in config file ${file}; it is ignored`);
    expect(warnings).toContain(`unrecognized key "client-transport-security.weird" in config file ${file}; it is ignored`);
    expect(warnings).toContain('flag --enable-pprof is accepted but not implemented by tsetcd yet; it has no effect');
  });

  it('keeps etcd\'s default advertise URL when only listen-client-urls is in the file, with a warning', () => {
    const file = writeConfig('name: n\nlisten-client-urls: http://10.0.0.1:2379\n');
    const { config, warnings } = load(['--config-file', file]);
    expect(config.advertiseClientUrls.map(String)).toEqual(['http://localhost:2379']);
    expect(warnings.some((w) => w.includes('sets listen-client-urls but not advertise-client-urls'))).toBe(true);
  });

  it('applies the same validation as flags', () => {
    const file = writeConfig('name: n\nheartbeat-interval: 300\n');
    expect(loadError(['--config-file', file])).toBe('--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]');
  });

  it.each([
    ['name: n\nsnapshot-count: lots\n', 'invalid value "lots" for "snapshot-count" in config file FILE: parse error'],
    ['name: n\npre-vote: maybe\n', 'invalid value "maybe" for "pre-vote" in config file FILE: parse error'],
    ['name: n\ninitial-cluster-state: joining\n', 'invalid value "joining" for "initial-cluster-state" in config file FILE: invalid value (must be one of: new, existing)'],
    ['name: n\nlisten-peer-urls: peer:2380\n', 'invalid value "peer:2380" for "listen-peer-urls" in config file FILE: URL scheme must be http, https, unix, or unixs: peer:2380'],
    ['name: n\nname: m\n', 'error converting YAML to JSON in FILE: Map keys must be unique'],
    ['- a\n- b\n', 'config file FILE must hold a YAML mapping of flag names to values'],
    ['name: n\ncert-file: a.crt\nkey-file: a.key\nclient-transport-security:\n  cert-file: b.crt\n', 'config file FILE sets both "cert-file" and "client-transport-security.cert-file", which mean the same setting'],
    ['name: n\nclient-transport-security: yes\n', 'invalid client-transport-security'],
    ['name: n\nname2: [\n', 'error converting YAML to JSON in FILE:'],
  ])('%j is refused', (yaml, message) => {
    const file = writeConfig(yaml);
    const got = loadError(['--config-file', file]);
    expect(got.startsWith(message.replace('FILE', file))).toBe(true);
  });

  it('a missing file is reported like Go\'s os.Open', () => {
    const missing = path.join(dir, 'nope.yml');
    expect(loadError(['--config-file', missing])).toBe(`open ${missing}: no such file or directory`);
  });
});
