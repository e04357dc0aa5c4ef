import type { Backend } from '../backend/index.js';
import { Bucket } from '../backend/index.js';
import type { Logger } from '../log/logger.js';
import { type } from '../server/pb.js';
import { AuthErrors } from './errors.js';
import { PermType, RangePermissions, type Permission } from './perms.js';

// The replicated auth state: users (bcrypt hashes, never clear text), roles with key
// permissions, the enabled flag and the auth revision. It changes only by applying
// committed Raft entries (RequestKind.Auth), synchronously and in the same backend batch
// as the applied index, so every member holds the same state and a restart replays exactly
// what the backend has not seen. The layout is etcd's: buckets authUsers / authRoles hold
// authpb.User / authpb.Role protobufs keyed by name; bucket auth holds "authEnabled" (one
// byte) and "authRevision" (uint64 big-endian).
//
// Rules (etcd's): auth can be enabled only when the user "root" exists and has the role
// "root"; a user with the root role may do everything; while auth is enabled root cannot be
// deleted, lose the root role, nor can the root role be deleted. The auth revision goes up
// with every change that can affect permissions, so a token issued before the change
// (JWT carries its revision) is refused with "revision of auth store is old".

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

const ENABLED_KEY = Buffer.from('authEnabled');
const REVISION_KEY = Buffer.from('authRevision');

export interface UserRecord {
  name: string;
  /** bcrypt hash; '' for a user added with --no-password (it can only authenticate by certificate CN). */
  password: string;
  /** Sorted, as etcd keeps them. */
  roles: string[];
  noPassword: boolean;
}

export interface RoleRecord {
  name: string;
  /** Sorted by key (then range end). */
  perms: Permission[];
}

/** The identity a request carries: a user name and the auth revision its token was issued at. */
export interface AuthInfo {
  username: string;
  revision: number;
}

/** Who asked for an auth change (checked again when the entry applies). */
export interface Requester {
  user: string;
  rev: number;
}

/**
 * Auth changes as they travel through Raft (JSON). Binary keys are base64. Passwords are
 * already hashed by the member that received the request.
 */
export type AuthOp = { by?: Requester } & (
  | { op: 'enable' }
  | { op: 'disable' }
  | { op: 'userAdd'; name: string; password: string; noPassword: boolean }
  | { op: 'userDelete'; name: string }
  | { op: 'userChangePassword'; name: string; password: string }
  | { op: 'userGrantRole'; user: string; role: string }
  | { op: 'userRevokeRole'; name: string; role: string }
  | { op: 'roleAdd'; name: string }
  | { op: 'roleDelete'; role: string }
  | { op: 'roleGrantPermission'; name: string; permType: PermType; key: string; rangeEnd: string }
  | { op: 'roleRevokePermission'; role: string; key: string; rangeEnd: string }
  /** Registers a simple token "<prefix>.<entry index>" on every member. */
  | { op: 'authenticate'; name: string; prefix: string }
);

/** What the store tells the token layer (simple tokens are per-member memory). */
export interface AuthStoreListener {
  onTokenAssigned(token: string, username: string): void;
  onUserInvalidated(username: string): void;
  onEnabledChanged(enabled: boolean): void;
}

/** The backend calls the store makes (a real Backend in production and tests). */
export type AuthBackend = Pick<Backend, 'put' | 'del' | 'iterate' | 'get'>;

function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function comparePerms(a: Permission, b: Permission): number {
  return Buffer.compare(a.key, b.key) || Buffer.compare(a.rangeEnd, b.rangeEnd);
}

export class AuthStore {
  private enabledFlag = false;
  /** etcd starts a fresh store at revision 1. */
  private rev = 1;
  private users = new Map<string, UserRecord>();
  private roles = new Map<string, RoleRecord>();
  private readonly permCache = new Map<string, RangePermissions>();
  private backend?: AuthBackend;
  listener?: AuthStoreListener;

  constructor(private readonly logger: Logger) {}

  /** Loads the state from the backend (at start, and after a snapshot replaced the backend). */
  async load(backend: AuthBackend): Promise<void> {
    const users = new Map<string, UserRecord>();
    const roles = new Map<string, RoleRecord>();
    for await (const [, value] of backend.iterate(Bucket.AuthUsers)) {
      const u = decodeUser(value);
      users.set(u.name, u);
    }
    for await (const [, value] of backend.iterate(Bucket.AuthRoles)) {
      const r = decodeRole(value);
      roles.set(r.name, r);
    }
    const enabled = await backend.get(Bucket.Auth, ENABLED_KEY);
    const rev = await backend.get(Bucket.Auth, REVISION_KEY);
    this.backend = backend;
    this.users = users;
    this.roles = roles;
    this.permCache.clear();
    this.rev = rev && rev.length === 8 ? Number(rev.readBigUInt64BE(0)) : 1;
    const wasEnabled = this.enabledFlag;
    this.enabledFlag = enabled !== undefined && enabled.length === 1 && enabled[0] === 1;
    if (wasEnabled !== this.enabledFlag) this.listener?.onEnabledChanged(this.enabledFlag);
  }

