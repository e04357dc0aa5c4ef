import { isIP } from 'node:net';
import { ValueError, goQuote } from './errors.js';

export type EtcdUrlScheme = 'http' | 'https' | 'unix' | 'unixs';

const SCHEMES: ReadonlySet<string> = new Set(['http', 'https', 'unix', 'unixs']);

/**
 * A URL as etcd keeps it (Go's net/url), not as WHATWG `URL` does.
 *
 * Why not `URL`: WHATWG drops a port equal to the scheme default (`http://10.0.0.1:80` becomes
 * port '') and serialises with a trailing '/'. etcd hashes the *string* form of peer URLs into
 * member IDs and shows it in `member list`, so the text must stay byte-identical to what the
 * operator typed (`http://10.0.0.1:80`, no slash), and a listener must bind the port written.
 */
export class EtcdUrl {
  readonly scheme: EtcdUrlScheme;
  /** `host:port` as written: `127.0.0.1:2379`, `[::1]:2379`, `localhost:2379`; for unix the socket name. */
  readonly host: string;
  /** Host without brackets or port: `127.0.0.1`, `::1`, `localhost`. */
  readonly hostname: string;
  /** Port digits as written, '' when absent (only possible for unix URLs or `host:`). */
  readonly port: string;
  /** Path part (only unix URLs may carry one). */
  readonly path: string;
  /** etcd's string form, e.g. `http://127.0.0.1:2379`. */
  readonly text: string;

  constructor(fields: { scheme: EtcdUrlScheme; host: string; hostname: string; port: string; path: string }) {
    this.scheme = fields.scheme;
    this.host = fields.host;
    this.hostname = fields.hostname;
    this.port = fields.port;
    this.path = fields.path;
    this.text = `${fields.scheme}://${fields.host}${fields.path}`;
    Object.freeze(this);
  }

  /** True for https and unixs: the listener/dialer must use TLS. */
  get secure(): boolean {
    return this.scheme === 'https' || this.scheme === 'unixs';
  }

  /** True for unix and unixs: a Unix domain socket, not TCP. */
  get isUnix(): boolean {
    return this.scheme === 'unix' || this.scheme === 'unixs';
  }

  /** Port as a number (0 when absent). */
  get portNumber(): number {
    return this.port === '' ? 0 : Number(this.port);
  }

  /** For unix URLs: the socket path etcd would listen on (its host part, or the path for `unix:///x`). */
  get socketPath(): string {
    return this.host !== '' ? this.host + this.path : this.path;
  }

  /**
   * A WHATWG URL for APIs that need one (fetch, http.request). Mind that it drops a default
   * port from `.port` and adds a trailing '/' to `.href`; use `text`/`port` for etcd semantics.
   */
  toURL(): URL {
    return new URL(this.text);
  }

  toString(): string {
    return this.text;
  }

  toJSON(): string {
    return this.text;
  }
}

interface HostPort {
  hostname: string;
  port: string;
}

/** Go's net.SplitHostPort, returning null where Go returns an error. */
export function splitHostPort(hostport: string): HostPort | null {
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) return null;
    const after = hostport.slice(close + 1);
    if (!after.startsWith(':')) return null;
    const hostname = hostport.slice(1, close);
    const port = after.slice(1);
    if (port.includes(':') || port.includes('[') || port.includes(']')) return null;
    return { hostname, port };
  }
  const lastColon = hostport.lastIndexOf(':');
  if (lastColon < 0) return null; // missing port
  const hostname = hostport.slice(0, lastColon);
  if (hostname.includes(':') || hostname.includes('[') || hostname.includes(']')) return null; // too many colons
  return { hostname, port: hostport.slice(lastColon + 1) };
}

