import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log/logger.js';
import type { TlsSide } from './tls-config.js';
import { trackConnection } from './tls-identity.js';
import { injectH2Connection } from './h2-authority.js';
import { createConnectionInjector } from './fast-unary.js';

// One port, two protocols, as etcd serves them: every client URL accepts gRPC (HTTP/2)
// and plain HTTP/1.1 (/metrics, /health, /version, the /v3 JSON gateway). The first bytes
// of a connection decide: the HTTP/2 client preface goes to the gRPC server, anything else
// to the HTTP/1.1 handler. With TLS, ALPN decides instead (and the first bytes when the
// client offers no ALPN); a connection is admitted by the TLS policy (tls-config.ts)
// before anything reads from it.

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** A client that sends nothing this long after connecting is dropped. */
const SNIFF_TIMEOUT_MS = 10_000;

/** The parts of a listen URL the listener needs (src/cli's EtcdUrl has them). */
export interface ListenUrl {
  scheme: string;
  hostname: string;
  portNumber: number;
  text: string;
}

export interface ClientListener {
  url: ListenUrl;
  close(): Promise<void>;
}

export interface ListenOptions {
  grpcServer?: grpc.Server;
  httpHandler: http.RequestListener;
  /** Client-side TLS (certificates and policy); required for https URLs. */
  tls?: TlsSide;
  logger: Logger;
}

/**
 * ALPN: HTTP/1.1 when the client offers it, else h2. gRPC clients offer only h2; curl and
 * browsers offer both and mean HTTP (/metrics, /health, /v3 gateway), which this port
 * serves over HTTP/1.1 only (an h2 connection belongs to grpc-js as a whole).
 */
function chooseAlpn({ protocols }: { protocols: string[] }): string | undefined {
  if (protocols.includes('http/1.1')) return 'http/1.1';
  if (protocols.includes('h2')) return 'h2';
  return undefined;
}

function refuseHttp(socket: net.Socket, why: string): void {
  const body = `${why}\n`;
  socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** No ALPN: the first bytes tell whether the refused client can read an HTTP/1.1 answer. */
function refuseByFirstBytes(socket: net.Socket, why: string): void {
  const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
  socket.once('data', (chunk: Buffer) => {
    clearTimeout(timer);
    if (chunk.subarray(0, 4).toString('latin1') === 'PRI ') socket.destroy();
    else refuseHttp(socket, why);
  });
}

export async function listenClientUrl(url: ListenUrl, opts: ListenOptions): Promise<ClientListener> {
  // grpc-js's injector, with the hot unary KV calls served directly (fast-unary.ts).
  const injector = opts.grpcServer ? createConnectionInjector(opts.grpcServer, opts.logger) : undefined;
  const httpServer = http.createServer({ keepAliveTimeout: 30_000 }, opts.httpHandler);
  httpServer.on('clientError', (_err, socket) => socket.destroy());
  const sockets = new Set<net.Socket>();

  const route = (socket: net.Socket, isH2: boolean) => {
    if (isH2 && injector) trackConnection(socket); // certCommonName() finds calls' certificates by it
    // Through h2-authority's shim when the client sends a URL as :authority (etcdctl does).
    if (isH2 && injector) injectH2Connection(socket, (conn) => injector.injectConnection(conn));
    else httpServer.emit('connection', socket);
  };

  const onPlainConnection = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    sniffAndRoute(socket);
  };

  /** Reads until the first bytes tell HTTP/2 from HTTP/1.1, then routes the socket. */
  const sniffAndRoute = (socket: net.Socket) => {
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const prefixMatches = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (prefixMatches && n < H2_PREFACE.length) return; // need more bytes to decide
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      socket.unshift(seen);
      route(socket, prefixMatches);
      // HTTP/2 takes over the native handle and drains the unshifted bytes itself; resuming
      // the JS stream would steal data from it. HTTP/1.1 reads through 'data' events.
      if (!prefixMatches) socket.resume();
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  };

  const onTlsConnection = (socket: tls.TLSSocket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    // Nothing reads the socket until the policy has admitted it.
    opts.tls!.admit(socket).then(
      (refusal) => {
        if (socket.destroyed) return;
        if (refusal) {
          opts.tls!.logRefusal(url.text, socket.remoteAddress, refusal);
          // An HTTP/1.1 client can be told why; an HTTP/2 one just loses the connection.
          if (socket.alpnProtocol === 'http/1.1') refuseHttp(socket, refusal.short);
          else if (socket.alpnProtocol === 'h2') socket.destroy();
          else refuseByFirstBytes(socket, refusal.short);
          return;
        }
        if (socket.alpnProtocol === 'h2') route(socket, true);
        else if (socket.alpnProtocol === 'http/1.1') route(socket, false);
        else sniffAndRoute(socket);
      },
      (e: Error) => {
        opts.logger.error('TLS admission check failed; closing the connection', { address: url.text, error: e.message });
        socket.destroy();
      },
    );
  };

  let server: net.Server;
  if (url.scheme === 'https') {
    if (!opts.tls) throw new Error(`${url.text}: https listen URL needs --cert-file and --key-file (or --auto-tls)`);
    const tlsServer = tls.createServer({ ...opts.tls.serverOptions(), ALPNCallback: chooseAlpn }, onTlsConnection);
    opts.tls.attachServer(tlsServer, url.text);
    server = tlsServer;
  } else if (url.scheme === 'http') {
    server = net.createServer({ noDelay: true }, onPlainConnection);
  } else {
    throw new Error(`listen URL ${url.text}: scheme ${url.scheme} is not supported by tsetcd yet (use http or https)`);
  }
  const host = url.hostname === '' ? '0.0.0.0' : url.hostname;
  const port = url.portNumber;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 1024 }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => opts.logger.error('client listener error', { address: url.text, error: err.message }));
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        injector?.drain(1000);
        server.close(() => resolve());
        httpServer.closeIdleConnections();
        setTimeout(() => {
          for (const s of sockets) s.destroy();
          injector?.destroy();
        }, 1000).unref();
      }),
  };
}
