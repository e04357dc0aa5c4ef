import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Backend } from '../../../src/backend/backend.js';
import { nullLogger, type Logger } from '../../../src/log/logger.js';
import { AuthStore, type AuthOp } from '../../../src/auth/store.js';
import { AuthGate, type AuthCall, type PermissionRequest } from '../../../src/auth/gate.js';
import { PermType } from '../../../src/auth/perms.js';
import { loadJwtKeys } from '../../../src/auth/jwt.js';
import type { AuthTokenConfig } from '../../../src/auth/tokens.js';

// The API-side gate with the real store on a real backend; Raft is replaced by applying
// proposals directly, in order, as a single member does.

const k = (s: string) => Buffer.from(s);
const b64 = (s: string) => k(s).toString('base64');

let dir: string;
let be: Backend;
let store: AuthStore;
let index: number;
let leaseKeys: Map<bigint, Buffer[]>;
let logs: string[];

const logger: Logger = {
  ...nullLogger,
  debug: (m, f) => logs.push(`${m} ${JSON.stringify(f ?? {})}`),
  info: (m, f) => logs.push(`${m} ${JSON.stringify(f ?? {})}`),
  warn: (m, f) => logs.push(`${m} ${JSON.stringify(f ?? {})}`),
  error: (m, f) => logs.push(`${m} ${JSON.stringify(f ?? {})}`),
};

/** Calls carry their test certificate's CN here (the TLS layer finds it by connection in production). */
const certCNs = new WeakMap<object, string>();

function gate(tokens: AuthTokenConfig = { kind: 'simple', ttlMs: 60_000 }, clientCertAuth = false): AuthGate {
  return new AuthGate({
    store, logger, tokens, bcryptCost: 4, clientCertAuth,
    certCommonName: (c) => certCNs.get(c),
    propose: async (op: AuthOp) => store.apply(op, ++index),
    linearizableRead: async () => {},
    appliedIndex: () => index,
    committedIndex: () => index,
    // A single member applies what it commits at once: a later index never comes.
    waitApplied: (i: number) => (i <= index ? Promise.resolve() : new Promise<void>(() => {})),
    leaseKeys: (id: bigint) => leaseKeys.get(id) ?? [],
  });
}

function call(md: Record<string, string> = {}, cn?: string): AuthCall {
  const metadata = new Metadata();
  for (const [key, v] of Object.entries(md)) metadata.set(key, v);
  const c: AuthCall = { metadata, getPeer: () => '127.0.0.1:1' };
  if (cn !== undefined) certCNs.set(c, cn);
  return c;
}

async function denied(g: AuthGate, c: AuthCall, req: PermissionRequest): Promise<string> {
  try {
    await g.check(c, req);
    return 'allowed';
  } catch (e) {
    return (e as Error).message;
  }
}

/** root:rootpw (root role), alice:alicepw (readwrite /app/ prefix, read /ro), auth enabled. */
async function setup(g: AuthGate): Promise<void> {
  const apply = (op: AuthOp) => store.apply(op, ++index);
  apply({ op: 'userAdd', name: 'root', password: await g.hashPassword('rootpw'), noPassword: false });
  apply({ op: 'userGrantRole', user: 'root', role: 'root' });
  apply({ op: 'roleAdd', name: 'r1' });
  apply({ op: 'roleGrantPermission', name: 'r1', permType: PermType.READWRITE, key: b64('/app/'), rangeEnd: b64('/app0') });
  apply({ op: 'roleGrantPermission', name: 'r1', permType: PermType.READ, key: b64('/ro'), rangeEnd: '' });
  apply({ op: 'userAdd', name: 'alice', password: await g.hashPassword('alicepw'), noPassword: false });
  apply({ op: 'userGrantRole', user: 'alice', role: 'r1' });
  apply({ op: 'userAdd', name: 'cn-user', password: '', noPassword: true });
  apply({ op: 'userGrantRole', user: 'cn-user', role: 'r1' });
  apply({ op: 'enable' });
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  be = await Backend.open(dir, { batchIntervalMs: 60_000 });
  store = new AuthStore(logger);
  await store.load(be);
  index = 0;
  leaseKeys = new Map();
  logs = [];
});

