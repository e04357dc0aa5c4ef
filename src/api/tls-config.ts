import crypto from 'node:crypto';
import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { EtcdConfig, TlsConfig } from '../cli/config.js';
import type { Logger } from '../log/logger.js';
import { selfSignedCertificate } from '../cli/tls/pki.js';
import { loadX509 } from '../cli/tls/x509-lib.js';

// TLS for the client port (2379, --listen-metrics-urls) and the peer port (2380), from etcd's
// flags. One `TlsSide` per side holds the key material and the policy: what the listener
// demands of the other end (client certificate, CA, CRL, allowed CN/hostname, peer SAN), and
// how this member dials as a client (peers). Every refusal is explained in words a person
// can act on — which certificate, which flag, what to change — on the side that refuses and,
// where it can know, on the side that is refused.
//
// Verification policy: our listeners ask OpenSSL to *request* a certificate but never to
// drop the connection by itself (rejectUnauthorized: false). Node would otherwise close
// an unverifiable connection silently, without the certificate or the address needed to
// explain it. Instead `admit()` runs on every handshaken connection, before a single byte
// of it is read, and refuses with the reason.

export type TlsSideName = 'client' | 'peer';

/** `--cipher-suites`, `--tls-min-version`, `--tls-max-version`, shared by both sides as in etcd. */
export interface TlsProtocolSettings {
  cipherSuites: readonly string[];
  minVersion: string;
  maxVersion: string;
}

