import { randomInt } from 'node:crypto';
import { parseGoDurationNs, nsToMs } from '../cli/values.js';
import { JwtConfigError, loadJwtKeys, signJwt, verifyJwt, type JwtKeys } from './jwt.js';

// Auth tokens, as `--auth-token` configures them:
//   simple  a random prefix plus the Raft index of the Authenticate entry ("AbCd…xyz.42").
//           Every member registers the token when it applies that entry, so any member
//           accepts it; each member expires it after --auth-token-ttl seconds without use.
//           Tokens live in memory only: a restarted member has forgotten them (clients
//           re-authenticate on "invalid auth token", as with etcd).
//   jwt     a signed JWT carrying the user name and the auth revision; any member holding
//           the public key verifies it without shared state.

export const SIMPLE_TOKEN_PREFIX_CHARS = 16;
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** etcd's default JWT lifetime when `ttl=` is not given. */
export const DEFAULT_JWT_TTL_MS = 5 * 60 * 1000;
/** Expired simple tokens are swept at most this often (lookups also check expiry). */
const SWEEP_INTERVAL_MS = 1000;

export type AuthTokenConfig =
  | { kind: 'simple'; ttlMs: number }
  | { kind: 'jwt'; ttlMs: number; keys: JwtKeys };

export class AuthTokenOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthTokenOptionError';
  }
}

/**
 * Parses `--auth-token`: "simple", or "jwt,pub-key=<file>,priv-key=<file>,sign-method=<alg>[,ttl=<go duration>]".
 * Like etcd: options are comma-separated key=value pairs, no key twice; unknown jwt options
 * are reported through `warn` and ignored.
 */
export function parseAuthTokenOption(option: string, simpleTtlSec: number, warn: (msg: string) => void = () => {}): AuthTokenConfig {
  const parts = option.split(',');
  const kind = parts[0]!;
  const opts = new Map<string, string>();
  for (const part of parts.slice(1)) {
    const kv = part.split('=');
    if (kv.length !== 2) throw new AuthTokenOptionError(`--auth-token ${JSON.stringify(option)}: option ${JSON.stringify(part)} is not key=value`);
    if (opts.has(kv[0]!)) throw new AuthTokenOptionError(`--auth-token ${JSON.stringify(option)}: option ${kv[0]} given twice`);
    opts.set(kv[0]!, kv[1]!);
  }
  if (kind === 'simple') {
    if (opts.size > 0) warn(`--auth-token simple takes no options; ignoring ${[...opts.keys()].join(', ')}`);
    // etcd: a TTL of 0 means its default of 300 s.
    return { kind: 'simple', ttlMs: (simpleTtlSec > 0 ? simpleTtlSec : 300) * 1000 };
  }
  if (kind === 'jwt') {
    const unknown = [...opts.keys()].filter((k) => !['pub-key', 'priv-key', 'sign-method', 'ttl'].includes(k));
    if (unknown.length > 0) warn(`unknown JWT options ignored: ${unknown.join(', ')}`);
    let ttlMs = DEFAULT_JWT_TTL_MS;
    const ttl = opts.get('ttl');
    if (ttl) {
      try {
        ttlMs = nsToMs(parseGoDurationNs(ttl));
      } catch {
        throw new AuthTokenOptionError(`--auth-token jwt: ttl=${ttl} is not a duration (e.g. 5m, 1h)`);
      }
      if (ttlMs <= 0) throw new AuthTokenOptionError(`--auth-token jwt: ttl=${ttl} must be positive`);
    }
    try {
      const keys = loadJwtKeys(opts.get('sign-method') ?? '', opts.get('priv-key') || undefined, opts.get('pub-key') || undefined);
      return { kind: 'jwt', ttlMs, keys };
    } catch (e) {
      if (e instanceof JwtConfigError) throw new AuthTokenOptionError(e.message);
      throw e;
    }
  }
  throw new AuthTokenOptionError(`--auth-token ${JSON.stringify(option)}: unknown token type ${JSON.stringify(kind)} (use simple or jwt,...)`);
}

/** Who a token speaks for, and the auth revision it was issued at (0 = checked live). */
export interface TokenInfo {
  username: string;
  revision?: number;
}

// ------------------------------------------------------------------ simple tokens

export function newSimpleTokenPrefix(): string {
  let s = '';
  for (let i = 0; i < SIMPLE_TOKEN_PREFIX_CHARS; i++) s += LETTERS[randomInt(LETTERS.length)];
  return s;
}

/** Splits "prefix.index"; undefined when the token cannot be a simple token. */
export function parseSimpleToken(token: string): { prefix: string; index: number } | undefined {
  const parts = token.split('.');
  if (parts.length !== 2 || !/^[0-9]{1,16}$/.test(parts[1]!)) return undefined;
  const index = Number(parts[1]);
  return Number.isSafeInteger(index) ? { prefix: parts[0]!, index } : undefined;
}

/** The in-memory table of simple tokens on one member, with sliding expiry. */
export class SimpleTokens {
  private readonly tokens = new Map<string, { username: string; expiresAtMs: number }>();
  private lastSweepMs = 0;

  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.tokens.size;
  }

  assign(token: string, username: string): void {
    this.sweep();
    this.tokens.set(token, { username, expiresAtMs: this.now() + this.ttlMs });
  }

  /** The token's user, refreshing its expiry; undefined when unknown or expired. */
  lookup(token: string): string | undefined {
    this.sweep();
    const t = this.tokens.get(token);
    if (!t) return undefined;
    const now = this.now();
    if (now >= t.expiresAtMs) {
      this.tokens.delete(token);
      return undefined;
    }
    t.expiresAtMs = now + this.ttlMs;
    return t.username;
  }

  invalidateUser(username: string): void {
    for (const [token, t] of this.tokens) if (t.username === username) this.tokens.delete(token);
  }

  clear(): void {
    this.tokens.clear();
  }

  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweepMs < SWEEP_INTERVAL_MS) return;
    this.lastSweepMs = now;
    for (const [token, t] of this.tokens) if (now >= t.expiresAtMs) this.tokens.delete(token);
  }
}

// ------------------------------------------------------------------ JWT tokens

export class JwtTokens {
  constructor(
    readonly keys: JwtKeys,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get canSign(): boolean {
    return this.keys.signingKey !== undefined;
  }

  sign(username: string, revision: number): string {
    return signJwt(this.keys, { username, revision, exp: Math.floor((this.now() + this.ttlMs) / 1000) });
  }

  verify(token: string): { info: TokenInfo } | { error: string } {
    const r = verifyJwt(this.keys, token, this.now());
    if ('error' in r) return r;
    return { info: { username: r.claims.username, revision: r.claims.revision } };
  }
}
