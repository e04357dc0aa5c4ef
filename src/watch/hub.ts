import type { Backend } from '../backend/index.js';
import type { MvccStore } from '../mvcc/store.js';
import { EventType, type KeyValue, type MvccEvent } from '../mvcc/types.js';
import type { Logger } from '../log/logger.js';
import { readHistory, type RevisionEvents } from './history.js';

// The watch hub: every watcher on this member, fed by the MVCC store's event callback.
// A watcher is "synced" when it has seen everything up to the current revision and gets
// new events as they are applied; otherwise it is "unsynced" and catches up from the
// backend's history in bounded chunks. A watcher whose stream is congested is moved to
// unsynced (it stops receiving pushes) and catches up once the stream drains, so a slow
// reader never blocks writes and never makes the server buffer without bound.
// Guarantees: in revision order, no gaps, no duplicates, one revision per response.

export interface WatchSpec {
  key: Buffer;
  /** Empty = the single key; "\0" = every key >= key; otherwise [key, rangeEnd). */
  rangeEnd: Buffer;
  /** 0 = from the next revision. */
  startRevision: number;
  noPut: boolean;
  noDelete: boolean;
  prevKv: boolean;
  progressNotify: boolean;
}

/** Where a watcher's output goes (one per gRPC stream). */
export interface WatchSink {
  /**
   * Delivers events of ONE revision; returns false when the stream is congested. Events
   * may carry prevKv even if the watcher did not ask for it (spec.prevKv decides).
   */
  events(watcher: Watcher, revision: number, events: MvccEvent[]): boolean;
  /** The watcher's start revision has been compacted: it is cancelled. */
  compacted(watcher: Watcher, compactRevision: number): void;
  progress(watcher: Watcher, revision: number): void;
  /** All of the sink's watchers are synced again (RequestProgress may be answered). */
  synced(): void;
  congested(): boolean;
}

/** Events read per catch-up step; bounds memory per unsynced watcher. */
const CATCHUP_BATCH_EVENTS = 1000;

export class Watcher {
  /** Next revision this watcher must see. */
  nextRev: number;
  synced = false;
  cancelled = false;
  catchingUp = false;
  lastSentAtMs = Date.now();
  private readonly single: boolean;
  private readonly toEnd: boolean;

  constructor(
    readonly id: number,
    readonly spec: WatchSpec,
    readonly sink: WatchSink,
    startFrom: number,
  ) {
    this.nextRev = startFrom;
    this.single = spec.rangeEnd.length === 0;
    this.toEnd = spec.rangeEnd.length === 1 && spec.rangeEnd[0] === 0;
  }

  get isSingleKey(): boolean {
    return this.single;
  }

  matches(key: Buffer): boolean {
    if (this.single) return key.equals(this.spec.key);
    if (Buffer.compare(key, this.spec.key) < 0) return false;
    return this.toEnd || Buffer.compare(key, this.spec.rangeEnd) < 0;
  }

  /** The watcher's filter applied to one revision's events (null when nothing is left). */
  select(events: MvccEvent[]): MvccEvent[] | null {
    let out: MvccEvent[] | null = null;
    for (const ev of events) {
      if (ev.type === EventType.PUT ? this.spec.noPut : this.spec.noDelete) continue;
      if (!this.matches(ev.kv.key)) continue;
      // The event as applied (shared by every watcher): the sink leaves prevKv out unless
      // this watcher asked for it, so that each event is encoded once per form.
      (out ??= []).push(ev);
    }
    return out;
  }
}

export class WatchHub {
  /** Synced single-key watchers by key (latin1), and synced range watchers. */
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private total = 0;

  constructor(
    private mvcc: MvccStore,
    private backend: Backend,
    private readonly logger: Logger,
  ) {
    mvcc.onEvents = (revision, events) => this.onEvents(revision, events);
  }

  /**
   * The member installed a new database image: every watcher catches up from the new
   * history (or is cancelled as compacted if its next revision is no longer there).
   */
  rebind(mvcc: MvccStore, backend: Backend): void {
    this.mvcc = mvcc;
    this.backend = backend;
    mvcc.onEvents = (revision, events) => this.onEvents(revision, events);
    const all = [...this.ranges];
    for (const set of this.byKey.values()) all.push(...set);
    for (const w of all) {
      this.detachSynced(w);
      this.unsynced.add(w);
    }
    for (const w of this.unsynced) if (!w.catchingUp) void this.catchUp(w);
  }

  get watcherCount(): number {
    return this.total;
  }

  get unsyncedCount(): number {
    return this.unsynced.size;
  }

  add(id: number, spec: WatchSpec, sink: WatchSink): Watcher {
    const current = this.mvcc.currentRevision;
    const start = spec.startRevision > 0 ? spec.startRevision : current + 1;
    const w = new Watcher(id, spec, sink, start);
    this.total++;
    if (start > current) this.markSynced(w);
    else {
      this.unsynced.add(w);
      void this.catchUp(w);
    }
    return w;
  }

  remove(w: Watcher): void {
    if (w.cancelled) return;
    w.cancelled = true;
    this.total--;
    this.unsynced.delete(w);
    this.detachSynced(w);
  }

  /** The sink drained: resume its watchers that fell behind. */
  resume(sink: WatchSink): void {
    for (const w of this.unsynced) if (w.sink === sink && !w.catchingUp) void this.catchUp(w);
  }

  /** True when every watcher of this sink is synced. */
  allSynced(sink: WatchSink): boolean {
    for (const w of this.unsynced) if (w.sink === sink) return false;
    return true;
  }

