import * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/server.js';
import protobuf from 'protobufjs';
import { bytes, num, type, type Msg } from '../server/pb.js';
import { kvToPb } from '../server/convert.js';
import { Errors } from '../server/errors.js';
import { NONE } from '../raft/types.js';
import type { MvccEvent } from '../mvcc/types.js';
import { WatchHub, type Watcher, type WatchSink, type WatchSpec } from '../watch/hub.js';
import { serviceDefinition, grpcError } from './grpc.js';
import type { AuthGate } from '../auth/gate.js';
import { toRpcError } from './errors.js';
import { ResponseBatcher } from './response-batcher.js';

// Watch service: one bidirectional stream carries any number of watchers. The stream is
// the watchers' sink; when too much is buffered for a slow reader, the stream reports
// congestion and the hub stops pushing to its watchers until the stream drains.

/** Bytes of responses buffered per stream before its watchers are paused. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** The same bound where responses go through grpc-js one by one (see ResponseBatcher). */
const MAX_BUFFERED_RESPONSES = 1024;
const COMPACTED_REASON = 'etcdserver: mvcc: required revision has been compacted';
/** etcd's WatchProgressRequest answer carries this watch ID. */
const PROGRESS_WATCH_ID = -1;
/** Bytes of events per response when the client allows fragmentation. */
const FILTER_NOPUT = 0;
const FILTER_NODELETE = 1;

/** `withPrevKv`: the watcher asked for previous values (events may carry them regardless). */
function eventToPb(ev: MvccEvent, withPrevKv: boolean): Msg {
  return withPrevKv && ev.prevKv ? { type: ev.type, kv: kvToPb(ev.kv), prev_kv: kvToPb(ev.prevKv) } : { type: ev.type, kv: kvToPb(ev.kv) };
}

function eventBytes(ev: MvccEvent, withPrevKv: boolean): number {
  return ev.kv.key.length + ev.kv.value.length + (withPrevKv && ev.prevKv ? ev.prevKv.key.length + ev.prevKv.value.length : 0) + 64;
}

const EventType = type('mvccpb.Event');
const WatchResponseType = type('etcdserverpb.WatchResponse');
const HeaderType = type('etcdserverpb.ResponseHeader');
/** Encoded events, shared by every watcher that receives the same applied event. */
const encodedEvents = new WeakMap<MvccEvent, Uint8Array>();
const encodedEventsNoPrev = new WeakMap<MvccEvent, Uint8Array>();
let headerCache: { revision: number; term: number; bytes: Uint8Array } | undefined;

function encodedEvent(ev: MvccEvent, withPrevKv: boolean): Uint8Array {
  const cache = withPrevKv && ev.prevKv ? encodedEvents : encodedEventsNoPrev;
  let b = cache.get(ev);
  if (!b) {
    b = EventType.encode(eventToPb(ev, withPrevKv)).finish();
    cache.set(ev, b);
  }
  return b;
}

/**
 * WatchResponse{header, watch_id, events} encoded by hand from cached pieces: with
 * thousands of watchers on a key, each event and header is encoded once, not per watcher.
 * (Field numbers: header 1, watch_id 2, events 11.)
 */
function encodeWatchEvents(server: EtcdServer, revision: number, watchId: number, events: MvccEvent[], withPrevKv: boolean): Buffer {
  const term = server.term;
  if (!headerCache || headerCache.revision !== revision || headerCache.term !== term) {
    headerCache = { revision, term, bytes: HeaderType.encode(server.stateMachine.header(revision)).finish() };
  }
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 2).bytes(headerCache.bytes);
  if (watchId !== 0) w.uint32(2 << 3).int64(watchId);
  for (const ev of events) w.uint32((11 << 3) | 2).bytes(encodedEvent(ev, withPrevKv));
  return bytes(w.finish());
}

class WatchStream implements WatchSink {
  private readonly watchers = new Map<number, Watcher>();
  private readonly fragmenting = new Set<number>();
  private nextId = 0;
  private progressPending = false;
  private closed = false;
  /** Requests waiting behind an asynchronous permission check, answered in arrival order. */
  private queued = 0;
  private queue: Promise<void> = Promise.resolve();
  private readonly out: ResponseBatcher;

