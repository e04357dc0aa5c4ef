import { execFileSync, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceDefinition } from '../../src/api/grpc.js';
import {
  clusterSpecs, ctlOk, etcdctl, eventually, freePort, initialClusterOf, Member, memberArgs, singleNode, sleep, stopAll, tempDir, tsetcdNodeArgs,
} from './harness.js';

// Users, roles and permissions with the real etcdctl against tsetcd, checked against the
// exact texts etcd 3.4 prints. Where tsetcd is stricter than etcd 3.4 (compaction,
// move-leader and lease time-to-live need permissions, as in later etcd releases) the
// test says so.

const ROOT = ['--user', 'root:rootpw'];
const ALICE = ['--user', 'alice:alicepw'];

/** etcdctl expected to fail; returns its error line (etcdctl 3.4 prints "Error: ..." last). */
async function ctlErr(ep: string | string[], args: string[], input?: string): Promise<string> {
  const r = await etcdctl(ep, args, input);
  if (r.code === 0) throw new Error(`etcdctl ${args.join(' ')} unexpectedly succeeded: ${r.stdout}`);
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l !== '' && !l.includes('retry_interceptor'));
  return lines[lines.length - 1]!;
}

type Client = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: Record<string, unknown>) => void) => void>;

function client(service: string, ep: string): Client {
  const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(service) as grpc.ServiceDefinition, service);
  return new Ctor(ep.replace('http://', ''), grpc.credentials.createInsecure()) as unknown as Client;
}

function call(c: Client, method: string, req: unknown, md: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const meta = new grpc.Metadata();
  for (const [k, v] of Object.entries(md)) meta.set(k, v);
  return new Promise((resolve, reject) => c[method]!(req, meta, (e, r) => (e ? reject(e) : resolve(r))));
}

async function rpcError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    const ge = e as grpc.ServiceError;
    return `${grpc.status[ge.code]}: ${ge.details}`;
  }
}

/** root (root role), role r1 = readwrite on prefix /app/, read /ro, write from /w/ on; alice has r1; auth enabled. */
async function setupUsers(ep: string): Promise<void> {
  expect(await ctlOk(ep, ['user', 'add', 'root:rootpw'])).toBe('User root created\n');
  expect(await ctlOk(ep, ['role', 'add', 'r1'])).toBe('Role r1 created\n');
  expect(await ctlOk(ep, ['role', 'grant-permission', 'r1', '--prefix', 'readwrite', '/app/'])).toBe('Role r1 updated\n');
  await ctlOk(ep, ['role', 'grant-permission', 'r1', 'read', '/ro']);
  await ctlOk(ep, ['role', 'grant-permission', 'r1', '--from-key', 'write', '/w/']);
  expect(await ctlOk(ep, ['user', 'add', 'alice:alicepw'])).toBe('User alice created\n');
  expect(await ctlOk(ep, ['user', 'grant-role', 'alice', 'r1'])).toBe('Role r1 is granted to user alice\n');
  // etcdctl adds the root role and grants it to root when enable says it is missing (as with etcd).
  expect(await ctlOk(ep, ['auth', 'enable'])).toBe('Authentication Enabled\n');
}

