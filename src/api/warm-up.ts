import http2 from 'node:http2';
import type { Logger } from '../log/logger.js';

// Client-connection warm-up at start.
//
// Serving a client's first request on a new connection runs a long path of JavaScript: the
// listener's protocol sniffing, the `:authority` decision (h2-authority.ts), Node's HTTP/2
// session setup, grpc-js's session bookkeeping and the fast unary path. In a fresh process
// that code is interpreted, not yet optimized by V8, and costs ~5x its steady-state CPU
// (measured on a 2-core VM: 200 new connections with one request each took ~300 ms of server
// CPU on a fresh member, ~60 ms once about 800 connections had been served). Clients arrive
// in bursts (etcdctl check perf opens 200 clients at once, every client reconnects after a
// restart), so on a cold member that burst delayed requests by up to ~0.5 s.
//
// So a starting member serves itself that many connections first: each opens an HTTP/2
// connection to the member's own client URL and sends one serializable Range, marked with
// WARM_UP_HEADER so that the request metrics (grpc_server_*) do not count it (its ~40 KB of
// messages do show in etcd_network_client_grpc_*_bytes_total). It reads only and changes
// nothing. Done in
// small batches so real clients interleave; stopped at shutdown; failures end it quietly.

/** Request header marking a warm-up call (fast-unary.ts exempts it from the request metrics). */
export const WARM_UP_HEADER = 'tsetcd-warm-up';

/** Connections in flight at once: short bursts, so real requests wait little behind them. */
const CONNECTIONS_PER_BATCH = 20;
/** A warm-up request that takes longer than this ends the warm-up (the member is busy or stuck). */
const REQUEST_TIMEOUT_MS = 5_000;
const RANGE_PATH = '/etcdserverpb.KV/Range';

/** RangeRequest{key (1): "\0tsetcd-warm-up", serializable (7): true}, framed as one gRPC message. */
function rangeRequestFrame(): Buffer {
  const key = Buffer.from('\0tsetcd-warm-up', 'latin1');
  const body = Buffer.concat([Buffer.from([0x0a, key.length]), key, Buffer.from([0x38, 0x01])]);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

export interface WarmUpTarget {
  /** Host to dial (a wildcard listen address becomes loopback). */
  host: string;
  port: number;
}

/** Where a member listening on `hostname` can reach itself. */
export function warmUpHost(hostname: string): string {
  if (hostname === '' || hostname === '0.0.0.0') return '127.0.0.1';
  if (hostname === '::' || hostname === '[::]') return '::1';
  return hostname.replace(/^\[(.*)\]$/, '$1');
}

export interface WarmUpResult {
  connections: number;
  elapsedMs: number;
  /** Why it ended early, if it did. */
  stoppedBecause?: string;
}

/** One connection, one Range; resolves when the call has ended (any gRPC status). */
function oneCall(authority: string, request: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(authority);
    const timer = setTimeout(() => fail(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
    const fail = (e: Error) => {
      clearTimeout(timer);
      session.destroy();
      reject(e);
    };
    session.once('error', fail);
    const req = session.request({
      ':method': 'POST',
      ':path': RANGE_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      [WARM_UP_HEADER]: '1',
    });
    req.on('error', fail);
    req.on('data', () => {});
    req.once('close', () => {
      clearTimeout(timer);
      session.close();
      resolve();
    });
    req.end(request);
  });
}

export async function warmUpClientConnections(
  target: WarmUpTarget,
  connections: number,
  shouldStop: () => boolean,
): Promise<WarmUpResult> {
  const started = performance.now();
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const authority = `http://${host}:${target.port}`;
  const request = rangeRequestFrame();
  let done = 0;
  while (done < connections) {
    if (shouldStop()) return { connections: done, elapsedMs: performance.now() - started, stoppedBecause: 'member stopping' };
    const batch = Math.min(CONNECTIONS_PER_BATCH, connections - done);
    try {
      await Promise.all(Array.from({ length: batch }, () => oneCall(authority, request)));
    } catch (e) {
      return { connections: done, elapsedMs: performance.now() - started, stoppedBecause: (e as Error).message };
    }
    done += batch;
    // Let whatever else waits (clients, Raft) run between batches.
    await new Promise<void>((r) => setImmediate(r));
  }
  return { connections: done, elapsedMs: performance.now() - started };
}

/** Runs the warm-up in the background and logs how it went. */
export function startClientWarmUp(target: WarmUpTarget | undefined, connections: number, shouldStop: () => boolean, logger: Logger): Promise<void> {
  if (target === undefined || connections <= 0) return Promise.resolve();
  return warmUpClientConnections(target, connections, shouldStop).then((r) => {
    const fields = { connections: r.connections, 'took-ms': Math.round(r.elapsedMs), target: `${target.host}:${target.port}` };
    if (r.stoppedBecause === undefined) logger.info('client connection path warmed up', fields);
    else logger.info('client connection warm-up ended early', { ...fields, reason: r.stoppedBecause });
  });
}
