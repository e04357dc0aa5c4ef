// A lean etcd v3 load generator on @grpc/grpc-js, modelled on etcd's tools/benchmark.
//
// Why not the etcd3 npm client: on a 2-core box every microsecond the client burns is
// taken from the server under test. This client pre-serializes requests where it can,
// never decodes unary responses it does not need, and records latencies into a flat
// Float64Array.
//
// Library use: `runWorkload(spec, options)`. CLI use (compiled):
//   node dist/bench/client.js --endpoints 127.0.0.1:2379 --conns 8 --clients 64 --total 20000 \
//        put --key-size 8 --val-size 256 --sequential-keys --key-space-size 20000
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEtcdProto, methodCodec, type LoadedProto, type MethodCodec } from './proto.js';
import { LatencyRecorder, emptySummary, formatSummary, type RunSummary } from './stats.js';
import {
  CallError,
  STATUS_CANCELLED,
  STATUS_OK,
  STATUS_UNIMPLEMENTED,
  TRANSPORT_KINDS,
  createChannel,
  statusName,
  unaryPromise,
  type BenchChannel,
  type BidiCall,
  type CallStatus,
  type TransportKind,
} from './transport.js';

// ------------------------------------------------------------------ connections

/** Accepts "host:port" or "http://host:port" and returns the gRPC target "host:port". */
export function toGrpcTarget(endpoint: string): string {
  const trimmed = endpoint.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (!/^[^:/\s]+:\d+$/.test(trimmed)) throw new Error(`endpoint must be host:port, got "${endpoint}"`);
  return trimmed;
}

let nextConnSerial = 0;

/** `conns` independent connections spread round-robin over the endpoints. */
export class ConnPool {
  readonly channels: BenchChannel[] = [];

  constructor(readonly endpoints: string[], conns: number, readonly transport: TransportKind = 'h2') {
    if (endpoints.length === 0) throw new Error('at least one endpoint is required');
    assertPositiveInt('conns', conns);
    for (let i = 0; i < conns; i++) {
      this.channels.push(createChannel(transport, toGrpcTarget(endpoints[i % endpoints.length]!), nextConnSerial++));
    }
  }

  /** The channel a given logical client uses (etcd: clients[i] = conns[i % conns]). */
  channelFor(clientIndex: number): BenchChannel {
    return this.channels[clientIndex % this.channels.length]!;
  }

  /** Connects every channel up front so that dialing is not part of the measurement. */
  async waitReady(timeoutMs: number): Promise<void> {
    await Promise.all(this.channels.map((ch) => ch.waitReady(timeoutMs)));
  }

  close(): void {
    for (const ch of this.channels) ch.close();
  }
}

/** One-off decoded unary call to `etcdserverpb.<service>/<method>` on a fresh connection. */
export async function callOnce(
  proto: LoadedProto,
  endpoint: string,
  service: string,
  method: string,
  request: object,
  timeoutMs: number,
  transport: TransportKind = 'h2',
): Promise<Record<string, unknown>> {
  const codec = methodCodec(proto, service, method);
  const pool = new ConnPool([endpoint], 1, transport);
  try {
    const raw = await unaryPromise(pool.channels[0]!, codec.path, codec.serialize(request), timeoutMs);
    return codec.deserialize(raw) as Record<string, unknown>;
  } finally {
    pool.close();
  }
}

function errorKind(err: unknown): string {
  if (err instanceof CallError) return `${statusName(err.code)}: ${err.details.slice(0, 120)}`;
  return err instanceof Error ? err.message.slice(0, 120) : String(err);
}

function statusKind(status: CallStatus): string {
  return `${statusName(status.code)}: ${status.details.slice(0, 120)}`;
}

// ------------------------------------------------------------------ workload specs

export interface LoadOptions {
  endpoints: string[];
  conns: number;
  /** Concurrent in-flight requests (or streams), spread round-robin over conns. */
  clients: number;
  /** Requests to issue (for watch: puts; results count delivered events). */
  total: number;
  /** Stop issuing new requests after this many seconds (0 = no cap). Keeps suites bounded. */
  maxSeconds?: number;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** 'h2' (default, leanest) or 'grpc-js'. */
  transport?: TransportKind;
}

