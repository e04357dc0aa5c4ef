import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { big, bytes, num, toLong, type Msg } from '../server/pb.js';

// An in-process gRPC channel over this member's own service implementations, so that
// server-side recipes (election, lock) and the JSON gateway reach KV/Lease/Watch exactly
// as a remote client does: the same handlers, validation, metadata (auth token) and
// errors. Requests and responses cross the boundary encoded and decoded with the
// methods' own codecs, so handlers see what a network call gives them (incl. `$raw`).
// etcd does the same with its in-process v3client.

/** A gRPC status as a client sees it. */
export interface RpcStatusError extends Error {
  code: grpc.status;
  details: string;
}

export function rpcStatus(code: grpc.status, details: string): RpcStatusError {
  const e = new Error(details) as RpcStatusError;
  e.code = code;
  e.details = details;
  return e;
}

/** What grpc-js sends for an error a handler returns (its serverErrorToStatus rule). */
function statusOf(err: unknown): RpcStatusError {
  const e = err as Partial<RpcStatusError> & { message?: string };
  const code = typeof e?.code === 'number' && Number.isInteger(e.code) ? e.code : grpc.status.UNKNOWN;
  const details = typeof e?.details === 'string' ? e.details : (e?.message ?? String(err));
  return rpcStatus(code, details);
}

export interface CallOptions {
  metadata?: grpc.Metadata;
  /** Aborting cancels the call, as a client cancelling its context. */
  signal?: AbortSignal;
  /** The caller's address and TLS identity, so the auth layer sees the original client. */
  peer?: string;
  authContext?: object;
}

/** Receives a stream's responses. */
export interface StreamObserver {
  /** One response; `ack` must be called when the consumer can take the next (flow control). */
  message(msg: Msg, ack: () => void): void;
  /** Called exactly once: null for an OK status. */
  end(err: RpcStatusError | null): void;
}

interface Method {
  def: grpc.MethodDefinition<Msg, Msg>;
  handler: grpc.UntypedHandleCall;
}

function roundTripRequest(def: grpc.MethodDefinition<Msg, Msg>, req: Msg): Msg {
  return def.requestDeserialize(def.requestSerialize(req));
}

function roundTripResponse(def: grpc.MethodDefinition<Msg, Msg>, res: Msg): Msg {
  return def.responseDeserialize(def.responseSerialize(res));
}

/** The surface grpc-js gives a handler besides the stream itself. */
function surface(path: string, opts: CallOptions) {
  const peer = opts.peer ?? 'in-process';
  const authContext = opts.authContext ?? {};
  return {
    getPeer: () => peer,
    sendMetadata: (_md: grpc.Metadata) => {},
    getDeadline: () => Infinity,
    getPath: () => path,
    getHost: () => 'localhost',
    getAuthContext: () => authContext,
    getMetricsRecorder: () => ({}),
  };
}

class LocalUnaryCall extends EventEmitter {
  cancelled = false;
  constructor(readonly metadata: grpc.Metadata, readonly request: Msg, path: string, opts: CallOptions) {
    super();
    Object.assign(this, surface(path, opts));
  }
}

/** The handler's side of a streaming call: a grpc-js-like object-mode Duplex. */
class LocalServerStream extends Duplex {
  cancelled = false;
  request: Msg = undefined;
  private reported = false;
  private pendingError: unknown = null;

  constructor(
    readonly metadata: grpc.Metadata,
    private readonly def: grpc.MethodDefinition<Msg, Msg>,
    private readonly observer: StreamObserver,
    path: string,
    opts: CallOptions,
  ) {
    super({ objectMode: true });
    Object.assign(this, surface(path, opts));
    // grpc-js: an 'error' a handler emits becomes the call's status.
    this.on('error', (err) => {
      if (this.reported) return;
      this.pendingError = err;
      if (this.destroyed || this.writableEnded) this.report(err);
      else this.end();
    });
  }

  get finished(): boolean {
    return this.reported;
  }

  override _read(): void {}

  override _write(chunk: Msg, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.reported) {
      cb();
      return;
    }
    let msg: Msg;
    try {
      msg = roundTripResponse(this.def, chunk);
    } catch (e) {
      cb(e as Error);
      return;
    }
    let acked = false;
    this.observer.message(msg, () => {
      if (acked) return;
      acked = true;
      cb();
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
    this.report(this.pendingError);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.report(err ?? (this.cancelled ? rpcStatus(grpc.status.CANCELLED, 'context canceled') : null));
    cb(err);
  }

  report(err: unknown): void {
    if (this.reported) return;
    this.reported = true;
    this.observer.end(err ? statusOf(err) : null);
  }
}

/** The client's side of a streaming call. */
export class LocalStream {
  private halfClosed = false;

  constructor(
    private readonly server: LocalServerStream,
    private readonly def: grpc.MethodDefinition<Msg, Msg>,
  ) {}

  get finished(): boolean {
    return this.server.finished;
  }

  write(req: Msg): void {
    if (this.halfClosed || this.server.finished) return;
    this.server.push(roundTripRequest(this.def, req));
  }