  // ------------------------------------------------------------------ queries

  get enabled(): boolean {
    return this.enabledFlag;
  }

  get revision(): number {
    return this.rev;
  }

  getUser(name: string): UserRecord | undefined {
    return this.users.get(name);
  }

  getRole(name: string): RoleRecord | undefined {
    return this.roles.get(name);
  }

  userNames(): string[] {
    return [...this.users.keys()].sort(compareNames);
  }

  roleNames(): string[] {
    return [...this.roles.keys()].sort(compareNames);
  }

  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) ?? false;
  }

  // ------------------------------------------------------------------ permission checks

  /** Root-only operations (auth management, defrag, member changes, ...). */
  checkAdmin(ai: AuthInfo | undefined): void {
    if (!this.enabledFlag) return;
    if (!ai || ai.username === '') throw AuthErrors.userEmpty();
    const u = this.users.get(ai.username);
    if (!u) throw AuthErrors.userNotFound();
    if (!u.roles.includes(ROOT_ROLE)) throw AuthErrors.permissionDenied();
  }

  checkRange(ai: AuthInfo | undefined, key: Buffer, rangeEnd?: Buffer): void {
    this.checkOp(ai, 'read', key, rangeEnd);
  }

  checkPut(ai: AuthInfo | undefined, key: Buffer): void {
    this.checkOp(ai, 'write', key);
  }

  checkDeleteRange(ai: AuthInfo | undefined, key: Buffer, rangeEnd?: Buffer): void {
    this.checkOp(ai, 'write', key, rangeEnd);
  }

  private checkOp(ai: AuthInfo | undefined, type: 'read' | 'write', key: Buffer, rangeEnd?: Buffer): void {
    if (!this.enabledFlag) return;
    if (!ai || ai.revision === 0) throw AuthErrors.userEmpty();
    if (ai.revision < this.rev) throw AuthErrors.authOldRevision();
    const u = this.users.get(ai.username);
    if (!u) {
      this.logger.warn('cannot find a user for permission check', { 'user-name': ai.username });
      throw AuthErrors.permissionDenied();
    }
    if (u.roles.includes(ROOT_ROLE)) return;
    if (!this.permissionsOf(u).allows(type, key, rangeEnd)) throw AuthErrors.permissionDenied();
  }

  private permissionsOf(u: UserRecord): RangePermissions {
    let p = this.permCache.get(u.name);
    if (!p) {
      const perms: Permission[] = [];
      for (const r of u.roles) perms.push(...(this.roles.get(r)?.perms ?? []));
      p = RangePermissions.fromPermissions(perms);
      this.permCache.set(u.name, p);
    }
    return p;
  }

  // ------------------------------------------------------------------ apply

  /**
   * Applies one committed auth change; returns the response fields (the caller adds the
   * header). Throws the etcd error for a refused change; a refused change writes nothing.
   */
  apply(op: AuthOp, index: number): Record<string, unknown> {
    if (op.op !== 'authenticate') {
      // The proposer checked too, but the state may have changed since: this check, made
      // at the same point of the log on every member, is the one that counts.
      this.checkAdmin(op.by ? { username: op.by.user, revision: op.by.rev } : undefined);
    }
    switch (op.op) {
      case 'enable':
        return this.enable();
      case 'disable':
        return this.disable();
      case 'userAdd':
        return this.userAdd(op.name, op.password, op.noPassword);
      case 'userDelete':
        return this.userDelete(op.name);
      case 'userChangePassword':
        return this.userChangePassword(op.name, op.password);
      case 'userGrantRole':
        return this.userGrantRole(op.user, op.role);
      case 'userRevokeRole':
        return this.userRevokeRole(op.name, op.role);
      case 'roleAdd':
        return this.roleAdd(op.name);
      case 'roleDelete':
        return this.roleDelete(op.role);
      case 'roleGrantPermission':
        return this.roleGrantPermission(op.name, {
          permType: op.permType, key: Buffer.from(op.key, 'base64'), rangeEnd: Buffer.from(op.rangeEnd, 'base64'),
        });
      case 'roleRevokePermission':
        return this.roleRevokePermission(op.role, Buffer.from(op.key, 'base64'), Buffer.from(op.rangeEnd, 'base64'));
      case 'authenticate':
        return this.assignToken(op.name, op.prefix, index);
      default:
        throw new Error(`auth store: unknown operation ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }

  private enable(): Record<string, unknown> {
    if (this.enabledFlag) {
      this.logger.info('authentication is already enabled; ignored auth enable request');
      return {};
    }
    const root = this.users.get(ROOT_USER);
    if (!root) throw AuthErrors.rootUserNotExist();
    if (!root.roles.includes(ROOT_ROLE)) throw AuthErrors.rootRoleNotExist();
    this.enabledFlag = true;
    this.db().put(Bucket.Auth, ENABLED_KEY, Buffer.from([1]));
    // etcd does not bump the revision on enable: tokens can only be issued from now on anyway.
    this.listener?.onEnabledChanged(true);
    this.logger.info('enabled authentication');
    return {};
  }

  private disable(): Record<string, unknown> {
    if (!this.enabledFlag) return {};
    this.enabledFlag = false;
    this.db().put(Bucket.Auth, ENABLED_KEY, Buffer.from([0]));
    this.commitRevision();
    this.listener?.onEnabledChanged(false);
    this.logger.info('disabled authentication');
    return {};
  }

  private userAdd(name: string, password: string, noPassword: boolean): Record<string, unknown> {
    if (name === '') throw AuthErrors.userEmpty();
    if (this.users.has(name)) throw AuthErrors.userAlreadyExist();
    if (!noPassword && password === '') throw new Error('auth store: user add without a password hash');
    this.putUser({ name, password: noPassword ? '' : password, roles: [], noPassword });
    this.commitRevision();
    this.logger.info('added a user', { 'user-name': name });
    return {};
  }

  private userDelete(name: string): Record<string, unknown> {
    if (this.enabledFlag && name === ROOT_USER) {
      this.logger.warn("cannot delete 'root' user", { 'user-name': name });
      throw AuthErrors.invalidAuthMgmt();
    }
    const u = this.users.get(name);
    if (!u) throw AuthErrors.userNotFound();
    this.users.delete(name);
    this.db().del(Bucket.AuthUsers, Buffer.from(name, 'utf8'));
    this.commitRevision();
    this.listener?.onUserInvalidated(name);
    this.logger.info('deleted a user', { 'user-name': name, 'user-roles': u.roles });
    return {};
  }

  private userChangePassword(name: string, password: string): Record<string, unknown> {
    const u = this.users.get(name);
    if (!u) throw AuthErrors.userNotFound();
    if (password === '') throw new Error('auth store: change password without a password hash');
    this.putUser({ ...u, password });
    this.commitRevision();
    this.listener?.onUserInvalidated(name);
    this.logger.info('changed a password of a user', { 'user-name': name, 'user-roles': u.roles });
    return {};
  }

  private userGrantRole(name: string, role: string): Record<string, unknown> {
    const u = this.users.get(name);
    if (!u) throw AuthErrors.userNotFound();
    // The root role need not exist as a role to be granted (etcd's rule).
    if (role !== ROOT_ROLE && !this.roles.has(role)) throw AuthErrors.roleNotFound();
    if (u.roles.includes(role)) {
      this.logger.warn('ignored grant role request to a user', { 'user-name': name, 'user-roles': u.roles, 'duplicate-role-name': role });
      return {};
    }
    const roles = [...u.roles, role].sort();
    this.putUser({ ...u, roles });
    this.commitRevision();
    this.logger.info('granted a role to a user', { 'user-name': name, 'user-roles': roles, 'added-role-name': role });
    return {};
  }

  private userRevokeRole(name: string, role: string): Record<string, unknown> {
    if (this.enabledFlag && name === ROOT_USER && role === ROOT_ROLE) {
      this.logger.warn("'root' user cannot revoke 'root' role", { 'user-name': name, 'role-name': role });
      throw AuthErrors.invalidAuthMgmt();
    }
    const u = this.users.get(name);
    if (!u) throw AuthErrors.userNotFound();
    if (!u.roles.includes(role)) throw AuthErrors.roleNotGranted();
    const roles = u.roles.filter((r) => r !== role);
    this.putUser({ ...u, roles });
    this.commitRevision();
    this.logger.info('revoked a role from a user', { 'user-name': name, 'old-user-roles': u.roles, 'new-user-roles': roles, 'revoked-role-name': role });
    return {};
  }

  private roleAdd(name: string): Record<string, unknown> {
    if (name === '') throw AuthErrors.roleEmpty();
    if (this.roles.has(name)) throw AuthErrors.roleAlreadyExist();
    this.putRole({ name, perms: [] });
    this.commitRevision();
    this.logger.info('created a role', { 'role-name': name });
    return {};
  }

  private roleDelete(name: string): Record<string, unknown> {
    if (this.enabledFlag && name === ROOT_ROLE) {
      this.logger.warn("cannot delete 'root' role", { 'role-name': name });
      throw AuthErrors.invalidAuthMgmt();
    }
    if (!this.roles.has(name)) throw AuthErrors.roleNotFound();
    this.roles.delete(name);
    this.db().del(Bucket.AuthRoles, Buffer.from(name, 'utf8'));
    for (const u of [...this.users.values()]) {
      if (u.roles.includes(name)) this.putUser({ ...u, roles: u.roles.filter((r) => r !== name) });
    }
    this.commitRevision();
    this.logger.info('deleted a role', { 'role-name': name });
    return {};
  }

  private roleGrantPermission(name: string, perm: Permission): Record<string, unknown> {
    const role = this.roles.get(name);
    if (!role) throw AuthErrors.roleNotFound();
    if (!(perm.permType in PermType)) throw new Error(`auth store: unknown permission type ${perm.permType}`);
    const perms = role.perms.filter((p) => !(p.key.equals(perm.key) && p.rangeEnd.equals(perm.rangeEnd)));
    perms.push(perm);
    perms.sort(comparePerms);
    this.putRole({ name, perms });
    this.commitRevision();
    this.logger.info('granted/updated a permission to a role', {
      'role-name': name, 'permission-name': PermType[perm.permType], key: perm.key.toString('utf8'), 'range-end': perm.rangeEnd.toString('utf8'),
    });
    return {};
  }

  private roleRevokePermission(name: string, key: Buffer, rangeEnd: Buffer): Record<string, unknown> {
    const role = this.roles.get(name);
    if (!role) throw AuthErrors.roleNotFound();
    const perms = role.perms.filter((p) => !(p.key.equals(key) && p.rangeEnd.equals(rangeEnd)));
    if (perms.length === role.perms.length) throw AuthErrors.permissionNotGranted();
    this.putRole({ name, perms });
    this.commitRevision();
    this.logger.info('revoked a permission on range', { 'role-name': name, key: key.toString('utf8'), 'range-end': rangeEnd.toString('utf8') });
    return {};
  }

  /** Simple tokens: the same token on every member, named after the entry that created it. */
  private assignToken(name: string, prefix: string, index: number): Record<string, unknown> {
    if (!this.enabledFlag) throw AuthErrors.authNotEnabled();
    const u = this.users.get(name);
    if (!u || u.noPassword) throw AuthErrors.authFailed();
    const token = `${prefix}.${index}`;
    this.listener?.onTokenAssigned(token, name);
    return { token };
  }

  // ------------------------------------------------------------------ persistence

  private db(): AuthBackend {
    if (!this.backend) throw new Error('auth store: not loaded');
    return this.backend;
  }

  private putUser(u: UserRecord): void {
    this.users.set(u.name, u);
    this.db().put(Bucket.AuthUsers, Buffer.from(u.name, 'utf8'), encodeUser(u));
  }

  private putRole(r: RoleRecord): void {
    this.roles.set(r.name, r);
    this.db().put(Bucket.AuthRoles, Buffer.from(r.name, 'utf8'), encodeRole(r));
  }

  private commitRevision(): void {
    this.rev++;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(this.rev));
    this.db().put(Bucket.Auth, REVISION_KEY, b);
    this.permCache.clear();
  }
}

// ------------------------------------------------------------------ authpb codecs

export function encodeUser(u: UserRecord): Buffer {
  const msg = {
    name: Buffer.from(u.name, 'utf8'),
    password: Buffer.from(u.password, 'utf8'),
    roles: u.roles,
    options: { no_password: u.noPassword },
  };
  return Buffer.from(type('authpb.User').encode(msg).finish());
}

export function decodeUser(b: Buffer): UserRecord {
  const m = type('authpb.User').decode(b) as unknown as { name?: Uint8Array; password?: Uint8Array; roles?: string[]; options?: { no_password?: boolean } };
  return {
    name: Buffer.from(m.name ?? []).toString('utf8'),
    password: Buffer.from(m.password ?? []).toString('utf8'),
    roles: [...(m.roles ?? [])].sort(),
    noPassword: !!m.options?.no_password,
  };
}

export function encodeRole(r: RoleRecord): Buffer {
  const msg = {
    name: Buffer.from(r.name, 'utf8'),
    keyPermission: r.perms.map((p) => ({ permType: p.permType, key: p.key, range_end: p.rangeEnd })),
  };
  return Buffer.from(type('authpb.Role').encode(msg).finish());
}

export function decodeRole(b: Buffer): RoleRecord {
  const m = type('authpb.Role').decode(b) as unknown as { name?: Uint8Array; keyPermission?: { permType?: number; key?: Uint8Array; range_end?: Uint8Array }[] };
  return {
    name: Buffer.from(m.name ?? []).toString('utf8'),
    perms: (m.keyPermission ?? []).map((p) => ({
      permType: (p.permType ?? 0) as PermType, key: Buffer.from(p.key ?? []), rangeEnd: Buffer.from(p.range_end ?? []),
    })),
  };
}