// Characters Go's url.Parse accepts in a host (RFC 3986 reg-name / IP literal, plus '%' escapes).
const HOST_CHARS = /^[A-Za-z0-9.\-_~!$&'()*+,;=%:[\]]*$/;

/**
 * Parse one URL the way etcd's `types.NewURLs` does, with etcd's error wording
 * (`URL scheme must be http, https, unix, or unixs: x`, `URL address does not have the form "host:port": x`,
 * `URL must not contain a path: x`, Go's own `parse "x": ...` errors).
 * tsetcd additionally rejects user info, query and fragment, which etcd silently carries along.
 */
export function parseEtcdUrl(input: string): EtcdUrl {
  const s = input.trim();
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s);
  if (schemeMatch === null) {
    const firstSlash = s.indexOf('/');
    const colon = s.indexOf(':');
    if (colon >= 0 && (firstSlash < 0 || colon < firstSlash)) {
      throw new ValueError(`parse ${goQuote(s)}: first path segment in URL cannot contain colon`);
    }
    throw new ValueError(`URL scheme must be http, https, unix, or unixs: ${s}`);
  }
  const scheme = schemeMatch[1]!.toLowerCase();
  if (!SCHEMES.has(scheme)) {
    throw new ValueError(`URL scheme must be http, https, unix, or unixs: ${s}`);
  }
  const rest = s.slice(schemeMatch[0].length);
  if (!rest.startsWith('//')) {
    throw new ValueError(`URL address does not have the form "host:port": ${s}`);
  }
  const afterSlashes = rest.slice(2);
  const authorityEnd = afterSlashes.search(/[/?#]/);
  const authority = authorityEnd < 0 ? afterSlashes : afterSlashes.slice(0, authorityEnd);
  const remainder = authorityEnd < 0 ? '' : afterSlashes.slice(authorityEnd);
  if (authority.includes('@')) {
    throw new ValueError(`URL must not contain user information: ${s}`);
  }
  if (remainder.includes('?') || remainder.includes('#')) {
    throw new ValueError(`URL must not contain a query or fragment: ${s}`);
  }
  if (!HOST_CHARS.test(authority)) {
    const bad = [...authority].find((c) => !HOST_CHARS.test(c)) ?? '';
    throw new ValueError(`parse ${goQuote(s)}: invalid character ${goQuote(bad)} in host name`);
  }
  const portMatch = /:([^:\]]*)$/.exec(authority);
  if (portMatch !== null && !/^[0-9]*$/.test(portMatch[1]!)) {
    throw new ValueError(`parse ${goQuote(s)}: invalid port ${goQuote(':' + portMatch[1]!)} after host`);
  }
  if (portMatch !== null && portMatch[1] !== '' && Number(portMatch[1]) > 65535) {
    throw new ValueError(`parse ${goQuote(s)}: invalid port ${goQuote(':' + portMatch[1]!)} after host`);
  }
  const typedScheme = scheme as EtcdUrlScheme;
  if (typedScheme === 'unix' || typedScheme === 'unixs') {
    // etcd performs no host:port check for unix sockets; the host part names the socket file.
    const hp = splitHostPort(authority);
    return new EtcdUrl({
      scheme: typedScheme,
      host: authority,
      hostname: hp?.hostname ?? authority,
      port: hp?.port ?? '',
      path: remainder,
    });
  }
  const hp = splitHostPort(authority);
  if (hp === null) {
    throw new ValueError(`URL address does not have the form "host:port": ${s}`);
  }
  if (remainder !== '') {
    throw new ValueError(`URL must not contain a path: ${s}`);
  }
  return new EtcdUrl({ scheme: typedScheme, host: authority, hostname: hp.hostname, port: hp.port, path: '' });
}

/**
 * Parse a comma-separated URL list like etcd's URL flags: every element must parse, duplicates
 * are dropped and the result is sorted by string form (etcd sorts, and member IDs depend on the order).
 */
export function parseEtcdUrlList(value: string): EtcdUrl[] {
  const parts = value.split(',');
  const byText = new Map<string, EtcdUrl>();
  for (const part of parts) {
    const u = parseEtcdUrl(part);
    if (!byText.has(u.text)) byText.set(u.text, u);
  }
  return sortUrls([...byText.values()]);
}

export function sortUrls(urls: readonly EtcdUrl[]): EtcdUrl[] {
  return [...urls].sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

/**
 * etcd's bind check: a listen URL must name an IP address or `localhost`, because a listener
 * binds an address, and a DNS name could resolve to an address this machine does not have.
 * Returns etcd's error text, or null when every URL is acceptable.
 */
export function bindUrlProblem(urls: readonly EtcdUrl[]): string | null {
  for (const u of urls) {
    if (u.isUnix) continue;
    if (u.hostname === 'localhost') continue;
    if (isIP(u.hostname) === 0) return `expected IP in URL for binding (${u.text})`;
  }
  return null;
}

/** etcd's advertise check: each URL needs a non-empty host. Returns the inner error text or null. */
export function hostUrlProblem(urls: readonly EtcdUrl[]): string | null {
  for (const u of urls) {
    const hp = splitHostPort(u.host);
    if (hp === null) return `address ${u.host}: missing port in address`;
    if (hp.hostname === '') return `unexpected empty host (${u.text})`;
  }
  return null;
}
