// Goroutine-aware net/http requests (bpf/go_tls.bpf.c, "Goroutine-aware requests"): which
// functions get which program and cookie. The server request is known on the goroutine running
// serverHandler.ServeHTTP; runtime.newproc1 hands it to every goroutine spawned from there (at
// any depth) and runtime.goexit0 takes it back; an HTTP/1 client call
// ((*persistConn).roundTrip) from any of them links its connection to the request's.
import { GoBinary } from './analyze';
import { httpOffsetsFor, packHttpOffsets, GO_HTTP_OFFSETS } from './http-offsets';

export const GO_REQ = {
  serve: 'net/http.serverHandler.ServeHTTP',
  spawn: 'runtime.newproc1',
  exit: 'runtime.goexit0',
  client: 'net/http.(*persistConn).roundTrip',
} as const;
export const GO_REQ_FUNCS: readonly string[] = Object.values(GO_REQ);

export interface GoProbe { prog: string; offset: number; cookie: number }

/** What the goroutine probes of one binary came to (GoBinaryStatus.goroutines). */
export interface GoroutineStatus { instrumented: boolean; probes: number; reason?: string }

/**
 * The uprobes `g` gets for goroutine-aware requests, or why none. Only servers that also make
 * net/http client calls: the spawn and exit probes fire on every goroutine of the program, which
 * is only worth it where a link can come out.
 */
export function planGoroutines(g: GoBinary): { attach: GoProbe[] } | { reason: string } {
  const missing = (Object.keys(GO_REQ) as Array<keyof typeof GO_REQ>).filter((k) => !g.funcs.has(GO_REQ[k]));
  if (missing.includes('serve')) return { reason: 'no net/http server' };
  if (missing.includes('client')) return { reason: 'no net/http client calls' };
  if (missing.length) return { reason: `could not place probes on ${missing.map((k) => GO_REQ[k]).join(', ')}` };
  if (g.unsupported || !g.offsets) return { reason: g.unsupported ?? 'no crypto/tls offsets' };
  const h = httpOffsetsFor(g.buildInfo.goVersion);
  if (!h) return { reason: `no net/http struct offsets for ${g.buildInfo.goVersion} (host/src/gotrace/http-offsets.ts covers ${GO_HTTP_OFFSETS.map((r) => `go${r.from.join('.')}–go${r.to.join('.')}`).join(', ')})` };
  const server = packHttpOffsets(g.offsets, h, 'server');
  const client = packHttpOffsets(g.offsets, h, 'client');
  if (server === undefined || client === undefined) return { reason: 'a net/http offset does not fit the probe cookie' };
  const f = (k: keyof typeof GO_REQ) => g.funcs.get(GO_REQ[k])!;
  const rets = (k: keyof typeof GO_REQ, prog: string): GoProbe[] => f(k).returnOffsets.map((offset) => ({ prog, offset, cookie: server }));
  return {
    attach: [
      { prog: 'go_serve_enter', offset: f('serve').entryOffset, cookie: server }, ...rets('serve', 'go_serve_return'),
      { prog: 'go_spawn_enter', offset: f('spawn').entryOffset, cookie: server }, ...rets('spawn', 'go_spawn_return'),
      { prog: 'go_exit_enter', offset: f('exit').entryOffset, cookie: server },
      { prog: 'go_client_enter', offset: f('client').entryOffset, cookie: client },
    ],
  };
}

/** Attaches every probe of `list` or none (a serve entry without its RETs would keep requests
 *  in flight forever); returns the handles, or the failure. */
export function attachAllOrNone(list: readonly GoProbe[], attach: (p: GoProbe) => number, detach: (h: number) => void): { handles: number[] } | { error: string } {
  const handles: number[] = [];
  try {
    for (const p of list) handles.push(attach(p));
  } catch (e) {
    for (const h of handles) detach(h);
    return { error: `uprobe attach failed: ${(e as Error).message}` };
  }
  return { handles };
}

export function attachGoroutines(g: GoBinary, attach: (p: GoProbe) => number, detach: (h: number) => void): { handles: number[]; status: GoroutineStatus } {
  const plan = planGoroutines(g);
  if ('reason' in plan) return { handles: [], status: { instrumented: false, probes: 0, reason: plan.reason } };
  const r = attachAllOrNone(plan.attach, attach, detach);
  if ('error' in r) return { handles: [], status: { instrumented: false, probes: 0, reason: r.error } };
  return { handles: r.handles, status: { instrumented: true, probes: r.handles.length } };
}
