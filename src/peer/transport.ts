import http from 'node:http';
import type net from 'node:net';
import type { Readable } from 'node:stream';
import { encodeMessageBatch, decodeMessage } from '../raft/codec.js';
import { MessageType, type Message, type NodeId } from '../raft/types.js';
import type { Transport } from '../server/transport.js';
import type { Logger } from '../log/logger.js';
import { idToHex } from '../server/ids.js';
import { peerRequest, peerRequestTarget, type TlsSide } from '../api/tls-config.js';

// Raft messages between members, over HTTP/1.1 on the peer port. Each peer has one sender:
// messages queue (bounded) while a POST is in flight, and the next POST carries all of
// them, so a busy leader sends one batch per follower per round trip. Every request names
// the cluster and the sender; the receiver refuses other clusters.

/** Messages queued for one peer before we drop and let Raft retransmit. */
const MAX_QUEUED_MESSAGES_PER_PEER = 8192;
/** Connecting a stream that takes longer than this counts as a failure. */
const CONNECT_TIMEOUT_MS = 3000;
/** Bytes written to a peer's stream but not yet taken by the kernel; beyond it we drop. */
const MAX_UNSENT_BYTES_PER_PEER = 64 * 1024 * 1024;
/** Largest single Raft message accepted from a stream. */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
export const STREAM_PROTOCOL = 'tsetcd-raft/1';
/** Back off this long after a failed send before trying the peer again. */
const RETRY_BACKOFF_MS = 100;
const MAX_RETRY_BACKOFF_MS = 1000;

export const HEADER_CLUSTER_ID = 'x-etcd-cluster-id';
export const HEADER_FROM = 'x-server-from';
export const HEADER_TO = 'x-server-to';
export const HEADER_VERSION = 'x-server-version';

const NO_BYTES = Buffer.alloc(0);

export interface PeerTransportOptions {
  localId: NodeId;
  clusterId: () => bigint;
  etcdVersion: string;
  logger: Logger;
  /** Called when a send to a peer fails (Raft: reportUnreachable / reportSnapshot). */
  onUnreachable: (id: NodeId) => void;
  onSnapshotStatus: (id: NodeId, ok: boolean) => void;
  onSent?: (id: NodeId, bytes: number) => void;
  /** Time to establish a stream (connect + upgrade): a round-trip sample. */
  onRoundTrip?: (id: NodeId, seconds: number) => void;
  onSendFailure?: (id: NodeId) => void;
  /** The state machine image that goes with a snapshot message (the backend's contents). */
  snapshotSource?: () => Readable;
  /** Peer TLS (our client certificate, the CA peers must chain to) for https peer URLs. */
  tls?: TlsSide;
}

/**
 * One outbound stream per peer: an HTTP/1.1 upgrade on the peer port turns a connection
 * into a raw byte stream of length-prefixed Raft messages (like etcd's stream transport).
 * The messages of one send() call are written with one socket write. While the
 * stream is (re)connecting, messages queue up to a bound and are then dropped: Raft
 * retransmits what matters.
 */
class PeerSender {
  private queue: Message[] = [];
  private socket?: net.Socket;
  private connecting = false;
  private urlIndex = 0;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;
  private backoffMs = 0;
  activeSinceMs?: number;
  private lastErrorLogMs = 0;

  constructor(
    readonly id: NodeId,
    public urls: string[],
    private readonly t: PeerTransport,
  ) {}

  enqueue(m: Message): void {
    if (m.type === MessageType.Snap) {
      this.sendSnapshot(m);
      return;
    }
    if (this.queue.length >= MAX_QUEUED_MESSAGES_PER_PEER) {
      this.dropped(m);
      return;
    }
    this.queue.push(m);
    if (!this.socket) this.connect(); // flushed once the stream is up
  }

  private dropped(m: Message): void {
    // Bounded: drop; Raft notices the missing acks and probes or retransmits.
    this.t.opts.onUnreachable(this.id);
    if (m.type === MessageType.Snap) this.t.opts.onSnapshotStatus(this.id, false);
  }

  /** Writes everything queued in one socket write (if the stream is up). */
  flush(): void {
    const sock = this.socket;
    if (!sock || this.queue.length === 0) return;
    if (sock.writableLength > MAX_UNSENT_BYTES_PER_PEER) {
      // The peer does not keep up (or the network stalls): drop instead of buffering without bound.
      for (const m of this.queue) this.dropped(m);
      this.queue = [];
      return;
    }
    const batch = this.queue;
    this.queue = [];
    const body = encodeMessageBatch(batch);
    sock.write(body);
    this.t.opts.onSent?.(this.id, body.length);
    for (const m of batch) if (m.type === MessageType.Snap) this.t.opts.onSnapshotStatus(this.id, true);
  }

