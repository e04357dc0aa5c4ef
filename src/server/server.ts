import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { RawNode, MemoryStorage, decodeConfChange, decodeMessage, ErrProposalDropped } from '../raft/index.js';
import { Backend } from '../backend/index.js';
import fsp from 'node:fs/promises';
import {
  ConfChangeType, EntryType, MessageType, StateType, NONE,
  type ConfChange, type ConfState, type Entry, type Message, type NodeId, type Ready, type ReadState,
} from '../raft/types.js';
import { Wal } from '../wal/index.js';
import type { Logger } from '../log/logger.js';
import { Errors, ServerError } from './errors.js';
import { computeMemberId, idToHex } from './ids.js';
import { bootstrapMembers, decodeMember, encodeMember, Membership, type InitialMember, type Member } from './membership.js';
import { ConfigError } from '../cli/errors.js';
import { counterCell, gaugeFrom, type ServerMetrics } from './metrics.js';
import { decodeHeader, decodePayload, encodePayload, encodeRequest, payloadOf, RequestIdGenerator, RequestKind } from './request.js';
import { NoopTransport, type Transport } from './transport.js';
import { AppliedIndexWaits, ProposalWaits } from './wait.js';
import { AlarmType, mayApplySlowly, StateMachine } from './state-machine.js';
import { forceNewClusterLog } from './force-new-cluster.js';
import { Compactor, type CompactorConfig } from './compactor.js';
import { internalFromPb } from './convert.js';
import { toLong, type Msg } from './pb.js';
import { etcdApiVersion } from '../cli/config.js';

export interface ServerConfig {
  name: string;
  dataDir: string;
  walDir: string;
  initialCluster: InitialMember[];
  initialClusterToken: string;
  initialClusterState: 'new' | 'existing';
  initialAdvertisePeerUrls: string[];
  advertiseClientUrls: string[];
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  snapshotCount: number;
  maxTxnOps: number;
  maxRequestBytes: number;
  quotaBackendBytes: number;
  backendBatchIntervalMs: number;
  backendBatchLimit: number;
  preVote: boolean;
  strictReconfigCheck: boolean;
  unsafeNoFsync: boolean;
  etcdVersion: string;
  maxLearners: number;
  autoCompaction: CompactorConfig;
  watchProgressNotifyIntervalMs: number;
  /** Raft entries kept in memory after a snapshot so slow followers catch up without one. */
  snapshotCatchupEntries: number;
  /** --force-new-cluster: restart as the only member of the cluster, keeping the data. */
  forceNewCluster?: boolean;
  /** GETs a peer URL (https through the member's peer TLS identity); default: fetch, http only. */
  peerGet?: PeerGet;
}

/** A GET to another member's peer port, with the whole answer. */
export type PeerGet = (url: URL, timeoutMs: number) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;

/** etcd rejects new proposals when the apply loop lags this far behind commit. */
const MAX_APPLY_LAG_ENTRIES = 5000;
/** Proposals waiting for their apply; beyond this new ones get "too many requests". */
const MAX_PENDING_PROPOSALS = 100_000;
/** How often the leader looks for expired leases. */
const LEASE_CHECK_INTERVAL_MS = 500;
/** Expired leases revoked per check (etcd revokes in bounded batches too). */
const LEASE_REVOKE_BATCH = 500;
/** etcd's default lease checkpoint interval: 5 minutes. */
const LEASE_CHECKPOINT_INTERVAL_MS = 5 * 60 * 1000;
/** How long a linearizable read waits for its ReadIndex before asking again. */
const READ_INDEX_RETRY_MS = 500;
/**
 * How long a new commit index may wait for an append to carry it to the followers (see
 * armCommitBroadcast). Short against the heartbeat (100 ms), so a follower's watchers and
 * serializable reads lag the leader by at most about this much more than with etcd.
 */
const COMMIT_BROADCAST_DELAY_MS = 2;

interface PendingRead {
  resolve: () => void;
  reject: (e: Error) => void;
  deadlineMs: number;
}

/**
 * The member: owns the Raft node, the WAL, the state machine (MVCC over LevelDB), and the
 * ready loop that ties them together. The path of a write:
 *   propose() -> RawNode.propose -> Ready{entries} -> WAL save (one fdatasync per Ready:
 *   group commit) -> MemoryStorage.append -> Ready{committedEntries} -> apply queue ->
 *   StateMachine.apply (one LevelDB batch per backend interval) -> waiter resolved -> response.
 */
export class EtcdServer {
  readonly memberId: bigint;
  readonly membership: Membership;
  readonly stateMachine: StateMachine;
  transport: Transport = new NoopTransport();

  private readonly node: RawNode;
  private readonly storage: MemoryStorage;
  private readonly wal: Wal;
  private readonly waits = new ProposalWaits();
  private readonly appliedWaits = new AppliedIndexWaits();
  private readonly localDecoded = new Map<number, Msg>();
  private readonly idGen: RequestIdGenerator;
  private readonly requestTimeoutMs: number;

  private leaderId: NodeId = NONE;
  private raftState: StateType = StateType.Follower;
  private currentTerm = 0;
  private committedIndex = 0;
  private appliedIndex = 0;
  private snapshotIndex = 0;
  private confState: ConfState = { voters: [], learners: [] };
  private leaderChangedAtMs = Date.now();
  private soloCampaignPending = false;

  private readyScheduled = false;
  private inReadyLoop = false;
  private applyChain: Promise<void> = Promise.resolve();
  private tickTimer?: NodeJS.Timeout;
  private commitBroadcastTimer?: NodeJS.Timeout;
  private compactor?: Compactor;
  private stopped = false;
  private fatalError?: Error;

  private pendingReads: PendingRead[] = [];
  private readInFlight?: { ctx: Buffer; batch: PendingRead[]; sentAtMs: number };
  private readCounter = 0;
  private readonly leaderWatchers = new Set<() => void>();

  private constructor(
    readonly cfg: ServerConfig,
    readonly logger: Logger,
    readonly metrics: ServerMetrics,
    parts: {
      memberId: bigint; membership: Membership; node: RawNode; storage: MemoryStorage; wal: Wal;
      stateMachine: StateMachine; snapshotIndex: number; confState: ConfState;
    },
  ) {
    this.memberId = parts.memberId;
    this.membership = parts.membership;
    this.node = parts.node;
    this.storage = parts.storage;
    this.wal = parts.wal;
    this.stateMachine = parts.stateMachine;
    this.snapshotIndex = parts.snapshotIndex;
    this.appliedIndex = parts.snapshotIndex;
    this.confState = parts.confState;
    this.idGen = new RequestIdGenerator(this.memberId);
    this.stateMachine.setIdentity(this.memberId, () => this.currentTerm);
    this.stateMachine.onQuotaExceeded = () => this.raiseAlarm(AlarmType.NOSPACE);
    // etcd: 5 s + 2 x election timeout for a proposal to be applied
    this.requestTimeoutMs = 5000 + 2 * cfg.electionTimeoutMs;
  }

