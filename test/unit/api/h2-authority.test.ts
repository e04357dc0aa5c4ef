import { describe, it, expect, afterEach } from 'vitest';
import { createRequire } from 'node:module';
import net from 'node:net';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import {
  authorityHostPort,
  encodeHeaderBlockStateless,
  HpackBlockDecoder,
  ClientStreamRewriter,
  H2ShimProtocolError,
  injectH2Connection,
  headerBlockFrames,
  type HeaderField,
  type H2HandoffDecision,
} from '../../../src/api/h2-authority.js';

// ---------------------------------------------------------------------------------------
// Frame and HPACK helpers for building client streams by hand

interface HpackCompressor {
  write(headers: Array<{ name: string; value: string; neverIndex?: boolean; huffman?: boolean }>): void;
  read(): Buffer | null;
  reset(): void;
}
const hpack = createRequire(import.meta.url)('hpack.js') as {
  compressor: { create(opts: { table: { maxSize: number } }): HpackCompressor };
};

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 };

function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function parseFrames(buf: Buffer): Frame[] {
  const frames: Frame[] = [];
  let pos = 0;
  while (pos < buf.length) {
    expect(buf.length - pos).toBeGreaterThanOrEqual(9);
    const length = buf.readUIntBE(pos, 3);
    frames.push({ type: buf[pos + 3]!, flags: buf[pos + 4]!, streamId: buf.readUInt32BE(pos + 5), payload: buf.subarray(pos + 9, pos + 9 + length) });
    pos += 9 + length;
  }
  expect(pos).toBe(buf.length);
  return frames;
}

function compress(c: HpackCompressor, headers: Array<[string, string]>, huffman = true): Buffer {
  c.write(headers.map(([name, value]) => ({ name, value, huffman })));
  const parts: Buffer[] = [];
  for (let b = c.read(); b !== null; b = c.read()) parts.push(b);
  return Buffer.concat(parts);
}

function fields(list: Array<[string, string]>): HeaderField[] {
  return list.map(([name, value]) => ({ name, value, neverIndex: false }));
}

const URL_AUTHORITY = 'http://127.0.0.1:1234';

