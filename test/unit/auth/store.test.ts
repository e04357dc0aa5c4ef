import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Backend } from '../../../src/backend/backend.js';
import { Bucket } from '../../../src/backend/buckets.js';
import { nullLogger } from '../../../src/log/logger.js';
import { AuthStore, decodeRole, decodeUser, type AuthOp } from '../../../src/auth/store.js';
import { PermType } from '../../../src/auth/perms.js';

// The replicated auth store on a real LevelDB backend: etcd's rules, errors, revisions,
// and the on-disk layout (authpb protobufs in etcd's buckets).

const HASH = '$2a$04$abcdefghijklmnopqrstuuJcuuaCGGY0XXgLS3RcY/wgxkgml5ory';
const b64 = (s: string) => Buffer.from(s).toString('base64');

let dir: string;
let be: Backend;
let store: AuthStore;
let index = 0;

async function fresh(): Promise<AuthStore> {
  const s = new AuthStore(nullLogger);
  await s.load(be);
  return s;
}

/** Applies like the state machine does (one entry at a time, increasing indexes). */
function apply(op: AuthOp, s = store): Record<string, unknown> {
  return s.apply(op, ++index);
}

function expectError(fn: () => unknown, message: string): void {
  expect(fn).toThrowError(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
}

const root = { user: 'root', rev: 0 };

/** root with the root role, plus alice with role r1 granted on /app/ (prefix). */
function setup(): void {
  apply({ op: 'userAdd', name: 'root', password: HASH, noPassword: false });
  apply({ op: 'userGrantRole', user: 'root', role: 'root' });
  apply({ op: 'roleAdd', name: 'r1' });
  apply({ op: 'roleGrantPermission', name: 'r1', permType: PermType.READWRITE, key: b64('/app/'), rangeEnd: b64('/app0') });
  apply({ op: 'userAdd', name: 'alice', password: HASH, noPassword: false });
  apply({ op: 'userGrantRole', user: 'alice', role: 'r1' });
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  be = await Backend.open(dir, { batchIntervalMs: 60_000 });
  store = await fresh();
  index = 0;
});