  // ------------------------------------------------------------------ start / stop

  static async start(
    cfg: ServerConfig, logger: Logger, metrics: ServerMetrics, makeTransport?: (server: EtcdServer) => Transport,
  ): Promise<EtcdServer> {
    const memberDir = path.join(cfg.dataDir, 'member');
    fs.mkdirSync(path.join(memberDir, 'snap'), { recursive: true, mode: 0o700 });
    const stateMachine = await StateMachine.open(path.join(memberDir, 'snap', 'db'), cfg, logger, metrics);
    try {
      const server = Wal.exists(cfg.walDir)
        ? await EtcdServer.restart(cfg, logger, metrics, stateMachine)
        : await EtcdServer.bootstrapNew(cfg, logger, metrics, stateMachine);
      if (makeTransport) server.transport = makeTransport(server);
      server.begin();
      return server;
    } catch (e) {
      await stateMachine.close().catch(() => {});
      throw e;
    }
  }

  private static raftConfig(cfg: ServerConfig, id: bigint, storage: MemoryStorage, applied: number, logger: Logger) {
    const heartbeatTick = 1;
    const electionTick = Math.max(2, Math.round(cfg.electionTimeoutMs / cfg.heartbeatIntervalMs));
    return {
      id, electionTick, heartbeatTick, storage, applied,
      preVote: cfg.preVote, checkQuorum: true,
      maxSizePerMsgBytes: 1024 * 1024, maxInflightMsgs: 4096 / 8,
      maxUncommittedEntriesBytes: 1 << 30,
      // Followers learn a new commit index with the next append, or within
      // COMMIT_BROADCAST_DELAY_MS; a follower that forwarded the proposal hears at once.
      deferCommitBroadcast: true,
      random: Math.random,
      logger: { info: (m: string, f?: object) => logger.info(m, f as Record<string, unknown>), warn: (m: string, f?: object) => logger.warn(m, f as Record<string, unknown>) },
    };
  }

  private static async bootstrapNew(cfg: ServerConfig, logger: Logger, metrics: ServerMetrics, sm: StateMachine): Promise<EtcdServer> {
    if (cfg.initialClusterState === 'existing') return EtcdServer.joinExisting(cfg, logger, metrics, sm);
    const { members, localId, clusterId } = bootstrapMembers(
      cfg.initialCluster, cfg.initialClusterToken, cfg.name, cfg.initialAdvertisePeerUrls,
    );
    logger.info('starting a new member to form a new cluster', {
      'local-member-id': idToHex(localId), 'cluster-id': idToHex(clusterId),
      'initial-cluster': members.map((m) => `${m.name}=${m.peerUrls.join(',')}`).join(','),
    });
    const metadata = Buffer.from(JSON.stringify({ memberId: idToHex(localId), clusterId: idToHex(clusterId) }));
    const wal = await Wal.create(cfg.walDir, metadata, EtcdServer.walOptions(logger, metrics));
    const storage = new MemoryStorage();
    const node = new RawNode(EtcdServer.raftConfig(cfg, localId, storage, 0, logger));
    node.bootstrap(members.map((m) => ({ id: m.id, context: encodeMember(m) })));
    const membership = new Membership(clusterId);
    sm.setClusterId(clusterId);
    return new EtcdServer(cfg, logger, metrics, {
      memberId: localId, membership, node, storage, wal, stateMachine: sm, snapshotIndex: 0, confState: { voters: [], learners: [] },
    });
  }

  /**
   * --initial-cluster-state existing: ask the running members (the other URLs in
   * --initial-cluster) who is in the cluster, find ourselves among them by our advertised
   * peer URLs (added before with `member add`), and start with an empty log: the leader
   * sends us everything.
   */
  private static async joinExisting(cfg: ServerConfig, logger: Logger, metrics: ServerMetrics, sm: StateMachine): Promise<EtcdServer> {
    const own = new Set(cfg.initialAdvertisePeerUrls);
    const peerUrls = cfg.initialCluster.filter((m) => m.name !== cfg.name).flatMap((m) => m.peerUrls).filter((u) => !own.has(u));
    const { clusterId, members } = await fetchClusterFromPeers(peerUrls, logger, cfg.peerGet);
    const self = members.find((m) => m.peerUrls.some((u) => own.has(u)));
    if (!self) {
      throw new ConfigError(
        `this member (--initial-advertise-peer-urls=${cfg.initialAdvertisePeerUrls.join(',')}) is not a member of the running cluster ` +
          `${idToHex(clusterId)} (members: ${members.map((m) => `${m.name || 'unstarted'}=${m.peerUrls.join(',')}`).join(', ')}); ` +
          `add it first with: etcdctl member add ${cfg.name} --peer-urls=${cfg.initialAdvertisePeerUrls.join(',')}`,
      );
    }
    if (self.name !== '' && self.name !== cfg.name) {
      throw new ConfigError(
        `the running cluster already has a started member ${self.name} with peer URLs ${self.peerUrls.join(',')}; ` +
          `--name ${cfg.name} does not match it (a member's data dir may have been lost: remove and re-add the member)`,
      );
    }
    logger.info('joining an existing cluster', {
      'local-member-id': idToHex(self.id), 'cluster-id': idToHex(clusterId), members: members.map((m) => idToHex(m.id)),
    });
    const metadata = Buffer.from(JSON.stringify({ memberId: idToHex(self.id), clusterId: idToHex(clusterId) }));
    const wal = await Wal.create(cfg.walDir, metadata, EtcdServer.walOptions(logger, metrics));
    const storage = new MemoryStorage();
    const node = new RawNode(EtcdServer.raftConfig(cfg, self.id, storage, 0, logger));
    const membership = new Membership(clusterId);
    for (const m of members) membership.add(m);
    sm.setClusterId(clusterId);
    return new EtcdServer(cfg, logger, metrics, {
      memberId: self.id, membership, node, storage, wal, stateMachine: sm, snapshotIndex: 0, confState: { voters: [], learners: [] },
    });
  }

