import http from 'node:http';
import { encodeMessage, decodeMessage } from '../raft/codec.js';
import { MessageType, type Message, type NodeId } from '../raft/types.js';
import type { Transport } from '../server/transport.js';
import type { Logger } from '../log/logger.js';
import { idToHex } from '../server/ids.js';

// Raft messages between members, over HTTP/1.1 on the peer port. Each peer has one sender:
// messages queue (bounded) while a POST is in flight, and the next POST carries all of
// them, so a busy leader sends one batch per follower per round trip. Every request names
// the cluster and the sender; the receiver refuses other clusters.

/** Messages queued for one peer before we drop and let Raft retransmit. */
const MAX_QUEUED_MESSAGES_PER_PEER = 8192;
/** A POST that takes longer than this counts as a failed send. */
const SEND_TIMEOUT_MS = 5000;
/** Back off this long after a failed send before trying the peer again. */
const RETRY_BACKOFF_MS = 100;

export const HEADER_CLUSTER_ID = 'x-etcd-cluster-id';
export const HEADER_FROM = 'x-server-from';
export const HEADER_TO = 'x-server-to';
export const HEADER_VERSION = 'x-server-version';

export function encodeBatch(msgs: Message[]): Buffer {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const m of msgs) {
    const enc = encodeMessage(m);
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(enc.length);
    parts.push(len, enc);
    total += 4 + enc.length;
  }
  return Buffer.concat(parts, total);
}

export function decodeBatch(buf: Buffer): Message[] {
  const out: Message[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 4 > buf.length) throw new Error(`truncated raft message batch at byte ${at}`);
    const len = buf.readUInt32BE(at);
    at += 4;
    if (at + len > buf.length) throw new Error(`truncated raft message at byte ${at} (length ${len})`);
    out.push(decodeMessage(buf.subarray(at, at + len)));
    at += len;
  }
  return out;
}

export interface PeerTransportOptions {
  localId: NodeId;
  clusterId: () => bigint;
  etcdVersion: string;
  logger: Logger;
  /** Called when a send to a peer fails (Raft: reportUnreachable / reportSnapshot). */
  onUnreachable: (id: NodeId) => void;
  onSnapshotStatus: (id: NodeId, ok: boolean) => void;
  onSent?: (id: NodeId, bytes: number, rttSeconds: number) => void;
  onSendFailure?: (id: NodeId) => void;
}

class PeerSender {
  private queue: Message[] = [];
  private inFlight = false;
  private urlIndex = 0;
  private stopped = false;
  activeSinceMs?: number;
  private lastErrorLogMs = 0;

  constructor(
    readonly id: NodeId,
    public urls: string[],
    private readonly t: PeerTransport,
  ) {}

  enqueue(m: Message): void {
    if (this.queue.length >= MAX_QUEUED_MESSAGES_PER_PEER) {
      // Bounded: drop; Raft notices the missing acks and retransmits or probes.
      this.t.opts.onUnreachable(this.id);
      if (m.type === MessageType.Snap) this.t.opts.onSnapshotStatus(this.id, false);
      return;
    }
    this.queue.push(m);
    if (!this.inFlight) this.flush();
  }

  private flush(): void {
    if (this.stopped || this.inFlight || this.queue.length === 0 || this.urls.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.inFlight = true;
    const body = encodeBatch(batch);
    const url = new URL('/raft', this.urls[this.urlIndex % this.urls.length]);
    const started = performance.now();
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: this.t.agent,
        timeout: SEND_TIMEOUT_MS,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': body.length,
          [HEADER_CLUSTER_ID]: idToHex(this.t.opts.clusterId()),
          [HEADER_FROM]: idToHex(this.t.opts.localId),
          [HEADER_TO]: idToHex(this.id),
          [HEADER_VERSION]: this.t.opts.etcdVersion,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 204 || res.statusCode === 200) {
            if (this.activeSinceMs === undefined) {
              this.activeSinceMs = Date.now();
              this.t.opts.logger.info('peer became active', { 'peer-id': idToHex(this.id), url: url.origin });
            }
            this.t.opts.onSent?.(this.id, body.length, (performance.now() - started) / 1000);
            for (const m of batch) if (m.type === MessageType.Snap) this.t.opts.onSnapshotStatus(this.id, true);
            this.done();
          } else {
            this.failed(batch, `peer answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`, true);
          }
        });
        res.on('error', (e) => this.failed(batch, e.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${SEND_TIMEOUT_MS}ms`)));
    req.on('error', (e) => this.failed(batch, e.message));
    req.end(body);
  }

  private done(): void {
    this.inFlight = false;
    this.flush();
  }

  private failed(batch: Message[], why: string, refused = false): void {
    if (!this.inFlight) return;
    const wasActive = this.activeSinceMs !== undefined;
    this.activeSinceMs = undefined;
    this.urlIndex++;
    const now = Date.now();
    if (wasActive || now - this.lastErrorLogMs > 10_000) {
      this.lastErrorLogMs = now;
      (refused ? this.t.opts.logger.error : this.t.opts.logger.warn).call(this.t.opts.logger, 'failed to send raft messages to peer', {
        'peer-id': idToHex(this.id), urls: this.urls, error: why,
      });
    }
    this.t.opts.onSendFailure?.(this.id);
    this.t.opts.onUnreachable(this.id);
    for (const m of batch) if (m.type === MessageType.Snap) this.t.opts.onSnapshotStatus(this.id, false);
    setTimeout(() => this.done(), RETRY_BACKOFF_MS).unref();
  }

  stop(): void {
    this.stopped = true;
    this.queue = [];
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
  }

  addPeer(id: NodeId, peerUrls: string[]): void {
    if (id === this.opts.localId) return;
    const existing = this.peers.get(id);
    if (existing) existing.urls = [...peerUrls];
    else this.peers.set(id, new PeerSender(id, [...peerUrls], this));
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

  peerIds(): NodeId[] {
    return [...this.peers.keys()];
  }

  async stop(): Promise<void> {
    for (const p of this.peers.values()) p.stop();
    this.agent.destroy();
  }
}
