// A small deterministic in-memory cluster for the Raft unit tests: synchronous message delivery,
// explicit ticks, link cutting, and the Ready contract (persist, send, apply, advance).
import { decodeConfChange } from '../../../src/raft/codec.js';
import { RawNode } from '../../../src/raft/rawnode.js';
import type { RaftConfig } from '../../../src/raft/raft.js';
import { MemoryStorage } from '../../../src/raft/storage.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, ReadState, Ready } from '../../../src/raft/types.js';
import { EntryType, MessageType, NONE, StateType } from '../../../src/raft/types.js';
import { Prng } from './sim/prng.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface TestNodeOptions {
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxSizePerMsgBytes?: number;
  maxInflightMsgs?: number;
  maxUncommittedEntriesBytes?: number;
  deferCommitBroadcast?: boolean;
}

export class TestNode {
  readonly storage: MemoryStorage;
  node: RawNode;
  /** Normal entries applied, in order (including the leaders' empty no-ops). */
  applied: Entry[] = [];
  appliedIndex = 0;
  confState: ConfState = { voters: [], learners: [] };
  readStates: ReadState[] = [];
  stopped = false;

  constructor(
    readonly id: NodeId,
    private readonly cfg: Omit<RaftConfig, 'id' | 'storage'>,
    storage?: MemoryStorage,
  ) {
    this.storage = storage ?? new MemoryStorage();
    this.node = new RawNode({ ...cfg, id, storage: this.storage });
  }

  /** Crash and restart from persisted state only; the state machine restarts from the snapshot. */
  restart(): void {
    const snap = this.storage.snapshot();
    this.node = new RawNode({ ...this.cfg, id: this.id, storage: this.storage, applied: snap.meta.index });
    this.appliedIndex = snap.meta.index;
    this.applied = snap.meta.index > 0 ? TestCluster.decodeImage(snap.data) : [];
    if (snap.meta.index > 0) this.confState = snap.meta.confState;
    this.readStates = [];
  }

  get raft() {
    return this.node.raft;
  }

  get state(): StateType {
    return this.node.raft.state;
  }

