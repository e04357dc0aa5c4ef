/**
 * Checks etcd performs when a member bootstraps from an empty data dir: the member's name is
 * in --initial-cluster, its --initial-advertise-peer-urls equal its --initial-cluster entry, no
 * peer URL is listed twice. Once the data dir holds a member, etcd ignores the bootstrap flags,
 * and so does tsetcd (`isDataDirInitialized`).
 *
 * Like etcd, URLs whose strings differ are compared again after DNS resolution (`localhost`
 * is never resolved). `checkBootstrapSync` decides everything that needs no DNS;
 * `verifyBootstrap` (async) also resolves host names, and the server calls it at first start.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { EtcdConfig, InitialClusterMember } from './config.js';
import { ConfigError, ValueError, goQuote, goQuoteList } from './errors.js';
import { parseEtcdUrl, splitHostPort } from './url.js';

export interface BootstrapInput {
  name: string;
  initialCluster: readonly InitialClusterMember[];
  /** etcd string forms of --initial-advertise-peer-urls, sorted. */
  initialAdvertisePeerUrls: readonly string[];
}

/** The part of the config that the bootstrap checks look at. */
export function bootstrapInputOf(cfg: Pick<EtcdConfig, 'name' | 'initialCluster' | 'initialAdvertisePeerUrls'>): BootstrapInput {
  return {
    name: cfg.name,
    initialCluster: cfg.initialCluster,
    initialAdvertisePeerUrls: cfg.initialAdvertisePeerUrls.map((u) => u.text),
  };
}

/**
 * Parse `--initial-cluster` like etcd: comma-separated `name=url` items (empty items skipped, an
 * item without '=' is a name with an empty URL), URLs grouped per name and sorted.
 */
export function parseInitialCluster(text: string): InitialClusterMember[] {
  const urlsByName = new Map<string, string[]>();
  for (const item of text.split(',')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const url = eq < 0 ? '' : item.slice(eq + 1);
    const list = urlsByName.get(name) ?? [];
    list.push(url);
    urlsByName.set(name, list);
  }
  const members: InitialClusterMember[] = [];
  for (const [name, urls] of urlsByName) {
    try {
      // Unlike the URL flags, etcd keeps duplicates here, so that they can be reported.
      const parsed = urls.map((u) => parseEtcdUrl(u).text).sort();
      members.push({ name, peerUrls: parsed });
    } catch (e) {
      if (e instanceof ValueError) throw new ConfigError(`error setting up initial cluster: ${e.message}`);
      throw e;
    }
  }
  return members;
}

/** etcd's string form of a URLs map: `name=url` pairs sorted, comma-joined. */
export function initialClusterString(members: readonly InitialClusterMember[]): string {
  const pairs: string[] = [];
  for (const m of members) for (const u of m.peerUrls) pairs.push(`${m.name}=${u}`);
  return pairs.sort().join(',');
}

/** Whether `dataDir` (or a dedicated WAL dir) already holds a member, i.e. bootstrap flags no longer apply. */
export function isDataDirInitialized(dataDir: string, walDir: string): boolean {
  const memberDir = join(dataDir, 'member');
  if (existsSync(memberDir) && statSync(memberDir).isDirectory()) return true;
  return existsSync(walDir) && statSync(walDir).isDirectory() && readdirSync(walDir).length > 0;
}

function hasDuplicateUrl(members: readonly InitialClusterMember[]): boolean {
  const seen = new Set<string>();
  for (const m of members) {
    for (const u of m.peerUrls) {
      if (seen.has(u)) return true;
      seen.add(u);
    }
  }
  return false;
}

/** True when this URL's host is a name that only DNS can turn into an address. */
function needsDns(urlText: string): boolean {
  const u = parseEtcdUrl(urlText);
  if (u.isUnix) return false;
  return u.hostname !== 'localhost' && isIP(u.hostname) === 0;
}

type Resolver = (urlText: string) => Promise<string>;

/**
 * The comparison etcd makes between this member's advertised peer URLs (a) and its
 * --initial-cluster entry (b). Returns null when equal, else the detail etcd puts in parentheses.
 */
async function compareUrlLists(a: readonly string[], b: readonly string[], resolve: Resolver): Promise<string | null> {
  if (a.length !== b.length) return `len(${goQuoteList(a)}) != len(${goQuoteList(b)})`;
  const sa = [...a].sort();
  const sb = [...b].sort();
  if (sa.every((u, i) => u === sb[i])) return null;
  let ra: string[];
  let rb: string[];
  try {
    ra = (await Promise.all(sa.map(resolve))).sort();
    rb = (await Promise.all(sb.map(resolve))).sort();
  } catch (e) {
    return (e as Error).message;
  }
  const i = ra.findIndex((u, k) => u !== rb[k]);
  return i < 0 ? null : `resolved urls: ${goQuote(ra[i]!)} != ${goQuote(rb[i]!)}`;
}

