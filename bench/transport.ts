// Two interchangeable gRPC transports for the bench client.
//
// - 'grpc-js': @grpc/grpc-js channels (the reference gRPC stack for Node).
// - 'h2': gRPC framing hand-written on node:http2. Measured on the 2-core box against
//   etcd 3.4 (put 8 B/256 B, 8 conns x 64 clients): grpc-js burns ~230 us of client CPU
//   per request, raw http2 ~85 us, so with grpc-js the client - not the server - is the
//   bottleneck. 'h2' is therefore the default; 'grpc-js' stays available as a cross-check.
//
// Both move raw protobuf bytes; (de)serialization is the caller's business, so a request
// that never changes (a Range of one key) is encoded once for the whole run.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';

export type TransportKind = 'h2' | 'grpc-js';

export const TRANSPORT_KINDS: readonly TransportKind[] = ['h2', 'grpc-js'];

/** gRPC status of a finished call; code 0 (OK) means success. */
export interface CallStatus {
  code: number;
  details: string;
}

export const STATUS_OK = 0;
export const STATUS_CANCELLED = 1;
export const STATUS_UNKNOWN = 2;
export const STATUS_UNIMPLEMENTED = 12;
export const STATUS_UNAVAILABLE = 14;

/** Error carrying a gRPC status, thrown by the promise helpers. */
export class CallError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(`${statusName(code)}: ${details}`);
  }
}

export function statusName(code: number): string {
  return grpc.status[code] ?? `STATUS_${code}`;
}

/** Called exactly once per unary call; `response` is set only when status.code is OK. */
export type UnaryCallback = (status: CallStatus, response: Buffer | undefined) => void;

export interface BidiHandlers {
  onMessage(message: Buffer): void;
  /** Called exactly once when the stream is over (OK, error, or cancelled by us). */
  onClose(status: CallStatus): void;
}

export interface BidiCall {
  write(message: Buffer): void;
  /** Half-closes our side; the server may still send. */
  end(): void;
  cancel(): void;
}

/** One client connection (one HTTP/2 session / one grpc-js subchannel). */
export interface BenchChannel {
  readonly target: string;
  /** Starts a unary call; returns a function that cancels it. */
  unary(methodPath: string, request: Buffer, done: UnaryCallback): () => void;
  bidi(methodPath: string, handlers: BidiHandlers): BidiCall;
  waitReady(timeoutMs: number): Promise<void>;
  close(): void;
}

export function createChannel(kind: TransportKind, target: string, connSerial: number): BenchChannel {
  return kind === 'h2' ? new H2Channel(target) : new GrpcJsChannel(target, connSerial);
}

/** Promise form of a unary call. */
export function unaryPromise(ch: BenchChannel, methodPath: string, request: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => cancel(), timeoutMs);
    const cancel = ch.unary(methodPath, request, (status, response) => {
      clearTimeout(timer);
      if (status.code === STATUS_OK) resolve(response!);
      else if (status.code === STATUS_CANCELLED) reject(new CallError(4, `no response within ${timeoutMs} ms`));
      else reject(new CallError(status.code, status.details));
    });
  });
}

// ------------------------------------------------------------------ gRPC message framing