/** Go's names (what etcd's --cipher-suites takes) for the TLS 1.2 suites OpenSSL knows. */
const GO_CIPHER_TO_OPENSSL: Readonly<Record<string, string>> = {
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: 'DES-CBC3-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_RC4_128_SHA: 'RC4-SHA',
  TLS_ECDHE_ECDSA_WITH_RC4_128_SHA: 'ECDHE-ECDSA-RC4-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_RC4_128_SHA: 'ECDHE-RSA-RC4-SHA',
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: 'ECDHE-RSA-DES-CBC3-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};
/**
 * TLS 1.3 suites: Go accepts their names but cannot restrict them (TLS 1.3 always offers
 * all three), so a --cipher-suites list limits TLS 1.2 only. OpenSSL would drop TLS 1.3
 * entirely if none were listed; we keep all three, as Go does.
 */
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** `--cipher-suites` (Go names) → Node's `ciphers` string; undefined = runtime defaults. */
export function openSslCipherList(goNames: readonly string[]): string | undefined {
  if (goNames.length === 0) return undefined;
  const tls12: string[] = [];
  for (const name of goNames) {
    if (TLS13_SUITES.includes(name)) continue;
    const mapped = GO_CIPHER_TO_OPENSSL[name];
    if (mapped === undefined) throw new Error(`unexpected TLS cipher suite ${JSON.stringify(name)}`);
    if (!tls12.includes(mapped)) tls12.push(mapped);
  }
  return [...TLS13_SUITES, ...tls12].join(':');
}

function nodeTlsVersion(etcdName: string): tls.SecureVersion | undefined {
  switch (etcdName) {
    case '':
      return undefined;
    case 'TLS1.2':
      return 'TLSv1.2';
    case 'TLS1.3':
      return 'TLSv1.3';
    default:
      throw new Error(`unexpected TLS version ${JSON.stringify(etcdName)} (use TLS1.2 or TLS1.3)`);
  }
}

export function tlsProtocolSettings(config: EtcdConfig): TlsProtocolSettings {
  const v = config.flagValues;
  const list = v.get('cipher-suites');
  return {
    cipherSuites: Array.isArray(list) ? (list as string[]) : [],
    minVersion: String(v.get('tls-min-version') ?? 'TLS1.2'),
    maxVersion: String(v.get('tls-max-version') ?? ''),
  };
}

/** Key material and trust for one side, with the paths they came from (for messages). */
interface LoadedFiles {
  cert: Buffer;
  key: Buffer;
  /** What we present when dialing as a client (`--peer-client-cert-file`, default the server pair). */
  clientCert: Buffer;
  clientKey: Buffer;
  ca?: Buffer;
  /** File modification times, to notice rotated certificates. */
  stamp: string;
}

function readRequired(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function fileStamp(files: readonly string[]): string {
  return files.map((f) => {
    try {
      const st = fs.statSync(f);
      return `${f}@${st.mtimeMs}:${st.size}`;
    } catch {
      return `${f}@missing`;
    }
  }).join('|');
}

// ---- explaining certificates and verification errors ----------------------------------------

function nameField(name: tls.Certificate | undefined, field: 'CN' | 'O' | 'OU'): string | undefined {
  const v = (name as unknown as Record<string, string | string[] | undefined> | undefined)?.[field];
  if (v === undefined) return undefined;
  // Several CNs: Go (etcd) takes the last one, so do we.
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** The common name a verified client certificate carries, as etcd reads it. */
export function commonNameOf(cert: tls.PeerCertificate | undefined): string | undefined {
  return nameField(cert?.subject, 'CN');
}

function hasCertificate(cert: tls.PeerCertificate | undefined | null): cert is tls.DetailedPeerCertificate {
  return cert !== undefined && cert !== null && cert.raw !== undefined && cert.raw.length > 0;
}

/** `"CN=infra1" issued by "CN=tsetcd CA"`: enough to find the certificate among many. */
export function describeCertificate(cert: tls.PeerCertificate): string {
  const subject = nameField(cert.subject, 'CN') ?? nameField(cert.subject, 'O') ?? '(no CN)';
  const issuer = nameField(cert.issuer, 'CN') ?? nameField(cert.issuer, 'O') ?? '(no CN)';
  return `"CN=${subject}" issued by "CN=${issuer}"`;
}

function sanList(cert: tls.PeerCertificate): string {
  return cert.subjectaltname && cert.subjectaltname !== '' ? cert.subjectaltname : 'no SANs';
}

const UNKNOWN_CA_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_CHAIN_TOO_LONG',
]);

/**
 * Why OpenSSL did not verify `cert` (an `authorizationError` code), in words: `whose` is
 * "client" / "peer" / "the peer's server", `trust` names the CA flag and file.
 */
export function explainVerifyError(code: string, cert: tls.PeerCertificate, whose: string, trust: string): string {
  const what = `${whose} certificate ${describeCertificate(cert)}`;
  if (UNKNOWN_CA_CODES.has(code)) {
    return `unknown CA: the ${what} is not signed by a CA in ${trust} (${code})`;
  }
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return `expired: the ${what} expired on ${cert.valid_to}; issue a new one (e.g. tsetcd tls init)`;
    case 'CERT_NOT_YET_VALID':
      return `not yet valid: the ${what} is valid only from ${cert.valid_from}; check the clocks`;
    case 'INVALID_PURPOSE':
    case 'UNSUPPORTED_CERTIFICATE_PURPOSE':
      return `wrong certificate kind: the ${what} does not allow this use (its extended key usage lacks ` +
        `${whose === 'client' || whose === 'peer' ? 'clientAuth' : 'serverAuth'}); use a ${whose === 'client' ? 'client' : 'peer'} certificate`;
    case 'CERT_REVOKED':
      return `revoked: the ${what} is revoked`;
    default:
      return `the ${what} failed verification against ${trust}: ${code}`;
  }
}

