// The correlation stage: `correlateStage(cfg, out)` like the other span stages, plus the
// connection facts (pid, tid, 4-tuple) it needs, the log-context hook and a flush for shutdown.
import * as os from 'os';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ConnMeta, ends } from '../model';
import { unmapV4 } from '../pipeline/spans';
import { Correlator, CorrelateConfig, DEFAULT_CORRELATE, SpanConn } from './correlator';

export { Correlator, CorrelateConfig, DEFAULT_CORRELATE, SpanConn } from './correlator';

export interface CorrelateStage {
  (span: ReadableSpan, conn?: ConnMeta): void;
  /** {traceId, spanId} of the server request in flight on (pid, tid) at epoch ns ts, once that request has been seen. */
  logContext(pid: number, tid: number | undefined, ts: bigint): { traceId: string; spanId: string } | undefined;
  /** logContext, or 'pending' while that request's trace is still being decided (ask again later). */
  logLink(pid: number, tid: number | undefined, ts: bigint): { traceId: string; spanId: string } | 'pending' | undefined;
  flush(): void;
  stop(): void;
  /** Calls `fn` with every span as it leaves correlation (final trace ids); returns an unsubscribe. */
  onSpan(fn: (s: ReadableSpan) => void): () => void;
  correlator: Correlator;
}

let localCache: { at: number; set: Set<string> } | undefined;
/** Addresses of this node: a peer there may be a traced process whose client span we will see. */
export function isLocalAddress(addr: string): boolean {
  const a = unmapV4(addr);
  if (a.startsWith('127.') || a === '::1') return true;
  const now = Date.now();
  if (!localCache || now - localCache.at > 30_000) {
    const set = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) set.add(i.address);
    localCache = { at: now, set };
  }
  return localCache.set.has(a);
}

/** Connections without facts (capture replay). */
const NO_FACTS: SpanConn = Object.freeze({});

/** The connection's facts for Correlator.add, one object per connection: tid is per exchange
 *  (the kernel source updates it on every syscall), so it is set on each call, and the
 *  correlator copies it into its node when it adds the span. */
export function connFacts(meta: ConnMeta | undefined): SpanConn {
  if (!meta || meta.observer === 'capture') return NO_FACTS;
  let t = meta.correlateCache as (SpanConn & { role: string }) | undefined;
  if (!t || t.role !== meta.role || t.pid !== meta.pid || t.connId !== meta.connId) {
    const e = ends(meta);
    t = {
      role: meta.role, pid: meta.pid, tid: meta.tid,
      tuple: `${unmapV4(e.clientAddr)}|${e.clientPort}|${unmapV4(e.serverAddr)}|${e.serverPort}`,
      peerLocal: meta.role === 'server' ? isLocalAddress(e.clientAddr) : undefined,
      connId: meta.connId,
    };
    meta.correlateCache = t;
  }
  t.tid = meta.tid;
  return t;
}

export function correlateStage(cfg: Partial<CorrelateConfig>, out: (s: ReadableSpan) => void, now?: () => number): CorrelateStage {
  // An array replaced on (un)subscribe: a Set's iterator per span was garbage.
  let taps: Array<(s: ReadableSpan) => void> = [];
  const c = new Correlator({ ...DEFAULT_CORRELATE, ...cfg }, (s) => { const t = taps; for (let i = 0; i < t.length; i++) t[i](s); out(s); }, now);
  const timer = setInterval(() => c.tick(), 100);
  timer.unref();
  const stage = ((span: ReadableSpan, conn?: ConnMeta) => c.add(span, connFacts(conn))) as CorrelateStage;
  stage.logContext = (pid, tid, ts) => c.logContext(pid, tid, ts);
  stage.logLink = (pid, tid, ts) => c.logLink(pid, tid, ts);
  stage.flush = () => c.flush();
  stage.onSpan = (fn) => {
    if (!taps.includes(fn)) taps = [...taps, fn];
    return () => { taps = taps.filter((x) => x !== fn); };
  };
  stage.stop = () => { clearInterval(timer); c.flush(); };
  stage.correlator = c;
  return stage;
}
