// How passwords are hashed and checked. The auth store only ever sees hashes: the member
// that receives a user add / change password request hashes the password before proposing
// it, so neither the Raft log nor the backend ever holds clear text.

export const BCRYPT_MIN_COST = 4;
export const BCRYPT_MAX_COST = 31;
export const BCRYPT_DEFAULT_COST = 10;

export interface PasswordHasher {
  hash(password: string, cost: number): Promise<string>;
  /** False on a mismatch and on a malformed hash (never throws for bad input). */
  verify(password: string, hash: string): Promise<boolean>;
  /** Whether `hash` is in this hasher's format (for pre-hashed passwords from etcdctl 3.5+). */
  isHash(hash: string): boolean;
}

/** "$2a$10$" + 22 salt chars + 31 hash chars; $2a$ is what Go's bcrypt (etcd) writes, bcryptjs writes $2b$. */
const BCRYPT_HASH_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

type Bcryptjs = typeof import('bcryptjs');
let bcryptjs: Promise<Bcryptjs> | undefined;

/** Loaded on first use: members that never see a password do not load it. */
function lib(): Promise<Bcryptjs> {
  bcryptjs ??= import('bcryptjs').then((m) => ((m as unknown as { default?: Bcryptjs }).default ?? m));
  return bcryptjs;
}

/** bcrypt via the bcryptjs package; compatible with the hashes etcd (Go's x/crypto/bcrypt) stores. */
export const bcryptHasher: PasswordHasher = {
  async hash(password, cost) {
    if (!Number.isInteger(cost) || cost < BCRYPT_MIN_COST || cost > BCRYPT_MAX_COST) {
      throw new Error(`bcrypt cost must be an integer from ${BCRYPT_MIN_COST} to ${BCRYPT_MAX_COST}, got ${cost}`);
    }
    return (await lib()).hash(password, cost);
  },
  async verify(password, hash) {
    if (!bcryptHasher.isHash(hash)) return false;
    try {
      return await (await lib()).compare(password, hash);
    } catch {
      return false;
    }
  },
  isHash(hash) {
    const m = BCRYPT_HASH_RE.exec(hash);
    if (!m) return false;
    const cost = Number(m[1]);
    return cost >= BCRYPT_MIN_COST && cost <= BCRYPT_MAX_COST;
  },
};
