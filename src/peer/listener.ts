import Fastify, { type FastifyInstance } from 'fastify';
import type { EtcdServer } from '../server/server.js';
import type { Logger } from '../log/logger.js';
import { idToHex } from '../server/ids.js';

// The peer port (2380). Members exchange Raft messages here; operators and peers can ask
// it who it is (/version, /members).

export interface PeerListener {
  close(): Promise<void>;
}

interface PeerUrl {
  scheme: string;
  hostname: string;
  portNumber: number;
  text: string;
}

export function peerApp(server: EtcdServer): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
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
  return app;
}

export async function startPeerListeners(urls: PeerUrl[], server: EtcdServer, logger: Logger): Promise<PeerListener[]> {
  const out: PeerListener[] = [];
  for (const url of urls) {
    if (url.scheme !== 'http') throw new Error(`peer URL ${url.text}: scheme ${url.scheme} is not supported by tsetcd yet`);
    const app = peerApp(server);
    await app.listen({ host: url.hostname, port: url.portNumber });
    logger.info('serving peer traffic', { address: url.text });
    out.push({ close: () => app.close() });
  }
  return out;
}
