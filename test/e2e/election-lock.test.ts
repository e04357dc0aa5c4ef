import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Etcd3, EtcdLockFailedError } from 'etcd3';
import {
  clusterSpecs, ctlOk, etcdctlBin, eventually, initialClusterOf, Member, memberArgs, repoRoot, sleep, stopAll, tempDir,
} from './harness.js';

// Leader election and locks against a 3-member tsetcd cluster:
//  - the v3election / v3lock gRPC services with a grpc-js client (clients spread over members);
//  - `etcdctl lock` and `etcdctl elect` (they run clientv3/concurrency over KV+Lease+Watch);
//  - the npm etcd3 client's Lock and Election helpers.

let members: Member[] = [];
let eps: string[] = [];
const addr = (ep: string) => ep.replace('http://', '');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Client = any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let pkg: any;

beforeAll(async () => {
  const specs = await clusterSpecs(3);
  const initial = initialClusterOf(specs);
  members = specs.map((s) => new Member(s, memberArgs(s, initial, 'new')).start());
  await Promise.all(members.map((m) => m.waitHealthy()));
  eps = members.map((m) => m.clientUrl);
  const def = protoLoader.loadSync(['rpc.proto', 'v3election.proto', 'v3lock.proto'], {
    includeDirs: [path.join(repoRoot, 'proto')], keepCase: true, longs: String, enums: Number, defaults: false,
  });
  pkg = grpc.loadPackageDefinition(def);
});
afterAll(async () => {
  for (const c of openClients) c.close();
  await stopAll();
});

const openClients: Client[] = [];
function client(kind: 'election' | 'lock' | 'lease' | 'kv', i: number): Client {
  const ctor = { election: pkg.v3electionpb.Election, lock: pkg.v3lockpb.Lock, lease: pkg.etcdserverpb.Lease, kv: pkg.etcdserverpb.KV }[kind];
  const c = new ctor(addr(eps[i % eps.length]!), grpc.credentials.createInsecure());
  openClients.push(c);
  return c;
}

/** A unary call as a promise; `onCall` gets the call (to cancel it). */
function call<T = Client>(c: Client, method: string, req: unknown, onCall?: (call: grpc.ClientUnaryCall) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const handle = c[method](req, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
    onCall?.(handle);
  });
}

async function grant(i: number, ttl = 60): Promise<string> {
  return (await call(client('lease', i), 'LeaseGrant', { TTL: ttl })).ID as string;
}

const hex = (id: string) => BigInt(id).toString(16);

/** Tracks whether a promise has settled. */
function tracked<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  return { p, settled: () => done };
}

