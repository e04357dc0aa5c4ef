import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadX509 } from './x509-lib.js';
import { ROLE_OU } from './pki.js';

// `tsetcd tls check`: explains a set of certificate and key files — what each certificate is
// for and which flag takes it, its names (CN, SANs), its validity, whether it chains to a CA
// in the set, and which key belongs to it. Parsing is @peculiar/x509's; signature and key
// checks are OpenSSL's (Node's crypto.X509Certificate).

/** Warn when a certificate expires within this many days. */
export const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export type CertRole = 'ca' | 'server' | 'peer' | 'server-only' | 'client' | 'any';

export interface CertReport {
  file: string;
  /** Position in a bundle file (0 for the first certificate). */
  index: number;
  subject: string;
  commonName?: string;
  issuer: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  role: CertRole;
  /** One line: what the certificate is. */
  summary: string;
  /** Flags (tsetcd/etcd and etcdctl) that can take this file. */
  fits: string[];
  extendedKeyUsages: string[];
  keyUsages: string[];
  sans: string[];
  /** Where the issuer was found (`file#index`), or why the chain is not verified. */
  chain: string;
  chainVerified: boolean;
  keyFile?: string;
  errors: string[];
  warnings: string[];
}

export interface KeyReport {
  file: string;
  certFiles: string[];
}

export interface CheckReport {
  certs: CertReport[];
  keys: KeyReport[];
  /** Files that hold neither certificates nor keys, or could not be read. */
  skipped: { file: string; why: string }[];
  errorCount: number;
  warningCount: number;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

interface ParsedFile {
  file: string;
  certPems: string[];
  keyPems: string[];
}

function readPemFile(file: string): ParsedFile {
  const text = fs.readFileSync(file, 'latin1');
  const certPems: string[] = [];
  const keyPems: string[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] === 'CERTIFICATE') certPems.push(m[0]);
    else if (m[1]!.endsWith('PRIVATE KEY')) keyPems.push(m[0]);
  }
  return { file, certPems, keyPems };
}

/** The files to look at: directories are scanned (not recursively) for PEM-looking files. */
export function collectFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) {
        if (/\.(pem|crt|cer|key)$/i.test(name)) out.push(path.join(p, name));
      }
    } else out.push(p);
  }
  return out;
}

const KEY_USAGE_NAMES: ReadonlyArray<[number, string]> = [
  [1, 'digitalSignature'], [2, 'nonRepudiation'], [4, 'keyEncipherment'], [8, 'dataEncipherment'],
  [16, 'keyAgreement'], [32, 'keyCertSign'], [64, 'cRLSign'],
];

function ekuName(oid: string): string {
  return oid === SERVER_AUTH ? 'serverAuth' : oid === CLIENT_AUTH ? 'clientAuth' : oid;
}

function nameAttribute(dn: string, attr: string): string | undefined {
  // Node prints one attribute per line: "O=tsetcd\nOU=etcd peer\nCN=infra0".
  const line = dn.split('\n').reverse().find((l) => l.startsWith(`${attr}=`));
  return line?.slice(attr.length + 1);
}

function oneLineName(dn: string): string {
  return dn.split('\n').join(', ');
}

interface Classified {
  role: CertRole;
  summary: string;
  fits: string[];
}

function classify(isCa: boolean, ekus: string[], ou: string | undefined, cn: string | undefined, file: string): Classified {
  const who = cn ? ` ${cn}` : '';
  if (isCa) {
    return {
      role: 'ca',
      summary: 'certificate authority (CA): signs the other certificates; members and clients trust what it signed',
      fits: ['--trusted-ca-file', '--peer-trusted-ca-file', 'etcdctl --cacert'],
    };
  }
  const server = ekus.length === 0 || ekus.includes(SERVER_AUTH);
  const client = ekus.length === 0 || ekus.includes(CLIENT_AUTH);
  if (ekus.length === 0) {
    return { role: 'any', summary: 'leaf certificate without extended key usage (valid for any purpose)', fits: ['--cert-file', '--peer-cert-file', 'etcdctl --cert'] };
  }
  if (server && client) {
    const peerHint = ou === ROLE_OU.peer || (ou === undefined && /peer/i.test(path.basename(file)));
    if (peerHint) {
      return {
        role: 'peer',
        summary: `peer certificate of member${who}: the peer port (2380), where a member is server and client`,
        fits: ['--peer-cert-file', '--cert-file'],
      };
    }
    return {
      role: 'server',
      summary: `server certificate of member${who}: the client port (2379); it can also authenticate as a client`,
      fits: ['--cert-file', '--peer-cert-file'],
    };
  }
  if (server) {
    return {
      role: 'server-only',
      summary: `server certificate${who} (serverAuth only): the client port; NOT usable as --peer-cert-file, because a member also dials its peers with it as a client`,
      fits: ['--cert-file'],
    };
  }
  if (client) {
    return {
      role: 'client',
      summary: `client certificate, CN=${cn ?? '(none)'}: for etcdctl and applications; with --client-cert-auth the CN is the user name`,
      fits: ['etcdctl --cert', '--client-cert-file', '--peer-client-cert-file'],
    };
  }
  return { role: 'any', summary: `certificate with extended key usages ${ekus.map(ekuName).join(', ')}: not for etcd`, fits: [] };
}

