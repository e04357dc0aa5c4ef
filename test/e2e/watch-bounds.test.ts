import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { serviceDefinition } from '../../src/api/grpc.js';
import { eventually, singleNode, sleep, stopAll, type Member } from './harness.js';

// Bounds: 10,000 watchers on one stream whose reader stalls. Writes keep their pace, the
// server's memory stays bounded (a congested stream pauses its watchers instead of queueing
// their events), and the watchers catch up once the reader drains the stream.

let m: Member;
let client: Etcd3;

beforeAll(async () => {
  m = await singleNode();
  client = new Etcd3({ hosts: m.clientUrl });
});
afterAll(async () => {
  client.close();
  await stopAll();
});

async function rssBytes(): Promise<number> {
  const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
  return Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)![1]);
}

async function putsPerSecond(n: number, prefix: string): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        await client.put(`${prefix}${i % 50}`).value('x'.repeat(100));
      }
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

describe('a stalled watch stream with 10,000 watchers', () => {
  it('does not slow writes down or grow memory without bound', async () => {
    const baseline = await putsPerSecond(1500, 'base/');

    const WatchClient = grpc.makeGenericClientConstructor(serviceDefinition('etcdserverpb.Watch'), 'Watch');
    const wc = new WatchClient(`127.0.0.1:${m.spec.clientPort}`, grpc.credentials.createInsecure()) as unknown as { Watch: () => grpc.ClientDuplexStream<any, any> };
    const stream = wc.Watch();
    let created = 0;
    let events = 0;
    stream.on('data', (res: any) => {
      if (res.created) created++;
      events += (res.events ?? []).length;
    });
    stream.on('error', () => {});
    const WATCHERS = 10_000;
    for (let i = 0; i < WATCHERS; i++) stream.write({ create_request: { key: Buffer.from('x/'), range_end: Buffer.from('x0') } });
    await eventually(async () => expect(created).toBe(WATCHERS), 30_000, 100);

    const rssBefore = await rssBytes();
    stream.pause(); // the reader stalls: HTTP/2 flow control pushes back on the server
    const during = await putsPerSecond(1500, 'x/');
    const rssDuring = await rssBytes();

    // 1,500 writes x 10,000 watchers = 15M events were due; the server must not hold them.
    expect(during).toBeGreaterThan(baseline * 0.5);
    expect(rssDuring - rssBefore).toBeLessThan(400 * 1024 * 1024);

    // resume: the watchers catch up from history
    stream.resume();
    await eventually(async () => expect(events).toBeGreaterThan(0), 30_000, 200);
    stream.cancel();
    await sleep(200);
    console.log(`puts/s baseline ${baseline.toFixed(0)}, during stall ${during.toFixed(0)}; rss +${((rssDuring - rssBefore) / 1048576).toFixed(1)} MiB`);
  }, 180_000);
});