describe('v3election over gRPC', () => {
  it('campaign, leader, observe, proclaim, resign; the next candidate wins; errors as etcd', async () => {
    const name = Buffer.from('svc-el');
    const [l1, l2] = [await grant(0), await grant(1)];
    const noLeader = await call(client('election', 0), 'Leader', { name }).catch((e: grpc.ServiceError) => e);
    expect(noLeader).toMatchObject({ code: grpc.status.UNKNOWN, details: 'election: no leader' });

    const observed: string[] = [];
    const obs = client('election', 2).Observe({ name });
    obs.on('data', (r: Client) => observed.push(`${r.kv.key.toString()}=${r.kv.value.toString()}`));
    obs.on('error', () => {});

    const c1 = await call(client('election', 0), 'Campaign', { name, lease: l1, value: Buffer.from('v1') });
    expect(c1.leader.key.toString()).toBe(`svc-el/${hex(l1)}`);
    expect(c1.leader.lease).toBe(l1);
    expect(c1.leader.rev).toBe(c1.header.revision);
    await eventually(async () => expect(observed).toEqual([`svc-el/${hex(l1)}=v1`]), 5000, 50);

    const c2 = tracked(call(client('election', 1), 'Campaign', { name, lease: l2, value: Buffer.from('v2') }));
    await sleep(500);
    expect(c2.settled()).toBe(false); // waits behind the leader

    await call(client('election', 1), 'Proclaim', { leader: c1.leader, value: Buffer.from('v1b') });
    await eventually(async () => expect(observed.at(-1)).toBe(`svc-el/${hex(l1)}=v1b`), 5000, 50);
    const leader = await call(client('election', 2), 'Leader', { name });
    expect(leader.kv.value.toString()).toBe('v1b');
    expect(leader.kv.lease).toBe(l1);

    const stale = await call(client('election', 0), 'Proclaim', { leader: { ...c1.leader, rev: '1' }, value: Buffer.from('x') }).catch((e: grpc.ServiceError) => e);
    expect(stale).toMatchObject({ code: grpc.status.UNKNOWN, details: 'election: not leader' });
    const noKey = await call(client('election', 0), 'Resign', {}).catch((e: grpc.ServiceError) => e);
    expect(noKey).toMatchObject({ code: grpc.status.UNKNOWN, details: '"leader" field must be provided' });

    await call(client('election', 0), 'Resign', { leader: c1.leader });
    const won = await c2.p;
    expect(won.leader.key.toString()).toBe(`svc-el/${hex(l2)}`);
    await eventually(async () => expect(observed.at(-1)).toBe(`svc-el/${hex(l2)}=v2`), 5000, 50);
    expect(observed).toEqual([`svc-el/${hex(l1)}=v1`, `svc-el/${hex(l1)}=v1b`, `svc-el/${hex(l2)}=v2`]);

    // A campaign with the same lease again keeps its place and updates the value.
    const again = await call(client('election', 1), 'Campaign', { name, lease: l2, value: Buffer.from('v2b') });
    expect(again.leader.rev).toBe(won.leader.rev);
    await eventually(async () => expect(observed.at(-1)).toBe(`svc-el/${hex(l2)}=v2b`), 5000, 50);

    // Revoking the leader's lease deletes its key: nobody leads.
    await call(client('lease', 0), 'LeaseRevoke', { ID: l2 });
    const gone = await call(client('election', 0), 'Leader', { name }).catch((e: grpc.ServiceError) => e);
    expect(gone).toMatchObject({ details: 'election: no leader' });
    obs.cancel();
  });

  it('a cancelled campaign leaves the line (its key is deleted)', async () => {
    const name = Buffer.from('svc-cancel');
    const [l1, l2] = [await grant(0), await grant(0)];
    await call(client('election', 0), 'Campaign', { name, lease: l1, value: Buffer.from('a') });
    let pending: grpc.ClientUnaryCall | undefined;
    const waiting = call(client('election', 1), 'Campaign', { name, lease: l2, value: Buffer.from('b') }, (c) => (pending = c)).catch((e: grpc.ServiceError) => e);
    const key = Buffer.from(`svc-cancel/${hex(l2)}`);
    await eventually(async () => expect((await call(client('kv', 2), 'Range', { key })).kvs ?? []).toHaveLength(1), 5000, 50);
    pending!.cancel();
    expect(await waiting).toMatchObject({ code: grpc.status.CANCELLED });
    await eventually(async () => expect((await call(client('kv', 2), 'Range', { key })).kvs ?? []).toHaveLength(0), 5000, 50);
  });

  it('without a lease the server grants a 60 s session lease; an unknown lease is refused', async () => {
    const c = await call(client('election', 0), 'Campaign', { name: Buffer.from('svc-nolease'), value: Buffer.from('x') });
    const ttl = await call(client('lease', 0), 'LeaseTimeToLive', { ID: c.leader.lease });
    expect(ttl.grantedTTL).toBe('60');
    expect(c.leader.key.toString()).toBe(`svc-nolease/${hex(c.leader.lease)}`);
    const bad = await call(client('election', 0), 'Campaign', { name: Buffer.from('svc-nolease'), lease: '999', value: Buffer.from('y') }).catch((e: grpc.ServiceError) => e);
    expect(bad).toMatchObject({ code: grpc.status.UNKNOWN, details: 'etcdserver: requested lease not found' });
  });
});

