import type { Metadata } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { RequestOp, TxnRequest } from '../mvcc/types.js';
import { certCommonName, type CallIdentitySource } from '../api/tls-identity.js';
import { AuthErrors } from './errors.js';
import { bcryptHasher, type PasswordHasher } from './hasher.js';
import type { AuthInfo, AuthOp, AuthStore, AuthStoreListener, Requester } from './store.js';
import {
  JwtTokens, SimpleTokens, newSimpleTokenPrefix, parseSimpleToken, type AuthTokenConfig,
} from './tokens.js';

// The API layer's door to auth: who is calling (token in the gRPC metadata "token" or
// "authorization", else the client certificate's CN under --client-cert-auth), whether
// that identity may do what the request asks (etcd's per-operation rules), and the
// Authenticate flow. Every KV, Watch, Lease, Maintenance and Cluster handler calls
// `check(call, request)` first; with auth disabled it costs one flag test.

/** What a gRPC handler passes: the call (metadata, and its peer/TLS connection for the CN). */
export interface AuthCall extends CallIdentitySource {
  metadata: Metadata;
}

/** A request's access needs, in the terms etcd checks them. Keys are raw bytes. */
export type PermissionRequest =
  | { op: 'range'; key: Buffer; rangeEnd?: Buffer }
  /** Write on the key; read too with prevKv; write on every key attached to `lease`. */
  | { op: 'put'; key: Buffer; prevKv?: boolean; lease?: bigint }
  | { op: 'deleteRange'; key: Buffer; rangeEnd?: Buffer; prevKv?: boolean }
  /** Read on every compared key; each op of both branches (nested txns included). */
  | { op: 'txn'; txn: TxnRequest }
  /** Read on the watched key or range (an empty key means from "\x00"). */
  | { op: 'watch'; key: Buffer; rangeEnd?: Buffer }
  /** Write on every key attached to the lease. */
  | { op: 'leaseRevoke'; id: bigint }
  /** Read on every key attached to the lease. */
  | { op: 'leaseTimeToLive'; id: bigint }
  /** Root only: auth management, compaction, defragment, snapshot, hashes, alarms, members. */
  | { op: 'admin' };

export interface AuthGateDeps {
  store: AuthStore;
  logger: Logger;
  tokens: AuthTokenConfig;
  /** bcrypt cost for new password hashes (--bcrypt-cost). */
  bcryptCost: number;
  /** --client-cert-auth: a verified client certificate's CN names the user when no token is sent. */
  clientCertAuth: boolean;
  /**
   * The CN of the verified client certificate a call came in with (the TLS layer's hook,
   * src/api/tls-identity.ts, unless a test substitutes it).
   */
  certCommonName?: (call: AuthCall) => string | undefined;
  hasher?: PasswordHasher;
  /** Proposes an auth change through Raft; resolves with the applied result. */
  propose(op: AuthOp): Promise<Record<string, unknown>>;
  /** Resolves once this member has applied everything committed (ReadIndex). */
  linearizableRead(): Promise<void>;
  appliedIndex(): number;
  committedIndex(): number;
  waitApplied(index: number): Promise<void>;
  /** Keys attached to a lease (empty when the lease does not exist). */
  leaseKeys(id: bigint): Buffer[];
}

const MAX_TOKEN_CHARS = 8192;
/**
 * How long a simple token naming a Raft index this member has not seen committed may wait
 * for it: long enough for a follower a few heartbeats behind the member that issued it, short
 * enough that made-up tokens cannot hold requests for the whole request timeout.
 */
const UNSEEN_TOKEN_INDEX_WAIT_MS = 2000;
const ZERO_KEY = Buffer.from([0]);

function firstString(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.toString('utf8');
}

export class AuthGate implements AuthStoreListener {
  readonly store: AuthStore;
  private readonly hasher: PasswordHasher;
  private readonly simple?: SimpleTokens;
  private readonly jwt?: JwtTokens;
  private dummyHash?: Promise<string>;

  constructor(private readonly deps: AuthGateDeps) {
    this.store = deps.store;
    this.hasher = deps.hasher ?? bcryptHasher;
    if (deps.tokens.kind === 'simple') this.simple = new SimpleTokens(deps.tokens.ttlMs);
    else this.jwt = new JwtTokens(deps.tokens.keys, deps.tokens.ttlMs);
    this.store.listener = this;
  }

  get enabled(): boolean {
    return this.store.enabled;
  }