  get currentRevision(): number {
    return this.mvcc.currentRevision;
  }

  /** Periodic progress notifications for idle synced watchers that asked for them. */
  notifyProgress(intervalMs: number, nowMs = Date.now()): void {
    const rev = this.mvcc.currentRevision;
    const visit = (w: Watcher) => {
      if (w.spec.progressNotify && nowMs - w.lastSentAtMs >= intervalMs && !w.sink.congested()) {
        w.lastSentAtMs = nowMs;
        w.sink.progress(w, rev);
      }
    };
    for (const set of this.byKey.values()) for (const w of set) visit(w);
    for (const w of this.ranges) visit(w);
  }

  private markSynced(w: Watcher): void {
    w.synced = true;
    if (w.isSingleKey) {
      const k = w.spec.key.toString('latin1');
      let set = this.byKey.get(k);
      if (!set) this.byKey.set(k, (set = new Set()));
      set.add(w);
    } else this.ranges.add(w);
  }

  private detachSynced(w: Watcher): void {
    if (!w.synced) return;
    w.synced = false;
    if (w.isSingleKey) {
      const k = w.spec.key.toString('latin1');
      const set = this.byKey.get(k);
      set?.delete(w);
      if (set && set.size === 0) this.byKey.delete(k);
    } else this.ranges.delete(w);
  }

  private onEvents(revision: number, events: MvccEvent[]): void {
    if (this.total === 0) return;
    const targets = new Set<Watcher>();
    for (const ev of events) {
      const set = this.byKey.get(ev.kv.key.toString('latin1'));
      if (set) for (const w of set) targets.add(w);
    }
    for (const w of this.ranges) targets.add(w);
    for (const w of targets) this.deliver(w, revision, events);
  }

  private deliver(w: Watcher, revision: number, events: MvccEvent[]): void {
    if (revision < w.nextRev) return;
    const selected = w.select(events);
    w.nextRev = revision + 1;
    if (!selected) return;
    w.lastSentAtMs = Date.now();
    const ok = w.sink.events(w, revision, selected);
    if (!ok) {
      // Congested: stop pushing; catch up from history once the stream drains.
      this.detachSynced(w);
      this.unsynced.add(w);
    }
  }

  private async catchUp(w: Watcher): Promise<void> {
    if (w.catchingUp) return;
    w.catchingUp = true;
    try {
      while (!w.cancelled && !w.sink.congested()) {
        const compactRev = this.mvcc.compactRevision;
        if (w.nextRev <= compactRev) {
          this.remove(w);
          w.sink.compacted(w, compactRev);
          return;
        }
        const target = this.mvcc.currentRevision;
        if (w.nextRev > target) {
          // Nothing was applied since the last read (this check and the switch are one synchronous step).
          this.unsynced.delete(w);
          this.markSynced(w);
          if (this.allSynced(w.sink)) w.sink.synced();
          return;
        }
        const from = w.nextRev;
        const groups = await this.readHistoryShared(from, target);
        if (w.cancelled) return;
        if (from <= this.mvcc.compactRevision) continue; // compacted while reading: reported above
        if (groups.length === 0) {
          w.nextRev = target + 1;
          continue;
        }
        for (const g of groups) {
          if (g.revision < w.nextRev) continue;
          let selected = w.select(g.events);
          w.nextRev = g.revision + 1;
          if (!selected) continue;
          if (w.spec.prevKv) selected = await this.withPrevKvs(selected, g.revision);
          if (w.cancelled) return;
          w.lastSentAtMs = Date.now();
          if (!w.sink.events(w, g.revision, selected)) break; // congested: resume() continues later
        }
      }
    } catch (e) {
      this.logger.warn('watch catch-up failed', { 'watch-id': w.id, error: (e as Error).message });
      // The history may have been compacted while reading: the next step reports it.
      if (!w.cancelled && w.nextRev <= this.mvcc.compactRevision) {
        this.remove(w);
        w.sink.compacted(w, this.mvcc.compactRevision);
      }
    } finally {
      w.catchingUp = false;
    }
  }

  /**
   * One backend read for every watcher that catches up over the same range at the same
   * time (the watchers of a stream that drained resume together): they share the events,
   * so each event is also encoded once. Only reads in flight are kept (read-only results).
   */
  private readHistoryShared(from: number, to: number): Promise<RevisionEvents[]> {
    const key = `${from}:${to}`;
    let read = this.historyReads.get(key);
    if (!read) {
      read = readHistory(this.backend, from, to, CATCHUP_BATCH_EVENTS);
      this.historyReads.set(key, read);
      const forget = () => this.historyReads.delete(key);
      read.then(forget, forget);
    }
    return read;
  }

  private readonly historyReads = new Map<string, Promise<RevisionEvents[]>>();

  private async withPrevKvs(events: MvccEvent[], revision: number): Promise<MvccEvent[]> {
    const out: MvccEvent[] = [];
    for (const ev of events) {
      let prevKv: KeyValue | undefined;
      if (revision - 1 > this.mvcc.compactRevision) {
        try {
          const r = await this.mvcc.range({ key: ev.kv.key, revision: revision - 1 });
          prevKv = r.kvs[0];
        } catch {
          prevKv = undefined; // compacted meanwhile: etcd also omits it
        }
      }
      out.push(prevKv ? { type: ev.type, kv: ev.kv, prevKv } : { type: ev.type, kv: ev.kv });
    }
    return out;
  }
}
