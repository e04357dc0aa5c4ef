import type http from 'node:http';
import type { EtcdServer } from '../server/server.js';
import { NONE } from '../raft/types.js';
import { etcdClusterVersion } from '../cli/config.js';

// The HTTP/1.1 side of the client port (and of --listen-metrics-urls): /metrics, /health,
// /livez, /readyz, /version. Other paths are handed to `fallback` (the /v3 JSON gateway).

const HEALTH_TIMEOUT_MS = 2000;

export interface HttpDeps {
  server: EtcdServer;
  fallback?: http.RequestListener;
}

interface Check {
  name: string;
  run: () => Promise<string | undefined>; // undefined = ok, else the reason
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms}ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e as Error); });
  });
}

export function httpHandler(deps: HttpDeps): http.RequestListener {
  const { server } = deps;
  const sm = server.stateMachine;

  async function readCheck(serializable: boolean): Promise<string | undefined> {
    try {
      if (!serializable) await withTimeout(server.linearizableRead(), HEALTH_TIMEOUT_MS, 'linearizable read');
      await sm.rangeKey(Buffer.from('health'));
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  function alarmReason(exclude: Set<string>): string | undefined {
    const active = sm.alarms().filter((a) => !exclude.has(a.alarmName));
    return active.length > 0 ? `alarm activated: ${active.map((a) => a.alarmName).join(', ')}` : undefined;
  }

  async function health(url: URL): Promise<{ ok: boolean; reason: string }> {
    const exclude = new Set(url.searchParams.getAll('exclude'));
    const serializable = url.searchParams.get('serializable') === 'true';
    const alarm = alarmReason(exclude);
    if (alarm) return { ok: false, reason: alarm };
    if (!serializable && server.leader === NONE) return { ok: false, reason: 'no leader' };
    const read = await readCheck(serializable);
    if (read) return { ok: false, reason: read };
    return { ok: true, reason: '' };
  }

  const livezChecks: Check[] = [
    { name: 'serializable_read', run: () => readCheck(true) },
  ];
  const readyzChecks: Check[] = [
    { name: 'data_corruption', run: async () => (sm.alarms().some((a) => a.alarmName === 'CORRUPT') ? 'alarm activated: CORRUPT' : undefined) },
    { name: 'serializable_read', run: () => readCheck(true) },
    { name: 'linearizable_read', run: () => readCheck(false) },
  ];

  async function probe(res: http.ServerResponse, url: URL, base: string, checks: Check[]): Promise<void> {
    const sub = url.pathname.slice(base.length).replace(/^\//, '');
    const exclude = new Set(url.searchParams.getAll('exclude'));
    const verbose = url.searchParams.has('verbose');
    const selected = sub ? checks.filter((c) => c.name === sub) : checks.filter((c) => !exclude.has(c.name));
    if (sub && selected.length === 0) return send(res, 404, 'text/plain', `404 page not found\n`);
    const lines: string[] = [];
    let ok = true;
    for (const c of selected) {
      const reason = await c.run();
      if (reason === undefined) lines.push(`[+]${c.name} ok`);
      else {
        ok = false;
        lines.push(`[-]${c.name} failed: ${reason}`);
      }
    }
    (ok ? server.metrics.healthSuccess : server.metrics.healthFailures).inc();
    const result = `${base.slice(1)} check ${ok ? 'passed' : 'failed'}\n`;
    const body = verbose || !ok ? `${lines.join('\n')}\n${ok ? 'ok' : result}` : 'ok';
    send(res, ok ? 200 : 503, 'text/plain; charset=utf-8', body + (body.endsWith('\n') ? '' : '\n'));
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    const fail = (e: unknown) => send(res, 500, 'text/plain', `internal error: ${(e as Error).message}\n`);
    if (p === '/metrics' && req.method === 'GET') {
      sm.refreshMetrics();
      server.metrics.metricsText().then((text) => send(res, 200, server.metrics.contentType, text), fail);
    } else if (p === '/version') {
      const v = server.cfg.etcdVersion;
      send(res, 200, 'application/json', JSON.stringify({ etcdserver: v, etcdcluster: etcdClusterVersion(v), storage: etcdClusterVersion(v) }));
    } else if (p === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      health(url).then((h) => {
        (h.ok ? server.metrics.healthSuccess : server.metrics.healthFailures).inc();
        send(res, h.ok ? 200 : 503, 'application/json', JSON.stringify({ health: String(h.ok), reason: h.reason }));
      }, fail);
    } else if (p === '/livez' || p.startsWith('/livez/')) {
      probe(res, url, '/livez', livezChecks).catch(fail);
    } else if (p === '/readyz' || p.startsWith('/readyz/')) {
      probe(res, url, '/readyz', readyzChecks).catch(fail);
    } else if (deps.fallback) {
      deps.fallback(req, res);
    } else {
      send(res, 404, 'text/plain', '404 page not found\n');
    }
  };
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
