// The agent's HTTP API and page. Reads: /healthz, /readyz, /metrics, /api/decoders, /api/status, /.
// Writes (always need the bearer token): PUT /api/decoders/{name} (hot-swap, policy-checked),
// POST /api/decoders/{name}/rollback. Bodies are size-limited; errors are JSON with a reason.
import * as http from 'http';
import * as https from 'https';
import * as fs from 'fs';
import * as crypto from 'crypto';
import * as path from 'path';
import { DecoderRegistry } from '../decoders/registry';
import { log } from '../log';
import { PAGE_HTML } from './page';
import { dropSummary } from './drops';
import { activeDiscovery } from '../discovery';

const alog = log.child({ component: 'api' });

export interface ApiDeps {
  metrics: { render(): string };
  registry: DecoderRegistry;
  ready: () => boolean;
  status: () => Record<string, unknown>;
  /** Bearer token for mutating endpoints (and for everything when not on loopback). */
  token: string;
  maxBodyBytes: number;
  /** api.tls: serve HTTPS. */
  tls?: { cert_file: string; key_file: string };
  swap?: (name: string, bytes: Uint8Array, signature: string | undefined) => { code: number; body: Record<string, unknown> };
  rollback?: (name: string) => { code: number; body: Record<string, unknown> };
  /** Service graph, RED and latest traces (host/src/analytics). */
  analytics?: { topology(): unknown; tracesQuery(q: URLSearchParams): unknown };
}

export function decoderList(registry: DecoderRegistry): unknown[] {
  return registry.all().map((d) => ({
    name: d.name,
    version: d.version,
    generation: d.generation,
    protocols: d.inst.meta.protocols,
    ports: d.inst.meta.ports ?? [],
    sha256: d.sha256,
    file: d.file,
    source: d.source,
    approvedBy: d.approvedBy,
    state: d.state,
    streams: d.streams,
    loadedAt: new Date(d.loadedAt).toISOString(),
    memoryBytes: d.inst.memoryBytes(),
    lastError: d.inst.lastError,
    counters: d.inst.counters,
  }));
}

function send(res: http.ServerResponse, code: number, body: string, type = 'application/json'): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}
const json = (res: http.ServerResponse, code: number, o: unknown) => send(res, code, JSON.stringify(o));

/** Mutating API calls need a bearer token: the one in `tokenFile` (or TELEGEN_API_TOKEN_FILE); without
 *  one, a new random token in DATA_DIR/api-token that only root can read, where the CLI looks. */
export function loadApiToken(tokenFile: string | undefined, dataDir: string): string {
  const f = tokenFile ?? process.env.TELEGEN_API_TOKEN_FILE;
  if (f) return fs.readFileSync(f, 'utf8').trim();
  const t = crypto.randomBytes(24).toString('base64url');
  const out = path.join(dataDir, 'api-token');
  fs.writeFileSync(out, t + '\n', { mode: 0o600 });
  fs.chmodSync(out, 0o600);
  return t;
}

export function tokenOk(req: http.IncomingMessage, token: string): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
}

