// The go_http2 object beside the Go tracer's go_tls (bpf/go_http2.bpf.c): HTTP/2 header fields
// from Go's HPACK code, written into the socket tracer's ring as hints for the http2 decoder.
// The Go tracer's attacher puts its probes into every Go binary it hooks (gotrace/http2.ts).
import * as path from 'path';
import { TracerContext } from '../agent';
import { loadNative, nativeAddonPath } from '../native';
import { tg_tls_stat } from '../generated/tls-layout';
import type { NativeUprobes } from './go';
import { MapDesc, statNames, trackTracerObject } from './map-fill';

interface NativeH2 extends NativeUprobes {
  open(obj: string, opts: object): unknown;
  stats(map: string): number[];
  maps(): MapDesc[];
  close(): void;
}

// The counters go_http2.bpf.c writes, named without the h2_ all its records share.
const STATS = statNames(tg_tls_stat, 'TG_TLS_STAT_', ['H2_FIELDS', 'H2_NO_CONN', 'READ_FAULT', 'RING_FULL'])
  .map((s) => ({ ...s, name: s.name.replace(/^h2_/, '') }));

export interface GoHttp2 {
  /** Where the attacher puts the header-field probes. */
  probes: NativeUprobes;
  close(): void;
}

/** Loads the object (maps shared with the socket tracer) and publishes its counters (OTLP, and
 *  /metrics as telegen_bpf_go_http2_<counter>_total) and map fill; null when off. */
export function openGoHttp2(ctx: TracerContext): GoHttp2 | null {
  if (!ctx.cfg.tracers.go.http2_headers || process.env.TELEGEN_GO_HTTP2 === '0') return null;
  const Native = (loadNative() as unknown as { UprobeTracer: new () => NativeH2 }).UprobeTracer;
  const t = new Native();
  t.open(path.join(path.dirname(nativeAddonPath()), '..', '..', '..', 'build', 'bpf', 'go_http2.bpf.o'), {
    rodata: { self_pid: process.pid, target_pid: ctx.cfg.tracers.socket.target_pid ?? 0 },
    shareMaps: ['tg_conns', 'tg_ring'],
  });
  const counter = ctx.signals.meter.createObservableCounter('telegen.go.http2.fields', { description: 'HTTP/2 header fields read from Go HPACK code (fields written, no connection, faults, ring full)', unit: '{field}' });
  counter.addCallback((r) => {
    const v = t.stats('go_h2_stats');
    for (const { name, index } of STATS) r.observe(v[index] ?? 0, { 'telegen.counter': name });
  });
  const untrack = trackTracerObject(ctx.metrics, 'go_http2', t, 'go_h2_stats', STATS);
  return { probes: t, close: () => { untrack(); t.close(); } };
}
