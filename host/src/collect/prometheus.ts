// Prometheus/OpenMetrics target: one GET, parsed, each sample a point named as the sample
// (http_requests_total stays http_requests_total), labels as attributes.
import { PollContext, Point } from './types';
import { parsePromText, sampleIsCumulative } from './prom-text';
import type { Target } from './config';

type PromTarget = Extract<Target, { type: 'prometheus' }>;

const MAX_BODY = 32 * 1024 * 1024;
// OTel instrument names allow [A-Za-z0-9_./-]; Prometheus recording rules use ':'.
const otelName = (n: string) => n.replace(/[^A-Za-z0-9_./-]/g, '_');

async function get(t: PromTarget, ctx: PollContext): Promise<Response> {
  const init: RequestInit = {
    headers: { accept: 'application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5', 'user-agent': ctx.userAgent, ...t.headers },
    signal: AbortSignal.timeout(ctx.timeoutMs),
    redirect: 'error',
  };
  try {
    return await fetch(t.url, init);
  } catch (e) {
    // A kept-alive connection the target closed between polls fails before any response: the
    // GET is idempotent, so one fresh attempt is safe. Other errors keep their cause.
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'ECONNRESET' || cause?.code === 'UND_ERR_SOCKET' || cause?.code === 'EPIPE') return fetch(t.url, init);
    throw new Error(`${(e as Error).message}${cause?.message ? `: ${cause.message}` : ''}`);
  }
}

export async function pollPrometheus(t: PromTarget, ctx: PollContext): Promise<Point[]> {
  const res = await get(t, ctx);
  if (!res.ok) throw new Error(`HTTP ${res.status} from ${t.url}`);
  const len = Number(res.headers.get('content-length') ?? 0);
  if (len > MAX_BODY) throw new Error(`body of ${len} bytes is over the ${MAX_BODY} byte limit`);
  const text = await res.text();
  if (text.length > MAX_BODY) throw new Error(`body over the ${MAX_BODY} byte limit`);
  const parsed = parsePromText(text);
  if (parsed.badLines && !parsed.families.size) throw new Error(`not Prometheus text: ${parsed.firstError}`);
  const out: Point[] = [];
  for (const f of parsed.families.values()) {
    for (const s of f.samples) {
      if (s.name.endsWith('_created')) continue;
      out.push({
        name: otelName(s.name),
        kind: sampleIsCumulative(f, s) ? 'sum' : 'gauge',
        unit: f.unit,
        description: f.help,
        attributes: s.labels,
        value: s.value,
      });
    }
  }
  return out;
}
