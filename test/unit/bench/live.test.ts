// The bench client and cluster runner against live servers: a gRPC server that implements
// nothing (UNIMPLEMENTED -> "not-run"), a closed port, and real etcd when installed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callOnce, runWorkload, type WorkloadSpec } from '../../../bench/client.js';
import { LocalCluster, etcdBinary, freePorts } from '../../../bench/cluster.js';
import { loadEtcdProto } from '../../../bench/proto.js';
import { TRANSPORT_KINDS } from '../../../bench/transport.js';

const proto = loadEtcdProto();

const putSpec: WorkloadSpec = { kind: 'put', keySizeBytes: 8, valSizeBytes: 64, keySpaceSize: 100, sequentialKeys: true };
const ALL_SPECS: WorkloadSpec[] = [
  putSpec,
  { kind: 'range', key: 'k', consistency: 'l' },
  { kind: 'txn-put', txnOps: 2, keySizeBytes: 8, valSizeBytes: 16, keySpaceSize: 50, sequentialKeys: false },
  { kind: 'watch', streams: 2, watchersPerStream: 3, key: 'wk', valSizeBytes: 16, putRate: 0 },
  { kind: 'lease-keepalive', ttlSeconds: 30 },
];

describe('against a server without the etcd services', () => {
  let server: grpc.Server;
  let endpoint = '';

  beforeAll(async () => {
    server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    endpoint = `127.0.0.1:${port}`;
  });
  afterAll(() => server.forceShutdown());

  for (const transport of TRANSPORT_KINDS) {
    for (const spec of ALL_SPECS) {
      it(`${spec.kind} over ${transport} is reported not-run`, async () => {
        const s = await runWorkload(spec, { endpoints: [endpoint], conns: 2, clients: 4, total: 20, transport, requestTimeoutMs: 5000 }, proto);
        expect(s.status).toBe('not-run');
        expect(s.note).toMatch(/UNIMPLEMENTED/);
        expect(s.total).toBe(0);
      });
    }
  }
});

describe('against a closed port', () => {
  for (const transport of TRANSPORT_KINDS) {
    it(`fails fast over ${transport}`, async () => {
      const [port] = await freePorts(1);
      const s = await runWorkload(putSpec, { endpoints: [`127.0.0.1:${port}`], conns: 1, clients: 1, total: 5, transport, connectTimeoutMs: 1000 }, proto);
      expect(s.status).toBe('failed');
    });
  }
});

const etcd = etcdBinary();

