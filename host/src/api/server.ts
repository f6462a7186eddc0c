// The agent's HTTP API and page: /healthz, /readyz, /metrics, /api/decoders, /api/connections, /.
import * as http from 'http';
import { SelfMetrics } from '../metrics/self';
import { DecoderRegistry } from '../decoders/registry';
import { log } from '../log';
import { PAGE_HTML } from './page';

const alog = log.child({ component: 'api' });

export interface ApiDeps {
  metrics: SelfMetrics;
  registry: DecoderRegistry;
  ready: () => boolean;
  status: () => Record<string, unknown>;
}

export function decoderList(registry: DecoderRegistry): unknown[] {
  return [...registry.decoders.values()].map((d) => ({
    name: d.name,
    version: d.inst.meta.version,
    protocols: d.inst.meta.protocols,
    ports: d.inst.meta.ports ?? [],
    sha256: d.sha256,
    file: d.file,
    state: 'active',
    loadedAt: new Date(d.loadedAt).toISOString(),
    memoryBytes: d.inst.memoryBytes(),
    counters: d.inst.counters,
  }));
}

function send(res: http.ServerResponse, code: number, body: string, type = 'application/json'): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

export function startApi(listen: string, deps: ApiDeps): Promise<http.Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON.stringify({ error: 'method not allowed' }));
      switch (url.pathname) {
        case '/healthz': return send(res, 200, JSON.stringify({ status: 'ok' }));
        case '/readyz': return deps.ready() ? send(res, 200, JSON.stringify({ status: 'ready' })) : send(res, 503, JSON.stringify({ status: 'starting' }));
        case '/metrics': return send(res, 200, deps.metrics.render(), 'text/plain; version=0.0.4');
        case '/api/decoders': return send(res, 200, JSON.stringify(decoderList(deps.registry)));
        case '/api/status': return send(res, 200, JSON.stringify(deps.status()));
        case '/': return send(res, 200, PAGE_HTML, 'text/html; charset=utf-8');
        default: return send(res, 404, JSON.stringify({ error: 'not found' }));
      }
    } catch (e) {
      alog.error({ err: (e as Error).message, path: url.pathname }, 'API handler failed');
      send(res, 500, JSON.stringify({ error: 'internal error' }));
    }
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(server); });
  });
}