describe('auth with simple tokens, real etcdctl', () => {
  let m: Member;
  let ep: string;
  const alice = (...args: string[]) => ctlOk(ep, [...ALICE, ...args]);
  const root = (...args: string[]) => ctlOk(ep, [...ROOT, ...args]);

  beforeAll(async () => {
    m = await singleNode(['--bcrypt-cost', '6', '--auth-token-ttl', '60']);
    ep = m.clientUrl;
    await setupUsers(ep);
  });
  afterAll(stopAll);

  it('roles and users read back as etcdctl shows them', async () => {
    expect(await root('role', 'get', 'r1')).toBe(
      'Role r1\nKV Read:\n\t[/app/, /app0) (prefix /app/)\n\t/ro\nKV Write:\n\t[/app/, /app0) (prefix /app/)\n\t[/w/, <open ended>\n',
    );
    expect(await root('user', 'get', 'root')).toBe('User: root\nRoles: root\n');
    expect(await root('user', 'list')).toBe('alice\nroot\n');
    expect(await root('role', 'list')).toBe('r1\nroot\n');
  });

  it('no credentials: "user name is empty"; wrong password or user: authentication failed', async () => {
    expect(await ctlErr(ep, ['get', '/app/x'])).toBe('Error: etcdserver: user name is empty');
    expect(await ctlErr(ep, ['put', '/app/x', '1'])).toBe('Error: etcdserver: user name is empty');
    expect(await ctlErr(ep, ['--user', 'alice:wrong', 'get', '/app/x'])).toBe('Error: etcdserver: authentication failed, invalid user ID or password');
    expect(await ctlErr(ep, ['--user', 'bob:alicepw', 'get', '/app/x'])).toBe('Error: etcdserver: authentication failed, invalid user ID or password');
  });

  it('reads and writes inside the granted ranges work, outside are denied', async () => {
    expect(await alice('put', '/app/x', '1')).toBe('OK\n');
    expect(await alice('get', '/app/x')).toBe('/app/x\n1\n');
    expect(await alice('get', '/app/', '--prefix', '--keys-only')).toBe('/app/x\n\n');
    expect(await ctlErr(ep, [...ALICE, 'put', '/other', '1'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...ALICE, 'get', '/', '--prefix'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...ALICE, 'get', '/app/x', '--consistency=s', '--rev', '1', '--from-key'])).toBe('Error: etcdserver: permission denied');
    expect(await alice('get', '/ro')).toBe('');
    expect(await ctlErr(ep, [...ALICE, 'put', '/ro', '1'])).toBe('Error: etcdserver: permission denied');
    expect(await alice('put', '/w/deep/key', '1')).toBe('OK\n');
    expect(await alice('put', '/zzz', '1')).toBe('OK\n'); // from-key: everything after /w/
    expect(await ctlErr(ep, [...ALICE, 'get', '/w/deep/key'])).toBe('Error: etcdserver: permission denied');
    expect(await alice('del', '/app/x', '--prev-kv')).toBe('1\n/app/x\n1\n');
    expect(await ctlErr(ep, [...ALICE, 'del', '/w/deep/key', '--prev-kv'])).toBe('Error: etcdserver: permission denied'); // prev-kv needs read
    expect(await alice('del', '/w/deep/key')).toBe('1\n');
    expect(await root('get', '/zzz', '--print-value-only')).toBe('1\n');
  });

  it('txn: all compares and both branches are checked', async () => {
    await root('put', '/app/t', 'v');
    await root('put', '/other', 'secret');
    expect(await ctlOk(ep, [...ALICE, 'txn'], 'value("/app/t") = "v"\n\nput /app/t w\n\nget /app/t\n\n')).toBe('SUCCESS\n\nOK\n');
    expect(await ctlErr(ep, [...ALICE, 'txn'], 'value("/app/t") = "w"\n\nput /app/t x\n\nget /other\n\n')).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...ALICE, 'txn'], 'value("/other") = "secret"\n\nput /app/t x\n\n\n')).toBe('Error: etcdserver: permission denied');
    expect(await root('get', '/app/t', '--print-value-only')).toBe('w\n');
  });

  it('watch: permitted ranges stream events, others are canceled with the reason', async () => {
    const denied = await etcdctl(ep, [...ALICE, 'watch', '/other'], undefined, 10_000);
    expect(denied.stdout + denied.stderr).toContain('watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)');
    const anon = await etcdctl(ep, ['watch', '/app/x'], undefined, 10_000);
    expect(anon.stdout + anon.stderr).toContain('watch was canceled (rpc error: code = InvalidArgument desc = etcdserver: user name is empty)');

    const p = spawn('/usr/bin/etcdctl', [`--endpoints=${ep}`, ...ALICE, 'watch', '/app/', '--prefix'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await eventually(async () => {
        await alice('put', '/app/w', 'seen');
        if (!out.includes('PUT\n/app/w\nseen\n')) throw new Error(`watch output so far: ${out}`);
      }, 15_000, 500);
    } finally {
      p.kill();
    }
  });

  it('leases: revoke needs write and time-to-live read on every attached key', async () => {
    const rootLease = (await root('lease', 'grant', '100')).split(' ')[1]!;
    await root('put', '/other', 'x', `--lease=${rootLease}`);
    expect(await ctlErr(ep, [...ALICE, 'lease', 'revoke', rootLease])).toBe('Error: failed to revoke lease (etcdserver: permission denied)');
    expect(await ctlErr(ep, [...ALICE, 'lease', 'timetolive', rootLease, '--keys'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...ALICE, 'put', '/app/l', 'v', `--lease=${rootLease}`])).toBe('Error: etcdserver: permission denied');
    const own = (await alice('lease', 'grant', '100')).split(' ')[1]!;
    await alice('put', '/app/l', 'v', `--lease=${own}`);
    expect(await alice('lease', 'timetolive', own, '--keys')).toMatch(/attached keys\(\[\/app\/l\]\)/);
    expect(await alice('lease', 'revoke', own)).toBe(`lease ${own} revoked\n`);
    expect(await alice('get', '/app/l')).toBe('');
    expect(await root('lease', 'revoke', rootLease)).toBe(`lease ${rootLease} revoked\n`);
  });

  it('root-only operations: maintenance, members, compaction, auth management', async () => {
    expect(await ctlErr(ep, [...ALICE, 'defrag'])).toBe(`Failed to defragment etcd member[${ep}] (etcdserver: permission denied)`);
    expect(await ctlErr(ep, [...ALICE, 'endpoint', 'hashkv'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...ALICE, 'member', 'add', 'x', '--peer-urls=http://127.0.0.1:1'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...ALICE, 'compaction', '1'])).toBe('Error: etcdserver: permission denied'); // etcd 3.4 allows this
    expect(await ctlErr(ep, [...ALICE, 'user', 'list'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...ALICE, 'role', 'get', 'root'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...ALICE, 'auth', 'disable'])).toBe('Error: etcdserver: permission denied');
    // A user may read itself and the roles it has.
    expect(await alice('user', 'get', 'alice')).toBe('User: alice\nRoles: r1\n');
    expect(await alice('role', 'get', 'r1')).toContain('Role r1\n');
    // Open to everyone authenticated: status, member list, alarm list.
    expect(await alice('member', 'list')).toContain(', started, infra0, ');
    expect(await alice('endpoint', 'status')).toContain(ep.replace('http://', ''));
    expect(await root('defrag')).toBe(`Finished defragmenting etcd member[${ep}]\n`);
    expect(await root('endpoint', 'hashkv')).toMatch(/, \d+/);
  });

  it("root rules and etcd's management errors", async () => {
    expect(await ctlErr(ep, [...ROOT, 'user', 'delete', 'root'])).toBe('Error: etcdserver: invalid auth management');
    expect(await ctlErr(ep, [...ROOT, 'role', 'delete', 'root'])).toBe('Error: etcdserver: invalid auth management');
    expect(await ctlErr(ep, [...ROOT, 'user', 'revoke-role', 'root', 'root'])).toBe('Error: etcdserver: invalid auth management');
    expect(await ctlErr(ep, [...ROOT, 'user', 'add', 'alice:x'])).toBe('Error: etcdserver: user name already exists');
    expect(await ctlErr(ep, [...ROOT, 'role', 'add', 'r1'])).toBe('Error: etcdserver: role name already exists');
    expect(await ctlErr(ep, [...ROOT, 'user', 'get', 'nobody'])).toBe('Error: etcdserver: user name not found');
    expect(await ctlErr(ep, [...ROOT, 'role', 'get', 'nobody'])).toBe('Error: etcdserver: role name not found');
    expect(await ctlErr(ep, [...ROOT, 'user', 'grant-role', 'alice', 'nobody'])).toBe('Error: etcdserver: role name not found');
    expect(await ctlErr(ep, [...ROOT, 'user', 'revoke-role', 'alice', 'nobody'])).toBe('Error: etcdserver: role is not granted to the user');
    expect(await ctlErr(ep, [...ROOT, 'role', 'revoke-permission', 'r1', '/nothing'])).toBe('Error: etcdserver: permission is not granted to the role');
  });

  it('users without password, password change, user and role removal take effect at once', async () => {
    await root('user', 'add', 'carol', '--no-password');
    expect(await ctlErr(ep, ['--user', 'carol:x', 'get', '/app/x'])).toBe(
      'Error: rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user',
    );
    await root('user', 'add', 'dave:old');
    await root('user', 'grant-role', 'dave', 'r1');
    expect(await ctlOk(ep, ['--user', 'dave:old', 'put', '/app/d', '1'])).toBe('OK\n');
    expect(await ctlOk(ep, [...ROOT, 'user', 'passwd', 'dave', '--interactive=false'], 'N3wSecret\n')).toBe('Password updated\n');
    expect(await ctlErr(ep, ['--user', 'dave:old', 'get', '/app/d'])).toBe('Error: etcdserver: authentication failed, invalid user ID or password');
    expect(await ctlOk(ep, ['--user', 'dave:N3wSecret', 'get', '/app/d', '--print-value-only'])).toBe('1\n');
    expect(await root('user', 'revoke-role', 'dave', 'r1')).toBe('Role r1 is revoked from user dave\n');
    expect(await ctlErr(ep, ['--user', 'dave:N3wSecret', 'get', '/app/d'])).toBe('Error: etcdserver: permission denied');
    expect(await root('role', 'add', 'tmp')).toBe('Role tmp created\n');
    await root('role', 'grant-permission', 'tmp', 'read', '/tmp-key');
    await root('user', 'grant-role', 'dave', 'tmp');
    expect(await ctlOk(ep, ['--user', 'dave:N3wSecret', 'get', '/tmp-key'])).toBe('');
    expect(await root('role', 'delete', 'tmp')).toBe('Role tmp deleted\n');
    expect(await ctlErr(ep, ['--user', 'dave:N3wSecret', 'get', '/tmp-key'])).toBe('Error: etcdserver: permission denied');
    expect(await root('user', 'delete', 'dave')).toBe('User dave deleted\n');
    expect(await ctlErr(ep, ['--user', 'dave:N3wSecret', 'get', '/tmp-key'])).toBe('Error: etcdserver: authentication failed, invalid user ID or password');
  });

  it('tokens over raw gRPC: valid, invalid, garbage; the member survives all of it', async () => {
    const auth = client('etcdserverpb.Auth', ep);
    const kv = client('etcdserverpb.KV', ep);
    try {
      const r = await call(auth, 'Authenticate', { name: 'alice', password: 'alicepw' });
      const token = String(r.token);
      expect(token).toMatch(/^[a-zA-Z]{16}\.\d+$/);
      await call(kv, 'Put', { key: Buffer.from('/app/g'), value: Buffer.from('1') }, { token });
      expect(await rpcError(call(kv, 'Range', { key: Buffer.from('/app/g') }, { authorization: token }))).toBe('ok');
      const garbage = ['', 'x', 'a.b', `${token}0`, 'A'.repeat(8000), '!@#$%^&*().1', 'eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6InJvb3QifQ.', 'z.99999999999'];
      for (const t of garbage) {
        expect(await rpcError(call(kv, 'Range', { key: Buffer.from('/app/g') }, { token: t })), t.slice(0, 20)).toBe('UNAUTHENTICATED: etcdserver: invalid auth token');
      }
      // Metadata beyond the HTTP/2 header limit is refused by the transport, before any handler.
      expect(await rpcError(call(kv, 'Range', { key: Buffer.from('/app/g') }, { token: 'A'.repeat(100_000) }))).toMatch(/^INTERNAL: Received RST_STREAM/);
      expect(await rpcError(call(auth, 'Authenticate', { name: 'alice', password: 'x'.repeat(1 << 20) }))).toBe(
        'INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password',
      );
      expect(await rpcError(call(auth, 'Authenticate', { name: '\u0000', password: '' }))).toBe(
        'INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password',
      );
      // auth status is open; user add by a non-root token is not
      const st = await call(auth, 'AuthStatus', {}, { token });
      expect(st.enabled).toBe(true);
      expect(await rpcError(call(auth, 'UserAdd', { name: 'eve', password: 'p' }, { token }))).toBe('PERMISSION_DENIED: etcdserver: permission denied');
    } finally {
      auth.close();
      kv.close();
    }
    expect(m.exitCode).toBeNull();
    expect(await alice('get', '/app/g', '--print-value-only')).toBe('1\n');
  });

  it('user add and password change accept a bcrypt hashedPassword (etcdctl 3.5+) and refuse anything else', async () => {
    const auth = client('etcdserverpb.Auth', ep);
    try {
      const token = String((await call(auth, 'Authenticate', { name: 'root', password: 'rootpw' })).token);
      const { default: bcrypt } = await import('bcryptjs');
      await call(auth, 'UserAdd', { name: 'hashed', hashedPassword: await bcrypt.hash('pre-hashed', 4) }, { token });
      await call(auth, 'UserGrantRole', { user: 'hashed', role: 'r1' }, { token });
      expect(await ctlOk(ep, ['--user', 'hashed:pre-hashed', 'get', '/app/none'])).toBe('');
      expect(await rpcError(call(auth, 'UserAdd', { name: 'bad', hashedPassword: 'plain' }, { token }))).toBe('INVALID_ARGUMENT: auth: invalid hashed password');
      await call(auth, 'UserChangePassword', { name: 'hashed', hashedPassword: await bcrypt.hash('second', 5) }, { token });
      expect(await ctlOk(ep, ['--user', 'hashed:second', 'get', '/app/none'])).toBe('');
      await call(auth, 'UserDelete', { name: 'hashed' }, { token });
    } finally {
      auth.close();
    }
  });

  it('nothing secret reaches the logs', async () => {
    await sleep(200);
    const log = m.stderr;
    for (const secret of ['rootpw', 'alicepw', 'N3wSecret', 'pre-hashed', '$2a$', '$2b$']) expect(log.includes(secret), secret).toBe(false);
    expect(log).toMatch(/"msg":"added a user","user-name":"alice"/);
    expect(log).toMatch(/"msg":"invalid password","user-name":"alice"/);
    expect(log).not.toMatch(/[a-zA-Z]{16}\.\d+/); // simple tokens
  });

  it('auth state survives a restart; tokens do not need to (clients re-authenticate)', async () => {
    await m.stop();
    m.start();
    await m.waitHealthy();
    expect(await ctlErr(ep, ['get', '/app/g'])).toBe('Error: etcdserver: user name is empty');
    expect(await alice('get', '/app/g', '--print-value-only')).toBe('1\n');
  });

  it('auth disable (root only) opens everything again', async () => {
    expect(await root('auth', 'disable')).toBe('Authentication Disabled\n');
    expect(await ctlOk(ep, ['get', '/other', '--print-value-only'])).toBe('');
    expect(await ctlOk(ep, ['put', '/other', 'open'])).toBe('OK\n');
    // etcdctl carries on without a token when the server says auth is not enabled (as with etcd).
    expect(await ctlOk(ep, ['--user', 'alice:alicepw', 'get', '/other', '--print-value-only'])).toBe('open\n');
    const auth = client('etcdserverpb.Auth', ep);
    try {
      expect(await rpcError(call(auth, 'Authenticate', { name: 'alice', password: 'alicepw' }))).toBe('FAILED_PRECONDITION: etcdserver: authentication is not enabled');
    } finally {
      auth.close();
    }
  });
});

