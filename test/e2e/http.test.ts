import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { ctlOk, etcdctlBin, eventually, freePort, singleNode, sleep, stopAll, type Member } from './harness.js';

// The HTTP/1.1 side of the client port, the metrics listener, the peer port, and
// malformed input on the gRPC side.

let m: Member;
let metricsPort: number;

beforeAll(async () => {
  metricsPort = await freePort();
  m = await singleNode(['--listen-metrics-urls', `http://127.0.0.1:${metricsPort}`]);
  await ctlOk(m.clientUrl, ['put', 'k', 'v']);
});
afterAll(stopAll);

describe('HTTP endpoints', () => {
  it('/metrics has etcd\'s histograms and gauges', async () => {
    const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
    expect(text).toMatch(/etcd_disk_wal_fsync_duration_seconds_bucket\{le="0.001"\} \d+/);
    expect(text).toMatch(/etcd_disk_wal_fsync_duration_seconds_bucket\{le="8.192"\} \d+/);
    expect(text).toMatch(/etcd_disk_wal_fsync_duration_seconds_count [1-9]\d*/);
    expect(text).toMatch(/etcd_disk_backend_commit_duration_seconds_bucket\{le="\+Inf"\} \d+/);
    expect(text).toMatch(/etcd_server_has_leader 1/);
    expect(text).toMatch(/etcd_server_is_leader 1/);
    expect(text).toMatch(/etcd_server_proposals_committed_total [1-9]/);
    expect(text).toMatch(/etcd_server_proposals_applied_total [1-9]/);
    expect(text).toMatch(/etcd_server_proposals_pending \d/);
    expect(text).toMatch(/etcd_server_proposals_failed_total \d/);
    expect(text).toMatch(/etcd_mvcc_db_total_size_in_bytes [1-9]/);
    expect(text).toMatch(/process_resident_memory_bytes \d+/);
    expect(text).toMatch(/grpc_server_handled_total\{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put",grpc_code="OK"\} [1-9]/);
    expect(text).toMatch(/etcd_server_version\{server_version="3\.6\.\d+"\} 1/);
  });

  it('/health, /livez, /readyz, /version', async () => {
    const h = await fetch(`${m.clientUrl}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ health: 'true', reason: '' });
    const hs = await fetch(`${m.clientUrl}/health?serializable=true&exclude=NOSPACE`);
    expect((await hs.json()).health).toBe('true');
    expect(await (await fetch(`${m.clientUrl}/livez`)).text()).toBe('ok\n');
    const ready = await fetch(`${m.clientUrl}/readyz?verbose`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toContain('[+]linearizable_read ok');
    const v = await (await fetch(`${m.clientUrl}/version`)).json();
    expect(v.etcdserver).toMatch(/^3\.6\.\d+$/);
    expect(v.etcdcluster).toBe('3.6.0');
    expect((await fetch(`${m.clientUrl}/nope`)).status).toBe(404);
  });

  it('--listen-metrics-urls serves metrics and health but not gRPC', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('etcd_server_has_leader');
    expect((await fetch(`http://127.0.0.1:${metricsPort}/health`)).status).toBe(200);
  });

  it('the peer URL answers /version', async () => {
    const v = await (await fetch(`${m.peerUrl}/version`)).json();
    expect(v.etcdserver).toMatch(/^3\.6\.\d+$/);
  });
});

describe('malformed input', () => {
  it('a malformed protobuf gets an error and the server keeps serving', async () => {
    const client = new grpc.Client(`127.0.0.1:${m.spec.clientPort}`, grpc.credentials.createInsecure());
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]); // field 1 with an absurd length
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest('/etcdserverpb.KV/Put', (b: Buffer) => b, (b: Buffer) => b, garbage, (e) => resolve(e));
    });
    client.close();
    expect(err).not.toBeNull();
    expect([grpc.status.INTERNAL, grpc.status.INVALID_ARGUMENT]).toContain(err!.code);
    expect(await ctlOk(m.clientUrl, ['get', 'k', '--print-value-only'])).toBe('v\n');
  });

  it('an unknown method is UNIMPLEMENTED', async () => {
    const client = new grpc.Client(`127.0.0.1:${m.spec.clientPort}`, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest('/etcdserverpb.KV/Nope', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (e) => resolve(e));
    });
    client.close();
    expect(err!.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('garbage on the client port does not crash the server', async () => {
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const s = net.connect(m.spec.clientPort, '127.0.0.1', () => {
        s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + 'x'.repeat(1000));
        setTimeout(() => { s.destroy(); resolve(); }, 200);
      });
      s.on('error', () => resolve());
    });
    expect(await ctlOk(m.clientUrl, ['get', 'k', '--print-value-only'])).toBe('v\n');
  });
});

