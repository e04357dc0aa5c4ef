import Fastify, { type FastifyInstance } from 'fastify';
import type { EtcdServer } from '../server/server.js';
import type { Logger } from '../log/logger.js';
import { idToHex } from '../server/ids.js';
import type http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import type { TlsSide } from '../api/tls-config.js';
import { HEADER_CLUSTER_ID, HEADER_FROM, STREAM_PROTOCOL, StreamDecoder, type PeerTransport } from './transport.js';
import { etcdClusterVersion } from '../cli/config.js';

// The peer port (2380). Members exchange Raft messages here (POST /raft); operators and
// joining members ask it who is in the cluster (/members) and what it runs (/version).

const rejectedLogAtMs = new Map<string, number>();

function refuse(socket: net.Socket, status: string, body: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * A peer opens its outbound Raft stream to us: check that it belongs to our cluster and
 * has not been removed, then read length-prefixed messages until the connection ends.
 */
function acceptRaftStream(
  server: EtcdServer, transport: PeerTransport | undefined, logger: Logger,
  req: http.IncomingMessage, socket: net.Socket, head: Buffer,
): void {
  socket.on('error', () => socket.destroy());
  if (req.url !== '/raft/stream' || String(req.headers.upgrade) !== STREAM_PROTOCOL) {
    refuse(socket, '404 Not Found', 'unknown upgrade');
    return;
  }
  const clusterHeader = String(req.headers[HEADER_CLUSTER_ID] ?? '');
  const fromHeader = String(req.headers[HEADER_FROM] ?? '');
  const local = idToHex(server.clusterId);
  if (clusterHeader !== local) {
    // Say which cluster and what to fix, on both sides (the sender logs our answer).
    const why =
      `raft stream from member ${fromHeader || '?'} of cluster ${clusterHeader || '?'} refused: this member (${idToHex(server.memberId)}) ` +
      `belongs to cluster ${local}. The sender was started with a different --initial-cluster-token or --initial-cluster, ` +
      `or with --initial-cluster-state new where existing was needed (or its data dir belongs to another cluster)`;
    const last = rejectedLogAtMs.get(fromHeader) ?? 0;
    if (Date.now() - last > 10_000) {
      rejectedLogAtMs.set(fromHeader, Date.now());
      logger.error('rejected a peer from another cluster', { 'remote-member-id': fromHeader, 'remote-cluster-id': clusterHeader, 'local-cluster-id': local, reason: why });
    }
    refuse(socket, '412 Precondition Failed', why);
    return;
  }
  const from = BigInt('0x' + (/^[0-9a-f]{1,16}$/.test(fromHeader) ? fromHeader : '0'));
  if (server.membership.isRemoved(from)) {
    refuse(socket, '410 Gone', `member ${fromHeader} was removed from cluster ${local}; it must not rejoin with its old data dir`);
    return;
  }
  socket.setNoDelay(true);
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${STREAM_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`);
  transport?.noteReceived(from);
  const decoder = new StreamDecoder();
  const received = server.metrics.peerReceivedCell(fromHeader);
  const onData = (chunk: Buffer) => {
    received.inc(chunk.length);
    let messages;
    try {
      messages = decoder.push(chunk);
    } catch (e) {
      logger.warn('malformed raft stream from peer; closing it', { 'remote-member-id': fromHeader, error: (e as Error).message });
      server.metrics.peerReceivedFailures.inc({ From: fromHeader });
      socket.destroy();
      return;
    }
    if (messages.length > 0) server.step(messages);
  };
  if (head.length > 0) onData(head);
  socket.on('data', onData);
}

export interface PeerListener {
  close(): Promise<void>;
}

interface PeerUrl {
  scheme: string;
  hostname: string;
  portNumber: number;
  text: string;
}

export function peerApp(server: EtcdServer, transport: PeerTransport | undefined, logger: Logger): FastifyInstance {
  const app = Fastify({ logger: false });
  app.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    acceptRaftStream(server, transport, logger, req, socket, head);
  });

  app.get('/version', async () => {
    const v = server.cfg.etcdVersion;
    return { etcdserver: v, etcdcluster: etcdClusterVersion(v) };
  });

  app.get('/members', async (_req, reply) => {
    reply.header('X-Etcd-Cluster-ID', idToHex(server.clusterId));
    return server.membership.list().map((m) => ({
      id: idToHex(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner,
    }));
  });

  // Lease keep-alives and TTL questions forwarded by followers: only the leader knows deadlines.
  app.post('/leases/renew', async (req, reply) => {
    const { id } = req.body as { id: string };
    if (!server.isLeader) {
      reply.code(503);
      return { error: 'not leader' };
    }
    return { ttl: await server.renewLease(BigInt(id)) };
  });
  app.post('/leases/ttl', async (req, reply) => {
    const { id } = req.body as { id: string };
    if (!server.isLeader) {
      reply.code(503);
      return { error: 'not leader' };
    }
    return { ttl: server.stateMachine.lessor.remainingSec(BigInt(id)) };
  });

  // A snapshot from the leader: restore the database image into a fresh directory first,
  // then hand Raft the message; the ready loop swaps the database in when Raft accepts it.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.post('/raft/snapshot', async (req, reply) => {
    const clusterHeader = String(req.headers[HEADER_CLUSTER_ID] ?? '');
    if (clusterHeader !== idToHex(server.clusterId)) {
      reply.code(412);
      return `snapshot from cluster ${clusterHeader} refused: this member belongs to cluster ${idToHex(server.clusterId)}`;
    }
    try {
      await server.receiveSnapshot(req.body as NodeJS.ReadableStream);
    } catch (e) {
      logger.warn('failed to receive database snapshot', { 'remote-member-id': String(req.headers[HEADER_FROM] ?? ''), error: (e as Error).message });
      reply.code(400);
      return (e as Error).message;
    }
    reply.code(204);
    return '';
  });
  return app;
}

/**
 * An https peer URL: our TLS server admits each connection by the peer TLS policy (CA,
 * allowed CN/hostname, SAN of the peer's address, CRL), then hands it to the app's HTTP
 * server. A refused peer gets a 403 with the short reason (our dialer logs it); the full
 * reason goes to our log.
 */
async function listenPeerTls(url: PeerUrl, app: FastifyInstance, side: TlsSide, logger: Logger): Promise<PeerListener> {
  await app.ready();
  const sockets = new Set<net.Socket>();
  const tlsServer = tls.createServer({ ...side.serverOptions(), ALPNProtocols: ['http/1.1'] }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    side.admit(socket).then(
      (refusal) => {
        if (socket.destroyed) return;
        if (!refusal) {
          app.server.emit('connection', socket);
          return;
        }
        side.logRefusal(url.text, socket.remoteAddress, refusal);
        refuse(socket, '403 Forbidden', refusal.short);
      },
      (e: Error) => {
        logger.error('peer TLS admission check failed; closing the connection', { address: url.text, error: e.message });
        socket.destroy();
      },
    );
  });
  side.attachServer(tlsServer, url.text);
  await new Promise<void>((resolve, reject) => {
    tlsServer.once('error', reject);
    tlsServer.listen({ host: url.hostname, port: url.portNumber }, () => {
      tlsServer.removeListener('error', reject);
      resolve();
    });
  });
  tlsServer.on('error', (err) => logger.error('peer listener error', { address: url.text, error: err.message }));
  return {
    close: async () => {
      await new Promise<void>((resolve) => {
        tlsServer.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await app.close();
    },
  };
}

export async function startPeerListeners(
  urls: PeerUrl[], server: EtcdServer, logger: Logger, transport?: PeerTransport, tlsSide?: TlsSide,
): Promise<PeerListener[]> {
  const out: PeerListener[] = [];
  for (const url of urls) {
    if (url.scheme === 'https') {
      if (!tlsSide) throw new Error(`peer URL ${url.text}: https needs --peer-cert-file and --peer-key-file (or --peer-auto-tls)`);
      out.push(await listenPeerTls(url, peerApp(server, transport, logger), tlsSide, logger));
      logger.info('serving peer traffic', { address: url.text });
      continue;
    }
    if (url.scheme !== 'http') throw new Error(`peer URL ${url.text}: scheme ${url.scheme} is not supported by tsetcd yet (use http or https)`);
    const app = peerApp(server, transport, logger);
    app.server.on('connection', (sock: import('node:net').Socket) => sock.setNoDelay(true));
    await app.listen({ host: url.hostname, port: url.portNumber });
    logger.info('serving peer traffic', { address: url.text });
    out.push({ close: () => app.close() });
  }
  return out;
}