describe('auth with JWT tokens', () => {
  let m: Member;
  let ep: string;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    execFileSync('openssl', ['genrsa', '-out', path.join(dir, 'jwt.key'), '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', path.join(dir, 'jwt.key'), '-pubout', '-out', path.join(dir, 'jwt.pub')], { stdio: 'ignore' });
    const opt = `jwt,pub-key=${path.join(dir, 'jwt.pub')},priv-key=${path.join(dir, 'jwt.key')},sign-method=RS256,ttl=2m`;
    m = await singleNode(['--bcrypt-cost', '6', '--auth-token', opt]);
    ep = m.clientUrl;
    await setupUsers(ep);
  });
  afterAll(stopAll);

  it('etcdctl works with JWTs; the token carries the user, auth revision and expiry', async () => {
    expect(await ctlOk(ep, [...ALICE, 'put', '/app/j', 'v'])).toBe('OK\n');
    expect(await ctlErr(ep, [...ALICE, 'put', '/other', 'v'])).toBe('Error: etcdserver: permission denied');
    const auth = client('etcdserverpb.Auth', ep);
    const kv = client('etcdserverpb.KV', ep);
    try {
      const token = String((await call(auth, 'Authenticate', { name: 'alice', password: 'alicepw' })).token);
      const [h, p] = token.split('.');
      expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).toEqual({ alg: 'RS256', typ: 'JWT' });
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as { username: string; revision: number; exp: number };
      expect(claims.username).toBe('alice');
      const status = await call(auth, 'AuthStatus', {});
      expect(claims.revision).toBe(Number(status.authRevision));
      expect(claims.exp * 1000 - Date.now()).toBeGreaterThan(100_000);
      expect(claims.exp * 1000 - Date.now()).toBeLessThanOrEqual(120_000);
      expect(await rpcError(call(kv, 'Range', { key: Buffer.from('/app/j') }, { token }))).toBe('ok');
      // A forged payload with the same signature, and a token signed by another key, are refused.
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, username: 'root' })).toString('base64url')}.${token.split('.')[2]}`;
      expect(await rpcError(call(kv, 'Range', { key: Buffer.from('/other') }, { token: forged }))).toBe('UNAUTHENTICATED: etcdserver: invalid auth token');
      // Any auth change makes older tokens stale (clients re-authenticate on this error).
      await ctlOk(ep, [...ROOT, 'role', 'add', 'r2']);
      expect(await rpcError(call(kv, 'Range', { key: Buffer.from('/app/j') }, { token }))).toBe('INVALID_ARGUMENT: etcdserver: revision of auth store is old');
      expect(await ctlOk(ep, [...ALICE, 'get', '/app/j', '--print-value-only'])).toBe('v\n');
      // JWTs are verified, not remembered: a token stays valid across a restart.
      const fresh = String((await call(auth, 'Authenticate', { name: 'alice', password: 'alicepw' })).token);
      auth.close();
      kv.close();
      await m.stop();
      m.start();
      await m.waitHealthy();
      const kv2 = client('etcdserverpb.KV', ep);
      try {
        await eventually(() => call(kv2, 'Range', { key: Buffer.from('/app/j') }, { token: fresh }), 10_000);
      } finally {
        kv2.close();
      }
    } finally {
      auth.close();
      kv.close();
    }
  });

  it('a bad --auth-token stops the member at start with a clear message', async () => {
    const spec = { name: 'bad', clientPort: await freePort(), peerPort: await freePort(), dataDir: path.join(tempDir(), 'bad.etcd') };
    const args = memberArgs(spec, `bad=http://127.0.0.1:${spec.peerPort}`, 'new', 'bad', [
      '--auth-token', `jwt,priv-key=${path.join(dir, 'jwt.pub')},sign-method=RS256`,
    ]);
    const bad = new Member(spec, args).start();
    expect(await bad.exited).toBe(1);
    expect(bad.stderr).toContain(`--auth-token jwt: priv-key ${path.join(dir, 'jwt.pub')} is not a PEM private key`);
  });
});