export interface KeyOptions {
  keySizeBytes: number;
  valSizeBytes: number;
  /** Number of distinct keys; 1 (etcd's default) makes every request hit the same key. */
  keySpaceSize: number;
  /** Key i is (i mod keySpaceSize) instead of a random index. */
  sequentialKeys: boolean;
}

export type WorkloadSpec =
  | ({ kind: 'put' } & KeyOptions)
  | { kind: 'range'; key: string; rangeEnd?: string; consistency: 'l' | 's' }
  | ({ kind: 'txn-put'; txnOps: number } & KeyOptions)
  | {
      kind: 'watch';
      streams: number;
      watchersPerStream: number;
      key: string;
      valSizeBytes: number;
      /** Puts per second; 0 = one put at a time, back to back. */
      putRate: number;
    }
  | { kind: 'lease-keepalive'; ttlSeconds: number };

export const DEFAULT_KEY_OPTIONS: KeyOptions = {
  keySizeBytes: 8,
  valSizeBytes: 8,
  keySpaceSize: 1,
  sequentialKeys: false,
};

/**
 * Writes `value` as a Go-style zig-zag varint (binary.PutVarint) at the start of a
 * zero-filled key of `keySizeBytes`, which is how etcd's benchmark names its keys.
 */
export function benchKey(index: number, keySizeBytes: number): Buffer {
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`key index must be a safe integer >= 0, got ${index}`);
  const key = Buffer.alloc(keySizeBytes);
  let zigzag = index * 2; // zig-zag of a non-negative n is 2n
  let pos = 0;
  do {
    if (pos >= keySizeBytes) throw new Error(`key size ${keySizeBytes} too small for key index ${index}`);
    const low7 = zigzag % 128;
    zigzag = Math.floor(zigzag / 128);
    key[pos++] = zigzag > 0 ? low7 | 0x80 : low7;
  } while (zigzag > 0);
  return key;
}

function keyIndexFor(seq: number, k: KeyOptions): number {
  return k.sequentialKeys ? seq % k.keySpaceSize : crypto.randomInt(k.keySpaceSize);
}

function validateKeyOptions(k: KeyOptions): void {
  assertPositiveInt('key-size', k.keySizeBytes);
  if (!Number.isInteger(k.valSizeBytes) || k.valSizeBytes < 0) throw new Error('val-size must be an integer >= 0');
  assertPositiveInt('key-space-size', k.keySpaceSize);
  benchKey(k.keySpaceSize - 1, k.keySizeBytes); // throws early if the largest key does not fit
}

function assertPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
}

// ------------------------------------------------------------------ unary load loop

interface UnaryLoad {
  methodPath: string;
  /** Serialized request number `seq` (0-based). */
  makeRequest: (seq: number) => Buffer;
}

const WATCHDOG_PERIOD_MS = 500;
/** A server that fails this many requests in a row from the start is broken: stop hammering it. */
const GIVE_UP_AFTER_ERRORS = 200;

/**
 * Runs `total` requests with `clients` concurrent callers. Each caller issues its next
 * request as soon as the previous one completes (closed loop, like etcd's benchmark).
 * Stops early on UNIMPLEMENTED (feature missing: the run is reported "not-run").
 * Calls carry no per-call deadline (a timer per call costs client CPU); a watchdog
 * cancels any call outstanding for longer than requestTimeoutMs instead.
 */