/** Node/OpenSSL error codes of a failed handshake (either side), in words. */
function explainHandshakeCode(err: NodeJS.ErrnoException, us: 'server' | 'client', ourCert: string): string | undefined {
  const code = err.code ?? '';
  const msg = err.message ?? '';
  if (code === 'ERR_SSL_HTTP_REQUEST' || code === 'ERR_SSL_HTTPS_PROXY_REQUEST' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
      code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || /wrong version number|http request|packet length too long/.test(msg)) {
    return us === 'server'
      ? 'not TLS: the other side sent plain data to this https port (it dials an http:// URL, or is not a TLS client)'
      : 'not TLS: the other side does not speak TLS on this port (its listen URL is http://?)';
  }
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return us === 'server'
      ? 'client certificate missing: the client sent no certificate'
      : 'client certificate missing: the other side requires a client certificate and we have none to present';
  }
  if (/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED|DECRYPT_ERROR)/.test(code)) {
    const which = /EXPIRED/.test(code) ? ' (it says: expired)' : /UNKNOWN_CA/.test(code) ? ' (it says: unknown CA)' : '';
    return `the other side refused our certificate ${ourCert}${which}: it does not trust the CA that signed it, ` +
      `or the address it dialed is not among the certificate's SANs, or it is expired (${code})`;
  }
  if (/NO_SHARED_CIPHER|NO_CIPHERS|UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW|VERSION_TOO_HIGH|PROTOCOL_VERSION|HANDSHAKE_FAILURE|NO_PROTOCOLS_AVAILABLE/.test(code)) {
    return `no common TLS version or cipher suite with the other side; check --tls-min-version, --tls-max-version and --cipher-suites (${code})`;
  }
  if (/NO_APPLICATION_PROTOCOL/.test(code)) {
    return 'no common application protocol (ALPN): the client offers neither h2 nor http/1.1';
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up|disconnected before secure TLS/.test(msg)) {
    return us === 'server'
      ? 'the client closed the connection during the TLS handshake (it probably does not trust our certificate; see the client\'s error)'
      : 'the other side closed the connection during the TLS handshake (it probably refused our certificate; see its log)';
  }
  return undefined;
}

/** Host part of a remote address as Node reports it, without the IPv4-in-IPv6 prefix. */
function plainIp(address: string | undefined): string {
  if (address === undefined) return '?';
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function sanEntries(cert: tls.PeerCertificate): { ips: string[]; dnsNames: string[] } {
  const ips: string[] = [];
  const dnsNames: string[] = [];
  for (const part of (cert.subjectaltname ?? '').split(/,\s*/)) {
    if (part.startsWith('IP Address:')) ips.push(part.slice('IP Address:'.length));
    else if (part.startsWith('DNS:')) dnsNames.push(part.slice('DNS:'.length));
  }
  return { ips, dnsNames };
}

function dnsNameMatches(name: string, pattern: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) return n.endsWith(p.slice(1)) && !n.slice(0, n.length - p.length + 1).includes('.');
  return n === p;
}

/**
 * etcd's check on the peer port: a peer's certificate must name the address it connects
 * from, as an IP SAN or a DNS SAN that resolves to it (a certificate without IP/DNS SANs
 * passes). Returns the reason for refusing, or undefined.
 */
async function peerSanProblem(cert: tls.PeerCertificate, remoteAddress: string): Promise<string | undefined> {
  const { ips, dnsNames } = sanEntries(cert);
  if (ips.length === 0 && dnsNames.length === 0) return undefined;
  const x = new crypto.X509Certificate(cert.raw);
  if (ips.length > 0 && x.checkIP(remoteAddress) !== undefined) return undefined;
  if (dnsNames.length > 0) {
    try {
      const reverse = await dns.promises.reverse(remoteAddress);
      if (reverse.some((r) => dnsNames.some((p) => dnsNameMatches(r, p)))) return undefined;
    } catch { /* no PTR record: try the forward lookups */ }
    for (const name of dnsNames.filter((d) => !d.startsWith('*.'))) {
      try {
        const addrs = await dns.promises.lookup(name, { all: true });
        if (addrs.some((a) => plainIp(a.address) === remoteAddress)) return undefined;
      } catch { /* unresolvable SAN: not a match */ }
    }
  }
  return `SAN mismatch: the peer certificate ${describeCertificate(cert)} is for ${sanList(cert)}, but the peer connects from ` +
    `${remoteAddress}; put that address in its certificate, or start this member with --peer-skip-client-san-verification`;
}

// ---- auto TLS -------------------------------------------------------------------------------

/**
 * etcd's --auto-tls / --peer-auto-tls: a self-signed certificate in `<data-dir>/fixtures/<side>`,
 * made once and reused on restart (etcd does the same), valid for the listen hosts.
 */
