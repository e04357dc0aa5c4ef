import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../../src/api/grpc.js';
import {
  ctlOk, eventually, sleep, startCluster, stopAll, type MemberSpec,
} from './harness.js';

// Watch correctness, randomized: watchers with various start revisions, key ranges,
// filters and prev_kv on every member of a 3-member cluster receive exactly the events a
// simple model of the writes predicts (nothing missing, duplicated or out of order),
// across a leader change and a compaction. Seeded: WATCH_MODEL_SEED replays a run.

type Kv = { value: string; create: number; mod: number; version: number };
type Ev = { type: 'PUT' | 'DELETE'; key: string; value: string; rev: number; prev?: string };

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seed = Number(process.env.WATCH_MODEL_SEED ?? Date.now() % 100000);
const rand = mulberry32(seed);
const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
const KEYS = ['a/1', 'a/2', 'a/3', 'b/1', 'b/2', 'c'];

let specs: MemberSpec[];
const ep = (s: MemberSpec) => `http://127.0.0.1:${s.clientPort}`;

beforeAll(async () => {
  ({ specs } = await startCluster(3));
});
afterAll(stopAll);

/** The model: the store's state and every event by revision. */
class Model {
  state = new Map<string, Kv>();
  events: Ev[] = [];
  put(key: string, value: string, rev: number): void {
    const prev = this.state.get(key);
    this.state.set(key, { value, create: prev ? prev.create : rev, mod: rev, version: (prev?.version ?? 0) + 1 });
    this.events.push({ type: 'PUT', key, value, rev, prev: prev?.value });
  }
  del(key: string, rev: number): boolean {
    const prev = this.state.get(key);
    if (!prev) return false;
    this.state.delete(key);
    this.events.push({ type: 'DELETE', key, value: '', rev, prev: prev.value });
    return true;
  }
}

interface WatcherSpec {
  key: string;
  prefix: boolean;
  startRev: number;
  noPut: boolean;
  noDelete: boolean;
  prevKv: boolean;
}

function expected(model: Model, w: WatcherSpec, upTo: number): string[] {
  return model.events
    .filter((e) => e.rev >= w.startRev && e.rev <= upTo)
    .filter((e) => (w.prefix ? e.key.startsWith(w.key) : e.key === w.key))
    .filter((e) => !(e.type === 'PUT' && w.noPut) && !(e.type === 'DELETE' && w.noDelete))
    .map((e) => `${e.rev} ${e.type} ${e.key}=${e.value}${w.prevKv && e.prev !== undefined ? ` prev=${e.prev}` : ''}`);
}

