import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, createCrl, importSigningKey, issueCertificate, selfSignedCertificate, subjectAltNames, type PemPair } from '../../../src/cli/tls/pki.js';
import { checkTlsFiles, formatCheckReport } from '../../../src/cli/tls/inspect.js';
import { clientFileBase, parseInitArgs, runInit, runTlsCommand } from '../../../src/cli/tls/command.js';
import { loadX509 } from '../../../src/cli/tls/x509-lib.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY_MS = 86_400_000;

let dir: string;
let ca: PemPair;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  ca = await createCa({ days: 30 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('pki', () => {
  it('makes a CA that is a CA and signs itself', async () => {
    const c = new crypto.X509Certificate(ca.certPem);
    expect(c.ca).toBe(true);
    expect(c.checkIssued(c)).toBe(true);
    expect(c.verify(c.publicKey)).toBe(true);
    expect(c.checkPrivateKey(crypto.createPrivateKey(ca.keyPem))).toBe(true);
    expect(c.subject).toContain('CN=tsetcd CA');
    const days = (new Date(c.validTo).getTime() - Date.now()) / DAY_MS;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);
  });

  it('issues server, peer and client certificates with etcd usages and SANs', async () => {
    const x509 = await loadX509();
    const server = await issueCertificate(ca, { profile: 'server', commonName: 'infra0', hosts: ['10.0.0.1', 'etcd0.example.com', '10.0.0.1'], days: 10 });
    const peer = await issueCertificate(ca, { profile: 'peer', commonName: 'infra0', hosts: ['10.0.0.1'], days: 10 });
    const client = await issueCertificate(ca, { profile: 'client', commonName: 'root', days: 10 });
    const caCert = new crypto.X509Certificate(ca.certPem);
    for (const pair of [server, peer, client]) {
      const c = new crypto.X509Certificate(pair.certPem);
      expect(c.ca).toBe(false);
      expect(c.checkIssued(caCert)).toBe(true);
      expect(c.verify(caCert.publicKey)).toBe(true);
      expect(c.checkPrivateKey(crypto.createPrivateKey(pair.keyPem))).toBe(true);
    }
    const s = new crypto.X509Certificate(server.certPem);
    expect(s.keyUsage).toEqual([SERVER_AUTH, CLIENT_AUTH]);
    expect(s.subjectAltName).toBe('IP Address:10.0.0.1, DNS:etcd0.example.com');
    expect(s.checkIP('10.0.0.1')).toBe('10.0.0.1');
    expect(s.checkHost('etcd0.example.com')).toBe('etcd0.example.com');
    expect(new crypto.X509Certificate(peer.certPem).keyUsage).toEqual([SERVER_AUTH, CLIENT_AUTH]);
    const c = new crypto.X509Certificate(client.certPem);
    expect(c.keyUsage).toEqual([CLIENT_AUTH]);
    expect(c.subject).toContain('CN=root');
    expect(c.subjectAltName).toBeUndefined();
    // Key usage bits (digitalSignature | keyEncipherment) read back through the library.
    const ku = new x509.X509Certificate(client.certPem).getExtension(x509.KeyUsagesExtension);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  });

  it('refuses a server certificate without hosts and a non-positive validity', async () => {
    await expect(issueCertificate(ca, { profile: 'server', commonName: 'x', hosts: [], days: 1 })).rejects.toThrow(/at least one host/);
    await expect(issueCertificate(ca, { profile: 'client', commonName: 'x', days: 0 })).rejects.toThrow(/positive/);
  });

  it('signs with an existing RSA CA and reads SEC1/PKCS#1 keys', async () => {
    const rsaCa = await createCa({ days: 5, keyType: 'rsa' });
    const leaf = await issueCertificate(rsaCa, { profile: 'client', commonName: 'app', days: 1 });
    expect(new crypto.X509Certificate(leaf.certPem).verify(new crypto.X509Certificate(rsaCa.certPem).publicKey)).toBe(true);
    const sec1 = crypto.createPrivateKey(ca.keyPem).export({ type: 'sec1', format: 'pem' }).toString();
    const k = await importSigningKey(sec1);
    expect(k.signingAlgorithm).toEqual({ name: 'ECDSA', hash: 'SHA-256' });
  });

  it('splits hosts into IP and DNS names without duplicates', () => {
    expect(subjectAltNames(['127.0.0.1', 'localhost', '[::1]', '127.0.0.1', ''])).toEqual([
      { type: 'ip', value: '127.0.0.1' }, { type: 'dns', value: 'localhost' }, { type: 'ip', value: '::1' },
    ]);
  });

  it('makes an auto-TLS style self-signed certificate', async () => {
    const pair = await selfSignedCertificate({ hosts: ['127.0.0.1'], days: 365, clientAuth: true });
    const c = new crypto.X509Certificate(pair.certPem);
    expect(c.issuer).toBe(c.subject);
    expect(c.verify(c.publicKey)).toBe(true);
    expect(c.subject).toBe('O=etcd');
    expect(c.keyUsage).toEqual([SERVER_AUTH, CLIENT_AUTH]);
    expect(c.checkIP('127.0.0.1')).toBe('127.0.0.1');
    const f = path.join(dir, 'auto.pem');
    fs.writeFileSync(f, pair.certPem);
    const r = await checkTlsFiles([f]);
    expect(r.certs[0]!.chain).toBe('self-signed');
    expect(r.certs[0]!.warnings.join()).toMatch(/self-signed leaf/);
  });

  it('makes a CRL listing revoked serials', async () => {
    const x509 = await loadX509();
    const leaf = new crypto.X509Certificate((await issueCertificate(ca, { profile: 'client', commonName: 'gone', days: 1 })).certPem);
    const crl = new x509.X509Crl(await createCrl(ca, { revokedSerials: [leaf.serialNumber] }));
    expect(crl.entries.map((e) => e.serialNumber.toLowerCase())).toEqual([leaf.serialNumber.toLowerCase()]);
  });
});

describe('tsetcd tls init', () => {
  it('parses its arguments', () => {
    const o = parseInitArgs(['--out', 'd', '--node', 'infra0=10.0.0.1,n0.local', '--node=infra1=10.0.0.2', '--localhost', '--days=20']);
    expect(o.nodes).toEqual([{ name: 'infra0', hosts: ['10.0.0.1', 'n0.local'] }, { name: 'infra1', hosts: ['10.0.0.2'] }]);
    expect(o.clients).toEqual([]);
    expect(o.localhost).toBe(true);
    expect(o.days).toBe(20);
    expect(() => parseInitArgs(['--node', 'a=1.2.3.4'])).toThrow(/--out DIR is required/);
    expect(() => parseInitArgs(['--out', 'd', '--node', 'a=http://1.2.3.4:2380'])).toThrow(/neither an IP address nor a host name/);
    expect(() => parseInitArgs(['--out', 'd', '--node', 'a'])).toThrow(/NAME=HOST/);
    expect(() => parseInitArgs(['--out', 'd', '--node', 'a=1.1.1.1', '--node', 'a=1.1.1.2'])).toThrow(/twice/);
    expect(() => parseInitArgs(['--out', 'd', '--node', 'a=1.1.1.1', '--days', '0'])).toThrow(/positive/);
    expect(clientFileBase('app user/1')).toBe('client-app_user_1');
  });

  it('writes the walkthrough set with clear names and a guide, and check explains it', async () => {
    const out = path.join(dir, 'set');
    const res = await runInit(parseInitArgs(['--out', out, '--node', 'infra0=172.16.80.20', '--node', 'infra1=172.16.80.21', '--localhost']));
    const names = fs.readdirSync(out).sort();
    expect(names).toEqual([
      'README.txt', 'ca-key.pem', 'ca.pem', 'client-root-key.pem', 'client-root.pem',
      'infra0-peer-key.pem', 'infra0-peer.pem', 'infra0-server-key.pem', 'infra0-server.pem',
      'infra1-peer-key.pem', 'infra1-peer.pem', 'infra1-server-key.pem', 'infra1-server.pem',
    ]);
    expect(fs.statSync(path.join(out, 'ca-key.pem')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(out, 'infra0-peer-key.pem')).mode & 0o777).toBe(0o600);
    const peer0 = new crypto.X509Certificate(fs.readFileSync(path.join(out, 'infra0-peer.pem')));
    expect(peer0.subjectAltName).toBe('IP Address:172.16.80.20, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost');
    expect(res.guide).toContain(`--peer-cert-file ${path.join(out, 'infra0-peer.pem')}`);
    expect(res.guide).toContain(`--cert-file ${path.join(out, 'infra1-server.pem')}`);
    expect(res.guide).toContain(`--cacert=${path.join(out, 'ca.pem')} --cert=${path.join(out, 'client-root.pem')} --key=${path.join(out, 'client-root-key.pem')}`);
    expect(res.guide).toContain('--initial-cluster infra0=https://172.16.80.20:2380,infra1=https://172.16.80.21:2380');
    expect(fs.readFileSync(path.join(out, 'README.txt'), 'utf8')).toBe(res.guide);

    const report = await checkTlsFiles([out]);
    expect(report.errorCount).toBe(0);
    expect(report.warningCount).toBe(0);
    const byName = new Map(report.certs.map((c) => [path.basename(c.file), c]));
    expect(byName.get('ca.pem')!.role).toBe('ca');
    expect(byName.get('infra0-server.pem')!.role).toBe('server');
    expect(byName.get('infra0-peer.pem')!.role).toBe('peer');
    expect(byName.get('client-root.pem')!.role).toBe('client');
    expect(byName.get('client-root.pem')!.commonName).toBe('root');
    for (const c of report.certs) {
      expect(c.chainVerified).toBe(true);
      expect(c.keyFile).toBe(path.join(out, path.basename(c.file).replace(/\.pem$/, '-key.pem')));
    }
    expect(byName.get('infra1-peer.pem')!.chain).toMatch(/^signed by ca\.pem/);
    const text = formatCheckReport(report);
    expect(text).toContain('use with: --peer-cert-file, --cert-file');
    expect(text).toContain('use with: etcdctl --cert');
    expect(text).toContain('0 error(s), 0 warning(s)');

    // A second run adds a member with the same CA and leaves the others alone.
    const before = fs.readFileSync(path.join(out, 'ca.pem'), 'utf8');
    const again = await runInit(parseInitArgs(['--out', out, '--node', 'infra2=172.16.80.22', '--client', 'ops']));
    expect(again.caReused).toBe(true);
    expect(fs.readFileSync(path.join(out, 'ca.pem'), 'utf8')).toBe(before);
    const peer2 = new crypto.X509Certificate(fs.readFileSync(path.join(out, 'infra2-peer.pem')));
    expect(peer2.verify(new crypto.X509Certificate(before).publicKey)).toBe(true);
    expect(fs.existsSync(path.join(out, 'client-ops.pem'))).toBe(true);
    const third = await runInit(parseInitArgs(['--out', out, '--node', 'infra3=172.16.80.23']));
    expect(third.files.map((f) => path.basename(f.file))).toEqual(['ca.pem', 'ca-key.pem', 'infra3-server.pem', 'infra3-server-key.pem', 'infra3-peer.pem', 'infra3-peer-key.pem']);
    // Existing files are not overwritten without --force.
    await expect(runInit(parseInitArgs(['--out', out, '--node', 'infra0=172.16.80.20']))).rejects.toThrow(/already exist/);
  });

  it('check reports expired certificates, foreign chains, near expiry and stray keys', async () => {
    const other = await createCa({ days: 30, commonName: 'other CA' });
    const d = path.join(dir, 'mixed');
    fs.mkdirSync(d);
    const expired = await issueCertificate(ca, { profile: 'client', commonName: 'old', days: 1, validFrom: new Date(Date.now() - 10 * DAY_MS) });
    const soon = await issueCertificate(ca, { profile: 'server', commonName: 'soon', hosts: ['10.0.0.9'], days: 5 });
    const foreign = await issueCertificate(other, { profile: 'client', commonName: 'intruder', days: 5 });
    fs.writeFileSync(path.join(d, 'ca.pem'), ca.certPem);
    fs.writeFileSync(path.join(d, 'old.pem'), expired.certPem);
    fs.writeFileSync(path.join(d, 'soon.pem'), soon.certPem);
    fs.writeFileSync(path.join(d, 'soon-key.pem'), soon.keyPem);
    fs.writeFileSync(path.join(d, 'intruder.pem'), foreign.certPem);
    fs.writeFileSync(path.join(d, 'stray-key.pem'), other.keyPem);
    fs.writeFileSync(path.join(d, 'notes.pem'), 'hello');
    const now = new Date();
    const r = await checkTlsFiles([d], now);
    const by = new Map(r.certs.map((c) => [path.basename(c.file), c]));
    expect(by.get('old.pem')!.errors.join()).toMatch(/expired on/);
    expect(by.get('soon.pem')!.warnings.join()).toMatch(/expires in [45] days/);
    expect(by.get('soon.pem')!.keyFile).toBe(path.join(d, 'soon-key.pem'));
    expect(by.get('intruder.pem')!.chainVerified).toBe(false);
    expect(by.get('intruder.pem')!.warnings.join()).toMatch(/CN=other CA/);
    expect(r.skipped.map((s) => path.basename(s.file)).sort()).toEqual(['notes.pem', 'stray-key.pem']);
    expect(r.errorCount).toBe(1);

    const lines: string[] = [];
    const code = await runTlsCommand(['check', d], { out: (s) => lines.push(s), err: (s) => lines.push(s) });
    expect(code).toBe(1);
    expect(lines.join('')).toContain('ERROR:    expired on');
  });

  it('prints usage and fails on bad input', async () => {
    const err: string[] = [];
    expect(await runTlsCommand(['bogus'], { out: () => {}, err: (s) => err.push(s) })).toBe(2);
    expect(err.join('')).toContain('unknown tls command');
    expect(await runTlsCommand(['check', path.join(dir, 'nope')], { out: () => {}, err: (s) => err.push(s) })).toBe(2);
    const out: string[] = [];
    expect(await runTlsCommand(['help'], { out: (s) => out.push(s), err: () => {} })).toBe(0);
    expect(out.join('')).toContain('tsetcd tls init --out DIR');
  });
});
