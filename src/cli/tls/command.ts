import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createCa, issueCertificate, subjectAltNames, type KeyType, type PemPair } from './pki.js';
import { checkTlsFiles, formatCheckReport } from './inspect.js';

// `tsetcd tls init` makes, in one go, what etcd's walkthrough makes with cfssl: a CA, a
// server and a peer certificate per member, client certificates — with clear file names —
// and prints which flag takes which file on each member and on etcdctl.
// `tsetcd tls check` explains an existing set.

export const TLS_USAGE = `Usage:
  tsetcd tls init --out DIR --node NAME=HOST[,HOST...] [--node ...] [--client CN ...]
                  [--localhost] [--days N] [--ca-days N] [--key-type ecdsa|rsa] [--force]
  tsetcd tls check DIR|FILE...

init   Makes a CA (or reuses DIR/ca.pem and DIR/ca-key.pem), and for every --node a server
       certificate (client port 2379) and a peer certificate (peer port 2380) valid for the
       node's HOSTs (IP addresses and/or DNS names, comma separated), and a client
       certificate for every --client CN (default: root, when a new CA is made; run init
       again on the same DIR to add members or clients). Prints the flags to use.
         --localhost     also make server and peer certificates valid for 127.0.0.1, ::1, localhost
         --days N        validity of the member and client certificates (default 365)
         --ca-days N     validity of a new CA (default 3650)
         --key-type T    ecdsa (P-256, default) or rsa (2048 bits)
         --force         overwrite member and client files that already exist
check  Explains certificate and key files: what each certificate is for and which flag takes
       it, CN and SANs, validity (warns under 30 days), the chain to the CA, the matching key.
       Exits 1 when something is wrong (expired, broken chain).
`;

export interface TlsCommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

class UsageError extends Error {}

export interface NodeSpec {
  name: string;
  hosts: string[];
}

