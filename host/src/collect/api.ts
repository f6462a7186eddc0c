// The collector's HTTP API: /healthz, /readyz (after the first round of polls), /metrics (its
// own counters, Prometheus text) and /api/targets. Same rules as the agent's API: loopback by
// default; off loopback every endpoint but the probes needs the bearer token; HTTPS with api.tls.
import * as http from 'http';
import { createApiServer, isLoopback, tokenOk } from '../api/server';

export interface CollectApiDeps {
  token: string;
  ready(): boolean;
  metrics(): string;
  targets(): unknown;
}

export function startCollectApi(api: { listen: string; tls?: { cert_file: string; key_file: string } }, deps: CollectApiDeps): Promise<http.Server> {
  const i = api.listen.lastIndexOf(':');
  const host = api.listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(api.listen.slice(i + 1));
  const open = isLoopback(host);
  const send = (res: http.ServerResponse, code: number, body: string, type = 'application/json') => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(body);
  };
  const server = createApiServer(api.tls, (req, res) => {
    let p: string;
    try { p = new URL(req.url ?? '/', 'http://x').pathname; } catch { return send(res, 400, '{"error":"bad request target"}'); }
    if (p === '/healthz') return send(res, 200, '{"status":"ok"}');
    if (p === '/readyz') return deps.ready() ? send(res, 200, '{"status":"ready"}') : send(res, 503, '{"status":"starting"}');
    if (!open && !tokenOk(req, deps.token)) {
      res.setHeader('www-authenticate', 'Bearer');
      return send(res, 401, '{"error":"a bearer token is required"}');
    }
    // The collector has nothing to change at run time: every other method is refused.
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, '{"error":"method not allowed"}');
    if (p === '/metrics') return send(res, 200, deps.metrics(), 'text/plain; version=0.0.4');
    if (p === '/api/targets') return send(res, 200, JSON.stringify(deps.targets()));
    return send(res, 404, '{"error":"not found"}');
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(server); });
  });
}