  appliedData(): string[] {
    return this.applied.filter((e) => e.data.byteLength > 0).map((e) => dec(e.data));
  }
}

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered. */
  queue: Message[] = [];
  /** Every message ever sent (for assertions). */
  sent: Message[] = [];
  private readonly cut = new Set<string>();
  private readonly rng: Prng;
  /** Return true to drop a message. */
  dropFilter: ((m: Message) => boolean) | undefined = undefined;

  constructor(
    ids: NodeId[],
    readonly opts: TestNodeOptions = {},
    seed = 1,
    bootstrapPeers: NodeId[] | undefined = ids,
  ) {
    this.rng = new Prng(seed);
    for (const id of ids) {
      const n = this.addNode(id);
      if (bootstrapPeers) n.node.bootstrap(bootstrapPeers.map((p) => ({ id: p })));
    }
    this.stabilize();
  }

  addNode(id: NodeId, storage?: MemoryStorage): TestNode {
    const r = this.rng.fork();
    const n = new TestNode(
      id,
      {
        electionTick: this.opts.electionTick ?? 10,
        heartbeatTick: this.opts.heartbeatTick ?? 1,
        preVote: this.opts.preVote ?? true,
        checkQuorum: this.opts.checkQuorum ?? true,
        maxSizePerMsgBytes: this.opts.maxSizePerMsgBytes ?? 1024 * 1024,
        maxInflightMsgs: this.opts.maxInflightMsgs ?? 256,
        maxUncommittedEntriesBytes: this.opts.maxUncommittedEntriesBytes ?? 0,
        deferCommitBroadcast: this.opts.deferCommitBroadcast ?? false,
        random: () => r.next(),
      },
      storage,
    );
    this.nodes.set(id, n);
    return n;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Persist, send, apply and advance one Ready of node `id`. Returns false if it had none. */
  processReady(id: NodeId, inspect?: (rd: Ready) => void): boolean {
    const n = this.get(id);
    if (n.stopped || !n.node.hasReady()) return false;
    const rd = n.node.ready();
    inspect?.(rd);
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    for (const m of rd.messages) {
      this.sent.push(m);
      this.queue.push(m);
    }
    if (rd.snapshot) {
      n.appliedIndex = rd.snapshot.meta.index;
      n.confState = rd.snapshot.meta.confState;
      n.applied = TestCluster.decodeImage(rd.snapshot.data);
    }
    for (const e of rd.committedEntries) {
      if (e.index <= n.appliedIndex) continue;
      n.appliedIndex = e.index;
      if (e.type === EntryType.ConfChange) {
        n.confState = n.node.applyConfChange(decodeConfChange(e.data));
      } else {
        n.applied.push(e);
      }
    }
    n.readStates.push(...rd.readStates);
    n.node.advance(rd);
    return true;
  }

  /** Crash: the node stops; messages to it are lost. */
  stop(id: NodeId): void {
    this.get(id).stopped = true;
  }

  /** Restart a stopped node from its persisted storage only. */
  restartNode(id: NodeId): TestNode {
    const n = this.get(id);
    n.restart();
    n.stopped = false;
    while (this.processReady(id)) {
      // re-apply committed entries
    }
    return n;
  }

  /** Process one Ready of `id`, returning it for inspection (it is persisted, sent and applied). */
  nextReady(id: NodeId): Ready {
    let captured: Ready | undefined;
    this.processReady(id, (rd) => {
      captured = rd;
    });
    if (!captured) throw new Error(`node ${id} has no Ready`);
    return captured;
  }

  /** Take a snapshot of node `id`'s state machine at its applied index and compact the log up to `compactTo`. */
  snapshotAndCompact(id: NodeId, compactTo?: number): void {
    const n = this.get(id);
    n.storage.createSnapshot(n.appliedIndex, n.confState, enc(JSON.stringify(n.appliedData())));
    n.storage.compact(compactTo ?? n.appliedIndex);
  }

  static decodeImage(data: Uint8Array): Entry[] {
    const values = JSON.parse(dec(data)) as string[];
    return values.map((v) => ({ term: 0, index: 0, type: EntryType.Normal, data: enc(v) }));
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}->${to}`);
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}->${b}`);
    this.cut.add(`${b}->${a}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cutLink(id, other);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Deliver messages and process readies until nothing is left to do. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let progressed = false;
      for (const id of this.nodes.keys()) {
        while (this.processReady(id)) progressed = true;
      }
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        progressed = true;
        this.deliver(m);
      }
      if (!progressed) return;
    }
    throw new Error('cluster did not stabilize');
  }

  deliver(m: Message): void {
    const target = this.nodes.get(m.to);
    if (!target || target.stopped) return;
    if (this.isCut(m.from, m.to)) return;
    if (this.dropFilter?.(m)) return;
    target.node.step(m);
  }

  tick(id: NodeId, ticks = 1): void {
    for (let i = 0; i < ticks; i++) {
      this.get(id).node.tick();
      this.stabilize();
    }
  }

  tickAll(ticks = 1): void {
    for (let i = 0; i < ticks; i++) {
      for (const n of this.nodes.values()) if (!n.stopped) n.node.tick();
      this.stabilize();
    }
  }

  campaign(id: NodeId): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  propose(id: NodeId, value: string): void {
    this.get(id).node.propose(enc(value));
    this.stabilize();
  }

  proposeConfChange(id: NodeId, cc: ConfChange): void {
    this.get(id).node.proposeConfChange(cc);
    this.stabilize();
  }

  leaders(): TestNode[] {
    return [...this.nodes.values()].filter((n) => !n.stopped && n.state === StateType.Leader);
  }

  leader(): TestNode {
    const ls = this.leaders();
    if (ls.length !== 1) throw new Error(`expected exactly one leader, found ${ls.length}`);
    return ls[0]!;
  }

  /** Elect `id` via an explicit campaign and check it won. */
  elect(id: NodeId): TestNode {
    this.campaign(id);
    const n = this.get(id);
    if (n.state !== StateType.Leader) throw new Error(`node ${id} failed to become leader`);
    return n;
  }

  sentOfType(t: MessageType): Message[] {
    return this.sent.filter((m) => m.type === t);
  }
}

export { NONE };