function requestHeaders(path: string, authority = URL_AUTHORITY, extra: Array<[string, string]> = []): Array<[string, string]> {
  return [[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', authority], ['content-type', 'application/grpc'], ['te', 'trailers'], ...extra];
}

/** Header blocks of an output stream, reassembled, each decoded with a FRESH decoder (proves statelessness). */
function outputBlocks(out: Buffer): Array<{ streamId: number; flags: number; priority: Buffer | null; fields: HeaderField[]; frames: Frame[] }> {
  const blocks: Array<{ streamId: number; flags: number; priority: Buffer | null; fields: HeaderField[]; frames: Frame[] }> = [];
  const all = parseFrames(out);
  for (let i = 0; i < all.length; i++) {
    const f = all[i]!;
    if (f.type !== T.HEADERS) {
      expect(f.type).not.toBe(T.CONTINUATION);
      continue;
    }
    expect(f.flags & F.PADDED).toBe(0);
    const hasPriority = (f.flags & F.PRIORITY) !== 0;
    const parts = [hasPriority ? f.payload.subarray(5) : f.payload];
    const frames = [f];
    let last = f;
    while ((last.flags & F.END_HEADERS) === 0) {
      last = all[++i]!;
      expect(last.type).toBe(T.CONTINUATION);
      expect(last.streamId).toBe(f.streamId);
      parts.push(last.payload);
      frames.push(last);
    }
    blocks.push({ streamId: f.streamId, flags: f.flags, priority: hasPriority ? f.payload.subarray(0, 5) : null, fields: new HpackBlockDecoder().decode(Buffer.concat(parts)), frames });
  }
  return blocks;
}

function feed(rewriter: ClientStreamRewriter, chunks: Buffer[]): Buffer {
  return Buffer.concat(chunks.flatMap((c) => rewriter.transform(c)));
}

// ---------------------------------------------------------------------------------------

describe('authorityHostPort', () => {
  it('keeps host:port and cuts URLs down to it', () => {
    expect(authorityHostPort('127.0.0.1:2379')).toBe('127.0.0.1:2379');
    expect(authorityHostPort('http://127.0.0.1:2379')).toBe('127.0.0.1:2379');
    expect(authorityHostPort('https://etcd.example.com:2379/')).toBe('etcd.example.com:2379');
    expect(authorityHostPort('http://[::1]:2379/v3?x=1')).toBe('[::1]:2379');
    expect(authorityHostPort('host:1/path')).toBe('host:1');
    expect(authorityHostPort('unix:///tmp/etcd.sock')).toBe('localhost');
  });
});

describe('stateless HPACK encoder', () => {
  const sample: HeaderField[] = [
    ...fields(requestHeaders('/etcdserverpb.KV/Put', '127.0.0.1:2379')),
    { name: 'x-long', value: 'v'.repeat(300), neverIndex: false },
    { name: 'authorization', value: 'secret-token', neverIndex: true },
    { name: 'x-latin1', value: '\u00e9\u00ff\u0000', neverIndex: false },
    { name: ':authority', value: '', neverIndex: false },
  ];

  it('round-trips through a decoder and never touches the dynamic table', () => {
    const block = encodeHeaderBlockStateless(sample);
    const fresh = new HpackBlockDecoder();
    expect(fresh.decode(block)).toEqual(sample);
    // A decoder whose dynamic table is full of other entries reads it the same way...
    const used = new HpackBlockDecoder();
    const c = hpack.compressor.create({ table: { maxSize: 4096 } });
    used.decode(compress(c, [['x-a', '1'], ['x-b', '2'], [':authority', 'other:1']]));
    expect(used.decode(block)).toEqual(sample);
    // ...and decoding it added nothing: dynamic indices 62 and 63 still mean the last two entries.
    expect(used.decode(Buffer.from([0x80 | 62, 0x80 | 63]))).toEqual(fields([[':authority', 'other:1'], ['x-b', '2']]));
  });

  it('uses static-table names, literal values and the never-indexed form', () => {
    const block = encodeHeaderBlockStateless([{ name: ':authority', value: 'h:1', neverIndex: false }]);
    expect([...block]).toEqual([0x01, 0x03, ...Buffer.from('h:1')]);
    const never = encodeHeaderBlockStateless([{ name: 'x-s', value: 'v', neverIndex: true }]);
    expect([...never]).toEqual([0x10, 0x03, ...Buffer.from('x-s'), 0x01, ...Buffer.from('v')]);
  });
});

describe('HpackBlockDecoder', () => {
  it('mirrors a stateful, Huffman-coding encoder across blocks, evictions and table size updates', () => {
    const c = hpack.compressor.create({ table: { maxSize: 4096 } });
    const d = new HpackBlockDecoder();
    const blocks: Array<Array<[string, string]>> = [
      requestHeaders('/a', URL_AUTHORITY, [['x-trace', 'abc']]),
      requestHeaders('/b', URL_AUTHORITY, [['x-trace', 'abc']]),
      // big values force evictions out of the 4096-byte table
      requestHeaders('/c', URL_AUTHORITY, [['x-big', 'q'.repeat(2000)], ['x-big2', 'r'.repeat(2000)]]),
      requestHeaders('/d', URL_AUTHORITY, [['x-trace', 'abc']]),
    ];
    for (const b of blocks) expect(d.decode(compress(c, b))).toEqual(fields(b));
    // reset() emits "size 0" then "size 4096" updates: both tables empty again, in step.
    c.reset();
    const again = requestHeaders('/e', URL_AUTHORITY, [['x-trace', 'abc']]);
    const block = compress(c, again);
    expect(block[0]! & 0xe0).toBe(0x20); // starts with a dynamic table size update
    expect(d.decode(block)).toEqual(fields(again));
    expect(d.decode(compress(c, again))).toEqual(fields(again));
  });

  it('rejects table size updates above the advertised size and out-of-range indices', () => {
    expect(() => new HpackBlockDecoder(4096).decode(Buffer.from([0x3f, 0xe2, 0x1f]))).toThrow(H2ShimProtocolError);
    expect(() => new HpackBlockDecoder().decode(Buffer.from([0x80 | 70]))).toThrow(H2ShimProtocolError);
    expect(() => new HpackBlockDecoder().decode(Buffer.from([0x00, 0x05, 0x61]))).toThrow(H2ShimProtocolError);
  });
});

describe('ClientStreamRewriter', () => {
  const settings = frame(T.SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0x40, 0, 0, 0, 2, 0, 0, 0, 0]));
  const windowUpdate = frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0x0f, 0, 1]));
  const ping = frame(T.PING, 0, 0, Buffer.from('12345678'));
  const settingsAck = frame(T.SETTINGS, F.ACK, 0);
  const priorityField = Buffer.from([0x80, 0, 0, 0, 15]); // exclusive, depends on 0, weight 16

  /** A client stream covering padding, priority, CONTINUATION and dynamic-table references. */
  function buildStream(): { stream: Buffer; passFrames: Buffer[]; expected: Array<{ streamId: number; flags: number; fields: HeaderField[] }> } {
    const c = hpack.compressor.create({ table: { maxSize: 4096 } });
    const h1 = requestHeaders('/etcdserverpb.Maintenance/Status', URL_AUTHORITY, [['user-agent', 'grpc-go/1.26.0']]);
    const h3 = requestHeaders('/etcdserverpb.Maintenance/HashKV', URL_AUTHORITY, [['user-agent', 'grpc-go/1.26.0'], ['x-pad', 'z'.repeat(100)]]);
    const h5 = requestHeaders('/etcdserverpb.Maintenance/Status', URL_AUTHORITY, [['user-agent', 'grpc-go/1.26.0']]);
    const b1 = compress(c, h1);
    const b3 = compress(c, h3);
    const b5 = compress(c, h5);
    expect(b5.length).toBeLessThan(b1.length / 2); // mostly indexed from the dynamic table
    const pad = Buffer.alloc(7, 0);
    const headers1 = frame(T.HEADERS, F.END_HEADERS | F.PADDED | F.PRIORITY, 1, Buffer.concat([Buffer.from([pad.length]), priorityField, b1, pad]));
    const data1 = frame(T.DATA, F.END_STREAM, 1, Buffer.from([0, 0, 0, 0, 0]));
    const third = Math.floor(b3.length / 3);
    const headers3 = frame(T.HEADERS, F.PADDED, 3, Buffer.concat([Buffer.from([2]), b3.subarray(0, third), Buffer.alloc(2)]));
    const cont3a = frame(T.CONTINUATION, 0, 3, b3.subarray(third, 2 * third));
    const cont3b = frame(T.CONTINUATION, F.END_HEADERS, 3, b3.subarray(2 * third));
    const data3 = frame(T.DATA, F.END_STREAM, 3, Buffer.alloc(300, 7));
    const headers5 = frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 5, b5);
    const rst5 = frame(T.RST_STREAM, 0, 5, Buffer.from([0, 0, 0, 8]));
    const stream = Buffer.concat([PREFACE, settings, windowUpdate, headers1, data1, headers3, cont3a, cont3b, data3, ping, settingsAck, headers5, rst5]);
    const fixed = (h: Array<[string, string]>) => fields(h.map(([n, v]) => [n, n === ':authority' ? '127.0.0.1:1234' : v]));
    return {
      stream,
      passFrames: [settings, windowUpdate, data1, data3, ping, settingsAck, rst5],
      expected: [
        { streamId: 1, flags: F.END_HEADERS | F.PRIORITY, fields: fixed(h1) },
        { streamId: 3, flags: F.END_HEADERS, fields: fixed(h3) },
        { streamId: 5, flags: F.END_HEADERS | F.END_STREAM, fields: fixed(h5) },
      ],
    };
  }

  function checkOutput(out: Buffer, built: ReturnType<typeof buildStream>): void {
    expect(out.subarray(0, 24)).toEqual(PREFACE);
    const rest = out.subarray(24);
    const blocks = outputBlocks(rest);
    expect(blocks.map((b) => ({ streamId: b.streamId, flags: b.flags, fields: b.fields }))).toEqual(built.expected);
    expect(blocks[0]!.priority).toEqual(priorityField);
    const passed = parseFrames(rest).filter((f) => f.type !== T.HEADERS && f.type !== T.CONTINUATION);
    expect(passed.map((f) => frame(f.type, f.flags, f.streamId, f.payload))).toEqual(built.passFrames);
  }

  it('rewrites header blocks (padding, priority, CONTINUATION, dynamic table) and passes other frames', () => {
    const built = buildStream();
    const r = new ClientStreamRewriter();
    const out = feed(r, [built.stream]);
    checkOutput(out, built);
    expect(r.headerBlocks).toBe(3);
    expect(r.authorityFixes).toBe(3);
  });

  it('gives the same output whatever the chunking: every two-way split and byte by byte', () => {
    const built = buildStream();
    const whole = feed(new ClientStreamRewriter(), [built.stream]);
    for (let cut = 1; cut < built.stream.length; cut++) {
      const out = feed(new ClientStreamRewriter(), [built.stream.subarray(0, cut), built.stream.subarray(cut)]);
      if (!out.equals(whole)) throw new Error(`output differs when split at byte ${cut}`);
    }
    const bytes = [...built.stream].map((b) => Buffer.from([b]));
    expect(feed(new ClientStreamRewriter(), bytes).equals(whole)).toBe(true);
    checkOutput(whole, built);
  });

  it('hands back chunks without header bytes as the same Buffer, without copying', () => {
    const r = new ClientStreamRewriter();
    const first = Buffer.concat([PREFACE, settings]);
    expect(r.transform(first)[0]).toBe(first);
    const data = Buffer.concat([frame(T.DATA, 0, 1, Buffer.alloc(1000, 1)), frame(T.DATA, 0, 3, Buffer.alloc(10, 2)), windowUpdate]);
    const out = r.transform(data);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(data);
    // A frame cut inside its payload: both halves come back as they are.
    const big = frame(T.DATA, F.END_STREAM, 1, Buffer.alloc(5000, 3));
    const a = big.subarray(0, 2000);
    const b = big.subarray(2000);
    expect(r.transform(a)[0]).toBe(a);
    expect(r.transform(b)[0]).toBe(b);
  });

  it('splits a re-encoded block over 16384 bytes into HEADERS + CONTINUATION', () => {
    const c = hpack.compressor.create({ table: { maxSize: 4096 } });
    const h = requestHeaders('/x', URL_AUTHORITY, [['x-1', 'a'.repeat(15_000)], ['x-2', 'b'.repeat(15_000)], ['x-3', 'c'.repeat(9_000)]]);
    const block = compress(c, h, false);
    const input = Buffer.concat([PREFACE, frame(T.HEADERS, F.PRIORITY | F.END_STREAM, 1, Buffer.concat([priorityField, block.subarray(0, 10_000)])), frame(T.CONTINUATION, F.END_HEADERS, 1, block.subarray(10_000))]);
    const out = feed(new ClientStreamRewriter(), [input]).subarray(24);
    const [b] = outputBlocks(out);
    expect(b!.fields).toEqual(fields(h.map(([n, v]) => [n, n === ':authority' ? '127.0.0.1:1234' : v])));
    expect(b!.frames.length).toBe(3);
    expect(b!.frames.map((f) => f.payload.length).every((n) => n <= 16_384)).toBe(true);
    expect(b!.frames[0]!.payload.length).toBe(16_384);
    expect(b!.frames[0]!.flags).toBe(F.PRIORITY | F.END_STREAM);
    expect(b!.frames[1]!.flags).toBe(0);
    expect(b!.frames[2]!.flags).toBe(F.END_HEADERS);
    expect(b!.priority).toEqual(priorityField);
  });

  it('headerBlockFrames puts a block that fits in one HEADERS frame', () => {
    const one = parseFrames(headerBlockFrames(7, F.END_STREAM, null, Buffer.alloc(100, 1), 16_384));
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ type: T.HEADERS, flags: F.END_STREAM | F.END_HEADERS, streamId: 7 });
    expect(parseFrames(headerBlockFrames(7, 0, null, Buffer.alloc(0), 16_384))[0]!.payload.length).toBe(0);
    const exact = parseFrames(headerBlockFrames(7, 0, null, Buffer.alloc(32_768, 1), 16_384));
    expect(exact.map((f) => [f.type, f.payload.length, f.flags])).toEqual([[T.HEADERS, 16_384, 0], [T.CONTINUATION, 16_384, F.END_HEADERS]]);
  });

  it('removes only the requested SETTINGS ACKs and records where the first one was', () => {
    const r = new ClientStreamRewriter({ dropSettingsAcks: 1 });
    const input = Buffer.concat([PREFACE, settings, settingsAck, ping, settingsAck]);
    const out = feed(r, [input.subarray(0, 24 + settings.length + 4), input.subarray(24 + settings.length + 4)]);
    expect(out).toEqual(Buffer.concat([PREFACE, settings, ping, settingsAck]));
    expect(r.droppedFrames).toEqual([{ offset: 24 + settings.length, bytes: settingsAck.length }]);
    expect(r.pendingAcksToDrop).toBe(0);
  });

  it('removes PINGs and queues their payloads only while answerPings is set, whatever the chunking', () => {
    const payload = (n: number) => Buffer.alloc(8, n);
    const pingOf = (n: number) => frame(T.PING, 0, 0, payload(n));
    const input = Buffer.concat([PREFACE, settings, pingOf(1), settingsAck, pingOf(2)]);
    for (let cut = 1; cut < input.length; cut++) {
      const r = new ClientStreamRewriter();
      r.answerPings = true;
      const out = feed(r, [input.subarray(0, cut), input.subarray(cut)]);
      expect(out).toEqual(Buffer.concat([PREFACE, settings, settingsAck]));
      expect(r.pingsToAnswer).toEqual([payload(1), payload(2)]);
      expect(r.droppedFrames).toEqual([
        { offset: 24 + settings.length, bytes: 17 },
        { offset: 24 + settings.length + 17 + settingsAck.length, bytes: 17 },
      ]);
    }
    // Answering stops while a PING is half read: that PING reaches the server whole.
    const r = new ClientStreamRewriter();
    r.answerPings = true;
    const at = 24 + settings.length + 12;
    const first = feed(r, [input.subarray(0, at)]);
    r.answerPings = false;
    const rest = feed(r, [input.subarray(at)]);
    expect(Buffer.concat([first, rest])).toEqual(Buffer.concat([PREFACE, settings, pingOf(1), settingsAck, pingOf(2)]));
    expect(r.pingsToAnswer).toEqual([]);
    expect(r.droppedFrames).toEqual([]);
  });

  it('rejects broken framing', () => {
    const c = hpack.compressor.create({ table: { maxSize: 4096 } });
    const block = compress(c, requestHeaders('/x'));
    const open = frame(T.HEADERS, 0, 1, block.subarray(0, 5));
    expect(() => feed(new ClientStreamRewriter(), [PREFACE, open, frame(T.DATA, 0, 1, Buffer.alloc(1))])).toThrow(/inside the header block/);
    expect(() => feed(new ClientStreamRewriter(), [PREFACE, open, frame(T.CONTINUATION, F.END_HEADERS, 3, block.subarray(5))])).toThrow(/unexpected CONTINUATION/);
    expect(() => feed(new ClientStreamRewriter(), [PREFACE, frame(T.CONTINUATION, F.END_HEADERS, 1, block)])).toThrow(/unexpected CONTINUATION/);
    expect(() => feed(new ClientStreamRewriter(), [PREFACE, frame(T.HEADERS, F.END_HEADERS | F.PADDED, 1, Buffer.concat([Buffer.from([200]), block]))])).toThrow(/padding/);
    expect(() => feed(new ClientStreamRewriter(), [PREFACE, frame(T.HEADERS, F.END_HEADERS | F.PRIORITY, 1, Buffer.from([1, 2]))])).toThrow(/priority/);
    expect(() => feed(new ClientStreamRewriter(), [PREFACE, frame(T.HEADERS, F.END_HEADERS, 1, Buffer.from([0xff, 0xff]))])).toThrow(H2ShimProtocolError);
  });
});