export async function ensureSelfSignedCert(
  dir: string, hosts: readonly string[], validityYears: number, clientAuth: boolean, logger: Logger,
): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) return { certFile, keyFile };
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = await selfSignedCertificate({ hosts, days: Math.max(1, validityYears) * 365, clientAuth });
  fs.writeFileSync(keyFile, pair.keyPem, { mode: 0o600 });
  fs.writeFileSync(certFile, pair.certPem, { mode: 0o644 });
  logger.info('created a self-signed certificate (auto TLS)', { 'cert-file': certFile, 'key-file': keyFile, hosts });
  return { certFile, keyFile };
}

// ---- one side -------------------------------------------------------------------------------

/** Why a connection was refused: the full reason for our log, a short one for the other side. */
export interface TlsRefusal {
  reason: string;
  short: string;
}

/** How often the same refusal (same address, same kind) is logged. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;
/** How often certificate files are checked for rotation. */
const RELOAD_CHECK_INTERVAL_MS = 10_000;
/** Bound on the refusal-log rate limiter's memory. */
const MAX_TRACKED_REFUSALS = 1024;

export interface TlsSideOptions {
  side: TlsSideName;
  config: TlsConfig;
  protocol: TlsProtocolSettings;
  /** The certificate was made by auto TLS: dialing skips verification, as etcd's does. */
  selfSigned: boolean;
  logger: Logger;
}

export class TlsSide {
  readonly side: TlsSideName;
  readonly cfg: TlsConfig;
  private files: LoadedFiles;
  private readonly ciphers: string | undefined;
  private readonly minVersion: tls.SecureVersion | undefined;
  private readonly maxVersion: tls.SecureVersion | undefined;
  private readonly logger: Logger;
  private readonly selfSigned: boolean;
  private readonly servers = new Set<tls.Server>();
  private readonly refusalsLoggedAtMs = new Map<string, { atMs: number; suppressed: number }>();
  private crl?: { stamp: string; serials: Set<string> };
  private reloadTimer?: NodeJS.Timeout;

  constructor(opts: TlsSideOptions) {
    this.side = opts.side;
    this.cfg = opts.config;
    this.logger = opts.logger;
    this.selfSigned = opts.selfSigned;
    this.ciphers = openSslCipherList(opts.protocol.cipherSuites);
    this.minVersion = nodeTlsVersion(opts.protocol.minVersion);
    this.maxVersion = nodeTlsVersion(opts.protocol.maxVersion);
    if (this.cfg.allowedCn.length > 0 && this.cfg.allowedHostname.length > 0) {
      throw new Error(`${this.flag('cert-allowed-cn')} and ${this.flag('cert-allowed-hostname')} are mutually exclusive`);
    }
    this.files = this.load();
    // Fail at start, not at the first handshake, on a key that does not match its certificate.
    tls.createSecureContext(this.secureContextOptions(this.files.cert, this.files.key));
    if (this.files.clientCert !== this.files.cert) tls.createSecureContext(this.secureContextOptions(this.files.clientCert, this.files.clientKey));
  }

  /** The flag name of `suffix` on this side: `--peer-trusted-ca-file` / `--trusted-ca-file`. */
  flag(suffix: string): string {
    if (this.side === 'peer') return `--peer-${suffix}`;
    return suffix === 'cert-allowed-hostname' ? '--client-cert-allowed-hostname' : suffix === 'crl-file' ? '--client-crl-file' : `--${suffix}`;
  }

  /** `--trusted-ca-file (/pki/ca.pem, which holds "CN=tsetcd CA ...")`: what to compare the issuer with. */
  private trustDescription(): string {
    if (this.cfg.trustedCaFile === '') return `${this.flag('trusted-ca-file')} (not set)`;
    const names = caNamesOf(this.files.ca);
    const holds = names.length > 0 ? `, which holds ${names.map((n) => `"${n}"`).join(', ')}` : '';
    return `${this.flag('trusted-ca-file')} (${this.cfg.trustedCaFile}${holds})`;
  }