afterEach(async () => {
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('AuthGate', () => {
  it('with auth disabled, nothing is checked and tokens are ignored', async () => {
    const g = gate();
    expect(await denied(g, call(), { op: 'admin' })).toBe('allowed');
    expect(await denied(g, call({ token: 'garbage' }), { op: 'put', key: k('x') })).toBe('allowed');
    await expect(g.authenticate('root', 'x')).rejects.toThrow('authentication is not enabled');
  });

  it('simple tokens: authenticate through the log, then the token names the user', async () => {
    const g = gate();
    await setup(g);
    const token = await g.authenticate('alice', 'alicepw');
    expect(token).toMatch(new RegExp(`^[a-zA-Z]{16}\\.${index}$`));
    const alice = call({ token });
    expect(await g.identity(alice)).toEqual({ username: 'alice', revision: store.revision });
    expect(await denied(g, alice, { op: 'put', key: k('/app/x') })).toBe('allowed');
    expect(await denied(g, alice, { op: 'put', key: k('/other') })).toBe('permission denied');
    // "authorization" is accepted too (the gRPC gateway's header)
    expect(await denied(g, call({ authorization: token }), { op: 'range', key: k('/ro') })).toBe('allowed');
    expect(await denied(g, call(), { op: 'range', key: k('/ro') })).toBe('user name is empty');
    expect(await denied(g, call({ token: `${token}x` }), { op: 'range', key: k('/ro') })).toBe('invalid auth token');
    expect(await denied(g, call({ token: 'abc.99999' }), { op: 'range', key: k('/ro') })).toBe('invalid auth token');
    // Deleting the user drops its tokens.
    store.apply({ op: 'userDelete', name: 'alice', by: { user: 'root', rev: 0 } }, ++index);
    expect(await denied(g, alice, { op: 'range', key: k('/ro') })).toBe('invalid auth token');
  });

  it("wrong passwords, unknown users and no-password users get etcd's errors; nothing secret is logged", async () => {
    const g = gate();
    await setup(g);
    await expect(g.authenticate('alice', 'nope')).rejects.toThrow(/^authentication failed, invalid user ID or password$/);
    await expect(g.authenticate('mallory', 'alicepw')).rejects.toThrow(/^authentication failed, invalid user ID or password$/);
    await expect(g.authenticate('cn-user', 'x')).rejects.toThrow('auth: authentication failed, password was given for no password user');
    const token = await g.authenticate('root', 'rootpw');
    await denied(g, call({ token: 'forged.1' }), { op: 'admin' });
    const all = logs.join('\n');
    for (const secret of ['alicepw', 'rootpw', 'nope', token, '$2']) expect(all).not.toContain(secret);
    expect(all).toContain('invalid password');
  });

  it('txn: compares need read, every op of both branches is checked, nested txns too', async () => {
    const g = gate();
    await setup(g);
    const alice = call({ token: await g.authenticate('alice', 'alicepw') });
    const cmp = (key: string) => ({ result: 0, target: 0, key: k(key) });
    const ok = { compare: [cmp('/ro')], success: [{ requestPut: { key: k('/app/a') } }], failure: [{ requestRange: { key: k('/app/b') } }] };
    expect(await denied(g, alice, { op: 'txn', txn: ok })).toBe('allowed');
    expect(await denied(g, alice, { op: 'txn', txn: { ...ok, compare: [cmp('/secret')] } })).toBe('permission denied');
    expect(await denied(g, alice, { op: 'txn', txn: { ...ok, failure: [{ requestRange: { key: k('/other') } }] } })).toBe('permission denied');
    expect(await denied(g, alice, { op: 'txn', txn: { success: [{ requestPut: { key: k('/ro') } }] } })).toBe('permission denied');
    expect(await denied(g, alice, { op: 'txn', txn: { success: [{ requestDeleteRange: { key: k('/app/'), rangeEnd: k('/app0') } }] } })).toBe('allowed');
    expect(await denied(g, alice, { op: 'txn', txn: { success: [{ requestTxn: { success: [{ requestDeleteRange: { key: k('/x') } }] } }] } })).toBe('permission denied');
  });

  it('put with prev_kv needs read; put on a lease needs write on the keys already attached', async () => {
    const g = gate();
    await setup(g);
    const root = call({ token: await g.authenticate('root', 'rootpw') });
    const alice = call({ token: await g.authenticate('alice', 'alicepw') });
    leaseKeys.set(7n, [k('/app/1'), k('/root-only')]);
    leaseKeys.set(8n, [k('/app/2')]);
    expect(await denied(g, alice, { op: 'put', key: k('/app/x'), lease: 8n })).toBe('allowed');
    expect(await denied(g, alice, { op: 'put', key: k('/app/x'), lease: 7n })).toBe('permission denied');
    expect(await denied(g, alice, { op: 'leaseRevoke', id: 8n })).toBe('allowed');
    expect(await denied(g, alice, { op: 'leaseRevoke', id: 7n })).toBe('permission denied');
    expect(await denied(g, alice, { op: 'leaseTimeToLive', id: 7n })).toBe('permission denied');
    expect(await denied(g, call(), { op: 'leaseTimeToLive', id: 9n })).toBe('user name is empty');
    expect(await denied(g, root, { op: 'leaseRevoke', id: 7n })).toBe('allowed');
    store.apply({ op: 'roleGrantPermission', name: 'r1', permType: PermType.WRITE, key: b64('/wo'), rangeEnd: '', by: { user: 'root', rev: 0 } }, ++index);
    expect(await denied(g, alice, { op: 'put', key: k('/wo') })).toBe('allowed');
    expect(await denied(g, alice, { op: 'put', key: k('/wo'), prevKv: true })).toBe('permission denied');
    expect(await denied(g, alice, { op: 'deleteRange', key: k('/wo'), prevKv: true })).toBe('permission denied');
  });

  it('watch: an empty key means from "\\x00"; admin is root only', async () => {
    const g = gate();
    await setup(g);
    const alice = call({ token: await g.authenticate('alice', 'alicepw') });
    expect(await denied(g, alice, { op: 'watch', key: k('/app/'), rangeEnd: k('/app0') })).toBe('allowed');
    expect(await denied(g, alice, { op: 'watch', key: Buffer.alloc(0), rangeEnd: Buffer.from([0]) })).toBe('permission denied');
    expect(await denied(g, alice, { op: 'admin' })).toBe('permission denied');
    expect(await denied(g, call(), { op: 'admin' })).toBe('user name is empty');
  });

  it('--client-cert-auth: the certificate CN is the user when no token is sent', async () => {
    const g = gate({ kind: 'simple', ttlMs: 60_000 }, true);
    await setup(g);
    expect(await denied(g, call({}, 'cn-user'), { op: 'put', key: k('/app/x') })).toBe('allowed');
    expect(await denied(g, call({}, 'cn-user'), { op: 'put', key: k('/zzz') })).toBe('permission denied');
    expect(await denied(g, call({}, 'root'), { op: 'admin' })).toBe('allowed');
    expect(await denied(g, call({}, 'stranger'), { op: 'range', key: k('/ro') })).toBe('permission denied');
    // A token wins over the certificate.
    const token = await g.authenticate('alice', 'alicepw');
    expect(await g.identity(call({ token }, 'root'))).toMatchObject({ username: 'alice' });
    // Without --client-cert-auth the CN means nothing.
    expect(await denied(gate(), call({}, 'root'), { op: 'admin' })).toBe('user name is empty');
  });

  it('JWT: any member with the key accepts the token; a token older than an auth change is refused', async () => {
    const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const privFile = path.join(dir, 'jwt.key');
    fs.writeFileSync(privFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const g = gate({ kind: 'jwt', ttlMs: 60_000, keys: loadJwtKeys('ES256', privFile, undefined) });
    await setup(g);
    const before = index;
    const token = await g.authenticate('alice', 'alicepw');
    expect(index).toBe(before); // JWTs need no Raft round
    expect(token.split('.')).toHaveLength(3);
    expect(await denied(g, call({ token }), { op: 'put', key: k('/app/x') })).toBe('allowed');
    store.apply({ op: 'roleAdd', name: 'r2', by: { user: 'root', rev: 0 } }, ++index);
    expect(await denied(g, call({ token }), { op: 'put', key: k('/app/x') })).toBe('revision of auth store is old');
    expect(await denied(g, call({ token: token.slice(0, -2) + 'AA' }), { op: 'put', key: k('/app/x') })).toBe('invalid auth token');
  });

  it('admin requester: root passes and is named in the proposal; others are refused before proposing', async () => {
    const g = gate();
    await setup(g);
    const rootToken = await g.authenticate('root', 'rootpw');
    expect(await g.adminRequester(call({ token: rootToken }))).toEqual({ user: 'root', rev: store.revision });
    await expect(g.adminRequester(call({ token: await g.authenticate('alice', 'alicepw') }))).rejects.toThrow('permission denied');
    await expect(g.adminRequester(call())).rejects.toThrow('user name is empty');
  });
});
