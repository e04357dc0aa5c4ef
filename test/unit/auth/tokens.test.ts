import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthTokenOptionError, JwtTokens, SimpleTokens, parseAuthTokenOption, parseSimpleToken, newSimpleTokenPrefix,
} from '../../../src/auth/tokens.js';
import { loadJwtKeys, signJwt, verifyJwt } from '../../../src/auth/jwt.js';
import { bcryptHasher } from '../../../src/auth/hasher.js';

let dir: string;
const files: Record<string, string> = {};

function writePem(name: string, pem: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, pem);
  files[name] = f;
  return f;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  const pem = { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as const;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, ...pem });
  writePem('rsa.key', rsa.privateKey);
  writePem('rsa.pub', rsa.publicKey);
  const rsa2 = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, ...pem });
  writePem('rsa2.pub', rsa2.publicKey);
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1', ...pem });
  writePem('ec.key', ec.privateKey);
  writePem('ec.pub', ec.publicKey);
  fs.writeFileSync(path.join(dir, 'hmac.secret'), crypto.randomBytes(32));
  files['hmac.secret'] = path.join(dir, 'hmac.secret');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('--auth-token parsing', () => {
  it('simple, with --auth-token-ttl (0 means 300 s)', () => {
    expect(parseAuthTokenOption('simple', 30)).toEqual({ kind: 'simple', ttlMs: 30_000 });
    expect(parseAuthTokenOption('simple', 0)).toEqual({ kind: 'simple', ttlMs: 300_000 });
  });

  it('jwt with keys, sign-method and a Go duration ttl; unknown options are only warned about', () => {
    const warnings: string[] = [];
    const c = parseAuthTokenOption(`jwt,pub-key=${files['rsa.pub']},priv-key=${files['rsa.key']},sign-method=RS256,ttl=10m,extra=1`, 300, (w) => warnings.push(w));
    expect(c.kind).toBe('jwt');
    expect(c.ttlMs).toBe(600_000);
    expect(warnings.join()).toMatch(/extra/);
    expect(parseAuthTokenOption(`jwt,priv-key=${files['rsa.key']},sign-method=RS256`, 300).ttlMs).toBe(5 * 60_000);
  });

  it('refuses malformed options with a message naming the problem', () => {
    const bad: Array<[string, RegExp]> = [
      ['nope', /unknown token type "nope"/],
      ['jwt,sign-method', /not key=value/],
      ['jwt,ttl=1m,ttl=2m', /ttl given twice/],
      [`jwt,priv-key=${files['rsa.key']},sign-method=XX256`, /sign-method "XX256"/],
      [`jwt,priv-key=${files['rsa.key']},sign-method=RS256,ttl=5`, /not a duration/],
      ['jwt,sign-method=RS256', /needs priv-key and\/or pub-key/],
      [`jwt,priv-key=/does/not/exist,sign-method=RS256`, /cannot read priv-key/],
      [`jwt,priv-key=${files['ec.key']},sign-method=RS256`, /ec key; sign-method RS256 needs an RSA key/],
      [`jwt,priv-key=${files['ec.key']},sign-method=ES384`, /ES384 needs secp384r1/],
      [`jwt,priv-key=${files['rsa.key']},pub-key=${files['rsa2.pub']},sign-method=RS256`, /public and private keys don't match/],
      [`jwt,priv-key=${files['rsa.pub']},sign-method=RS256`, /not a PEM private key/],
      ['jwt,sign-method=HS256', /needs priv-key \(the HMAC secret file\)/],
    ];
    for (const [opt, re] of bad) {
      expect(() => parseAuthTokenOption(opt, 300), opt).toThrowError(AuthTokenOptionError);
      expect(() => parseAuthTokenOption(opt, 300), opt).toThrowError(re);
    }
  });
});

describe('simple tokens', () => {
  it('are "<16 letters>.<index>"', () => {
    const p = newSimpleTokenPrefix();
    expect(p).toMatch(/^[a-zA-Z]{16}$/);
    expect(parseSimpleToken(`${p}.42`)).toEqual({ prefix: p, index: 42 });
    for (const t of ['', 'abc', 'a.b', 'a.1.2', 'a.-1', 'a.99999999999999999999']) expect(parseSimpleToken(t), t).toBeUndefined();
  });

  it('expire after the TTL without use; each use extends them', () => {
    let now = 1_000_000;
    const t = new SimpleTokens(10_000, () => now);
    t.assign('A.1', 'alice');
    t.assign('B.2', 'bob');
    now += 9_000;
    expect(t.lookup('A.1')).toBe('alice'); // extends A to now + 10 s
    now += 9_000;
    expect(t.lookup('A.1')).toBe('alice');
    expect(t.lookup('B.2')).toBeUndefined(); // 18 s unused
    now += 10_001;
    expect(t.lookup('A.1')).toBeUndefined();
    expect(t.size).toBe(0);
  });

  it('are dropped for a deleted user and all at once when auth is disabled', () => {
    const t = new SimpleTokens(60_000);
    t.assign('A.1', 'alice');
    t.assign('A.2', 'alice');
    t.assign('B.3', 'bob');
    t.invalidateUser('alice');
    expect([t.lookup('A.1'), t.lookup('A.2'), t.lookup('B.3')]).toEqual([undefined, undefined, 'bob']);
    t.clear();
    expect(t.lookup('B.3')).toBeUndefined();
  });
});

describe('JWT tokens', () => {
  const methods: Array<[string, string | undefined, string | undefined]> = [
    ['RS256', 'rsa.key', 'rsa.pub'],
    ['RS512', 'rsa.key', undefined],
    ['PS256', 'rsa.key', 'rsa.pub'],
    ['ES256', 'ec.key', 'ec.pub'],
    ['HS256', 'hmac.secret', undefined],
  ];
  for (const [alg, priv, pub] of methods) {
    it(`${alg}: etcd's claims round-trip`, () => {
      const keys = loadJwtKeys(alg, priv && files[priv], pub && files[pub]);
      const t = new JwtTokens(keys, 60_000);
      const token = t.sign('alice', 7);
      const [h, p] = token.split('.');
      expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).toEqual({ alg, typ: 'JWT' });
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
      expect(Object.keys(claims)).toEqual(['exp', 'revision', 'username']);
      expect(t.verify(token)).toEqual({ info: { username: 'alice', revision: 7 } });
    });
  }

  it('refuses expired, tampered, foreign, unsigned and wrong-algorithm tokens', () => {
    const keys = loadJwtKeys('RS256', files['rsa.key'], files['rsa.pub']);
    let now = Date.now();
    const t = new JwtTokens(keys, 60_000, () => now);
    const good = t.sign('alice', 3);
    const [h, p, s] = good.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ exp: 9e9, revision: 3, username: 'root' })).toString('base64url');
    expect(t.verify(`${h}.${forged}.${s}`)).toMatchObject({ error: expect.stringMatching(/signature/) });
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    expect(t.verify(`${none}.${p}.`)).toHaveProperty('error');
    // HS256 signed with the public key's PEM: the classic algorithm-confusion forgery.
    const hs = jwtWith('HS256', fs.readFileSync(files['rsa.pub']!), { exp: 9e9, revision: 3, username: 'root' });
    expect(t.verify(hs)).toHaveProperty('error');
    const other = new JwtTokens(loadJwtKeys('ES256', files['ec.key'], undefined), 60_000);
    expect(t.verify(other.sign('alice', 3))).toHaveProperty('error');
    for (const junk of ['', 'x', 'a.b', 'a.b.c', '....', 'é.é.é', 'x'.repeat(10_000)]) expect(t.verify(junk), junk).toHaveProperty('error');
    now += 61_000;
    expect(t.verify(good)).toMatchObject({ error: expect.stringMatching(/expired/) });
  });

  it('a member with only the public key verifies but cannot sign', () => {
    const signer = new JwtTokens(loadJwtKeys('RS256', files['rsa.key'], undefined), 60_000);
    const verifier = new JwtTokens(loadJwtKeys('RS256', undefined, files['rsa.pub']), 60_000);
    expect(verifier.canSign).toBe(false);
    expect(verifier.verify(signer.sign('bob', 1))).toEqual({ info: { username: 'bob', revision: 1 } });
    expect(() => signJwt(verifier.keys, { username: 'x', revision: 1, exp: 1 })).toThrow(/verify-only/);
    expect(verifyJwt(verifier.keys, 'a.b.c')).toHaveProperty('error');
  });
});