// ---------------------------------------------------------------------------------------
// Integration: real HTTP/2 servers behind injectH2Connection

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Front {
  port: number;
  decisions: Array<{ decision: H2HandoffDecision; reason: string }>;
  /** "address:port" of the client, per accepted connection. */
  peers: string[];
}

/** A TCP listener that hands every connection to `inject` through injectH2Connection. */
async function startFront(inject: (c: import('node:stream').Duplex) => void, firstRequestWaitMs?: number): Promise<Front> {
  const decisions: Front['decisions'] = [];
  const peers: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    peers.push(`${socket.remoteAddress}:${socket.remotePort}`);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    injectH2Connection(socket, inject, { firstRequestWaitMs, onDecision: (decision, reason) => decisions.push({ decision, reason }) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, decisions, peers };
}

/** Node http2 server answering with the authority and x-trace it saw. */
function echoHttp2Server(): http2.Http2Server {
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200, 'x-seen-authority': String(headers[':authority']), 'x-seen-trace': String(headers['x-trace'] ?? '') });
    stream.end(`${headers[':path']}`);
  });
  cleanups.push(() => new Promise<void>((resolve) => h2.close(() => resolve())));
  return h2;
}

function request(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<{ status: number; authority: string; trace: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = client.request(headers);
    let body = '';
    let h: http2.IncomingHttpHeaders = {};
    req.on('response', (r) => (h = r));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('error', reject);
    req.on('end', () => resolve({ status: Number(h[':status']), authority: String(h['x-seen-authority']), trace: String(h['x-seen-trace']), body }));
    req.end();
  });
}

