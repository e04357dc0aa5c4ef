import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkBootstrapSync,
  initialClusterString,
  isDataDirInitialized,
  parseInitialCluster,
  resolveUrlHost,
  verifyBootstrap,
  type BootstrapInput,
} from '../../../src/cli/bootstrap.js';
import { ConfigError } from '../../../src/cli/errors.js';

function input(name: string, cluster: string, advertised: string[]): BootstrapInput {
  return { name, initialCluster: parseInitialCluster(cluster), initialAdvertisePeerUrls: advertised };
}

/** A resolver standing in for DNS: a fixed table of host names. */
function fakeDns(table: Record<string, string>): (u: string) => Promise<string> {
  return async (u: string) => {
    const m = /^(\w+):\/\/([^:/]+):(\d+)$/.exec(u);
    if (m === null) return u;
    const ip = table[m[2]!];
    if (ip === undefined) {
      if (/^[\d.]+$/.test(m[2]!) || m[2] === 'localhost') return u;
      throw new Error(`failed to resolve "${u}" (lookup ${m[2]}: no such host)`);
    }
    return `${m[1]}://${ip}:${m[3]}`;
  };
}

describe('parseInitialCluster', () => {
  it('groups repeated names, sorts URLs, skips empty items and keeps first-seen member order', () => {
    expect(parseInitialCluster('b=http://10.0.0.2:2380,,a=http://10.0.1.1:2380,a=http://10.0.0.1:2380')).toEqual([
      { name: 'b', peerUrls: ['http://10.0.0.2:2380'] },
      { name: 'a', peerUrls: ['http://10.0.0.1:2380', 'http://10.0.1.1:2380'] },
    ]);
    expect(parseInitialCluster('')).toEqual([]);
  });

  it('prints like etcd\'s URLsMap', () => {
    expect(initialClusterString(parseInitialCluster('b=http://2.2.2.2:1,a=http://1.1.1.1:1'))).toBe('a=http://1.1.1.1:1,b=http://2.2.2.2:1');
  });

  it('wraps URL errors like etcd', () => {
    expect(() => parseInitialCluster('a=ftp://x:1')).toThrow(
      new ConfigError('error setting up initial cluster: URL scheme must be http, https, unix, or unixs: ftp://x:1'),
    );
  });
});

describe('checkBootstrapSync', () => {
  it('passes when the advertised URLs equal the member\'s entry, in any order', () => {
    expect(checkBootstrapSync(input('a', 'a=http://10.0.0.1:2380,a=http://10.0.1.1:2380', ['http://10.0.1.1:2380', 'http://10.0.0.1:2380']))).toEqual({ needsDns: false });
  });

  it('reports a different number of URLs like etcd', () => {
    expect(() => checkBootstrapSync(input('a', 'a=http://127.0.0.1:3380,a=http://127.0.0.2:3380', ['http://127.0.0.2:3380']))).toThrow(
      new ConfigError(
        '--initial-cluster has a=http://127.0.0.1:3380 but missing from --initial-advertise-peer-urls=http://127.0.0.2:3380 (len(["http://127.0.0.2:3380"]) != len(["http://127.0.0.1:3380" "http://127.0.0.2:3380"]))',
      ),
    );
  });

  it('localhost is never resolved, so it does not equal 127.0.0.1 (as in etcd)', () => {
    expect(() => checkBootstrapSync(input('a', 'a=http://localhost:2380', ['http://127.0.0.1:2380']))).toThrow(
      '--initial-cluster has a=http://localhost:2380 but missing from --initial-advertise-peer-urls=http://127.0.0.1:2380',
    );
  });

  it('defers to DNS when a host name is involved', () => {
    expect(checkBootstrapSync(input('a', 'a=http://node-a:2380', ['http://10.0.0.1:2380']))).toEqual({ needsDns: true });
  });

  it('refuses an empty initial cluster and a missing local member', () => {
    expect(() => checkBootstrapSync(input('a', '', ['http://10.0.0.1:2380']))).toThrow(
      'couldn\'t find local name "a" in the initial cluster configuration',
    );
  });
});

describe('verifyBootstrap (with DNS)', () => {
  it('accepts a host name that resolves to the advertised address', async () => {
    const dns = fakeDns({ 'node-a': '10.0.0.1' });
    await expect(verifyBootstrap(input('a', 'a=http://node-a:2380,b=http://node-b:2380', ['http://10.0.0.1:2380']), dns)).resolves.toBeUndefined();
  });

  it('reports the resolved addresses when they differ', async () => {
    const dns = fakeDns({ 'node-a': '10.0.0.9' });
    await expect(verifyBootstrap(input('a', 'a=http://node-a:2380', ['http://10.0.0.1:2380']), dns)).rejects.toThrow(
      '--initial-cluster has a=http://node-a:2380 but missing from --initial-advertise-peer-urls=http://10.0.0.1:2380 (resolved urls: "http://10.0.0.1:2380" != "http://10.0.0.9:2380")',
    );
  });

  it('reports a resolution failure', async () => {
    const dns = fakeDns({});
    await expect(verifyBootstrap(input('a', 'a=http://nowhere:2380', ['http://10.0.0.1:2380']), dns)).rejects.toThrow(
      'failed to resolve "http://nowhere:2380" (lookup nowhere: no such host)',
    );
  });

  it('checks duplicates after the advertise match', async () => {
    await expect(verifyBootstrap(input('a', 'a=http://10.0.0.1:2380,b=http://10.0.0.1:2380', ['http://10.0.0.1:2380']), fakeDns({}))).rejects.toThrow(
      'initial cluster a=http://10.0.0.1:2380,b=http://10.0.0.1:2380 has duplicate url',
    );
  });

  it('resolveUrlHost leaves IPs, localhost and unix sockets alone', async () => {
    await expect(resolveUrlHost('http://127.0.0.1:2380')).resolves.toBe('http://127.0.0.1:2380');
    await expect(resolveUrlHost('http://localhost:2380')).resolves.toBe('http://localhost:2380');
    await expect(resolveUrlHost('unix://sock:1')).resolves.toBe('unix://sock:1');
  });
});

describe('isDataDirInitialized', () => {
  it('is true once <data-dir>/member exists or the WAL dir has files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
    try {
      const wal = path.join(dir, 'wal');
      expect(isDataDirInitialized(dir, wal)).toBe(false);
      fs.mkdirSync(wal);
      expect(isDataDirInitialized(dir, wal)).toBe(false);
      fs.writeFileSync(path.join(wal, '0000000000000000-0000000000000000.wal'), '');
      expect(isDataDirInitialized(dir, wal)).toBe(true);
      fs.rmSync(wal, { recursive: true });
      fs.mkdirSync(path.join(dir, 'member'));
      expect(isDataDirInitialized(dir, wal)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