describe.skipIf(etcd === undefined)('against real etcd (single member)', () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ binary: etcd!, size: 1, proto, readyTimeoutMs: 30_000 });
  });
  afterAll(async () => {
    const dir = cluster.baseDir;
    const proc = cluster.members[0]!.proc;
    await cluster.stop();
    expect(fs.existsSync(dir)).toBe(false);
    expect(proc.exitCode !== null || proc.signalCode !== null).toBe(true);
  });

  it('finds the leader and measures server CPU', async () => {
    expect(await cluster.findLeader()).toBe(cluster.endpoints()[0]);
    expect(cluster.cpuSeconds()).toBeGreaterThan(0);
    expect(cluster.rssBytes()).toBeGreaterThan(1024 * 1024);
  });

  for (const transport of TRANSPORT_KINDS) {
    it(`put, range, txn-put over ${transport} complete every request and really write`, async () => {
      const ep = cluster.endpoints();
      const put = await runWorkload(putSpec, { endpoints: ep, conns: 2, clients: 8, total: 300, transport }, proto);
      expect(put.status).toBe('ok');
      expect(put.total).toBe(300);
      expect(put.errors).toBe(0);
      expect(put.p50Ms).toBeGreaterThan(0);
      expect(put.slowestMs).toBeGreaterThanOrEqual(put.p99Ms);
      // 300 sequential puts over a keyspace of 100: exactly 100 distinct 8-byte keys exist.
      const all = await callOnce(proto, ep[0]!, 'KV', 'Range', { key: Buffer.from([0]), range_end: Buffer.from([0]), count_only: true }, 5000, transport);
      expect(Number(all.count)).toBeGreaterThanOrEqual(100);

      for (const consistency of ['l', 's'] as const) {
        const r = await runWorkload({ kind: 'range', key: 'k', consistency }, { endpoints: ep, conns: 1, clients: 4, total: 200, transport }, proto);
        expect(r.status).toBe('ok');
        expect(r.total).toBe(200);
        expect(r.errors).toBe(0);
      }
      const txn = await runWorkload(ALL_SPECS[2]!, { endpoints: ep, conns: 2, clients: 4, total: 100, transport }, proto);
      expect(txn.total).toBe(100);
      expect(txn.errors).toBe(0);
    });

    it(`watch fan-out over ${transport} delivers every put to every watcher`, async () => {
      const s = await runWorkload(
        { kind: 'watch', streams: 3, watchersPerStream: 4, key: `wk-${transport}`, valSizeBytes: 32, putRate: 0 },
        { endpoints: cluster.endpoints(), conns: 2, clients: 1, total: 25, transport },
        proto,
      );
      expect(s.status).toBe('ok');
      expect(s.total).toBe(25 * 12);
      expect(s.errors).toBe(0);
      expect(s.note).toContain('12 watchers');
    });

    it(`lease keepalive over ${transport} renews leases`, async () => {
      const s = await runWorkload({ kind: 'lease-keepalive', ttlSeconds: 30 }, { endpoints: cluster.endpoints(), conns: 2, clients: 4, total: 200, transport }, proto);
      expect(s.status).toBe('ok');
      expect(s.total).toBe(200);
      expect(s.errors).toBe(0);
      const leases = await callOnce(proto, cluster.endpoints()[0]!, 'Lease', 'LeaseLeases', {}, 5000, transport);
      expect((leases.leases as unknown[] | undefined) ?? []).toHaveLength(0); // revoked afterwards
    });
  }

  it('stops issuing at the time cap', async () => {
    const s = await runWorkload(putSpec, { endpoints: cluster.endpoints(), conns: 1, clients: 1, total: 1_000_000, maxSeconds: 0.3 }, proto);
    expect(s.status).toBe('ok');
    expect(s.total).toBeLessThan(1_000_000);
    expect(s.seconds).toBeLessThan(2);
    expect(s.note).toMatch(/cap/);
  });
});

describe('cluster runner', () => {
  it('reports a binary that dies at startup, with its log, and cleans up', async () => {
    const bogus = { name: 'bogus', command: process.execPath, prefixArgs: ['-e', 'console.error("no such flag"); process.exit(3)', '--'] };
    const before = fs.readdirSync(os.tmpdir()).filter((d: string) => d.startsWith('tsetcd-bench-bogus-'));
    await expect(LocalCluster.start({ binary: bogus, size: 1, proto, readyTimeoutMs: 10_000 })).rejects.toThrow(/exited during startup[\s\S]*no such flag/);
    const after = fs.readdirSync(os.tmpdir()).filter((d: string) => d.startsWith('tsetcd-bench-bogus-'));
    expect(after).toEqual(before);
  });

  it.skipIf(etcd === undefined)('starts a 3-member etcd cluster with one leader and stops it', async () => {
    const cluster = await LocalCluster.start({ binary: etcd!, size: 3, proto, readyTimeoutMs: 30_000 });
    try {
      expect(new Set(cluster.endpoints()).size).toBe(3);
      const leader = await cluster.findLeader();
      expect(cluster.endpoints()).toContain(leader);
      const s = await runWorkload(putSpec, { endpoints: [leader!], conns: 1, clients: 2, total: 50 }, proto);
      expect(s.total).toBe(50);
      // A serializable read on every member eventually sees the write.
      for (const ep of cluster.endpoints()) {
        await expect.poll(async () => {
          const r = await callOnce(proto, ep, 'KV', 'Range', { key: Buffer.alloc(8), serializable: true }, 2000);
          return (r.kvs as unknown[] | undefined)?.length ?? 0;
        }).toBe(1);
      }
    } finally {
      await cluster.stop();
    }
    expect(fs.existsSync(cluster.baseDir)).toBe(false);
    expect(cluster.members.every((m) => m.proc.exitCode !== null || m.proc.signalCode !== null)).toBe(true);
  });
});
