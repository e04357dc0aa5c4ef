// Latency recording and the per-run report (same quantities as etcd's pkg/report:
// total, seconds, requests/s, average, percentiles, slowest, stddev, errors).

/** Outcome of one workload run against one target. */
export type RunStatus =
  | 'ok'
  /** The server answered UNIMPLEMENTED: the feature does not exist there, nothing measured. */
  | 'not-run'
  /** Every request failed (or setup failed) for another reason. */
  | 'failed';

export interface RunSummary {
  status: RunStatus;
  /** Successful requests (errors are counted separately, like etcd's report). */
  total: number;
  seconds: number;
  requestsPerSec: number;
  avgMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  slowestMs: number;
  fastestMs: number;
  stddevMs: number;
  errors: number;
  /** Error counts keyed by "<grpc code name>: <first message>". */
  errorKinds: Record<string, number>;
  /** Free-form notes (why not run, watcher counts, ...). */
  note?: string;
}

/**
 * Collects per-request latencies in a preallocated growable Float64Array, so recording
 * costs no allocation per request (the client shares the CPU with the server).
 */
export class LatencyRecorder {
  private samplesMs: Float64Array;
  private count = 0;
  private errorCount = 0;
  private readonly errorKinds = new Map<string, number>();

  constructor(expectedSamples = 1024) {
    this.samplesMs = new Float64Array(Math.max(16, expectedSamples));
  }

  get successes(): number {
    return this.count;
  }

  get errors(): number {
    return this.errorCount;
  }

  recordMs(latencyMs: number): void {
    if (!(latencyMs >= 0)) throw new Error(`latency must be a non-negative number, got ${latencyMs}`);
    if (this.count === this.samplesMs.length) {
      const grown = new Float64Array(this.samplesMs.length * 2);
      grown.set(this.samplesMs);
      this.samplesMs = grown;
    }
    this.samplesMs[this.count++] = latencyMs;
  }

  recordError(kind: string): void {
    this.errorCount++;
    this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
  }

  /** Sorted copy of the successful latencies. */
  sortedMs(): Float64Array {
    return this.samplesMs.slice(0, this.count).sort();
  }

  summarize(elapsedSeconds: number, status?: RunStatus, note?: string): RunSummary {
    if (!(elapsedSeconds >= 0)) throw new Error(`elapsed seconds must be >= 0, got ${elapsedSeconds}`);
    const sorted = this.sortedMs();
    const n = sorted.length;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i]!;
    const avg = n === 0 ? 0 : sum / n;
    let squares = 0;
    for (let i = 0; i < n; i++) squares += (sorted[i]! - avg) ** 2;
    const summary: RunSummary = {
      status: status ?? (n > 0 ? 'ok' : 'failed'),
      total: n,
      seconds: elapsedSeconds,
      requestsPerSec: elapsedSeconds > 0 ? n / elapsedSeconds : 0,
      avgMs: avg,
      p50Ms: percentileOfSorted(sorted, 50),
      p90Ms: percentileOfSorted(sorted, 90),
      p99Ms: percentileOfSorted(sorted, 99),
      slowestMs: n === 0 ? 0 : sorted[n - 1]!,
      fastestMs: n === 0 ? 0 : sorted[0]!,
      stddevMs: n === 0 ? 0 : Math.sqrt(squares / n),
      errors: this.errorCount,
      errorKinds: Object.fromEntries(this.errorKinds),
    };
    if (note !== undefined) summary.note = note;
    return summary;
  }
}

/**
 * Nearest-rank percentile: the smallest sample such that at least p% of samples are <= it.
 * Returns 0 for an empty set so reports stay printable.
 */
export function percentileOfSorted(sorted: Float64Array | number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got ${p}`);
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n, Math.max(1, rank)) - 1]!;
}

/** A summary for a run that could not measure anything. */
export function emptySummary(status: RunStatus, note: string): RunSummary {
  return { ...new LatencyRecorder(16).summarize(0, status), note };
}

/** One human-readable block, modelled on etcd benchmark's "Summary:" output. */
export function formatSummary(title: string, s: RunSummary): string {
  if (s.status !== 'ok') {
    const lines = [`${title}: ${s.status.toUpperCase()}${s.note ? ` (${s.note})` : ''}`];
    for (const [kind, count] of Object.entries(s.errorKinds)) lines.push(`  error ${count} x ${kind}`);
    return lines.join('\n');
  }
  const lines = [
    `${title}:`,
    `  total ${s.total}  seconds ${s.seconds.toFixed(3)}  requests/s ${s.requestsPerSec.toFixed(1)}`,
    `  average ${fmtMs(s.avgMs)}  p50 ${fmtMs(s.p50Ms)}  p90 ${fmtMs(s.p90Ms)}  p99 ${fmtMs(s.p99Ms)}` +
      `  slowest ${fmtMs(s.slowestMs)}  stddev ${fmtMs(s.stddevMs)}  errors ${s.errors}`,
  ];
  for (const [kind, count] of Object.entries(s.errorKinds)) lines.push(`  error ${count} x ${kind}`);
  if (s.note) lines.push(`  note: ${s.note}`);
  return lines.join('\n');
}

export function fmtMs(ms: number): string {
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
}
