import crypto from 'node:crypto';
import fs from 'node:fs';
import jsonwebtoken from 'jsonwebtoken';

// JSON Web Tokens as etcd issues them for `--auth-token jwt,...`: claims {"exp",
// "revision", "username"}, signed with RS*, PS*, ES* or HS* (the methods etcd 3.4's jwt
// library offers). The keys are loaded and checked here (etcd's rules: a pair must match,
// a public key alone makes a verify-only member); signing and verification are jsonwebtoken's.

export type JwtAlgorithm =
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'HS256' | 'HS384' | 'HS512';

const ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512',
]);

/** The EC curve each ES* method requires (a P-256 key cannot make ES384 signatures). */
const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

export interface JwtClaims {
  username: string;
  revision: number;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export interface JwtKeys {
  algorithm: JwtAlgorithm;
  /** Absent for a verify-only member (only `pub-key` given). */
  signingKey?: crypto.KeyObject;
  verifyKey: crypto.KeyObject;
}

export class JwtConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwtConfigError';
  }
}

export function isJwtAlgorithm(s: string): s is JwtAlgorithm {
  return ALGORITHMS.has(s);
}

function readKeyFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new JwtConfigError(`--auth-token jwt: cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/**
 * Loads and checks the keys for `sign-method`: RSA keys for RS/PS, EC keys on the matching
 * curve for ES, the raw bytes of `priv-key` as the HMAC secret for HS. When both keys are
 * given they must be a pair.
 */
export function loadJwtKeys(algorithm: string, privKeyFile: string | undefined, pubKeyFile: string | undefined): JwtKeys {
  if (!isJwtAlgorithm(algorithm)) {
    throw new JwtConfigError(`--auth-token jwt: sign-method ${JSON.stringify(algorithm)} is not one of ${[...ALGORITHMS].join(', ')}`);
  }
  if (algorithm.startsWith('HS')) {
    if (!privKeyFile) throw new JwtConfigError(`--auth-token jwt: sign-method ${algorithm} needs priv-key (the HMAC secret file)`);
    const secret = crypto.createSecretKey(readKeyFile(privKeyFile, 'priv-key'));
    return { algorithm, signingKey: secret, verifyKey: secret };
  }
  if (!privKeyFile && !pubKeyFile) throw new JwtConfigError(`--auth-token jwt: sign-method ${algorithm} needs priv-key and/or pub-key`);
  let priv: crypto.KeyObject | undefined;
  let pub: crypto.KeyObject | undefined;
  try {
    if (privKeyFile) priv = crypto.createPrivateKey(readKeyFile(privKeyFile, 'priv-key'));
  } catch (e) {
    if (e instanceof JwtConfigError) throw e;
    throw new JwtConfigError(`--auth-token jwt: priv-key ${privKeyFile} is not a PEM private key: ${(e as Error).message}`);
  }
  try {
    if (pubKeyFile) pub = crypto.createPublicKey(readKeyFile(pubKeyFile, 'pub-key'));
  } catch (e) {
    if (e instanceof JwtConfigError) throw e;
    throw new JwtConfigError(`--auth-token jwt: pub-key ${pubKeyFile} is not a PEM public key: ${(e as Error).message}`);
  }
  const wantType = algorithm.startsWith('ES') ? 'ec' : 'rsa';
  for (const [k, what] of [[priv, 'priv-key'], [pub, 'pub-key']] as const) {
    if (!k) continue;
    const type = k.asymmetricKeyType;
    // PS* accepts plain RSA keys as well as RSA-PSS ones.
    if (!(type === wantType || (algorithm.startsWith('PS') && type === 'rsa-pss'))) {
      throw new JwtConfigError(`--auth-token jwt: ${what} is a ${type} key; sign-method ${algorithm} needs ${wantType === 'ec' ? 'an EC' : 'an RSA'} key`);
    }
    if (wantType === 'ec' && k.asymmetricKeyDetails?.namedCurve !== EC_CURVES[algorithm]) {
      throw new JwtConfigError(`--auth-token jwt: ${what} is on curve ${k.asymmetricKeyDetails?.namedCurve}; ${algorithm} needs ${EC_CURVES[algorithm]}`);
    }
  }
  if (priv && pub) {
    const fromPriv = crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' });
    if (!fromPriv.equals(pub.export({ type: 'spki', format: 'der' }))) {
      throw new JwtConfigError("--auth-token jwt: auth: public and private keys don't match");
    }
  }
  const verifyKey = pub ?? crypto.createPublicKey(priv!);
  return priv ? { algorithm, signingKey: priv, verifyKey } : { algorithm, verifyKey };
}

/** Issues a token with etcd's claims and nothing else (no "iat"). */
export function signJwt(keys: JwtKeys, claims: JwtClaims): string {
  if (!keys.signingKey) throw new Error('signJwt: verify-only keys');
  return jsonwebtoken.sign({ exp: claims.exp, revision: claims.revision, username: claims.username }, keys.signingKey, {
    algorithm: keys.algorithm, noTimestamp: true,
  });
}

/** Tokens larger than this are not ours (ours are well under 1 KiB even with RS512). */
const MAX_TOKEN_CHARS = 8192;

/**
 * Verifies a token: the configured algorithm only (no "none", no switching to HMAC with
 * the public key), a valid signature, not expired, and etcd's claims present. The error
 * text is for logs only.
 */
export function verifyJwt(keys: JwtKeys, token: string, nowMs = Date.now()): { claims: JwtClaims } | { error: string } {
  if (token.length > MAX_TOKEN_CHARS) return { error: 'token too large' };
  let payload: unknown;
  try {
    payload = jsonwebtoken.verify(token, keys.verifyKey, { algorithms: [keys.algorithm], clockTimestamp: Math.floor(nowMs / 1000) });
  } catch (e) {
    return { error: (e as Error).message };
  }
  const c = payload as Record<string, unknown>;
  if (!c || typeof c !== 'object') return { error: 'claims are not an object' };
  if (typeof c.exp !== 'number') return { error: 'token has no expiry' };
  if (typeof c.username !== 'string' || typeof c.revision !== 'number' || !Number.isSafeInteger(c.revision)) {
    return { error: 'token lacks etcd claims' };
  }
  return { claims: { username: c.username, revision: c.revision, exp: c.exp } };
}
