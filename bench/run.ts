// The benchmark suite: runs the same workloads against tsetcd and real etcd on this machine,
// one target at a time, and prints both side by side with the ratio tsetcd/etcd.
//
//   npm run bench                      # default suite, ~5 min
//   node dist/bench/run.js --quick     # ~1 min, no `etcdctl check perf`
//   node dist/bench/run.js --full      # adds check perf m and l
//   node dist/bench/run.js --cluster 1,3 --only etcd --workload put --json out.json
//
// See bench/README.md for what every number means.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  callOnce,
  describeWorkload,
  flagBool,
  flagInt,
  flagString,
  parseArgs,
  parseTransport,
  runWorkload,
  type LoadOptions,
  type WorkloadSpec,
} from './client.js';
import {
  LocalCluster,
  binaryVersion,
  etcdBinary,
  shutdownRequested,
  stopAllClusters,
  tsetcdBinary,
  type ServerBinary,
} from './cluster.js';
import {
  CHECK_PERF_TARGET_WRITES_PER_SEC,
  ETCDCTL_DEFAULT_PATH,
  etcdctlAvailable,
  runCheckPerf,
  type CheckPerfLoad,
  type CheckPerfResult,
} from './checkperf.js';
import { findRepoRoot, loadEtcdProto, type LoadedProto } from './proto.js';
import { emptySummary, fmtMs, formatSummary, type RunSummary } from './stats.js';
import type { TransportKind } from './transport.js';

// ------------------------------------------------------------------ suite definition

export type TargetName = 'tsetcd' | 'etcd';
export const TARGET_NAMES: readonly TargetName[] = ['tsetcd', 'etcd'];

/** Which members a workload talks to: the leader (writes, like etcd's published numbers) or all. */
type EndpointChoice = 'leader' | 'all';

interface LoadWorkload {
  type: 'load';
  id: string;
  title: string;
  conns: number;
  clients: number;
  total: number;
  quickTotal: number;
  endpoints: EndpointChoice;
  /** Builds the spec for a given total (put keyspaces scale with it). */
  spec: (total: number) => WorkloadSpec;
}

interface CheckPerfWorkload {
  type: 'check-perf';
  id: string;
  title: string;
  load: CheckPerfLoad;
  /** Only with --full. */
  fullOnly: boolean;
}

export type SuiteWorkload = LoadWorkload | CheckPerfWorkload;

const RANGE_KEY = 'bench-range-key';
const VALUE_BYTES = 256;
const KEY_BYTES = 8;

const putSpec = (total: number): WorkloadSpec => ({
  kind: 'put',
  keySizeBytes: KEY_BYTES,
  valSizeBytes: VALUE_BYTES,
  keySpaceSize: total, // --sequential-keys over `total` keys: every put creates a new key, as in etcd's docs
  sequentialKeys: true,
});

function load(
  id: string,
  title: string,
  conns: number,
  clients: number,
  total: number,
  quickTotal: number,
  endpoints: EndpointChoice,
  spec: (total: number) => WorkloadSpec,
): LoadWorkload {
  return { type: 'load', id, title, conns, clients, total, quickTotal, endpoints, spec };
}

/**
 * Shapes follow etcd's op-guide/performance.md (1 conn/1 client and 100 conns/1000
 * clients), scaled to what a 2-core box shared by client and server can drive.
 */