interface LoadedCert {
  file: string;
  index: number;
  node: crypto.X509Certificate;
  pem: string;
}

function findIssuer(cert: LoadedCert, all: readonly LoadedCert[]): LoadedCert | undefined {
  for (const candidate of all) {
    if (candidate === cert) continue;
    if (cert.node.checkIssued(candidate.node) && cert.node.verify(candidate.node.publicKey)) return candidate;
  }
  return undefined;
}

function where(c: LoadedCert): string {
  return c.index === 0 ? path.basename(c.file) : `${path.basename(c.file)}#${c.index + 1}`;
}

/** Examines certificates and keys in `paths` (files or directories). */
export async function checkTlsFiles(paths: readonly string[], now: Date = new Date()): Promise<CheckReport> {
  const x509 = await loadX509();
  const files = collectFiles(paths);
  const skipped: CheckReport['skipped'] = [];
  const loaded: LoadedCert[] = [];
  const keys: { file: string; key: crypto.KeyObject }[] = [];
  for (const file of files) {
    let parsed: ParsedFile;
    try {
      parsed = readPemFile(file);
    } catch (e) {
      skipped.push({ file, why: (e as Error).message });
      continue;
    }
    if (parsed.certPems.length === 0 && parsed.keyPems.length === 0) {
      skipped.push({ file, why: 'no PEM certificate or private key in it' });
      continue;
    }
    parsed.certPems.forEach((pem, index) => {
      try {
        loaded.push({ file, index, node: new crypto.X509Certificate(pem), pem });
      } catch (e) {
        skipped.push({ file, why: `certificate ${index + 1} cannot be parsed: ${(e as Error).message}` });
      }
    });
    for (const pem of parsed.keyPems) {
      try {
        keys.push({ file, key: crypto.createPrivateKey(pem) });
      } catch (e) {
        skipped.push({ file, why: `private key cannot be read (encrypted?): ${(e as Error).message}` });
      }
    }
  }

  const keyReports: KeyReport[] = keys.map((k) => ({ file: k.file, certFiles: [] }));
  const certs: CertReport[] = [];
  for (const c of loaded) {
    const px = new x509.X509Certificate(c.pem);
    const basic = px.getExtension(x509.BasicConstraintsExtension);
    const ku = px.getExtension(x509.KeyUsagesExtension);
    const eku = px.getExtension(x509.ExtendedKeyUsageExtension);
    const san = px.getExtension(x509.SubjectAlternativeNameExtension);
    const isCa = basic?.ca === true;
    const ekus = (eku?.usages ?? []).map(String);
    const keyUsages = ku ? KEY_USAGE_NAMES.filter(([bit]) => (ku.usages & bit) !== 0).map(([, n]) => n) : [];
    const sans = (san?.names.items ?? []).map((n) => `${n.type === 'ip' ? 'IP' : n.type.toUpperCase()}:${n.value}`);
    const cn = nameAttribute(c.node.subject, 'CN');
    const ou = nameAttribute(c.node.subject, 'OU');
    const { role, summary, fits } = classify(isCa, ekus, ou, cn, c.file);
    const errors: string[] = [];
    const warnings: string[] = [];

    const notBefore = new Date(c.node.validFrom);
    const notAfter = new Date(c.node.validTo);
    const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
    if (notAfter.getTime() <= now.getTime()) errors.push(`expired on ${notAfter.toISOString()}`);
    else if (notBefore.getTime() > now.getTime()) errors.push(`not valid before ${notBefore.toISOString()} (check the clock)`);
    else if (daysLeft < EXPIRY_WARNING_DAYS) warnings.push(`expires in ${daysLeft} days (${notAfter.toISOString()})`);

    let chain: string;
    let chainVerified = false;
    // Not checkIssued(): OpenSSL also demands keyCertSign there, which a self-signed leaf lacks.
    const selfIssued = c.node.subject === c.node.issuer;
    if (selfIssued) {
      chainVerified = c.node.verify(c.node.publicKey);
      chain = chainVerified ? 'self-signed' : 'self-issued but its signature does not verify';
      if (!chainVerified) errors.push('self-issued certificate whose signature does not verify: the file is damaged');
      if (!isCa) warnings.push('self-signed leaf certificate (as --auto-tls makes): clients cannot verify it against a CA');
    } else {
      const issuer = findIssuer(c, loaded);
      if (issuer) {
        chainVerified = true;
        chain = `signed by ${where(issuer)} (${nameAttribute(issuer.node.subject, 'CN') ?? oneLineName(issuer.node.subject)})`;
        const issuerBasic = new x509.X509Certificate(issuer.pem).getExtension(x509.BasicConstraintsExtension);
        if (issuerBasic?.ca !== true) errors.push(`its issuer ${where(issuer)} is not a CA certificate (basic constraints): verification will fail`);
      } else {
        chain = `issuer "${oneLineName(c.node.issuer)}" is not among the files checked`;
        warnings.push(`cannot verify the chain: give the CA certificate that signed it (issuer ${oneLineName(c.node.issuer)})`);
      }
    }

    if (isCa && ku && (ku.usages & 32) === 0) errors.push('CA certificate without keyCertSign key usage: what it signed will not verify');
    if (!isCa && (role === 'server' || role === 'peer' || role === 'server-only') && sans.length === 0) {
      warnings.push('no subject alternative names: clients check the address they dial against the SANs (not the CN), so none will accept it');
    }
    if (!isCa && ku && (ku.usages & 1) === 0) warnings.push('no digitalSignature key usage: TLS 1.3 and ECDHE handshakes need it');

    let keyFile: string | undefined;
    keys.forEach((k, i) => {
      if (c.node.checkPrivateKey(k.key)) {
        keyFile ??= k.file;
        keyReports[i]!.certFiles.push(where(c));
      }
    });
    if (!keyFile && !isCa && role !== 'client') {
      // A CA's key belongs offline and a client's on the client machine; a member's must be at hand.
      warnings.push('no matching private key among the files checked');
    }

    certs.push({
      file: c.file, index: c.index, subject: oneLineName(c.node.subject), commonName: cn, issuer: oneLineName(c.node.issuer),
      serial: c.node.serialNumber, notBefore, notAfter, role, summary, fits, extendedKeyUsages: ekus.map(ekuName), keyUsages,
      sans, chain, chainVerified, keyFile, errors, warnings,
    });
  }
  for (const k of keyReports) {
    if (k.certFiles.length === 0) skipped.push({ file: k.file, why: 'private key that matches none of the certificates checked' });
  }
  const errorCount = certs.reduce((n, c) => n + c.errors.length, 0);
  const warningCount = certs.reduce((n, c) => n + c.warnings.length, 0) + skipped.length;
  return { certs, keys: keyReports, skipped, errorCount, warningCount };
}