describe(`watch model (WATCH_MODEL_SEED=${seed})`, () => {
  it('every watcher receives exactly the modelled events, in order', async () => {
    const model = new Model();
    const WatchClient = grpc.makeGenericClientConstructor(serviceDefinition('etcdserverpb.Watch'), 'Watch');
    const KvClient = grpc.makeGenericClientConstructor(serviceDefinition('etcdserverpb.KV'), 'KV');
    const kvs = specs.map((s) => new KvClient(`127.0.0.1:${s.clientPort}`, grpc.credentials.createInsecure()) as unknown as Record<string, Function>);
    const call = (c: Record<string, Function>, method: string, req: object): Promise<any> =>
      new Promise((resolve, reject) => c[method]!.call(c, req, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));

    async function randomWrite(): Promise<void> {
      const c = pick(kvs);
      const r = rand();
      if (r < 0.55) {
        const key = pick(KEYS);
        const value = `v${Math.floor(rand() * 1000)}`;
        const res = await call(c, 'Put', { key: Buffer.from(key), value: Buffer.from(value) });
        model.put(key, value, Number(res.header.revision));
      } else if (r < 0.75) {
        const key = pick(KEYS);
        const res = await call(c, 'DeleteRange', { key: Buffer.from(key) });
        if (Number(res.deleted) > 0) model.del(key, Number(res.header.revision));
      } else {
        // a txn writing two distinct keys in one revision
        const k1 = pick(KEYS);
        let k2 = pick(KEYS);
        while (k2 === k1) k2 = pick(KEYS);
        const v = `t${Math.floor(rand() * 1000)}`;
        const res = await call(c, 'Txn', {
          compare: [],
          success: [
            { request_put: { key: Buffer.from(k1), value: Buffer.from(v) } },
            { request_delete_range: { key: Buffer.from(k2) } },
          ],
          failure: [],
        });
        const rev = Number(res.header.revision);
        model.put(k1, v, rev);
        model.del(k2, rev);
      }
    }

    for (let i = 0; i < 60; i++) await randomWrite();
    const afterPhaseA = model.events.at(-1)!.rev;

    // watchers on random members, starting in the past, now, or slightly in the future
    const watchers: { spec: WatcherSpec; got: string[]; stream: grpc.ClientDuplexStream<any, any>; canceled?: string }[] = [];
    for (let i = 0; i < 24; i++) {
      const prefix = rand() < 0.5;
      const spec: WatcherSpec = {
        key: prefix ? pick(['a/', 'b/', '']) : pick(KEYS),
        prefix,
        startRev: 2 + Math.floor(rand() * (afterPhaseA + 3)),
        noPut: rand() < 0.15,
        noDelete: rand() < 0.15,
        prevKv: rand() < 0.5,
      };
      const client = new WatchClient(`127.0.0.1:${pick(specs).clientPort}`, grpc.credentials.createInsecure()) as unknown as { Watch: () => grpc.ClientDuplexStream<any, any> };
      const stream = client.Watch();
      const w = { spec, got: [] as string[], stream, canceled: undefined as string | undefined };
      stream.on('data', (res: any) => {
        if (res.canceled) w.canceled = res.cancel_reason || 'canceled';
        for (const ev of res.events ?? []) {
          const type = ev.type === 1 ? 'DELETE' : 'PUT';
          const prev = ev.prev_kv ? ` prev=${Buffer.from(ev.prev_kv.value).toString()}` : '';
          w.got.push(`${Number(ev.kv.mod_revision)} ${type} ${Buffer.from(ev.kv.key).toString()}=${type === 'PUT' ? Buffer.from(ev.kv.value).toString() : ''}${prev}`);
        }
      });
      stream.on('error', () => {});
      const key = spec.key === '' ? Buffer.from([0]) : Buffer.from(spec.key);
      const rangeEnd = spec.prefix ? (spec.key === '' ? Buffer.from([0]) : Buffer.from(spec.key.slice(0, -1) + String.fromCharCode(spec.key.charCodeAt(spec.key.length - 1) + 1))) : Buffer.alloc(0);
      const filters = [...(spec.noPut ? [0] : []), ...(spec.noDelete ? [1] : [])];
      stream.write({ create_request: { key, range_end: rangeEnd, start_revision: spec.startRev, prev_kv: spec.prevKv, filters } });
      watchers.push(w);
    }

    // phase B: writes through every member, with a leader change in the middle
    for (let i = 0; i < 40; i++) await randomWrite();
    const st = (await ctlOk(specs.map(ep), ['endpoint', 'status'])).trim().split('\n').map((l) => l.split(', '));
    const follower = st.find((r) => r[4] === 'false')!;
    const leader = st.find((r) => r[4] === 'true')!;
    await ctlOk(leader[0]!, ['move-leader', follower[1]!]);
    await eventually(async () => {
      const rows = (await ctlOk(specs.map(ep), ['endpoint', 'status'])).trim().split('\n').map((l) => l.split(', '));
      expect(rows.find((r) => r[4] === 'true')?.[1]).toBe(follower[1]);
    });
    for (let i = 0; i < 40; i++) await randomWrite();
    // compaction of old history does not disturb synced watchers
    await call(kvs[0]!, 'Compact', { revision: afterPhaseA, physical: true });
    for (let i = 0; i < 20; i++) await randomWrite();
    const finalRev = model.events.at(-1)!.rev;

    await eventually(async () => {
      for (const w of watchers) expect(w.got).toEqual(expected(model, w.spec, finalRev));
    }, 15_000, 250);
    for (const w of watchers) {
      expect(w.canceled).toBeUndefined();
      w.stream.cancel();
    }
    await sleep(100);
  }, 120_000);
});
