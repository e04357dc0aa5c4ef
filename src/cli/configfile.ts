/**
 * etcd's YAML config file (`--config-file` / `ETCD_CONFIG_FILE`): a mapping whose keys are flag
 * names without `--`, with TLS settings nested under `client-transport-security:` and
 * `peer-transport-security:` (see etcd.conf.yml.sample).
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { FlagValue } from './config.js';
import { convertYaml, yamlToText } from './convert.js';
import { ConfigError, ValueError, goQuote } from './errors.js';
import { findFlag } from './flags.js';

export interface FileSetting {
  /** Flag name (as spelled in the file, or the flag a nested TLS key stands for). */
  name: string;
  /** Key path in the file, e.g. `peer-transport-security.cert-file`. */
  key: string;
  text: string;
  value: FlagValue;
}

export interface LoadedConfigFile {
  settings: FileSetting[];
  warnings: string[];
  /** `client-transport-security.allowed-cn` has no flag equivalent. */
  clientAllowedCn: string[];
  /** `client-transport-security.skip-client-san-verification` has no flag equivalent. */
  clientSkipClientSanVerification: boolean;
}

type Side = 'client' | 'peer';

/** Nested TLS key → flag it stands for; null where etcd has no flag for it. */
const TLS_KEYS: Readonly<Record<Side, Readonly<Record<string, string | null>>>> = {
  client: {
    'cert-file': 'cert-file',
    'key-file': 'key-file',
    'client-cert-file': 'client-cert-file',
    'client-key-file': 'client-key-file',
    'client-cert-auth': 'client-cert-auth',
    'trusted-ca-file': 'trusted-ca-file',
    'auto-tls': 'auto-tls',
    'crl-file': 'client-crl-file',
    'allowed-hostname': 'client-cert-allowed-hostname',
    'allowed-cn': null,
    'skip-client-san-verification': null,
  },
  peer: {
    'cert-file': 'peer-cert-file',
    'key-file': 'peer-key-file',
    'client-cert-file': 'peer-client-cert-file',
    'client-key-file': 'peer-client-key-file',
    'client-cert-auth': 'peer-client-cert-auth',
    'trusted-ca-file': 'peer-trusted-ca-file',
    'auto-tls': 'peer-auto-tls',
    'crl-file': 'peer-crl-file',
    'allowed-hostname': 'peer-cert-allowed-hostname',
    'allowed-cn': 'peer-cert-allowed-cn',
    'skip-client-san-verification': 'peer-skip-client-san-verification',
  },
};

const TLS_BLOCKS: Readonly<Record<string, Side>> = {
  'client-transport-security': 'client',
  'peer-transport-security': 'peer',
};

/** Keys etcd's file format knows that are not flags. */
const NON_FLAG_KEYS = new Set(['socket-options', 'discovery-config', 'grpc-additional-server-options']);

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`open ${path}: no such file or directory`);
    if (code === 'EACCES') throw new ConfigError(`open ${path}: permission denied`);
    if (code === 'EISDIR') throw new ConfigError(`read ${path}: is a directory`);
    throw new ConfigError(`open ${path}: ${(e as Error).message}`);
  }
}

function parseYamlMapping(path: string, text: string): Record<string, unknown> {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`error converting YAML to JSON in ${path}: ${doc.errors[0]!.message}`);
  }
  const data: unknown = doc.toJS({ mapAsMap: false });
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`config file ${path} must hold a YAML mapping of flag names to values`);
  }
  return data as Record<string, unknown>;
}

function convertEntry(path: string, key: string, flagName: string, raw: unknown): FileSetting {
  const spec = findFlag(flagName);
  if (spec === undefined) throw new Error(`convertEntry: unknown flag ${flagName}`);
  try {
    return { name: flagName, key, text: yamlToText(raw), value: convertYaml(spec, raw) };
  } catch (e) {
    if (e instanceof ValueError) {
      throw new ConfigError(`invalid value ${goQuote(yamlToText(raw))} for ${goQuote(key)} in config file ${path}: ${e.message}`);
    }
    throw e;
  }
}

function loadTlsBlock(path: string, blockKey: string, side: Side, block: unknown, out: LoadedConfigFile): void {
  if (block === null || block === undefined) return;
  if (typeof block !== 'object' || Array.isArray(block)) throw new ConfigError(`invalid ${blockKey}`);
  for (const [key, raw] of Object.entries(block as Record<string, unknown>)) {
    if (raw === null || raw === undefined) continue;
    const keyPath = `${blockKey}.${key}`;
    if (!(key in TLS_KEYS[side])) {
      out.warnings.push(`unrecognized key ${goQuote(keyPath)} in config file ${path}; it is ignored`);
      continue;
    }
    const flagName = TLS_KEYS[side][key];
    if (flagName === null || flagName === undefined) {
      loadClientOnlyKey(path, key, keyPath, raw, out);
      continue;
    }
    out.settings.push(convertEntry(path, keyPath, flagName, raw));
  }
}

function loadClientOnlyKey(path: string, key: string, keyPath: string, raw: unknown, out: LoadedConfigFile): void {
  if (key === 'allowed-cn') {
    const setting = convertEntry(path, keyPath, 'peer-cert-allowed-cn', raw); // same list syntax
    out.clientAllowedCn = setting.value as string[]; // enforced by the client TLS listener
  } else {
    const setting = convertEntry(path, keyPath, 'peer-skip-client-san-verification', raw); // same bool syntax
    out.clientSkipClientSanVerification = setting.value as boolean;
    out.warnings.push(`config key ${keyPath} is accepted but not implemented by tsetcd yet; it has no effect`);
  }
}

/** A nested TLS key and a top-level flag key may name the same flag; refuse the ambiguity. */
function assertNoDoubleSetting(path: string, settings: readonly FileSetting[]): void {
  const keyByFlag = new Map<string, string>();
  for (const s of settings) {
    const earlier = keyByFlag.get(s.name);
    if (earlier !== undefined) {
      throw new ConfigError(`config file ${path} sets both ${goQuote(earlier)} and ${goQuote(s.key)}, which mean the same setting`);
    }
    keyByFlag.set(s.name, s.key);
  }
}

/** Read and convert a config file. Keys with empty (null) values count as not set, as in etcd's sample file. */
export function loadConfigFile(path: string): LoadedConfigFile {
  const data = parseYamlMapping(path, readText(path));
  const out: LoadedConfigFile = { settings: [], warnings: [], clientAllowedCn: [], clientSkipClientSanVerification: false };
  for (const [key, raw] of Object.entries(data)) {
    const side = TLS_BLOCKS[key];
    if (side !== undefined) {
      loadTlsBlock(path, key, side, raw, out);
      continue;
    }
    if (raw === null || raw === undefined) continue;
    if (key === 'config-file' || key === 'version') {
      out.warnings.push(`key ${goQuote(key)} has no meaning inside config file ${path}; it is ignored`);
      continue;
    }
    if (NON_FLAG_KEYS.has(key)) {
      out.warnings.push(`config key ${key} is accepted but not implemented by tsetcd yet; it has no effect`);
      continue;
    }
    if (findFlag(key) === undefined) {
      out.warnings.push(`unrecognized key ${goQuote(key)} in config file ${path}; it is ignored`);
      continue;
    }
    out.settings.push(convertEntry(path, key, key, raw));
  }
  assertNoDoubleSetting(path, out.settings);
  return out;
}
