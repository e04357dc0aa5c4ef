// Pending ReadIndex requests on the leader, confirmed by a round of heartbeat acknowledgements.
import type { Message, NodeId } from './types.js';
import { bytesToHex } from './util.js';

export interface ReadIndexStatus {
  /** The request as received (from = requester, or NONE/self for a local request). */
  req: Message;
  /** Leader's commit index when the request arrived. */
  index: number;
  acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  private readonly pending = new Map<string, ReadIndexStatus>();
  /** Request keys in arrival order; an ack for one request confirms every earlier one too. */
  private queue: string[] = [];

  addRequest(index: number, m: Message): void {
    const key = bytesToHex(m.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req: m, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Record that `id` acknowledged the heartbeat carrying `ctx`; returns the ack set, if the request is known. */
  recvAck(id: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(bytesToHex(ctx));
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Dequeue the request carrying `ctx` and every request queued before it. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = bytesToHex(ctx);
    const pos = this.queue.indexOf(key);
    if (pos < 0) return [];
    const done = this.queue.slice(0, pos + 1);
    this.queue = this.queue.slice(pos + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      if (rs) out.push(rs);
      this.pending.delete(k);
    }
    return out;
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1]!)?.req.context;
  }

  size(): number {
    return this.queue.length;
  }
}
