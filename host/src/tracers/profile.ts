// The CPU profiler as an agent tracer: OTLP profiles into agent.queues.profiles, pprof files
// under DATA_DIR/pprof/, GET /api/profile for flame graphs and token-guarded PUT/POST
// /api/profile/{enabled,target} for run-time control. Off in the config, it is still there to be
// switched on (the kernel side loads then); samples get the trace/span of the server request in
// flight on their thread from the spans leaving correlation.
import { SpanKind } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { TracerFactory } from '../agent';
import { log } from '../log';
import { Profiler, Target } from '../profile/profiler';
import { ThreadSpans } from '../profile/links';
import { ns } from '../correlate/correlator';
import { extraRoutes, ApiRoute } from '../api/server';
import { ownMapsByPrefix, registerMaps } from './map-fill';

const plog = log.child({ component: 'profile' });

const MAX_SECONDS = 86_400;

export function profileRoutes(p: Profiler): ApiRoute[] {
  const parseSeconds = (u: URL) => Math.min(MAX_SECONDS, Math.max(1, Number(u.searchParams.get('seconds') ?? 60) || 60));
  return [
    {
      method: 'GET', path: '/api/profile',
      handle: (u) => {
        const seconds = parseSeconds(u);
        const since = Date.now() - seconds * 1000;
        const service = u.searchParams.get('service') || undefined;
        // The CPU samples linked to one trace: what its requests burned on their threads.
        const traceId = u.searchParams.get('trace_id');
        if (traceId) {
          if (!/^[0-9a-f]{32}$/.test(traceId)) return { code: 400, body: { error: 'trace_id must be 32 lowercase hex digits' } };
          return { code: 200, body: { trace_id: traceId, seconds, tree: p.store.traceTree(traceId, since) } };
        }
        if (u.searchParams.get('format') === 'folded') {
          const lines = [...p.store.folded(service, since)].map(([l, c]) => `${l} ${c}`).join('\n');
          return { code: 200, body: lines + (lines ? '\n' : ''), type: 'text/plain; charset=utf-8' };
        }
        return { code: 200, body: { service: service ?? null, seconds, enabled: p.isEnabled(), target: p.getTarget(), services: p.store.services(since), tree: p.store.tree(service, since) } };
      },
    },
    {
      method: 'GET', path: '/api/profile/status',
      handle: () => ({ code: 200, body: { enabled: p.isEnabled(), attached: p.isAttached(), target: p.getTarget(), stats: p.stats(), symbolizer: p.symbolizerStats(), attach: p.report() ?? null } }),
    },
    ...(['PUT', 'POST'] as const).flatMap((method): ApiRoute[] => [
      {
        method, path: '/api/profile/enabled',
        handle: async (_u, body) => {
          const o = parseJson(body);
          if (!o || typeof o.enabled !== 'boolean') return { code: 400, body: { error: 'body must be {"enabled": true|false}' } };
          try { await p.setEnabled(o.enabled); } catch (e) {
            // The kernel refused the first switch-on (no perf events, no BPF): say why.
            plog.warn({ err: (e as Error).message }, 'profiler could not be switched on');
            return { code: 503, body: { error: (e as Error).message, enabled: p.isEnabled() } };
          }
          plog.info({ enabled: o.enabled }, 'profiling switched');
          return { code: 200, body: { enabled: p.isEnabled() } };
        },
      },
      {
        method, path: '/api/profile/target',
        handle: async (_u, body) => {
          const o = parseJson(body);
          const t = o && validTarget(o);
          if (!t) return { code: 400, body: { error: 'body must be {"pids": [int], "services": [string], "containers": [string]} (all empty: every process)' } };
          const now = await p.retarget(t);
          plog.info({ target: now }, 'profiling re-targeted');
          return { code: 200, body: { target: now } };
        },
      },
    ]),
  ];
}

function parseJson(b: Buffer | undefined): Record<string, unknown> | undefined {
  try { const o = JSON.parse(b?.toString('utf8') ?? ''); return o && typeof o === 'object' && !Array.isArray(o) ? o : undefined; } catch { return undefined; }
}

function validTarget(o: Record<string, unknown>): Partial<Target> | undefined {
  const ints = (v: unknown) => v === undefined || (Array.isArray(v) && v.length <= 4096 && v.every((x) => Number.isInteger(x) && x > 0 && x < 2 ** 32));
  const strs = (v: unknown) => v === undefined || (Array.isArray(v) && v.length <= 1024 && v.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 256));
  if (!ints(o.pids) || !strs(o.services) || !strs(o.containers)) return undefined;
  return { pids: o.pids as number[] | undefined, services: o.services as string[] | undefined, containers: o.containers as string[] | undefined };
}