  // ------------------------------------------------------------------ identity

  /**
   * The caller's identity: from its token, else (with --client-cert-auth) its certificate
   * CN, else none. A token that is not valid here fails with "invalid auth token" (clients
   * re-authenticate on it).
   */
  async identity(call: AuthCall): Promise<AuthInfo | undefined> {
    const md = call.metadata;
    const token = firstString(md, 'token') ?? firstString(md, 'authorization');
    if (token !== undefined) {
      const info = await this.tokenInfo(token);
      if (!info) {
        // Never log the token itself: it is a credential.
        this.deps.logger.warn('invalid auth token', { 'token-length': token.length, reason: this.jwt ? 'not a valid JWT for this cluster' : 'unknown or expired simple token' });
        throw AuthErrors.invalidAuthToken();
      }
      return info;
    }
    if (this.deps.clientCertAuth) {
      const cn = (this.deps.certCommonName ?? certCommonName)(call);
      // etcd ignores the CN of requests relayed by its gRPC gateway (the gateway's own certificate).
      if (cn !== undefined && md.get('grpcgateway-accept').length === 0) return { username: cn, revision: this.store.revision };
    }
    return undefined;
  }

  private async tokenInfo(token: string): Promise<AuthInfo | undefined> {
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) return undefined;
    if (this.jwt) {
      const r = this.jwt.verify(token);
      if ('error' in r) {
        this.deps.logger.debug('rejected JWT', { error: r.error });
        return undefined;
      }
      return { username: r.info.username, revision: r.info.revision ?? 0 };
    }
    const parsed = parseSimpleToken(token);
    if (!parsed) return undefined;
    // A token made by an Authenticate entry this member has not applied yet: wait for it.
    if (parsed.index > this.deps.appliedIndex()) {
      const unseen = parsed.index > this.deps.committedIndex();
      let timer: NodeJS.Timeout | undefined;
      try {
        await (unseen
          ? Promise.race([
            this.deps.waitApplied(parsed.index),
            new Promise<void>((_resolve, reject) => (timer = setTimeout(() => reject(new Error('token index not committed')), UNSEEN_TOKEN_INDEX_WAIT_MS))),
          ])
          : this.deps.waitApplied(parsed.index));
      } catch {
        return undefined;
      } finally {
        clearTimeout(timer);
      }
    }
    const username = this.simple!.lookup(token);
    return username === undefined ? undefined : { username, revision: this.store.revision };
  }

  // ------------------------------------------------------------------ permission checks

  /** Throws etcd's error unless the caller may do `req`; a no-op while auth is disabled. */
  async check(call: AuthCall, req: PermissionRequest): Promise<void> {
    if (!this.store.enabled) return;
    const ai = await this.identity(call);
    this.checkIdentity(ai, req);
  }

  /** The same rules for an identity already resolved (watch streams, tests). */
  checkIdentity(ai: AuthInfo | undefined, req: PermissionRequest): void {
    const s = this.store;
    if (!s.enabled) return;
    switch (req.op) {
      case 'range':
        s.checkRange(ai, req.key, req.rangeEnd);
        return;
      case 'put':
        this.checkPut(ai, req.key, req.prevKv, req.lease);
        return;
      case 'deleteRange':
        s.checkDeleteRange(ai, req.key, req.rangeEnd);
        if (req.prevKv) s.checkRange(ai, req.key, req.rangeEnd);
        return;
      case 'txn':
        this.checkTxn(ai, req.txn);
        return;
      case 'watch': {
        // An empty key watches from the smallest key; a "\x00" range end means every key from it on.
        const key = req.key.length === 0 ? ZERO_KEY : req.key;
        s.checkRange(ai, key, req.rangeEnd);
        return;
      }
      case 'leaseRevoke':
        if (!ai) throw AuthErrors.userEmpty();
        for (const k of this.deps.leaseKeys(req.id)) s.checkPut(ai, k);
        return;
      case 'leaseTimeToLive':
        if (!ai) throw AuthErrors.userEmpty();
        for (const k of this.deps.leaseKeys(req.id)) s.checkRange(ai, k);
        return;
      case 'admin':
        s.checkAdmin(ai);
        return;
      default:
        throw new Error(`auth gate: unknown permission request ${JSON.stringify((req as { op: unknown }).op)}`);
    }
  }

  private checkPut(ai: AuthInfo | undefined, key: Buffer, prevKv?: boolean, lease?: bigint): void {
    const s = this.store;
    s.checkPut(ai, key);
    // Attaching a key to a lease lets the lease's owner delete it: write on the lease's keys too.
    if (lease !== undefined && lease !== 0n) for (const k of this.deps.leaseKeys(lease)) s.checkPut(ai, k);
    if (prevKv) s.checkRange(ai, key);
  }

  private checkTxn(ai: AuthInfo | undefined, txn: TxnRequest): void {
    const s = this.store;
    for (const c of txn.compare ?? []) s.checkRange(ai, c.key, c.rangeEnd);
    for (const op of [...(txn.success ?? []), ...(txn.failure ?? [])]) this.checkTxnOp(ai, op);
  }

  private checkTxnOp(ai: AuthInfo | undefined, op: RequestOp): void {
    const s = this.store;
    if (op.requestRange) s.checkRange(ai, op.requestRange.key, op.requestRange.rangeEnd);
    else if (op.requestPut) this.checkPut(ai, op.requestPut.key, op.requestPut.prevKv, op.requestPut.lease);
    else if (op.requestDeleteRange) {
      const d = op.requestDeleteRange;
      s.checkDeleteRange(ai, d.key, d.rangeEnd);
      if (d.prevKv) s.checkRange(ai, d.key, d.rangeEnd);
    } else if (op.requestTxn) this.checkTxn(ai, op.requestTxn);
  }

  /**
   * For auth management: checks the caller is root (when auth is enabled) and returns the
   * identity to put in the proposal, so the apply step checks it again in log order.
   */
  async adminRequester(call: AuthCall): Promise<Requester | undefined> {
    // While auth is disabled anyone may manage it; if it gets enabled before the change
    // applies, the apply step refuses the anonymous change ("user name is empty").
    if (!this.store.enabled) return undefined;
    const ai = await this.identity(call);
    this.store.checkAdmin(ai);
    return ai ? { user: ai.username, rev: ai.revision } : undefined;
  }

  // ------------------------------------------------------------------ passwords and tokens

  async hashPassword(password: string): Promise<string> {
    return this.hasher.hash(password, this.deps.bcryptCost);
  }

  isPasswordHash(hash: string): boolean {
    return this.hasher.isHash(hash);
  }

  /** Checks a user's password against the store; etcd's errors on failure. */
  async checkPassword(name: string, password: string): Promise<void> {
    const s = this.store;
    if (!s.enabled) throw AuthErrors.authNotEnabled();
    const user = s.getUser(name);
    if (!user) {
      // Spend the same time as for a wrong password, so response times do not reveal user names.
      await this.hasher.verify(password, await this.dummyPasswordHash());
      throw AuthErrors.authFailed();
    }
    if (user.noPassword) throw AuthErrors.noPasswordUser();
    if (!(await this.hasher.verify(password, user.password))) {
      this.deps.logger.info('invalid password', { 'user-name': name });
      throw AuthErrors.authFailed();
    }
  }

  private dummyPasswordHash(): Promise<string> {
    this.dummyHash ??= this.hasher.hash(randomBytes(16).toString('hex'), this.deps.bcryptCost);
    return this.dummyHash;
  }

  /** The Authenticate RPC: verify the password, then issue a token (through Raft for simple tokens). */
  async authenticate(name: string, password: string): Promise<string> {
    if (!this.store.enabled) throw AuthErrors.authNotEnabled();
    await this.deps.linearizableRead();
    try {
      await this.checkPassword(name, password);
    } catch (e) {
      if ((e as Error).message !== AuthErrors.authNotEnabled().message) {
        this.deps.logger.warn('invalid authentication was requested', { user: name, error: (e as Error).message });
      }
      throw e;
    }
    let token: string;
    if (this.jwt) {
      if (!this.jwt.canSign) throw AuthErrors.verifyOnly();
      token = this.jwt.sign(name, this.store.revision);
    } else {
      const res = await this.deps.propose({ op: 'authenticate', name, prefix: newSimpleTokenPrefix() });
      token = String(res.token);
    }
    this.deps.logger.debug('authenticated a user', { 'user-name': name });
    return token;
  }

  // ------------------------------------------------------------------ AuthStoreListener

  onTokenAssigned(token: string, username: string): void {
    this.simple?.assign(token, username);
  }

  onUserInvalidated(username: string): void {
    this.simple?.invalidateUser(username);
  }

  onEnabledChanged(enabled: boolean): void {
    if (!enabled) this.simple?.clear();
  }
}
