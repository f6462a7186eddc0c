// A linked line → an OTLP log record (sdk-logs ReadableLogRecord shape, queued as is like the
// pipeline's spans): the process's own resource (service.name and all that discovery knows), the
// trace/span of the request it was printed in, the severity the line states, and semconv
// log.iostream / thread.id.
import { TraceFlags } from '@opentelemetry/api';
import { LogAttributes } from '@opentelemetry/api-logs';
import { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { hrTime } from '../pipeline/spans';
import { agentVersion } from '../paths';
import { LinkedLine } from './link';
import { parseSeverity } from './severity';

export const LOG_SCOPE = { name: 'telegen.logs', version: agentVersion() };

const byObject = new WeakMap<object, Resource>();
/** Discovery hands out the same attribute object until a process's facts change. */
function resourceOf(attrs: Record<string, string | number>): Resource {
  let r = byObject.get(attrs);
  if (!r) { r = resourceFromAttributes(attrs); byObject.set(attrs, r); }
  return r;
}

export function toLogRecord(l: LinkedLine, resourceAttrs: Record<string, string | number>, observedEpochNs: bigint): ReadableLogRecord {
  const sev = parseSeverity(l.text);
  const attributes: LogAttributes = { 'log.iostream': l.fd === 2 ? 'stderr' : 'stdout', 'thread.id': l.tid, 'process.pid': l.pid };
  if (l.truncated) attributes['telegen.log.truncated'] = true;
  return {
    hrTime: hrTime(l.epochNs),
    hrTimeObserved: hrTime(observedEpochNs),
    spanContext: l.link ? { traceId: l.link.traceId, spanId: l.link.spanId, traceFlags: TraceFlags.SAMPLED } : undefined,
    severityNumber: sev?.number,
    severityText: sev?.text,
    body: l.text,
    resource: resourceOf(resourceAttrs),
    instrumentationScope: LOG_SCOPE,
    attributes,
    droppedAttributesCount: 0,
  };
}