describe('injectH2Connection with a Node http2 server', () => {
  it('serves requests whose :authority is a URL, including ones using the client dynamic table', async () => {
    const h2 = echoHttp2Server();
    const front = await startFront((c) => h2.emit('connection', c));
    const client = http2.connect(`http://127.0.0.1:${front.port}`);
    cleanups.push(() => void client.destroy());
    const headers = (i: number) => ({ ':method': 'GET', ':path': `/r${i}`, ':authority': URL_AUTHORITY, 'x-trace': 'trace-value-that-gets-indexed' });
    const first = await request(client, headers(0));
    expect(first).toEqual({ status: 200, authority: '127.0.0.1:1234', trace: 'trace-value-that-gets-indexed', body: '/r0' });
    // nghttp2's encoder now references its dynamic table for :authority and x-trace.
    const more = await Promise.all([1, 2, 3, 4, 5].map((i) => request(client, headers(i))));
    expect(more.map((r) => r.body)).toEqual(['/r1', '/r2', '/r3', '/r4', '/r5']);
    expect(more.every((r) => r.status === 200 && r.authority === '127.0.0.1:1234' && r.trace === 'trace-value-that-gets-indexed')).toBe(true);
    expect(front.decisions).toEqual([{ decision: 'shim', reason: 'first request has a URL as :authority' }]);
  });

  it('hands clients with a valid authority the plain socket, which keeps working', async () => {
    const h2 = echoHttp2Server();
    const front = await startFront((c) => h2.emit('connection', c));
    const client = http2.connect(`http://127.0.0.1:${front.port}`);
    cleanups.push(() => void client.destroy());
    const r0 = await request(client, { ':path': '/a', 'x-trace': 't' });
    expect(r0).toMatchObject({ status: 200, authority: `127.0.0.1:${front.port}`, body: '/a' });
    // More requests, a ping and a new SETTINGS round trip: no protocol error from the ACK we removed.
    await new Promise<void>((resolve, reject) => client.ping((err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve) => client.settings({ initialWindowSize: 1 << 20 }, () => resolve()));
    const rs = await Promise.all([1, 2, 3].map((i) => request(client, { ':path': `/b${i}`, 'x-trace': 't' })));
    expect(rs.map((r) => r.body)).toEqual(['/b1', '/b2', '/b3']);
    expect(client.destroyed || client.closed).toBe(false);
    expect(front.decisions).toEqual([{ decision: 'plain', reason: 'first request has a valid :authority' }]);
  });

  for (const [authority, decision] of [[undefined, 'plain'], [URL_AUTHORITY, 'shim']] as const) {
    it(`answers an idle client's PINGs before its first request, then hands it over (${decision})`, async () => {
      const h2 = echoHttp2Server();
      const front = await startFront((c) => h2.emit('connection', c));
      const client = http2.connect(`http://127.0.0.1:${front.port}`);
      cleanups.push(() => void client.destroy());
      const ping = () => new Promise<void>((resolve, reject) => client.ping((err) => (err ? reject(err) : resolve())));
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      // Keepalive while idle: answered although no server has the connection yet.
      await ping();
      await ping();
      expect(front.decisions).toEqual([]);
      const headers = authority ? { ':path': '/first', ':authority': authority } : { ':path': '/first' };
      const r = await request(client, headers);
      expect(r).toMatchObject({ status: 200, body: '/first' });
      expect(front.decisions.map((d) => d.decision)).toEqual([decision]);
      // The server never saw the answered PINGs: a second answer would be an unsolicited
      // PING ACK, which Node's client treats as a protocol error.
      await ping();
      const r2 = await request(client, { ':path': '/second' });
      expect(r2).toMatchObject({ status: 200, body: '/second' });
      expect(client.destroyed || client.closed).toBe(false);
    });
  }

  it('gives the shim to a client that sends no request in time, and it still works', async () => {
    const h2 = echoHttp2Server();
    const front = await startFront((c) => h2.emit('connection', c), 50);
    const client = http2.connect(`http://127.0.0.1:${front.port}`);
    cleanups.push(() => void client.destroy());
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(front.decisions).toEqual([{ decision: 'shim', reason: 'no request and SETTINGS ACK in time' }]);
    const r = await request(client, { ':path': '/late', ':authority': URL_AUTHORITY });
    expect(r).toMatchObject({ status: 200, authority: '127.0.0.1:1234', body: '/late' });
    const r2 = await request(client, { ':path': '/late2' });
    expect(r2).toMatchObject({ status: 200, authority: `127.0.0.1:${front.port}`, body: '/late2' });
  });

  it('accepts hand-made frames: padding, priority, CONTINUATION, Huffman and dynamic-table references', async () => {
    const h2 = echoHttp2Server();
    const front = await startFront((c) => h2.emit('connection', c));
    const socket = net.connect(front.port, '127.0.0.1');
    cleanups.push(() => void socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));

    // Reads the server's frames: ACKs its SETTINGS, collects response header blocks.
    const serverDecoder = new HpackBlockDecoder();
    const responses = new Map<number, HeaderField[]>();
    let pending = Buffer.alloc(0);
    let settingsSeen = 0;
    let goaway: Frame | null = null;
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
        const length = pending.readUIntBE(0, 3);
        const f: Frame = { type: pending[3]!, flags: pending[4]!, streamId: pending.readUInt32BE(5), payload: pending.subarray(9, 9 + length) };
        pending = pending.subarray(9 + length);
        if (f.type === T.SETTINGS && (f.flags & F.ACK) === 0) {
          settingsSeen++;
          socket.write(frame(T.SETTINGS, F.ACK, 0));
        } else if (f.type === T.HEADERS) {
          expect(f.flags & F.END_HEADERS).toBe(F.END_HEADERS);
          responses.set(f.streamId, serverDecoder.decode(f.payload));
        } else if (f.type === T.GOAWAY) {
          goaway = f;
        }
      }
    });

    const c = hpack.compressor.create({ table: { maxSize: 4096 } });
    const get = (path: string): Array<[string, string]> => [[':method', 'GET'], [':scheme', 'http'], [':path', path], [':authority', URL_AUTHORITY], ['x-trace', 'hand-made']];
    const b1 = compress(c, get('/one'));
    const b3 = compress(c, get('/two'));
    const b5 = compress(c, get('/three'));
    socket.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
    // Like a Go client: nothing more until the server's preface arrives.
    await waitFor(() => settingsSeen >= 1);
    socket.write(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS | F.PADDED | F.PRIORITY, 1, Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 200]), b1, Buffer.alloc(3)])));
    await waitFor(() => responses.has(1));
    const split = Math.floor(b3.length / 2);
    socket.write(Buffer.concat([frame(T.HEADERS, F.END_STREAM, 3, b3.subarray(0, split)), frame(T.CONTINUATION, F.END_HEADERS, 3, b3.subarray(split))]));
    // Byte by byte for the last one.
    for (const byte of frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 5, b5)) socket.write(Buffer.from([byte]));
    await waitFor(() => responses.has(3) && responses.has(5));
    for (const id of [1, 3, 5]) {
      const r = Object.fromEntries(responses.get(id)!.map((f) => [f.name, f.value]));
      expect(r).toMatchObject({ ':status': '200', 'x-seen-authority': '127.0.0.1:1234', 'x-seen-trace': 'hand-made' });
    }
    expect(goaway).toBeNull();
    expect(settingsSeen).toBe(2); // our empty SETTINGS, then the server's own
    expect(front.decisions[0]!.decision).toBe('shim');
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('injectH2Connection with grpc-js', () => {
  const echoService: grpc.ServiceDefinition = {
    Echo: {
      path: '/test.Echo/Echo',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  };

  async function grpcFront(): Promise<Front> {
    const server = new grpc.Server();
    server.addService(echoService, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(`${call.getHost()}|${call.getPeer()}|${call.request.toString()}`)),
    });
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    cleanups.push(() => {
      injector.destroy();
      server.forceShutdown();
    });
    return startFront((c) => injector.injectConnection(c));
  }

  async function calls(port: number, options: grpc.ChannelOptions, n: number): Promise<string[]> {
    const Client = grpc.makeGenericClientConstructor(echoService, 'Echo');
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
    cleanups.push(() => client.close());
    const one = (i: number) =>
      new Promise<string>((resolve, reject) =>
        (client as unknown as { Echo(req: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void }).Echo(Buffer.from(`m${i}`), (e, r) => (e ? reject(e) : resolve(r!.toString()))),
      );
    const out = [await one(0)];
    out.push(...(await Promise.all(Array.from({ length: n - 1 }, (_, i) => one(i + 1)))));
    return out;
  }

  it('serves a client whose default authority is a URL (what etcdctl endpoint status sends)', async () => {
    const front = await grpcFront();
    const out = await calls(front.port, { 'grpc.default_authority': URL_AUTHORITY }, 20);
    // getPeer() still names the real client (tls-identity.ts relies on it).
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => `127.0.0.1:1234|${front.peers[0]}|m${i}`));
    expect(front.decisions.map((d) => d.decision)).toEqual(['shim']);
  });

  it('passes ordinary clients through untouched', async () => {
    const front = await grpcFront();
    const out = await calls(front.port, {}, 20);
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => `127.0.0.1:${front.port}|${front.peers[0]}|m${i}`));
    expect(front.decisions.map((d) => d.decision)).toEqual(['plain']);
  });
});