function jwtWith(alg: string, secret: Buffer, claims: object): string {
  const h = Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url');
  const p = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

describe('bcrypt password hashing', () => {
  it('hashes at the given cost and verifies', async () => {
    const h = await bcryptHasher.hash('s3cret', 4);
    expect(h).toMatch(/^\$2[ab]\$04\$[./A-Za-z0-9]{53}$/);
    expect(bcryptHasher.isHash(h)).toBe(true);
    expect(await bcryptHasher.verify('s3cret', h)).toBe(true);
    expect(await bcryptHasher.verify('s3creT', h)).toBe(false);
    await expect(bcryptHasher.hash('x', 3)).rejects.toThrow(/cost/);
  });

  it("verifies hashes made by etcd 3.4 (Go's bcrypt) and by libxcrypt", async () => {
    // Taken from a real etcd 3.4.23 backend after `etcdctl user add alice:alicepw`.
    const fromEtcd = '$2a$10$.nw/J.EnjjrQ079DdqumE.FFzgzG7ZGuCW1wNlIcvu/EOZ1klbVGG';
    expect(await bcryptHasher.verify('alicepw', fromEtcd)).toBe(true);
    expect(await bcryptHasher.verify('alicepx', fromEtcd)).toBe(false);
    // perl -e 'print crypt("hello world", q($2b$05$abcdefghijklmnopqrstuu))' (glibc/libxcrypt)
    expect(await bcryptHasher.verify('hello world', '$2b$05$abcdefghijklmnopqrstuuJcuuaCGGY0XXgLS3RcY/wgxkgml5ory')).toBe(true);
  });

  it('malformed hashes never verify and never throw', async () => {
    for (const h of ['', 'plain', '$2a$99$abcdefghijklmnopqrstuuJcuuaCGGY0XXgLS3RcY/wgxkgml5ory', '$2a$05$short']) {
      expect(bcryptHasher.isHash(h), h).toBe(false);
      expect(await bcryptHasher.verify('x', h), h).toBe(false);
    }
  });
});
