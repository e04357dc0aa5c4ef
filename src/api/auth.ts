import type * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import { RequestKind, encodePayload } from '../server/request.js';
import { bytes, type Msg } from '../server/pb.js';
import { serviceDefinition, unary } from './grpc.js';
import { AuthGate, type AuthCall } from '../auth/gate.js';
import { AuthErrors } from '../auth/errors.js';
import { parseAuthTokenOption } from '../auth/tokens.js';
import { BCRYPT_DEFAULT_COST, BCRYPT_MAX_COST, BCRYPT_MIN_COST } from '../auth/hasher.js';
import type { AuthOp } from '../auth/store.js';
import { PermType } from '../auth/perms.js';

// Auth service: enable/disable/status, Authenticate, users and roles. Changes go through
// Raft as RequestKind.Auth entries (JSON) and are checked again when applied; reads are
// served locally after a ReadIndex. Passwords are hashed here, before proposing.

export interface AuthOptions {
  /** --auth-token as given. */
  authToken: string;
  /** --auth-token-ttl, seconds (simple tokens). */
  authTokenTtlSec: number;
  /** --bcrypt-cost */
  bcryptCost: number;
  /** --client-cert-auth */
  clientCertAuth: boolean;
}

export const DEFAULT_AUTH_OPTIONS: AuthOptions = { authToken: 'simple', authTokenTtlSec: 300, bcryptCost: BCRYPT_DEFAULT_COST, clientCertAuth: false };

