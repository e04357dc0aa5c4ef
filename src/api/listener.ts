import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import type * as grpc from '@grpc/grpc-js';
import { ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from '../log/logger.js';
import { injectH2Connection } from './h2-authority.js';

// One port, two protocols, as etcd serves them: every client URL accepts gRPC (HTTP/2)
// and plain HTTP/1.1 (/metrics, /health, /version, the /v3 JSON gateway). The first bytes
// of a connection decide: the HTTP/2 client preface goes to the gRPC server, anything else
// to the HTTP/1.1 handler. With TLS, ALPN decides instead.

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
  tlsOptions?: tls.TlsOptions;
  logger: Logger;
}

export async function listenClientUrl(url: ListenUrl, opts: ListenOptions): Promise<ClientListener> {
  const injector = opts.grpcServer?.createConnectionInjector(ServerCredentials.createInsecure());
  const httpServer = http.createServer({ keepAliveTimeout: 30_000 }, opts.httpHandler);
  httpServer.on('clientError', (_err, socket) => socket.destroy());
  const sockets = new Set<net.Socket>();

  const route = (socket: net.Socket, isH2: boolean) => {
    // Through h2-authority's shim when the client sends a URL as :authority (etcdctl does).
    if (isH2 && injector) injectH2Connection(socket, (conn) => injector.injectConnection(conn));
    else httpServer.emit('connection', socket);
  };

  const onPlainConnection = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
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
    socket.setNoDelay(true);
    route(socket, socket.alpnProtocol === 'h2');
  };

  let server: net.Server;
  if (url.scheme === 'https') {
    if (!opts.tlsOptions) throw new Error(`${url.text}: https listen URL needs --cert-file and --key-file (or --auto-tls)`);
    const tlsServer = tls.createServer({ ...opts.tlsOptions, ALPNProtocols: ['h2', 'http/1.1'] }, onTlsConnection);
    tlsServer.on('tlsClientError', (err, socket) => {
      opts.logger.warn('rejected TLS connection from client', { 'remote-addr': `${socket.remoteAddress}:${socket.remotePort}`, error: err.message });
    });
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