export const SUITE: readonly SuiteWorkload[] = [
  load('put-1x1', 'put, 1 conn / 1 client', 1, 1, 5000, 1500, 'leader', putSpec),
  load('put-8x64', 'put, 8 conns / 64 clients', 8, 64, 50000, 15000, 'leader', putSpec),
  load('put-16x256', 'put, 16 conns / 256 clients', 16, 256, 60000, 20000, 'leader', putSpec),
  load('range-l-1x1', 'range linearizable, 1/1', 1, 1, 5000, 1500, 'all', () => ({ kind: 'range', key: RANGE_KEY, consistency: 'l' })),
  load('range-s-1x1', 'range serializable, 1/1', 1, 1, 5000, 1500, 'all', () => ({ kind: 'range', key: RANGE_KEY, consistency: 's' })),
  load('range-l-16x256', 'range linearizable, 16/256', 16, 256, 60000, 20000, 'all', () => ({ kind: 'range', key: RANGE_KEY, consistency: 'l' })),
  load('range-s-16x256', 'range serializable, 16/256', 16, 256, 60000, 20000, 'all', () => ({ kind: 'range', key: RANGE_KEY, consistency: 's' })),
  load('txn-put-8x64', 'txn-put (1 op), 8/64', 8, 64, 20000, 6000, 'leader', () => ({
    kind: 'txn-put',
    txnOps: 1,
    keySizeBytes: KEY_BYTES,
    valSizeBytes: VALUE_BYTES,
    keySpaceSize: 100_000,
    sequentialKeys: false,
  })),
  load('watch-8x32', 'watch fan-out 256 watchers (events/s)', 4, 8, 1000, 300, 'all', () => ({
    kind: 'watch',
    streams: 8,
    watchersPerStream: 32,
    key: 'bench-watch-key',
    valSizeBytes: VALUE_BYTES,
    putRate: 0,
  })),
  load('lease-keepalive-8x64', 'lease keepalive, 8/64', 8, 64, 40000, 10000, 'leader', () => ({ kind: 'lease-keepalive', ttlSeconds: 60 })),
  { type: 'check-perf', id: 'check-perf-s', title: 'etcdctl check perf --load=s', load: 's', fullOnly: false },
  { type: 'check-perf', id: 'check-perf-m', title: 'etcdctl check perf --load=m', load: 'm', fullOnly: true },
  { type: 'check-perf', id: 'check-perf-l', title: 'etcdctl check perf --load=l', load: 'l', fullOnly: true },
];

// ------------------------------------------------------------------ options

export interface SuiteOptions {
  targets: TargetName[];
  clusterSizes: number[];
  /** Workload id filters: exact ids or prefixes ("put" matches put-1x1, put-8x64, ...). */
  workloadFilters: string[];
  totalOverride?: number;
  quick: boolean;
  full: boolean;
  rounds: number;
  maxSecondsPerWorkload: number;
  transport: TransportKind;
  jsonPath?: string;
  pin: boolean;
  etcdPath: string;
  etcdctlPath: string;
  /** Script run with node for tsetcd (default <repo>/bin/tsetcd.js). */
  tsetcdPath?: string;
  extraArgs: Record<TargetName, string[]>;
}

const RUN_USAGE = `usage: node dist/bench/run.js [options]
  --only tsetcd|etcd        run one target only (default: both, tsetcd first)
  --cluster 1|3|1,3         cluster sizes (default 1)
  --workload a,b            workload ids or prefixes (default: all; --list shows them)
  --total N                 requests per load workload (overrides the suite's totals)
  --quick                   smaller totals, no check perf (~1 min)
  --full                    also etcdctl check perf --load=m and --load=l
  --rounds N                repeat targets alternately N times, report the median run (default 1)
  --max-seconds S           stop issuing a workload's requests after S s (default 15, quick 8)
  --transport h2|grpc-js    client transport (default h2: lowest client CPU)
  --json FILE               also write all results as JSON
  --pin                     pin servers to CPU 1 and the client (and etcdctl) to CPU 0 with taskset
  --etcd PATH --etcdctl PATH   binaries (default /usr/bin/etcd, /usr/bin/etcdctl)
  --tsetcd PATH             tsetcd entry script run with node (default <repo>/bin/tsetcd.js)
  --etcd-args "..." --tsetcd-args "..."   extra server flags
  --list                    list workloads and exit`;

const RUN_BOOLEAN_FLAGS = new Set(['quick', 'full', 'pin', 'list', 'help']);