describe('simple tokens in a 3-member cluster', () => {
  afterAll(stopAll);

  it('a token issued by one member is accepted by the others (the Authenticate entry goes through Raft)', async () => {
    const specs = await clusterSpecs(3);
    const ic = initialClusterOf(specs);
    const members = specs.map((s) => new Member(s, memberArgs(s, ic, 'new', 'auth-cluster', ['--bcrypt-cost', '6'])).start());
    await Promise.all(members.map((x) => x.waitHealthy()));
    const eps = members.map((x) => x.clientUrl);
    await setupUsers(eps[0]!);
    const auth = client('etcdserverpb.Auth', eps[0]!);
    const kvs = eps.map((e) => client('etcdserverpb.KV', e));
    try {
      const token = String((await call(auth, 'Authenticate', { name: 'alice', password: 'alicepw' })).token);
      await call(kvs[1]!, 'Put', { key: Buffer.from('/app/c'), value: Buffer.from('from-1') }, { token });
      const r = await call(kvs[2]!, 'Range', { key: Buffer.from('/app/c') }, { token });
      expect(Buffer.from((r.kvs as { value: Uint8Array }[])[0]!.value).toString()).toBe('from-1');
      expect(await rpcError(call(kvs[2]!, 'Put', { key: Buffer.from('/other'), value: Buffer.from('1') }, { token }))).toBe('PERMISSION_DENIED: etcdserver: permission denied');
      // etcdctl against another member, and with all endpoints
      expect(await ctlOk(eps[2]!, [...ALICE, 'get', '/app/c', '--print-value-only'])).toBe('from-1\n');
      expect(await ctlErr(eps, [...ALICE, 'put', '/other', '1'])).toBe('Error: etcdserver: permission denied');
    } finally {
      auth.close();
      for (const k of kvs) k.close();
    }
  });
});

