import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backend, type BackendOptions } from '../../../src/backend/backend.js';
import { MvccStore } from '../../../src/mvcc/store.js';
import type { LeaseHooks, MvccEvent } from '../../../src/mvcc/types.js';

export const b = (s: string): Buffer => Buffer.from(s);

/** A minimal lessor: a set of lease IDs and the keys attached to each. */
export class FakeLessor implements LeaseHooks {
  readonly leases = new Map<bigint, Set<string>>();
  grant(id: bigint): void {
    this.leases.set(id, new Set());
  }
  exists(id: bigint): boolean {
    return this.leases.has(id);
  }
  attach(id: bigint, key: Buffer): void {
    const s = this.leases.get(id);
    if (!s) throw new Error(`attach to unknown lease ${id}`);
    s.add(key.toString('latin1'));
  }
  detach(id: bigint, key: Buffer): void {
    this.leases.get(id)?.delete(key.toString('latin1'));
  }
  keys(id: bigint): string[] {
    return [...(this.leases.get(id) ?? [])].sort();
  }
}

export interface Harness {
  dir: string;
  backend: Backend;
  store: MvccStore;
  lessor: FakeLessor;
  events: Array<{ revision: number; events: MvccEvent[] }>;
  /** Next Raft index (monotonic across reopen). */
  ri: () => number;
  reopen: (opts?: { crash?: boolean }) => Promise<void>;
  close: () => Promise<void>;
}

export async function makeHarness(backendOpts: BackendOptions = {}): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  let raftIndex = 0;
  const lessor = new FakeLessor();
  const h: Harness = {
    dir,
    backend: undefined as unknown as Backend,
    store: undefined as unknown as MvccStore,
    lessor,
    events: [],
    ri: () => ++raftIndex,
    reopen: async (opts = {}) => {
      await h.store.close();
      if (opts.crash) await h.backend.abandon();
      else await h.backend.close();
      await openInto();
    },
    close: async () => {
      await h.store.close().catch(() => {});
      await h.backend.abandon().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const openInto = async (): Promise<void> => {
    h.backend = await Backend.open(path.join(dir, 'db'), { batchIntervalMs: 60_000, ...backendOpts });
    h.store = await MvccStore.open(h.backend, { leases: lessor });
    raftIndex = Math.max(raftIndex, h.store.consistentIndex);
    h.store.onEvents = (revision, events) => h.events.push({ revision, events });
  };
  await openInto();
  return h;
}

/** Plain-object view of a kv for readable assertions. */
export function kvView(kv: {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: bigint;
}): { key: string; value: string; create: number; mod: number; ver: number; lease: bigint } {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    create: kv.createRevision,
    mod: kv.modRevision,
    ver: kv.version,
    lease: kv.lease,
  };
}
