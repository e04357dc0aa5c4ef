// Leases, as etcd keeps them. State changes (grant, revoke, checkpoint) arrive through
// Raft and are applied on every member; only the leader tracks expiry deadlines, renews on
// keep-alive, and proposes revocation of expired leases. Followers hold leases "forever"
// until they become leader, then give each lease its remaining TTL (checkpointed through
// Raft so a leader change does not reset TTLs, as etcd 3.6 does by default).

/** etcd's upper bound for a TTL, in seconds. */
export const MAX_LEASE_TTL_SEC = 9_000_000_000;
const FOREVER_MS = Number.MAX_SAFE_INTEGER;

export class LeaseError extends Error {}
export const leaseNotFound = () => new LeaseError('lease not found');
export const leaseExists = () => new LeaseError('lease already exists');
export const leaseTtlTooLarge = () => new LeaseError('too large lease TTL');

export interface Lease {
  id: bigint;
  /** TTL as granted (after the minimum-TTL rule), in seconds. */
  ttlSec: number;
  /** Remaining TTL recorded by the last checkpoint (0 = none: use ttlSec). */
  remainingTtlSec: number;
  /** Leader only: when the lease expires (ms since epoch); FOREVER_MS on followers. */
  expiryMs: number;
  /** Attached keys, as latin1 strings of the raw key bytes (binary-safe map keys). */
  keys: Set<string>;
}

export interface LeaseRecord {
  id: bigint;
  ttlSec: number;
  remainingTtlSec: number;
}

/** Minimum TTL etcd allows: 1.5 election timeouts, rounded up to whole seconds. */
export function minLeaseTtlSec(electionTimeoutMs: number): number {
  return Math.ceil((3 * electionTimeoutMs) / 2 / 1000);
}

export class Lessor {
  private readonly leases = new Map<bigint, Lease>();
  private primary = false;

  constructor(readonly minTtlSec: number, private readonly now: () => number = Date.now) {}

  get isPrimary(): boolean {
    return this.primary;
  }

  get size(): number {
    return this.leases.size;
  }

  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  get(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  ids(): bigint[] {
    return [...this.leases.keys()];
  }

  /** Forgets every lease (before reloading them from a new database image). */
  clear(): void {
    this.leases.clear();
  }

  /** Restores a persisted lease at startup (no expiry until this member leads). */
  restore(rec: LeaseRecord): void {
    this.leases.set(rec.id, { ...rec, expiryMs: FOREVER_MS, keys: new Set() });
  }

  grant(id: bigint, ttlSec: number): Lease {
    if (ttlSec > MAX_LEASE_TTL_SEC) throw leaseTtlTooLarge();
    if (this.leases.has(id)) throw leaseExists();
    const ttl = Math.max(ttlSec, this.minTtlSec);
    const lease: Lease = { id, ttlSec: ttl, remainingTtlSec: 0, expiryMs: FOREVER_MS, keys: new Set() };
    if (this.primary) lease.expiryMs = this.now() + ttl * 1000;
    this.leases.set(id, lease);
    return lease;
  }

  /** Removes the lease and returns the keys that must be deleted with it. */
  revoke(id: bigint): Buffer[] {
    const lease = this.leases.get(id);
    if (!lease) throw leaseNotFound();
    this.leases.delete(id);
    return [...lease.keys].map((k) => Buffer.from(k, 'latin1'));
  }

  /** Keep-alive (leader only): restarts the full TTL; returns it. */
  renew(id: bigint): number {
    const lease = this.leases.get(id);
    if (!lease) throw leaseNotFound();
    lease.remainingTtlSec = 0;
    lease.expiryMs = this.now() + lease.ttlSec * 1000;
    return lease.ttlSec;
  }

  checkpoint(id: bigint, remainingTtlSec: number): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    lease.remainingTtlSec = remainingTtlSec;
    if (this.primary) lease.expiryMs = this.now() + remainingTtlSec * 1000;
  }

  attach(id: bigint, key: Buffer): void {
    const lease = this.leases.get(id);
    if (!lease) throw leaseNotFound();
    lease.keys.add(key.toString('latin1'));
  }

  detach(id: bigint, key: Buffer): void {
    this.leases.get(id)?.keys.delete(key.toString('latin1'));
  }

  /** Seconds left (leader's view); -1 when unknown lease. On followers: the granted/checkpointed TTL. */
  remainingSec(id: bigint): number {
    const lease = this.leases.get(id);
    if (!lease) return -1;
    if (lease.expiryMs === FOREVER_MS) return lease.remainingTtlSec > 0 ? lease.remainingTtlSec : lease.ttlSec;
    return Math.max(0, Math.floor((lease.expiryMs - this.now()) / 1000));
  }

  /** This member became leader: every lease gets its remaining (checkpointed) TTL from now. */
  promote(extendMs = 0): void {
    this.primary = true;
    const now = this.now();
    for (const l of this.leases.values()) {
      const ttl = l.remainingTtlSec > 0 ? l.remainingTtlSec : l.ttlSec;
      l.expiryMs = now + ttl * 1000 + extendMs;
    }
  }

  demote(): void {
    this.primary = false;
    for (const l of this.leases.values()) l.expiryMs = FOREVER_MS;
  }

  /** Leader only: leases whose deadline passed, at most `limit` of them. */
  expired(limit: number): bigint[] {
    if (!this.primary) return [];
    const now = this.now();
    const out: bigint[] = [];
    for (const l of this.leases.values()) {
      if (l.expiryMs <= now) {
        out.push(l.id);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** Leader only: remaining TTLs worth checkpointing (leases with more than `minSec` left). */
  checkpoints(): { id: bigint; remainingTtlSec: number }[] {
    if (!this.primary) return [];
    const now = this.now();
    const out: { id: bigint; remainingTtlSec: number }[] = [];
    for (const l of this.leases.values()) {
      const remaining = Math.ceil((l.expiryMs - now) / 1000);
      if (remaining > 0 && remaining < l.ttlSec) out.push({ id: l.id, remainingTtlSec: remaining });
    }
    return out;
  }
}
