import { describe, it, expect, afterEach } from 'vitest';
import net from 'node:net';
import http2 from 'node:http2';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { createConnectionInjector, directTrailersInUse, FAST_PATHS, STREAM_CLOSED_AFTER_RESPONSE } from '../../../src/api/fast-unary.js';
import { serviceDefinition, grpcError } from '../../../src/api/grpc.js';
import { root, type Msg } from '../../../src/server/pb.js';
import { ServerError } from '../../../src/server/errors.js';

// The fast path must be indistinguishable from grpc-js on the wire and to the handlers.

type Handler = (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => void;

interface Served {
  port: number;
  /** Class name of the `call` each handler invocation got, in order. */
  callKinds: string[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const KV = 'etcdserverpb.KV';
const PutResponse = root.lookupType('etcdserverpb.PutResponse');

async function serve(
  handlers: Partial<Record<'Range' | 'Put' | 'DeleteRange' | 'Txn' | 'Compact', Handler>>,
  opts: { fast?: boolean; maxReceiveBytes?: number; wrapSocket?: (s: net.Socket) => Duplex } = {},
): Promise<Served> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': opts.maxReceiveBytes ?? 4 * 1024 * 1024 });
  const callKinds: string[] = [];
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, fn] of Object.entries(handlers)) {
    impl[name] = ((call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      callKinds.push(call.constructor.name);
      fn(call, cb);
    }) as grpc.UntypedHandleCall;
  }
  server.addService(serviceDefinition(KV), impl);
  const injector = opts.fast === false
    ? server.createConnectionInjector(grpc.ServerCredentials.createInsecure())
    : createConnectionInjector(server);
  const sockets = new Set<net.Socket>();
  const listener = net.createServer({ noDelay: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    injector.injectConnection(opts.wrapSocket ? opts.wrapSocket(s) : s);
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const close = async () => {
    injector.destroy();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => listener.close(() => r()));
    server.forceShutdown();
  };
  cleanups.push(close);
  return { port, callKinds, close };
}

function client(port: number, options: grpc.ChannelOptions = {}) {
  const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(KV), 'KV');
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options) as unknown as Record<string, (req: Msg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Msg) => void) => grpc.ClientUnaryCall> & grpc.Client;
  cleanups.push(async () => c.close());
  return c;
}

function call(c: ReturnType<typeof client>, method: string, req: Msg, md = new grpc.Metadata()): Promise<Msg> {
  return new Promise((resolve, reject) => {
    c[method]!(req, md, {}, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

function putResponse(revision: number): Msg {
  return { header: { cluster_id: 1, member_id: 2, revision, raft_term: 3 } };
}

/** One raw HTTP/2 request on a session of its own: returns response headers, body and trailers. */
async function rawCall(port: number, path: string, body: Buffer): Promise<RawResponse> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await rawCallOn(session, path, body);
  } finally {
    session.close();
  }
}

interface RawResponse {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

/** One request on an open session: response headers, body and trailers. */
function rawCallOn(session: http2.ClientHttp2Session, path: string, body: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers, body: Buffer.concat(chunks), trailers }));
    req.on('error', reject);
    req.end(body);
  });
}