  /** Half-close: the handler sees 'end'. */
  end(): void {
    if (this.halfClosed || this.server.finished) return;
    this.halfClosed = true;
    this.server.push(null);
  }

  /** As grpc-js does when the client cancels: 'cancelled', then destroy. */
  cancel(): void {
    if (this.server.finished) return;
    this.server.cancelled = true;
    this.server.emit('cancelled', 'cancelled');
    this.server.destroy();
  }
}

export class InProcessChannel {
  private readonly methods = new Map<string, Method>();

  addService(def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
    for (const [name, m] of Object.entries(def)) {
      const handler = impl[name] ?? (m.originalName ? impl[m.originalName] : undefined);
      if (!handler) throw new Error(`in-process channel: no handler for ${m.path}`);
      this.methods.set(m.path, { def: m as grpc.MethodDefinition<Msg, Msg>, handler });
    }
  }

  /** The method at a full path ("/etcdserverpb.KV/Range"), if this member serves it. */
  method(path: string): grpc.MethodDefinition<Msg, Msg> | undefined {
    return this.methods.get(path)?.def;
  }

  private resolve(path: string): Method {
    const m = this.methods.get(path);
    if (!m) {
      // grpc-go's answer for a service the server does not register (etcd's gateway shows it).
      const service = path.split('/')[1] ?? path;
      throw rpcStatus(grpc.status.UNIMPLEMENTED, `unknown service ${service}`);
    }
    return m;
  }

  unary(path: string, request: Msg, opts: CallOptions = {}): Promise<Msg> {
    let m: Method;
    let req: Msg;
    try {
      m = this.resolve(path);
      req = roundTripRequest(m.def, request);
    } catch (e) {
      return Promise.reject(statusOf(e));
    }
    const call = new LocalUnaryCall(opts.metadata ?? new grpc.Metadata(), req, path, opts);
    return new Promise<Msg>((resolve, reject) => {
      let done = false;
      const onAbort = () => {
        if (done) return;
        done = true;
        call.cancelled = true;
        call.emit('cancelled', 'cancelled');
        reject(rpcStatus(grpc.status.CANCELLED, 'context canceled'));
      };
      const callback = (err: unknown, value?: Msg) => {
        if (done) return;
        done = true;
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) return reject(statusOf(err));
        try {
          resolve(roundTripResponse(m.def, value));
        } catch (e) {
          reject(rpcStatus(grpc.status.INTERNAL, `grpc: error while marshaling: ${(e as Error).message}`));
        }
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        (m.handler as grpc.handleUnaryCall<Msg, Msg>)(call as unknown as grpc.ServerUnaryCall<Msg, Msg>, callback);
      } catch (e) {
        callback(rpcStatus(grpc.status.UNKNOWN, `Server method handler threw error ${(e as Error).message}`));
      }
    });
  }

  /**
   * Opens a server-streaming call (pass `request`) or a bidirectional one (write to the
   * returned stream). Errors before the call starts are reported through `observer.end`.
   */
  stream(path: string, observer: StreamObserver, opts: CallOptions = {}, request?: Msg): LocalStream {
    let m: Method;
    try {
      m = this.resolve(path);
    } catch (e) {
      const dead = new LocalServerStream(new grpc.Metadata(), {} as grpc.MethodDefinition<Msg, Msg>, observer, path, opts);
      dead.report(e);
      return new LocalStream(dead, {} as grpc.MethodDefinition<Msg, Msg>);
    }
    if (!m.def.responseStream) throw new Error(`${path} is not a streaming method`);
    const server = new LocalServerStream(opts.metadata ?? new grpc.Metadata(), m.def, observer, path, opts);
    const client = new LocalStream(server, m.def);
    try {
      if (!m.def.requestStream) server.request = roundTripRequest(m.def, request ?? {});
    } catch (e) {
      server.report(rpcStatus(grpc.status.INTERNAL, `grpc: error unmarshalling request: ${(e as Error).message}`));
      return client;
    }
    if (opts.signal) {
      if (opts.signal.aborted) {
        client.cancel();
        return client;
      }
      const onAbort = () => client.cancel();
      opts.signal.addEventListener('abort', onAbort, { once: true });
      server.once('close', () => opts.signal!.removeEventListener('abort', onAbort));
    }
    try {
      (m.handler as (call: unknown) => void)(server);
    } catch (e) {
      server.report(rpcStatus(grpc.status.UNKNOWN, `Server method handler threw error ${(e as Error).message}`));
    }
    return client;
  }
}

// ---------------------------------------------------------------- a small KV/Lease/Watch client

const KV = '/etcdserverpb.KV/';
const LEASE = '/etcdserverpb.Lease/';
const WATCH_PATH = '/etcdserverpb.Watch/Watch';

/** mvccpb.Event.EventType.DELETE */
export const EVENT_DELETE = 1;
/** Compare.CompareTarget / CompareResult / RangeRequest sort values used by the recipes. */
export const CMP_CREATE = 1;
export const CMP_EQUAL = 0;
const SORT_ASCEND = 1;
const SORT_DESCEND = 2;
const SORT_BY_CREATE = 2;

