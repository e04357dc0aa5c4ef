import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  clusterSpecs, etcdctl, eventually, freePort, Member, sleep, stopAll, tempDir, tsetcdNodeArgs, type CtlResult, type MemberSpec,
} from './harness.js';

// The walkthrough's TLS cluster (seed-walkthrough.md §6), with certificates made by
// `tsetcd tls init` instead of cfssl: three members with https:// client and peer URLs,
// --client-cert-auth and --peer-client-cert-auth, driven by the real etcdctl with
// --cacert/--cert/--key. Then every kind of refusal the issue lists, each checked in the
// refusing member's log, while the cluster keeps serving the others.

afterAll(stopAll);

function run(args: string[]): Promise<CtlResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...tsetcdNodeArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr })); // after all output is read
  });
}

interface Identity {
  cacert: string;
  cert?: string;
  key?: string;
}

function tlsFlags(id: Identity): string[] {
  return [`--cacert=${id.cacert}`, ...(id.cert ? [`--cert=${id.cert}`, `--key=${id.key}`] : [])];
}

function ctl(endpoints: string | string[], id: Identity, args: string[], timeoutMs = 30_000): Promise<CtlResult> {
  return etcdctl(endpoints, [...tlsFlags(id), ...args], undefined, timeoutMs);
}

