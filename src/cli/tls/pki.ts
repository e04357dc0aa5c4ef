import crypto, { webcrypto } from 'node:crypto';
import net from 'node:net';
import type { Extension } from '@peculiar/x509';
import { loadX509 } from './x509-lib.js';

// Making certificates: a CA, and leaf certificates it signs with etcd's usages, plus the
// self-signed certificate of --auto-tls. The X.509 structures come from @peculiar/x509;
// keys and signatures from Node's WebCrypto. Keys are written as PKCS#8 PEM, which Go
// (etcdctl, etcd) and OpenSSL (Node) both read.

export type KeyType = 'ecdsa' | 'rsa';

/**
 * What a leaf certificate is for. server: the client port (2379), also usable as a client
 * (etcd's own tools dial with it, as etcd's hack/tls-setup allows); peer: the peer port
 * (2380), where each member is server *and* client; client: etcdctl and applications.
 */
export type LeafProfile = 'server' | 'peer' | 'client';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** Organizational unit written into every certificate we make: `tsetcd tls check` reads it back. */
export const ROLE_OU: Readonly<Record<LeafProfile | 'ca', string>> = {
  ca: 'etcd CA',
  server: 'etcd server',
  peer: 'etcd peer',
  client: 'etcd client',
};
export const ORGANIZATION = 'tsetcd';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates start a little in the past so that a peer's slightly late clock accepts them. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface ValidityOptions {
  days: number;
  /** Start of validity (default: now minus a few minutes). Tests use it for expired certificates. */
  validFrom?: Date;
}

function validity(v: ValidityOptions): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(v.days) || v.days <= 0) throw new Error(`certificate validity must be a positive number of days (got ${v.days})`);
  const notBefore = v.validFrom ?? new Date(Date.now() - BACKDATE_MS);
  return { notBefore, notAfter: new Date(notBefore.getTime() + BACKDATE_MS + v.days * DAY_MS) };
}

interface SigningKey {
  privateKey: webcrypto.CryptoKey;
  publicKey: webcrypto.CryptoKey;
  /** WebCrypto algorithm for certificate signatures made with this key. */
  signingAlgorithm: webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;
}

const EC_HASH_BY_CURVE: Readonly<Record<string, string>> = { 'P-256': 'SHA-256', 'P-384': 'SHA-384', 'P-521': 'SHA-512' };
const WEBCRYPTO_CURVE: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

async function generateKey(keyType: KeyType): Promise<SigningKey> {
  if (keyType === 'ecdsa') {
    const alg = { name: 'ECDSA', namedCurve: 'P-256' };
    const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    return { ...keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } };
  }
  const alg = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  return { ...keys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } };
}

/** Reads a PEM private key in any common form (PKCS#8, SEC1 "EC PRIVATE KEY", PKCS#1 RSA) for signing. */
export async function importSigningKey(keyPem: string): Promise<SigningKey> {
  const key = crypto.createPrivateKey(keyPem);
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const spki = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (key.asymmetricKeyType === 'ec') {
    const curve = WEBCRYPTO_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) throw new Error(`unsupported EC curve ${key.asymmetricKeyDetails?.namedCurve} (use P-256, P-384 or P-521)`);
    const alg = { name: 'ECDSA', namedCurve: curve };
    return {
      privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, true, ['sign']),
      publicKey: await webcrypto.subtle.importKey('spki', spki, alg, true, ['verify']),
      signingAlgorithm: { name: 'ECDSA', hash: EC_HASH_BY_CURVE[curve]! },
    };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return {
      privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, true, ['sign']),
      publicKey: await webcrypto.subtle.importKey('spki', spki, alg, true, ['verify']),
      signingAlgorithm: alg,
    };
  }
  throw new Error(`unsupported key type ${key.asymmetricKeyType} (use an ECDSA or RSA key)`);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** `[{ O: [...] }, { OU: [...] }, { CN: [...] }]`: a structured name, so no DN-string escaping is involved. */
function subjectName(commonName: string, role: LeafProfile | 'ca' | null): Array<Record<string, string[]>> {
  const name: Array<Record<string, string[]>> = [{ O: [ORGANIZATION] }];
  if (role !== null) name.push({ OU: [ROLE_OU[role]] });
  if (commonName !== '') name.push({ CN: [commonName] });
  return name;
}

/** Host names and IP addresses as subject alternative names (IPs as IP entries, the rest as DNS). */
export function subjectAltNames(hosts: readonly string[]): Array<{ type: 'ip' | 'dns'; value: string }> {
  const seen = new Set<string>();
  const out: Array<{ type: 'ip' | 'dns'; value: string }> = [];
  for (const raw of hosts) {
    const host = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
    if (host === '' || seen.has(host)) continue;
    seen.add(host);
    out.push({ type: net.isIP(host) !== 0 ? 'ip' : 'dns', value: host });
  }
  return out;
}