afterEach(async () => {
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('AuthStore', () => {
  it('starts disabled at revision 1, and every change bumps the revision', () => {
    expect(store.enabled).toBe(false);
    expect(store.revision).toBe(1);
    setup();
    expect(store.revision).toBe(7);
    expect(store.userNames()).toEqual(['alice', 'root']);
    expect(store.roleNames()).toEqual(['r1']); // granting "root" does not create the role
    expect(store.getUser('alice')).toEqual({ name: 'alice', password: HASH, roles: ['r1'], noPassword: false });
  });

  it('enable needs the root user with the root role', () => {
    expectError(() => apply({ op: 'enable' }), 'root user does not exist');
    apply({ op: 'userAdd', name: 'root', password: HASH, noPassword: false });
    expectError(() => apply({ op: 'enable' }), 'root user does not have root role');
    apply({ op: 'userGrantRole', user: 'root', role: 'root' });
    const rev = store.revision;
    apply({ op: 'enable' });
    expect(store.enabled).toBe(true);
    expect(store.revision).toBe(rev); // as etcd: enabling does not bump the revision
    apply({ op: 'enable', by: root }); // enabling twice is a no-op
    apply({ op: 'disable', by: root });
    expect(store.enabled).toBe(false);
    expect(store.revision).toBe(rev + 1);
  });

  it("etcd's errors for users and roles", () => {
    setup();
    expectError(() => apply({ op: 'userAdd', name: '', password: HASH, noPassword: false }), 'user name is empty');
    expectError(() => apply({ op: 'userAdd', name: 'alice', password: HASH, noPassword: false }), 'user name already exists');
    expectError(() => apply({ op: 'userDelete', name: 'bob' }), 'user name not found');
    expectError(() => apply({ op: 'userChangePassword', name: 'bob', password: HASH }), 'user name not found');
    expectError(() => apply({ op: 'userGrantRole', user: 'bob', role: 'r1' }), 'user name not found');
    expectError(() => apply({ op: 'userGrantRole', user: 'alice', role: 'nope' }), 'role name not found');
    expectError(() => apply({ op: 'userRevokeRole', name: 'alice', role: 'nope' }), 'role is not granted to the user');
    expectError(() => apply({ op: 'roleAdd', name: '' }), 'role name is empty');
    expectError(() => apply({ op: 'roleAdd', name: 'r1' }), 'role name already exists');
    expectError(() => apply({ op: 'roleDelete', role: 'nope' }), 'role name not found');
    expectError(() => apply({ op: 'roleGrantPermission', name: 'nope', permType: PermType.READ, key: b64('k'), rangeEnd: '' }), 'role name not found');
    expectError(() => apply({ op: 'roleRevokePermission', role: 'r1', key: b64('/other'), rangeEnd: '' }), 'permission is not granted to the role');
    // A refused change leaves the revision alone.
    expect(store.revision).toBe(7);
  });

  it('while enabled, root cannot be deleted, lose the root role, nor the root role be deleted', () => {
    setup();
    apply({ op: 'roleAdd', name: 'root' });
    apply({ op: 'enable' });
    expectError(() => apply({ op: 'userDelete', name: 'root', by: root }), 'invalid auth management');
    expectError(() => apply({ op: 'userRevokeRole', name: 'root', role: 'root', by: root }), 'invalid auth management');
    expectError(() => apply({ op: 'roleDelete', role: 'root', by: root }), 'invalid auth management');
    apply({ op: 'disable', by: root });
    apply({ op: 'userRevokeRole', name: 'root', role: 'root' });
    expect(store.getUser('root')!.roles).toEqual([]);
  });

  it('applied changes need root while enabled (checked again at apply time)', () => {
    setup();
    apply({ op: 'enable' });
    expectError(() => apply({ op: 'roleAdd', name: 'x' }), 'user name is empty');
    expectError(() => apply({ op: 'roleAdd', name: 'x', by: { user: 'alice', rev: 0 } }), 'permission denied');
    expectError(() => apply({ op: 'roleAdd', name: 'x', by: { user: 'ghost', rev: 0 } }), 'user name not found');
    apply({ op: 'roleAdd', name: 'x', by: root });
    expect(store.roleNames()).toEqual(['r1', 'x']);
  });

  it('permission checks: root passes, grants decide for others, identity and revision first', () => {
    setup();
    apply({ op: 'enable' });
    const rev = store.revision;
    const alice = { username: 'alice', revision: rev };
    const k = (s: string) => Buffer.from(s);
    expect(() => store.checkRange({ username: 'root', revision: rev }, k('/any'), k('\x00'))).not.toThrow();
    expect(() => store.checkPut(alice, k('/app/x'))).not.toThrow();
    expect(() => store.checkRange(alice, k('/app/'), k('/app0'))).not.toThrow();
    expectError(() => store.checkPut(alice, k('/other')), 'permission denied');
    expectError(() => store.checkRange(alice, k('/'), k('0')), 'permission denied');
    expectError(() => store.checkRange(undefined, k('/app/x')), 'user name is empty');
    expectError(() => store.checkPut({ username: 'alice', revision: 0 }, k('/app/x')), 'user name is empty');
    expectError(() => store.checkPut({ username: 'ghost', revision: rev }, k('/app/x')), 'permission denied');
    expectError(() => store.checkAdmin(alice), 'permission denied');
    expectError(() => store.checkAdmin(undefined), 'user name is empty');
    expectError(() => store.checkAdmin({ username: 'ghost', revision: rev }), 'user name not found');
    // A token issued before a change (JWTs carry their revision) is stale afterwards.
    apply({ op: 'roleGrantPermission', name: 'r1', permType: PermType.READ, key: b64('/other'), rangeEnd: '', by: root });
    expectError(() => store.checkRange(alice, k('/other')), 'revision of auth store is old');
    expect(() => store.checkRange({ username: 'alice', revision: store.revision }, k('/other'))).not.toThrow();
    // Revoking the role takes the grant away at once.
    apply({ op: 'userRevokeRole', name: 'alice', role: 'r1', by: root });
    expectError(() => store.checkPut({ username: 'alice', revision: store.revision }, k('/app/x')), 'permission denied');
  });

  it('with auth disabled every check passes', () => {
    expect(() => store.checkPut(undefined, Buffer.from('x'))).not.toThrow();
    expect(() => store.checkAdmin(undefined)).not.toThrow();
  });

  it('grant-permission on the same key and range end replaces the type; permissions stay sorted', () => {
    setup();
    apply({ op: 'roleGrantPermission', name: 'r1', permType: PermType.READ, key: b64('/a'), rangeEnd: '' });
    apply({ op: 'roleGrantPermission', name: 'r1', permType: PermType.WRITE, key: b64('/app/'), rangeEnd: b64('/app0') });
    const perms = store.getRole('r1')!.perms.map((p) => [p.key.toString(), p.rangeEnd.toString(), PermType[p.permType]]);
    expect(perms).toEqual([['/a', '', 'READ'], ['/app/', '/app0', 'WRITE']]);
    apply({ op: 'roleRevokePermission', role: 'r1', key: b64('/a'), rangeEnd: '' });
    expect(store.getRole('r1')!.perms).toHaveLength(1);
  });

  it('deleting a role removes it from its users; granting a role twice is a no-op', () => {
    setup();
    const rev = store.revision;
    apply({ op: 'userGrantRole', user: 'alice', role: 'r1' });
    expect(store.revision).toBe(rev);
    apply({ op: 'roleDelete', role: 'r1' });
    expect(store.getUser('alice')!.roles).toEqual([]);
    expect(store.getRole('r1')).toBeUndefined();
  });

  it('tells the token layer: tokens on authenticate, invalidation on delete/password change, disable', () => {
    setup();
    const events: string[] = [];
    store.listener = {
      onTokenAssigned: (t, u) => events.push(`token ${t} ${u}`),
      onUserInvalidated: (u) => events.push(`invalidate ${u}`),
      onEnabledChanged: (e) => events.push(`enabled ${e}`),
    };
    expectError(() => apply({ op: 'authenticate', name: 'alice', prefix: 'P' }), 'authentication is not enabled');
    apply({ op: 'enable' });
    const r = apply({ op: 'authenticate', name: 'alice', prefix: 'P' });
    expect(r).toEqual({ token: `P.${index}` });
    expectError(() => apply({ op: 'authenticate', name: 'ghost', prefix: 'P' }), 'authentication failed, invalid user ID or password');
    apply({ op: 'userChangePassword', name: 'alice', password: HASH, by: root });
    apply({ op: 'userDelete', name: 'alice', by: root });
    apply({ op: 'disable', by: root });
    expect(events).toEqual(['enabled true', `token P.${index - 4} alice`, 'invalidate alice', 'invalidate alice', 'enabled false']);
  });

  it("persists in etcd's buckets and layout, and reloads", async () => {
    setup();
    apply({ op: 'userAdd', name: 'nopw', password: '', noPassword: true });
    apply({ op: 'enable' });
    await be.forceCommit();
    const user = decodeUser((await be.get(Bucket.AuthUsers, Buffer.from('alice')))!);
    expect(user).toEqual({ name: 'alice', password: HASH, roles: ['r1'], noPassword: false });
    const role = decodeRole((await be.get(Bucket.AuthRoles, Buffer.from('r1')))!);
    expect(role.perms.map((p) => [p.key.toString(), p.rangeEnd.toString()])).toEqual([['/app/', '/app0']]);
    expect(await be.get(Bucket.Auth, Buffer.from('authEnabled'))).toEqual(Buffer.from([1]));
    expect((await be.get(Bucket.Auth, Buffer.from('authRevision')))!.readBigUInt64BE(0)).toBe(BigInt(store.revision));

    const reloaded = await fresh();
    expect(reloaded.enabled).toBe(true);
    expect(reloaded.revision).toBe(store.revision);
    expect(reloaded.userNames()).toEqual(['alice', 'nopw', 'root']);
    expect(reloaded.getUser('nopw')).toEqual({ name: 'nopw', password: '', roles: [], noPassword: true });
    expect(reloaded.getRole('r1')).toEqual(store.getRole('r1'));
  });

  it('a user without a password hash is refused unless --no-password', () => {
    expect(() => apply({ op: 'userAdd', name: 'x', password: '', noPassword: false })).toThrow(/without a password hash/);
  });
});