/** Builds the member's auth gate over its replicated auth store. Throws on a bad --auth-token. */
export function createAuthGate(server: EtcdServer, opts: AuthOptions = DEFAULT_AUTH_OPTIONS): AuthGate {
  const logger = server.logger;
  const sm = server.stateMachine;
  let cost = opts.bcryptCost;
  if (!Number.isInteger(cost) || cost < BCRYPT_MIN_COST || cost > BCRYPT_MAX_COST) {
    logger.warn('use default bcrypt cost instead of the invalid given cost', {
      'min-cost': BCRYPT_MIN_COST, 'max-cost': BCRYPT_MAX_COST, 'default-cost': BCRYPT_DEFAULT_COST, 'given-cost': cost,
    });
    cost = BCRYPT_DEFAULT_COST;
  }
  const tokens = parseAuthTokenOption(opts.authToken, opts.authTokenTtlSec, (msg) => logger.warn(msg));
  if (tokens.kind === 'simple') logger.warn('simple token is not cryptographically signed');
  return new AuthGate({
    store: sm.auth,
    logger,
    tokens,
    bcryptCost: cost,
    clientCertAuth: opts.clientCertAuth,
    propose: async (op) => (await server.propose(RequestKind.Auth, encodePayload(RequestKind.Auth, op), op)) as Record<string, unknown>,
    linearizableRead: () => server.linearizableRead(),
    appliedIndex: () => server.applied,
    committedIndex: () => server.committed,
    waitApplied: (index) => server.waitApplied(index),
    leaseKeys: (id) => [...(sm.lessor.get(id)?.keys ?? [])].map((k) => Buffer.from(k, 'latin1')),
  });
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

export function authService(server: EtcdServer, gate: AuthGate): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation } {
  const m = server.metrics;
  const sm = server.stateMachine;
  const store = gate.store;
  const svc = 'etcdserverpb.Auth';
  type Call = grpc.ServerUnaryCall<Msg, Msg> & AuthCall;

  /** Proposes a change on behalf of the (root) caller; resolves with the applied response. */
  async function change(call: Call, op: AuthOp): Promise<Msg> {
    const by = await gate.adminRequester(call);
    const full = (by ? { ...op, by } : op) as AuthOp;
    return (await server.propose(RequestKind.Auth, encodePayload(RequestKind.Auth, full), full)) as Msg;
  }

  async function passwordHash(req: Msg, plain: string): Promise<string> {
    const pre = str(req.hashedPassword);
    if (pre !== '') {
      // etcdctl 3.5+ may send a bcrypt hash it made itself; store it as given.
      if (!gate.isPasswordHash(pre)) throw AuthErrors.invalidHashedPassword();
      return pre;
    }
    return gate.hashPassword(plain);
  }

  async function userAdd(req: Msg, call: Call): Promise<Msg> {
    const name = str(req.name);
    const noPassword = !!req.options?.no_password;
    // Authorize and validate before the (deliberately slow) hashing.
    const by = await gate.adminRequester(call);
    if (name === '') throw AuthErrors.userEmpty();
    if (store.getUser(name)) throw AuthErrors.userAlreadyExist();
    const password = noPassword ? '' : await passwordHash(req, str(req.password));
    const op: AuthOp = { op: 'userAdd', name, password, noPassword, ...(by ? { by } : {}) };
    return (await server.propose(RequestKind.Auth, encodePayload(RequestKind.Auth, op), op)) as Msg;
  }

  async function userChangePassword(req: Msg, call: Call): Promise<Msg> {
    const name = str(req.name);
    const by = await gate.adminRequester(call);
    if (!store.getUser(name)) throw AuthErrors.userNotFound();
    const password = await passwordHash(req, str(req.password));
    const op: AuthOp = { op: 'userChangePassword', name, password, ...(by ? { by } : {}) };
    return (await server.propose(RequestKind.Auth, encodePayload(RequestKind.Auth, op), op)) as Msg;
  }

  async function userGet(req: Msg, call: Call): Promise<Msg> {
    const name = str(req.name);
    if (store.enabled) {
      // A user may read itself; anything else needs root.
      const ai = await gate.identity(call);
      if (!ai || ai.username !== name) store.checkAdmin(ai);
    }
    await server.linearizableRead();
    const u = store.getUser(name);
    if (!u) throw AuthErrors.userNotFound();
    return { header: sm.header(), roles: u.roles };
  }

  async function roleGet(req: Msg, call: Call): Promise<Msg> {
    const role = str(req.role);
    if (store.enabled) {
      // A user may read the roles it has; anything else needs root.
      const ai = await gate.identity(call);
      if (!ai || !store.hasRole(ai.username, role)) store.checkAdmin(ai);
    }
    await server.linearizableRead();
    const r = store.getRole(role);
    if (!r) throw AuthErrors.roleNotFound();
    return { header: sm.header(), perm: r.perms.map((p) => ({ permType: p.permType, key: p.key, range_end: p.rangeEnd })) };
  }

  async function listOf(call: Call, what: 'users' | 'roles'): Promise<Msg> {
    await gate.check(call, { op: 'admin' });
    await server.linearizableRead();
    return { header: sm.header(), [what]: what === 'users' ? store.userNames() : store.roleNames() };
  }

  async function status(): Promise<Msg> {
    await server.linearizableRead();
    return { header: sm.header(), enabled: store.enabled, authRevision: store.revision };
  }

  async function authenticate(req: Msg): Promise<Msg> {
    const token = await gate.authenticate(str(req.name), str(req.password));
    return { header: sm.header(), token };
  }

  function grantPermission(req: Msg, call: Call): Promise<Msg> {
    const perm = req.perm ?? {};
    const permType = Number(perm.permType ?? 0);
    if (!(permType in PermType)) throw new Error(`invalid permission type ${permType}`);
    return change(call, {
      op: 'roleGrantPermission', name: str(req.name), permType,
      key: bytes(perm.key).toString('base64'), rangeEnd: bytes(perm.range_end).toString('base64'),
    });
  }

  const u = (method: string, fn: (req: Msg, call: Call) => Msg | Promise<Msg>) =>
    unary(m, svc, method, (req, call) => fn(req, call as Call));

  return {
    def: serviceDefinition(svc),
    impl: {
      AuthEnable: u('AuthEnable', (_r, call) => change(call, { op: 'enable' })),
      AuthDisable: u('AuthDisable', (_r, call) => change(call, { op: 'disable' })),
      AuthStatus: u('AuthStatus', status),
      Authenticate: u('Authenticate', authenticate),
      UserAdd: u('UserAdd', userAdd),
      UserGet: u('UserGet', userGet),
      UserList: u('UserList', (_r, call) => listOf(call, 'users')),
      UserDelete: u('UserDelete', (r, call) => change(call, { op: 'userDelete', name: str(r.name) })),
      UserChangePassword: u('UserChangePassword', userChangePassword),
      UserGrantRole: u('UserGrantRole', (r, call) => change(call, { op: 'userGrantRole', user: str(r.user), role: str(r.role) })),
      UserRevokeRole: u('UserRevokeRole', (r, call) => change(call, { op: 'userRevokeRole', name: str(r.name), role: str(r.role) })),
      RoleAdd: u('RoleAdd', (r, call) => change(call, { op: 'roleAdd', name: str(r.name) })),
      RoleGet: u('RoleGet', roleGet),
      RoleList: u('RoleList', (_r, call) => listOf(call, 'roles')),
      RoleDelete: u('RoleDelete', (r, call) => change(call, { op: 'roleDelete', role: str(r.role) })),
      RoleGrantPermission: u('RoleGrantPermission', grantPermission),
      RoleRevokePermission: u('RoleRevokePermission', (r, call) => change(call, {
        op: 'roleRevokePermission', role: str(r.role), key: bytes(r.key).toString('base64'), rangeEnd: bytes(r.range_end).toString('base64'),
      })),
    },
  };
}