function days(from: Date, to: Date): number {
  return Math.floor((to.getTime() - from.getTime()) / DAY_MS);
}

/** The report as text for a person. */
export function formatCheckReport(r: CheckReport, now: Date = new Date()): string {
  const lines: string[] = [];
  for (const c of r.certs) {
    const label = c.index === 0 ? c.file : `${c.file} (certificate ${c.index + 1})`;
    lines.push(`${label}`);
    lines.push(`  what:     ${c.summary}`);
    lines.push(`  subject:  ${c.subject}`);
    if (c.sans.length > 0) lines.push(`  SANs:     ${c.sans.join(', ')}`);
    const usages = [...c.keyUsages, ...c.extendedKeyUsages];
    if (usages.length > 0) lines.push(`  usage:    ${usages.join(', ')}`);
    lines.push(`  valid:    ${c.notBefore.toISOString().slice(0, 10)} to ${c.notAfter.toISOString().slice(0, 10)} (${Math.max(0, days(now, c.notAfter))} days left)`);
    lines.push(`  chain:    ${c.chain}${c.chainVerified ? ' — signature verified' : ''}`);
    if (c.keyFile) lines.push(`  key:      ${c.keyFile}`);
    if (c.fits.length > 0) lines.push(`  use with: ${c.fits.join(', ')}`);
    for (const e of c.errors) lines.push(`  ERROR:    ${e}`);
    for (const w of c.warnings) lines.push(`  warning:  ${w}`);
    lines.push('');
  }
  for (const k of r.keys) {
    if (k.certFiles.length > 0) lines.push(`${k.file}: private key of ${k.certFiles.join(', ')}`);
  }
  for (const s of r.skipped) lines.push(`${s.file}: ${s.why}`);
  if (r.keys.length > 0 || r.skipped.length > 0) lines.push('');
  lines.push(`${r.certs.length} certificate(s), ${r.keys.length} key(s): ${r.errorCount} error(s), ${r.warningCount} warning(s)`);
  return lines.join('\n') + '\n';
}
