// The CPU profiler as an agent tracer: OTLP profiles into agent.queues.profiles, pprof files
// under DATA_DIR/pprof/, GET /api/profile for flame graphs and token-guarded PUT/POST
// /api/profile/{enabled,target} for run-time control.
import { TracerFactory } from '../agent';
import { log } from '../log';
import { Profiler, Target } from '../profile/profiler';
import { TraceLink } from '../profile/model';
import { extraRoutes, ApiRoute } from '../api/server';

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
        if (u.searchParams.get('format') === 'folded') {
          const lines = [...p.store.folded(service, since)].map(([l, c]) => `${l} ${c}`).join('\n');
          return { code: 200, body: lines + (lines ? '\n' : ''), type: 'text/plain; charset=utf-8' };
        }
        return { code: 200, body: { service: service ?? null, seconds, enabled: p.isEnabled(), target: p.getTarget(), services: p.store.services(since), tree: p.store.tree(service, since) } };
      },
    },
    {
      method: 'GET', path: '/api/profile/status',
      handle: () => ({ code: 200, body: { enabled: p.isEnabled(), target: p.getTarget(), stats: p.stats(), symbolizer: p.symbolizerStats(), attach: p.native.report } }),
    },
    ...(['PUT', 'POST'] as const).flatMap((method): ApiRoute[] => [
      {
        method, path: '/api/profile/enabled',
        handle: async (_u, body) => {
          const o = parseJson(body);
          if (!o || typeof o.enabled !== 'boolean') return { code: 400, body: { error: 'body must be {"enabled": true|false}' } };
          await p.setEnabled(o.enabled);
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

export const profileTracer: TracerFactory = (ctx) => {
  const cfg = ctx.cfg.tracers.profile;
  if (!cfg.enabled) return null;
  // Correlation hook: the correlation stage knows the server request in flight on a thread.
  const corr = (ctx.agent as unknown as { correlate?: { logContext?(pid: number, tid: number | undefined, ts: bigint): TraceLink | undefined } }).correlate;
  const p = new Profiler({
    cfg,
    dataDir: ctx.cfg.data_dir,
    exportOtlp: (req) => ctx.agent.queues?.profiles?.enqueue(req),
    traceLink: corr?.logContext ? (pid, tid) => corr.logContext!(pid, tid, BigInt(Date.now()) * 1_000_000n) : undefined,
    onError: (e) => plog.warn({ err: e.message }, 'profile interval failed'),
  });
  p.start();
  const routes = profileRoutes(p);
  extraRoutes.push(...routes);
  ctx.metrics.addCollector((m) => {
    const s = p.stats();
    for (const k of ['samples', 'idle', 'filtered', 'collisions', 'stack_nomem', 'stack_lost', 'counts_full'] as const) {
      m.set(`telegen_profile_${k}_total`, `CPU profiler kernel counter ${k}`, s[k], {}, 'counter');
    }
    m.set('telegen_profile_missing_stacks_total', 'Counts whose stack was gone when drained', s.missingStacks, {}, 'counter');
    m.set('telegen_profile_pprof_files_total', 'pprof files written', s.pprofFiles, {}, 'counter');
    m.set('telegen_profile_deferred_drains_total', 'Drain ticks skipped because the symbolizer worker was behind (counts stay in the kernel until the next drain)', s.deferredDrains, {}, 'counter');
    m.set('telegen_profile_worker_seconds_total', 'Time the symbolizer worker thread spent on intervals', s.workerMs / 1000, {}, 'counter');
    m.set('telegen_profile_drain_seconds_total', 'Main-thread time spent draining the kernel maps', s.drainMs / 1000, {}, 'counter');
    const y = p.symbolizerStats();
    m.set('telegen_profile_elf_symbols', 'ELF symbols cached by the profiler', y.elfSymbols);
    m.set('telegen_profile_frames', 'Distinct frames interned by the profiler', y.frames);
  });
  const r = p.native.report;
  return {
    name: 'profile',
    detail: `${cfg.frequency_hz} Hz on ${r.attached.length}/${r.cpus} CPUs${r.failed.length ? ` (${r.failed.map((f) => `cpu${f.cpu}: ${f.error}`).join('; ')})` : ''}`,
    stop: async () => {
      for (const rt of routes) { const i = extraRoutes.indexOf(rt); if (i >= 0) extraRoutes.splice(i, 1); }
      await p.stop();
    },
  };
};