async function runUnaryLoad(pool: ConnPool, load: UnaryLoad, opts: LoadOptions): Promise<RunSummary> {
  const rec = new LatencyRecorder(opts.total);
  const timeoutMs = opts.requestTimeoutMs ?? 30_000;
  const callers = Math.min(opts.clients, opts.total);
  const sentAtByCaller = new Float64Array(callers);
  const cancelByCaller: Array<(() => void) | undefined> = new Array(callers).fill(undefined);
  const timedOutByCaller = new Uint8Array(callers);
  let issued = 0;
  let unimplemented: string | undefined;
  let lastDone = 0;
  const start = performance.now();
  const stopIssuingAt = opts.maxSeconds ? start + opts.maxSeconds * 1000 : Infinity;

  const watchdog = setInterval(() => {
    const now = performance.now();
    for (let c = 0; c < callers; c++) {
      const cancel = cancelByCaller[c];
      if (cancel !== undefined && now - sentAtByCaller[c]! > timeoutMs) {
        timedOutByCaller[c] = 1;
        cancel();
      }
    }
  }, WATCHDOG_PERIOD_MS);

  try {
    await new Promise<void>((resolve) => {
      let activeCallers = callers;
      if (activeCallers === 0) resolve();
      const startCaller = (c: number): void => {
        const ch = pool.channelFor(c);
        const onDone = (status: CallStatus): void => {
          lastDone = performance.now();
          cancelByCaller[c] = undefined;
          if (status.code === STATUS_OK) {
            rec.recordMs(lastDone - sentAtByCaller[c]!);
          } else if (status.code === STATUS_CANCELLED && timedOutByCaller[c] === 1) {
            timedOutByCaller[c] = 0;
            rec.recordError(`DEADLINE_EXCEEDED: no response within ${timeoutMs} ms`);
          } else {
            if (status.code === STATUS_UNIMPLEMENTED) unimplemented = status.details || 'UNIMPLEMENTED';
            rec.recordError(statusKind(status));
          }
          issueNext();
        };
        const issueNext = (): void => {
          const hopeless = rec.successes === 0 && rec.errors >= GIVE_UP_AFTER_ERRORS;
          if (issued >= opts.total || unimplemented !== undefined || hopeless || performance.now() >= stopIssuingAt) {
            if (--activeCallers === 0) resolve();
            return;
          }
          const request = load.makeRequest(issued++);
          sentAtByCaller[c] = performance.now();
          cancelByCaller[c] = ch.unary(load.methodPath, request, onDone);
        };
        issueNext();
      };
      for (let c = 0; c < callers; c++) startCaller(c);
    });
  } finally {
    clearInterval(watchdog);
  }

  const seconds = Math.max(0, (lastDone || performance.now()) - start) / 1000;
  if (unimplemented !== undefined && rec.successes === 0) {
    return emptySummary('not-run', `server returned UNIMPLEMENTED: ${unimplemented}`);
  }
  if (rec.successes === 0 && rec.errors >= GIVE_UP_AFTER_ERRORS && issued < opts.total) {
    return rec.summarize(seconds, 'failed', `gave up after ${rec.errors} errors without a single success`);
  }
  const capped = issued < opts.total && unimplemented === undefined;
  return rec.summarize(seconds, undefined, capped ? `stopped at the ${opts.maxSeconds} s cap after ${issued} requests` : undefined);
}

function putLoad(proto: LoadedProto, k: KeyOptions): UnaryLoad {
  validateKeyOptions(k);
  const codec = methodCodec(proto, 'KV', 'Put');
  const value = crypto.randomBytes(k.valSizeBytes);
  return {
    methodPath: codec.path,
    makeRequest: (seq) => codec.serialize({ key: benchKey(keyIndexFor(seq, k), k.keySizeBytes), value }),
  };
}

function rangeLoad(proto: LoadedProto, spec: Extract<WorkloadSpec, { kind: 'range' }>): UnaryLoad {
  const codec = methodCodec(proto, 'KV', 'Range');
  const request: Record<string, unknown> = { key: Buffer.from(spec.key), serializable: spec.consistency === 's' };
  if (spec.rangeEnd !== undefined) request.range_end = Buffer.from(spec.rangeEnd);
  // Every request is identical, so serialize once.
  const bytes = codec.serialize(request);
  return { methodPath: codec.path, makeRequest: () => bytes };
}