  private load(): LoadedFiles {
    const c = this.cfg;
    const cert = readRequired(c.certFile, this.flag('cert-file'));
    const key = readRequired(c.keyFile, this.flag('key-file'));
    const dialPair = c.clientCertFile !== '' && c.clientKeyFile !== '';
    const clientCert = dialPair ? readRequired(c.clientCertFile, this.side === 'peer' ? '--peer-client-cert-file' : '--client-cert-file') : cert;
    const clientKey = dialPair ? readRequired(c.clientKeyFile, this.side === 'peer' ? '--peer-client-key-file' : '--client-key-file') : key;
    const ca = c.trustedCaFile !== '' ? readRequired(c.trustedCaFile, this.flag('trusted-ca-file')) : undefined;
    return { cert, key, clientCert, clientKey, ca, stamp: fileStamp(this.watchedFiles()) };
  }

  private watchedFiles(): string[] {
    const c = this.cfg;
    return [c.certFile, c.keyFile, c.clientCertFile, c.clientKeyFile, c.trustedCaFile].filter((f) => f !== '');
  }

  private secureContextOptions(cert: Buffer, key: Buffer): tls.SecureContextOptions {
    const o: tls.SecureContextOptions = { cert, key };
    if (this.files.ca !== undefined) o.ca = this.files.ca;
    if (this.ciphers !== undefined) o.ciphers = this.ciphers;
    if (this.minVersion !== undefined) o.minVersion = this.minVersion;
    if (this.maxVersion !== undefined) o.maxVersion = this.maxVersion;
    return o;
  }

  /** Options for `tls.createServer` on this side (ALPN is the listener's business). */
  serverOptions(): tls.TlsOptions {
    return {
      ...this.secureContextOptions(this.files.cert, this.files.key),
      requestCert: this.cfg.requireClientCert,
      rejectUnauthorized: false, // admit() decides, so that refusals can be explained
    };
  }