  private static async restart(cfg: ServerConfig, logger: Logger, metrics: ServerMetrics, sm: StateMachine): Promise<EtcdServer> {
    const opened = await Wal.open(cfg.walDir, EtcdServer.walOptions(logger, metrics));
    const meta = JSON.parse(Buffer.from(opened.metadata).toString('utf8')) as { memberId: string; clusterId: string };
    const memberId = BigInt('0x' + meta.memberId);
    const clusterId = BigInt('0x' + meta.clusterId);
    logger.info('restarting member from existing data dir; --initial-cluster, --initial-cluster-state and --initial-cluster-token are ignored', {
      'data-dir': cfg.dataDir, 'wal-dir': cfg.walDir, 'local-member-id': idToHex(memberId), 'cluster-id': idToHex(clusterId),
      'commit-index': opened.hardState.commit, 'wal-entries': opened.entries.length,
    });
    const storage = new MemoryStorage();
    let snapshotIndex = 0;
    let confState: ConfState = { voters: [], learners: [] };
    if (opened.snapshot) {
      storage.applySnapshot({ meta: opened.snapshot, data: new Uint8Array() });
      snapshotIndex = opened.snapshot.index;
      confState = opened.snapshot.confState;
    }
    let hardState = opened.hardState;
    let entries = opened.entries;
    if (cfg.forceNewCluster) {
      // Keep the committed log, commit the removal of every other member (etcd's recovery path).
      const forced = forceNewClusterLog(memberId, hardState, entries, opened.snapshot);
      await opened.wal.save(forced.hardState, forced.appended);
      entries = [...entries.filter((e) => e.index <= hardState.commit), ...forced.appended];
      hardState = forced.hardState;
      logger.warn('--force-new-cluster: this member restarts as the only member of its cluster', {
        'local-member-id': idToHex(memberId), 'removed-members': forced.removed.map(idToHex), 'commit-index': hardState.commit,
      });
    }
    storage.setHardState(hardState);
    storage.append(entries);
    if (sm.consistentIndex < snapshotIndex) {
      throw new ServerError(
        `backend is behind the WAL snapshot (applied index ${sm.consistentIndex} < snapshot index ${snapshotIndex}): the database under ${cfg.dataDir} does not belong to this WAL`,
      );
    }
    const membership = sm.loadMembership() ?? new Membership(clusterId);
    sm.setClusterId(clusterId);
    const node = new RawNode(EtcdServer.raftConfig(cfg, memberId, storage, snapshotIndex, logger));
    const server = new EtcdServer(cfg, logger, metrics, {
      memberId, membership, node, storage, wal: opened.wal, stateMachine: sm, snapshotIndex, confState,
    });
    server.currentTerm = hardState.term;
    server.committedIndex = hardState.commit;
    return server;
  }

  private static walOptions(logger: Logger, metrics: ServerMetrics) {
    const writtenBytes = counterCell(metrics.walWriteBytes);
    return {
      logger,
      onFsync: (seconds: number) => metrics.walFsyncSeconds.observe(seconds),
      onWriteBytes: (n: number) => writtenBytes.inc(n),
    };
  }

  private begin(): void {
    const m = this.metrics;
    m.serverId.set({ server_id: idToHex(this.memberId) }, 1);
    m.serverVersion.set({ server_version: this.cfg.etcdVersion }, 1);
    m.clusterVersion.set({ cluster_version: etcdApiVersion(this.cfg.etcdVersion) }, 1);
    m.quotaBackendBytes.set(this.cfg.quotaBackendBytes);
    // Read at scrape time rather than pushed on every proposal and batch.
    gaugeFrom(m.proposalsPending, () => this.waits.size);
    gaugeFrom(m.proposalsCommitted, () => this.committedIndex);
    gaugeFrom(m.proposalsApplied, () => this.appliedIndex);
    for (const member of this.membership.list()) {
      if (member.id !== this.memberId) this.transport.addPeer(member.id, member.peerUrls);
    }
    this.tickTimer = setInterval(() => this.onTick(), this.cfg.heartbeatIntervalMs);
    this.compactor = new Compactor(this.cfg.autoCompaction, {
      logger: this.logger,
      isLeader: () => this.isLeader,
      currentRevision: () => this.stateMachine.mvcc.currentRevision,
      compactRevision: () => this.stateMachine.mvcc.compactRevision,
      compact: async (revision) => {
        const msg = { revision, physical: false };
        await this.propose(RequestKind.Compact, encodePayload(RequestKind.Compact, msg), msg);
      },
    });
    this.compactor.start();
    // A member that is the only voter need not wait a whole election timeout to lead.
    const voters = this.confState.voters.length > 0 ? this.confState.voters : this.membership.list().filter((x) => !x.isLearner).map((x) => x.id);
    // (Raft refuses to campaign before the bootstrap conf changes are applied: see applyEntries.)
    if (voters.length <= 1) this.soloCampaignPending = true;
    this.scheduleReady();
    this.publishAttributesWhenLeaderKnown();
  }

  /** Graceful stop: refuse new work, let in-flight proposals finish, flush, close. */
  async stop(drainMs = 2000): Promise<void> {
    if (this.stopped) return;
    const deadline = Date.now() + drainMs;
    while (this.waits.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.commitBroadcastTimer) clearTimeout(this.commitBroadcastTimer);
    this.compactor?.stop();
    const err = Errors.stopped();
    this.waits.rejectAll(err);
    this.appliedWaits.rejectAll(err);
    for (const r of this.pendingReads) r.reject(err);
    this.pendingReads = [];
    if (this.readInFlight) for (const r of this.readInFlight.batch) r.reject(err);
    this.readInFlight = undefined;
    while (this.inReadyLoop) await new Promise((r) => setTimeout(r, 5));
    await this.applyChain.catch(() => {});
    await this.transport.stop();
    await this.wal.close();
    await this.stateMachine.close();
    this.logger.info('stopped member', { 'local-member-id': idToHex(this.memberId) });
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  // ------------------------------------------------------------------ accessors

  get clusterId(): bigint {
    return this.membership.clusterId;
  }
  get term(): number {
    return this.currentTerm;
  }
  get leader(): NodeId {
    return this.leaderId;
  }
  get isLeader(): boolean {
    return this.raftState === StateType.Leader;
  }
  get committed(): number {
    return this.committedIndex;
  }
  get applied(): number {
    return this.appliedIndex;
  }
  get isLearner(): boolean {
    return this.membership.get(this.memberId)?.isLearner ?? false;
  }
  get leaderSinceMs(): number {
    return this.leaderChangedAtMs;
  }
  get raftStatus() {
    return this.node.status();
  }
  get fatal(): Error | undefined {
    return this.fatalError;
  }

  // ------------------------------------------------------------------ proposals

  /**
   * Proposes a request through Raft and resolves with the state machine's result once the
   * entry is applied on this member. `decoded` is the already-decoded request; it is used
   * at apply time so the payload is not decoded twice.
   */
  propose(kind: RequestKind, payload: Uint8Array, decoded?: Msg): Promise<unknown> {
    if (this.stopped) return Promise.reject(Errors.stopped());
    if (this.fatalError) return Promise.reject(this.fatalError);
    if (this.committedIndex - this.appliedIndex > MAX_APPLY_LAG_ENTRIES || this.waits.size >= MAX_PENDING_PROPOSALS) {
      return Promise.reject(Errors.tooManyRequests());
    }
    if (payload.length > this.cfg.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    const id = this.idGen.nextId();
    const data = encodeRequest(kind, id, payload);
    const promise = this.waits.register<unknown>(id, Date.now() + this.requestTimeoutMs);
    if (decoded !== undefined) this.localDecoded.set(id, decoded);
    this.submit(id, data);
    return promise;
  }

  private submit(id: number, data: Buffer): void {
    try {
      this.node.propose(data);
      this.scheduleReady();
    } catch (e) {
      // Dropped: no leader yet (or a leader transfer in progress). Retry when a leader is
      // known; the sweep fails it with "request timed out" if none appears in time.
      if (!this.waits.has(id)) return;
      const retry = () => {
        this.leaderWatchers.delete(retry);
        if (this.waits.has(id) && !this.stopped) this.submit(id, data);
      };
      this.leaderWatchers.add(retry);
      if (!(e instanceof ErrProposalDropped)) this.logger.warn('proposal failed', { error: String(e) });
    }
  }

  proposeConfChange(cc: ConfChange): Promise<unknown> {
    if (this.stopped) return Promise.reject(Errors.stopped());
    const id = this.idGen.nextId();
    // The request ID travels in the context so the proposer can match the applied change.
    const ctx = Buffer.concat([Buffer.from([0]), Buffer.alloc(8), Buffer.from(cc.context)]);
    ctx.writeDoubleBE(id, 1);
    const promise = this.waits.register<unknown>(id, Date.now() + this.requestTimeoutMs);
    try {
      this.node.proposeConfChange({ ...cc, context: ctx });
      this.scheduleReady();
    } catch (e) {
      this.waits.reject(id, this.leaderId === NONE ? Errors.noLeader() : (e as Error));
    }
    return promise;
  }

  /** Resolves once this member has applied everything committed when the read began (ReadIndex). */
  linearizableRead(): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.stopped());
    return new Promise<void>((resolve, reject) => {
      this.pendingReads.push({ resolve, reject, deadlineMs: Date.now() + this.requestTimeoutMs });
      this.issueReadIndex();
    });
  }