export interface InitOptions {
  outDir: string;
  nodes: NodeSpec[];
  clients: string[];
  localhost: boolean;
  days: number;
  caDays: number;
  keyType: KeyType;
  force: boolean;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LOCALHOST_NAMES = ['127.0.0.1', '::1', 'localhost'];

function parseNode(spec: string): NodeSpec {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new UsageError(`--node ${spec}: expected NAME=HOST[,HOST...], e.g. infra0=172.16.80.20`);
  const name = spec.slice(0, eq);
  if (!NAME_PATTERN.test(name)) throw new UsageError(`--node ${spec}: the name may hold letters, digits, '.', '_' and '-' only`);
  const hosts = spec.slice(eq + 1).split(',').map((h) => h.trim()).filter((h) => h !== '');
  if (hosts.length === 0) throw new UsageError(`--node ${spec}: give at least one IP address or host name for ${name}`);
  for (const h of hosts) {
    const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
    if (net.isIP(bare) === 0 && !/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(bare)) {
      throw new UsageError(`--node ${spec}: ${JSON.stringify(h)} is neither an IP address nor a host name (give hosts, not URLs or ports)`);
    }
  }
  return { name, hosts };
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} ${v}: expected a positive whole number of days`);
  return n;
}

export function parseInitArgs(args: readonly string[]): InitOptions {
  const o: InitOptions = { outDir: '', nodes: [], clients: [], localhost: false, days: 365, caDays: 3650, keyType: 'ecdsa', force: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--out': o.outDir = value(); break;
      case '--node': o.nodes.push(parseNode(value())); break;
      case '--client': {
        const cn = value();
        if (cn.trim() === '') throw new UsageError('--client needs a non-empty common name');
        o.clients.push(cn);
        break;
      }
      case '--localhost': o.localhost = true; break;
      case '--days': o.days = positiveInt(flag, value()); break;
      case '--ca-days': o.caDays = positiveInt(flag, value()); break;
      case '--key-type': {
        const t = value();
        if (t !== 'ecdsa' && t !== 'rsa') throw new UsageError(`--key-type ${t}: use ecdsa or rsa`);
        o.keyType = t;
        break;
      }
      case '--force': o.force = true; break;
      default: throw new UsageError(`unknown argument ${arg}`);
    }
  }
  if (o.outDir === '') throw new UsageError('--out DIR is required: where to write the certificates');
  if (o.nodes.length === 0 && o.clients.length === 0) throw new UsageError('give at least one --node NAME=HOST (or --client CN)');
  const names = new Set<string>();
  for (const n of o.nodes) {
    if (names.has(n.name)) throw new UsageError(`--node ${n.name} is given twice`);
    names.add(n.name);
  }
  return o;
}

/** `root` → `client-root`; characters unsafe in file names become '_'. */
export function clientFileBase(cn: string): string {
  return `client-${cn.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

export interface WrittenFile {
  file: string;
  what: string;
}

export interface InitResult {
  outDir: string;
  files: WrittenFile[];
  caReused: boolean;
  guide: string;
}

function writeFileChecked(file: string, data: string, mode: number, force: boolean): void {
  if (!force && fs.existsSync(file)) {
    throw new UsageError(`${file} already exists; use --force to replace it (or another --out)`);
  }
  fs.writeFileSync(file, data, { mode });
  fs.chmodSync(file, mode);
}

function hostsForNode(n: NodeSpec, localhost: boolean): string[] {
  return subjectAltNames(localhost ? [...n.hosts, ...LOCALHOST_NAMES] : n.hosts).map((s) => s.value);
}

function sanText(hosts: readonly string[]): string {
  return subjectAltNames(hosts).map((s) => `${s.type === 'ip' ? 'IP' : 'DNS'} ${s.value}`).join(', ');
}

function urlHost(host: string): string {
  return net.isIPv6(host) ? `[${host}]` : host;
}

/** Makes the files of `tsetcd tls init` and returns the guide to print. */
export async function runInit(o: InitOptions): Promise<InitResult> {
  const outDir = path.resolve(o.outDir);
  fs.mkdirSync(outDir, { recursive: true, mode: 0o755 });
  const p = (name: string) => path.join(outDir, name);
  const files: WrittenFile[] = [];

  const caReused = fs.existsSync(p('ca.pem')) && fs.existsSync(p('ca-key.pem'));
  // A new set gets a root client; a run that adds members to a set makes only what it is asked.
  const clients = o.clients.length > 0 ? o.clients : caReused ? [] : ['root'];
  // Refuse before writing anything, so a failed run leaves no half-made set.
  const planned: string[] = [];
  for (const n of o.nodes) planned.push(`${n.name}-server.pem`, `${n.name}-server-key.pem`, `${n.name}-peer.pem`, `${n.name}-peer-key.pem`);
  for (const cn of clients) planned.push(`${clientFileBase(cn)}.pem`, `${clientFileBase(cn)}-key.pem`);
  if (!o.force) {
    const existing = planned.filter((f) => fs.existsSync(p(f)));
    if (existing.length > 0) throw new UsageError(`${existing.map(p).join(', ')} already exist(s); use --force to replace, or another --out`);
  }

  let ca: PemPair;
  if (caReused) {
    ca = { certPem: fs.readFileSync(p('ca.pem'), 'utf8'), keyPem: fs.readFileSync(p('ca-key.pem'), 'utf8') };
  } else {
    if (fs.existsSync(p('ca.pem')) || fs.existsSync(p('ca-key.pem'))) {
      throw new UsageError(`${outDir} holds only one of ca.pem and ca-key.pem; both are needed to sign new certificates`);
    }
    ca = await createCa({ days: o.caDays, keyType: o.keyType });
    writeFileChecked(p('ca-key.pem'), ca.keyPem, 0o600, false);
    writeFileChecked(p('ca.pem'), ca.certPem, 0o644, false);
  }
  files.push({ file: p('ca.pem'), what: caReused ? 'the CA certificate (existing, reused)' : 'the CA certificate: members and clients trust what it signed' });
  files.push({ file: p('ca-key.pem'), what: 'the CA private key: keep it safe (offline); only needed to make more certificates' });

  for (const n of o.nodes) {
    const hosts = hostsForNode(n, o.localhost);
    for (const profile of ['server', 'peer'] as const) {
      const pair = await issueCertificate(ca, { profile, commonName: n.name, hosts, days: o.days, keyType: o.keyType });
      const base = `${n.name}-${profile}`;
      writeFileChecked(p(`${base}-key.pem`), pair.keyPem, 0o600, o.force);
      writeFileChecked(p(`${base}.pem`), pair.certPem, 0o644, o.force);
      files.push({
        file: p(`${base}.pem`),
        what: profile === 'server'
          ? `${n.name}'s client-port (2379) certificate, server and client auth; SANs: ${sanText(hosts)}`
          : `${n.name}'s peer-port (2380) certificate, server and client auth; SANs: ${sanText(hosts)}`,
      });
      files.push({ file: p(`${base}-key.pem`), what: `its private key (stays on ${n.name})` });
    }
  }
  for (const cn of clients) {
    const pair = await issueCertificate(ca, { profile: 'client', commonName: cn, days: o.days, keyType: o.keyType });
    const base = clientFileBase(cn);
    writeFileChecked(p(`${base}-key.pem`), pair.keyPem, 0o600, o.force);
    writeFileChecked(p(`${base}.pem`), pair.certPem, 0o644, o.force);
    files.push({ file: p(`${base}.pem`), what: `client certificate, CN=${cn} (with --client-cert-auth and auth enabled, the CN is the user)` });
    files.push({ file: p(`${base}-key.pem`), what: 'its private key' });
  }
  const guide = initGuide(outDir, { ...o, clients }, files, caReused);
  fs.writeFileSync(p('README.txt'), guide);
  return { outDir, files, caReused, guide };
}

function initGuide(outDir: string, o: InitOptions, files: readonly WrittenFile[], caReused: boolean): string {
  const p = (name: string) => path.join(outDir, name);
  const width = Math.max(...files.map((f) => path.basename(f.file).length));
  const lines: string[] = [];
  lines.push(`Certificates in ${outDir}${caReused ? ' (signed by the existing CA)' : ''}:`);
  for (const f of files) lines.push(`  ${path.basename(f.file).padEnd(width)}  ${f.what}`);
  lines.push('');
  lines.push('Every URL of a member becomes https:// (listen and advertise, client and peer).');
  lines.push('Copy to each member only ca.pem and its own files; never ca-key.pem.');
  for (const n of o.nodes) {
    const h = urlHost(n.hosts[0]!.replace(/^\[|\]$/g, ''));
    lines.push('');
    lines.push(`On ${n.name}:`);
    lines.push(`  tsetcd --name ${n.name} \\`);
    lines.push(`    --listen-client-urls https://${h}:2379 --advertise-client-urls https://${h}:2379 \\`);
    lines.push(`    --listen-peer-urls https://${h}:2380 --initial-advertise-peer-urls https://${h}:2380 \\`);
    lines.push(`    --cert-file ${p(`${n.name}-server.pem`)} --key-file ${p(`${n.name}-server-key.pem`)} \\`);
    lines.push(`    --trusted-ca-file ${p('ca.pem')} --client-cert-auth \\`);
    lines.push(`    --peer-cert-file ${p(`${n.name}-peer.pem`)} --peer-key-file ${p(`${n.name}-peer-key.pem`)} \\`);
    lines.push(`    --peer-trusted-ca-file ${p('ca.pem')} --peer-client-cert-auth \\`);
    lines.push('    ...your --initial-cluster (with https:// peer URLs), --data-dir and other flags');
  }
  if (o.nodes.length > 0) {
    lines.push('');
    if (caReused) {
      // Members added to a running cluster: they join it rather than form one.
      for (const n of o.nodes) {
        lines.push(`  first: etcdctl member add ${n.name} --peer-urls=https://${urlHost(n.hosts[0]!.replace(/^\[|\]$/g, ''))}:2380 (with the flags below)`);
      }
      lines.push('  then start it with --initial-cluster-state existing and every member in --initial-cluster');
    } else {
      lines.push('  --initial-cluster ' + o.nodes.map((n) => `${n.name}=https://${urlHost(n.hosts[0]!.replace(/^\[|\]$/g, ''))}:2380`).join(','));
    }
    lines.push('  (--cert-file/--key-file serve clients; --trusted-ca-file + --client-cert-auth make clients prove who they are;');
    lines.push('   the --peer-* flags do the same between members, each member being server and client there.)');
  }
  const endpoints = o.nodes.map((n) => `https://${urlHost(n.hosts[0]!.replace(/^\[|\]$/g, ''))}:2379`).join(',') || 'https://HOST:2379';
  lines.push('');
  lines.push('etcdctl:');
  if (o.clients.length === 0) {
    lines.push(`  etcdctl --endpoints=${endpoints} --cacert=${p('ca.pem')} --cert=${p('client-<CN>.pem')} --key=${p('client-<CN>-key.pem')} member list`);
  }
  for (const cn of o.clients) {
    const base = clientFileBase(cn);
    lines.push(`  etcdctl --endpoints=${endpoints} --cacert=${p('ca.pem')} --cert=${p(`${base}.pem`)} --key=${p(`${base}-key.pem`)} member list`);
  }
  lines.push('');
  lines.push(`Check a set at any time with: tsetcd tls check ${outDir}`);
  return lines.join('\n') + '\n';
}

/** `tsetcd tls ...`: returns the process exit code. */
export async function runTlsCommand(args: readonly string[], io: TlsCommandIo): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'init': {
        const result = await runInit(parseInitArgs(rest));
        io.out(result.guide);
        return 0;
      }
      case 'check': {
        if (rest.length === 0) throw new UsageError('tsetcd tls check needs a directory or certificate files');
        for (const f of rest) if (!fs.existsSync(f)) throw new UsageError(`${f}: no such file or directory`);
        const now = new Date();
        const report = await checkTlsFiles(rest, now);
        io.out(formatCheckReport(report, now));
        return report.errorCount > 0 ? 1 : 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(TLS_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown tls command ${JSON.stringify(sub)}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`tsetcd tls: ${e.message}\n\n${TLS_USAGE}`);
      return 2;
    }
    io.err(`tsetcd tls: ${(e as Error).message}\n`);
    return 1;
  }
}