function txnPutLoad(proto: LoadedProto, spec: Extract<WorkloadSpec, { kind: 'txn-put' }>): UnaryLoad {
  validateKeyOptions(spec);
  assertPositiveInt('txn-ops', spec.txnOps);
  if (spec.txnOps > spec.keySpaceSize) throw new Error('txn-ops must not exceed key-space-size (keys in one txn must differ)');
  const codec = methodCodec(proto, 'KV', 'Txn');
  const value = crypto.randomBytes(spec.valSizeBytes);
  return {
    methodPath: codec.path,
    makeRequest: (seq) => {
      // Consecutive indexes from one base: etcd rejects a txn that puts the same key twice.
      const base = keyIndexFor(seq * spec.txnOps, spec);
      const success = [];
      for (let op = 0; op < spec.txnOps; op++) {
        const index = (base + op) % spec.keySpaceSize;
        success.push({ request_put: { key: benchKey(index, spec.keySizeBytes), value } });
      }
      return codec.serialize({ success });
    },
  };
}

// ------------------------------------------------------------------ bidi stream helpers

/** Request/response ping-pong over one bidi stream (exactly one request outstanding). */
class StreamPinger {
  private pending: { resolve: (r: Buffer) => void; reject: (e: unknown) => void } | undefined;
  private failure: CallError | undefined;
  private readonly call: BidiCall;

  constructor(ch: BenchChannel, methodPath: string) {
    this.call = ch.bidi(methodPath, {
      onMessage: (message) => {
        const p = this.pending;
        this.pending = undefined;
        p?.resolve(message);
      },
      onClose: (status) => {
        this.failure ??= new CallError(status.code === STATUS_OK ? 2 : status.code, status.details || 'stream closed');
        const p = this.pending;
        this.pending = undefined;
        p?.reject(this.failure);
      },
    });
  }

  send(request: Buffer): Promise<Buffer> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pending !== undefined) throw new Error('StreamPinger: one request at a time');
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.call.write(request);
    });
  }

  close(): void {
    this.call.end();
    this.call.cancel();
  }
}

function withTimeout<T>(p: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new CallError(4, `no response within ${timeoutMs} ms`)), timeoutMs);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

// ------------------------------------------------------------------ lease keepalive

/**
 * `clients` callers each own one lease and one LeaseKeepAlive stream (on conn i % conns)
 * and send keepalives one at a time until `total` have been answered. Unlike etcd's tool
 * (KeepAliveOnce opens a stream per request) streams are long-lived, as real clients use them.
 */