  private issueReadIndex(): void {
    if (this.readInFlight || this.pendingReads.length === 0) return;
    const batch = this.pendingReads;
    this.pendingReads = [];
    const ctx = Buffer.alloc(8);
    ctx.writeDoubleBE(++this.readCounter);
    this.readInFlight = { ctx, batch, sentAtMs: Date.now() };
    this.node.readIndex(ctx);
    this.scheduleReady();
  }

  private onReadState(rs: ReadState): void {
    const inflight = this.readInFlight;
    if (!inflight || !Buffer.from(rs.requestCtx).equals(inflight.ctx)) return;
    this.readInFlight = undefined;
    const deadline = Math.min(...inflight.batch.map((r) => r.deadlineMs));
    this.appliedWaits.wait(rs.index, this.appliedIndex, deadline).then(
      () => { for (const r of inflight.batch) r.resolve(); },
      (e: Error) => { for (const r of inflight.batch) r.reject(e); },
    );
    this.issueReadIndex();
  }

  /** Waits until the local applied index reaches `index`. */
  waitApplied(index: number): Promise<void> {
    return this.appliedWaits.wait(index, this.appliedIndex, Date.now() + this.requestTimeoutMs);
  }

  /** Raft messages from peers (the peer transport calls this). */
  step(messages: Message[]): void {
    if (this.stopped) return;
    for (const m of messages) {
      try {
        this.node.step(m);
      } catch (e) {
        this.logger.warn('failed to process raft message', { error: (e as Error).message, from: idToHex(m.from), type: m.type });
      }
    }
    this.scheduleReady();
  }

  reportUnreachable(id: NodeId): void {
    if (!this.stopped) this.node.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (!this.stopped) this.node.reportSnapshot(id, ok);
  }

  // ------------------------------------------------------------------ snapshots from the leader

  /** Database image received for a snapshot message, waiting for Raft to accept it. */
  private incomingSnapshot?: { index: number; dir: string };

  /**
   * The peer layer streams a snapshot here: [u32 length][raft message][backend image]. The
   * image is restored into a new directory before Raft sees the message.
   */
  async receiveSnapshot(body: NodeJS.ReadableStream): Promise<void> {
    const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    let head: Buffer = Buffer.alloc(0);
    while (head.length < 4 || head.length < 4 + head.readUInt32BE(0)) {
      const r = await it.next();
      if (r.done) throw new Error('snapshot stream ended before its raft message');
      head = Buffer.concat([head, r.value]);
      if (head.length >= 4 && head.readUInt32BE(0) > 64 * 1024 * 1024) throw new Error('snapshot raft message too large');
    }
    const len = head.readUInt32BE(0);
    const msg = decodeMessage(head.subarray(4, 4 + len));
    if (msg.type !== MessageType.Snap || !msg.snapshot) throw new Error('not a snapshot message');
    const rest = head.subarray(4 + len);
    async function* remainder(): AsyncGenerator<Uint8Array> {
      if (rest.length > 0) yield rest;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    }
    const dir = path.join(path.dirname(this.stateMachine.dbDir), `db.incoming-${msg.snapshot.meta.index}-${Date.now()}`);
    await Backend.restoreSnapshot(dir, remainder());
    const previous = this.incomingSnapshot;
    this.incomingSnapshot = { index: msg.snapshot.meta.index, dir };
    if (previous) await fsp.rm(previous.dir, { recursive: true, force: true });
    this.logger.info('received database snapshot from the leader', { 'snapshot-index': msg.snapshot.meta.index, from: idToHex(msg.from) });
    this.step([msg]);
  }

  private async installSnapshot(snap: { meta: { index: number } }): Promise<void> {
    const incoming = this.incomingSnapshot;
    if (!incoming || incoming.index !== snap.meta.index) {
      throw new ServerError(`raft accepted snapshot ${snap.meta.index} but no database image for it was received`);
    }
    this.incomingSnapshot = undefined;
    await this.applyChain; // nothing may be applying to the old database
    await this.stateMachine.installSnapshot(incoming.dir);
  }

  /** The backend image sent with a snapshot message (the leader side). */
  snapshotSource(): import('node:stream').Readable {
    return this.stateMachine.backend.snapshot();
  }

  /** Calls `fn` once a leader is known (immediately if one is). */
  onLeaderKnown(fn: () => void): void {
    if (this.leaderId !== NONE) fn();
    else this.leaderWatchers.add(fn);
  }

  private onTick(): void {
    if (this.stopped) return;
    this.node.tick();
    const now = Date.now();
    const expired = this.waits.expire(now, () =>
      this.leaderId === NONE ? Errors.timeoutLeaderFail() : Errors.timeout(),
    );
    if (expired > 0) this.metrics.proposalsFailed.inc(expired);
    this.appliedWaits.expire(now, Errors.timeout);
    if (this.raftState === StateType.Leader) this.leaseHousekeeping(now);
    const inflight = this.readInFlight;
    if (inflight) {
      const live = inflight.batch.filter((r) => {
        if (r.deadlineMs > now) return true;
        r.reject(Errors.timeout());
        this.metrics.slowReadIndex.inc();
        return false;
      });
      if (live.length === 0) this.readInFlight = undefined;
      else if (now - inflight.sentAtMs > READ_INDEX_RETRY_MS) {
        // The ReadIndex may have been dropped (no leader, lost message): ask again.
        this.readInFlight = undefined;
        this.pendingReads.unshift(...live);
        this.issueReadIndex();
      } else inflight.batch = live;
    }
    this.scheduleReady();
  }