function mismatchError(input: BootstrapInput, detail: string): ConfigError {
  const own = input.initialCluster.find((m) => m.name === input.name)?.peerUrls ?? [];
  const advertised = [...input.initialAdvertisePeerUrls].sort();
  const apStr = advertised.join(',');
  const missingFromAdvertise = own.filter((u) => !advertised.includes(u));
  if (missingFromAdvertise.length > 0) {
    const mstr = missingFromAdvertise.map((u) => `${input.name}=${u}`).join(',');
    return new ConfigError(`--initial-cluster has ${mstr} but missing from --initial-advertise-peer-urls=${apStr} (${detail})`);
  }
  // etcd prints this member's *advertised* URLs as the cluster it expected.
  const asCluster = advertised.map((u) => `${input.name}=${u}`).join(',');
  const missingFromCluster = advertised.filter((u) => !own.includes(u));
  if (missingFromCluster.length > 0) {
    return new ConfigError(`--initial-advertise-peer-urls has ${missingFromCluster.join(',')} but missing from --initial-cluster=${asCluster}`);
  }
  return new ConfigError(`failed to resolve ${apStr} to match --initial-cluster=${asCluster} (${detail})`);
}

function checkMembershipShape(input: BootstrapInput): void {
  if (!input.initialCluster.some((m) => m.name === input.name)) {
    throw new ConfigError(`couldn't find local name ${goQuote(input.name)} in the initial cluster configuration`);
  }
}

function checkDuplicatesAndEmpty(input: BootstrapInput): void {
  if (hasDuplicateUrl(input.initialCluster)) {
    throw new ConfigError(`initial cluster ${initialClusterString(input.initialCluster)} has duplicate url`);
  }
  if (initialClusterString(input.initialCluster) === '') {
    throw new ConfigError('initial cluster unset and no discovery URL found');
  }
}

/**
 * Everything decidable without DNS. Throws ConfigError with etcd's wording; returns
 * `{ needsDns: true }` when advertised and listed URLs differ only in ways DNS could explain.
 */
export function checkBootstrapSync(input: BootstrapInput): { needsDns: boolean } {
  checkMembershipShape(input);
  const own = input.initialCluster.find((m) => m.name === input.name)!.peerUrls;
  const advertised = input.initialAdvertisePeerUrls;
  const sameLength = own.length === advertised.length;
  const equalAsStrings = sameLength && [...own].sort().every((u, i) => u === [...advertised].sort()[i]);
  if (!equalAsStrings) {
    const dnsCouldHelp = sameLength && [...own, ...advertised].some(needsDns);
    if (dnsCouldHelp) {
      checkDuplicatesAndEmpty(input);
      return { needsDns: true };
    }
    const detail = sameLength ? syncDetail(advertised, own) : `len(${goQuoteList([...advertised].sort())}) != len(${goQuoteList([...own].sort())})`;
    throw mismatchError(input, detail);
  }
  checkDuplicatesAndEmpty(input);
  return { needsDns: false };
}

/** Hosts that are IPs or localhost "resolve" to themselves, so the first differing pair is the answer. */
function syncDetail(a: readonly string[], b: readonly string[]): string {
  const sa = [...a].sort();
  const sb = [...b].sort();
  const i = sa.findIndex((u, k) => u !== sb[k]);
  return `resolved urls: ${goQuote(sa[i]!)} != ${goQuote(sb[i]!)}`;
}

/** Resolve a URL's host to `ip:port` the way etcd does before comparing (localhost and unix stay). */
export async function resolveUrlHost(urlText: string): Promise<string> {
  const u = parseEtcdUrl(urlText);
  if (u.isUnix) return u.text;
  const hp = splitHostPort(u.host);
  if (hp === null) throw new Error(`failed to resolve ${goQuote(urlText)} (address ${u.host}: missing port in address)`);
  if (hp.hostname === 'localhost' || isIP(hp.hostname) !== 0) return u.text;
  try {
    const { address, family } = await lookup(hp.hostname);
    const host = family === 6 ? `[${address}]:${hp.port}` : `${address}:${hp.port}`;
    return `${u.scheme}://${host}`;
  } catch (e) {
    throw new Error(`failed to resolve ${goQuote(urlText)} (${(e as Error).message})`);
  }
}

/**
 * The full bootstrap verification etcd runs for a member with an empty data dir, including DNS
 * resolution of host names. Throws ConfigError with etcd's messages.
 */
export async function verifyBootstrap(input: BootstrapInput, resolve: Resolver = resolveUrlHost): Promise<void> {
  checkMembershipShape(input);
  const own = input.initialCluster.find((m) => m.name === input.name)!.peerUrls;
  const detail = await compareUrlLists(input.initialAdvertisePeerUrls, own, resolve);
  if (detail !== null) throw mismatchError(input, detail);
  checkDuplicatesAndEmpty(input);
}