/** A socket seen through a JS stream that records each write (a corked batch counts as one). */
class RecordingStream extends Duplex {
  constructor(
    private readonly inner: net.Socket,
    private readonly writes: Buffer[],
  ) {
    super();
    inner.on('data', (d: Buffer) => this.push(d));
    inner.on('end', () => this.push(null));
    inner.on('error', (e) => this.destroy(e));
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writes.push(chunk);
    this.inner.write(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const all = Buffer.concat(chunks.map((c) => c.chunk));
    this.writes.push(all);
    this.inner.write(all, cb);
  }

  override _final(cb: () => void): void {
    this.inner.end(cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}

/** The HTTP/2 frame headers in a buffer that holds whole frames. */
function frameHeaders(buf: Buffer): { type: number; flags: number; streamId: number }[] {
  const out: { type: number; flags: number; streamId: number }[] = [];
  for (let at = 0; at + 9 <= buf.length; at += 9 + buf.readUIntBE(at, 3)) {
    out.push({ type: buf[at + 3]!, flags: buf[at + 4]!, streamId: buf.readUInt32BE(at + 5) & 0x7fffffff });
  }
  return out;
}

function grpcFrame(message: Buffer): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** Header fields that legitimately differ between two responses. */
function comparable(h: http2.IncomingHttpHeaders): Record<string, unknown> {
  const { date: _date, ...rest } = h;
  return rest;
}

describe('fast unary path', () => {
  it('serves the hot KV methods with the registered handler: request, metadata and peer as grpc-js gives them', async () => {
    let seen: { key?: string; token?: string[]; timeout?: number; peer?: string; host?: string } = {};
    const s = await serve({
      Put: (c, cb) => {
        seen = {
          key: Buffer.from(c.request.key as Uint8Array).toString(),
          token: c.metadata.get('token') as string[],
          timeout: c.metadata.get('grpc-timeout').length,
          peer: c.getPeer(),
          host: c.getHost(),
        };
        cb(null, putResponse(7));
      },
    });
    const c = client(s.port);
    const md = new grpc.Metadata();
    md.set('token', 'abc.def');
    const res = await new Promise<Msg>((resolve, reject) => {
      c.Put!({ key: Buffer.from('k1'), value: Buffer.from('v') }, md, { deadline: Date.now() + 10_000 }, (err, r) => (err ? reject(err) : resolve(r!)));
    });
    expect(String((res.header as Msg).revision)).toBe('7');
    expect(s.callKinds).toEqual(['FastUnaryCall']);
    expect(seen.key).toBe('k1');
    expect(seen.token).toEqual(['abc.def']);
    expect(seen.timeout).toBe(0); // transport headers are not metadata
    expect(seen.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(seen.host).toBe(`127.0.0.1:${s.port}`);
    expect([...FAST_PATHS].sort()).toEqual(['/etcdserverpb.KV/DeleteRange', '/etcdserverpb.KV/Put', '/etcdserverpb.KV/Range', '/etcdserverpb.KV/Txn']);
  });

  it('leaves every other method to grpc-js on the same connection', async () => {
    const s = await serve({ Put: (_c, cb) => cb(null, putResponse(1)), Compact: (_c, cb) => cb(null, { header: { revision: 9 } }) });
    const c = client(s.port);
    await call(c, 'Put', { key: Buffer.from('a') });
    const res = await call(c, 'Compact', { revision: 1 });
    expect(String((res.header as Msg).revision)).toBe('9');
    expect(s.callKinds[0]).toBe('FastUnaryCall');
    expect(s.callKinds[1]).not.toBe('FastUnaryCall');
  });

  it('maps handler errors like grpc-js: code, details and trailing metadata', async () => {
    const s = await serve({ Put: (_c, cb) => cb(grpcError(new ServerError('etcdserver: request timed out'))) });
    const c = client(s.port);
    const err = await call(c, 'Put', { key: Buffer.from('a') }).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err).toBeDefined();
    const reference = grpcError(new ServerError('etcdserver: request timed out'));
    expect(err!.code).toBe(reference.code);
    expect(err!.details).toBe(reference.details);
  });

  it('answers byte for byte what grpc-js answers: headers, message and trailers, success and error', async () => {
    const handlers = {
      Put: ((_c, cb) => cb(null, putResponse(42))) as Handler,
      Range: ((_c, cb) => {
        const e = new Error('etcdserver: key not found % 100') as grpc.ServiceError;
        e.code = grpc.status.NOT_FOUND;
        e.details = 'etcdserver: key not found % 100';
        e.metadata = new grpc.Metadata();
        e.metadata.set('tsetcd-detail', 'why it failed');
        cb(e);
      }) as Handler,
    };
    const fast = await serve(handlers);
    const slow = await serve(handlers, { fast: false });
    const body = grpcFrame(Buffer.from(root.lookupType('etcdserverpb.PutRequest').encode({ key: Buffer.from('k') }).finish()));
    for (const path of ['/etcdserverpb.KV/Put', '/etcdserverpb.KV/Range']) {
      const a = await rawCall(fast.port, path, body);
      const b = await rawCall(slow.port, path, body);
      expect(comparable(a.headers)).toEqual(comparable(b.headers));
      expect(a.body.equals(b.body)).toBe(true);
      expect(comparable(a.trailers)).toEqual(comparable(b.trailers));
    }
    const ok = await rawCall(fast.port, '/etcdserverpb.KV/Put', body);
    expect(ok.trailers['grpc-status']).toBe('0');
    // On the Node major it was checked against, OK trailers skip Node's deferral.
    expect(directTrailersInUse()).toBe(process.versions.node.startsWith('20.'));
    expect(PutResponse.decode(ok.body.subarray(5)).toJSON()).toMatchObject({ header: { revision: '42' } });
    expect(fast.callKinds).toEqual(['FastUnaryCall', 'FastUnaryCall', 'FastUnaryCall']);
  });

  it('sends a successful response in one socket write: headers, message and trailers together', async () => {
    // The server's connection goes through a JS stream, so every write Node's http2 makes
    // (one per nghttp2 send) is seen here, with the HTTP/2 frames it carries.
    const writes: Buffer[] = [];
    const fast = await serve({ Put: (_c, cb) => cb(null, putResponse(7)) }, { wrapSocket: (s) => new RecordingStream(s, writes) });
    const body = grpcFrame(Buffer.from(root.lookupType('etcdserverpb.PutRequest').encode({ key: Buffer.from('k') }).finish()));
    const session = http2.connect(`http://127.0.0.1:${fast.port}`);
    cleanups.push(async () => void session.close());
    await new Promise<void>((r) => session.once('connect', () => r()));
    for (let i = 0; i < 3; i++) {
      const res = await rawCallOn(session, '/etcdserverpb.KV/Put', body);
      expect(res.trailers['grpc-status']).toBe('0');
    }
    const HEADERS = 1;
    const DATA = 0;
    const END_STREAM = 1;
    const perWrite = writes.map((w) => frameHeaders(w).filter((f) => f.streamId !== 0));
    const responseWrites = perWrite.filter((frames) => frames.length > 0);
    if (directTrailersInUse()) {
      expect(responseWrites.length).toBe(3);
      for (const frames of responseWrites) {
        expect(frames.map((f) => f.type)).toEqual([HEADERS, DATA, HEADERS]);
        expect(frames[2]!.flags & END_STREAM).toBe(END_STREAM);
      }
    } else {
      expect(responseWrites.flat().length).toBe(9);
    }
  });

  it('builds no ERR_STREAM_DESTROYED for a response whose stream closed before its write completed', async () => {
    // One-write responses close the stream before Node reports the write done; Node then
    // passes an error to the waiting write callbacks (none here). It must be the shared one,
    // not a new error with a stack trace per call, and the stream must not emit 'error'.
    const streams: http2.ServerHttp2Stream[] = [];
    const errors: Error[] = [];
    const s = await serve({
      Put: (c, cb) => {
        const stream = (c as unknown as { stream: http2.ServerHttp2Stream }).stream;
        streams.push(stream);
        stream.on('error', (e) => errors.push(e));
        cb(null, putResponse(3));
      },
    });
    const c = client(s.port);
    for (let i = 0; i < 5; i++) await call(c, 'Put', { key: Buffer.from('k') });
    await new Promise((r) => setTimeout(r, 20));
    expect(streams).toHaveLength(5);
    for (const stream of streams) {
      expect(stream.destroyed).toBe(true);
      if (directTrailersInUse()) expect(writableErrorOf(stream)).toBe(STREAM_CLOSED_AFTER_RESPONSE);
      else expect(writableErrorOf(stream)).toBeNull();
    }
    expect(errors).toEqual([]);
  });

  it('refuses a request larger than the server limit with RESOURCE_EXHAUSTED, without calling the handler', async () => {
    const s = await serve({ Put: (_c, cb) => cb(null, putResponse(1)) }, { maxReceiveBytes: 1000 });
    const c = client(s.port);
    const err = await call(c, 'Put', { key: Buffer.from('k'), value: Buffer.alloc(5000) }).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toMatch(/Received message larger than max \(\d+ vs 1000\)/);
    expect(s.callKinds).toEqual([]);
    // The connection stays usable.
    await call(c, 'Put', { key: Buffer.from('k') });
    expect(s.callKinds).toEqual(['FastUnaryCall']);
  });

  it('rejects an empty body and a second message as grpc-js does', async () => {
    const s = await serve({ Put: (_c, cb) => cb(null, putResponse(1)) });
    const ref = await serve({ Put: (_c, cb) => cb(null, putResponse(1)) }, { fast: false });
    const one = grpcFrame(Buffer.from('0a0161', 'hex'));
    for (const body of [Buffer.alloc(0), Buffer.concat([one, one])]) {
      const a = await rawCall(s.port, '/etcdserverpb.KV/Put', body);
      const b = await rawCall(ref.port, '/etcdserverpb.KV/Put', body);
      expect(a.headers['grpc-status']).toBe(String(grpc.status.UNIMPLEMENTED));
      expect(a.headers['grpc-status']).toBe(b.headers['grpc-status']);
    }
    const torn = await rawCall(s.port, '/etcdserverpb.KV/Put', one.subarray(0, 4));
    expect(torn.headers['grpc-status']).toBe(String(grpc.status.INTERNAL));
    expect(s.callKinds).toEqual([]);
  });

  it('tells the handler when the client cancels', async () => {
    let cancelled!: () => void;
    const sawCancel = new Promise<void>((r) => (cancelled = r));
    let callbackAfterCancel: grpc.sendUnaryData<Msg> | undefined;
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    const s = await serve({
      Put: (c, cb) => {
        c.on('cancelled', () => cancelled());
        callbackAfterCancel = cb;
        started();
      },
    });
    const c = client(s.port);
    const pending = c.Put!({ key: Buffer.from('a') }, new grpc.Metadata(), {}, () => {});
    await handlerStarted;
    pending.cancel();
    await sawCancel;
    // Answering a cancelled call is harmless.
    callbackAfterCancel!(null, putResponse(1));
    expect(s.callKinds).toEqual(['FastUnaryCall']);
  });

  it('hands compressed requests to grpc-js, which decompresses them', async () => {
    const s = await serve({ Put: (c, cb) => cb(null, putResponse(Buffer.from(c.request.value as Uint8Array).length)) });
    const c = client(s.port, { 'grpc.default_compression_algorithm': 2 });
    const res = await call(c, 'Put', { key: Buffer.from('k'), value: Buffer.alloc(3000, 1) });
    expect(String((res.header as Msg).revision)).toBe('3000');
    expect(s.callKinds).toHaveLength(1);
    expect(s.callKinds[0]).not.toBe('FastUnaryCall');
  });
});

/** The error a stream's Writable side holds (Duplex has no writableErrored getter in Node 20). */
function writableErrorOf(stream: http2.ServerHttp2Stream): Error | null {
  return (stream as unknown as { _writableState: { errored: Error | null } })._writableState.errored;
}