  /** Watches `server` for handshake failures and keeps its certificates current on rotation. */
  attachServer(server: tls.Server, address: string): void {
    this.servers.add(server);
    server.on('close', () => this.servers.delete(server));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      const reason = explainHandshakeCode(err, 'server', `(${this.flag('cert-file')} ${this.cfg.certFile})`) ?? `TLS handshake failed: ${err.message.trim()}`;
      this.logRefusal(address, socket.remoteAddress, { reason, short: reason });
    });
    this.startReloadWatch();
  }

  /**
   * Checks a handshaken connection against this side's policy. Resolves with the refusal, or
   * undefined to admit. Nothing must read from `socket` before it resolves.
   */
  async admit(socket: tls.TLSSocket): Promise<TlsRefusal | undefined> {
    const whose = this.side === 'peer' ? 'peer' : 'client';
    const cert = socket.getPeerCertificate(true);
    const present = hasCertificate(cert);
    if (this.cfg.requireClientCert) {
      if (!present) {
        const flag = this.cfg.clientCertAuth ? this.flag('client-cert-auth') : this.flag('trusted-ca-file');
        return {
          reason: `client certificate missing: the ${whose} sent no certificate, but ${flag} requires one` +
            (this.side === 'client' ? ' (etcdctl: give --cert and --key)' : ' (the peer needs --peer-cert-file and --peer-key-file)'),
          short: 'client certificate missing',
        };
      }
      if (!socket.authorized) {
        const code = String(socket.authorizationError ?? 'UNKNOWN');
        const reason = explainVerifyError(code, cert, whose, this.trustDescription());
        return { reason, short: reason.split(':')[0]! };
      }
    }
    if (!present) return undefined;
    const revoked = await this.revokedSerial(cert);
    if (revoked !== undefined) {
      return { reason: `revoked: the ${whose} certificate ${describeCertificate(cert)} (serial ${revoked}) is listed in ${this.flag('crl-file')} (${this.cfg.crlFile})`, short: 'certificate revoked' };
    }
    const cn = commonNameOf(cert);
    if (this.cfg.allowedCn.length > 0 && (cn === undefined || !this.cfg.allowedCn.includes(cn))) {
      return {
        reason: `CN not allowed: the ${whose} certificate ${describeCertificate(cert)} has CN ${JSON.stringify(cn ?? '')}, ` +
          `not one of ${this.flag('cert-allowed-cn')}=${this.cfg.allowedCn.join(',')}`,
        short: 'certificate CN not allowed',
      };
    }
    if (this.cfg.allowedHostname.length > 0) {
      const x = new crypto.X509Certificate(cert.raw);
      const ok = this.cfg.allowedHostname.some((h) => (net.isIP(h) !== 0 ? x.checkIP(h) !== undefined : x.checkHost(h) !== undefined));
      if (!ok) {
        return {
          reason: `hostname not allowed: the ${whose} certificate ${describeCertificate(cert)} is for ${sanList(cert)}, ` +
            `none of ${this.flag('cert-allowed-hostname')}=${this.cfg.allowedHostname.join(',')}`,
          short: 'certificate hostname not allowed',
        };
      }
    }
    if (this.side === 'peer' && !this.cfg.skipClientSanVerification) {
      const problem = await peerSanProblem(cert, plainIp(socket.remoteAddress));
      if (problem !== undefined) return { reason: problem, short: 'certificate SAN does not match the peer address' };
    }
    return undefined;
  }

  /** Logs a refused connection (rate-limited per address and kind of refusal). */
  logRefusal(listenAddress: string, remoteAddress: string | undefined, refusal: TlsRefusal): void {
    const remote = plainIp(remoteAddress);
    const key = `${remote}|${refusal.short}`;
    const now = Date.now();
    const last = this.refusalsLoggedAtMs.get(key);
    if (last && now - last.atMs < REFUSAL_LOG_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    if (this.refusalsLoggedAtMs.size >= MAX_TRACKED_REFUSALS) this.refusalsLoggedAtMs.clear();
    this.refusalsLoggedAtMs.set(key, { atMs: now, suppressed: 0 });
    this.logger.warn(this.side === 'peer' ? 'rejected a TLS connection on the peer port' : 'rejected a TLS connection on the client port', {
      address: listenAddress,
      // Node forgets the address of a socket that failed its handshake before we hear of it.
      ...(remoteAddress !== undefined ? { 'remote-addr': remote } : {}),
      reason: refusal.reason,
      ...(last && last.suppressed > 0 ? { 'same-refusals-not-logged': last.suppressed } : {}),
    });
  }

  private async revokedSerial(cert: tls.DetailedPeerCertificate): Promise<string | undefined> {
    if (this.cfg.crlFile === '') return undefined;
    const serials = await this.crlSerials();
    // etcd checks every certificate the peer sent, not just the leaf.
    const seen = new Set<tls.DetailedPeerCertificate>();
    for (let c: tls.DetailedPeerCertificate | undefined = cert; c && !seen.has(c); c = c.issuerCertificate) {
      seen.add(c);
      const serial = normalizeSerial(c.serialNumber ?? '');
      if (serials.has(serial)) return c.serialNumber;
    }
    return undefined;
  }

  /** The CRL's revoked serials, re-read when the file changes (etcd reads it on every connection). */
  private async crlSerials(): Promise<Set<string>> {
    const stamp = fileStamp([this.cfg.crlFile]);
    if (this.crl?.stamp === stamp) return this.crl.serials;
    const x509 = await loadX509();
    const raw = readRequired(this.cfg.crlFile, this.flag('crl-file'));
    const text = raw.toString('latin1');
    const crl = new x509.X509Crl(text.includes('-----BEGIN') ? text : new Uint8Array(raw));
    const serials = new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber)));
    this.crl = { stamp, serials };
    return serials;
  }

  private startReloadWatch(): void {
    if (this.reloadTimer) return;
    this.reloadTimer = setInterval(() => this.reloadIfChanged(), RELOAD_CHECK_INTERVAL_MS);
    this.reloadTimer.unref();
  }

  /** Picks up rotated certificate files (etcd re-reads them per handshake; we poll). */
  reloadIfChanged(): boolean {
    if (fileStamp(this.watchedFiles()) === this.files.stamp) return false;
    let next: LoadedFiles;
    try {
      next = this.load();
      const previous = this.files;
      this.files = next;
      try {
        for (const s of this.servers) s.setSecureContext(this.serverOptions());
      } catch (e) {
        this.files = previous;
        throw e;
      }
    } catch (e) {
      this.logger.warn('certificate files changed but cannot be loaded; keeping the previous ones', { side: this.side, error: (e as Error).message });
      return false;
    }
    this.logger.info('reloaded TLS certificates', { side: this.side, 'cert-file': this.cfg.certFile });
    return true;
  }

  stop(): void {
    if (this.reloadTimer) clearInterval(this.reloadTimer);
    this.reloadTimer = undefined;
  }

  /**
   * Opens a verified TLS connection to `url` as a client of this side (peers dial peers).
   * Verification runs here rather than inside OpenSSL so that a failure names the
   * certificate, the address dialed and the flag to fix; nothing is written before it passes.
   */
  dial(url: URL, timeoutMs: number): Promise<tls.TLSSocket> {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port || 443);
    return new Promise<tls.TLSSocket>((resolve, reject) => {
      let settled = false;
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(why));
      };
      const socket = tls.connect({
        host,
        port,
        ...(net.isIP(host) === 0 ? { servername: host } : {}),
        ...this.secureContextOptions(this.files.clientCert, this.files.clientKey),
        ALPNProtocols: ['http/1.1'],
        rejectUnauthorized: false,
      });
      const timer = setTimeout(() => fail(`TLS handshake with ${url.host} did not finish within ${timeoutMs}ms`), timeoutMs);
      socket.once('secureConnect', () => {
        const problem = this.serverCertificateProblem(socket, host);
        if (problem !== undefined) {
          fail(problem);
          return;
        }
        settled = true;
        clearTimeout(timer);
        socket.removeListener('error', onError);
        resolve(socket);
      });
      const onError = (e: NodeJS.ErrnoException) => {
        fail(explainHandshakeCode(e, 'client', `(${this.side === 'peer' ? '--peer-cert-file' : '--cert-file'} ${this.cfg.clientCertFile || this.cfg.certFile})`) ?? e.message);
      };
      socket.on('error', onError);
    });
  }

  /** Why the server certificate of a dialed connection is not acceptable, or undefined. */
  private serverCertificateProblem(socket: tls.TLSSocket, host: string): string | undefined {
    if (this.selfSigned && this.cfg.trustedCaFile === '') return undefined; // auto TLS: etcd skips verification too
    const cert = socket.getPeerCertificate(true);
    if (!hasCertificate(cert)) return 'the other side presented no certificate';
    const code = String(socket.authorizationError ?? '');
    // Node reports a name mismatch as an authorization error too; it is explained below.
    if (!socket.authorized && code !== 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return explainVerifyError(code || 'UNKNOWN', cert, "other side's server", this.trustDescription());
    }
    const identity = tls.checkServerIdentity(host, cert);
    if (identity !== undefined) {
      return `SAN does not include the address dialed: we dialed ${host}, but the certificate ${describeCertificate(cert)} is for ` +
        `${sanList(cert)}; dial an address in the certificate, or reissue it with ${host}`;
    }
    return undefined;
  }
}

