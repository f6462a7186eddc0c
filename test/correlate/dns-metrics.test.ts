// telegen.dns.lookups / telegen.dns.lookups.failed as a reader collects them: a unicast query nobody answered is a
// failed lookup; a multicast one (mDNS, LLMNR) is not — its span has no error either (6f2bdfb),
// and silence is how those protocols say no host has the name (RFC 6762 §6, RFC 4795 §2.1).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Attributes, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricData, MetricReader } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DnsMetrics } from '../../host/src/analytics/dns-metrics';

class PullReader extends MetricReader {
  protected async onForceFlush(): Promise<void> { /* pull only */ }
  protected async onShutdown(): Promise<void> { /* pull only */ }
}

function span(attributes: Attributes, error: boolean): ReadableSpan {
  return {
    name: 'DNS', kind: SpanKind.CLIENT, attributes, duration: [0, 5_000_000],
    status: { code: error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET },
  } as unknown as ReadableSpan;
}

async function sums(r: PullReader, name: string): Promise<Record<string, number>> {
  const ms: MetricData[] = (await r.collect()).resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  const out: Record<string, number> = {};
  for (const p of ms.find((m) => m.descriptor.name === name)?.dataPoints ?? []) {
    const k = `${p.attributes['telegen.dns.name.suffix']} ${p.attributes['dns.response_code']}`;
    out[k] = (out[k] ?? 0) + (p.value as number);
  }
  return out;
}

test('an unanswered multicast lookup is counted as a lookup, not as a failed one; unicast silence and NXDOMAIN are failures', async () => {
  const r = new PullReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  const dns = new DnsMetrics(new MeterProvider({ readers: [r] }).getMeter('t'));
  dns.observe(span({ 'dns.question.name': 'printer.local', 'server.address': '224.0.0.251' }, false));
  dns.observe(span({ 'dns.question.name': 'printer.local', 'server.address': 'ff02::fb' }, false));
  dns.observe(span({ 'dns.question.name': 'nas', 'server.address': '224.0.0.252' }, false));
  dns.observe(span({ 'dns.question.name': 'c.test', 'server.address': '127.0.0.1', 'error.type': 'timeout' }, true));
  dns.observe(span({ 'dns.question.name': 'gone.example.com', 'server.address': '127.0.0.53', 'dns.response_code': 'NXDOMAIN' }, true));
  // A multicast answer with an rcode counts as any answer would.
  dns.observe(span({ 'dns.question.name': 'bad.local', 'server.address': '224.0.0.251', 'dns.response_code': 'REFUSED' }, true));
  assert.deepEqual(await sums(r, 'telegen.dns.lookups'), {
    'printer.local NO_RESPONSE': 2, 'nas NO_RESPONSE': 1, 'c.test NO_RESPONSE': 1, 'example.com NXDOMAIN': 1, 'bad.local REFUSED': 1,
  });
  assert.deepEqual(await sums(r, 'telegen.dns.lookups.failed'), { 'c.test NO_RESPONSE': 1, 'example.com NXDOMAIN': 1, 'bad.local REFUSED': 1 });
});
