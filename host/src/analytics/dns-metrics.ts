// DNS metrics from DNS spans (issue 5): lookups, latency, failures (NXDOMAIN, SERVFAIL, REFUSED,
// no answer …), per name suffix.
// telegen.* names: the semantic conventions' dns namespace has dns.lookup.duration only (the RED
// metrics export it, per question name); these per-suffix series are ours.
// Cardinality is bounded twice: a suffix is the name's last two labels, and past MAX_SUFFIXES
// distinct suffixes every new one is counted under OVERFLOW (names are attacker-controlled).
import { Meter, Counter, Histogram, SpanKind } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { isMulticast } from '../pipeline/spans';

export const MAX_SUFFIXES = 1000;
export const OVERFLOW = '_other';
/** What telegen.dns.lookups.failed counts: a name that does not exist, the server's failures (the span
 *  errors: decoders/dns/README.md) and a query nobody answered — a timeout is a failed lookup.
 *  Not a multicast query nobody answered (mDNS, LLMNR): there silence says no host has the name,
 *  as the span says (no error status, pipeline/spans). */
const FAILED = new Set(['NXDOMAIN', 'SERVFAIL', 'REFUSED', 'FORMERR', 'NOTIMP', 'NO_RESPONSE']);

/** `a.b.example.com.` → `example.com`; case folded; the root is `.`. */
export function nameSuffix(name: string): string {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.').filter((l) => l.length > 0);
  if (!labels.length) return '.';
  return labels.slice(-2).join('.');
}

export class DnsMetrics {
  private readonly lookups: Counter;
  private readonly failed: Counter;
  private readonly duration: Histogram;
  private readonly suffixes = new Set<string>();

  constructor(meter: Meter) {
    this.lookups = meter.createCounter('telegen.dns.lookups', { description: 'DNS exchanges seen, per name suffix, response code and side', unit: '{lookup}' });
    this.failed = meter.createCounter('telegen.dns.lookups.failed', { description: 'DNS exchanges answered NXDOMAIN, SERVFAIL, REFUSED, FORMERR or NOTIMP, or not answered (NO_RESPONSE)', unit: '{lookup}' });
    this.duration = meter.createHistogram('telegen.dns.lookups.duration', { description: 'Query to response time of DNS exchanges, per name suffix and side (the semconv dns.lookup.duration comes from the RED metrics, per question name)', unit: 's' });
  }

  private bucket(name: string): string {
    const s = nameSuffix(name);
    if (this.suffixes.has(s)) return s;
    if (this.suffixes.size >= MAX_SUFFIXES) return OVERFLOW;
    this.suffixes.add(s);
    return s;
  }

  /** Called for every span the agent produces; ignores what is not DNS. */
  observe(span: ReadableSpan): void {
    const name = span.attributes['dns.question.name'];
    if (typeof name !== 'string') return;
    const rcode = span.attributes['dns.response_code'];
    const attrs = {
      'telegen.dns.name.suffix': this.bucket(name),
      'dns.response_code': typeof rcode === 'string' ? rcode : 'NO_RESPONSE',
      'telegen.dns.side': span.kind === SpanKind.SERVER ? 'server' : 'client',
    };
    this.lookups.add(1, attrs);
    const silentMulticast = rcode === undefined && isMulticast(String(span.attributes['server.address'] ?? ''));
    if (FAILED.has(attrs['dns.response_code']) && !silentMulticast) this.failed.add(1, attrs);
    if (typeof rcode === 'string') {
      const [s, ns] = span.duration;
      this.duration.record(s + ns / 1e9, { 'telegen.dns.name.suffix': attrs['telegen.dns.name.suffix'], 'telegen.dns.side': attrs['telegen.dns.side'] });
    }
  }
}
