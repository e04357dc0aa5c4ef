// Runs `etcdctl check perf --load=<s|m|l|xl>` (etcd's own fixed-load pass/fail test) and
// parses its verdict. The check offers a fixed, rate-limited write load for 60 s, so it
// reports whether a server keeps up (throughput > 90 % of the target, slowest <= 0.5 s,
// stddev <= 0.1 s, no errors), never its maximum throughput.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { processTreeCpuSeconds } from './cluster.js';

export type CheckPerfLoad = 's' | 'm' | 'l' | 'xl';

/** Offered write rate per load, from etcdctl's check.go (used to print "target"). */
export const CHECK_PERF_TARGET_WRITES_PER_SEC: Record<CheckPerfLoad, number> = { s: 150, m: 1000, l: 8000, xl: 15000 };

export const ETCDCTL_DEFAULT_PATH = '/usr/bin/etcdctl';

export interface CheckPerfResult {
  load: CheckPerfLoad;
  /** 'pass' / 'fail' are etcdctl's verdict; 'error' means it did not produce one. */
  verdict: 'pass' | 'fail' | 'error';
  writesPerSec?: number;
  slowestSec?: number;
  stddevSec?: number;
  /** The individual criteria etcdctl printed, e.g. "FAIL: Throughput too low: 2370 writes/s". */
  lines: string[];
  /** Set when verdict is 'error' (non-zero exit without verdict, timeout, spawn failure). */
  error?: string;
  elapsedSec: number;
  /** CPU used by etcdctl (sampled every second from /proc, so up to ~1 s is missed). */
  etcdctlCpuSec?: number;
}

/** Extracts the verdict and numbers from etcdctl check perf's output (progress bar included). */
export function parseCheckPerfOutput(load: CheckPerfLoad, output: string): Omit<CheckPerfResult, 'elapsedSec'> {
  // The progress bar redraws with '\r' and may end without a newline, so a verdict line can
  // follow it on the same physical line: take each verdict from where it starts.
  const lines: string[] = [];
  for (const raw of output.split(/\r?\n|\r/)) {
    const m = /(PASS|FAIL|Slowest request|Stddev)\b.*$/.exec(raw);
    if (m) lines.push(m[0].trim());
  }
  const result: Omit<CheckPerfResult, 'elapsedSec'> = { load, verdict: 'error', lines };
  for (const line of lines) {
    const tput = /Throughput (?:is|too low:) (\d+) writes\/s/.exec(line);
    if (tput) result.writesPerSec = Number(tput[1]);
    const slowest = /Slowest request took (?:too long: )?([\d.]+)s/.exec(line);
    if (slowest) result.slowestSec = Number(slowest[1]);
    const stddev = /Stddev (?:is|too high:) ([\d.]+)s/.exec(line);
    if (stddev) result.stddevSec = Number(stddev[1]);
    if (line === 'PASS') result.verdict = 'pass';
    if (line === 'FAIL') result.verdict = 'fail';
  }
  // "FAIL: too many errors" ends the run without a final PASS/FAIL line.
  if (result.verdict === 'error' && lines.some((l) => l.startsWith('FAIL'))) result.verdict = 'fail';
  return result;
}

export interface CheckPerfOptions {
  endpoints: string[];
  load: CheckPerfLoad;
  etcdctlPath?: string;
  /** Kill etcdctl after this long (the check itself takes 60 s plus setup/cleanup). */
  timeoutMs?: number;
  /** taskset CPU list for etcdctl (undefined = no pinning). */
  pinCpus?: string;
  /**
   * Polled every second; a non-undefined return kills etcdctl and becomes the error
   * (e.g. "member died": etcdctl would otherwise retry against a dead server until timeout).
   */
  abortReason?: () => string | undefined;
}

export function etcdctlAvailable(etcdctlPath: string = ETCDCTL_DEFAULT_PATH): boolean {
  return fs.existsSync(etcdctlPath);
}

export async function runCheckPerf(opts: CheckPerfOptions): Promise<CheckPerfResult> {
  const etcdctl = opts.etcdctlPath ?? ETCDCTL_DEFAULT_PATH;
  const timeoutMs = opts.timeoutMs ?? 150_000;
  const etcdctlArgs = [`--endpoints=${opts.endpoints.join(',')}`, 'check', 'perf', `--load=${opts.load}`];
  const [command, args] =
    opts.pinCpus !== undefined ? ['taskset', ['-c', opts.pinCpus, etcdctl, ...etcdctlArgs]] : [etcdctl, etcdctlArgs];
  const startedAt = performance.now();
  return new Promise((resolve) => {
    // Kept apart: interleaving the two pipes chunk by chunk can glue lines together.
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const child = spawn(command, args, {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    // etcdctl is the load generator here, so its CPU is the "client CPU" of this workload.
    // /proc disappears at exit, hence periodic samples.
    let etcdctlCpuSec: number | undefined;
    let abortedBecause: string | undefined;
    const sampler = setInterval(() => {
      if (child.pid !== undefined) {
        const cpu = processTreeCpuSeconds([child.pid]);
        if (cpu > 0) etcdctlCpuSec = cpu;
      }
      const reason = abortedBecause === undefined ? opts.abortReason?.() : undefined;
      if (reason !== undefined) {
        abortedBecause = reason;
        child.kill('SIGKILL');
      }
    }, 1000);
    let finished = false;
    const finish = (error: string | undefined): void => {
      // 'error' and 'close' can both fire for one failed spawn; report once.
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearInterval(sampler);
      const output = `${stdout}\n${stderr}`;
      const parsed = parseCheckPerfOutput(opts.load, output);
      const result: CheckPerfResult = { ...parsed, elapsedSec: (performance.now() - startedAt) / 1000 };
      if (etcdctlCpuSec !== undefined) result.etcdctlCpuSec = etcdctlCpuSec;
      if (result.verdict === 'error') result.error = error ?? lastLine(output) ?? 'no verdict printed';
      resolve(result);
    };
    child.on('error', (err) => finish(`cannot run ${etcdctl}: ${err.message}`));
    child.on('close', (code) => {
      if (abortedBecause !== undefined) finish(`aborted: ${abortedBecause}`);
      else if (timedOut) finish(`timed out after ${timeoutMs} ms`);
      else finish(code === 0 ? undefined : `etcdctl exited with code ${code}: ${lastLine(`${stdout}\n${stderr}`) ?? ''}`);
    });
  });
}

function lastLine(text: string): string | undefined {
  const lines = text.split(/\r?\n|\r/).map((l) => l.trim()).filter((l) => l.length > 0);
  return lines[lines.length - 1]?.slice(0, 300);
}
