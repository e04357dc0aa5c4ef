// Starts and stops local 1- or 3-member clusters of an etcd-compatible binary for the bench.
//
// Every member gets free loopback ports, its own data dir under one temp dir, and is started
// with exactly etcd's flags, so the same code drives real etcd and tsetcd. Members are
// stopped with SIGTERM (SIGKILL after 5 s) and the temp dir is removed, also on Ctrl-C,
// SIGTERM, uncaught errors and normal exit.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { callOnce } from './client.js';
import type { LoadedProto } from './proto.js';
import type { TransportKind } from './transport.js';

/** How to launch one server implementation. */
export interface ServerBinary {
  /** Short label used in reports: "tsetcd", "etcd". */
  name: string;
  command: string;
  /** Arguments placed before the etcd flags (e.g. the script path for node). */
  prefixArgs: string[];
}

export const ETCD_DEFAULT_PATH = '/usr/bin/etcd';

export function etcdBinary(binaryPath: string = ETCD_DEFAULT_PATH): ServerBinary | undefined {
  return fs.existsSync(binaryPath) ? { name: 'etcd', command: binaryPath, prefixArgs: [] } : undefined;
}

/**
 * tsetcd runs as `node <script>`; the script defaults to <repo>/bin/tsetcd.js.
 * TSETCD_BENCH_NODE_ARGS adds node flags (space-separated), e.g. to profile the members:
 * `TSETCD_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` (Node refuses those in NODE_OPTIONS).
 */
