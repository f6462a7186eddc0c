// Decoder KIND_EVENT records (a standalone protocol event: PostgreSQL NoticeResponse and LISTEN/
// NOTIFY NotificationResponse, HTTP/2 protocol problems) → OpenTelemetry log records, with the
// process's resource and the connection's facts as a span has them. They were decoded and then
// dropped: a RAISE NOTICE, a NOTIFY delivered to a listener, reached no signal at all.
import { SeverityNumber } from '@opentelemetry/api-logs';
import { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { KIND_EVENT } from '../../../decoders/abi/abi';
import { DecodedRecord, ownAttributes } from '../decoders/records';
import { ConnMeta, ends } from '../model';
import { discovery } from '../discovery';
import { agentVersion } from '../paths';
import { hrTime, SpanClock, unmapV4 } from './spans';

export const EVENT_SCOPE = { name: 'telegen.events', version: agentVersion() };

/** PostgreSQL severities (the V field; S when localized) → OTel severity. */
const PG_SEVERITY: Record<string, [SeverityNumber, string]> = {
  DEBUG: [SeverityNumber.DEBUG, 'DEBUG'], LOG: [SeverityNumber.INFO, 'LOG'], INFO: [SeverityNumber.INFO, 'INFO'],
  NOTICE: [SeverityNumber.INFO2, 'NOTICE'], WARNING: [SeverityNumber.WARN, 'WARNING'],
};

const byObject = new WeakMap<object, Resource>();
function resourceOf(attrs: Record<string, string | number>): Resource {
  let r = byObject.get(attrs);
  if (!r) { r = resourceFromAttributes(attrs); byObject.set(attrs, r); }
  return r;
}

/** The log record of a KIND_EVENT record, or undefined for other kinds. */
export function recordToLog(rec: DecodedRecord, conn: ConnMeta, protocol: string, clock: SpanClock, defaultService = 'telegen-replay'): ReadableLogRecord | undefined {
  if (rec.kind !== KIND_EVENT) return undefined;
  const a = ownAttributes(rec.attributes) as Record<string, string | number | boolean | string[]>;
  const e = ends(conn);
  a['server.address'] ??= unmapV4(e.serverAddr);
  a['server.port'] ??= e.serverPort;
  if (conn.role === 'server' || conn.observer === 'capture') { a['client.address'] = unmapV4(e.clientAddr); a['client.port'] = e.clientPort; }
  a['network.transport'] = conn.transport;
  let severity: [SeverityNumber, string] = [SeverityNumber.INFO, 'INFO'];
  let body: string;
  const pgEvent = a['telegen.db.event.name'];
  if (pgEvent === 'notice') {
    a['event.name'] = 'db.postgresql.notice';
    severity = PG_SEVERITY[String(a['telegen.db.severity'] ?? 'NOTICE')] ?? [SeverityNumber.INFO2, String(a['telegen.db.severity'])];
    body = String(a['error.message'] ?? '');
  } else if (pgEvent === 'notification') {
    a['event.name'] = 'db.postgresql.notification';
    body = `NOTIFY ${String(a['telegen.db.notification.channel'] ?? '')}`;
  } else {
    a['event.name'] = `${protocol}.protocol_problem`;
    severity = [SeverityNumber.WARN, 'WARN'];
    body = [a['error.type'], a['error.message']].filter((x) => x !== undefined).join(': ');
  }
  let resAttrs: Record<string, string | number>;
  if (conn.pid !== undefined) {
    const d = discovery();
    a['process.pid'] = conn.pid;
    if (conn.tid !== undefined) a['thread.id'] = conn.tid;
    resAttrs = d.resource(conn.pid, conn.comm);
  } else {
    resAttrs = { 'service.name': defaultService, 'telemetry.sdk.name': 'telegen' };
  }
  const t = hrTime(clock.toEpochNs(rec.tsStart));
  return {
    hrTime: t,
    hrTimeObserved: t,
    severityNumber: severity[0],
    severityText: severity[1],
    body,
    resource: resourceOf(resAttrs),
    instrumentationScope: EVENT_SCOPE,
    attributes: a,
    droppedAttributesCount: 0,
  } as ReadableLogRecord;
}