/** 1 byte "compressed" flag + 4 byte big-endian length, then the protobuf message. */
export function frameMessage(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

/**
 * Incremental parser for length-prefixed gRPC messages arriving in arbitrary chunks.
 * We never advertise compression, so a compressed message is a protocol violation.
 */
export class MessageDeframer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes needed before the next message is complete (5 until its header is known). */
  private neededBytes = 5;

  constructor(private readonly onMessage: (message: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (this.pendingBytes === 0 && chunk.length >= 5) {
      // Fast path: the whole message (usually) arrives in one chunk.
      const len = chunk.readUInt32BE(1);
      if (chunk[0] === 0 && chunk.length === 5 + len) {
        this.onMessage(chunk.subarray(5));
        return;
      }
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Concatenate only once enough bytes are buffered, so a large message arriving in many
    // small chunks costs linear, not quadratic, copying.
    if (this.pendingBytes >= this.neededBytes) this.drain();
  }

  private drain(): void {
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.neededBytes = 5;
    while (buf.length >= 5) {
      if (buf[0] !== 0) throw new Error('compressed gRPC message received but compression was not negotiated');
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) {
        this.neededBytes = 5 + len;
        break;
      }
      this.onMessage(buf.subarray(5, 5 + len));
      buf = buf.subarray(5 + len);
    }
    this.pending = buf.length > 0 ? [buf] : [];
    this.pendingBytes = buf.length;
  }
}

function decodeGrpcMessage(raw: unknown): string {
  if (typeof raw !== 'string') return '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

// ------------------------------------------------------------------ raw node:http2 transport

const INITIAL_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * gRPC over a single node:http2 client session. If the session dies it is re-dialed on
 * the next call, so one broken connection shows up as errors rather than a hang.
 */
class H2Channel implements BenchChannel {
  private session: http2.ClientHttp2Session | undefined;
  private readonly host: string;
  private readonly port: number;
  private closed = false;

  constructor(readonly target: string) {
    const colon = target.lastIndexOf(':');
    this.host = target.slice(0, colon);
    this.port = Number(target.slice(colon + 1));
    if (!(this.port > 0 && this.port < 65536)) throw new Error(`bad target ${target}`);
  }

  private liveSession(): http2.ClientHttp2Session {
    if (this.closed) throw new Error('channel closed');
    const s = this.session;
    if (s !== undefined && !s.closed && !s.destroyed) return s;
    const session = http2.connect(`http://${this.target}`, {
      // Nagle + delayed ACK turns a 0.4 ms request into 40+ ms; grpc-js also disables it.
      createConnection: () => net.connect({ host: this.host, port: this.port, noDelay: true }),
      settings: { initialWindowSize: INITIAL_WINDOW_BYTES, enablePush: false },
      maxSessionMemory: 64,
    });
    session.on('error', () => {
      // Surfaces per stream as well; nothing to do here but keep it from being fatal.
    });
    session.on('connect', () => session.setLocalWindowSize(INITIAL_WINDOW_BYTES));
    this.session = session;
    return session;
  }

  waitReady(timeoutMs: number): Promise<void> {
    const session = this.liveSession();
    if (session.connecting === false) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`connect to ${this.target} timed out`)), timeoutMs);
      const onConnect = (): void => finish(undefined);
      const onError = (err: Error): void => finish(err);
      const finish = (err: Error | undefined): void => {
        clearTimeout(timer);
        session.off('connect', onConnect);
        session.off('error', onError);
        if (err) reject(new Error(`connect to ${this.target}: ${err.message}`));
        else resolve();
      };
      session.once('connect', onConnect);
      session.once('error', onError);
    });
  }

  private open(methodPath: string): http2.ClientHttp2Stream {
    return this.liveSession().request(
      {
        ':method': 'POST',
        ':path': methodPath,
        'content-type': 'application/grpc',
        te: 'trailers',
      },
      { endStream: false },
    );
  }

  unary(methodPath: string, request: Buffer, done: UnaryCallback): () => void {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.open(methodPath);
    } catch (err) {
      queueMicrotask(() => done({ code: STATUS_UNAVAILABLE, details: errMessage(err) }, undefined));
      return () => {};
    }
    let response: Buffer | undefined;
    let status: CallStatus | undefined;
    let cancelled = false;
    const deframer = new MessageDeframer((m) => {
      response = m;
    });
    const takeStatus = (headers: http2.IncomingHttpHeaders): void => {
      const code = headers['grpc-status'];
      if (code !== undefined) status = { code: Number(code), details: decodeGrpcMessage(headers['grpc-message']) };
    };
    stream.on('response', (headers) => {
      takeStatus(headers); // "trailers-only" responses put the status in the headers
      const httpStatus = headers[':status'];
      if (httpStatus !== 200 && status === undefined) {
        status = { code: STATUS_UNKNOWN, details: `HTTP status ${String(httpStatus)}` };
      }
    });
    stream.on('trailers', takeStatus);
    stream.on('data', (chunk: Buffer) => {
      try {
        deframer.push(chunk);
      } catch (err) {
        status = { code: STATUS_UNKNOWN, details: errMessage(err) };
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
    stream.on('error', (err: Error) => {
      status ??= { code: STATUS_UNAVAILABLE, details: err.message };
    });
    stream.on('close', () => {
      if (cancelled) {
        done({ code: STATUS_CANCELLED, details: 'cancelled by client' }, undefined);
      } else if (status === undefined) {
        done({ code: STATUS_UNAVAILABLE, details: `stream closed without gRPC status (rst code ${stream.rstCode})` }, undefined);
      } else if (status.code === STATUS_OK && response === undefined) {
        done({ code: STATUS_UNKNOWN, details: 'OK status but no response message' }, undefined);
      } else {
        done(status, status.code === STATUS_OK ? response : undefined);
      }
    });
    stream.end(frameMessage(request));
    return () => {
      if (stream.closed) return;
      cancelled = true;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    };
  }

  bidi(methodPath: string, handlers: BidiHandlers): BidiCall {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.open(methodPath);
    } catch (err) {
      queueMicrotask(() => handlers.onClose({ code: STATUS_UNAVAILABLE, details: errMessage(err) }));
      return { write: () => {}, end: () => {}, cancel: () => {} };
    }
    let status: CallStatus | undefined;
    let cancelled = false;
    const deframer = new MessageDeframer((m) => handlers.onMessage(m));
    const takeStatus = (headers: http2.IncomingHttpHeaders): void => {
      const code = headers['grpc-status'];
      if (code !== undefined) status = { code: Number(code), details: decodeGrpcMessage(headers['grpc-message']) };
    };
    stream.on('response', takeStatus);
    stream.on('trailers', takeStatus);
    stream.on('data', (chunk: Buffer) => {
      try {
        deframer.push(chunk);
      } catch (err) {
        status = { code: STATUS_UNKNOWN, details: errMessage(err) };
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
    stream.on('error', (err: Error) => {
      status ??= { code: STATUS_UNAVAILABLE, details: err.message };
    });
    stream.on('close', () => {
      if (cancelled) handlers.onClose({ code: STATUS_CANCELLED, details: 'cancelled by client' });
      else handlers.onClose(status ?? { code: STATUS_UNAVAILABLE, details: `stream closed without gRPC status (rst code ${stream.rstCode})` });
    });
    return {
      write: (message) => {
        if (!stream.closed && !stream.writableEnded) stream.write(frameMessage(message));
      },
      end: () => {
        if (!stream.closed && !stream.writableEnded) stream.end();
      },
      cancel: () => {
        if (stream.closed) return;
        cancelled = true;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  }

  close(): void {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    if (s !== undefined && !s.destroyed) s.destroy();
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ------------------------------------------------------------------ @grpc/grpc-js transport

const identity = (b: Buffer): Buffer => b;

class GrpcJsChannel implements BenchChannel {
  private readonly client: grpc.Client;

  constructor(readonly target: string, connSerial: number) {
    // grpc-js shares one subchannel (one TCP connection) between channels with equal target
    // and options; a local subchannel pool plus a unique option value forces a real
    // connection per channel, which is what --conns means in etcd's benchmark.
    this.client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'tsetcd.bench_conn_serial': connSerial,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
    });
  }

  waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) =>
        err ? reject(new Error(`connect to ${this.target}: ${err.message}`)) : resolve(),
      );
    });
  }

  unary(methodPath: string, request: Buffer, done: UnaryCallback): () => void {
    // No per-call deadline: grpc-js arms a timer per call for it. Stuck calls are
    // cancelled by the load loop's watchdog instead.
    const call = this.client.makeUnaryRequest(methodPath, identity, identity, request, (err, resp) => {
      if (err) done({ code: err.code, details: err.details ?? err.message }, undefined);
      else done({ code: STATUS_OK, details: '' }, resp);
    });
    return () => call.cancel();
  }

  bidi(methodPath: string, handlers: BidiHandlers): BidiCall {
    const call = this.client.makeBidiStreamRequest(methodPath, identity, identity);
    let closed = false;
    const closeOnce = (status: CallStatus): void => {
      if (closed) return;
      closed = true;
      handlers.onClose(status);
    };
    call.on('data', (m: Buffer) => handlers.onMessage(m));
    call.on('error', (err: grpc.ServiceError) => closeOnce({ code: err.code, details: err.details ?? err.message }));
    call.on('status', (st: grpc.StatusObject) => closeOnce({ code: st.code, details: st.details }));
    return {
      write: (message) => {
        if (!closed) call.write(message);
      },
      end: () => {
        if (!closed) call.end();
      },
      cancel: () => call.cancel(),
    };
  }

  close(): void {
    this.client.close();
  }
}