/** The subjects (CN, else the whole name) of the certificates in a CA bundle. */
function caNamesOf(bundle: Buffer | undefined): string[] {
  if (!bundle) return [];
  const names: string[] = [];
  for (const m of bundle.toString('latin1').matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)) {
    try {
      const subject = new crypto.X509Certificate(m[0]).subject;
      const cn = subject.split('\n').reverse().find((l) => l.startsWith('CN='));
      names.push(cn ?? subject.split('\n').join(', '));
    } catch {
      /* not a certificate OpenSSL can read: OpenSSL will not trust it either */
    }
  }
  return names;
}

function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+/, '');
}

// ---- the member's TLS -----------------------------------------------------------------------

export interface MemberTls {
  client?: TlsSide;
  peer?: TlsSide;
  stop(): void;
}

function hostsOf(urls: readonly { hostname: string }[]): string[] {
  return [...new Set(urls.map((u) => u.hostname).filter((h) => h !== ''))];
}

/** Certificate and key for one side, running auto TLS when asked and nothing was given. */
async function resolveSide(
  side: TlsSideName, cfg: TlsConfig, config: EtcdConfig, logger: Logger,
): Promise<{ cfg: TlsConfig; selfSigned: boolean } | undefined> {
  const given = cfg.certFile !== '' && cfg.keyFile !== '';
  if (cfg.autoTls && given) {
    logger.warn(`ignoring ${side === 'peer' ? '--peer-auto-tls' : '--auto-tls'}: certificate files are given`, { side });
  }
  if (given) return { cfg, selfSigned: false };
  if (!cfg.autoTls) return undefined;
  const urls = side === 'peer' ? config.listenPeerUrls : [...config.listenClientUrls, ...config.listenMetricsUrls];
  const years = Number(config.flagValues.get('self-signed-cert-validity') ?? 1) || 1;
  const dir = path.join(config.dataDir, 'fixtures', side);
  const made = await ensureSelfSignedCert(dir, hostsOf(urls), years, side === 'peer', logger);
  return { cfg: { ...cfg, certFile: made.certFile, keyFile: made.keyFile }, selfSigned: true };
}