describe('client-certificate auth (--client-cert-auth): the CN is the user when no token is sent', () => {
  afterAll(stopAll);

  it('CN-named users get their roles; a token still wins; an unknown CN gets nothing', async () => {
    const certs = path.join(tempDir(), 'certs');
    const init = spawnSync(process.execPath, [...tsetcdNodeArgs, 'tls', 'init', '--out', certs, '--node', 'infra0=127.0.0.1',
      '--client', 'root', '--client', 'alice', '--client', 'stranger'], { encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    const c = (f: string) => path.join(certs, f);
    const as = (cn: string) => [`--cacert=${c('ca.pem')}`, `--cert=${c(`client-${cn}.pem`)}`, `--key=${c(`client-${cn}-key.pem`)}`];
    const spec = { name: 'infra0', clientPort: await freePort(), peerPort: await freePort(), dataDir: path.join(tempDir(), 'cn.etcd') };
    const m = new Member(spec, [
      ...memberArgs(spec, `infra0=http://127.0.0.1:${spec.peerPort}`, 'new', 'cn-auth', ['--bcrypt-cost', '6']).map((a) =>
        a === `http://127.0.0.1:${spec.clientPort}` ? `https://127.0.0.1:${spec.clientPort}` : a),
      '--client-cert-auth', `--trusted-ca-file=${c('ca.pem')}`, `--cert-file=${c('infra0-server.pem')}`, `--key-file=${c('infra0-server-key.pem')}`,
    ]).start();
    const ep = `https://127.0.0.1:${spec.clientPort}`;
    await eventually(() => ctlOk(ep, [...as('root'), 'endpoint', 'health']), 20_000);

    // Set up as the certificate CN "root" (auth is still off), then enable.
    await ctlOk(ep, [...as('root'), 'user', 'add', 'root:rootpw']);
    await ctlOk(ep, [...as('root'), 'role', 'add', 'r1']);
    await ctlOk(ep, [...as('root'), 'role', 'grant-permission', 'r1', '--prefix', 'readwrite', '/app/']);
    await ctlOk(ep, [...as('root'), 'user', 'add', 'alice', '--no-password']);
    await ctlOk(ep, [...as('root'), 'user', 'grant-role', 'alice', 'r1']);
    expect(await ctlOk(ep, [...as('root'), 'auth', 'enable'])).toBe('Authentication Enabled\n');

    // No --user: the certificate speaks.
    expect(await ctlOk(ep, [...as('alice'), 'put', '/app/cn', 'by-cert'])).toBe('OK\n');
    expect(await ctlErr(ep, [...as('alice'), 'put', '/other', 'x'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlErr(ep, [...as('alice'), 'user', 'list'])).toBe('Error: etcdserver: permission denied');
    expect(await ctlOk(ep, [...as('root'), 'user', 'list'])).toBe('alice\nroot\n');
    expect(await ctlOk(ep, [...as('root'), 'put', '/other', 'root-wrote'])).toBe('OK\n');
    expect(await ctlErr(ep, [...as('stranger'), 'get', '/app/cn'])).toBe('Error: etcdserver: permission denied');
    // A token (from --user) names the user even on alice's connection.
    expect(await ctlOk(ep, [...as('alice'), '--user', 'root:rootpw', 'get', '/other', '--print-value-only'])).toBe('root-wrote\n');
    // Watches and leases go by the certificate too.
    const w = await etcdctl(ep, [...as('alice'), 'watch', '/other'], undefined, 10_000);
    expect(w.stdout + w.stderr).toContain('watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)');
    const lease = (await ctlOk(ep, [...as('alice'), 'lease', 'grant', '60'])).split(' ')[1]!;
    expect(await ctlOk(ep, [...as('alice'), 'put', '/app/leased', 'v', `--lease=${lease}`])).toBe('OK\n');
    expect(await ctlOk(ep, [...as('alice'), 'lease', 'revoke', lease])).toBe(`lease ${lease} revoked\n`);
    expect(m.exitCode).toBeNull();
  });
});