describe('etcdctl snapshot save', () => {
  it('streams the database image followed by its sha256', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { createHash } = await import('node:crypto');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-snap-')), 'snap.db');
    const out = await ctlOk(m.clientUrl, ['snapshot', 'save', file]);
    expect(out).toContain(`Snapshot saved at ${file}`);
    const data = fs.readFileSync(file);
    expect(data.length).toBeGreaterThan(32);
    const body = data.subarray(0, data.length - 32);
    expect(createHash('sha256').update(body).digest().equals(data.subarray(data.length - 32))).toBe(true);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
});

describe('start-up warm-up of the client connection path', () => {
  it('serves 800 own connections at start, counted in no request metric; --client-warm-up-connections 0 turns it off', async () => {
    // 800 is the default (flags.test.ts); the harness turns the warm-up off unless a test sets it.
    const warm = await singleNode(['--client-warm-up-connections', '800'], 'warm');
    const line = await eventually(async () => {
      const l = warm.stderr.split('\n').find((x) => x.includes('client connection path warmed up'));
      expect(l).toBeDefined();
      return JSON.parse(l!) as { connections: number };
    }, 30_000);
    expect(line.connections).toBe(800);
    const rangeStarted = async () => {
      const text = await (await fetch(`${warm.clientUrl}/metrics`)).text();
      const m = /grpc_server_started_total\{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range"\} (\d+)/.exec(text);
      return m ? Number(m[1]) : 0;
    };
    expect(await rangeStarted()).toBe(0);
    await ctlOk(warm.clientUrl, ['get', 'anything']);
    expect(await rangeStarted()).toBe(1);
    await warm.stop();

    const off = await singleNode(['--client-warm-up-connections', '0'], 'cold');
    await ctlOk(off.clientUrl, ['put', 'k', 'v']);
    await sleep(1000);
    expect(off.stderr).not.toContain('warm');
    await off.stop();
  });
});

describe('client gRPC byte counters', () => {
  it('count encoded request and response messages as etcd does (put k v: 6 bytes in)', async () => {
    const read = async () => {
      const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
      const num = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
      return { received: num('etcd_network_client_grpc_received_bytes_total'), sent: num('etcd_network_client_grpc_sent_bytes_total') };
    };
    const before = await read();
    await ctlOk(m.clientUrl, ['put', 'k', 'v']); // PutRequest{key: "k", value: "v"}: 2 fields of 3 bytes
    const afterPut = await read();
    expect(afterPut.received - before.received).toBe(6);
    expect(afterPut.sent - before.sent).toBeGreaterThan(10); // a PutResponse with its header

    // Watch responses are written in batches, beside grpc-js: counted there too.
    const watcher = spawn(etcdctlBin, [`--endpoints=${m.clientUrl}`, 'watch', 'bytes-key'], { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    watcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await sleep(500);
    const beforeEvent = await read();
    await ctlOk(m.clientUrl, ['put', 'bytes-key', 'x'.repeat(1000)]);
    await eventually(async () => expect(out).toContain('x'.repeat(1000)), 5000, 100);
    watcher.kill();
    const afterEvent = await read();
    // The put's response plus the event, which carries the 1000-byte value.
    expect(afterEvent.sent - beforeEvent.sent).toBeGreaterThan(1000);
  });
});