/** Loads (or makes, with auto TLS) both sides' TLS material and checks it, at start. */
export async function prepareMemberTls(config: EtcdConfig, logger: Logger): Promise<MemberTls> {
  const protocol = tlsProtocolSettings(config);
  const out: MemberTls = {
    stop: () => {
      out.client?.stop();
      out.peer?.stop();
    },
  };
  for (const side of ['client', 'peer'] as const) {
    const base = side === 'peer' ? config.peerTls : config.clientTls;
    const resolved = await resolveSide(side, base, config, logger);
    if (!resolved) continue;
    if (!resolved.cfg.requireClientCert && (resolved.cfg.allowedCn.length > 0 || resolved.cfg.allowedHostname.length > 0)) {
      logger.warn(`allowed CN/hostname checks apply only to verified client certificates: set ${side === 'peer' ? '--peer-client-cert-auth' : '--client-cert-auth'}`, { side });
    }
    out[side] = new TlsSide({ side, config: resolved.cfg, protocol, selfSigned: resolved.selfSigned, logger });
  }
  return out;
}

// ---- HTTP requests to peers over verified TLS connections -----------------------------------

/**
 * `http.request` options for a peer URL: http as usual; https through `side.dial()` (our
 * peer certificate as client identity, the peer's certificate verified and explained).
 * node:http refuses https: URLs, so the target is given by its parts.
 */
export function peerRequestTarget(url: URL, side: TlsSide | undefined, connectTimeoutMs: number): http.RequestOptions {
  const target: http.RequestOptions = {
    protocol: 'http:',
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || (url.protocol === 'https:' ? 443 : 80),
    path: url.pathname + url.search,
  };
  if (url.protocol !== 'https:') return { ...target, agent: false };
  // No agent: with one, node:http would ignore createConnection.
  const createConnection = (_o: unknown, done: (err: Error | null, socket?: net.Socket) => void) => {
    if (!side) {
      done(new Error(`${url.origin} is https, but this member has no peer TLS certificate (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file)`));
    } else {
      side.dial(url, connectTimeoutMs).then((s) => done(null, s), (e: Error) => done(e));
    }
    return undefined;
  };
  return { ...target, createConnection } as http.RequestOptions;
}

export interface PeerResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface PeerRequestOptions {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  timeoutMs: number;
}

/** One request to a peer (http or https) with its whole answer. */
export function peerRequest(url: URL, side: TlsSide | undefined, opts: PeerRequestOptions): Promise<PeerResponse> {
  return new Promise<PeerResponse>((resolve, reject) => {
    const req = http.request({
      ...peerRequestTarget(url, side, opts.timeoutMs),
      method: opts.method ?? 'GET',
      headers: opts.headers,
      timeout: opts.timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs}ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        req.destroy(); // one request per connection: do not leave it half-open
      });
    });
    req.end(opts.body);
  });
}

/** GET `url` from a peer. */
export function peerGet(url: URL, side: TlsSide | undefined, timeoutMs: number): Promise<PeerResponse> {
  return peerRequest(url, side, { timeoutMs });
}