/** etcd's prefix range end: the prefix with its last non-0xff byte incremented ("\0" = all keys). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** A RangeRequest for the key under `prefix` created first (clientv3 WithFirstCreate). */
export function firstCreatedRequest(prefix: Buffer): Msg {
  return { key: prefix, range_end: prefixEnd(prefix), sort_order: SORT_ASCEND, sort_target: SORT_BY_CREATE, limit: 1 };
}

/** A watch's responses, read one at a time; null once the watch ended or was cancelled. */
export class WatchCursor {
  private readonly queue: Msg[] = [];
  private waiter: ((m: Msg | null) => void) | null = null;
  private ended = false;
  endError: RpcStatusError | null = null;
  private readonly stream: LocalStream;

  constructor(channel: InProcessChannel, create: Msg, opts: CallOptions) {
    this.stream = channel.stream(WATCH_PATH, {
      message: (msg, ack) => {
        ack();
        this.offer(msg);
      },
      end: (err) => {
        this.endError = err;
        this.ended = true;
        this.offer(null);
      },
    }, opts);
    this.stream.write({ create_request: create });
  }

  private offer(msg: Msg | null): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(msg);
    } else if (msg) this.queue.push(msg);
  }

  next(): Promise<Msg | null> {
    const head = this.queue.shift();
    if (head) return Promise.resolve(head);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  close(): void {
    this.stream.cancel();
  }
}

/** How a cancelled watch explains itself to a clientv3 user (WatchResponse.Err). */
export function watchCancelError(resp: Msg): Error {
  if (num(resp.compact_revision) !== 0) return new Error('etcdserver: mvcc: required revision has been compacted');
  if (resp.cancel_reason) return new Error(String(resp.cancel_reason));
  return new Error('etcdserver: mvcc: required revision is a future revision');
}

/**
 * The KV/Lease/Watch calls the concurrency recipes need, bound to one caller's context
 * (metadata, cancellation). Messages are etcdserverpb objects (snake_case fields).
 * Cancellation only interrupts waiting (watches): a write that was started runs to its
 * end, so a recipe that gives up always knows whether its key exists and can remove it.
 */
export class LocalClient {
  constructor(
    readonly channel: InProcessChannel,
    readonly opts: CallOptions = {},
  ) {}

  /** The same caller without cancellation: clean-up after a cancelled wait must still run. */
  detached(): LocalClient {
    return new LocalClient(this.channel, this.unaryOpts);
  }

  private get unaryOpts(): CallOptions {
    return { ...this.opts, signal: undefined };
  }

  private throwIfCancelled(): void {
    if (this.opts.signal?.aborted) throw rpcStatus(grpc.status.CANCELLED, 'context canceled');
  }

  txn(req: Msg): Promise<Msg> {
    return this.channel.unary(`${KV}Txn`, req, this.unaryOpts);
  }

  range(req: Msg): Promise<Msg> {
    return this.channel.unary(`${KV}Range`, req, this.unaryOpts);
  }

  deleteRange(req: Msg): Promise<Msg> {
    return this.channel.unary(`${KV}DeleteRange`, req, this.unaryOpts);
  }

  async leaseGrant(ttlSec: number): Promise<bigint> {
    const res = await this.channel.unary(`${LEASE}LeaseGrant`, { TTL: ttlSec, ID: 0 }, this.unaryOpts);
    return big(res.ID);
  }

  watch(create: Msg): WatchCursor {
    return new WatchCursor(this.channel, create, this.opts);
  }

  /** The key under `prefix` created first (clientv3 WithFirstCreate). */
  firstCreated(prefix: Buffer): Promise<Msg> {
    return this.range(firstCreatedRequest(prefix));
  }

  /** Waits for a DELETE of `key` at or after `revision`. */
  async waitDelete(key: Buffer, revision: number): Promise<void> {
    const cursor = this.watch({ key, start_revision: revision });
    try {
      for (;;) {
        const resp = await cursor.next();
        if (!resp) break;
        if (((resp.events ?? []) as Msg[]).some((ev) => (ev.type ?? 0) === EVENT_DELETE)) return;
        if (resp.canceled) throw watchCancelError(resp);
      }
    } finally {
      cursor.close();
    }
    this.throwIfCancelled();
    if (cursor.endError) throw cursor.endError;
    throw new Error('lost watcher waiting for delete');
  }

  /**
   * Waits until no key under `prefix` with a create revision <= maxCreateRev is left,
   * watching the newest such key each time; resolves with the last range's header.
   */
  async waitDeletes(prefix: Buffer, maxCreateRev: number): Promise<Msg> {
    for (;;) {
      this.throwIfCancelled();
      const resp = await this.range({
        key: prefix, range_end: prefixEnd(prefix), sort_order: SORT_DESCEND, sort_target: SORT_BY_CREATE, limit: 1,
        max_create_revision: maxCreateRev,
      });
      const kvs = (resp.kvs ?? []) as Msg[];
      if (kvs.length === 0) return resp.header;
      await this.waitDelete(bytes(kvs[0].key), num(resp.header.revision));
    }
  }
}

/** A lease ID as a LeaderKey/put field. */
export function leaseField(id: bigint): Msg {
  return toLong(id, false);
}
