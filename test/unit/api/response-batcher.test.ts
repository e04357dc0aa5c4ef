import { describe, it, expect, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { ResponseBatcher, type StreamingCall } from '../../../src/api/response-batcher.js';
import { serviceDefinition } from '../../../src/api/grpc.js';
import { root, type Msg } from '../../../src/server/pb.js';

// The batcher writes a turn's responses to the HTTP/2 stream in one write; a grpc-js client
// must read exactly the messages, in order, then the call's status.

const WatchResponse = root.lookupType('etcdserverpb.WatchResponse');
const encode = (m: Msg): Buffer => Buffer.from(WatchResponse.encode(m).finish());
const LIMITS = { congestedBytes: 64 * 1024, congestedResponses: 16 };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

type BidiHandler = (call: grpc.ServerDuplexStream<Msg, Msg>) => void;

async function serveWatch(handler: BidiHandler): Promise<grpc.ServiceClientConstructor & { port: number }> {
  const server = new grpc.Server();
  server.addService(serviceDefinition('etcdserverpb.Watch'), { Watch: handler as grpc.UntypedHandleCall });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  cleanups.push(() => void server.forceShutdown());
  const Ctor = grpc.makeGenericClientConstructor(serviceDefinition('etcdserverpb.Watch'), 'Watch');
  return Object.assign(Ctor, { port });
}

function openWatch(Ctor: grpc.ServiceClientConstructor & { port: number }): grpc.ClientDuplexStream<Msg, Msg> {
  const c = new Ctor(`127.0.0.1:${Ctor.port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Watch: () => grpc.ClientDuplexStream<Msg, Msg> };
  cleanups.push(() => c.close());
  return c.Watch();
}

/** Reads messages until the call ends; resolves with them and the status. */
function readAll(stream: grpc.ClientDuplexStream<Msg, Msg>): Promise<{ ids: number[]; status: grpc.StatusObject }> {
  const ids: number[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (m: Msg) => ids.push(Number(m.watch_id ?? 0)));
    stream.on('error', reject);
    stream.on('status', (status: grpc.StatusObject) => resolve({ ids, status }));
  });
}

/** Counts writes to the HTTP/2 stream under a grpc-js server call. */
function countRawWrites(call: grpc.ServerDuplexStream<Msg, Msg>): { writes: number } {
  const raw = (call as unknown as { call: { stream: { write: (...a: unknown[]) => boolean } } }).call.stream;
  const counter = { writes: 0 };
  const write = raw.write.bind(raw);
  raw.write = (...a: unknown[]) => {
    counter.writes++;
    return write(...a);
  };
  return counter;
}

describe('ResponseBatcher on a grpc-js server call', () => {
  it('writes the responses of one turn in one HTTP/2 write; the client reads each, in order, then OK', async () => {
    let rawWrites = { writes: 0 };
    let direct = false;
    const Ctor = await serveWatch((call) => {
      const out = new ResponseBatcher(call, LIMITS);
      direct = out.direct;
      rawWrites = countRawWrites(call);
      call.on('data', () => {
        for (let id = 1; id <= 100; id++) out.write(encode({ watch_id: id, created: true }));
        setTimeout(() => {
          out.write(encode({ watch_id: 101, canceled: true }));
          out.flush(); // what WatchStream does before ending the call
          call.end();
        }, 20);
      });
    });
    const stream = openWatch(Ctor);
    const done = readAll(stream);
    stream.write({ create_request: { key: Buffer.from('k') } });
    const { ids, status } = await done;
    expect(direct).toBe(true); // the grpc-js version in package-lock.json exposes the stream
    expect(ids).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
    expect(status.code).toBe(grpc.status.OK);
    expect(rawWrites.writes).toBe(2); // 100 responses in the first turn, 1 in the second
  });

  it('counts queued bytes as congestion and reports the drain once the client reads again', async () => {
    const value = Buffer.alloc(8 * 1024, 0x61);
    let states: { afterFill: boolean; afterDrain?: boolean } | undefined;
    let drained!: () => void;
    const drainSeen = new Promise<void>((r) => (drained = r));
    let written = 0;
    const Ctor = await serveWatch((call) => {
      const out = new ResponseBatcher(call, LIMITS);
      out.onDrain(() => {
        if (states && states.afterDrain === undefined) {
          states.afterDrain = out.congested();
          drained();
        }
      });
      call.on('data', () => {
        // Past the HTTP/2 windows (64 KiB stream and connection) and the congestion bound.
        const fill = (): void => {
          for (let i = 0; i < 4 && !out.congested(); i++) {
            out.write(encode({ watch_id: ++written, events: [{ kv: { key: Buffer.from('k'), value } }] }));
          }
          if (!out.congested()) setImmediate(fill);
          else states = { afterFill: true };
        };
        fill();
      });
    });
    const stream = openWatch(Ctor);
    stream.on('error', () => {}); // the cancellation at the end
    stream.pause();
    let received = 0;
    stream.on('data', () => received++);
    stream.write({ create_request: { key: Buffer.from('k') } });
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (states) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    expect(states!.afterFill).toBe(true);
    // 4 responses (32 KiB) per turn: congestion came from bytes the paused client did not take.
    expect(written).toBeGreaterThan(8);
    stream.resume();
    await drainSeen;
    expect(states!.afterDrain).toBe(false);
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (received === written) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    stream.cancel();
  });
});

describe('ResponseBatcher without grpc-js internals', () => {
  it('writes each response through the call and counts congestion in responses', () => {
    const writes: Buffer[] = [];
    const fake = Object.assign(new EventEmitter(), {
      writableLength: 0,
      write(m: Buffer) {
        writes.push(m);
        this.writableLength++;
        return true;
      },
      sendMetadata() {
        throw new Error('not used on this path');
      },
    }) as unknown as StreamingCall & { writableLength: number };
    const out = new ResponseBatcher(fake, LIMITS);
    expect(out.direct).toBe(false);
    let drains = 0;
    out.onDrain(() => drains++);
    for (let i = 0; i < 15; i++) out.write(Buffer.from([i]));
    expect(writes).toHaveLength(15); // written at once, one by one
    expect(out.congested()).toBe(false);
    out.write(Buffer.from([15]));
    expect(out.congested()).toBe(true);
    (fake as unknown as EventEmitter).emit('drain');
    expect(drains).toBe(1);
  });
});