async function ctlOk(endpoints: string | string[], id: Identity, args: string[]): Promise<string> {
  const r = await ctl(endpoints, id, args);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function httpsGet(url: string, id: Identity): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, {
      ca: fs.readFileSync(id.cacert), agent: false,
      ...(id.cert ? { cert: fs.readFileSync(id.cert), key: fs.readFileSync(id.key!) } : {}),
    }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

/** Waits until `member`'s log has a line matching `pattern`, and returns it. */
async function logLine(member: Member, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return eventually(async () => {
    const line = member.stderr.split('\n').find((l) => pattern.test(l));
    if (!line) throw new Error(`no log line of ${member.spec.name} matches ${pattern}:\n${member.stderr.slice(-3000)}`);
    return line;
  }, timeoutMs, 100);
}

/** `CN=...` of a CA certificate file, as the log prints names. */
function caName(file: string): string {
  const subject = new crypto.X509Certificate(fs.readFileSync(file)).subject;
  return subject.split('\n').find((l) => l.startsWith('CN='))!;
}

function memberArgsTls(
  s: MemberSpec, certs: string, initialCluster: string, state: 'new' | 'existing', extra: string[] = [], caFile = path.join(certs, 'ca.pem'),
): string[] {
  const c = (f: string) => path.join(certs, f);
  return [
    '--name', s.name,
    '--data-dir', s.dataDir,
    '--listen-client-urls', `https://127.0.0.1:${s.clientPort}`,
    '--advertise-client-urls', `https://127.0.0.1:${s.clientPort}`,
    '--listen-peer-urls', `https://127.0.0.1:${s.peerPort}`,
    '--initial-advertise-peer-urls', `https://127.0.0.1:${s.peerPort}`,
    '--initial-cluster', initialCluster,
    '--initial-cluster-token', 'etcd-cluster-tls',
    '--initial-cluster-state', state,
    '--heartbeat-interval', '50',
    '--election-timeout', '500',
    // the walkthrough's flags
    '--client-cert-auth', `--trusted-ca-file=${caFile}`, `--cert-file=${c(`${s.name}-server.pem`)}`, `--key-file=${c(`${s.name}-server-key.pem`)}`,
    '--peer-client-cert-auth', `--peer-trusted-ca-file=${caFile}`, `--peer-cert-file=${c(`${s.name}-peer.pem`)}`, `--peer-key-file=${c(`${s.name}-peer-key.pem`)}`,
    ...extra,
  ];
}

describe('TLS cluster from `tsetcd tls init` (walkthrough §6)', () => {
  it('serves etcdctl with client certificates, refuses what it must, and explains why', async () => {
    const certs = path.join(tempDir(), 'certs');
    const foreign = path.join(tempDir(), 'foreign');
    const specs = await clusterSpecs(4);
    const [s0, s1, s2, s3] = specs as [MemberSpec, MemberSpec, MemberSpec, MemberSpec];

    // --- certificates, with the real CLI ------------------------------------------------
    const init = await run(['tls', 'init', '--out', certs, '--node', 'infra0=127.0.0.1', '--node', 'infra1=127.0.0.1', '--node', 'infra2=127.0.0.1', '--client', 'root']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`--peer-cert-file ${path.join(certs, 'infra1-peer.pem')}`);
    expect(init.stdout).toContain(`--cacert=${path.join(certs, 'ca.pem')} --cert=${path.join(certs, 'client-root.pem')}`);
    const check = await run(['tls', 'check', certs]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('8 certificate(s), 8 key(s): 0 error(s), 0 warning(s)');
    // A certificate set from another CA, and a peer certificate from our CA whose CN is not allowed.
    expect((await run(['tls', 'init', '--out', foreign, '--node', 'rogue=127.0.0.1', '--client', 'root'])).code).toBe(0);
    expect((await run(['tls', 'init', '--out', certs, '--node', 'intruder=127.0.0.1'])).code).toBe(0);

    const root: Identity = { cacert: path.join(certs, 'ca.pem'), cert: path.join(certs, 'client-root.pem'), key: path.join(certs, 'client-root-key.pem') };
    const ep = (s: MemberSpec) => `https://127.0.0.1:${s.clientPort}`;

    // --- three members, https everywhere, both cert-auth flags --------------------------
    const three = [s0, s1, s2].map((s) => `${s.name}=https://127.0.0.1:${s.peerPort}`).join(',');
    const metricsPort = await freePort();
    const allowedCn = ['--peer-cert-allowed-cn', 'infra0,infra1,infra2,infra3'];
    const members = [s0, s1, s2].map((s) => new Member(s, memberArgsTls(s, certs, three, 'new', [
      ...allowedCn,
      ...(s === s0 ? ['--listen-metrics-urls', `https://127.0.0.1:${metricsPort}`] : []),
    ])).start());
    const [m0, m1] = members as [Member, Member, Member];
    await eventually(async () => {
      for (const m of members) if (m.exitCode !== null) throw new Error(`${m.spec.name} exited:\n${m.stderr.slice(-3000)}`);
      const out = await ctlOk(ep(s0), root, ['member', 'list']);
      expect(out.trim().split('\n').filter((l) => l.includes(', started, '))).toHaveLength(3);
    }, 30_000, 300);

    await eventually(async () => {
      const list = await ctlOk([ep(s0), ep(s1), ep(s2)], root, ['member', 'list', '-w', 'table']);
      for (const s of [s0, s1, s2]) expect(list).toContain(`| started | ${s.name} | https://127.0.0.1:${s.peerPort} | https://127.0.0.1:${s.clientPort} |`);
    }, 10_000, 300);
    expect(await ctlOk(ep(s0), root, ['put', 'key1', 'vasya'])).toBe('OK\n');
    expect(await ctlOk(ep(s2), root, ['get', 'key1'])).toBe('key1\nvasya\n');
    for (const m of members) expect(m.stderr).toMatch(/peer stream established/);

    // The HTTP endpoints share the TLS port; --listen-metrics-urls https too.
    expect(await httpsGet(`${ep(s1)}/health`, root)).toEqual({ status: 200, body: expect.stringContaining('"health":"true"') as unknown as string });
    const metrics = await httpsGet(`https://127.0.0.1:${metricsPort}/metrics`, root);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('etcd_server_has_leader 1');

    // --- refusals on the client port -----------------------------------------------------
    // 1. no client certificate
    const noCert = await ctl(ep(s1), { cacert: root.cacert }, ['get', 'key1', '--dial-timeout=2s', '--command-timeout=3s']);
    expect(noCert.code).not.toBe(0);
    // Match the refusal itself: earlier connections (etcdctl dialing several endpoints and closing
    // the spare ones mid-handshake) may have logged other rejections first.
    expect(await logLine(m1, /client certificate missing: the client sent no certificate/)).toMatch(
      /rejected a TLS connection on the client port.*client certificate missing: the client sent no certificate, but --client-cert-auth requires one/);
    expect(await httpsGet(`${ep(s1)}/health`, { cacert: root.cacert })).toEqual({ status: 403, body: 'client certificate missing\n' });
    // 2. a client certificate from another CA
    const otherCa = await ctl(ep(s0), {
      cacert: root.cacert, cert: path.join(foreign, 'client-root.pem'), key: path.join(foreign, 'client-root-key.pem'),
    }, ['get', 'key1', '--dial-timeout=2s', '--command-timeout=3s']);
    expect(otherCa.code).not.toBe(0);
    // The message names the issuer and the CA that is trusted instead (each `tls init` CA has its own name).
    const ourCa = caName(root.cacert);
    const foreignCa = caName(path.join(foreign, 'ca.pem'));
    expect(ourCa).not.toBe(foreignCa);
    const clientLine = await logLine(m0, /unknown CA: the client certificate/);
    expect(clientLine).toContain(`unknown CA: the client certificate \\"CN=root\\" issued by \\"${foreignCa}\\" is not signed by a CA in --trusted-ca-file (${root.cacert}, which holds \\"${ourCa}\\")`);
    // 3. plain http:// against the https:// port
    const plain = await etcdctl(`http://127.0.0.1:${s2.clientPort}`, ['get', 'key1', '--dial-timeout=2s', '--command-timeout=3s'], undefined, 30_000);
    expect(plain.code).not.toBe(0);
    await logLine(members[2]!, /not TLS: the other side sent plain data to this https port/);

    // --- refusals on the peer port -------------------------------------------------------
    const rogueSpec = { ...s3, name: 'rogue', dataDir: `${s3.dataDir}-rogue` };
    const withRogue = `${three},rogue=https://127.0.0.1:${s3.peerPort}`;
    // 4. a peer whose certificate comes from another CA (it trusts ours, so only we refuse it)
    const rogue = new Member(rogueSpec, memberArgsTls(rogueSpec, foreign, withRogue, 'existing', [], root.cacert)).start();
    expect(await rogue.exited).not.toBe(0);
    expect(rogue.stderr).toMatch(/no running member answered .*HTTP 403: unknown CA/);
    const peerLine = await logLine(m0, /unknown CA: the peer certificate/);
    expect(peerLine).toContain(`unknown CA: the peer certificate \\"CN=rogue\\" issued by \\"${foreignCa}\\" is not signed by a CA in --peer-trusted-ca-file (${root.cacert}, which holds \\"${ourCa}\\")`);
    // 5. a peer from our CA whose CN is not in --peer-cert-allowed-cn
    const intruderSpec = { ...s3, name: 'intruder', dataDir: `${s3.dataDir}-intruder` };
    const intruder = new Member(intruderSpec, memberArgsTls(intruderSpec, certs, `${three},intruder=https://127.0.0.1:${s3.peerPort}`, 'existing')).start();
    expect(await intruder.exited).not.toBe(0);
    expect(intruder.stderr).toMatch(/HTTP 403: certificate CN not allowed/);
    expect(await logLine(m0, /CN not allowed/)).toMatch(
      /CN not allowed: the peer certificate \\"CN=intruder\\" .*has CN \\"intruder\\", not one of --peer-cert-allowed-cn=infra0,infra1,infra2,infra3/);

    // --- the cluster keeps serving everyone else ----------------------------------------
    expect(await ctlOk(ep(s1), root, ['put', 'key2', 'after-refusals'])).toBe('OK\n');
    expect(await ctlOk(ep(s0), root, ['get', 'key2', '--print-value-only'])).toBe('after-refusals\n');
    const after = await ctlOk(ep(s2), root, ['member', 'list']);
    expect(after.trim().split('\n').filter((l) => l.includes(', started, '))).toHaveLength(3);

    // --- growing the TLS cluster: a fourth member joins over https ----------------------
    expect((await run(['tls', 'init', '--out', certs, '--node', 'infra3=127.0.0.1'])).code).toBe(0);
    // Asked of the leader: tsetcd followers connect to the other followers only when they
    // have something to send, so their --strict-reconfig-check sees them as not connected.
    const leaderEp = await eventually(async () => {
      const rows = JSON.parse(await ctlOk([ep(s0), ep(s1), ep(s2)], root, ['endpoint', 'status', '-w', 'json'])) as
        { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
      const leader = rows.find((r) => r.Status.leader === r.Status.header.member_id);
      if (!leader) throw new Error('no leader yet');
      return leader.Endpoint;
    });
    await eventually(() => ctlOk(leaderEp, root, ['member', 'add', 'infra3', `--peer-urls=https://127.0.0.1:${s3.peerPort}`]), 20_000, 500);
    const four = `${three},infra3=https://127.0.0.1:${s3.peerPort}`;
    const m3 = new Member(s3, memberArgsTls(s3, certs, four, 'existing', allowedCn)).start();
    await eventually(async () => {
      if (m3.exitCode !== null) throw new Error(`infra3 exited:\n${m3.stderr.slice(-3000)}`);
      expect(await ctlOk(ep(s3), root, ['get', 'key2', '--print-value-only'])).toBe('after-refusals\n');
    }, 30_000, 300);
    const listed = await ctlOk(ep(s3), root, ['member', 'list']);
    expect(listed.trim().split('\n').filter((l) => l.includes(', started, '))).toHaveLength(4);
    await sleep(0);
  }, 180_000);
});

describe('--auto-tls and --peer-auto-tls', () => {
  it('make self-signed certificates under the data dir and serve https between members and to etcdctl', async () => {
    const specs = await clusterSpecs(2);
    const ic = specs.map((s) => `${s.name}=https://127.0.0.1:${s.peerPort}`).join(',');
    const members = specs.map((s) => new Member(s, [
      '--name', s.name, '--data-dir', s.dataDir,
      '--listen-client-urls', `https://127.0.0.1:${s.clientPort}`, '--advertise-client-urls', `https://127.0.0.1:${s.clientPort}`,
      '--listen-peer-urls', `https://127.0.0.1:${s.peerPort}`, '--initial-advertise-peer-urls', `https://127.0.0.1:${s.peerPort}`,
      '--initial-cluster', ic, '--initial-cluster-token', 'auto-tls', '--heartbeat-interval', '50', '--election-timeout', '500',
      '--auto-tls', '--peer-auto-tls',
    ]).start());
    const eps = specs.map((s) => `https://127.0.0.1:${s.clientPort}`);
    await eventually(async () => {
      for (const m of members) if (m.exitCode !== null) throw new Error(`${m.spec.name} exited:\n${m.stderr.slice(-3000)}`);
      // etcdctl 3.4 honours --insecure-skip-tls-verify only with --insecure-transport=false.
      const r = await etcdctl(eps, ['--insecure-transport=false', '--insecure-skip-tls-verify', 'put', 'auto', 'tls'], undefined, 10_000);
      if (r.code !== 0) throw new Error(r.stderr);
    }, 30_000, 300);
    const got = await etcdctl(eps[1]!, ['--insecure-transport=false', '--insecure-skip-tls-verify', 'get', 'auto', '--print-value-only']);
    expect(got.stdout).toBe('tls\n');
    for (const s of specs) {
      for (const side of ['client', 'peer']) {
        const cert = new crypto.X509Certificate(fs.readFileSync(path.join(s.dataDir, 'fixtures', side, 'cert.pem')));
        expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
        expect(fs.statSync(path.join(s.dataDir, 'fixtures', side, 'key.pem')).mode & 0o777).toBe(0o600);
      }
    }
    for (const m of members) expect(m.stderr).toMatch(/created a self-signed certificate \(auto TLS\)/);
  }, 90_000);
});