  private snapshotInFlight = false;

  /**
   * A snapshot goes on its own request, streamed: [u32 length][raft message][backend image].
   * One at a time per peer; Raft is told the outcome so it can retry or resume appends.
   */
  private sendSnapshot(m: Message): void {
    const source = this.t.opts.snapshotSource;
    if (this.snapshotInFlight || !source || this.urls.length === 0 || this.stopped) {
      this.t.opts.onSnapshotStatus(this.id, false);
      return;
    }
    this.snapshotInFlight = true;
    const url = new URL('/raft/snapshot', this.urls[this.urlIndex % this.urls.length]);
    const started = Date.now();
    const head = encodeMessageBatch([m]);
    let sentBytes = head.length;
    const done = (ok: boolean, why?: string) => {
      if (!this.snapshotInFlight) return;
      this.snapshotInFlight = false;
      const log = this.t.opts.logger;
      if (ok) log.info('sent database snapshot to peer', { 'peer-id': idToHex(this.id), 'snapshot-index': m.snapshot?.meta.index, bytes: sentBytes, took: `${Date.now() - started}ms` });
      else log.warn('failed to send database snapshot to peer', { 'peer-id': idToHex(this.id), error: why });
      this.t.opts.onSnapshotStatus(this.id, ok);
    };
    const req = http.request({
      ...peerRequestTarget(url, this.t.opts.tls, CONNECT_TIMEOUT_MS),
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        [HEADER_CLUSTER_ID]: idToHex(this.t.opts.clusterId()),
        [HEADER_FROM]: idToHex(this.t.opts.localId),
        [HEADER_TO]: idToHex(this.id),
        [HEADER_VERSION]: this.t.opts.etcdVersion,
      },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(res.statusCode === 204, `peer answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`));
    });
    req.on('error', (e) => done(false, e.message));
    req.write(head);
    const body = source();
    body.on('data', (c: Buffer) => (sentBytes += c.length));
    body.on('error', (e) => {
      req.destroy(e);
      done(false, `reading the local database: ${e.message}`);
    });
    body.pipe(req);
  }

  connect(): void {
    if (this.stopped || this.connecting || this.socket || this.retryTimer || this.urls.length === 0) return;
    this.connecting = true;
    const url = new URL('/raft/stream', this.urls[this.urlIndex % this.urls.length]);
    const started = performance.now();
    const req = http.request({
      ...peerRequestTarget(url, this.t.opts.tls, CONNECT_TIMEOUT_MS),
      method: 'GET',
      timeout: CONNECT_TIMEOUT_MS,
      headers: {
        connection: 'Upgrade',
        upgrade: STREAM_PROTOCOL,
        [HEADER_CLUSTER_ID]: idToHex(this.t.opts.clusterId()),
        [HEADER_FROM]: idToHex(this.t.opts.localId),
        [HEADER_TO]: idToHex(this.id),
        [HEADER_VERSION]: this.t.opts.etcdVersion,
      },
    });
    req.on('upgrade', (_res, socket, head) => {
      this.connecting = false;
      if (this.stopped) {
        socket.destroy();
        return;
      }
      socket.setNoDelay(true);
      socket.setTimeout(0);
      if (head.length > 0) socket.unshift(head);
      socket.on('data', () => {}); // the peer never writes on our outbound stream
      socket.on('error', (e) => this.failed(e.message));
      socket.on('close', () => this.failed('stream closed by peer'));
      this.socket = socket;
      this.activeSinceMs = Date.now();
      this.backoffMs = 0;
      this.t.opts.onRoundTrip?.(this.id, (performance.now() - started) / 1000);
      this.t.opts.logger.info('peer stream established', { 'peer-id': idToHex(this.id), url: url.origin });
      this.flush();
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => this.failed(`peer answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 400)}`, true));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${CONNECT_TIMEOUT_MS}ms`)));
    req.on('error', (e) => this.failed(e.message));
    req.end();
  }

  private failed(why: string, refused = false): void {
    const hadSocket = this.socket !== undefined;
    if (!hadSocket && !this.connecting) return;
    this.socket?.destroy();
    this.socket = undefined;
    this.connecting = false;
    const wasActive = this.activeSinceMs !== undefined;
    this.activeSinceMs = undefined;
    if (this.stopped) return;
    this.urlIndex++;
    const now = Date.now();
    if (wasActive || now - this.lastErrorLogMs > 10_000) {
      this.lastErrorLogMs = now;
      const log = this.t.opts.logger;
      (refused ? log.error : log.warn).call(log, 'lost the raft stream to peer', { 'peer-id': idToHex(this.id), urls: this.urls, error: why });
    }
    this.t.opts.onSendFailure?.(this.id);
    for (const m of this.queue) this.dropped(m);
    this.queue = [];
    this.t.opts.onUnreachable(this.id);
    // Back off (up to MAX_RETRY_BACKOFF_MS) while the peer stays unreachable.
    this.backoffMs = Math.min(this.backoffMs === 0 ? RETRY_BACKOFF_MS : this.backoffMs * 2, MAX_RETRY_BACKOFF_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, this.backoffMs);
    this.retryTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.queue = [];
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.socket?.destroy();
    this.socket = undefined;
  }
}

/** Splits an inbound stream into Raft messages; one call per chunk returns every complete message. */
export class StreamDecoder {
  private pending: Buffer = NO_BYTES;

  push(chunk: Buffer): Message[] {
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Message[] = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (len > MAX_MESSAGE_BYTES) throw new Error(`raft message of ${len} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
      if (buf.length - at - 4 < len) break;
      out.push(decodeMessage(buf.subarray(at + 4, at + 4 + len)));
      at += 4 + len;
    }
    this.pending = at === buf.length ? NO_BYTES : Buffer.from(buf.subarray(at));
    return out;
  }
}