/** Server spans with a pid and thread: what samples of that thread are joined to. */
function indexServerSpan(spans: ThreadSpans, s: ReadableSpan): void {
  if (s.kind !== SpanKind.SERVER) return;
  const pid = s.attributes['process.pid'];
  const tid = s.attributes['thread.id'];
  if (typeof pid !== 'number' || typeof tid !== 'number') return;
  const c = s.spanContext();
  const end = ns(s.endTime);
  spans.add(pid, tid, ns(s.startTime), end, { traceId: c.traceId, spanId: c.spanId });
  spans.noteLag(Date.now() - Number(end / 1_000_000n));
}

export const profileTracer: TracerFactory = (ctx) => {
  const cfg = ctx.cfg.tracers.profile;
  const corr = ctx.agent.correlate;
  const spans = corr ? new ThreadSpans() : undefined;
  const clock = ctx.agent.clock;
  const p = new Profiler({
    cfg,
    dataDir: ctx.cfg.data_dir,
    exportOtlp: (req) => ctx.agent.queues?.profiles?.enqueue(req),
    spans,
    toEpochNs: (t) => clock.toEpochNs(t),
    onError: (e) => plog.warn({ err: e.message }, 'profile interval failed'),
  });
  const untap = spans && corr ? corr.onSpan((s) => { if (p.isEnabled()) try { indexServerSpan(spans, s); } catch { /* never break the span path */ } }) : undefined;
  p.start();
  const routes = profileRoutes(p);
  extraRoutes.push(...routes);
  ctx.metrics.addCollector((m) => {
    const s = p.stats();
    for (const k of ['samples', 'idle', 'filtered', 'collisions', 'stack_nomem', 'stack_lost', 'counts_full', 'records_lost'] as const) {
      m.set(`telegen_profile_${k}_total`, `CPU profiler kernel counter ${k}`, s[k], {}, 'counter');
    }
    m.set('telegen_profile_missing_stacks_total', 'Counts whose stack was gone when drained', s.missingStacks, {}, 'counter');
    m.set('telegen_profile_linked_samples_total', 'Samples linked to the server request in flight on their thread', s.linkedSamples, {}, 'counter');
    m.set('telegen_profile_unlinked_samples_total', 'Samples without a trace link (no request, or several, in flight on their thread)', s.unlinkedSamples, {}, 'counter');
    m.set('telegen_profile_ambiguous_samples_total', 'Unlinked samples of threads with several requests in flight', s.ambiguousSamples, {}, 'counter');
    m.set('telegen_profile_pprof_files_total', 'pprof files written', s.pprofFiles, {}, 'counter');
    m.set('telegen_profile_deferred_drains_total', 'Drain ticks skipped because the symbolizer worker was behind (counts stay in the kernel until the next drain)', s.deferredDrains, {}, 'counter');
    m.set('telegen_profile_worker_seconds_total', 'Time the symbolizer worker thread spent on intervals', s.workerMs / 1000, {}, 'counter');
    m.set('telegen_profile_drain_seconds_total', 'Main-thread time spent draining the kernel maps', s.drainMs / 1000, {}, 'counter');
    const y = p.symbolizerStats();
    m.set('telegen_profile_elf_symbols', 'ELF symbols cached by the profiler', y.elfSymbols);
    m.set('telegen_profile_frames', 'Distinct frames interned by the profiler', y.frames);
  });
  // The kernel side loads and unloads with PUT /api/profile/enabled: its maps are found by name.
  const untrack = registerMaps('profile', ownMapsByPrefix('tg_prof_'));
  // Off (in the config or switched off at run time) is not running: /api/status and
  // telegen_tracer_up said "running" for a profiler that sampled nothing.
  const state = () => {
    const r = p.report();
    if (!p.isEnabled() || !r) return { ok: false, detail: `${r ? 'switched off' : 'off in the config'} (PUT /api/profile/enabled switches it on)` };
    const where = `${cfg.frequency_hz} Hz on ${r.attached.length}/${r.cpus} CPUs${r.failed.length ? ` (${r.failed.map((f) => `cpu${f.cpu}: ${f.error}`).join('; ')})` : ''}`;
    return { ok: r.attached.length > 0, detail: where };
  };
  return {
    name: 'profile',
    detail: state().detail,
    state,
    stop: async () => {
      untap?.();
      untrack();
      for (const rt of routes) { const i = extraRoutes.indexOf(rt); if (i >= 0) extraRoutes.splice(i, 1); }
      await p.stop();
    },
  };
};