  // ------------------------------------------------------------------ leases

  private readonly revoking = new Set<bigint>();
  private lastLeaseCheckMs = 0;
  private lastCheckpointMs = Date.now();

  /** Leader only: revoke expired leases and checkpoint remaining TTLs, through Raft. */
  private leaseHousekeeping(nowMs: number): void {
    if (nowMs - this.lastLeaseCheckMs < LEASE_CHECK_INTERVAL_MS) return;
    this.lastLeaseCheckMs = nowMs;
    const lessor = this.stateMachine.lessor;
    for (const id of lessor.expired(LEASE_REVOKE_BATCH)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      const payload = encodePayload(RequestKind.LeaseRevoke, { ID: toLong(id, false) });
      this.propose(RequestKind.LeaseRevoke, payload, { ID: toLong(id, false) })
        .then(() => this.metrics.leaseExpired.inc(), () => {})
        .finally(() => this.revoking.delete(id));
    }
    if (nowMs - this.lastCheckpointMs >= LEASE_CHECKPOINT_INTERVAL_MS) {
      this.lastCheckpointMs = nowMs;
      const cps = lessor.checkpoints();
      if (cps.length > 0) {
        const msg = { checkpoints: cps.map((c) => ({ id: c.id.toString(), remainingTtlSec: c.remainingTtlSec })) };
        this.propose(RequestKind.LeaseCheckpoint, encodePayload(RequestKind.LeaseCheckpoint, msg), msg).catch(() => {});
      }
    }
  }

  /** Keep-alive: only the leader renews (followers forward, see leaseForwarder). */
  async renewLease(id: bigint): Promise<number> {
    if (!this.isLeader) {
      if (this.leaseForwarder) return this.leaseForwarder(id);
      throw Errors.notLeader();
    }
    // Make sure a revoke/grant committed before this keep-alive is visible.
    await this.waitApplied(this.committedIndex);
    const lessor = this.stateMachine.lessor;
    if (!lessor.exists(id)) return 0;
    return lessor.renew(id);
  }

  /** Called once when this member applies its own removal (main stops the process). */
  onRemoved?: () => void;

  /** Set by the peer layer: forwards a keep-alive to the current leader. */
  leaseForwarder?: (id: bigint) => Promise<number>;
  /** Set by the peer layer: asks the current leader for a lease's remaining TTL. */
  leaseTtlForwarder?: (id: bigint) => Promise<number>;

  /** Remaining TTL in seconds as the leader sees it (-1: no such lease). */
  async leaseRemainingSec(id: bigint): Promise<number> {
    if (this.isLeader || !this.leaseTtlForwarder) return this.stateMachine.lessor.remainingSec(id);
    return this.leaseTtlForwarder(id);
  }

  // ------------------------------------------------------------------ ready loop

  private scheduleReady(): void {
    if (this.readyScheduled || this.inReadyLoop) return;
    this.readyScheduled = true;
    setImmediate(this.runReadyLoop);
  }

  private readonly runReadyLoop = async (): Promise<void> => {
    this.readyScheduled = false;
    // After a failure the last Ready was never advanced: Raft must not hand out another.
    if (this.inReadyLoop || this.stopped || this.fatalError) return;
    this.inReadyLoop = true;
    // Committed entries of the previous Ready, already durable. They are applied only once
    // the next Ready's WAL write has been issued, so that the disk syncs the next batch while
    // the event loop applies and answers this one (instead of idling through either).
    let durableCommitted: Entry[] | undefined;
    try {
      while (!this.stopped && this.node.hasReady()) {
        const previous = durableCommitted;
        durableCommitted = undefined; // processReady schedules it
        durableCommitted = await this.processReady(this.node.ready(), previous);
      }
    } catch (e) {
      this.onFatal(e as Error);
    } finally {
      if (durableCommitted) this.scheduleApply(durableCommitted);
      this.inReadyLoop = false;
      if (!this.stopped && this.node.hasPendingCommitBroadcast()) this.armCommitBroadcast();
    }
  };

  /**
   * A commit index the followers were not told yet (deferCommitBroadcast) goes out after a
   * short delay, unless the next append carries it first, which it does under load: one
   * message per follower per write instead of two (and no acknowledgement of the second).
   */
  private armCommitBroadcast(): void {
    if (this.commitBroadcastTimer) return;
    this.commitBroadcastTimer = setTimeout(() => {
      this.commitBroadcastTimer = undefined;
      if (this.stopped) return;
      this.node.broadcastCommit();
      this.scheduleReady();
    }, COMMIT_BROADCAST_DELAY_MS);
  }

  /**
   * Sends a deferred commit index now. Applying runs on the thread that sends heartbeats:
   * while the leader applies a request that may take long (deleting many keys), followers
   * hear nothing. Told the commit first, they apply the same request meanwhile instead of
   * counting the silence towards an election timeout.
   */
  private tellFollowersTheCommit(): void {
    if (this.raftState !== StateType.Leader || !this.node.hasPendingCommitBroadcast()) return;
    this.node.broadcastCommit();
    const messages = this.node.takeLeaderMessages();
    if (messages.length > 0) this.transport.send(messages);
  }

  private scheduleApply(entries: Entry[]): void {
    this.applyChain = this.applyChain.then(() => this.applyEntries(entries)).catch((e: Error) => this.onFatal(e));
  }

  private onFatal(e: Error): void {
    if (this.fatalError) return; // the first failure is the one that explains the rest
    this.fatalError = e;
    this.logger.error('ready loop failed; this member stops serving writes', { error: e.message, stack: e.stack });
    this.waits.rejectAll(e);
  }

