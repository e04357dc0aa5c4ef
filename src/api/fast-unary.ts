import { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { WARM_UP_HEADER } from './warm-up.js';
import type { Logger } from '../log/logger.js';

// The hot unary KV calls (Range, Put, DeleteRange, Txn) served straight on Node's HTTP/2
// streams, beside grpc-js. grpc-js builds a deep per-call pipeline (intercepting call,
// listener objects, stream decoder, read queue, Metadata conversion, several nextTicks):
// about 30 us of event-loop time per unary call on this class of machine, a third of the
// server's whole cost of a put. Here a call is: collect the request's DATA, decode the one
// length-prefixed message, run the SAME handler grpc-js would run (the registered function,
// so metrics, auth, validation and error mapping are shared), and answer with grpc-js's
// exact headers, message framing and trailers.
//
// Only plain cases take the fast path: a registered unary handler for one of FAST_PATHS,
// a gRPC content type and no request compression. Everything else (other methods, streams,
// compressed requests) goes to grpc-js untouched, on the same HTTP/2 session; grpc-js keeps
// owning sessions (keepalive, shutdown, limits).

/** Methods whose handlers use nothing of the call but `request`, `metadata` and the peer identity. */
export const FAST_PATHS: ReadonlySet<string> = new Set([
  '/etcdserverpb.KV/Range',
  '/etcdserverpb.KV/Put',
  '/etcdserverpb.KV/DeleteRange',
  '/etcdserverpb.KV/Txn',
]);

const GRPC_MESSAGE_HEADER_BYTES = 5;
/** The only method a warm-up call may use (a read; see warm-up.ts). */
const WARM_UP_PATH = '/etcdserverpb.KV/Range';
/** grpc-js's default receive limit, used when the server was created without one. */
const DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/**
 * A successful response in ONE socket write: HEADERS, DATA and the OK trailers together.
 *
 * Node's http2 sends a response in two writes a loop turn apart. stream.end(data) queues the
 * data, but the writable side is only shut down (Writable._final) after that write has
 * completed, i.e. after it went out without END_STREAM; then 'wantTrailers' fires, and
 * sendTrailers() defers the trailers once more (setImmediate). So each call cost a second
 * write syscall, a second segment for the client to wake up for, a timer and a header
 * conversion. Here, right after stream.end(data), the stream's native writable side is shut
 * down at once (what Node's _final would do a turn later), so when nghttp2 reads the data it
 * also sees its end, raises 'wantTrailers' from inside that read, and the trailers are
 * submitted there (nghttp2 documents submitting trailers from the data read callback as the
 * way to send them after DATA): one nghttp2 send, one write. Node's own _final later finds
 * the shutdown done (the flag Node itself checks) and finishes the stream as usual.
 *
 * This reaches into Node's http2 internals (the stream's native handle, state flags, the
 * ShutdownWrap request class and the kMaybeDestroy method), so it is enabled only on the
 * Node major it was checked against and only when all of them are found; otherwise the
 * response goes the documented way (end(), sendTrailers()).
 */
const DIRECT_TRAILERS_NODE_MAJOR = 20;
/** Node's STREAM_FLAGS_HAS_TRAILERS (lib/internal/http2/core.js). */
const STREAM_FLAGS_HAS_TRAILERS = 0x20;
/** grpc-status: 0, grpc-message: OK in Node's internal header-list form: name NUL value NUL flags. */
const OK_TRAILERS_LIST: [string, number] = ['grpc-status\u00000\u0000\u0000grpc-message\u0000OK\u0000\u0000', 2];

type ShutdownRequest = { oncomplete: (status: number) => void; callback: () => void; handle: unknown };
interface StreamInternals {
  handle: symbol;
  state: symbol;
  maybeDestroy: symbol;
  ShutdownWrap: new () => ShutdownRequest;
}
let streamInternals: StreamInternals | null | undefined;

function findStreamInternals(stream: http2.ServerHttp2Stream): StreamInternals | null {
  if (Number(process.versions.node.split('.')[0]) !== DIRECT_TRAILERS_NODE_MAJOR) return null;
  const symbols = Object.getOwnPropertySymbols(stream);
  const handle = symbols.find((s) => s.description === 'kHandle');
  const state = symbols.find((s) => s.description === 'state');
  let maybeDestroy: symbol | undefined;
  for (let proto = Object.getPrototypeOf(stream) as object | null; proto && !maybeDestroy; proto = Object.getPrototypeOf(proto) as object | null) {
    maybeDestroy = Object.getOwnPropertySymbols(proto).find((s) => s.description === 'kMaybeDestroy');
  }
  let ShutdownWrap: unknown;
  try {
    ShutdownWrap = (process as unknown as { binding(name: string): Record<string, unknown> }).binding('stream_wrap')['ShutdownWrap'];
  } catch {
    return null;
  }
  if (!handle || !state || !maybeDestroy || typeof ShutdownWrap !== 'function') return null;
  return { handle, state, maybeDestroy, ShutdownWrap: ShutdownWrap as new () => ShutdownRequest };
}

/** Whether successful responses leave in one write (undefined until the first call was answered). */
export function directTrailersInUse(): boolean | undefined {
  return streamInternals === undefined ? undefined : streamInternals !== null;
}

type NativeStream = { trailers?: (list: [string, number]) => number; shutdown?: (req: ShutdownRequest) => number };
type StreamState = { flags?: unknown; shutdownWritableCalled?: boolean };

function internalsOf(stream: http2.ServerHttp2Stream): { native: NativeStream; state: StreamState; internals: StreamInternals } | null {
  if (streamInternals === undefined) streamInternals = findStreamInternals(stream);
  if (streamInternals === null || stream.destroyed) return null;
  const fields = stream as unknown as Record<symbol, unknown>;
  const native = fields[streamInternals.handle] as NativeStream | undefined;
  const state = fields[streamInternals.state] as StreamState | undefined;
  if (typeof native?.trailers !== 'function' || typeof native.shutdown !== 'function' || typeof state?.flags !== 'number') return null;
  return { native, state, internals: streamInternals };
}

/**
 * Shuts the stream's writable side down now, as Node's shutdownWritable() would from _final
 * a turn later (unless that already happened; Node then does nothing more either).
 */
function shutdownWritableNow(stream: http2.ServerHttp2Stream, found: NonNullable<ReturnType<typeof internalsOf>>): void {
  if (found.state.shutdownWritableCalled) return;
  const { native, state, internals } = found;
  state.shutdownWritableCalled = true;
  const req = new internals.ShutdownWrap();
  // What Node's afterShutdown does: once 'finish' is emitted, let the stream close itself.
  req.oncomplete = () => {
    stream.once('finish', () => (stream as unknown as Record<symbol, () => void>)[internals.maybeDestroy]!());
  };
  req.callback = () => {};
  req.handle = native;
  if (native.shutdown!(req) === 1) req.oncomplete(0); // 1: finished synchronously
}

/**
 * stream.end(data) for a response whose OK trailers leave with it in one write: where Node's
 * internals allow, the writable side is shut down at once, and the write's completion, which
 * Node reports after nghttp2 has already closed the stream, passes no freshly built error.
 */
function endInOneWrite(stream: http2.ServerHttp2Stream, data: Buffer): void {
  const found = internalsOf(stream);
  if (found) completeQuietlyAfterClose(stream);
  stream.end(data);
  if (found) shutdownWritableNow(stream, found);
}

/**
 * Passed to a response's pending write callbacks when its stream closed before the write's
 * completion was reported (see completeQuietlyAfterClose). Shared: it carries no stack.
 */
export const STREAM_CLOSED_AFTER_RESPONSE = new Error('http2 stream closed after its response was sent');

interface WritableStateView {
  onwrite: (error?: Error | null) => void;
  errored: Error | null;
}

/**
 * With the whole response in one nghttp2 send, nghttp2 closes the stream (and Node destroys
 * it) before Node reports that the response's write completed. Node's Writable then builds
 * an ERR_STREAM_DESTROYED, stack trace included, for the write callbacks still waiting,
 * even when there are none (ours pass none): ~1.5 % of a member's CPU under load. Marking
 * the destroyed stream as errored with a shared error before Node sees the completion makes
 * it use that instead. Only for a completion without error on a stream already destroyed;
 * a destroyed stream emits no 'error' for this (only destroy(err) does).
 */
function completeQuietlyAfterClose(stream: http2.ServerHttp2Stream): void {
  const state = (stream as unknown as { _writableState?: Partial<WritableStateView> })._writableState;
  const onwrite = state?.onwrite;
  if (typeof onwrite !== 'function' || !('errored' in state!)) return;
  const view = state as WritableStateView;
  view.onwrite = (error) => {
    view.onwrite = onwrite;
    if (!error && stream.destroyed && view.errored === null) view.errored = STREAM_CLOSED_AFTER_RESPONSE;
    onwrite(error);
  };
}

/** Submits `grpc-status: 0` trailers on the nghttp2 stack; false if that is not possible here. */
function submitOkTrailersNow(stream: http2.ServerHttp2Stream): boolean {
  const found = internalsOf(stream);
  if (!found) return false;
  // What Node's finishSendTrailers() does, minus the deferral.
  found.state.flags = (found.state.flags as number) & ~STREAM_FLAGS_HAS_TRAILERS;
  const ret = found.native.trailers!(OK_TRAILERS_LIST);
  if (ret < 0) stream.destroy(new Error(`http2: submitting trailers failed (nghttp2 error ${ret})`));
  return true;
}

/** Response headers, byte for byte what grpc-js sends for a unary call. */
const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
} as const;
/** A status-only ("trailers-only") response starts with these. */
const STATUS_ONLY_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto' } as const;
const OK_TRAILERS = { 'grpc-status': grpc.status.OK, 'grpc-message': 'OK' } as const;
const WITH_TRAILERS: http2.ServerStreamResponseOptions = { waitForTrailers: true };
const END_STREAM: http2.ServerStreamResponseOptions = { endStream: true };

