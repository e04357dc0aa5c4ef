// Deterministic Raft cluster simulator: fake clock, lossy/duplicating/reordering network, partitions,
// crashes with restart from persisted state, client proposals, reads, leadership transfers and
// membership changes. Safety invariants are checked continuously; liveness is checked after the
// faults heal. Everything is driven by one seed, so a failing run replays exactly.
import { decodeConfChange, decodeMessage, encodeMessage } from '../../../../src/raft/codec.js';
import { ErrProposalDropped } from '../../../../src/raft/errors.js';
import { RawNode } from '../../../../src/raft/rawnode.js';
import { MemoryStorage } from '../../../../src/raft/storage.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, Snapshot } from '../../../../src/raft/types.js';
import { ConfChangeType, EntryType, MessageType, NONE, StateType } from '../../../../src/raft/types.js';
import { Prng } from './prng.js';

export class SimulationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimulationError';
  }
}

export interface SimOptions {
  seed: number;
  nodeCount: number;
  /** Number of chaos + heal cycles. */
  cycles?: number;
  /** Ticks of fault injection per cycle. */
  chaosTicks?: number;
  /** Bound on ticks from heal until a fresh proposal is applied by every member. */
  livenessBoundTicks?: number;
  /** Keep a trace of events (for failure reports). */
  trace?: boolean;
}

export interface SimStats {
  ticks: number;
  maxTerm: number;
  leadersElected: number;
  committedIndex: number;
  messagesDelivered: number;
  snapshotsInstalled: number;
  confChangesApplied: number;
  readsServed: number;
  crashes: number;
  transfers: number;
  livenessTicks: number[];
}

const TEXT = new TextEncoder();
const UNTEXT = new TextDecoder();
/** Network and event granularity: a tick is split into this many steps. */
const STEPS_PER_TICK = 4;

function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.byteLength; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