  /**
   * Persists, sends and hands over one Ready; returns its committed entries, to be applied
   * by the caller once they are durable (they are: this Ready's fsync covers every entry
   * written so far). `previousCommitted` (durable already) is applied right after this
   * Ready's WAL write is issued.
   */
  private async processReady(rd: Ready, previousCommitted: Entry[] | undefined): Promise<Entry[] | undefined> {
    if (rd.softState) this.onSoftState(rd.softState.lead, rd.softState.state);
    for (const rs of rd.readStates) this.onReadState(rs);
    const leader = this.raftState === StateType.Leader;
    // Raft allows a leader to send before its own fsync: followers persist in parallel.
    // send() writes before returning, so they are on the wire before our own fdatasync.
    if (leader && rd.messages.length > 0) this.transport.send(rd.messages);
    // A follower's own replies (append and vote responses) promise that what they answer
    // for is on disk, so they wait for this Ready's fdatasync. A forwarded proposal or
    // read-index request promises nothing: it goes now, not one fsync later (under load a
    // follower has an append to sync in almost every Ready, and its clients' writes waited).
    let afterSync = rd.messages;
    if (!leader && rd.messages.length > 0) afterSync = this.sendUnsyncedMessages(rd.messages);
    if (rd.snapshot) {
      // The previous entries belong to the old database: apply them before it is replaced.
      if (previousCommitted) this.scheduleApply(previousCommitted);
      previousCommitted = undefined;
      await this.installSnapshot(rd.snapshot);
    }
    let durable: Promise<void> | undefined;
    if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
      if (rd.snapshot) await this.wal.saveSnapshot(rd.snapshot.meta);
      // An idle WAL writes before save() returns; only the fdatasync is still running. When
      // nothing else could run meanwhile (nothing to apply, every waiting proposal is in this
      // Ready: closed-loop clients send nothing new until answered), the WAL may sync on this
      // thread, which is quicker than through the thread pool (see Wal.save).
      const mayBlock = previousCommitted === undefined && !rd.snapshot && this.waits.size <= rd.entries.length;
      durable = this.wal.save(rd.hardState, rd.entries, { mayBlock });
    }
    if (previousCommitted) this.scheduleApply(previousCommitted);
    if (durable) await durable;
    if (rd.snapshot) {
      this.storage.applySnapshot(rd.snapshot);
      this.snapshotIndex = rd.snapshot.meta.index;
      this.confState = rd.snapshot.meta.confState;
      this.appliedIndex = Math.max(this.appliedIndex, rd.snapshot.meta.index);
      this.reloadMembershipFromStateMachine();
    }
    if (rd.hardState) {
      this.storage.setHardState(rd.hardState);
      if (rd.hardState.term !== this.currentTerm) this.currentTerm = rd.hardState.term;
      this.committedIndex = Math.max(this.committedIndex, rd.hardState.commit);
    }
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (!leader && afterSync.length > 0) this.transport.send(afterSync);
    this.node.advance(rd);
    return rd.committedEntries.length > 0 ? rd.committedEntries : undefined;
  }

  /** Sends the messages that need nothing durable first; returns the others, in order. */
  private sendUnsyncedMessages(messages: Message[]): Message[] {
    let now: Message[] | undefined;
    let later: Message[] | undefined;
    for (const m of messages) {
      if (m.type === MessageType.Prop || m.type === MessageType.ReadIndex) (now ??= []).push(m);
      else (later ??= []).push(m);
    }
    if (now === undefined) return messages;
    this.transport.send(now);
    return later ?? [];
  }

  private onSoftState(lead: NodeId, state: StateType): void {
    const leaderChanged = lead !== this.leaderId;
    this.raftState = state;
    this.metrics.isLeader.set(state === StateType.Leader ? 1 : 0);
    this.metrics.hasLeader.set(lead !== NONE ? 1 : 0);
    if (!leaderChanged) return;
    this.leaderId = lead;
    this.leaderChangedAtMs = Date.now();
    if (lead !== NONE) {
      this.metrics.leaderChanges.inc();
      this.logger.info(lead === this.memberId ? 'this member became the leader' : 'leader is known', {
        'local-member-id': idToHex(this.memberId), 'leader-id': idToHex(lead), term: this.currentTerm,
      });
      const watchers = [...this.leaderWatchers];
      this.leaderWatchers.clear();
      for (const w of watchers) w();
    } else {
      this.logger.warn('lost the leader', { 'local-member-id': idToHex(this.memberId) });
    }
    this.stateMachine.onLeaderChange(state === StateType.Leader);
  }

  // ------------------------------------------------------------------ apply

  private async applyEntries(entries: Entry[]): Promise<void> {
    for (const e of entries) {
      if (e.index <= this.appliedIndex) continue;
      if (e.type === EntryType.ConfChange) this.applyConfChangeEntry(e);
      else if (e.data.length > 0) {
        const r = this.applyNormal(e);
        if (r instanceof Promise) await r;
      } else if (e.index > this.stateMachine.consistentIndex) {
        this.stateMachine.setConsistentIndex(e.index); // the new leader's empty entry
      }
      if (e.index > this.appliedIndex) this.appliedIndex = e.index;
      if (this.stopped) return;
    }
    if (this.soloCampaignPending && this.leaderId === NONE && this.confState.voters.length === 1 && this.confState.voters[0] === this.memberId) {
      this.soloCampaignPending = false;
      this.node.campaign();
      this.scheduleReady();
    }
    this.appliedWaits.trigger(this.appliedIndex);
    if (this.appliedIndex - this.snapshotIndex >= this.cfg.snapshotCount && !this.snapshotting) {
      // Off the apply path: the backend commit a snapshot needs must not stall every apply
      // (and so every client response) behind it.
      this.snapshotting = true;
      this.snapshot()
        .catch((e: Error) => this.logger.warn('snapshot failed; will retry', { error: e.message }))
        .finally(() => (this.snapshotting = false));
    }
  }

  /**
   * Every member applies the same entry at about the same time, and applying runs on the
   * thread that heartbeats: after blocking for `busyMs`, grant the other members as much
   * silence before counting towards an election (a follower) or a step-down (the leader).
   * Three members on two cores apply one large delete in 1.0-1.8 s each; without this the
   * first one done could start an election while the others were still applying.
   */
  private afterBusyApply(busyMs: number): void {
    if (busyMs < this.cfg.heartbeatIntervalMs) return;
    this.node.postponeElection(Math.ceil(busyMs / this.cfg.heartbeatIntervalMs));
  }

  private applyNormal(e: Entry): void | Promise<void> {
    const { kind, requestId } = decodeHeader(e.data);
    const local = this.localDecoded.get(requestId);
    if (local !== undefined) this.localDecoded.delete(requestId);
    if (e.index <= this.stateMachine.consistentIndex) {
      // Already in the backend before a restart: never apply twice.
      this.waits.resolve(requestId, undefined);
      return;
    }
    const msg = local !== undefined ? local : internalFromPb(kind, decodePayload(kind, payloadOf(e.data)));
    if (mayApplySlowly(kind, msg)) this.tellFollowersTheCommit();
    const start = performance.now();
    const settle = (result: unknown, err?: Error) => {
      const ms = performance.now() - start;
      if (ms > 100) {
        this.metrics.slowApply.inc();
        this.logger.warn('apply request took too long', { took: `${ms.toFixed(1)}ms`, 'expected-duration': '100ms', kind: RequestKind[kind] });
      }
      if (err) this.waits.reject(requestId, err);
      else this.waits.resolve(requestId, result);
    };
    let out: unknown;
    try {
      out = this.stateMachine.apply(kind, msg, e.index, this);
    } catch (err) {
      this.stateMachine.setConsistentIndex(e.index);
      settle(undefined, err as Error);
      return;
    } finally {
      this.afterBusyApply(performance.now() - start); // the synchronous part held the thread
    }
    if (out instanceof Promise) {
      return out.then(
        (r) => settle(r),
        (err: Error) => { this.stateMachine.setConsistentIndex(e.index); settle(undefined, err); },
      );
    }
    settle(out);
    return;
  }

  private applyConfChangeEntry(e: Entry): void {
    const cc = decodeConfChange(e.data);
    this.confState = this.node.applyConfChange(cc);
    let requestId: number | undefined;
    let memberBytes: Uint8Array = cc.context;
    // Proposals made through proposeConfChange carry [0][request id][member]; bootstrap entries carry the member only.
    if (cc.context.length >= 9 && cc.context[0] === 0) {
      requestId = Buffer.from(cc.context.buffer, cc.context.byteOffset, cc.context.byteLength).readDoubleBE(1);
      memberBytes = cc.context.subarray(9);
    }
    if (e.index > this.stateMachine.consistentIndex) {
      this.applyMembershipChange(cc, memberBytes);
      this.stateMachine.saveMembership(this.membership, e.index);
    }
    if (requestId !== undefined) this.waits.resolve(requestId, this.membership.list());
  }

  private applyMembershipChange(cc: ConfChange, memberBytes: Uint8Array): void {
    const ms = this.membership;
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearnerNode: {
        const m: Member = memberBytes.length > 0 ? decodeMember(memberBytes) : { id: cc.nodeId, name: '', peerUrls: [], clientUrls: [], isLearner: false };
        const existing = ms.get(cc.nodeId);
        if (existing && cc.type === ConfChangeType.AddNode && existing.isLearner) {
          ms.promote(cc.nodeId);
          this.logger.info('promoted learner to voting member', { 'member-id': idToHex(cc.nodeId) });
        } else {
          ms.add({ ...m, id: cc.nodeId, isLearner: cc.type === ConfChangeType.AddLearnerNode });
          this.logger.info('added member', { 'member-id': idToHex(cc.nodeId), 'peer-urls': m.peerUrls, learner: cc.type === ConfChangeType.AddLearnerNode });
        }
        if (cc.nodeId !== this.memberId) this.transport.addPeer(cc.nodeId, ms.get(cc.nodeId)!.peerUrls);
        break;
      }
      case ConfChangeType.RemoveNode:
        ms.remove(cc.nodeId);
        if (cc.nodeId !== this.memberId) this.transport.removePeer(cc.nodeId);
        this.logger.info('removed member', { 'member-id': idToHex(cc.nodeId) });
        if (cc.nodeId === this.memberId) {
          this.logger.warn('this member has been permanently removed from the cluster; shutting down', { 'local-member-id': idToHex(this.memberId) });
          // Let the apply finish (and the proposer get its answer), then stop.
          setTimeout(() => this.onRemoved?.(), 1000).unref();
        }
        break;
      case ConfChangeType.UpdateNode: {
        const m = decodeMember(memberBytes);
        ms.updatePeerUrls(cc.nodeId, m.peerUrls);
        if (cc.nodeId !== this.memberId) this.transport.updatePeer(cc.nodeId, m.peerUrls);
        break;
      }
    }
  }

  private reloadMembershipFromStateMachine(): void {
    const loaded = this.stateMachine.loadMembership();
    if (!loaded) return;
    for (const m of this.membership.list()) if (!loaded.get(m.id)) this.transport.removePeer(m.id);
    for (const m of loaded.list()) {
      this.membership.add(m);
      if (m.id !== this.memberId) this.transport.addPeer(m.id, m.peerUrls);
    }
    for (const id of loaded.removedIds()) {
      this.membership.markRemoved(id);
      this.membership.remove(id);
    }
  }

  /** After start, a member publishes its name and client URLs through Raft (etcd does the same). */
  private publishAttributesWhenLeaderKnown(): void {
    const attempt = () => {
      if (this.stopped) return;
      const self = this.membership.get(this.memberId);
      if (self && self.name === this.cfg.name && sameUrls(self.clientUrls, this.cfg.advertiseClientUrls)) return;
      this.propose(RequestKind.MemberAttributes, Buffer.from(JSON.stringify({
        id: idToHex(this.memberId), name: this.cfg.name, clientUrls: this.cfg.advertiseClientUrls,
      }))).then(
        () => this.logger.info('published local member to cluster through raft', {
          'local-member-id': idToHex(this.memberId), 'local-member-attributes': `{Name:${this.cfg.name} ClientURLs:[${this.cfg.advertiseClientUrls.join(' ')}]}`,
          'cluster-id': idToHex(this.clusterId),
        }),
        (e: Error) => {
          if (this.stopped) return;
          this.logger.warn('failed to publish local member; retrying', { error: e.message });
          setTimeout(() => this.onLeaderKnown(attempt), 500).unref();
        },
      );
    };
    this.onLeaderKnown(attempt);
  }

  /** Applies a published MemberAttributes request (called by the state machine). */
  applyMemberAttributes(payload: { id: string; name: string; clientUrls: string[] }, index: number): void {
    this.membership.setAttributes(BigInt('0x' + payload.id), payload.name, payload.clientUrls);
    this.stateMachine.saveMembership(this.membership, index);
  }

  /**
   * Raft snapshot: the backend already holds the state; once it is committed to disk the
   * WAL before this index is no longer needed for local recovery.
   */
  private snapshotting = false;

  private async snapshot(): Promise<void> {
    // Everything applied up to `index` is in the backend's pending batch now; the commit
    // below makes it durable (it may include later applies too: consistentIndex >= index).
    const index = this.appliedIndex;
    const term = this.storage.term(index);
    const confState = this.confState;
    await this.stateMachine.forceCommit();
    if (index <= this.snapshotIndex) return; // a snapshot from the leader got there first
    const meta = { index, term, confState };
    this.storage.createSnapshot(index, confState, new Uint8Array());
    await this.wal.saveSnapshot(meta);
    const compactTo = index - this.cfg.snapshotCatchupEntries;
    if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo);
    await this.wal.releaseTo(index);
    this.snapshotIndex = index;
    this.logger.info('saved snapshot and released WAL', { 'snapshot-index': index, 'compacted-raft-log-index': Math.max(compactTo, 0) });
  }

  // ------------------------------------------------------------------ membership changes

  /** etcd requires every voter to have been connected this long before a reconfiguration. */
  static readonly HEALTH_INTERVAL_MS = 5000;

  private requireLeaderForReconfig(): void {
    if (this.leaderId === NONE) throw Errors.noLeader();
  }

  /**
   * The quorum checks of --strict-reconfig-check. Where etcd only says "unhealthy cluster",
   * the error detail says which member is not connected, for how long, and when to retry.
   */
  private checkVotersConnected(action: string): void {
    if (!this.cfg.strictReconfigCheck) return;
    const now = Date.now();
    const problems: string[] = [];
    let retryAtMs = 0;
    for (const m of this.membership.list()) {
      if (m.isLearner || m.id === this.memberId) continue;
      const since = this.transport.activeSince(m.id);
      if (since === undefined) problems.push(`member ${idToHex(m.id)} (${m.name || 'unstarted'}) is not connected`);
      else if (now - since < EtcdServer.HEALTH_INTERVAL_MS) {
        problems.push(`member ${idToHex(m.id)} (${m.name || 'unstarted'}) connected only ${now - since}ms ago`);
        retryAtMs = Math.max(retryAtMs, since + EtcdServer.HEALTH_INTERVAL_MS);
      }
    }
    if (problems.length === 0) return;
    const retry = retryAtMs > 0 ? `; retry in ${Math.ceil((retryAtMs - now) / 1000)}s` : '; retry once it is reachable';
    const why = `${action} refused: every voting member must be connected for ${EtcdServer.HEALTH_INTERVAL_MS / 1000}s first: ${problems.join('; ')}${retry}`;
    this.logger.warn(why);
    throw Errors.unhealthy(why);
  }

  private startedVoters(): number {
    return this.membership.list().filter((m) => !m.isLearner && m.name !== '').length;
  }

  async addMember(peerUrls: string[], isLearner: boolean): Promise<Member> {
    this.requireLeaderForReconfig();
    for (const u of peerUrls) if (this.membership.peerUrlInUse(u)) throw Errors.peerUrlExists();
    if (isLearner) {
      if (this.membership.learnerCount() >= this.cfg.maxLearners) throw Errors.tooManyLearners();
    } else if (this.cfg.strictReconfigCheck) {
      const voters = this.membership.voterCount() + 1;
      const started = this.startedVoters();
      // Adding a second member to a one-member cluster is allowed (etcd's restore path).
      if (!(started === 1 && voters === 2) && started < Math.floor(voters / 2) + 1) throw Errors.notEnoughStarted();
      this.checkVotersConnected('member add');
    }
    const id = computeMemberId(peerUrls, '', Date.now() / 1000);
    if (this.membership.get(id)) throw Errors.memberIdExists();
    const member: Member = { id, name: '', peerUrls: [...peerUrls].sort(), clientUrls: [], isLearner };
    await this.proposeConfChange({
      type: isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, nodeId: id, context: encodeMember(member),
    });
    return this.membership.get(id) ?? member;
  }

  async removeMember(id: bigint): Promise<void> {
    this.requireLeaderForReconfig();
    const m = this.membership.get(id);
    if (!m) throw Errors.memberNotFound();
    if (this.cfg.strictReconfigCheck && !m.isLearner) {
      // After removal, the remaining started voters must still form a quorum.
      const voters = this.membership.voterCount() - 1;
      const startedOthers = this.membership.list().filter((x) => !x.isLearner && x.id !== id && (x.id === this.memberId || this.transport.activeSince(x.id) !== undefined)).length;
      if (voters > 0 && startedOthers < Math.floor(voters / 2) + 1) throw Errors.notEnoughStarted();
    }
    await this.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: id, context: encodeMember(m) });
  }

  async updateMember(id: bigint, peerUrls: string[]): Promise<void> {
    this.requireLeaderForReconfig();
    const m = this.membership.get(id);
    if (!m) throw Errors.memberNotFound();
    for (const u of peerUrls) if (this.membership.peerUrlInUse(u, id)) throw Errors.peerUrlExists();
    await this.proposeConfChange({ type: ConfChangeType.UpdateNode, nodeId: id, context: encodeMember({ ...m, peerUrls }) });
  }

  async promoteMember(id: bigint): Promise<void> {
    this.requireLeaderForReconfig();
    const m = this.membership.get(id);
    if (!m) throw Errors.memberNotFound();
    if (!m.isLearner) throw Errors.memberNotLearner();
    const pr = this.node.status().progress?.get(id);
    const leaderLast = this.storage.lastIndex();
    // etcd: a learner is "in sync" when its match index is within 90% of the leader's.
    if (!pr || pr.match < leaderLast * 0.9) throw Errors.learnerNotReady();
    await this.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: encodeMember({ ...m, isLearner: false }) });
  }

  async transferLeadership(target: bigint): Promise<void> {
    this.node.transferLeader(target);
    this.scheduleReady();
    const deadline = Date.now() + this.cfg.electionTimeoutMs * 3;
    while (Date.now() < deadline) {
      if (this.leaderId === target) return;
      await new Promise((r) => setTimeout(r, this.cfg.heartbeatIntervalMs));
    }
    throw Errors.timeoutLeaderFail();
  }

  private raisingAlarm = false;

  /** Raises an alarm for this member through Raft (once at a time), as etcd does for NOSPACE. */
  raiseAlarm(alarm: AlarmType): void {
    if (this.raisingAlarm || this.stateMachine.alarms().some((a) => a.alarm === alarm && a.memberId === this.memberId)) return;
    this.raisingAlarm = true;
    const msg = { action: 1, memberID: toLong(this.memberId), alarm };
    this.logger.warn('raising alarm', { alarm: AlarmType[alarm], 'local-member-id': idToHex(this.memberId) });
    this.propose(RequestKind.Alarm, encodePayload(RequestKind.Alarm, msg), msg)
      .catch((e: Error) => this.logger.warn('failed to raise alarm', { error: e.message }))
      .finally(() => (this.raisingAlarm = false));
  }

  /** A random 8-byte token, used by health checks. */
  static randomToken(): string {
    return randomBytes(8).toString('hex');
  }
}

