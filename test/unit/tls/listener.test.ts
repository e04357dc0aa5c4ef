import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, createCrl, issueCertificate, type PemPair } from '../../../src/cli/tls/pki.js';
import type { TlsConfig } from '../../../src/cli/config.js';
import { createLogger } from '../../../src/log/logger.js';
import { listenClientUrl, type ClientListener } from '../../../src/api/listener.js';
import { TlsSide, ensureSelfSignedCert, openSslCipherList, peerGet, type TlsProtocolSettings } from '../../../src/api/tls-config.js';
import { certCommonName } from '../../../src/api/tls-identity.js';

// The client port over TLS, end to end inside one process: real TLS handshakes against
// listenClientUrl, gRPC calls through grpc-js, HTTP/1.1 through node:https, and the log
// lines that explain each refusal.

let dir: string;
const files: Record<string, string> = {};
let ca: PemPair;
const logLines: string[] = [];
const logger = createLogger({ sink: (l) => logLines.push(l), level: 'debug' });

function write(name: string, pair: PemPair): void {
  files[name] = path.join(dir, `${name}.pem`);
  files[`${name}-key`] = path.join(dir, `${name}-key.pem`);
  fs.writeFileSync(files[name]!, pair.certPem);
  fs.writeFileSync(files[`${name}-key`]!, pair.keyPem);
}

function tlsConfig(over: Partial<TlsConfig>): TlsConfig {
  return {
    certFile: files.server!, keyFile: files['server-key']!, clientCertFile: '', clientKeyFile: '', trustedCaFile: files.ca!,
    clientCertAuth: true, requireClientCert: true, autoTls: false, crlFile: '', allowedCn: [], allowedHostname: [],
    skipClientSanVerification: false, ...over,
  };
}

const defaultProtocol: TlsProtocolSettings = { cipherSuites: [], minVersion: 'TLS1.2', maxVersion: '' };

function side(over: Partial<TlsConfig> = {}, protocol = defaultProtocol, which: 'client' | 'peer' = 'client'): TlsSide {
  return new TlsSide({ side: which, config: tlsConfig(over), protocol, selfSigned: false, logger });
}

let lastCallPath = '';

const whoMethod = {
  path: '/tsetcd.test.Identity/Who',
  requestStream: false,
  responseStream: false,
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

async function startListener(tlsSide: TlsSide): Promise<{ listener: ClientListener; port: number; grpcServer: grpc.Server }> {
  const grpcServer = new grpc.Server();
  grpcServer.addService({ Who: whoMethod } as unknown as grpc.ServiceDefinition, {
    Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      // Which way grpc-js got the connection: the TLSSocket itself, or the :authority shim.
      lastCallPath = call.getAuthContext().sslPeerCertificate ? 'direct' : 'wrapped';
      cb(null, Buffer.from(certCommonName(call) ?? '<none>'));
    },
  });
  const port = await freePort();
  const listener = await listenClientUrl(
    { scheme: 'https', hostname: '127.0.0.1', portNumber: port, text: `https://127.0.0.1:${port}` },
    { grpcServer, httpHandler: (_req, res) => res.end('hello over https\n'), tls: tlsSide, logger },
  );
  return { listener, port, grpcServer };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function grpcWho(port: number, client: string | null, options: grpc.ChannelOptions = {}): Promise<string> {
  const creds = grpc.credentials.createSsl(
    fs.readFileSync(files.ca!),
    client ? fs.readFileSync(files[`${client}-key`]!) : null,
    client ? fs.readFileSync(files[client]!) : null,
  );
  const c = new grpc.Client(`127.0.0.1:${port}`, creds, options);
  return new Promise<string>((resolve, reject) => {
    c.makeUnaryRequest(whoMethod.path, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), { deadline: Date.now() + 3000 }, (err, res) => {
      c.close();
      if (err) reject(err);
      else resolve(res!.toString());
    });
  });
}

