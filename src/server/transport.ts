import type { Message, NodeId } from '../raft/types.js';

/**
 * How the ready loop hands Raft messages to other members. The peer layer (src/peer)
 * implements it over HTTP on the peer port; a single-member cluster never sends anything.
 * Implementations must never block and must bound what they queue per peer (drop and let
 * Raft retransmit rather than grow without limit).
 */
export interface Transport {
  /**
   * Puts the messages on the wire before returning (one write per peer for the whole call;
   * queued only for a peer whose stream is reconnecting). The ready loop relies on it: a
   * leader sends right before a WAL write that may block the thread (a synchronous
   * fdatasync), so that followers persist in parallel with it, not after it.
   */
  send(messages: Message[]): void;
  addPeer(id: NodeId, peerUrls: string[]): void;
  removePeer(id: NodeId): void;
  updatePeer(id: NodeId, peerUrls: string[]): void;
  /** When this member last heard from a peer (ms since epoch), for health/reconfig checks. */
  activeSince(id: NodeId): number | undefined;
  stop(): Promise<void>;
}

export class NoopTransport implements Transport {
  send(messages: Message[]): void {
    if (messages.length > 0) {
      // A single-member cluster has nobody to talk to; Raft only addresses known peers.
      throw new Error(`no transport for ${messages.length} raft messages (to ${messages[0]!.to.toString(16)})`);
    }
  }
  addPeer(): void {}
  removePeer(): void {}
  updatePeer(): void {}
  activeSince(): number | undefined {
    return undefined;
  }
  async stop(): Promise<void> {}
}