export function parseSuiteOptions(argv: string[]): SuiteOptions {
  const args = parseArgs(argv, RUN_BOOLEAN_FLAGS);
  if (args.positional.length > 0) throw new Error(`unexpected argument "${args.positional[0]!}"\n${RUN_USAGE}`);
  const only = args.flags.get('only');
  let targets: TargetName[] = [...TARGET_NAMES];
  if (only !== undefined) {
    const t = TARGET_NAMES.find((n) => n === only);
    if (t === undefined) throw new Error(`--only must be tsetcd or etcd, got "${String(only)}"`);
    targets = [t];
  }
  const clusterSizes = flagString(args, 'cluster', '1')
    .split(',')
    .map((s) => Number(s.trim()));
  for (const n of clusterSizes) {
    if (!Number.isInteger(n) || n < 1 || n % 2 === 0) throw new Error(`--cluster sizes must be odd positive integers, got ${n}`);
  }
  const quick = flagBool(args, 'quick');
  const totalOverride = args.flags.has('total') ? flagInt(args, 'total', 0) : undefined;
  if (totalOverride !== undefined && !(Number.isInteger(totalOverride) && totalOverride > 0)) {
    throw new Error('--total must be a positive integer');
  }
  const rounds = flagInt(args, 'rounds', 1);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be >= 1');
  const opts: SuiteOptions = {
    targets,
    clusterSizes,
    workloadFilters: flagString(args, 'workload', '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
    quick,
    full: flagBool(args, 'full'),
    rounds,
    maxSecondsPerWorkload: flagInt(args, 'max-seconds', quick ? 8 : 15),
    transport: parseTransport(flagString(args, 'transport', 'h2')),
    pin: flagBool(args, 'pin'),
    etcdPath: flagString(args, 'etcd', '/usr/bin/etcd'),
    etcdctlPath: flagString(args, 'etcdctl', ETCDCTL_DEFAULT_PATH),
    extraArgs: {
      etcd: splitArgs(flagString(args, 'etcd-args', '')),
      tsetcd: splitArgs(flagString(args, 'tsetcd-args', '')),
    },
  };
  if (totalOverride !== undefined) opts.totalOverride = totalOverride;
  if (args.flags.has('json')) opts.jsonPath = flagString(args, 'json', '');
  if (args.flags.has('tsetcd')) opts.tsetcdPath = path.resolve(flagString(args, 'tsetcd', ''));
  return opts;
}

function splitArgs(s: string): string[] {
  return s.split(/\s+/).filter((a) => a.length > 0);
}

/** The workloads this run executes, in suite order. */
export function selectWorkloads(opts: Pick<SuiteOptions, 'workloadFilters' | 'quick' | 'full'>): SuiteWorkload[] {
  return SUITE.filter((w) => {
    const explicitlyNamed = opts.workloadFilters.some((f) => w.id === f);
    if (opts.workloadFilters.length > 0 && !opts.workloadFilters.some((f) => w.id === f || w.id.startsWith(f))) return false;
    if (w.type === 'check-perf') {
      // check perf takes 60 s per load: never in --quick unless asked for by exact id.
      if (opts.quick && !explicitlyNamed) return false;
      if (w.fullOnly && !opts.full && !explicitlyNamed) return false;
    }
    return true;
  });
}

export function workloadTotal(w: LoadWorkload, opts: Pick<SuiteOptions, 'totalOverride' | 'quick'>): number {
  return opts.totalOverride ?? (opts.quick ? w.quickTotal : w.total);
}

// ------------------------------------------------------------------ results

export interface RunRecord {
  round: number;
  target: TargetName;
  clusterSize: number;
  workload: string;
  title: string;
  description: string;
  conns?: number;
  clients?: number;
  endpoints: string[];
  summary?: RunSummary;
  checkPerf?: CheckPerfResult;
  clientCpuSec: number;
  serverCpuSec: number;
  serverRssBytes: number;
  /** Set when a member process exited during this workload. */
  memberDied?: string;
}

interface TargetInfo {
  name: TargetName;
  available: boolean;
  version?: string;
  reason?: string;
  binary?: ServerBinary;
}

// ------------------------------------------------------------------ running

function resolveTargets(opts: SuiteOptions, repoRoot: string): TargetInfo[] {
  return opts.targets.map((name): TargetInfo => {
    const binary = name === 'etcd' ? etcdBinary(opts.etcdPath) : tsetcdBinary(repoRoot, opts.tsetcdPath);
    if (binary === undefined) {
      return { name, available: false, reason: `${name === 'etcd' ? opts.etcdPath : (opts.tsetcdPath ?? 'bin/tsetcd.js')} not found` };
    }
    const version = binaryVersion(binary);
    if (version === undefined) return { name, available: false, reason: `${binary.name} --version failed (not built?)`, binary };
    return { name, available: true, version, binary };
  });
}

/** Untimed traffic so both the client's JIT and the server are warm, plus the range key. */
async function warmUp(cluster: LocalCluster, leader: string, proto: LoadedProto, opts: SuiteOptions): Promise<void> {
  await callOnce(proto, leader, 'KV', 'Put', { key: Buffer.from(RANGE_KEY), value: Buffer.alloc(VALUE_BYTES, 0x61) }, 10_000, opts.transport);
  // The same warm-up in quick and full runs, for both servers: a few seconds of one-at-a-time
  // and concurrent puts, so that the first workload measures a steady state (a fresh Node.js
  // member runs unoptimized code for its first thousands of requests; etcd needs no JIT).
  const base: LoadOptions = { endpoints: [leader], conns: 4, clients: 16, total: 2000, maxSeconds: 5, transport: opts.transport };
  const warmPut: WorkloadSpec = { kind: 'put', keySizeBytes: KEY_BYTES, valSizeBytes: VALUE_BYTES, keySpaceSize: 1000, sequentialKeys: true };
  await runWorkload(warmPut, { ...base, conns: 1, clients: 1 }, proto);
  await runWorkload(warmPut, base, proto);
  // Puts through every member too: on a follower a put takes its own path (forwarded to the
  // leader, answered when applied there), which a check perf spreading over all endpoints
  // uses from its first second.
  await runWorkload(warmPut, { ...base, endpoints: cluster.endpoints() }, proto);
  await runWorkload({ kind: 'range', key: RANGE_KEY, consistency: 'l' }, { ...base, endpoints: cluster.endpoints() }, proto);
}

async function runOneLoad(
  w: LoadWorkload,
  endpoints: string[],
  proto: LoadedProto,
  opts: SuiteOptions,
): Promise<RunSummary> {
  const total = workloadTotal(w, opts);
  const loadOpts: LoadOptions = {
    endpoints,
    conns: w.conns,
    clients: w.clients,
    total,
    maxSeconds: opts.maxSecondsPerWorkload,
    transport: opts.transport,
  };
  try {
    return await runWorkload(w.spec(total), loadOpts, proto);
  } catch (err) {
    return emptySummary('failed', `client error: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function runTargetCluster(
  target: TargetInfo,
  clusterSize: number,
  round: number,
  workloads: SuiteWorkload[],
  proto: LoadedProto,
  opts: SuiteOptions,
  records: RunRecord[],
): Promise<void> {
  const binary = target.binary!;
  log(`\n=== ${target.name} (${target.version ?? '?'}), cluster of ${clusterSize}, round ${round + 1}/${opts.rounds}`);
  const clusterOpts: Parameters<typeof LocalCluster.start>[0] = {
    binary,
    size: clusterSize,
    proto,
    transport: opts.transport,
    extraArgs: opts.extraArgs[target.name],
  };
  if (opts.pin) clusterOpts.pinCpus = '1';
  let cluster: LocalCluster;
  const startedAt = performance.now();
  try {
    cluster = await LocalCluster.start(clusterOpts);
  } catch (err) {
    log(`  cluster failed to start: ${err instanceof Error ? err.message : String(err)}`);
    for (const w of workloads) records.push(failedRecord(round, target.name, clusterSize, w, 'cluster did not start'));
    return;
  }
  try {
    log(`  healthy after ${((performance.now() - startedAt) / 1000).toFixed(1)} s: ${cluster.endpoints().join(' ')}`);
    const leader = (await cluster.findLeader()) ?? cluster.endpoints()[0]!;
    if (clusterSize > 1) log(`  leader: ${leader}`);
    // Leader first, so workloads that use "the first endpoint" for writes hit the leader.
    const allLeaderFirst = [leader, ...cluster.endpoints().filter((e) => e !== leader)];
    try {
      await warmUp(cluster, leader, proto, opts);
    } catch (err) {
      log(`  warm-up failed: ${err instanceof Error ? err.message : String(err)}`);
    }

    const reportedDead = new Set<string>();
    for (const w of workloads) {
      if (shutdownRequested()) return;
      const dead = cluster.deadMembers();
      if (dead.length > 0) {
        const why = `member(s) ${dead.map((m) => `${m.name} (exit ${m.exit?.code ?? m.exit?.signal})`).join(', ')} died`;
        log(`  ${w.id}: skipped, ${why}\n${cluster.logTails(10)}`);
        records.push(failedRecord(round, target.name, clusterSize, w, why));
        continue;
      }
      const endpoints = w.type === 'check-perf' || w.endpoints === 'all' ? allLeaderFirst : [leader];
      const cpuBefore = process.cpuUsage();
      const serverCpuBefore = cluster.cpuSeconds();
      const record: RunRecord = {
        round,
        target: target.name,
        clusterSize,
        workload: w.id,
        title: w.title,
        description: '',
        endpoints,
        clientCpuSec: 0,
        serverCpuSec: 0,
        serverRssBytes: 0,
      };
      if (w.type === 'load') {
        const total = workloadTotal(w, opts);
        record.description = describeWorkload(w.spec(total));
        record.conns = w.conns;
        record.clients = w.clients;
        record.summary = await runOneLoad(w, endpoints, proto, opts);
      } else {
        record.description = `etcdctl check perf --load=${w.load} (target ${CHECK_PERF_TARGET_WRITES_PER_SEC[w.load]} writes/s for 60 s)`;
        if (!etcdctlAvailable(opts.etcdctlPath)) {
          record.checkPerf = { load: w.load, verdict: 'error', lines: [], error: `${opts.etcdctlPath} not found`, elapsedSec: 0 };
        } else {
          const cpOpts: Parameters<typeof runCheckPerf>[0] = {
            endpoints,
            load: w.load,
            etcdctlPath: opts.etcdctlPath,
            abortReason: () => {
              const dead = cluster.deadMembers();
              return dead.length > 0 ? `member ${dead.map((m) => m.name).join(', ')} exited` : undefined;
            },
          };
          if (opts.pin) cpOpts.pinCpus = '0';
          record.checkPerf = await runCheckPerf(cpOpts);
        }
      }
      const cpu = process.cpuUsage(cpuBefore);
      record.clientCpuSec = (cpu.user + cpu.system) / 1e6;
      // Clamped: a member that exits mid-run takes its CPU counters with it.
      record.serverCpuSec = Math.max(0, cluster.cpuSeconds() - serverCpuBefore);
      record.serverRssBytes = cluster.rssBytes();
      records.push(record);
      log(formatRecord(record));
      const diedNow = cluster.deadMembers().filter((m) => !reportedDead.has(m.name));
      if (diedNow.length > 0) {
        for (const m of diedNow) reportedDead.add(m.name);
        const why = diedNow.map((m) => `${m.name} (exit ${m.exit?.code ?? m.exit?.signal})`).join(', ');
        record.memberDied = why;
        log(`  !! member(s) ${why} died during ${w.id}\n${cluster.logTails(20)}`);
      }
    }
  } finally {
    await cluster.stop();
  }
}

function failedRecord(round: number, target: TargetName, clusterSize: number, w: SuiteWorkload, why: string): RunRecord {
  const record: RunRecord = {
    round,
    target,
    clusterSize,
    workload: w.id,
    title: w.title,
    description: '',
    endpoints: [],
    clientCpuSec: 0,
    serverCpuSec: 0,
    serverRssBytes: 0,
  };
  if (w.type === 'load') record.summary = emptySummary('failed', why);
  else record.checkPerf = { load: w.load, verdict: 'error', lines: [], error: why, elapsedSec: 0 };
  return record;
}

function formatRecord(r: RunRecord): string {
  const head = `  [${r.workload}] ${r.description}${r.conns !== undefined ? ` (conns ${r.conns}, clients ${r.clients})` : ''}`;
  const cpu = `  client CPU ${r.clientCpuSec.toFixed(2)} s, server CPU ${r.serverCpuSec.toFixed(2)} s, server RSS ${(r.serverRssBytes / 1048576).toFixed(0)} MiB`;
  if (r.summary !== undefined) {
    const body = formatSummary(head, r.summary).split('\n').join('\n  ');
    const perReq = r.summary.total > 0 ? `, server CPU/request ${((r.serverCpuSec / r.summary.total) * 1e6).toFixed(0)} us` : '';
    return `${body}\n  ${cpu}${perReq}`;
  }
  const cp = r.checkPerf!;
  const verdict = cp.verdict === 'error' ? `ERROR (${cp.error ?? ''})` : cp.verdict.toUpperCase();
  const lines = cp.lines.map((l) => `      ${l}`).join('\n');
  const cpCpu =
    `  etcdctl CPU ${cp.etcdctlCpuSec !== undefined ? `~${cp.etcdctlCpuSec.toFixed(2)} s` : 'n/a'},` +
    ` server CPU ${r.serverCpuSec.toFixed(2)} s, server RSS ${(r.serverRssBytes / 1048576).toFixed(0)} MiB`;
  return `${head}\n    ${verdict}${cp.writesPerSec !== undefined ? `: ${cp.writesPerSec} writes/s` : ''} in ${cp.elapsedSec.toFixed(1)} s\n${lines}\n  ${cpCpu}`;
}

// ------------------------------------------------------------------ aggregation and table

/** Among rounds, the record whose throughput is the median (ties: the earlier round). */
export function medianRecord(records: RunRecord[]): RunRecord | undefined {
  if (records.length === 0) return undefined;
  const score = (r: RunRecord): number =>
    r.summary !== undefined ? (r.summary.status === 'ok' ? r.summary.requestsPerSec : -1) : (r.checkPerf?.writesPerSec ?? -1);
  const sorted = [...records].sort((a, b) => score(a) - score(b) || a.round - b.round);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Throughput of a record if it measured something. */
export function throughputOf(r: RunRecord | undefined): number | undefined {
  if (r === undefined) return undefined;
  if (r.summary !== undefined) return r.summary.status === 'ok' ? r.summary.requestsPerSec : undefined;
  return r.checkPerf?.writesPerSec;
}

/** "0.83x" for tsetcd/etcd throughput, "-" when either side did not measure. */
export function ratioText(tsetcd: number | undefined, etcd: number | undefined): string {
  if (tsetcd === undefined || etcd === undefined || etcd <= 0) return '-';
  return `${(tsetcd / etcd).toFixed(2)}x`;
}

function cellText(r: RunRecord | undefined): string {
  if (r === undefined) return '-';
  if (r.summary !== undefined) {
    const s = r.summary;
    if (s.status === 'not-run') return 'not run (UNIMPLEMENTED)';
    if (s.status === 'failed') return 'FAILED';
    const errs = s.errors > 0 ? ` ${s.errors} err` : '';
    return `${s.requestsPerSec.toFixed(0).padStart(7)} /s  p99 ${fmtMs(s.p99Ms)}${errs}`;
  }
  const cp = r.checkPerf!;
  if (cp.verdict === 'error') return 'ERROR';
  return `${String(cp.writesPerSec ?? '?').padStart(7)} w/s ${cp.verdict.toUpperCase()}`;
}

export interface TableRow {
  clusterSize: number;
  workload: string;
  title: string;
  tsetcd?: RunRecord;
  etcd?: RunRecord;
  ratio: string;
}

export function buildTable(records: RunRecord[], workloads: SuiteWorkload[], clusterSizes: number[]): TableRow[] {
  const rows: TableRow[] = [];
  for (const size of clusterSizes) {
    for (const w of workloads) {
      const pick = (t: TargetName): RunRecord | undefined =>
        medianRecord(records.filter((r) => r.clusterSize === size && r.workload === w.id && r.target === t));
      const ts = pick('tsetcd');
      const et = pick('etcd');
      const row: TableRow = { clusterSize: size, workload: w.id, title: w.title, ratio: ratioText(throughputOf(ts), throughputOf(et)) };
      if (ts !== undefined) row.tsetcd = ts;
      if (et !== undefined) row.etcd = et;
      rows.push(row);
    }
  }
  return rows;
}

export function formatTable(rows: TableRow[]): string {
  const header = ['workload', 'tsetcd req/s, p99', 'etcd req/s, p99', 'ratio tsetcd/etcd'];
  const out: string[] = [];
  for (const size of [...new Set(rows.map((r) => r.clusterSize))]) {
    const body = rows.filter((r) => r.clusterSize === size).map((r) => [r.title, cellText(r.tsetcd), cellText(r.etcd), r.ratio]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
    out.push(`\nCluster of ${size} member(s):`);
    out.push(line(header));
    out.push(widths.map((w) => '-'.repeat(w)).join('-|-'));
    for (const b of body) out.push(line(b));
  }
  return out.join('\n');
}

// ------------------------------------------------------------------ main

function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

function pinSelf(cpu: string): void {
  try {
    // -a: all threads of this process (libuv pool, GC helpers), not only the main thread.
    execFileSync('taskset', ['-a', '-cp', cpu, String(process.pid)], { stdio: 'ignore' });
  } catch (err) {
    log(`warning: cannot pin the client with taskset: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function runSuite(opts: SuiteOptions): Promise<{ records: RunRecord[]; rows: TableRow[] }> {
  const repoRoot = findRepoRoot();
  const proto = loadEtcdProto(repoRoot);
  const workloads = selectWorkloads(opts);
  if (workloads.length === 0) throw new Error(`no workload matches ${opts.workloadFilters.join(',')}; use --list`);
  const targets = resolveTargets(opts, repoRoot);
  const cpus = os.cpus();
  log(`tsetcd bench: ${cpus.length} CPU(s) (${cpus[0]?.model ?? '?'}), Node ${process.version}, transport ${opts.transport}, proto ${proto.source} (${proto.file})`);
  log(`client and server(s) share this machine${opts.pin ? ' (pinned: servers CPU 1, client CPU 0)' : ''}; data dirs under ${os.tmpdir()}`);
  for (const t of targets) log(`target ${t.name}: ${t.available ? t.version : `SKIPPED (${t.reason})`}`);
  log(`workloads: ${workloads.map((w) => w.id).join(', ')}; cluster size(s) ${opts.clusterSizes.join(', ')}; rounds ${opts.rounds}`);
  if (opts.pin) pinSelf('0');

  const runnable = targets.filter((t) => t.available);
  const records: RunRecord[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    // Alternate the order each round so slow drift (page cache, thermal) hits both targets equally.
    const order = round % 2 === 0 ? runnable : [...runnable].reverse();
    for (const size of opts.clusterSizes) {
      for (const target of order) {
        if (shutdownRequested()) throw new Error('interrupted');
        await runTargetCluster(target, size, round, workloads, proto, opts, records);
      }
    }
  }

  const rows = buildTable(records, workloads, opts.clusterSizes);
  log(`\n================ summary (${opts.rounds > 1 ? `median of ${opts.rounds} rounds` : 'single round'}; ratio > 1 means tsetcd is faster)`);
  log(formatTable(rows));

  if (opts.jsonPath !== undefined) {
    const doc = {
      startedAt: new Date().toISOString(),
      host: { cpus: cpus.length, cpuModel: cpus[0]?.model, totalMemBytes: os.totalmem(), node: process.version, tmpdir: os.tmpdir() },
      options: opts,
      proto: { source: proto.source, file: proto.file },
      targets: targets.map(({ binary: _binary, ...rest }) => rest),
      runs: records,
      table: rows.map((r) => ({
        clusterSize: r.clusterSize,
        workload: r.workload,
        title: r.title,
        ratio: r.ratio,
        tsetcd: r.tsetcd?.summary ?? r.tsetcd?.checkPerf,
        etcd: r.etcd?.summary ?? r.etcd?.checkPerf,
      })),
    };
    fs.writeFileSync(opts.jsonPath, JSON.stringify(doc, null, 2));
    log(`\nJSON written to ${path.resolve(opts.jsonPath)}`);
  }
  return { records, rows };
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    log(RUN_USAGE);
    return 0;
  }
  if (argv.includes('--list')) {
    for (const w of SUITE) {
      const extra = w.type === 'load' ? `conns ${w.conns}, clients ${w.clients}, total ${w.total} (quick ${w.quickTotal})` : w.fullOnly ? '--full only' : 'not in --quick';
      log(`${w.id.padEnd(22)} ${w.title} [${extra}]`);
    }
    return 0;
  }
  const opts = parseSuiteOptions(argv);
  await runSuite(opts);
  return 0;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    async (code) => {
      await stopAllClusters();
      process.exit(code);
    },
    async (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      await stopAllClusters();
      process.exit(1);
    },
  );
}