  constructor(
    private readonly call: grpc.ServerDuplexStream<Msg, Msg>,
    private readonly hub: WatchHub,
    private readonly server: EtcdServer,
    private readonly maxResponseBytes: number,
    private readonly auth: AuthGate,
    countSentBytes: (bytes: number) => void,
  ) {
    call.on('data', (req: Msg) => this.onData(req));
    call.on('end', () => this.close(true));
    call.on('cancelled', () => this.close(false));
    call.on('error', () => this.close(false));
    this.out = new ResponseBatcher(call, { congestedBytes: MAX_BUFFERED_BYTES, congestedResponses: MAX_BUFFERED_RESPONSES, countSentBytes });
    this.out.onDrain(() => hub.resume(this));
  }

  private header(revision = this.hub.currentRevision): Msg {
    return this.server.stateMachine.header(revision);
  }

  private send(resp: Msg | Buffer): boolean {
    if (this.closed) return false;
    this.out.write(Buffer.isBuffer(resp) ? resp : bytes(WatchResponseType.encode(resp).finish()));
    return !this.congested();
  }

  congested(): boolean {
    return this.out.congested();
  }

  /** With auth enabled, creates are checked first (asynchronously); later requests wait their turn. */
  private onData(req: Msg): void {
    if (!this.auth.enabled && this.queued === 0) {
      this.onRequest(req);
      return;
    }
    this.queued++;
    this.queue = this.queue.then(async () => {
      try {
        if (req.create_request && !(await this.permitted(req.create_request))) return;
        this.onRequest(req);
      } finally {
        this.queued--;
      }
    });
  }

  /** etcd refuses a watch it may not serve with a created+canceled response carrying the error. */
  private async permitted(c: Msg): Promise<boolean> {
    try {
      await this.auth.check(this.call, { op: 'watch', key: bytes(c.key), rangeEnd: bytes(c.range_end) });
      return true;
    } catch (e) {
      const { code, message } = toRpcError(e);
      const codeName = (grpc.status[code] ?? 'UNKNOWN').toLowerCase().replace(/(^|_)([a-z])/g, (_m, _u: string, ch: string) => ch.toUpperCase());
      this.send({
        header: this.header(), watch_id: -1, created: true, canceled: true, cancel_reason: `rpc error: code = ${codeName} desc = ${message}`,
      });
      return false;
    }
  }

  private onRequest(req: Msg): void {
    try {
      if (req.create_request) this.create(req.create_request);
      else if (req.cancel_request) this.cancel(num(req.cancel_request.watch_id));
      else if (req.progress_request) this.requestProgress();
    } catch (e) {
      this.out.flush();
      this.call.destroy(grpcError(e));
    }
  }