describe('v3lock over gRPC', () => {
  it('mutual exclusion across members: 5 workers x 3 rounds, no overlap, no lost increment', async () => {
    const name = Buffer.from('svc-mutex');
    const counter = Buffer.from('svc-mutex-counter');
    let inside = 0;
    let maxInside = 0;
    const worker = async (w: number) => {
      const lease = await grant(w);
      const lk = client('lock', w);
      const kv = client('kv', w);
      for (let round = 0; round < 3; round++) {
        const held = await call(lk, 'Lock', { name, lease });
        expect(held.key.toString()).toBe(`svc-mutex/${hex(lease)}`);
        inside++;
        maxInside = Math.max(maxInside, inside);
        const cur = await call(kv, 'Range', { key: counter });
        const n = cur.kvs?.length ? Number(cur.kvs[0].value.toString()) : 0;
        await sleep(10);
        await call(kv, 'Put', { key: counter, value: Buffer.from(String(n + 1)) });
        inside--;
        await call(lk, 'Unlock', { key: held.key });
      }
    };
    await Promise.all([0, 1, 2, 3, 4].map(worker));
    expect(maxInside).toBe(1);
    const final = await call(client('kv', 0), 'Range', { key: counter });
    expect(final.kvs[0].value.toString()).toBe('15');
  });

  it('a waiter gets the lock when the holder\'s lease is revoked; a cancelled waiter removes its key', async () => {
    const name = Buffer.from('svc-lk2');
    const [l1, l2, l3] = [await grant(0), await grant(1), await grant(2)];
    const first = await call(client('lock', 0), 'Lock', { name, lease: l1 });
    expect((await call(client('lock', 0), 'Lock', { name, lease: l1 })).key.toString()).toBe(first.key.toString()); // re-entrant per lease

    let cancellable: grpc.ClientUnaryCall | undefined;
    const third = call(client('lock', 2), 'Lock', { name, lease: l3 }, (c) => (cancellable = c)).catch((e: grpc.ServiceError) => e);
    const second = tracked(call(client('lock', 1), 'Lock', { name, lease: l2 }));
    await sleep(300);
    cancellable!.cancel();
    expect(await third).toMatchObject({ code: grpc.status.CANCELLED });
    await eventually(async () => expect((await call(client('kv', 0), 'Range', { key: Buffer.from(`svc-lk2/${hex(l3)}`) })).kvs ?? []).toHaveLength(0), 5000, 50);
    expect(second.settled()).toBe(false);

    await call(client('lease', 0), 'LeaseRevoke', { ID: l1 });
    const got = await second.p;
    expect(got.key.toString()).toBe(`svc-lk2/${hex(l2)}`);
    await call(client('lock', 1), 'Unlock', { key: got.key });
  });

  it('errors as etcd: unlock without a key, lock with an unknown lease', async () => {
    const noKey = await call(client('lock', 0), 'Unlock', {}).catch((e: grpc.ServiceError) => e);
    expect(noKey).toMatchObject({ code: grpc.status.UNKNOWN, details: 'etcdserver: key is not provided' });
    const bad = await call(client('lock', 0), 'Lock', { name: Buffer.from('x'), lease: '12345' }).catch((e: grpc.ServiceError) => e);
    expect(bad).toMatchObject({ code: grpc.status.UNKNOWN, details: 'etcdserver: requested lease not found' });
  });
});

// ---------------------------------------------------------------- etcdctl lock / elect