/** Request headers grpc-js strips before a handler sees the call's metadata. */
const TRANSPORT_HEADERS = ['grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type'];

/** A handler as grpc-js stores it after addService(). */
interface RegisteredHandler {
  func: (call: unknown, callback: (err: unknown, value?: unknown, trailer?: grpc.Metadata) => void) => void;
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
  type: string;
  path: string;
}

/** The grpc-js Server internals the fast path reads (grpc-js 1.10+). */
interface ServerInternals {
  handlers?: Map<string, RegisteredHandler>;
  http2Servers?: Map<http2.Http2Server, unknown>;
  options?: Record<string, unknown>;
}

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

export interface ConnectionInjector {
  injectConnection(connection: import('node:stream').Duplex): void;
  drain(graceTimeMs: number): void;
  destroy(): void;
}

/**
 * grpc-js's connection injector, with the fast path in front of its stream handler. If the
 * grpc-js internals are not what this was written against, it logs once and returns the
 * plain injector: everything still works, through grpc-js.
 */
export function createConnectionInjector(grpcServer: grpc.Server, logger?: Logger): ConnectionInjector {
  const internals = grpcServer as unknown as ServerInternals;
  const before = internals.http2Servers ? new Set(internals.http2Servers.keys()) : undefined;
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const created = before && internals.http2Servers ? [...internals.http2Servers.keys()].filter((s) => !before.has(s)) : [];
  const h2 = created.length === 1 ? created[0]! : undefined;
  const grpcListeners = h2?.listeners('stream') as StreamListener[] | undefined;
  if (!h2 || !internals.handlers || !grpcListeners || grpcListeners.length !== 1) {
    logger?.warn('grpc-js internals not as expected; unary KV calls go through grpc-js (slower)', {});
    return injector;
  }
  const grpcOnStream = grpcListeners[0]!;
  const handlers = internals.handlers;
  const configured = internals.options?.['grpc.max_receive_message_length'];
  const maxReceiveBytes = typeof configured === 'number' ? configured : DEFAULT_MAX_RECEIVE_BYTES;
  h2.removeAllListeners('stream');
  h2.on('stream', function onStream(this: http2.Http2Server, stream, headers, flags, rawHeaders) {
    const handler = fastHandlerFor(handlers, headers);
    if (handler) serveUnary(handler, stream, headers, maxReceiveBytes);
    else grpcOnStream.call(this, stream, headers, flags, rawHeaders);
  } as StreamListener);
  return injector;
}