async function runLeaseKeepAlive(
  proto: LoadedProto,
  pool: ConnPool,
  spec: Extract<WorkloadSpec, { kind: 'lease-keepalive' }>,
  opts: LoadOptions,
): Promise<RunSummary> {
  const timeoutMs = opts.requestTimeoutMs ?? 30_000;
  const grant = methodCodec(proto, 'Lease', 'LeaseGrant');
  const revoke = methodCodec(proto, 'Lease', 'LeaseRevoke');
  const keepAlive = methodCodec(proto, 'Lease', 'LeaseKeepAlive');
  const callers = Math.min(opts.clients, opts.total);

  const leaseIds: string[] = [];
  try {
    for (let c = 0; c < callers; c++) {
      const raw = await unaryPromise(pool.channelFor(c), grant.path, grant.serialize({ TTL: spec.ttlSeconds }), timeoutMs);
      const resp = grant.deserialize(raw) as { ID?: string; error?: string };
      if (resp.error) throw new Error(`LeaseGrant: ${resp.error}`);
      if (resp.ID === undefined || resp.ID === '0') throw new Error('LeaseGrant returned no lease ID');
      leaseIds.push(resp.ID);
    }
  } catch (err) {
    await revokeAll(pool, revoke, leaseIds, timeoutMs);
    if (err instanceof CallError && err.code === STATUS_UNIMPLEMENTED) {
      return emptySummary('not-run', `server returned UNIMPLEMENTED for LeaseGrant: ${err.details}`);
    }
    return emptySummary('failed', `LeaseGrant failed: ${errorKind(err)}`);
  }

  const rec = new LatencyRecorder(opts.total);
  const pingers = leaseIds.map((_, c) => new StreamPinger(pool.channelFor(c), keepAlive.path));
  const requests = leaseIds.map((id) => keepAlive.serialize({ ID: id }));
  let issued = 0;
  let unimplemented: string | undefined;
  const start = performance.now();
  const stopIssuingAt = opts.maxSeconds ? start + opts.maxSeconds * 1000 : Infinity;
  let lastDone = start;

  const caller = async (c: number): Promise<void> => {
    while (issued < opts.total && unimplemented === undefined && performance.now() < stopIssuingAt) {
      issued++;
      const sentAt = performance.now();
      try {
        const raw = await withTimeout(pingers[c]!.send(requests[c]!), timeoutMs);
        lastDone = performance.now();
        const resp = keepAlive.deserialize(raw) as { TTL?: string };
        if (Number(resp.TTL ?? 0) <= 0) rec.recordError('lease expired or not found (TTL <= 0)');
        else rec.recordMs(lastDone - sentAt);
      } catch (err) {
        lastDone = performance.now();
        if (err instanceof CallError && err.code === STATUS_UNIMPLEMENTED) unimplemented = err.details || 'UNIMPLEMENTED';
        rec.recordError(errorKind(err));
        return; // this caller's stream is dead
      }
    }
  };
  await Promise.all(leaseIds.map((_, c) => caller(c)));
  for (const p of pingers) p.close();
  await revokeAll(pool, revoke, leaseIds, timeoutMs);

  if (unimplemented !== undefined && rec.successes === 0) {
    return emptySummary('not-run', `server returned UNIMPLEMENTED for LeaseKeepAlive: ${unimplemented}`);
  }
  return rec.summarize((lastDone - start) / 1000, undefined, `${leaseIds.length} leases, one keepalive stream each`);
}

async function revokeAll(pool: ConnPool, revoke: MethodCodec, leaseIds: string[], timeoutMs: number): Promise<void> {
  // Best effort: leaving leases behind only costs the server some memory until their TTL ends.
  await Promise.allSettled(
    leaseIds.map((id, c) => unaryPromise(pool.channelFor(c), revoke.path, revoke.serialize({ ID: id }), timeoutMs)),
  );
}

// ------------------------------------------------------------------ watch fan-out

const SEQ_HEADER_BYTES = 8;

interface WatchEventView {
  kv?: { value?: Buffer };
}

/**
 * Watch fan-out: `streams` Watch streams (stream s on conn s % conns) each carry
 * `watchersPerStream` watchers on one key; then `total` puts are written to that key
 * (over a separate connection, one at a time or at putRate) and every watcher must
 * receive every put. Latency = put sent -> event received, per delivered event;
 * requests/s = delivered events per second. Each put's value starts with its sequence
 * number so events can be matched to their put.
 */
