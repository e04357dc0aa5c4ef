import { describe, it, expect, afterEach } from 'vitest';
import http2 from 'node:http2';
import net from 'node:net';
import { root } from '../../../src/server/pb.js';
import { WARM_UP_HEADER, warmUpClientConnections, warmUpHost } from '../../../src/api/warm-up.js';

const RangeRequest = root.lookupType('etcdserverpb.RangeRequest');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

interface Seen {
  connections: number;
  requests: { path: string; warmUp: string | undefined; key: string; serializable: boolean }[];
}

/** An HTTP/2 server answering every request with an empty gRPC OK, recording what came in. */
async function fakeMember(): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { connections: 0, requests: [] };
  const server = http2.createServer();
  server.on('session', () => seen.connections++);
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const req = RangeRequest.decode(body.subarray(5, 5 + body.readUInt32BE(1))) as unknown as { key: Uint8Array; serializable: boolean };
      seen.requests.push({
        path: String(headers[':path']),
        warmUp: headers[WARM_UP_HEADER] as string | undefined,
        key: Buffer.from(req.key).toString('latin1'),
        serializable: req.serializable,
      });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, seen };
}

describe('client connection warm-up', () => {
  it('opens the given number of connections, one marked serializable Range each', async () => {
    const { port, seen } = await fakeMember();
    const r = await warmUpClientConnections({ host: '127.0.0.1', port }, 45, () => false);
    expect(r).toMatchObject({ connections: 45 });
    expect(r.stoppedBecause).toBeUndefined();
    expect(seen.connections).toBe(45);
    expect(seen.requests).toHaveLength(45);
    for (const q of seen.requests) {
      expect(q).toEqual({ path: '/etcdserverpb.KV/Range', warmUp: '1', key: '\0tsetcd-warm-up', serializable: true });
    }
  });

  it('stops between batches once the member is stopping', async () => {
    const { port, seen } = await fakeMember();
    let batches = 0;
    const r = await warmUpClientConnections({ host: '127.0.0.1', port }, 1000, () => batches++ >= 2);
    expect(r.stoppedBecause).toBe('member stopping');
    expect(r.connections).toBe(40); // two batches of 20
    expect(seen.connections).toBe(40);
  });

  it('ends quietly when the member cannot be reached', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r())); // nothing listens there now
    const r = await warmUpClientConnections({ host: '127.0.0.1', port }, 100, () => false);
    expect(r.connections).toBe(0);
    expect(r.stoppedBecause).toMatch(/ECONNREFUSED/);
  });

  it('dials loopback when the member listens on a wildcard address', () => {
    expect(warmUpHost('0.0.0.0')).toBe('127.0.0.1');
    expect(warmUpHost('')).toBe('127.0.0.1');
    expect(warmUpHost('::')).toBe('::1');
    expect(warmUpHost('[::1]')).toBe('::1');
    expect(warmUpHost('10.1.2.3')).toBe('10.1.2.3');
  });
});