  private create(c: Msg): void {
    const filters = (c.filters ?? []) as number[];
    const spec: WatchSpec = {
      key: bytes(c.key),
      rangeEnd: bytes(c.range_end),
      startRevision: num(c.start_revision),
      noPut: filters.includes(FILTER_NOPUT),
      noDelete: filters.includes(FILTER_NODELETE),
      prevKv: !!c.prev_kv,
      progressNotify: !!c.progress_notify,
    };
    let id = num(c.watch_id);
    if (id !== 0) {
      if (this.watchers.has(id)) {
        this.send({ header: this.header(), watch_id: id, created: true, canceled: true, cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream' });
        return;
      }
    } else {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    }
    // "created" goes out before any event of this watcher.
    this.send({ header: this.header(), watch_id: id, created: true });
    if (c.fragment) this.fragmenting.add(id);
    const w = this.hub.add(id, spec, this);
    if (!w.cancelled) this.watchers.set(id, w);
  }

  private cancel(id: number): void {
    const w = this.watchers.get(id);
    if (!w) return;
    this.hub.remove(w);
    this.watchers.delete(id);
    this.fragmenting.delete(id);
    this.send({ header: this.header(), watch_id: id, canceled: true });
  }

  private requestProgress(): void {
    if (this.hub.allSynced(this)) this.send({ header: this.header(), watch_id: PROGRESS_WATCH_ID });
    else this.progressPending = true; // answered once every watcher has caught up
  }

  // ---------------------------------------------------------------- WatchSink

  events(w: Watcher, revision: number, events: MvccEvent[]): boolean {
    const withPrevKv = w.spec.prevKv;
    if (this.fragmenting.has(w.id)) {
      let total = 0;
      for (const ev of events) total += eventBytes(ev, withPrevKv);
      if (total > this.maxResponseBytes) return this.sendFragments(w, revision, events);
    }
    return this.send(encodeWatchEvents(this.server, revision, w.id, events, withPrevKv));
  }

  private sendFragments(w: Watcher, revision: number, events: MvccEvent[]): boolean {
    let chunk: Msg[] = [];
    let size = 0;
    let ok = true;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      chunk.push(eventToPb(ev, w.spec.prevKv));
      size += eventBytes(ev, w.spec.prevKv);
      const last = i === events.length - 1;
      if (last || size >= this.maxResponseBytes) {
        ok = this.send({ header: this.header(revision), watch_id: w.id, events: chunk, fragment: !last });
        chunk = [];
        size = 0;
      }
    }
    return ok;
  }

  compacted(w: Watcher, compactRevision: number): void {
    this.watchers.delete(w.id);
    this.send({ header: this.header(), watch_id: w.id, canceled: true, compact_revision: compactRevision, cancel_reason: COMPACTED_REASON });
  }

  progress(w: Watcher, revision: number): void {
    this.send({ header: this.header(revision), watch_id: w.id });
  }

  synced(): void {
    if (this.progressPending) {
      this.progressPending = false;
      this.send({ header: this.header(), watch_id: PROGRESS_WATCH_ID });
    }
  }

  close(endStream: boolean): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers.values()) this.hub.remove(w);
    this.watchers.clear();
    activeStreams.delete(this);
    this.out.flush();
    if (endStream) this.call.end();
  }

  failNoLeader(): void {
    const err = grpcError(Errors.noLeader());
    this.close(false);
    this.call.destroy(err);
  }

  get requiresLeader(): boolean {
    return this.call.metadata.get('hasleader')[0] === 'true';
  }
}

const activeStreams = new Set<WatchStream>();

/** `countSentBytes`: the client byte counter of the other services (services.ts), for batched responses. */
export function watchService(
  server: EtcdServer, hub: WatchHub, progressIntervalMs: number, auth: AuthGate, countSentBytes: (bytes: number) => void,
): { def: grpc.ServiceDefinition; impl: grpc.UntypedServiceImplementation; stop: () => void } {
  const m = server.metrics;
  const svc = 'etcdserverpb.Watch';
  const labels = { grpc_type: 'bidi_stream', grpc_service: svc, grpc_method: 'Watch' };

  const watch: grpc.handleBidiStreamingCall<Msg, Msg> = (call) => {
    m.grpcStarted.inc(labels);
    const stream = new WatchStream(call, hub, server, server.cfg.maxRequestBytes, auth, countSentBytes);
    if (stream.requiresLeader && server.leader === NONE) {
      stream.failNoLeader();
      return;
    }
    activeStreams.add(stream);
  };

  // Progress notifications and the "hasleader" contract: streams that require a leader are
  // cancelled with "etcdserver: no leader" once the member has had none for 3 election timeouts.
  const tickMs = Math.max(100, Math.min(1000, progressIntervalMs));
  const timer = setInterval(() => {
    hub.notifyProgress(progressIntervalMs);
    const leaderless = server.leader === NONE && Date.now() - server.leaderSinceMs > 3 * server.cfg.electionTimeoutMs;
    if (leaderless) for (const s of [...activeStreams]) if (s.requiresLeader) s.failNoLeader();
  }, tickMs);
  timer.unref();

  return {
    def: serviceDefinition(svc),
    impl: { Watch: watch },
    stop: () => {
      clearInterval(timer);
      for (const s of [...activeStreams]) s.close(true);
    },
  };
}