function httpsGet(port: number, client: string | null): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({
      host: '127.0.0.1', port, path: '/anything', ca: fs.readFileSync(files.ca!), agent: false,
      ...(client ? { cert: fs.readFileSync(files[client]!), key: fs.readFileSync(files[`${client}-key`]!) } : {}),
    }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

async function logged(pattern: RegExp, timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = logLines.find((l) => pattern.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no log line matching ${pattern}; got:\n${logLines.join('')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  ca = await createCa({ days: 10 });
  const other = await createCa({ days: 10, commonName: 'other CA' });
  files.ca = path.join(dir, 'ca.pem');
  fs.writeFileSync(files.ca, ca.certPem);
  write('server', await issueCertificate(ca, { profile: 'server', commonName: 'infra0', hosts: ['127.0.0.1', 'localhost'], days: 5 }));
  write('wrongsan', await issueCertificate(ca, { profile: 'server', commonName: 'infra9', hosts: ['10.9.9.9'], days: 5 }));
  write('root', await issueCertificate(ca, { profile: 'client', commonName: 'root', days: 5 }));
  write('alice', await issueCertificate(ca, { profile: 'client', commonName: 'alice', days: 5 }));
  write('foreign', await issueCertificate(other, { profile: 'client', commonName: 'root', days: 5 }));
  write('expired', await issueCertificate(ca, { profile: 'client', commonName: 'old', days: 1, validFrom: new Date(Date.now() - 5 * 86_400_000) }));
  write('peer1', await issueCertificate(ca, { profile: 'peer', commonName: 'infra1', hosts: ['127.0.0.1'], days: 5 }));
  write('peerfar', await issueCertificate(ca, { profile: 'peer', commonName: 'infra2', hosts: ['10.0.0.2'], days: 5 }));
  const revokedSerial = new crypto.X509Certificate(fs.readFileSync(files.alice!)).serialNumber;
  files.crl = path.join(dir, 'crl.pem');
  fs.writeFileSync(files.crl, await createCrl(ca, { revokedSerials: [revokedSerial] }));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('client port over TLS with --client-cert-auth', () => {
  let port: number;
  let listener: ClientListener;
  let grpcServer: grpc.Server;
  beforeAll(async () => ({ listener, port, grpcServer } = await startListener(side())));
  afterAll(async () => {
    await listener.close();
    grpcServer.forceShutdown();
  });

  it('serves gRPC to a verified client and tells handlers its CN', async () => {
    expect(await grpcWho(port, 'root')).toBe('root');
    expect(lastCallPath).toBe('direct');
    expect(await grpcWho(port, 'alice')).toBe('alice');
  });

  it('finds the CN also when the connection goes through the :authority shim', async () => {
    // A URL as :authority (what etcdctl sends) makes the listener wrap the TLS socket;
    // grpc-js then sees no TLSSocket and the identity comes from the connection registry.
    expect(await grpcWho(port, 'alice', { 'grpc.default_authority': `https://127.0.0.1:${port}` })).toBe('alice');
    expect(lastCallPath).toBe('wrapped');
  });

  it('serves HTTP/1.1 (ALPN) on the same port', async () => {
    expect(await httpsGet(port, 'root')).toEqual({ status: 200, body: 'hello over https\n' });
  });

  it('refuses a client without a certificate and says why', async () => {
    await expect(grpcWho(port, null)).rejects.toThrow();
    const line = await logged(/client certificate missing: the client sent no certificate, but --client-cert-auth requires one/);
    expect(line).toContain('"remote-addr":"127.0.0.1"');
    expect(line).toContain(`"address":"https://127.0.0.1:${port}"`);
    const res = await httpsGet(port, null);
    expect(res).toEqual({ status: 403, body: 'client certificate missing\n' });
  });

  it('refuses a certificate from another CA', async () => {
    await expect(grpcWho(port, 'foreign')).rejects.toThrow();
    const line = await logged(/unknown CA: the client certificate \\"CN=root\\" issued by \\"CN=other CA\\" is not signed by a CA in --trusted-ca-file/);
    expect(line).toContain(files.ca!);
  });

  it('refuses an expired certificate', async () => {
    await expect(grpcWho(port, 'expired')).rejects.toThrow();
    await logged(/expired: the client certificate \\"CN=old\\" issued by \\"CN=tsetcd CA [0-9a-f -]+\\" expired on/);
  });

  it('refuses plain HTTP on the https port', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/health`).then(() => 'answered', (e: Error) => e.message);
    expect(res).not.toBe('answered');
    await logged(/not TLS: the other side sent plain data to this https port/);
  });

  it('keeps serving verified clients after all those refusals', async () => {
    expect(await grpcWho(port, 'root')).toBe('root');
  });
});

describe('TLS policy', () => {
  it('refuses certificates listed in --client-crl-file', async () => {
    const { listener, port, grpcServer } = await startListener(side({ crlFile: files.crl! }));
    try {
      expect(await grpcWho(port, 'root')).toBe('root');
      await expect(grpcWho(port, 'alice')).rejects.toThrow();
      await logged(/revoked: the client certificate \\"CN=alice\\".*is listed in --client-crl-file/);
    } finally {
      await listener.close();
      grpcServer.forceShutdown();
    }
  });

  it('without --client-cert-auth, serves clients without certificates and no CN is reported', async () => {
    const { listener, port, grpcServer } = await startListener(side({ trustedCaFile: '', clientCertAuth: false, requireClientCert: false }));
    try {
      expect(await grpcWho(port, null)).toBe('<none>');
    } finally {
      await listener.close();
      grpcServer.forceShutdown();
    }
  });

  it('maps --cipher-suites and enforces --tls-min-version', async () => {
    expect(openSslCipherList([])).toBeUndefined();
    expect(openSslCipherList(['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'TLS_AES_128_GCM_SHA256'])).toBe(
      'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256');
    expect(() => openSslCipherList(['TLS_BOGUS'])).toThrow('unexpected TLS cipher suite "TLS_BOGUS"');

    const tls13 = side({}, { cipherSuites: [], minVersion: 'TLS1.3', maxVersion: '' });
    const { listener, port, grpcServer } = await startListener(tls13);
    try {
      const err = await new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(files.ca!), maxVersion: 'TLSv1.2' }, () => resolve('connected'));
        s.on('error', (e) => resolve(e.message));
      });
      expect(err).not.toBe('connected');
      await logged(/no common TLS version or cipher suite/);
    } finally {
      await listener.close();
      grpcServer.forceShutdown();
    }
    // Only the listed TLS 1.2 suite is offered.
    const limited = side({}, { cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'], minVersion: 'TLS1.2', maxVersion: 'TLS1.2' });
    const l2 = await startListener(limited);
    try {
      const cipher = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: l2.port, ca: fs.readFileSync(files.ca!), cert: fs.readFileSync(files.root!), key: fs.readFileSync(files['root-key']!) }, () => {
          resolve(s.getCipher().name);
          s.destroy();
        });
        s.on('error', reject);
      });
      expect(cipher).toBe('ECDHE-ECDSA-AES256-GCM-SHA384');
    } finally {
      await l2.listener.close();
      l2.grpcServer.forceShutdown();
    }
  });

  it('refuses --peer-cert-allowed-cn together with --peer-cert-allowed-hostname, and a key that does not match', () => {
    expect(() => side({ allowedCn: ['a'], allowedHostname: ['b'] }, defaultProtocol, 'peer')).toThrow(/mutually exclusive/);
    expect(() => side({ keyFile: files['root-key']! })).toThrow();
  });
});

describe('peer side: admission and dialing', () => {
  async function peerServer(policy: Partial<TlsConfig>): Promise<{ side: TlsSide; server: tls.Server; port: number; close: () => Promise<void> }> {
    const s = side({ certFile: files.server!, keyFile: files['server-key']!, ...policy }, defaultProtocol, 'peer');
    const open = new Set<net.Socket>();
    const server = tls.createServer({ ...s.serverOptions(), ALPNProtocols: ['http/1.1'] }, (sock) => {
      void s.admit(sock).then((refusal) => {
        if (refusal) {
          s.logRefusal('peer-test', sock.remoteAddress, refusal);
          sock.end(`HTTP/1.1 403 Forbidden\r\nContent-Length: ${refusal.short.length}\r\nConnection: close\r\n\r\n${refusal.short}`);
        } else {
          sock.end('HTTP/1.1 200 OK\r\nX-Etcd-Cluster-ID: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
        }
      });
    });
    s.attachServer(server, 'peer-test');
    server.on('connection', (c: net.Socket) => {
      open.add(c);
      c.on('close', () => open.delete(c));
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const close = () => new Promise<void>((r) => {
      s.stop();
      server.close(() => r());
      for (const c of open) c.destroy();
    });
    return { side: s, server, port, close };
  }

  function dialer(cert: string, over: Partial<TlsConfig> = {}): TlsSide {
    return side({ certFile: files[cert]!, keyFile: files[`${cert}-key`]!, ...over }, defaultProtocol, 'peer');
  }

  it('admits a peer from the CA with an allowed CN and its address in the SANs', async () => {
    const p = await peerServer({ allowedCn: ['infra1'] });
    try {
      const res = await peerGet(new URL(`https://127.0.0.1:${p.port}/members`), dialer('peer1'), 2000);
      expect(res.status).toBe(200);
      expect(res.body).toBe('ok');
    } finally {
      await p.close();
    }
  });

  it('refuses a CN outside --peer-cert-allowed-cn and a peer connecting from outside its SANs', async () => {
    const p = await peerServer({ allowedCn: ['infra0'] });
    try {
      const res = await peerGet(new URL(`https://127.0.0.1:${p.port}/members`), dialer('peer1'), 2000);
      expect(res).toMatchObject({ status: 403, body: 'certificate CN not allowed' });
      await logged(/CN not allowed: the peer certificate \\"CN=infra1\\".*has CN \\"infra1\\", not one of --peer-cert-allowed-cn=infra0/);
    } finally {
      await p.close();
    }
    const q = await peerServer({});
    try {
      const res = await peerGet(new URL(`https://127.0.0.1:${q.port}/members`), dialer('peerfar'), 2000);
      expect(res.status).toBe(403);
      await logged(/SAN mismatch: the peer certificate \\"CN=infra2\\".*is for IP Address:10.0.0.2, but the peer connects from 127.0.0.1/);
    } finally {
      await q.close();
    }
    const r = await peerServer({ skipClientSanVerification: true });
    try {
      expect((await peerGet(new URL(`https://127.0.0.1:${r.port}/members`), dialer('peerfar'), 2000)).status).toBe(200);
    } finally {
      await r.close();
    }
  });

  it('checks --peer-cert-allowed-hostname and dials with --peer-client-cert-file when given', async () => {
    const p = await peerServer({ allowedHostname: ['127.0.0.1'] });
    try {
      expect((await peerGet(new URL(`https://127.0.0.1:${p.port}/members`), dialer('peer1'), 2000)).status).toBe(200);
    } finally {
      await p.close();
    }
    const q = await peerServer({ allowedHostname: ['10.0.0.5'] });
    try {
      expect((await peerGet(new URL(`https://127.0.0.1:${q.port}/members`), dialer('peer1'), 2000)).status).toBe(403);
      await logged(/hostname not allowed: the peer certificate \\"CN=infra1\\".*none of --peer-cert-allowed-hostname=10.0.0.5/);
    } finally {
      await q.close();
    }
    const r = await peerServer({ allowedCn: ['infra1'] });
    try {
      // Serving with the server pair (CN infra0) but dialing with the client pair (CN infra1).
      const d = dialer('server', { clientCertFile: files.peer1!, clientKeyFile: files['peer1-key']! });
      expect((await peerGet(new URL(`https://127.0.0.1:${r.port}/members`), d, 2000)).status).toBe(200);
      expect((await peerGet(new URL(`https://127.0.0.1:${r.port}/members`), dialer('server'), 2000)).status).toBe(403);
    } finally {
      await r.close();
    }
  });

  it('picks up rotated certificate files', async () => {
    const certFile = path.join(dir, 'rot.pem');
    const keyFile = path.join(dir, 'rot-key.pem');
    fs.copyFileSync(files.server!, certFile);
    fs.copyFileSync(files['server-key']!, keyFile);
    const p = await peerServer({ certFile, keyFile });
    const serverCn = () => new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: p.port, ca: fs.readFileSync(files.ca!), cert: fs.readFileSync(files.peer1!), key: fs.readFileSync(files['peer1-key']!) }, () => {
        resolve(String(s.getPeerCertificate().subject.CN));
        s.destroy();
      });
      s.on('error', reject);
    });
    try {
      expect(await serverCn()).toBe('infra0');
      expect(p.side.reloadIfChanged()).toBe(false);
      const next = await issueCertificate(ca, { profile: 'server', commonName: 'infra0-rotated', hosts: ['127.0.0.1'], days: 5 });
      fs.writeFileSync(keyFile, next.keyPem);
      fs.writeFileSync(certFile, next.certPem);
      expect(p.side.reloadIfChanged()).toBe(true);
      expect(await serverCn()).toBe('infra0-rotated');
      await logged(/reloaded TLS certificates/);
    } finally {
      await p.close();
    }
  });

  it('explains dial failures: unknown CA, SAN not matching the address dialed, not TLS', async () => {
    const p = await peerServer({ certFile: files.wrongsan!, keyFile: files['wrongsan-key']! });
    try {
      await expect(peerGet(new URL(`https://127.0.0.1:${p.port}/members`), dialer('peer1'), 2000)).rejects.toThrow(
        /SAN does not include the address dialed: we dialed 127.0.0.1, but the certificate "CN=infra9" issued by "CN=tsetcd CA [0-9a-f -]+" is for IP Address:10.9.9.9/);
    } finally {
      await p.close();
    }
    const q = await peerServer({});
    try {
      const foreignTrust = path.join(dir, 'other-trust.pem');
      fs.writeFileSync(foreignTrust, (await createCa({ days: 1, commonName: 'unrelated' })).certPem);
      await expect(peerGet(new URL(`https://127.0.0.1:${q.port}/members`), dialer('peer1', { trustedCaFile: foreignTrust }), 2000)).rejects.toThrow(
        /unknown CA: the other side's server certificate "CN=infra0" issued by "CN=tsetcd CA [0-9a-f -]+" is not signed by a CA in --peer-trusted-ca-file \(.*, which holds "CN=unrelated"\)/);
    } finally {
      await q.close();
    }
    const plain = net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const port = await freePort();
    await new Promise<void>((r) => plain.listen(port, '127.0.0.1', r));
    try {
      await expect(peerGet(new URL(`https://127.0.0.1:${port}/members`), dialer('peer1'), 2000)).rejects.toThrow(/not TLS: the other side does not speak TLS/);
    } finally {
      plain.close();
    }
  });

  it('auto TLS makes a certificate once and reuses it', async () => {
    const d = path.join(dir, 'fixtures', 'client');
    const first = await ensureSelfSignedCert(d, ['127.0.0.1'], 1, false, logger);
    const pem = fs.readFileSync(first.certFile, 'utf8');
    expect(new crypto.X509Certificate(pem).checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(fs.statSync(first.keyFile).mode & 0o777).toBe(0o600);
    const again = await ensureSelfSignedCert(d, ['127.0.0.1'], 1, false, logger);
    expect(again).toEqual(first);
    expect(fs.readFileSync(again.certFile, 'utf8')).toBe(pem);
  });
});