interface Proc {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function startCtl(args: string[]): Proc {
  const proc = spawn(etcdctlBin, [`--endpoints=${eps.join(',')}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code))); // output all read
  running.add(proc);
  return { proc, out: () => out, exited };
}
const running = new Set<ChildProcess>();
afterAll(() => {
  for (const p of running) p.kill('SIGKILL');
});

describe('etcdctl lock and elect against the cluster', () => {
  it('lock with a command: concurrent holders never overlap, the command sees ETCD_LOCK_KEY', async () => {
    const log = path.join(tempDir(), 'lock.log');
    fs.writeFileSync(log, '');
    const script = `echo "start $ETCD_LOCK_KEY" >> ${log}; sleep 0.3; echo "end $ETCD_LOCK_KEY" >> ${log}`;
    const procs = [0, 1, 2].map(() => startCtl(['lock', 'ctl-lock', '--', 'sh', '-c', script]));
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes).toEqual([0, 0, 0]);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) {
      const key = lines[i]!.replace(/^start /, '');
      expect(key).toMatch(/^ctl-lock\/[0-9a-f]+$/);
      expect(lines[i + 1]).toBe(`end ${key}`);
    }
  });

  it('lock without a command holds it until interrupted; the next waiter then runs', async () => {
    const holder = startCtl(['lock', 'ctl-hold']);
    await eventually(async () => expect(holder.out()).toMatch(/^ctl-hold\/[0-9a-f]+\n/), 10_000, 50);
    const waiter = startCtl(['lock', 'ctl-hold', 'echo', 'got-it']);
    await sleep(700);
    expect(waiter.out()).toBe('');
    holder.proc.kill('SIGINT');
    expect(await holder.exited).toBe(0);
    expect(await waiter.exited).toBe(0);
    expect(waiter.out()).toBe('got-it\n');
  });

  it('elect and elect --listen: the observer follows leadership as leaders step down', async () => {
    const listener = startCtl(['elect', '--listen', 'ctl-elect']);
    const p1 = startCtl(['elect', 'ctl-elect', 'p1']);
    await eventually(async () => expect(p1.out()).toMatch(/^ctl-elect\/[0-9a-f]+\np1\n$/), 10_000, 50);
    await eventually(async () => expect(listener.out()).toMatch(/^ctl-elect\/[0-9a-f]+\np1\n$/), 10_000, 50);
    const p2 = startCtl(['elect', 'ctl-elect', 'p2']);
    await sleep(700);
    expect(p2.out()).toBe('');
    p1.proc.kill('SIGINT');
    expect(await p1.exited).toBe(0);
    await eventually(async () => expect(p2.out()).toMatch(/^ctl-elect\/[0-9a-f]+\np2\n$/), 10_000, 50);
    await eventually(async () => expect(listener.out()).toMatch(/\np1\nctl-elect\/[0-9a-f]+\np2\n$/), 10_000, 50);
    p2.proc.kill('SIGINT');
    listener.proc.kill('SIGINT');
    expect(await p2.exited).toBe(0);
    expect(await listener.exited).toBe(0);
    // both resigned: no leader is left
    expect(await ctlOk(eps, ['get', '--prefix', 'ctl-elect/', '--keys-only'])).toBe('');
  });
});

// ---------------------------------------------------------------- npm etcd3

describe('npm etcd3 Lock and Election helpers', () => {
  it('client.lock(..).do(..) is mutually exclusive across clients (a try-lock: losers retry)', async () => {
    const clients = [0, 1, 2].map((i) => new Etcd3({ hosts: eps[i]! }));
    try {
      let inside = 0;
      let maxInside = 0;
      let runs = 0;
      let refusals = 0;
      const critical = async () => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        await sleep(30);
        inside--;
        runs++;
      };
      const untilDone = async (c: Etcd3) => {
        for (;;) {
          try {
            return await c.lock('npm-lock').ttl(10).do(critical);
          } catch (e) {
            if (!(e instanceof EtcdLockFailedError)) throw e;
            refusals++;
            await sleep(10);
          }
        }
      };
      await Promise.all(clients.flatMap((c) => [1, 2].map(() => untilDone(c))));
      expect(runs).toBe(6);
      expect(maxInside).toBe(1);
      expect(refusals).toBeGreaterThan(0); // they did contend
      expect(await clients[0]!.getAll().prefix('npm-lock').keys()).toEqual([]);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('election: campaign, leader, observe, resign hands over to the next campaign', async () => {
    const a = new Etcd3({ hosts: eps[0]! });
    const b = new Etcd3({ hosts: eps[1]! });
    try {
      const observer = await b.election('npm-el', 10).observe();
      const changes: Array<string | undefined> = [];
      observer.on('change', (v) => changes.push(v));
      observer.on('error', () => {});

      const first = a.election('npm-el', 10).campaign('alpha');
      await first.wait();
      expect(await b.election('npm-el').leader()).toBe('alpha');

      const second = b.election('npm-el', 10).campaign('beta');
      let secondElected = false;
      second.on('elected', () => (secondElected = true));
      second.on('error', () => {});
      await sleep(500);
      expect(secondElected).toBe(false);

      await first.proclaim('alpha2');
      await eventually(async () => expect(await a.election('npm-el').leader()).toBe('alpha2'), 5000, 50);

      await first.resign();
      await second.wait();
      expect(await a.election('npm-el').leader()).toBe('beta');
      await eventually(async () => expect(changes.at(-1)).toBe('beta'), 5000, 50);
      expect(changes).toContain('alpha');
      await second.resign();
      await observer.cancel();
    } finally {
      a.close();
      b.close();
    }
  });
});