async function runWatchFanout(
  proto: LoadedProto,
  pool: ConnPool,
  spec: Extract<WorkloadSpec, { kind: 'watch' }>,
  opts: LoadOptions,
): Promise<RunSummary> {
  assertPositiveInt('streams', spec.streams);
  assertPositiveInt('watch-per-stream', spec.watchersPerStream);
  const timeoutMs = opts.requestTimeoutMs ?? 30_000;
  const watchCodec = methodCodec(proto, 'Watch', 'Watch');
  const putCodec = methodCodec(proto, 'KV', 'Put');
  const key = Buffer.from(spec.key);
  const watcherCount = spec.streams * spec.watchersPerStream;

  const rec = new LatencyRecorder(opts.total * watcherCount);
  const putSentAt = new Float64Array(opts.total);
  let delivered = 0;
  let lastEventAt = 0;
  let created = 0;
  let closing = false;
  let streamFailure: CallStatus | undefined;
  let onProgress: () => void = () => {};

  const onWatchMessage = (message: Buffer): void => {
    const now = performance.now();
    const resp = watchCodec.deserialize(message) as Record<string, unknown>;
    if (resp.created === true) created++;
    if (resp.canceled === true) streamFailure ??= { code: 2, details: `watch canceled: ${String(resp.cancel_reason ?? '')}` };
    for (const ev of (resp.events as WatchEventView[] | undefined) ?? []) {
      const value = ev.kv?.value;
      if (value === undefined || value.length < SEQ_HEADER_BYTES) continue;
      const seq = Number(value.readBigUInt64BE(0));
      if (seq < opts.total && putSentAt[seq]! > 0) {
        rec.recordMs(now - putSentAt[seq]!);
        delivered++;
        lastEventAt = now;
      }
    }
    onProgress();
  };
  const streams: BidiCall[] = [];
  for (let s = 0; s < spec.streams; s++) {
    streams.push(
      pool.channelFor(s).bidi(watchCodec.path, {
        onMessage: onWatchMessage,
        onClose: (status) => {
          if (!closing) streamFailure ??= status.code === STATUS_OK ? { code: 2, details: 'watch stream ended by server' } : status;
          onProgress();
        },
      }),
    );
  }

  const waitUntil = (done: () => boolean, limitMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), limitMs);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        onProgress = () => {};
        resolve(ok);
      };
      onProgress = () => {
        if (streamFailure !== undefined) finish(false);
        else if (done()) finish(true);
      };
      onProgress();
    });

  const closeAll = (): void => {
    closing = true;
    for (const st of streams) {
      st.end();
      st.cancel();
    }
  };

  const createStart = performance.now();
  const createRequest = watchCodec.serialize({ create_request: { key } });
  for (const st of streams) {
    for (let w = 0; w < spec.watchersPerStream; w++) st.write(createRequest);
  }
  const allCreated = await waitUntil(() => created >= watcherCount, timeoutMs);
  const createSeconds = (performance.now() - createStart) / 1000;
  if (!allCreated) {
    closeAll();
    const failure = streamFailure;
    if (failure?.code === STATUS_UNIMPLEMENTED) {
      return emptySummary('not-run', `server returned UNIMPLEMENTED for Watch: ${failure.details}`);
    }
    return emptySummary('failed', `only ${created}/${watcherCount} watchers created${failure ? `: ${statusKind(failure)}` : ''}`);
  }

  const putPool = new ConnPool([pool.endpoints[0]!], 1, pool.transport);
  const putStart = performance.now();
  const stopIssuingAt = opts.maxSeconds ? putStart + opts.maxSeconds * 1000 : Infinity;
  const intervalMs = spec.putRate > 0 ? 1000 / spec.putRate : 0;
  let putsDone = 0;
  let putErrors = 0;
  try {
    for (let seq = 0; seq < opts.total && performance.now() < stopIssuingAt && streamFailure === undefined; seq++) {
      if (intervalMs > 0) {
        const waitMs = putStart + seq * intervalMs - performance.now();
        if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      }
      const value = Buffer.alloc(Math.max(SEQ_HEADER_BYTES, spec.valSizeBytes));
      value.writeBigUInt64BE(BigInt(seq), 0);
      putSentAt[seq] = performance.now();
      try {
        await unaryPromise(putPool.channels[0]!, putCodec.path, putCodec.serialize({ key, value }), timeoutMs);
        putsDone++;
      } catch (err) {
        putErrors++;
        rec.recordError(`put: ${errorKind(err)}`);
      }
    }
    const expected = putsDone * watcherCount;
    await waitUntil(() => delivered >= expected, 10_000);
    const missing = Math.max(0, expected - delivered);
    for (let i = 0; i < missing; i++) rec.recordError('event not delivered within 10 s');
    if (streamFailure !== undefined) rec.recordError(`watch stream: ${statusKind(streamFailure)}`);
    const seconds = Math.max(0, (lastEventAt || performance.now()) - putStart) / 1000;
    return rec.summarize(
      seconds,
      undefined,
      `${watcherCount} watchers (${spec.streams} streams x ${spec.watchersPerStream}), ${putsDone} puts` +
        `${putErrors ? ` (${putErrors} failed)` : ''}, watchers created in ${createSeconds.toFixed(3)} s`,
    );
  } finally {
    putPool.close();
    closeAll();
  }
}

