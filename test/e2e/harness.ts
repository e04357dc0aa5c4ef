import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeFlagsFromShebang } from '../../bench/cluster.js';

// End-to-end harness: real tsetcd processes on 127.0.0.1 with free ports and temp data
// dirs, driven by the real etcdctl. Everything started here is killed and removed by stopAll().

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const tsetcdBin = path.join(repoRoot, 'bin', 'tsetcd.js');
/** `node` arguments that run tsetcd as its executable does (the flags on its #! line). */
export const tsetcdNodeArgs: readonly string[] = [...nodeFlagsFromShebang(tsetcdBin), tsetcdBin];
export const etcdctlBin = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';

const started = new Set<Member>();
const tempDirs = new Set<string>();

export function tempDir(prefix = 'tsetcd-e2e-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** Ports this process has handed out: the kernel may offer a just-closed port again. */
const handedOutPorts = new Set<number>();

/** A port free right now on 127.0.0.1 and not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
}

export interface MemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
}

const WARM_UP_FLAG = '--client-warm-up-connections';

/**
 * Test members skip the start-up warm-up (800 self-connections, ~1 s of CPU each) unless a
 * test sets the flag: it speeds up nothing a test measures and slowed the suite by a fifth.
 */
function withTestDefaults(args: string[]): string[] {
  return args.some((a) => a === WARM_UP_FLAG || a.startsWith(`${WARM_UP_FLAG}=`)) ? args : [...args, WARM_UP_FLAG, '0'];
}

export class Member {
  proc?: ChildProcess;
  stderr = '';
  exitCode: number | null = null;
  exited?: Promise<number | null>;

  constructor(readonly spec: MemberSpec, public args: string[], readonly env: NodeJS.ProcessEnv = {}) {}

  get clientUrl(): string {
    return `http://127.0.0.1:${this.spec.clientPort}`;
  }
  get peerUrl(): string {
    return `http://127.0.0.1:${this.spec.peerPort}`;
  }

  start(): this {
    this.stderr = '';
    this.exitCode = null;
    const proc = spawn(process.execPath, [...tsetcdNodeArgs, ...withTestDefaults(this.args)], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 2_000_000) this.stderr = this.stderr.slice(-1_000_000);
    });
    proc.stdout!.on('data', () => {});
    // 'close', not 'exit': only then has all of the process's output been read.
    this.exited = new Promise((resolve) => proc.on('close', (code) => { this.exitCode = code; resolve(code); }));
    started.add(this);
    return this;
  }

  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.exitCode !== null) throw new Error(`${this.spec.name} exited with ${this.exitCode}:\n${this.stderr.slice(-4000)}`);
      try {
        const res = await fetch(`${this.clientUrl}/health`);
        last = await res.text();
        if (res.ok && last.includes('"true"')) return;
      } catch (e) {
        last = String(e);
      }
      await sleep(100);
    }
    throw new Error(`${this.spec.name} not healthy after ${timeoutMs}ms (last: ${last})\n${this.stderr.slice(-4000)}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (!this.proc || this.exitCode !== null) return this.exitCode;
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc?.kill('SIGKILL'), timeoutMs);
    const code = await this.exited!;
    clearTimeout(t);
    started.delete(this);
    return code;
  }

  kill(): Promise<number | null> {
    return this.stop('SIGKILL');
  }
}

/** A new cluster of `n` members (`memberArgs`, state `new`, then `extra` flags), started and healthy. */
export async function startCluster(n: number, extra: string[] = []): Promise<{ specs: MemberSpec[]; members: Member[] }> {
  const specs = await clusterSpecs(n);
  const ic = initialClusterOf(specs);
  const members = specs.map((s) => new Member(s, memberArgs(s, ic, 'new', undefined, extra)).start());
  await Promise.all(members.map((m) => m.waitHealthy()));
  return { specs, members };
}

/** A single-member cluster with etcd's flags, on free ports. */
export async function singleNode(extra: string[] = [], name = 'infra0'): Promise<Member> {
  const spec: MemberSpec = { name, clientPort: await freePort(), peerPort: await freePort(), dataDir: path.join(tempDir(), `${name}.etcd`) };
  const m = new Member(spec, [
    '--name', name,
    '--data-dir', spec.dataDir,
    '--listen-client-urls', `http://127.0.0.1:${spec.clientPort}`,
    '--advertise-client-urls', `http://127.0.0.1:${spec.clientPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${spec.peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${spec.peerPort}`,
    '--initial-cluster', `${name}=http://127.0.0.1:${spec.peerPort}`,
    ...extra,
  ]);
  m.start();
  await m.waitHealthy();
  return m;
}

export interface CtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function etcdctl(endpoints: string | string[], args: string[], input?: string, timeoutMs = 60_000): Promise<CtlResult> {
  const eps = Array.isArray(endpoints) ? endpoints.join(',') : endpoints;
  return new Promise((resolve, reject) => {
    const p = spawn(etcdctlBin, [`--endpoints=${eps}`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => {
      // 'close' (not 'exit'): stdout may still hold unread output when the process exits.
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

/** Runs etcdctl and fails with its stderr unless it exits 0. */
export async function ctlOk(endpoints: string | string[], args: string[], input?: string): Promise<string> {
  const r = await etcdctl(endpoints, args, input);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((m) => m.kill()));
  started.clear();
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Members named infra0..infraN-1 on free ports, bootstrapped together with etcd's flags. */
export async function clusterSpecs(n: number, root = tempDir()): Promise<MemberSpec[]> {
  const specs: MemberSpec[] = [];
  for (let i = 0; i < n; i++) {
    specs.push({ name: `infra${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: path.join(root, `infra${i}`) });
  }
  return specs;
}

export function initialClusterOf(specs: MemberSpec[]): string {
  return specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
}

export function memberArgs(s: MemberSpec, initialCluster: string, state: 'new' | 'existing', token = 'etcd-cluster-1', extra: string[] = []): string[] {
  return [
    '--name', s.name,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${s.peerPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${s.peerPort}`,
    '--listen-client-urls', `http://127.0.0.1:${s.clientPort}`,
    '--advertise-client-urls', `http://127.0.0.1:${s.clientPort}`,
    '--initial-cluster', initialCluster,
    '--initial-cluster-token', token,
    '--initial-cluster-state', state,
    '--data-dir', s.dataDir,
    // fast elections keep the suite quick; the semantics are the same as etcd's defaults
    '--heartbeat-interval', '50',
    '--election-timeout', '500',
    ...extra,
  ];
}

/** Polls until `fn` stops throwing (or the deadline passes, then rethrows). */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 15_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(intervalMs);
    }
  }
}