export class PeerTransport implements Transport {
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private readonly peers = new Map<NodeId, PeerSender>();
  /** When we last received a message from each peer. */
  private readonly receivedSinceMs = new Map<NodeId, number>();

  constructor(readonly opts: PeerTransportOptions) {}

  send(messages: Message[]): void {
    for (const m of messages) {
      const p = this.peers.get(m.to);
      if (p) p.enqueue(m);
    }
    for (const p of this.peers.values()) p.flush(); // one write per peer; a no-op for the others
  }

  addPeer(id: NodeId, peerUrls: string[]): void {
    if (id === this.opts.localId) return;
    const existing = this.peers.get(id);
    if (existing) {
      existing.urls = [...peerUrls];
      return;
    }
    // Keep a stream to every peer, not only to those we have messages for: a follower must
    // know its peers are reachable (member add's health check, endpoint status) like etcd.
    const sender = new PeerSender(id, [...peerUrls], this);
    this.peers.set(id, sender);
    sender.connect();
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.stop();
    this.peers.delete(id);
    this.receivedSinceMs.delete(id);
  }

  updatePeer(id: NodeId, peerUrls: string[]): void {
    this.addPeer(id, peerUrls);
  }

  /** Called by the peer HTTP handler for every accepted batch. */
  noteReceived(from: NodeId): void {
    if (!this.receivedSinceMs.has(from)) this.receivedSinceMs.set(from, Date.now());
  }

  activeSince(id: NodeId): number | undefined {
    return this.peers.get(id)?.activeSinceMs;
  }

  /**
   * Asks the leader (a lease question only it can answer: keep-alive, remaining TTL).
   * Fails fast so the caller's own timeout and retry apply.
   */
  async askLeader<T>(leaderUrls: string[], path: string, body: unknown, timeoutMs = 3000): Promise<T> {
    let last: Error | undefined;
    for (const base of leaderUrls) {
      try {
        const res = await peerRequest(new URL(path, base), this.opts.tls, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [HEADER_CLUSTER_ID]: idToHex(this.opts.clusterId()), [HEADER_FROM]: idToHex(this.opts.localId) },
          body: JSON.stringify(body),
          timeoutMs,
        });
        if (res.status < 200 || res.status > 299) throw new Error(`leader answered ${res.status}`);
        return JSON.parse(res.body) as T;
      } catch (e) {
        last = e as Error;
      }
    }
    throw last ?? new Error('no leader URL');
  }

  peerIds(): NodeId[] {
    return [...this.peers.keys()];
  }

  async stop(): Promise<void> {
    for (const p of this.peers.values()) p.stop();
    this.agent.destroy();
  }
}