// ------------------------------------------------------------------ entry point

export function describeWorkload(spec: WorkloadSpec): string {
  switch (spec.kind) {
    case 'put':
      return `put key ${spec.keySizeBytes} B, value ${spec.valSizeBytes} B, keyspace ${spec.keySpaceSize}${spec.sequentialKeys ? ' sequential' : ''}`;
    case 'range':
      return `range ${spec.consistency === 'l' ? 'linearizable' : 'serializable'} key "${spec.key}"${spec.rangeEnd !== undefined ? ` .. "${spec.rangeEnd}"` : ''}`;
    case 'txn-put':
      return `txn-put ${spec.txnOps} op(s), key ${spec.keySizeBytes} B, value ${spec.valSizeBytes} B, keyspace ${spec.keySpaceSize}`;
    case 'watch':
      return `watch fan-out ${spec.streams}x${spec.watchersPerStream} watchers on "${spec.key}", put rate ${spec.putRate || 'unlimited'}`;
    case 'lease-keepalive':
      return `lease-keepalive TTL ${spec.ttlSeconds} s`;
  }
}

/**
 * Runs one workload with fresh connections (dialed before the clock starts) and returns
 * its summary. Never throws for server-side failures; those are reported in the summary.
 */
export async function runWorkload(spec: WorkloadSpec, opts: LoadOptions, proto: LoadedProto = loadEtcdProto()): Promise<RunSummary> {
  assertPositiveInt('clients', opts.clients);
  assertPositiveInt('total', opts.total);
  const pool = new ConnPool(opts.endpoints, opts.conns, opts.transport ?? 'h2');
  try {
    try {
      await pool.waitReady(opts.connectTimeoutMs ?? 10_000);
    } catch (err) {
      return emptySummary('failed', errorKind(err));
    }
    switch (spec.kind) {
      case 'put':
        return await runUnaryLoad(pool, putLoad(proto, spec), opts);
      case 'range':
        return await runUnaryLoad(pool, rangeLoad(proto, spec), opts);
      case 'txn-put':
        return await runUnaryLoad(pool, txnPutLoad(proto, spec), opts);
      case 'watch':
        return await runWatchFanout(proto, pool, spec, opts);
      case 'lease-keepalive':
        return await runLeaseKeepAlive(proto, pool, spec, opts);
    }
  } finally {
    pool.close();
  }
}

// ------------------------------------------------------------------ CLI

export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Parses `--name value`, `--name=value` and bare boolean `--name` (when followed by another flag or nothing). */
export function parseArgs(argv: string[], booleanFlags: ReadonlySet<string> = new Set()): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const body = arg.slice(2);
    const eq = body.indexOf('=');
    if (eq >= 0) {
      flags.set(body.slice(0, eq), body.slice(eq + 1));
    } else if (booleanFlags.has(body) || i + 1 >= argv.length || argv[i + 1]!.startsWith('--')) {
      flags.set(body, true);
    } else {
      flags.set(body, argv[++i]!);
    }
  }
  return { positional, flags };
}

export function flagInt(args: ParsedArgs, name: string, fallback: number): number {
  const v = args.flags.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v === true || !Number.isFinite(n)) throw new Error(`--${name} needs a number`);
  return n;
}

export function flagString(args: ParsedArgs, name: string, fallback: string): string {
  const v = args.flags.get(name);
  if (v === undefined) return fallback;
  if (v === true) throw new Error(`--${name} needs a value`);
  return v;
}

export function flagBool(args: ParsedArgs, name: string): boolean {
  const v = args.flags.get(name);
  return v === true || v === 'true' || v === '1';
}

const CLIENT_BOOLEAN_FLAGS = new Set(['sequential-keys', 'json', 'help']);