function sameUrls(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}

/** GET /members from the first peer that answers; its X-Etcd-Cluster-ID header names the cluster. */
async function fetchClusterFromPeers(peerUrls: string[], logger: Logger, peerGet: PeerGet = fetchGet): Promise<{ clusterId: bigint; members: Member[] }> {
  const errors: string[] = [];
  for (const url of peerUrls) {
    try {
      const res = await peerGet(new URL('/members', url), 3000);
      if (res.status !== 200) throw new Error(`HTTP ${res.status}${res.body ? `: ${res.body.slice(0, 300)}` : ''}`);
      const clusterHeader = res.headers['x-etcd-cluster-id'];
      if (typeof clusterHeader !== 'string' || clusterHeader === '') throw new Error('no X-Etcd-Cluster-ID header (is it a tsetcd peer URL?)');
      const body = JSON.parse(res.body) as { id: string; name: string; peerURLs: string[]; clientURLs: string[]; isLearner: boolean }[];
      return {
        clusterId: BigInt('0x' + clusterHeader),
        members: body.map((m) => ({ id: BigInt('0x' + m.id), name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs, isLearner: m.isLearner })),
      };
    } catch (e) {
      errors.push(`${url}: ${(e as Error).message}`);
      logger.warn('could not get the cluster membership from peer', { url, error: (e as Error).message });
    }
  }
  throw new ConfigError(
    `--initial-cluster-state existing: no running member answered (${errors.join('; ') || 'no other members in --initial-cluster'}); ` +
      `start this member once the cluster runs, and list its members in --initial-cluster`,
  );
}

/** The default PeerGet: fetch (plain http peer URLs only). */
async function fetchGet(url: URL, timeoutMs: number): ReturnType<PeerGet> {
  if (url.protocol === 'https:') throw new Error(`${url.origin} is https, but this member has no peer TLS configuration`);
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}