function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? -1);
    if (declared > max) { resolve('too_large'); req.resume(); return; }
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      // Stop buffering but keep reading (discarding) so the 413 reaches the client instead
      // of a reset; requestTimeout bounds how long a client can keep sending.
      if (n > max) { resolve('too_large'); req.removeAllListeners('data'); req.resume(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** ?limit=abc or ?limit=0 answered the default 20 traces and ?edge=curl (no arrow) an empty list:
 *  both read as "no traffic" rather than as a typo. */
export function badTracesQuery(q: URLSearchParams): string | undefined {
  const limit = q.get('limit');
  if (limit !== null && !/^[1-9]\d*$/.test(limit)) return `limit must be a whole number from 1 (at most 500 are returned), not "${limit}"`;
  const edge = q.get('edge');
  if (edge !== null && !/^.+->.+$/.test(edge)) return `edge must be CLIENT->SERVER (an edge id of /api/topology), not "${edge}"`;
  return undefined;
}

/** Routes a tracer adds while it runs (e.g. /api/profile). Checked after the token check, so
 *  a mutating one is always token-guarded; its body is capped at 64 KiB. */
export interface ApiRoute {
  method: string;
  path: string;
  handle(url: URL, body: Buffer | undefined): { code: number; body: unknown; type?: string } | Promise<{ code: number; body: unknown; type?: string }>;
}
export const extraRoutes: ApiRoute[] = [];

/** HTTPS with the configured PEM files, else plain HTTP (loopback default). */
export function createApiServer(tls: { cert_file: string; key_file: string } | undefined, handler: http.RequestListener): http.Server {
  if (!tls) return http.createServer(handler);
  return https.createServer({ cert: fs.readFileSync(tls.cert_file), key: fs.readFileSync(tls.key_file), minVersion: 'TLSv1.2' }, handler) as unknown as http.Server;
}

export function startApi(listen: string, deps: ApiDeps): Promise<http.Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  const open = isLoopback(host);
  const server = createApiServer(deps.tls, async (req, res) => {
    // A request target like "//" or "//[" is not a path: new URL() throws on it, and an
    // exception here would be an unhandled rejection that ends the agent.
    let url: URL;
    try { url = new URL(req.url ?? '/', 'http://x'); } catch { return json(res, 400, { error: 'bad request target' }); }
    const p = url.pathname;
    try {
      if (p === '/healthz') return json(res, 200, { status: 'ok' });
      if (p === '/readyz') return deps.ready() ? json(res, 200, { status: 'ready' }) : json(res, 503, { status: 'starting' });
      const mutating = req.method !== 'GET' && req.method !== 'HEAD';
      if ((mutating || !open) && !tokenOk(req, deps.token)) {
        res.setHeader('www-authenticate', 'Bearer');
        return json(res, 401, { error: 'a bearer token is required (see api.token_file; the agent writes DATA_DIR/api-token)' });
      }
      const extra = extraRoutes.find((r) => r.path === p && r.method === req.method);
      if (extra) {
        const body = mutating ? await readBody(req, 65536) : undefined;
        if (body === 'too_large') return json(res, 413, { error: 'body larger than 65536 bytes' });
        const r = await extra.handle(url, body);
        return r.type ? send(res, r.code, String(r.body), r.type) : json(res, r.code, r.body);
      }
      if (!mutating) {
        switch (p) {
          case '/metrics': return send(res, 200, deps.metrics.render(), 'text/plain; version=0.0.4');
          case '/api/decoders': return json(res, 200, decoderList(deps.registry));
          case '/api/status': return json(res, 200, { ...deps.status(), drops: dropSummary(deps.metrics.render()) });
          case '/api/discovery': { const d = activeDiscovery(); return d ? json(res, 200, d.snapshot({ features: url.searchParams.get('bpf') === '1' })) : json(res, 404, { error: 'discovery disabled' }); }
          case '/api/topology': return deps.analytics ? json(res, 200, deps.analytics.topology()) : json(res, 404, { error: 'analytics disabled' });
          case '/api/traces': {
            if (!deps.analytics) return json(res, 404, { error: 'analytics disabled' });
            const bad = badTracesQuery(url.searchParams);
            return bad ? json(res, 400, { error: bad }) : json(res, 200, deps.analytics.tracesQuery(url.searchParams));
          }
          case '/': return send(res, 200, PAGE_HTML, 'text/html; charset=utf-8');
          // Every browser asks for it: a 404 put an error in the page's console on each load.
          case '/favicon.ico': res.writeHead(204, { 'cache-control': 'max-age=86400' }); return res.end();
          default: return json(res, 404, { error: 'not found' });
        }
      }
      const m = /^\/api\/decoders\/([^/]+)(\/rollback)?$/.exec(p);
      if (!m) return json(res, 404, { error: 'not found' });
      let name = '';
      try { name = decodeURIComponent(m[1]); } catch { /* malformed %-escape: refused below */ }
      if (!NAME.test(name)) return json(res, 400, { error: 'decoder name must be a short lowercase identifier' });
      if (m[2] && req.method === 'POST' && deps.rollback) {
        const r = deps.rollback(name);
        return json(res, r.code, r.body);
      }
      if (!m[2] && req.method === 'PUT' && deps.swap) {
        const body = await readBody(req, deps.maxBodyBytes);
        if (body === 'too_large') return json(res, 413, { error: `module larger than ${deps.maxBodyBytes} bytes` });
        if (body.length < 8) return json(res, 400, { error: 'body must be the .wasm module bytes' });
        const sig = req.headers['x-telegen-signature'];
        const r = deps.swap(name, body, Array.isArray(sig) ? sig[0] : sig);
        return json(res, r.code, r.body);
      }
      return json(res, 405, { error: 'method not allowed' });
    } catch (e) {
      alog.error({ err: (e as Error).message, path: p }, 'API handler failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
    }
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  // Node closes an idle keep-alive connection after 5 s by its own timer; when the agent's event
  // loop is busy (a hot-swap compiling under load) that timer can fire just as a client's next
  // request arrives on the connection, which the client sees as a reset. Loopback clients
  // (telegen decoders load, the page) reuse connections, so keep them longer.
  server.keepAliveTimeout = 30_000;
  server.maxHeadersCount = 100;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(server); });
  });
}
