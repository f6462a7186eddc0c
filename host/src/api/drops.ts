// What the agent lost, for /api/status and the page's header: the counters of data that never
// reached an export (kernel ring full, records shed under overload, export drops, protocol events
// over their rate). They were only in /metrics, one row among ~300 on the page.
import type { Labels } from '../metrics/self';

export interface Drop { metric: string; labels: Labels; value: number }
export interface DropSummary { total: number; nonzero: Drop[] }

const LOSS = /^(telegen_bpf_\w*ring_full_total|telegen_export_dropped_total|telegen_ingest_shed_records_total|telegen_protocol_events_dropped_total|telegen_profile_records_lost_total)(?:\{([^}]*)\})? (\S+)$/;

/** Reads the loss counters out of the Prometheus text /metrics serves, so it counts exactly what
 *  a scrape would: every collector contributes there. */
export function dropSummary(prometheusText: string): DropSummary {
  const nonzero: Drop[] = [];
  let total = 0;
  for (const line of prometheusText.split('\n')) {
    const m = LOSS.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!(value > 0)) continue;
    const labels: Labels = {};
    for (const p of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]] = p[2].replace(/\\(.)/g, '$1');
    nonzero.push({ metric: m[1], labels, value });
    total += value;
  }
  return { total, nonzero };
}