function randomSerialHex(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // a positive INTEGER without a leading zero byte
  if (bytes[0] === 0) bytes[0] = 1;
  return bytes.toString('hex');
}

/**
 * `tsetcd CA 2026-11-25 3fa9c1`: every CA made gets its own name, so that an error saying
 * "issued by CN=..., not a CA in --trusted-ca-file" tells two sets apart.
 */
function defaultCaName(): string {
  return `tsetcd CA ${new Date().toISOString().slice(0, 10)} ${crypto.randomBytes(3).toString('hex')}`;
}

export interface CaOptions extends ValidityOptions {
  commonName?: string;
  keyType?: KeyType;
}

/** A new self-signed certificate authority. */
export async function createCa(opts: CaOptions): Promise<PemPair> {
  const x509 = await loadX509();
  const key = await generateKey(opts.keyType ?? 'ecdsa');
  const { notBefore, notAfter } = validity(opts);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: subjectName(opts.commonName ?? defaultCaName(), 'ca'),
    notBefore,
    notAfter,
    keys: { privateKey: key.privateKey, publicKey: key.publicKey } as CryptoKeyPair,
    signingAlgorithm: key.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(key.publicKey as CryptoKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(key.privateKey) };
}

export interface LeafOptions extends ValidityOptions {
  profile: LeafProfile;
  commonName: string;
  /** IP addresses and host names the certificate is valid for (server and peer). */
  hosts?: readonly string[];
  keyType?: KeyType;
}

function extendedUsagesOf(profile: LeafProfile): string[] {
  switch (profile) {
    case 'server':
    case 'peer':
      return ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']; // serverAuth, clientAuth
    case 'client':
      return ['1.3.6.1.5.5.7.3.2'];
  }
}

/** A certificate for `opts.profile`, signed by `ca`. */
export async function issueCertificate(ca: PemPair, opts: LeafOptions): Promise<PemPair> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importSigningKey(ca.keyPem);
  const key = await generateKey(opts.keyType ?? 'ecdsa');
  const { notBefore, notAfter } = validity(opts);
  const hosts = opts.hosts ?? [];
  if (opts.profile !== 'client' && hosts.length === 0) {
    throw new Error(`a ${opts.profile} certificate needs at least one host (IP address or DNS name) to be valid for`);
  }
  const extensions: Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(extendedUsagesOf(opts.profile)),
    await x509.SubjectKeyIdentifierExtension.create(key.publicKey as CryptoKey),
    await x509.AuthorityKeyIdentifierExtension.create(caKey.publicKey as CryptoKey),
  ];
  if (hosts.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(subjectAltNames(hosts)));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: subjectName(opts.commonName, opts.profile),
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey: key.publicKey as CryptoKey,
    signingKey: caKey.privateKey as CryptoKey,
    signingAlgorithm: caKey.signingAlgorithm,
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(key.privateKey) };
}

export interface SelfSignedOptions extends ValidityOptions {
  hosts: readonly string[];
  /** Also good for client authentication (peers dial each other with it). */
  clientAuth: boolean;
}

/** The certificate of --auto-tls / --peer-auto-tls: self-signed, for the listen hosts, O=etcd as etcd makes it. */
export async function selfSignedCertificate(opts: SelfSignedOptions): Promise<PemPair> {
  const x509 = await loadX509();
  const key = await generateKey('ecdsa');
  const { notBefore, notAfter } = validity(opts);
  const usages = ['1.3.6.1.5.5.7.3.1'];
  if (opts.clientAuth) usages.push('1.3.6.1.5.5.7.3.2');
  const extensions: Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usages),
  ];
  const sans = subjectAltNames(opts.hosts);
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ O: ['etcd'] }],
    notBefore,
    notAfter,
    keys: { privateKey: key.privateKey, publicKey: key.publicKey } as CryptoKeyPair,
    signingAlgorithm: key.signingAlgorithm,
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(key.privateKey) };
}

export interface CrlOptions {
  /** Hex serial numbers to revoke (as Node's X509Certificate.serialNumber prints them). */
  revokedSerials: readonly string[];
  days?: number;
}

/** A CRL signed by `ca` revoking the given serials (PEM). */
export async function createCrl(ca: PemPair, opts: CrlOptions): Promise<string> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importSigningKey(ca.keyPem);
  const now = new Date();
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subjectName,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + (opts.days ?? 30) * DAY_MS),
    entries: opts.revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: now })),
    signingKey: caKey.privateKey as CryptoKey,
    signingAlgorithm: caKey.signingAlgorithm,
  });
  return crl.toString('pem') + '\n';
}