function jsonish(o: object): string {
  return JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

function fingerprint(e: Entry): string {
  return `${e.type}:${hex(e.data)}`;
}

/** FNV-1a over a string, chained with the previous digest: a running hash of the applied sequence. */
function chainDigest(prev: number, text: string): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

interface StateMachine {
  index: number;
  digest: number;
  confState: ConfState;
  values: number;
}

interface SnapshotImage {
  index: number;
  digest: number;
  values: number;
}

/** MemoryStorage whose snapshot() is refreshed from the live state machine, as etcd's server does. */
class SimStorage extends MemoryStorage {
  refresh: (() => void) | undefined = undefined;

  override snapshot(): Snapshot {
    this.refresh?.();
    return super.snapshot();
  }

  storedSnapshot(): Snapshot {
    return super.snapshot();
  }
}

class SimNode {
  raw: RawNode | undefined = undefined;
  /** A Ready taken but not yet persisted (asynchronous persistence); lost on crash. */
  pending: { rd: Ready; doneAtStep: number } | undefined = undefined;
  sm: StateMachine = { index: 0, digest: 0, confState: { voters: [], learners: [] }, values: 0 };
  removed = false;
  restartAtTick = 0;

  constructor(
    readonly id: NodeId,
    readonly storage: SimStorage,
    readonly rng: Prng,
  ) {}

  get alive(): boolean {
    return this.raw !== undefined;
  }
}

interface InFlight {
  deliverAtStep: number;
  from: NodeId;
  to: NodeId;
  type: MessageType;
  bytes: Uint8Array;
  snapshotIndex: number;
}

interface CommittedRecord {
  term: number;
  fp: string;
  /** Lowest term of a node that saw it committed; leaders of later terms must hold it. */
  knownInTerm: number;
}

export class Simulation {
  private readonly rng: Prng;
  private readonly nodes = new Map<NodeId, SimNode>();
  private nextNodeId: bigint;
  private network: InFlight[] = [];
  private readonly cut = new Set<string>();
  private step = 0;
  private tickCount = 0;
  private nextValue = 1;
  private nextReadId = 1;
  private readonly traceLines: string[] = [];

  // network behaviour (changes during chaos)
  private dropRate = 0;
  private dupRate = 0;
  private maxDelaySteps = 2;

  // per-seed configuration
  private readonly electionTick = 10;
  private readonly heartbeatTick: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxInflightMsgs: number;
  private readonly maxSizePerMsgBytes: number;
  private readonly snapshotIntervalEntries: number;
  private readonly keepEntriesAfterSnapshot: number;
  private readonly maxMembers: number;
  /** Probability that a Ready is persisted asynchronously (a few steps later). */
  private readonly asyncReadyRate: number;
  /** Odd seeds run the leader with deferCommitBroadcast (as the server does). */
  private readonly deferCommitBroadcast: boolean;
  private chaos = false;

  // invariant bookkeeping
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly entryAt = new Map<string, { fp: string; prevTerm: number }>();
  private readonly committed = new Map<number, CommittedRecord>();
  private readonly appliedDigestAt = new Map<number, number>();
  private maxCommitIndexSeen = 0;
  private readonly pendingReads = new Map<string, { node: NodeId; minIndex: number }>();

  readonly stats: SimStats = {
    ticks: 0,
    maxTerm: 0,
    leadersElected: 0,
    committedIndex: 0,
    messagesDelivered: 0,
    snapshotsInstalled: 0,
    confChangesApplied: 0,
    readsServed: 0,
    crashes: 0,
    transfers: 0,
    livenessTicks: [],
  };

  constructor(private readonly opts: SimOptions) {
    this.rng = new Prng(opts.seed);
    this.heartbeatTick = this.rng.int(1, 2);
    // Mostly etcd's defaults, but also cover the classic configurations.
    const mode = this.rng.int(0, 9);
    this.preVote = mode !== 0 && mode !== 1;
    this.checkQuorum = mode !== 0 && mode !== 2;
    this.maxInflightMsgs = this.rng.int(1, 8);
    this.maxSizePerMsgBytes = this.rng.pick([40, 100, 400, 4096]);
    this.snapshotIntervalEntries = this.rng.int(8, 60);
    this.keepEntriesAfterSnapshot = this.rng.int(0, 10);
    this.maxMembers = opts.nodeCount + 2;
    this.asyncReadyRate = this.rng.pick([0, 0, 0.3]);
    // From the seed, not the PRNG, so that even seeds replay exactly as before this option.
    this.deferCommitBroadcast = opts.seed % 2 === 1;
    const ids: NodeId[] = [];
    for (let i = 1; i <= opts.nodeCount; i++) ids.push(BigInt(i));
    this.nextNodeId = BigInt(opts.nodeCount + 1);
    for (const id of ids) {
      const n = this.createNode(id);
      n.raw!.bootstrap(ids.map((p) => ({ id: p })));
    }
    this.trace(
      `config nodes=${opts.nodeCount} hb=${this.heartbeatTick} preVote=${this.preVote} checkQuorum=${this.checkQuorum} ` +
        `inflight=${this.maxInflightMsgs} maxMsg=${this.maxSizePerMsgBytes} snapEvery=${this.snapshotIntervalEntries} asyncReady=${this.asyncReadyRate} ` +
        `deferCommit=${this.deferCommitBroadcast}`,
    );
  }

  // ------------------------------------------------------------------ driver

  run(): SimStats {
    const cycles = this.opts.cycles ?? 3;
    const chaosTicks = this.opts.chaosTicks ?? 200;
    const bound = this.opts.livenessBoundTicks ?? 30 * this.electionTick;
    this.processAllReadies();
    for (let c = 0; c < cycles; c++) {
      this.trace(`--- chaos phase ${c}`);
      for (let t = 0; t < chaosTicks; t++) this.runTick(true);
      this.trace(`--- heal ${c}`);
      this.heal();
      this.checkLiveness(bound);
    }
    this.stats.ticks = this.tickCount;
    this.stats.committedIndex = this.maxCommitIndexSeen;
    return this.stats;
  }

  traceTail(lines: number): string {
    return this.traceLines.slice(-lines).join('\n');
  }

  private trace(line: string): void {
    if (!this.opts.trace) return;
    this.traceLines.push(`[t${this.tickCount}.${this.step % STEPS_PER_TICK}] ${line}`);
    if (this.traceLines.length > 5000) this.traceLines.splice(0, 1000);
  }

  private fail(message: string): never {
    throw new SimulationError(`seed ${this.opts.seed} tick ${this.tickCount}: ${message}`);
  }

  private runTick(chaos: boolean): void {
    this.chaos = chaos;
    this.tickCount++;
    for (const n of this.nodes.values()) {
      if (!n.alive) {
        if (!n.removed && chaos && n.restartAtTick > 0 && this.tickCount >= n.restartAtTick) this.restart(n);
        continue;
      }
      // Occasionally skip a tick: clocks are not perfectly in step.
      if (chaos && this.rng.chance(0.03)) continue;
      n.raw!.tick();
    }
    for (let s = 0; s < STEPS_PER_TICK; s++) {
      this.step++;
      this.deliverDueMessages();
      if (chaos) this.injectEvents();
      else if (this.rng.chance(0.2)) this.proposeRandom();
      if (this.deferCommitBroadcast) this.maybeBroadcastCommits();
      this.processAllReadies();
    }
  }

  // ------------------------------------------------------------------ nodes

  private createNode(id: NodeId): SimNode {
    const n = new SimNode(id, new SimStorage(), this.rng.fork());
    n.storage.refresh = () => this.refreshSnapshot(n);
    this.nodes.set(id, n);
    this.start(n);
    this.trace(`create node ${id}`);
    return n;
  }

  private start(n: SimNode): void {
    const snap = n.storage.storedSnapshot();
    n.raw = new RawNode({
      // Entries up to the snapshot are in the state machine already; do not hand them out again.
      applied: snap.meta.index,
      id: n.id,
      electionTick: this.electionTick,
      heartbeatTick: this.heartbeatTick,
      storage: n.storage,
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      maxInflightMsgs: this.maxInflightMsgs,
      maxSizePerMsgBytes: this.maxSizePerMsgBytes,
      deferCommitBroadcast: this.deferCommitBroadcast,
      random: () => n.rng.next(),
      ...(this.opts.trace
        ? {
            logger: {
              info: (msg: string, fields?: object) => this.trace(`  ${n.id}: ${msg} ${fields ? jsonish(fields) : ''}`),
              warn: (msg: string, fields?: object) => this.trace(`  ${n.id}: WARN ${msg} ${fields ? jsonish(fields) : ''}`),
            },
          }
        : {}),
    });
    // The state machine restarts from the snapshot; later entries are re-applied from the log.
    if (snap.meta.index > 0) {
      const img = JSON.parse(UNTEXT.decode(snap.data)) as SnapshotImage;
      n.sm = { index: img.index, digest: img.digest, values: img.values, confState: snap.meta.confState };
    } else {
      n.sm = { index: 0, digest: 0, values: 0, confState: { voters: [], learners: [] } };
    }
  }

  private crash(n: SimNode, downTicks: number): void {
    this.trace(`crash ${n.id} for ${downTicks} ticks`);
    n.raw = undefined;
    n.pending = undefined;
    n.restartAtTick = this.tickCount + downTicks;
    this.stats.crashes++;
  }

  private restart(n: SimNode): void {
    this.trace(`restart ${n.id} (hs term=${n.storage.initialState().hardState.term} last=${n.storage.lastIndex()})`);
    this.start(n);
  }

  private liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  private leaders(): SimNode[] {
    return this.liveNodes().filter((n) => n.raw!.raft.state === StateType.Leader);
  }

  /** The leader with the highest term (older ones may linger in a minority partition). */
  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.leaders()) if (!best || n.raw!.raft.term > best.raw!.raft.term) best = n;
    return best;
  }

  // ------------------------------------------------------------------ ready processing

  /** Like the server's short timer: a deferred commit broadcast goes out a few steps later. */
  private maybeBroadcastCommits(): void {
    for (const n of this.nodes.values()) {
      if (n.alive && n.raw!.hasPendingCommitBroadcast() && this.rng.chance(0.3)) n.raw!.broadcastCommit();
    }
  }

  private processAllReadies(): void {
    for (let round = 0; round < 100; round++) {
      let any = false;
      for (const n of this.nodes.values()) {
        if (n.alive && this.processReady(n)) any = true;
      }
      if (!any) return;
    }
    this.fail('readies did not settle');
  }

  /**
   * Take the node's next Ready and handle it, either right away or, like a server persisting
   * asynchronously, a few steps later while the node keeps stepping messages and ticking.
   */
  private processReady(n: SimNode): boolean {
    if (n.pending) {
      if (this.step < n.pending.doneAtStep) return false;
      const rd = n.pending.rd;
      n.pending = undefined;
      this.completeReady(n, rd);
      return true;
    }
    const raw = n.raw!;
    if (!raw.hasReady()) return false;
    const rd = raw.ready();
    this.checkReady(n, rd);
    if (rd.hardState && rd.hardState.commit > this.maxCommitIndexSeen) this.maxCommitIndexSeen = rd.hardState.commit;
    if (this.rng.chance(this.asyncReadyRate)) {
      n.pending = { rd, doneAtStep: this.step + this.rng.int(1, 3) };
      return false;
    }
    this.completeReady(n, rd);
    return true;
  }

  private completeReady(n: SimNode, rd: Ready): void {
    const raw = n.raw!;
    // 1. persist
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    if (this.chaos && this.rng.chance(0.002)) {
      // Crash after the fsync, before anything was sent or applied.
      this.crash(n, this.rng.int(1, 3 * this.electionTick));
      return;
    }
    // 2. send
    for (const m of rd.messages) this.send(m);
    // 3. apply
    if (rd.snapshot) this.applySnapshot(n, rd.snapshot);
    for (const e of rd.committedEntries) this.applyEntry(n, e);
    for (const rs of rd.readStates) this.checkReadState(n, rs.index, rs.requestCtx);
    raw.advance(rd);
    this.maybeCompact(n);
    if (n.removed && n.alive) {
      this.trace(`node ${n.id} shuts down after removal`);
      n.raw = undefined;
    }
  }

  private applySnapshot(n: SimNode, snap: Snapshot): void {
    const img = JSON.parse(UNTEXT.decode(snap.data)) as SnapshotImage;
    if (img.index !== snap.meta.index) this.fail(`snapshot image index ${img.index} != meta ${snap.meta.index}`);
    this.checkDigest(img.index, img.digest, `snapshot restore on ${n.id}`);
    n.sm = { index: img.index, digest: img.digest, values: img.values, confState: snap.meta.confState };
    this.stats.snapshotsInstalled++;
    this.trace(`node ${n.id} installed snapshot @${snap.meta.index}`);
  }

  private applyEntry(n: SimNode, e: Entry): void {
    if (e.index <= n.sm.index) this.fail(`node ${n.id} re-applies index ${e.index} (applied ${n.sm.index})`);
    if (e.index !== n.sm.index + 1) this.fail(`node ${n.id} skips from ${n.sm.index} to ${e.index}`);
    const fp = fingerprint(e);
    this.recordCommitted(n, e, fp);
    n.sm.index = e.index;
    n.sm.digest = chainDigest(n.sm.digest, `${e.index}/${e.term}/${fp}`);
    this.checkDigest(e.index, n.sm.digest, `apply on ${n.id}`);
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      n.sm.confState = n.raw!.applyConfChange(cc);
      this.stats.confChangesApplied++;
      this.onConfChangeApplied(n, cc);
    } else if (e.data.byteLength > 0) {
      n.sm.values++;
      const p = this.probe;
      if (p && UNTEXT.decode(e.data) === p.value) {
        p.appliedBy.add(n.id);
        if (p.minIndex === 0 || e.index < p.minIndex) p.minIndex = e.index;
      }
    }
  }

  private onConfChangeApplied(n: SimNode, cc: ConfChange): void {
    this.trace(`node ${n.id} applied ${ConfChangeType[cc.type]} ${cc.nodeId} -> voters=[${n.sm.confState.voters}] learners=[${n.sm.confState.learners}]`);
    if (cc.type === ConfChangeType.AddNode || cc.type === ConfChangeType.AddLearnerNode) {
      // The operator starts the new member once the change is committed.
      if (!this.nodes.has(cc.nodeId)) this.createNode(cc.nodeId);
    } else if (cc.type === ConfChangeType.RemoveNode) {
      const target = this.nodes.get(cc.nodeId);
      if (target && !target.removed) {
        // Removed members shut down (etcd peers tell them they were removed).
        target.removed = true;
        if (target.alive && target !== n) {
          this.trace(`node ${target.id} shuts down after removal`);
          target.raw = undefined;
        }
      }
    }
  }

  private snapshotImage(n: SimNode): Uint8Array {
    const img: SnapshotImage = { index: n.sm.index, digest: n.sm.digest, values: n.sm.values };
    return TEXT.encode(JSON.stringify(img));
  }

  /** etcd builds the snapshot it sends from the current applied state; emulate that. */
  private refreshSnapshot(n: SimNode): void {
    if (n.sm.index > n.storage.storedSnapshot().meta.index) {
      n.storage.createSnapshot(n.sm.index, n.sm.confState, this.snapshotImage(n));
    }
  }

  private maybeCompact(n: SimNode): void {
    const snapIndex = n.storage.storedSnapshot().meta.index;
    if (n.sm.index - snapIndex < this.snapshotIntervalEntries) return;
    n.storage.createSnapshot(n.sm.index, n.sm.confState, this.snapshotImage(n));
    const compactTo = n.sm.index - this.keepEntriesAfterSnapshot;
    if (compactTo > n.storage.firstIndex() - 1) n.storage.compact(compactTo);
  }

  // ------------------------------------------------------------------ network

  private linkKey(from: NodeId, to: NodeId): string {
    return `${from}>${to}`;
  }

  private send(m: Message): void {
    const copies = this.rng.chance(this.dupRate) ? 2 : 1;
    const bytes = encodeMessage(m);
    for (let i = 0; i < copies; i++) {
      this.network.push({
        deliverAtStep: this.step + this.rng.int(1, this.maxDelaySteps),
        from: m.from,
        to: m.to,
        type: m.type,
        bytes,
        snapshotIndex: m.snapshot?.meta.index ?? 0,
      });
    }
  }

  private deliverDueMessages(): void {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of this.network) (f.deliverAtStep <= this.step ? due : later).push(f);
    this.network = later;
    this.rng.shuffle(due); // reordering
    for (const f of due) this.deliver(f);
  }

  private deliver(f: InFlight): void {
    const target = this.nodes.get(f.to);
    const sender = this.nodes.get(f.from);
    const blocked = this.cut.has(this.linkKey(f.from, f.to));
    const lost = !target || !target.alive || blocked || this.rng.chance(this.dropRate);
    if (lost) {
      // The transport notices failed sends to unreachable peers, and reports snapshot failures.
      if (sender?.alive) {
        if (f.type === MessageType.Snap) sender.raw!.reportSnapshot(f.to, false);
        else if ((blocked || !target?.alive) && this.rng.chance(0.2)) sender.raw!.reportUnreachable(f.to);
      }
      return;
    }
    const m = decodeMessage(f.bytes);
    this.stats.messagesDelivered++;
    target.raw!.step(m);
    if (f.type === MessageType.Snap && sender?.alive) sender.raw!.reportSnapshot(f.to, true);
    // Sometimes handle the Ready right away, sometimes batch several messages into one Ready.
    if (this.rng.chance(0.5)) this.processReady(target);
  }

  private partitionRandomly(): void {
    this.cut.clear();
    const ids = this.rng.shuffle([...this.nodes.keys()]);
    const splitAt = this.rng.int(1, ids.length - 1);
    const side = new Set(ids.slice(0, splitAt));
    for (const a of ids) {
      for (const b of ids) {
        if (side.has(a) !== side.has(b)) this.cut.add(this.linkKey(a, b));
      }
    }
    this.trace(`partition [${[...side]}] | [${ids.filter((i) => !side.has(i))}]`);
  }

  private cutOneWay(): void {
    const ids = [...this.nodes.keys()];
    const a = this.rng.pick(ids);
    const b = this.rng.pick(ids);
    if (a !== b) {
      this.cut.add(this.linkKey(a, b));
      this.trace(`cut link ${a}->${b}`);
    }
  }

  // ------------------------------------------------------------------ chaos

  private injectEvents(): void {
    const r = this.rng;
    if (r.chance(0.25)) this.proposeRandom();
    if (r.chance(0.01)) this.readRandom();
    if (r.chance(0.004)) this.crashRandom();
    if (r.chance(0.004)) this.crashLeader();
    if (r.chance(0.004)) {
      if (this.cut.size > 0 && r.chance(0.5)) {
        this.cut.clear();
        this.trace('heal partition');
      } else {
        this.partitionRandomly();
      }
    }
    if (r.chance(0.003)) this.cutOneWay();
    if (r.chance(0.003)) {
      this.dropRate = r.pick([0, 0, 0.05, 0.2, 0.5]);
      this.dupRate = r.pick([0, 0.05, 0.2]);
      this.maxDelaySteps = r.pick([1, 2, 4, 8, 16]);
      this.trace(`network drop=${this.dropRate} dup=${this.dupRate} delay<=${this.maxDelaySteps}`);
    }
    if (r.chance(0.004)) this.changeMembership();
    if (r.chance(0.002)) this.transferLeadership();
  }

  private proposeRandom(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const n = this.rng.pick(live);
    const value = `v${this.nextValue++}`;
    try {
      n.raw!.propose(TEXT.encode(value));
    } catch (e) {
      if (!(e instanceof ErrProposalDropped)) throw e;
    }
  }

  private readRandom(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const n = this.rng.pick(live);
    const ctx = `r${this.nextReadId++}`;
    // A read must observe every write committed before it was issued.
    this.pendingReads.set(ctx, { node: n.id, minIndex: this.maxCommitIndexSeen });
    n.raw!.readIndex(TEXT.encode(ctx));
  }

  private crashRandom(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    this.crash(this.rng.pick(live), this.rng.int(1, 6 * this.electionTick));
  }

  /** Leader crashes, often right after sending part of its log: the classic source of divergence. */
  private crashLeader(): void {
    const leader = this.currentLeader();
    if (!leader) return;
    this.crash(leader, this.rng.int(1, 3 * this.electionTick));
  }

  private changeMembership(): void {
    const leader = this.currentLeader();
    if (!leader) return;
    const cs = leader.sm.confState;
    const members = cs.voters.length + cs.learners.length;
    const r = this.rng;
    let cc: ConfChange;
    const choice = r.int(0, 3);
    if (choice === 0 && cs.learners.length > 0) {
      cc = { type: ConfChangeType.AddNode, nodeId: r.pick(cs.learners), context: new Uint8Array(0) };
    } else if (choice === 1 && members < this.maxMembers) {
      cc = { type: ConfChangeType.AddLearnerNode, nodeId: this.nextNodeId++, context: new Uint8Array(0) };
    } else if (choice === 2 && members < this.maxMembers) {
      cc = { type: ConfChangeType.AddNode, nodeId: this.nextNodeId++, context: new Uint8Array(0) };
    } else if (cs.voters.length > 2 || cs.learners.length > 0) {
      const candidates = cs.voters.length > 2 ? [...cs.voters, ...cs.learners] : cs.learners;
      cc = { type: ConfChangeType.RemoveNode, nodeId: r.pick(candidates), context: new Uint8Array(0) };
    } else {
      return;
    }
    try {
      leader.raw!.proposeConfChange(cc);
      this.trace(`leader ${leader.id} proposes ${ConfChangeType[cc.type]} ${cc.nodeId}`);
    } catch (e) {
      if (!(e instanceof ErrProposalDropped)) throw e;
    }
  }

  private transferLeadership(): void {
    const leader = this.currentLeader();
    if (!leader) return;
    const voters = leader.sm.confState.voters.filter((v) => v !== leader.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    this.trace(`transfer leadership ${leader.id} -> ${to}`);
    this.stats.transfers++;
    leader.raw!.transferLeader(to);
  }

  // ------------------------------------------------------------------ heal + liveness

  private heal(): void {
    this.cut.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.maxDelaySteps = 2;
    for (const n of this.nodes.values()) if (!n.alive && !n.removed) this.restart(n);
  }

  private checkLiveness(boundTicks: number): void {
    const probe = `probe${this.nextValue++}`;
    const probeBytes = TEXT.encode(probe);
    this.probe = { value: probe, appliedBy: new Set(), minIndex: 0 };
    const startTick = this.tickCount;
    let proposedAtTick = -1;
    while (this.tickCount - startTick <= boundTicks) {
      const leader = this.currentLeader();
      // Re-propose if the first attempt was lost with a leader change.
      if (leader && (proposedAtTick < 0 || this.tickCount - proposedAtTick > 3 * this.electionTick)) {
        try {
          leader.raw!.propose(probeBytes);
          proposedAtTick = this.tickCount;
          this.trace(`probe proposed via ${leader.id}`);
        } catch (e) {
          if (!(e instanceof ErrProposalDropped)) throw e;
        }
      }
      this.runTick(false);
      if (this.probeAppliedByAllMembers()) {
        this.stats.livenessTicks.push(this.tickCount - startTick);
        this.probe = undefined;
        return;
      }
    }
    const desc = [...this.nodes.values()]
      .map((n) =>
        n.alive
          ? `${n.id}:${StateType[n.raw!.raft.state]}@${n.raw!.raft.term} lead=${n.raw!.raft.lead} commit=${n.raw!.raft.raftLog.committed} applied=${n.sm.index} last=${n.raw!.raft.raftLog.lastIndex()} conf=[${n.sm.confState.voters}|${n.sm.confState.learners}]`
          : `${n.id}:${n.removed ? 'removed' : 'down'}`,
      )
      .join('; ');
    this.fail(`liveness: probe not applied by all members within ${boundTicks} ticks after heal. ${desc}`);
  }

  private probe: { value: string; appliedBy: Set<NodeId>; minIndex: number } | undefined = undefined;

  /** Every member of the current leader's configuration applied the probe (or a snapshot past it). */
  private probeAppliedByAllMembers(): boolean {
    const leader = this.currentLeader();
    const p = this.probe;
    if (!leader || !p || p.minIndex === 0) return false;
    const cs = leader.sm.confState;
    for (const id of [...cs.voters, ...cs.learners]) {
      if (p.appliedBy.has(id)) continue;
      const n = this.nodes.get(id);
      if (!n || !n.alive || n.sm.index < p.minIndex) return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ invariants

  private checkReady(n: SimNode, rd: Ready): void {
    const raft = n.raw!.raft;
    if (raft.term > this.stats.maxTerm) this.stats.maxTerm = raft.term;
    // Election safety: at most one leader per term.
    if (raft.state === StateType.Leader) {
      const prev = this.leaderOfTerm.get(raft.term);
      if (prev === undefined) {
        this.leaderOfTerm.set(raft.term, n.id);
        this.stats.leadersElected++;
        this.trace(`node ${n.id} is leader of term ${raft.term}`);
      } else if (prev !== n.id) {
        this.fail(`election safety: nodes ${prev} and ${n.id} are both leaders of term ${raft.term}`);
      }
    }
    if (rd.softState?.state === StateType.Leader) this.checkLeaderCompleteness(n);
    // Log matching: an (index, term) pair always names the same entry with the same predecessor term.
    for (const e of rd.entries) {
      const key = `${e.index}/${e.term}`;
      const fp = fingerprint(e);
      const prevTerm = raft.raftLog.termOrZero(e.index - 1);
      const seen = this.entryAt.get(key);
      if (!seen) this.entryAt.set(key, { fp, prevTerm });
      else if (seen.fp !== fp || seen.prevTerm !== prevTerm) {
        this.fail(
          `log matching: entry ${key} on node ${n.id} is ${fp} after term ${prevTerm}, elsewhere ${seen.fp} after term ${seen.prevTerm}`,
        );
      }
    }
    if (rd.hardState && rd.hardState.commit > raft.raftLog.lastIndex()) {
      this.fail(`node ${n.id} commit ${rd.hardState.commit} beyond last index ${raft.raftLog.lastIndex()}`);
    }
  }

  private checkLeaderCompleteness(n: SimNode): void {
    const log = n.raw!.raft.raftLog;
    const term = n.raw!.raft.term;
    const first = log.firstIndex();
    const last = log.lastIndex();
    for (const [index, rec] of this.committed) {
      if (rec.knownInTerm >= term || index < first) continue;
      if (index > last || log.termOrZero(index) !== rec.term) {
        this.fail(
          `leader completeness: leader ${n.id} of term ${term} lacks entry ${index}/${rec.term} committed in term ${rec.knownInTerm} (has term ${index > last ? 'none' : log.termOrZero(index)})`,
        );
      }
    }
  }

  private recordCommitted(n: SimNode, e: Entry, fp: string): void {
    const term = n.raw!.raft.term;
    const rec = this.committed.get(e.index);
    if (!rec) {
      this.committed.set(e.index, { term: e.term, fp, knownInTerm: term });
      return;
    }
    if (rec.term !== e.term || rec.fp !== fp) {
      this.fail(
        `state machine safety: node ${n.id} applies ${e.index}/${e.term} ${fp}, another node applied ${e.index}/${rec.term} ${rec.fp}`,
      );
    }
    if (term < rec.knownInTerm) rec.knownInTerm = term;
  }

  private checkDigest(index: number, digest: number, what: string): void {
    const prev = this.appliedDigestAt.get(index);
    if (prev === undefined) this.appliedDigestAt.set(index, digest);
    else if (prev !== digest) this.fail(`state machine safety: ${what}: digest at ${index} differs from another node's`);
  }

  private checkReadState(n: SimNode, index: number, ctx: Uint8Array): void {
    const key = UNTEXT.decode(ctx);
    const req = this.pendingReads.get(key);
    if (!req) this.fail(`node ${n.id} got a read state for unknown request ${key}`);
    if (req.node !== n.id) this.fail(`read ${key} issued on ${req.node} answered on ${n.id}`);
    if (index < req.minIndex) {
      this.fail(`linearizability: read ${key} got index ${index}, but ${req.minIndex} was committed before it was issued`);
    }
    // Kept (not deleted): the network may duplicate the response.
    this.stats.readsServed++;
  }
}

export function runSimulation(opts: SimOptions): SimStats {
  return new Simulation(opts).run();
}

/** Run a seed; on failure, replay it with tracing and attach the trace tail. */
export function runSeedWithReport(opts: SimOptions): { ok: true; stats: SimStats } | { ok: false; report: string } {
  try {
    return { ok: true, stats: runSimulation(opts) };
  } catch (e) {
    const sim = new Simulation({ ...opts, trace: true });
    let replayError = '';
    try {
      sim.run();
      replayError = '(replay did not reproduce the failure!)';
    } catch (e2) {
      replayError = e2 instanceof Error ? (e2.stack ?? e2.message) : String(e2);
    }
    const first = e instanceof Error ? (e.stack ?? e.message) : String(e);
    return {
      ok: false,
      report: `RAFT_SIM_SEED=${opts.seed} (nodes=${opts.nodeCount}) failed:\n${first}\nreplay: ${replayError}\n--- trace tail ---\n${sim.traceTail(120)}`,
    };
  }
}

export { NONE };