const CLIENT_USAGE = `usage: node dist/bench/client.js [global flags] <workload> [workload args/flags]
global:   --endpoints h:p[,h:p]  --conns N (1)  --clients N (1)  --total N (10000)  --max-seconds S (0)  --transport h2|grpc-js (h2)  --json
put:      --key-size 8 --val-size 8 --key-space-size 1 --sequential-keys
range:    range <key> [end] --consistency l|s
txn-put:  --txn-ops 1 --key-size 8 --val-size 8 --key-space-size 1 --sequential-keys
watch:    --streams 10 --watch-per-stream 100 --key watch-key --val-size 32 --put-rate 0 (total = puts)
lease-keepalive: --ttl 60`;

export function specFromArgs(args: ParsedArgs): WorkloadSpec {
  const [kind, ...rest] = args.positional;
  const keyOpts = (): KeyOptions => ({
    keySizeBytes: flagInt(args, 'key-size', DEFAULT_KEY_OPTIONS.keySizeBytes),
    valSizeBytes: flagInt(args, 'val-size', DEFAULT_KEY_OPTIONS.valSizeBytes),
    keySpaceSize: flagInt(args, 'key-space-size', DEFAULT_KEY_OPTIONS.keySpaceSize),
    sequentialKeys: flagBool(args, 'sequential-keys'),
  });
  switch (kind) {
    case 'put':
      return { kind: 'put', ...keyOpts() };
    case 'txn-put':
      return { kind: 'txn-put', txnOps: flagInt(args, 'txn-ops', 1), ...keyOpts() };
    case 'range': {
      if (rest[0] === undefined) throw new Error('range needs a key');
      const consistency = flagString(args, 'consistency', 'l');
      if (consistency !== 'l' && consistency !== 's') throw new Error('--consistency must be l or s');
      const spec: WorkloadSpec = { kind: 'range', key: rest[0], consistency };
      if (rest[1] !== undefined) spec.rangeEnd = rest[1];
      return spec;
    }
    case 'watch':
      return {
        kind: 'watch',
        streams: flagInt(args, 'streams', 10),
        watchersPerStream: flagInt(args, 'watch-per-stream', 100),
        key: flagString(args, 'key', 'watch-key'),
        valSizeBytes: flagInt(args, 'val-size', 32),
        putRate: flagInt(args, 'put-rate', 0),
      };
    case 'lease-keepalive':
      return { kind: 'lease-keepalive', ttlSeconds: flagInt(args, 'ttl', 60) };
    default:
      throw new Error(`unknown workload "${kind ?? ''}"\n${CLIENT_USAGE}`);
  }
}

export function parseTransport(value: string): TransportKind {
  const kind = TRANSPORT_KINDS.find((k) => k === value);
  if (kind === undefined) throw new Error(`--transport must be one of ${TRANSPORT_KINDS.join(', ')}, got "${value}"`);
  return kind;
}

async function clientMain(argv: string[]): Promise<number> {
  const args = parseArgs(argv, CLIENT_BOOLEAN_FLAGS);
  if (flagBool(args, 'help') || args.positional.length === 0) {
    console.log(CLIENT_USAGE);
    return args.positional.length === 0 && !flagBool(args, 'help') ? 2 : 0;
  }
  const spec = specFromArgs(args);
  const opts: LoadOptions = {
    endpoints: flagString(args, 'endpoints', '127.0.0.1:2379').split(',').filter((e) => e.length > 0),
    conns: flagInt(args, 'conns', 1),
    clients: flagInt(args, 'clients', 1),
    total: flagInt(args, 'total', 10_000),
    maxSeconds: flagInt(args, 'max-seconds', 0),
    transport: parseTransport(flagString(args, 'transport', 'h2')),
  };
  const proto = loadEtcdProto();
  const cpuBefore = process.cpuUsage();
  const summary = await runWorkload(spec, opts, proto);
  const cpu = process.cpuUsage(cpuBefore);
  if (flagBool(args, 'json')) {
    console.log(JSON.stringify({ spec, options: opts, summary, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 }, null, 2));
  } else {
    console.log(formatSummary(`${describeWorkload(spec)} (conns ${opts.conns}, clients ${opts.clients})`, summary));
    console.log(`  client CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`);
  }
  return summary.status === 'failed' ? 1 : 0;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  clientMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    },
  );
}
