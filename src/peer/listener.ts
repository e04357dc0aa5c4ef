import Fastify, { type FastifyInstance } from 'fastify';
import type { EtcdServer } from '../server/server.js';
import type { Logger } from '../log/logger.js';
import { idToHex } from '../server/ids.js';
import { decodeBatch, HEADER_CLUSTER_ID, HEADER_FROM, type PeerTransport } from './transport.js';

// The peer port (2380). Members exchange Raft messages here (POST /raft); operators and
// joining members ask it who is in the cluster (/members) and what it runs (/version).

/** Largest batch of raft messages accepted in one request. */
const MAX_RAFT_BATCH_BYTES = 64 * 1024 * 1024;

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
  const app = Fastify({ logger: false, bodyLimit: MAX_RAFT_BATCH_BYTES });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_RAFT_BATCH_BYTES }, (_req, body, done) => done(null, body));
  const rejectedLogAtMs = new Map<string, number>();

  app.get('/version', async () => {
    const v = server.cfg.etcdVersion;
    return { etcdserver: v, etcdcluster: v.split('.').slice(0, 2).join('.') + '.0' };
  });

  app.get('/members', async (_req, reply) => {
    reply.header('X-Etcd-Cluster-ID', idToHex(server.clusterId));
    return server.membership.list().map((m) => ({
      id: idToHex(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner,
    }));
  });

  app.post('/raft', async (req, reply) => {
    const clusterHeader = String(req.headers[HEADER_CLUSTER_ID] ?? '');
    const fromHeader = String(req.headers[HEADER_FROM] ?? '');
    const local = idToHex(server.clusterId);
    if (clusterHeader !== local) {
      // Say which cluster and what to fix, on both sides (the sender logs our answer).
      const why =
        `request from member ${fromHeader || '?'} of cluster ${clusterHeader || '?'} refused: this member (${idToHex(server.memberId)}) ` +
        `belongs to cluster ${local}. The sender was started with a different --initial-cluster-token or --initial-cluster, ` +
        `or with --initial-cluster-state new where existing was needed (or its data dir belongs to another cluster)`;
      const last = rejectedLogAtMs.get(fromHeader) ?? 0;
      if (Date.now() - last > 10_000) {
        rejectedLogAtMs.set(fromHeader, Date.now());
        logger.error('rejected raft messages from another cluster', { 'remote-member-id': fromHeader, 'remote-cluster-id': clusterHeader, 'local-cluster-id': local, reason: why });
      }
      reply.code(412).header('X-Etcd-Cluster-ID', local);
      return why;
    }
    const from = BigInt('0x' + (fromHeader || '0'));
    if (server.membership.isRemoved(from)) {
      reply.code(410);
      return `member ${fromHeader} was removed from cluster ${local}; it must not rejoin with its old data dir`;
    }
    const body = req.body as Buffer;
    let messages;
    try {
      messages = decodeBatch(body);
    } catch (e) {
      reply.code(400);
      return `malformed raft message batch: ${(e as Error).message}`;
    }
    transport?.noteReceived(from);
    server.metrics.peerReceivedBytes.inc({ From: fromHeader }, body.length);
    server.step(messages);
    reply.code(204);
    return '';
  });
  return app;
}

export async function startPeerListeners(
  urls: PeerUrl[], server: EtcdServer, logger: Logger, transport?: PeerTransport,
): Promise<PeerListener[]> {
  const out: PeerListener[] = [];
  for (const url of urls) {
    if (url.scheme !== 'http') throw new Error(`peer URL ${url.text}: scheme ${url.scheme} is not supported by tsetcd yet`);
    const app = peerApp(server, transport, logger);
    await app.listen({ host: url.hostname, port: url.portNumber });
    logger.info('serving peer traffic', { address: url.text });
    out.push({ close: () => app.close() });
  }
  return out;
}