function fastHandlerFor(handlers: Map<string, RegisteredHandler>, headers: http2.IncomingHttpHeaders): RegisteredHandler | undefined {
  const path = headers[':path'];
  if (typeof path !== 'string' || !FAST_PATHS.has(path)) return undefined;
  const contentType = headers['content-type'];
  if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) return undefined;
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return undefined;
  const handler = handlers.get(path);
  return handler && handler.type === 'unary' ? handler : undefined;
}

/** What a unary handler gets as `call` (the subset of grpc-js's ServerUnaryCall tsetcd's handlers use). */
class FastUnaryCall extends EventEmitter {
  cancelled = false;
  request: unknown = undefined;
  /** A member's own start-up warm-up call (warm-up.ts): served, but not counted in metrics. */
  warmUp = false;
  private md: grpc.Metadata | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    private readonly path: string,
  ) {
    super();
  }

  /** Built on first use: with auth off, no KV handler reads it. */
  get metadata(): grpc.Metadata {
    if (this.md === undefined) {
      const md = grpc.Metadata.fromHttp2Headers(this.headers);
      for (const h of TRANSPORT_HEADERS) md.remove(h);
      this.md = md;
    }
    return this.md;
  }

  /** grpc-js's format: "address:port" of the session's socket. */
  getPeer(): string {
    const socket = this.stream.session?.socket;
    if (!socket?.remoteAddress) return 'unknown';
    return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : socket.remoteAddress;
  }

  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: tls.PeerCertificate } {
    const socket = this.stream.session?.socket;
    if (!(socket instanceof tls.TLSSocket)) return {};
    const cert = socket.getPeerCertificate();
    return { transportSecurityType: 'ssl', sslPeerCertificate: cert.raw ? cert : undefined };
  }

  getDeadline(): number {
    return Infinity;
  }

  getPath(): string {
    return this.path;
  }

  getHost(): string | undefined {
    return this.headers[':authority'] ?? this.headers.host;
  }

  sendMetadata(): void {
    // Unary handlers here never send early metadata; the response headers carry none.
  }

  markCancelled(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

function serveUnary(handler: RegisteredHandler, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, maxReceiveBytes: number): void {
  const call = new FastUnaryCall(stream, headers, handler.path);
  if (headers[WARM_UP_HEADER] !== undefined && handler.path === WARM_UP_PATH) call.warmUp = true;
  let answered = false;
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let receivedBytes = 0;
  let lengthChecked = false;

  const finish = (code: grpc.status, details: string, metadata?: grpc.Metadata | null): void => {
    if (answered) return;
    answered = true;
    if (stream.destroyed || stream.closed) return;
    // Trailers-only response, as grpc-js sends a status before any message.
    const trailers = { 'grpc-status': code, 'grpc-message': encodeURI(details), ...STATUS_ONLY_HEADERS, ...metadata?.toHttp2Headers() };
    stream.respond(trailers, END_STREAM);
  };

  const reply = (err: unknown, value?: unknown, trailer?: grpc.Metadata): void => {
    if (answered) return;
    if (err) {
      const status = errorToStatus(err, trailer);
      finish(status.code, status.details, status.metadata);
      return;
    }
    let framed: Buffer;
    try {
      framed = frame(handler.serialize(value));
    } catch (e) {
      finish(grpc.status.INTERNAL, `Error serializing response: ${(e as Error).message}`);
      return;
    }
    answered = true;
    if (stream.destroyed || stream.closed) return;
    stream.respond(RESPONSE_HEADERS, WITH_TRAILERS);
    if (trailer) {
      const trailers = { ...OK_TRAILERS, ...trailer.toHttp2Headers() };
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    } else {
      stream.once('wantTrailers', () => {
        if (!submitOkTrailersNow(stream)) stream.sendTrailers(OK_TRAILERS);
      });
    }
    if (trailer) stream.end(framed);
    else endInOneWrite(stream, framed);
  };

  stream.on('data', (chunk: Buffer) => {
    if (answered) return;
    receivedBytes += chunk.length;
    if (first === undefined) first = chunk;
    else (more ??= [first]).push(chunk);
    // The declared length is known once the 5-byte prefix is in: refuse oversized messages early.
    if (!lengthChecked && receivedBytes >= GRPC_MESSAGE_HEADER_BYTES) {
      lengthChecked = true;
      const head = more ? Buffer.concat(more, GRPC_MESSAGE_HEADER_BYTES) : first;
      const declared = head.readUInt32BE(1);
      if (declared > maxReceiveBytes) {
        finish(grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${declared} vs ${maxReceiveBytes})`);
      }
    }
  });
  stream.once('end', () => {
    if (answered) return;
    const body = more ? Buffer.concat(more, receivedBytes) : first;
    const message = body ? oneMessage(body) : undefined;
    if (message === undefined) {
      finish(grpc.status.UNIMPLEMENTED, `Received no request message for server streaming method ${handler.path}`);
      return;
    }
    if (message === 'torn') {
      finish(grpc.status.INTERNAL, 'Incomplete request message');
      return;
    }
    if (message === 'several') {
      finish(grpc.status.UNIMPLEMENTED, `Received a second request message for server streaming method ${handler.path}`);
      return;
    }
    try {
      call.request = handler.deserialize(message);
    } catch (e) {
      finish(grpc.status.INTERNAL, `Error deserializing request: ${(e as Error).message}`);
      return;
    }
    try {
      handler.func(call, reply);
    } catch (e) {
      finish(grpc.status.UNKNOWN, `Server method handler threw error ${(e as Error).message}`);
    }
  });
  // A reset stream emits 'error' then 'close'; the handler learns it through 'cancelled'.
  stream.on('error', () => {});
  stream.once('close', () => {
    if (!answered) call.markCancelled();
  });
}

/** The payload of the single gRPC message in `body`; 'several' / 'torn' when it is not exactly one. */
function oneMessage(body: Buffer): Buffer | 'several' | 'torn' | undefined {
  if (body.length === 0) return undefined;
  if (body.length < GRPC_MESSAGE_HEADER_BYTES) return 'torn';
  const end = GRPC_MESSAGE_HEADER_BYTES + body.readUInt32BE(1);
  if (body.length < end) return 'torn';
  if (body.length > end) return 'several';
  // A set compressed flag with identity encoding is read as is, as grpc-js does.
  return body.subarray(GRPC_MESSAGE_HEADER_BYTES, end);
}

function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(GRPC_MESSAGE_HEADER_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, GRPC_MESSAGE_HEADER_BYTES);
  return out;
}

/** grpc-js's mapping of a handler's error to a status (serverErrorToStatus). */
function errorToStatus(err: unknown, trailer?: grpc.Metadata): { code: grpc.status; details: string; metadata: grpc.Metadata | null } {
  const e = err as { message?: unknown; code?: unknown; details?: unknown; metadata?: grpc.Metadata };
  const status = {
    code: grpc.status.UNKNOWN,
    details: typeof e === 'object' && e !== null && 'message' in e ? String(e.message) : 'Unknown Error',
    metadata: trailer ?? e?.metadata ?? null,
  };
  if (typeof e?.code === 'number' && Number.isInteger(e.code)) {
    status.code = e.code;
    if (typeof e.details === 'string') status.details = e.details;
  }
  return status;
}