export function tsetcdBinary(repoRoot: string, scriptPath: string = path.join(repoRoot, 'bin', 'tsetcd.js')): ServerBinary | undefined {
  if (!fs.existsSync(scriptPath)) return undefined;
  const nodeArgs = (process.env['TSETCD_BENCH_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a !== '');
  return { name: 'tsetcd', command: process.execPath, prefixArgs: [...nodeFlagsFromShebang(scriptPath), ...nodeArgs, scriptPath] };
}

/**
 * The node flags in a script's `#!/usr/bin/env -S node <flags>` line: what running the
 * script directly (as `tsetcd`) passes to node. Spawning `process.execPath` with them runs
 * the same thing without depending on which `node` is on PATH.
 */
export function nodeFlagsFromShebang(scriptPath: string): string[] {
  const first = fs.readFileSync(scriptPath, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env\s+-S\s+node\s+(.*)$/.exec(first.trim());
  return m ? m[1]!.split(/\s+/).filter((a) => a !== '') : [];
}

/** First line of `<binary> --version`, or undefined if the binary does not run. */
export function binaryVersion(bin: ServerBinary): string | undefined {
  try {
    const out = execFileSync(bin.command, [...bin.prefixArgs, '--version'], {
      encoding: 'utf8',
      timeout: 15_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return out.split('\n').map((l) => l.trim()).filter((l) => l.length > 0).join('; ') || 'unknown';
  } catch {
    return undefined;
  }
}

export interface ClusterOptions {
  binary: ServerBinary;
  /** 1 or 3 (any odd size >= 1 works). */
  size: number;
  readyTimeoutMs?: number;
  /** Extra flags appended to every member's command line. */
  extraArgs?: string[];
  /** taskset CPU list for the members (e.g. "1"); undefined = no pinning. */
  pinCpus?: string;
  /** Needed for the gRPC readiness probe and leader lookup. */
  proto: LoadedProto;
  transport?: TransportKind;
  /** Parent for the temp dir (default os.tmpdir()). Both targets should use the same filesystem. */
  baseTmpDir?: string;
}

export interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  /** "127.0.0.1:<clientPort>" */
  endpoint: string;
  dataDir: string;
  logFile: string;
  proc: ChildProcess;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

const STOP_GRACE_MS = 5_000;
const PROBE_INTERVAL_MS = 100;
const STARTUP_ATTEMPTS = 3;
const PORT_IN_USE = /address already in use|EADDRINUSE/i;

const liveClusters = new Set<LocalCluster>();
let handlersInstalled = false;
let shuttingDown = false;

/** True once SIGINT/SIGTERM was received: callers should stop starting new work. */
export function shutdownRequested(): boolean {
  return shuttingDown;
}

export class LocalCluster {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly binary: ServerBinary,
    readonly baseDir: string,
    readonly members: Member[],
    private readonly proto: LoadedProto,
    private readonly transport: TransportKind,
  ) {}

  /**
   * Starts `size` members and resolves once every member answers (GET /health = true or a
   * linearizable Range succeeds). Retries with fresh ports if a member dies because a port
   * is taken (another process may grab it between our probe and the server's bind).
   */
  static async start(opts: ClusterOptions): Promise<LocalCluster> {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new Error(`cluster size must be >= 1, got ${opts.size}`);
    if (shuttingDown) throw new Error('shutting down: not starting another cluster');
    let lastError: unknown;
    for (let attempt = 1; attempt <= STARTUP_ATTEMPTS; attempt++) {
      const cluster = await LocalCluster.spawnMembers(opts);
      try {
        await cluster.waitHealthy(opts.readyTimeoutMs ?? 60_000);
        return cluster;
      } catch (err) {
        lastError = err;
        const logs = cluster.logTails(15);
        const lostPortRace = cluster.members.some((m) => m.exit !== undefined) && PORT_IN_USE.test(logs);
        await cluster.stop();
        if (!lostPortRace || attempt === STARTUP_ATTEMPTS) {
          throw new Error(`${opts.binary.name} cluster of ${opts.size} did not become healthy: ${errText(err)}\n${logs}`);
        }
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  private static async spawnMembers(opts: ClusterOptions): Promise<LocalCluster> {
    const baseDir = fs.mkdtempSync(path.join(opts.baseTmpDir ?? os.tmpdir(), `tsetcd-bench-${opts.binary.name}-`));
    const ports = await freePorts(opts.size * 2);
    const names = Array.from({ length: opts.size }, (_, i) => `m${i}`);
    const peerUrl = (i: number): string => `http://127.0.0.1:${ports[opts.size + i]!}`;
    const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
    const members: Member[] = [];
    const cluster = new LocalCluster(opts.binary, baseDir, members, opts.proto, opts.transport ?? 'h2');
    trackCluster(cluster);
    for (let i = 0; i < opts.size; i++) {
      const clientPort = ports[i]!;
      const clientUrl = `http://127.0.0.1:${clientPort}`;
      const dataDir = path.join(baseDir, `${names[i]!}.data`);
      const logFile = path.join(baseDir, `${names[i]!}.log`);
      const etcdFlags = [
        '--name', names[i]!,
        '--data-dir', dataDir,
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl(i),
        '--initial-advertise-peer-urls', peerUrl(i),
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', 'bench',
        '--initial-cluster-state', 'new',
        ...(opts.extraArgs ?? []),
      ];
      let command = opts.binary.command;
      let args = [...opts.binary.prefixArgs, ...etcdFlags];
      if (opts.pinCpus !== undefined) {
        args = ['-c', opts.pinCpus, command, ...args];
        command = 'taskset';
      }
      const logFd = fs.openSync(logFile, 'a');
      const proc = spawn(command, args, { stdio: ['ignore', logFd, logFd] });
      fs.closeSync(logFd); // the child holds its own copy
      const member: Member = {
        name: names[i]!,
        clientPort,
        peerPort: ports[opts.size + i]!,
        endpoint: `127.0.0.1:${clientPort}`,
        dataDir,
        logFile,
        proc,
      };
      proc.on('exit', (code, signal) => {
        member.exit = { code, signal };
      });
      proc.on('error', (err) => {
        fs.appendFileSync(logFile, `\n[bench] spawn error: ${err.message}\n`);
        member.exit ??= { code: -1, signal: null };
      });
      members.push(member);
    }
    return cluster;
  }

  endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  pids(): number[] {
    return this.members.map((m) => m.proc.pid).filter((p): p is number => p !== undefined);
  }

  /** Members that exited while they should be running. */
  deadMembers(): Member[] {
    return this.members.filter((m) => m.exit !== undefined);
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set(this.members);
    while (pending.size > 0) {
      for (const m of pending) {
        if (m.exit !== undefined) {
          throw new Error(`member ${m.name} exited during startup (code ${m.exit.code}, signal ${m.exit.signal})`);
        }
      }
      const results = await Promise.all([...pending].map(async (m) => [m, await this.probe(m)] as const));
      for (const [m, healthy] of results) if (healthy) pending.delete(m);
      if (pending.size === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`not healthy after ${timeoutMs} ms: ${[...pending].map((m) => m.name).join(', ')}`);
      }
      await sleep(PROBE_INTERVAL_MS);
    }
  }

  /** Healthy = GET /health says {"health":"true"} or a linearizable Range succeeds. */
  private async probe(m: Member): Promise<boolean> {
    const [viaHttp, viaGrpc] = await Promise.all([
      httpHealth(m.clientPort, 1_000),
      callOnce(this.proto, m.endpoint, 'KV', 'Range', { key: Buffer.from('bench-health-probe') }, 1_000, this.transport).then(
        () => true,
        () => false,
      ),
    ]);
    return viaHttp || viaGrpc;
  }

  /**
   * The leader's client endpoint via Maintenance.Status (leader == header.member_id),
   * or undefined if the server does not tell.
   */
  findLeader(): Promise<string | undefined> {
    return this.findLeaderAmong(this.members, 2_000);
  }

  private async findLeaderAmong(members: Member[], timeoutMs: number): Promise<string | undefined> {
    for (const m of members) {
      try {
        const st = await callOnce(this.proto, m.endpoint, 'Maintenance', 'Status', {}, timeoutMs, this.transport);
        const header = st.header as { member_id?: string } | undefined;
        if (header?.member_id !== undefined && st.leader !== undefined && String(st.leader) === String(header.member_id)) {
          return m.endpoint;
        }
      } catch {
        // Status unimplemented or member busy: try the next one.
      }
    }
    return undefined;
  }

  /** user+system CPU seconds consumed so far by the members and all their descendants. */
  cpuSeconds(): number {
    return processTreeCpuSeconds(this.pids());
  }

  /** Resident memory of the members (and descendants) in bytes. */
  rssBytes(): number {
    return processTreeRssBytes(this.pids());
  }

  logTails(lines: number): string {
    return this.members
      .map((m) => {
        let text = '';
        try {
          text = fs.readFileSync(m.logFile, 'utf8');
        } catch {
          text = '(no log)';
        }
        const tail = text.split('\n').filter((l) => l.length > 0).slice(-lines).join('\n    ');
        return `  --- ${this.binary.name} ${m.name} log tail (${m.logFile}):\n    ${tail}`;
      })
      .join('\n');
  }

  /**
   * SIGTERM, SIGKILL after 5 s, then remove the data dirs. Every caller (suite code and
   * signal handler alike) awaits the same completion, so nobody exits half-way.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // One at a time, current leader first: a leader stopped after its followers are gone
      // cannot hand over leadership and etcd then waits ~5 s before giving up on it.
      for (;;) {
        const live = this.members.filter((m) => m.exit === undefined && m.proc.exitCode === null && m.proc.signalCode === null);
        if (live.length === 0) break;
        const leader = live.length > 1 ? await this.findLeaderAmong(live, 1_000) : undefined;
        await stopProcess(live.find((m) => m.endpoint === leader) ?? live[0]!);
      }
      fs.rmSync(this.baseDir, { recursive: true, force: true });
      untrackCluster(this);
    })();
    return this.stopping;
  }

  /** Synchronous last resort for process 'exit': no waiting possible, so SIGKILL. */
  killSync(): void {
    for (const m of this.members) {
      if (m.exit === undefined && m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL');
    }
    liveClusters.delete(this);
    try {
      fs.rmSync(this.baseDir, { recursive: true, force: true });
    } catch {
      // Members may still hold files open for a moment; nothing more we can do on exit.
    }
  }
}

async function stopProcess(m: Member): Promise<void> {
  if (m.exit !== undefined || m.proc.exitCode !== null || m.proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => m.proc.once('exit', () => resolve()));
  m.proc.kill('SIGTERM');
  const graceful = await Promise.race([exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
  if (!graceful) {
    m.proc.kill('SIGKILL');
    await Promise.race([exited, sleep(STOP_GRACE_MS)]);
  }
}

/** Stops every cluster started by this process (used by signal handlers and run.ts). */
export async function stopAllClusters(): Promise<void> {
  await Promise.all([...liveClusters].map((c) => c.stop()));
}

function onSigint(): void {
  onShutdownSignal('SIGINT', 130);
}

function onSigterm(): void {
  onShutdownSignal('SIGTERM', 143);
}

function onShutdownSignal(signal: NodeJS.Signals, exitCode: number): void {
  shuttingDown = true;
  process.stderr.write(`\n[bench] ${signal}: stopping ${liveClusters.size} cluster(s) and removing data dirs...\n`);
  void stopAllClusters().finally(() => process.exit(exitCode));
}

function onExit(): void {
  for (const c of [...liveClusters]) c.killSync();
}

/**
 * Signal handlers are installed only while a cluster is alive: a listener replaces Node's
 * default "exit on SIGINT/SIGTERM", which must stay untouched for a host process (e.g. a
 * test runner) once our servers are gone.
 */
function trackCluster(c: LocalCluster): void {
  liveClusters.add(c);
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.on('exit', onExit);
}

function untrackCluster(c: LocalCluster): void {
  liveClusters.delete(c);
  if (liveClusters.size > 0 || !handlersInstalled || shuttingDown) return;
  handlersInstalled = false;
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
  process.off('exit', onExit);
}

// ------------------------------------------------------------------ helpers

/** Reserves `count` distinct free loopback ports (all held open at once, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function httpHealth(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 && (JSON.parse(body) as { health?: unknown }).health === 'true');
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

let clockTicksPerSecond: number | undefined;

function clkTck(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

interface ProcStat {
  ppid: number;
  cpuTicks: number;
  rssPages: number;
}

/** Parses /proc/<pid>/stat; the command name may contain spaces, so split after the last ')'. */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('malformed /proc stat line');
  const fields = text.slice(close + 2).trim().split(/\s+/);
  // fields[0] is field 3 (state) in proc(5) numbering.
  const field = (n: number): number => Number(fields[n - 3]);
  return { ppid: field(4), cpuTicks: field(14) + field(15), rssPages: field(24) };
}

function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // exited
  }
}

/** The given pids plus all their live descendants. */
function processTree(rootPids: number[]): number[] {
  const childrenOf = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return rootPids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const st = readProcStat(Number(e));
    if (st === undefined) continue;
    const list = childrenOf.get(st.ppid) ?? [];
    list.push(Number(e));
    childrenOf.set(st.ppid, list);
  }
  const out: number[] = [];
  const stack = [...rootPids];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(childrenOf.get(pid) ?? []));
  }
  return out;
}

export function processTreeCpuSeconds(rootPids: number[]): number {
  let ticks = 0;
  for (const pid of processTree(rootPids)) ticks += readProcStat(pid)?.cpuTicks ?? 0;
  return ticks / clkTck();
}

const PAGE_BYTES = 4096;

export function processTreeRssBytes(rootPids: number[]): number {
  let pages = 0;
  for (const pid of processTree(rootPids)) pages += readProcStat(pid)?.rssPages ?? 0;
  return pages * PAGE_BYTES;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
