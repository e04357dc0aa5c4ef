/**
 * `tsetcd --help` and `tsetcd --version` texts. The help lists every flag of the table with its
 * default, grouped like etcd's help, and says which ones tsetcd accepts without acting on them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ETCD_VERSION, etcdApiVersion } from './config.js';
import { FLAGS, type FlagGroup, type FlagSpec } from './flags.js';

const GROUP_ORDER: readonly FlagGroup[] = [
  'Member',
  'Clustering',
  'Security',
  'Auth',
  'Profiling and Monitoring',
  'Logging',
  'Distributed tracing',
  'Features',
  'Experimental (deprecated spellings)',
  'Unsafe feature',
  'tsetcd',
  'Removed from etcd 3.6 (accepted for old command lines)',
];

const USAGE = `Usage:

  tsetcd [flags]
    Start a tsetcd member: an etcd v3 server (same flags, same gRPC API, works with etcdctl).

  tsetcd --version
    Show the tsetcd version and the etcd version it reports.

  tsetcd -h | --help
    Show this help.

  tsetcd tls init --out DIR --node NAME=IP[,HOST...] ... [--client CN]
    Make a CA and, per member, a server and a peer certificate (plus client certificates),
    and print which flag takes which file. tsetcd tls check DIR explains an existing set.

  tsetcd --config-file <file>
    Read the configuration from an etcd YAML config file; other flags and ETCD_* variables are then ignored.

Every flag can also be given as an environment variable ETCD_<FLAG_NAME>, e.g. --initial-cluster-token
as ETCD_INITIAL_CLUSTER_TOKEN; a command-line flag wins over its variable.
Flags marked [not implemented] are accepted so that etcd command lines keep working, but have no effect
(tsetcd warns when one is set).
`;

function describeDefault(f: FlagSpec): string {
  if (f.type === 'bool' || f.type === 'uint' || f.type === 'int' || f.type === 'uint32') return f.default;
  return `'${f.default}'`;
}

function describeFlag(f: FlagSpec): string {
  const lines = [`  --${f.name} ${describeDefault(f)}`, `    ${f.help}`];
  const notes: string[] = [];
  if (f.defaultNote !== undefined) notes.push(f.defaultNote);
  if (f.choices !== undefined && f.type === 'enum') notes.push(`one of: ${f.choices.map((c) => (c === '' ? "''" : c)).join(', ')}`);
  if (f.removedIn !== undefined) notes.push(`not in etcd since ${f.removedIn}`);
  if (f.deprecation !== undefined && f.aliasOf === undefined && f.featureGate === undefined) notes.push('deprecated');
  if (!f.implemented) notes.push('not implemented');
  if (notes.length > 0) lines.push(`    [${notes.join('; ')}]`);
  return lines.join('\n');
}

/** The short usage block printed after a command-line syntax error (as Go's flag package does for etcd). */
export function usageText(): string {
  return USAGE;
}

/** The full `--help` text. */
export function helpText(): string {
  const sections = GROUP_ORDER.map((group) => {
    const flags = FLAGS.filter((f) => f.group === group);
    return `${group}:\n${flags.map(describeFlag).join('\n')}`;
  });
  return `${USAGE}\n${sections.join('\n\n')}\n\nCAUTION: the unsafe flags can break the guarantees of the consensus protocol.\n`;
}

let cachedPackageVersion: string | undefined;

/** tsetcd's version from the nearest package.json named "tsetcd" above this module (src/ or dist/). */
export function tsetcdVersion(): string {
  if (cachedPackageVersion !== undefined) return cachedPackageVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tsetcd' && typeof pkg.version === 'string') {
        cachedPackageVersion = pkg.version;
        return pkg.version;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('tsetcd package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** The `--version` text. */
export function versionText(etcdVersion: string = DEFAULT_ETCD_VERSION): string {
  return [
    `tsetcd Version: ${tsetcdVersion()}`,
    `etcd Version: ${etcdVersion} (compatible)`,
    `API version: ${etcdApiVersion(etcdVersion)}`,
    `Node.js Version: ${process.version}`,
    `OS/Arch: ${process.platform}/${process.arch}`,
  ].join('\n') + '\n';
}
