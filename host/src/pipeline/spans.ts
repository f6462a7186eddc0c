// Decoder records + connection facts → OpenTelemetry spans (ReadableSpan, sdk-trace-base 2.x shape).
import { randomFillSync } from 'crypto';
import { Attributes, SpanKind, SpanStatusCode, SpanContext, TraceFlags, HrTime } from '@opentelemetry/api';
import { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { TraceState } from '@opentelemetry/core';
import { KIND_EXCHANGE, FLAG_ERROR, FLAG_NO_RESPONSE, FLAG_NO_REQUEST, FLAG_TRUNCATED, FLAG_UNKNOWN, FLAG_TIMEOUT } from '../../../decoders/abi/abi';
import { DecodedRecord, AttrValue, ownAttributes } from '../decoders/records';
import { ConnMeta, ends } from '../model';
import { discovery } from '../discovery';
import { templateRoute } from './route';
import { agentVersion } from '../paths';

export const SCOPE = { name: 'telegen', version: agentVersion() };

export interface SpanClock {
  /** Source timestamp (kernel monotonic ns or capture epoch ns) → Unix epoch ns. */
  toEpochNs(ts: bigint): bigint;
  /** The same as an HrTime in plain numbers, when that is exact (else undefined: toEpochNs). */
  toEpochHr?(ts: bigint): HrTime | undefined;
}

export const identityClock: SpanClock = { toEpochNs: (t) => t };

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/** Kernel bpf_ktime_get_ns() is CLOCK_MONOTONIC, as is process.hrtime: one offset maps both.
 *  Kernel times fit a double exactly for 104 days of uptime: HrTimes then come from number
 *  arithmetic (the BigInt sums and divisions were ~9 BigInts per span). */
export function monotonicClock(): SpanClock {
  const offset = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  const offS = Number(offset / 1_000_000_000n), offNs = Number(offset % 1_000_000_000n);
  return {
    toEpochNs: (t) => t + offset,
    toEpochHr: offset < 0n ? undefined : (t) => {
      if (t < 0n || t > MAX_EXACT) return undefined;
      const n = Number(t);
      const sub = n % 1e9;
      let s = (n - sub) / 1e9 + offS, ns = sub + offNs;
      if (ns >= 1e9) { ns -= 1e9; s++; }
      return [s, ns];
    },
  };
}

export function hrTime(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

// Trace and span ids come out of one random pool refilled every 256 spans: a crypto call (and a
// Buffer) per id was the most expensive step of building a span.
const idPool = Buffer.alloc(6144);
let idPoolAt = idPool.length;
function hex(n: number): string {
  if (idPoolAt + n > idPool.length) { randomFillSync(idPool); idPoolAt = 0; }
  const s = idPool.toString('hex', idPoolAt, idPoolAt + n);
  idPoolAt += n;
  return s;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** HTTP/1 headers arrive as string lists (semconv `http.request.header.<key>` is string[]; a
 *  header may repeat), HTTP/2 and gRPC metadata as strings: the first value counts. */
function headerValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

/** W3C traceparent (+ tracestate), then b3 single, then X-B3-* multi headers. */
export function parentFromHeaders(a: Attributes): SpanContext | undefined {
  const tp = headerValue(a['http.request.header.traceparent']);
  if (tp !== undefined) {
    const m = TRACEPARENT.exec(tp.trim().toLowerCase());
    if (m && m[1] !== 'ff' && !/^0+$/.test(m[2]) && !/^0+$/.test(m[3])) {
      const raw = a['http.request.header.tracestate'];
      // Repeated tracestate headers are one list (W3C Trace Context §3.3.1.1).
      const ts = Array.isArray(raw) ? raw.join(',') : headerValue(raw);
      let traceState: TraceState | undefined;
      if (ts) { traceState = new TraceState(ts); if (!traceState.serialize()) traceState = undefined; }
      return { traceId: m[2], spanId: m[3], traceFlags: parseInt(m[4], 16) & 1, isRemote: true, ...(traceState ? { traceState } : {}) };
    }
  }
  const b3 = headerValue(a['http.request.header.b3']);
  if (b3 !== undefined) {
    const [t, s, sampled] = b3.trim().toLowerCase().split('-');
    if (t && s && /^[0-9a-f]{16}([0-9a-f]{16})?$/.test(t) && /^[0-9a-f]{16}$/.test(s)) {
      return { traceId: t.padStart(32, '0'), spanId: s, traceFlags: sampled === '0' ? TraceFlags.NONE : TraceFlags.SAMPLED, isRemote: true };
    }
  }
  const xt = headerValue(a['http.request.header.x-b3-traceid']);
  const xs = headerValue(a['http.request.header.x-b3-spanid']);
  if (xt !== undefined && xs !== undefined && /^[0-9a-f]{16}([0-9a-f]{16})?$/i.test(xt) && /^[0-9a-f]{16}$/i.test(xs)) {
    const sampled = headerValue(a['http.request.header.x-b3-sampled']);
    return { traceId: xt.toLowerCase().padStart(32, '0'), spanId: xs.toLowerCase(), traceFlags: sampled === '0' || sampled === 'false' ? TraceFlags.NONE : TraceFlags.SAMPLED, isRemote: true };
  }
  return undefined;
}

const CONTEXT_HEADERS = new Set(['http.request.header.traceparent', 'http.request.header.tracestate', 'http.request.header.b3',
  'http.request.header.x-b3-traceid', 'http.request.header.x-b3-spanid', 'http.request.header.x-b3-sampled', 'http.request.header.x-b3-parentspanid']);

/** Whether the last spanAttributes() dropped context headers. */
let hadContext = false;

/** The record's attributes minus the context headers (they become the parent, not attributes).
 *  Without context headers (most records) the record's own object becomes the span's: the record
 *  is the decoder's fresh object and nothing reads it after its span is made (a copy was garbage
 *  on every span); a template shared by records of the same bytes (frozen) is copied first. With
 *  them, copied key by key: `delete` would turn the object into a slow dictionary. String lists
 *  are compacted either way. */
function spanAttributes(attrs: Record<string, unknown>): Attributes {
  const src = ownAttributes(attrs as Record<string, AttrValue>) as Record<string, unknown>;
  let context = false;
  for (const k in src) {
    const v = src[k];
    if (Array.isArray(v)) src[k] = compact(v as string[]);
    if (CONTEXT_HEADERS.has(k)) context = true;
  }
  hadContext = context;
  if (!context) return src as Attributes;
  const a: Attributes = {};
  for (const k in src) if (!CONTEXT_HEADERS.has(k)) a[k] = src[k] as Attributes[string];
  return a;
}

/** A string list (header values) with room for exactly its items: a list of several grew by push,
 *  which reserves 17 slots — ~150 bytes per list that a held span kept alive. A list of one is
 *  already exact (records.ts makes it `[s]`, pushing only from the second item on): copying it was
 *  garbage on every span (two response headers a GET). */
function compact(v: string[]): string[] {
  return v.length === 1 ? v : v.slice();
}

// Shared by every span that has no links, events or status: held spans are what the correlator's
// young-generation collections copy, so each object a span does not own is work saved there.
const NO_LINKS: ReadableSpan['links'] = Object.freeze([]) as unknown as ReadableSpan['links'];
const NO_EVENTS: ReadableSpan['events'] = Object.freeze([]) as unknown as ReadableSpan['events'];
const STATUS_UNSET: ReadableSpan['status'] = Object.freeze({ code: SpanStatusCode.UNSET });
/** gRPC status codes that make a SERVER span an error (semantic conventions, gRPC). */
const GRPC_SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);
/** RST_STREAM error code CANCEL (RFC 9113 §7). */
const RST_CANCEL = 8;

/** gRPC status code names (grpc/doc/statuscodes.md): a status message "gRPC status 14" sent the
 *  reader to a table; the name is what their logs and the gRPC libraries print. */
const GRPC_STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND',
  'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** The status message of a gRPC error without grpc-message: its name (and number). */
function grpcStatusMessage(code: unknown): string {
  const name = typeof code === 'number' ? GRPC_STATUS_NAMES[code] : undefined;
  return name ? `gRPC status ${name} (${code})` : `gRPC status ${String(code)}`;
}

/** A Kafka error's status message: the decoder already put the protocol's name for the code in
 *  error.type (the number where the code is unknown to it). */
function kafkaStatusMessage(code: unknown, errorType: unknown): string {
  return typeof errorType === 'string' && errorType !== String(code) ? `Kafka error ${errorType} (${String(code)})` : `Kafka error ${String(code)}`;
}

/** "METHOD route" names, one string per pair: a concatenation per span was garbage, and a fresh
 *  string for every exporter and view that reads the name. */
const httpNames = new Map<string, Map<string, string>>();
let httpNameCount = 0;
function httpName(method: string, route: string): string {
  let byRoute = httpNames.get(method);
  let n = byRoute?.get(route);
  if (n !== undefined) return n;
  if (httpNameCount >= 4096) { httpNames.clear(); httpNameCount = 0; byRoute = undefined; }
  if (!byRoute) { byRoute = new Map(); httpNames.set(method, byRoute); }
  n = `${method} ${route}`;
  byRoute.set(route, n);
  httpNameCount++;
  return n;
}

/** The HTTP methods the semantic conventions know (RFC 9110, PATCH of RFC 5789, QUERY); any
 *  other, or one in another case (methods are case-sensitive), is `_OTHER`. */
const HTTP_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE']);

function spanName(a: Attributes, protocol: string): string {
  if (a['rpc.system'] && a['rpc.service']) return `${a['rpc.service']}/${a['rpc.method'] ?? '*'}`;
  if (a['http.request.method']) {
    const m = a['http.request.method'] === '_OTHER' ? 'HTTP' : a['http.request.method'], r = a['http.route'];
    if (!r) return String(m);
    return typeof m === 'string' && typeof r === 'string' ? httpName(m, r) : `${m} ${r}`;
  }
  if (a['db.system.name']) {
    const op = a['db.operation.name'];
    return op ? (a['db.collection.name'] ? `${op} ${a['db.collection.name']}` : String(op)) : String(a['db.system.name']);
  }
  if (a['messaging.system']) {
    const op = a['messaging.operation.name'] ?? 'kafka';
    return a['messaging.destination.name'] ? `${op} ${a['messaging.destination.name']}` : String(op);
  }
  if (a['dns.question.name'] !== undefined) return `DNS ${a['dns.question.type'] ?? ''} ${a['dns.question.name']}`.replace(/\s+/g, ' ').trim();
  return protocol;
}

/** scheme://host[:port]/path[?query] of an HTTP request (the port left out when it is the
 *  scheme's default), or undefined when the target is not a path (CONNECT, OPTIONS *). */
function urlFull(a: Attributes): string | undefined {
  const path = a['url.path'], host = a['server.address'], scheme = a['url.scheme'];
  if (typeof path !== 'string' || path.charCodeAt(0) !== 0x2f || typeof host !== 'string' || !host || typeof scheme !== 'string') return undefined;
  const port = a['server.port'], q = a['url.query'];
  // A client's calls repeat their URL (a poller, a load generator, a health check): the last one
  // is handed out again, the same string, instead of four concatenations (and, for the exporter,
  // a fresh string to compare with the value it wrote last).
  if (path === lastUrl.path && host === lastUrl.host && scheme === lastUrl.scheme && port === lastUrl.port && q === lastUrl.query) return lastUrl.full;
  const p = typeof port === 'number' && !(port === 80 && scheme === 'http') && !(port === 443 && scheme === 'https') ? `:${port}` : '';
  const full = `${scheme}://${host.includes(':') ? `[${host}]` : host}${p}${path}${typeof q === 'string' ? `?${q}` : ''}`;
  lastUrl.path = path; lastUrl.host = host; lastUrl.scheme = scheme; lastUrl.port = port; lastUrl.query = q; lastUrl.full = full;
  return full;
}
/** urlFull's last inputs and result (`path` undefined: none yet; inputs compared with ===). */
const lastUrl: { path: string | undefined; host: string; scheme: string; port: unknown; query: unknown; full: string } = { path: undefined, host: '', scheme: '', port: undefined, query: undefined, full: '' };

function isIPv6(addr: string): boolean { return addr.includes(':') && !addr.startsWith('::ffff:'); }
/** IPv4 224.0.0.0/4 or IPv6 ff00::/8 (addresses as unmapV4 leaves them). */
export function isMulticast(addr: string): boolean {
  if (addr.includes(':')) return /^ff/i.test(addr);
  const first = Number(addr.slice(0, addr.indexOf('.')));
  return first >= 224 && first <= 239;
}

export function unmapV4(addr: string): string { return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr; }

const resources = new Map<string, Resource>();
const byObject = new WeakMap<object, Resource>();
function resourceFor(attrs: Record<string, string | number>): Resource {
  // Discovery hands out the same object until a process's facts change: no stringify per span.
  const same = byObject.get(attrs);
  if (same) return same;
  const key = JSON.stringify(attrs);
  let r = resources.get(key);
  if (!r) {
    if (resources.size > 4096) resources.clear();
    r = resourceFromAttributes(attrs);
    resources.set(key, r);
  }
  byObject.set(attrs, r);
  return r;
}

/**
 * A span the pipeline built: a plain ReadableSpan whose context is a field (`ctx`, which the
 * correlator replaces in place when it finishes the span) read by a prototype method, instead of
 * a closure and its context per span — ~100 bytes less in every span the correlator holds.
 */
export class PipelineSpan implements ReadableSpan {
  readonly links = NO_LINKS;
  readonly events = NO_EVENTS;
  readonly ended = true;
  readonly instrumentationScope = SCOPE;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  constructor(
    readonly name: string,
    readonly kind: SpanKind,
    public ctx: SpanContext,
    public parentSpanContext: SpanContext | undefined,
    readonly startTime: HrTime,
    readonly endTime: HrTime,
    readonly duration: HrTime,
    readonly status: ReadableSpan['status'],
    readonly attributes: Attributes,
    readonly resource: Resource,
  ) {}
  spanContext(): SpanContext { return this.ctx; }
}

export interface BuildOptions {
  clock: SpanClock;
  /** Resource for spans without a process (replay). */
  defaultService?: string;
  hostName?: string;
}

/** What a connection adds to each of its spans, built once per connection (and role): three
 *  unmapped address strings per span were garbage, and distinct copies in every held span. */
interface ConnAttrs {
  role: ConnMeta['role']; localAddr: string; remoteAddr: string;
  serverAddr: string; serverPort: number; clientAddr: string; clientPort: number;
  peerAddr: string; peerPort: number; type: 'ipv4' | 'ipv6';
}
function connAttrsOf(conn: ConnMeta): ConnAttrs {
  let c = conn.spanCache as ConnAttrs | undefined;
  if (c && c.role === conn.role && c.localAddr === conn.localAddr && c.remoteAddr === conn.remoteAddr) return c;
  const e = ends(conn);
  const capture = conn.observer === 'capture';
  c = {
    role: conn.role, localAddr: conn.localAddr, remoteAddr: conn.remoteAddr,
    serverAddr: unmapV4(e.serverAddr), serverPort: e.serverPort, clientAddr: unmapV4(e.clientAddr), clientPort: e.clientPort,
    peerAddr: unmapV4(capture ? e.clientAddr : conn.remoteAddr), peerPort: capture ? e.clientPort : conn.remotePort,
    type: isIPv6(conn.remoteAddr) ? 'ipv6' : 'ipv4',
  };
  conn.spanCache = c;
  return c;
}

function hrFrom(clock: SpanClock, ts: bigint): HrTime { return clock.toEpochHr?.(ts) ?? hrTime(clock.toEpochNs(ts)); }

/** Start, end (not before start) and duration. */
let spanStart: HrTime = [0, 0], spanEnd: HrTime = [0, 0], spanDuration: HrTime = [0, 0];
function times(clock: SpanClock, tsStart: bigint, tsEnd: bigint): void {
  const s = hrFrom(clock, tsStart), e = hrFrom(clock, tsEnd);
  const d = (e[0] - s[0]) * 1e9 + (e[1] - s[1]);
  if (d <= 0) { spanStart = s; spanEnd = d < 0 ? [s[0], s[1]] : e; spanDuration = [0, 0]; return; }
  if (d > Number.MAX_SAFE_INTEGER) { spanStart = s; spanEnd = e; spanDuration = hrTime(ns(e) - ns(s)); return; }
  const sub = d % 1e9;
  spanStart = s; spanEnd = e; spanDuration = [(d - sub) / 1e9, sub];
}
function ns(t: HrTime): bigint { return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]); }

