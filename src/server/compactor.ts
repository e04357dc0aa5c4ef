import type { Logger } from '../log/logger.js';

// Auto compaction (--auto-compaction-mode / --auto-compaction-retention), as etcd does it.
// Only the leader compacts; the compaction itself goes through Raft like a client's.
//  periodic: sample the revision every period/10 (at most every 6 minutes) and compact
//            to the newest sample that is at least `period` old.
//  revision: every 5 minutes, compact to current revision - retained revisions.

export interface CompactorDeps {
  logger: Logger;
  isLeader(): boolean;
  currentRevision(): number;
  compactRevision(): number;
  compact(revision: number): Promise<void>;
  now?: () => number;
}

export interface CompactorConfig {
  mode: 'periodic' | 'revision';
  periodMs: number;
  retainRevisions: number;
}

const REVISION_MODE_INTERVAL_MS = 5 * 60 * 1000;
const MAX_PERIODIC_INTERVAL_MS = 60 * 60 * 1000;

export class Compactor {
  private timer?: NodeJS.Timeout;
  private samples: { atMs: number; revision: number }[] = [];
  private running = false;
  private readonly now: () => number;

  constructor(private readonly cfg: CompactorConfig, private readonly deps: CompactorDeps) {
    this.now = deps.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.cfg.mode === 'periodic' ? this.cfg.periodMs > 0 : this.cfg.retainRevisions > 0;
  }

  /** How often run() is called. */
  get intervalMs(): number {
    if (this.cfg.mode === 'revision') return REVISION_MODE_INTERVAL_MS;
    return Math.max(1, Math.min(this.cfg.periodMs, MAX_PERIODIC_INTERVAL_MS) / 10);
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    this.deps.logger.info('auto compaction enabled', {
      mode: this.cfg.mode, retention: this.cfg.mode === 'periodic' ? `${this.cfg.periodMs}ms` : `${this.cfg.retainRevisions} revisions`,
    });
    this.timer = setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One step: record a sample (periodic) and compact if due. Exposed for tests. */
  async run(): Promise<number | undefined> {
    const now = this.now();
    const current = this.deps.currentRevision();
    let target: number | undefined;
    if (this.cfg.mode === 'periodic') {
      this.samples.push({ atMs: now, revision: current });
      const cutoff = now - this.cfg.periodMs;
      let pick = -1;
      for (let i = 0; i < this.samples.length; i++) if (this.samples[i]!.atMs <= cutoff) pick = i;
      if (pick >= 0) {
        target = this.samples[pick]!.revision;
        this.samples = this.samples.slice(pick); // keep the picked one: it may be needed again
      }
    } else {
      target = current - this.cfg.retainRevisions;
    }
    if (target === undefined || target <= 0 || target <= this.deps.compactRevision() || !this.deps.isLeader() || this.running) {
      return undefined;
    }
    this.running = true;
    try {
      await this.deps.compact(target);
      this.deps.logger.info('completed auto compaction', { 'compact-revision': target, mode: this.cfg.mode });
      return target;
    } catch (e) {
      this.deps.logger.warn('auto compaction failed', { 'compact-revision': target, error: (e as Error).message });
      return undefined;
    } finally {
      this.running = false;
    }
  }
}