export function recordToSpan(rec: DecodedRecord, conn: ConnMeta, protocol: string, opts: BuildOptions): ReadableSpan | undefined {
  if (rec.kind !== KIND_EXCHANGE) return undefined;
  // A response whose request we never saw (joined mid-connection, request lost): no span — the
  // caller counts it. A span without its operation would be noise in every backend.
  if (rec.flags & FLAG_NO_REQUEST) return undefined;
  const a = spanAttributes(rec.attributes);
  const context = hadContext;
  const c = connAttrsOf(conn);
  const kind = conn.observer === 'capture' ? SpanKind.SERVER : conn.role === 'client' ? SpanKind.CLIENT : SpanKind.SERVER;

  // Connection facts the decoder cannot know.
  if (a['server.address'] === undefined) a['server.address'] = c.serverAddr;
  if (a['server.port'] === undefined) a['server.port'] = c.serverPort;
  if (kind === SpanKind.SERVER || conn.observer === 'capture') { a['client.address'] = c.clientAddr; a['client.port'] = c.clientPort; }
  a['network.peer.address'] = c.peerAddr;
  a['network.peer.port'] = c.peerPort;
  a['network.transport'] = conn.transport;
  a['network.type'] = c.type;
  if (typeof a['url.path'] === 'string' && a['http.route'] === undefined) a['http.route'] = templateRoute(a['url.path'] as string);
  if (a['http.request.method'] !== undefined) {
    // semconv: a method it does not know is `_OTHER`, the method as sent is
    // http.request.method_original, and the span is named HTTP. WebDAV's PROPFIND, PURGE, a
    // scanner's invented ones were each a span name and an http.*.request.duration series of
    // their own (unbounded: any token is a method on the wire).
    const m = a['http.request.method'];
    if (typeof m === 'string' && !HTTP_METHODS.has(m)) { a['http.request.method_original'] = m; a['http.request.method'] = '_OTHER'; }
    // Required by the HTTP semantic conventions: url.scheme (server spans; HTTP/2 sends it as
    // :scheme, HTTP/1 only in a proxy's absolute-form target) and url.full (client spans).
    if (a['url.scheme'] === undefined) a['url.scheme'] = conn.tls ? 'https' : 'http';
    if (kind === SpanKind.CLIENT && a['url.full'] === undefined && a['rpc.system'] === undefined) {
      const full = urlFull(a);
      if (full !== undefined) a['url.full'] = full;
    }
  }
  // A Kafka produce, fetch or commit over several topics (kafkajs sendBatch to t1 and t2): no one
  // topic is every message's destination, and semconv sets messaging.destination.name only then —
  // the decoder's first topic named the span "produce t1" and counted t2's messages under t1 in
  // messaging.client.operation.duration. telegen.kafka.topics lists them all.
  const topics = a['telegen.kafka.topics'];
  if (Array.isArray(topics) && topics.length > 1 && a['messaging.operation.type'] !== undefined) delete a['messaging.destination.name'];
  // Plaintext from a TLS library's hooks (OpenSSL, GnuTLS, Go): the handshake succeeded. HTTP
  // says so with url.scheme; a PostgreSQL, DNS (DoT) or Kafka span had nothing to tell an
  // encrypted connection from a cleartext one.
  if (conn.tls) a['tls.established'] = true;
  if (rec.flags & FLAG_NO_RESPONSE) a['telegen.no_response'] = true;
  if (rec.flags & FLAG_NO_REQUEST) a['telegen.no_request'] = true;
  if (rec.flags & FLAG_TRUNCATED) a['telegen.truncated'] = true;
  if (rec.flags & FLAG_UNKNOWN) a['telegen.unknown'] = true;

  let resAttrs: Record<string, string | number>;
  if (conn.pid !== undefined) {
    // Discovery's cached process and resource, without a ProcessInfo object per span.
    const d = discovery();
    const p = d.process(conn.pid, conn.comm);
    a['process.pid'] = conn.pid;
    if (conn.tid !== undefined) a['thread.id'] = conn.tid;
    a['process.executable.name'] = p.executableName;
    if (p.commandLine) a['process.command_line'] = p.commandLine;
    // Discovery's cached per-process resource (service, process.*, host.*, os.*, cloud.*, k8s.*).
    resAttrs = d.resource(conn.pid, conn.comm);
  } else {
    resAttrs = { 'service.name': opts.defaultService ?? 'telegen-replay', 'telemetry.sdk.name': 'telegen' };
  }

  const parent = kind === SpanKind.SERVER && context ? parentFromHeaders(rec.attributes) : undefined;
  const traceId = parent?.traceId ?? hex(16);
  const ctx: SpanContext = { traceId, spanId: hex(8), traceFlags: parent?.traceFlags ?? TraceFlags.SAMPLED };

  let status: { code: SpanStatusCode; message?: string } = STATUS_UNSET;
  const http = a['http.response.status_code'];
  const grpc = a['rpc.grpc.status_code'];
  const dnsUnanswered = (rec.flags & FLAG_NO_RESPONSE) !== 0 && a['dns.question.name'] !== undefined && a['dns.response_code'] === undefined;
  if (dnsUnanswered && isMulticast(c.serverAddr)) {
    // A multicast lookup (mDNS to 224.0.0.251/ff02::fb, LLMNR to 224.0.0.252/ff02::1:3) that no
    // host answered: silence is how those protocols say "nobody has this name" (RFC 6762 6: only
    // a responder with the name answers; RFC 4795 2.1: the sender "MUST anticipate receiving no
    // replies"), not a failure, so no error status or error.type (semconv: only when the
    // operation failed). telegen.no_response says no answer came; it lasts until the decoder gave
    // up or the socket closed, as any unanswered query.
  } else if ((rec.flags & (FLAG_NO_RESPONSE | FLAG_TIMEOUT)) === (FLAG_NO_RESPONSE | FLAG_TIMEOUT)) {
    // The decoder gave up waiting with the connection open (every protocol, both sides): the
    // client waited its whole timeout for nothing, and the server is the one that never answered.
    // It lasts until the decoder gave up (the record's end), not 0 s: a hung request read as the
    // fastest one in the duration histograms.
    status = { code: SpanStatusCode.ERROR, message: 'no response before the timeout' };
    a['error.type'] ??= 'timeout';
  } else if (rec.flags & FLAG_ERROR) status = { code: SpanStatusCode.ERROR };
  else if (typeof http === 'number' && kind === SpanKind.CLIENT && http >= 400) status = { code: SpanStatusCode.ERROR };
  else if (http === undefined && kind === SpanKind.CLIENT && (rec.flags & FLAG_NO_RESPONSE) && conn.closedTs !== undefined && a['http.request.method'] !== undefined) {
    // An HTTP request its connection closed on before any response failed for its client. Its
    // server span stays unset: no status was sent, and who closed is not known (a client's abort
    // is not the server's failure). In flight when the agent stops, a request may still be
    // answered: no error.
    status = { code: SpanStatusCode.ERROR, message: 'no response' };
    a['error.type'] ??= 'no_response';
  } else if (dnsUnanswered && conn.transport === 'tcp' && conn.closedTs !== undefined) {
    // A query over TCP whose connection closed before its answer (dnsmasq closing a kept-open
    // connection when it cannot forward the next query; a server restart): the connection ended
    // it, not a wait, so the value HTTP uses for a request closed on before its response.
    status = { code: SpanStatusCode.ERROR, message: 'connection closed before the response' };
    a['error.type'] ??= 'no_response';
  } else if (dnsUnanswered) {
    // A DNS query nobody answered (until its socket closed, or pushed out by the pending cap; the
    // decoder's 5 s are FLAG_TIMEOUT, above) is a lookup that timed out: it was an unset-status
    // span of 0 s, and fed dns.lookup.duration as a successful instant lookup.
    status = { code: SpanStatusCode.ERROR, message: 'DNS no response' };
    a['error.type'] ??= 'timeout';
  }
  // gRPC server spans: only the status codes that say the server failed are errors (semantic
  // conventions, gRPC: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS);
  // NOT_FOUND, INVALID_ARGUMENT, CANCELLED… are the caller's, errors on its client span only.
  if (status.code === SpanStatusCode.ERROR && kind === SpanKind.SERVER && typeof grpc === 'number' && grpc !== 0
    && !GRPC_SERVER_ERRORS.has(grpc) && !(typeof http === 'number' && http >= 500)) {
    status = STATUS_UNSET;
    if (a['error.type'] === String(grpc)) delete a['error.type'];
  }
  // A gRPC call the client cancelled (a cancel, a deadline it gave up at) ends with RST_STREAM
  // CANCEL and no grpc-status: the gRPC protocol maps it to CANCELLED, the caller's (the server's
  // library reports CANCELLED too), so not the server span's error. Its client span stays one.
  const rst = a['telegen.http2.rst_stream.error'];
  if (status.code === SpanStatusCode.ERROR && kind === SpanKind.SERVER && a['rpc.system'] === 'grpc' && grpc === undefined
    && rst === RST_CANCEL && !(typeof http === 'number' && http >= 500)) {
    status = STATUS_UNSET;
    if (a['error.type'] === 'CANCEL') delete a['error.type'];
  }
  if (status.code === SpanStatusCode.ERROR && status.message === undefined) {
    if (grpc !== undefined && grpc !== 0) status.message = a['rpc.grpc.status_message'] !== undefined ? String(a['rpc.grpc.status_message']) : grpcStatusMessage(grpc);
    // a stream reset after a 200 header block failed by its RST_STREAM, not by "HTTP 200"
    else if (rst !== undefined && rst !== 0 && typeof a['error.type'] === 'string' && !(typeof http === 'number' && http >= 400)) status.message = `RST_STREAM ${a['error.type']}`;
    else if (typeof http === 'number') { status.message = `HTTP ${http}`; a['error.type'] ??= String(http); }
    else if (a['db.response.status_code'] !== undefined) status.message = String(a['error.message'] ?? `SQLSTATE ${a['db.response.status_code']}`);
    else if (a['dns.response_code'] !== undefined) status.message = `DNS ${a['dns.response_code']}`;
    else if (a['kafka.error_code'] !== undefined) status.message = kafkaStatusMessage(a['kafka.error_code'], a['error.type']);
  }

  // An exchange still unanswered when its connection closed waited until the close: it ends there
  // (at its last byte it looked instant, and its client and server spans did not even overlap).
  // An HTTP/2 stream reset by RST_STREAM ended there, whenever its connection closed after.
  const closed = conn.closedTs;
  const tsEnd = closed !== undefined && (rec.flags & FLAG_NO_RESPONSE) && closed > rec.tsEnd && rst === undefined ? closed : rec.tsEnd;
  times(opts.clock, rec.tsStart, tsEnd);
  return new PipelineSpan(spanName(a, protocol), kind, ctx, parent, spanStart, spanEnd, spanDuration, status, a, resourceFor(resAttrs));
}
