// Binds each connection to a decoder (port hints + detect()), maps kernel directions to
// request/response, reports gaps, and routes decoder records back to their connection.
import { DIR_REQUEST, DIR_RESPONSE, KIND_UPGRADE } from '../../../decoders/abi/abi';
import { DecoderRegistry, LoadedDecoder } from '../decoders/registry';
import { DecodedRecord } from '../decoders/records';
import { FeedResult } from '../decoders/instance';
import { ChunkBatch } from '../decoders/batch';
import { ConnMeta, ends } from '../model';
import { SelfMetrics } from '../metrics/self';
import { log, Once } from '../log';

const rlog = log.child({ component: 'router' });

export interface Conn {
  stream: number;
  meta: ConnMeta;
  decoder?: LoadedDecoder;
  state: 'detecting' | 'bound' | 'ignored';
  /** Bytes seen before a decoder was chosen, replayed into it once bound. */
  early: Array<{ fromClient: boolean; bytes: Uint8Array; ts: bigint }>;
  earlyBytes: number;
  invalids: number;
  switchTo?: string;
  /** The request the next protocol continues (h2c: stream 1), fed to it before anything else. */
  switchRequest?: { bytes: Uint8Array; ts: bigint };
  lastTs: bigint;
  /** The source's client/server were the wrong way round (meta.roleGuessed): its directions are
   *  swapped on the way in. */
  flipped?: boolean;
  /** A decoder reading both directions found the ends backwards (records with telegen.ends.swapped). */
  endsSwapped?: boolean;
}

/** A decoder hinted for the connection's server port binds on one well-formed message, which
 *  scores less than a handshake or several messages (pgsql: 40 for one typed message): a capture
 *  of a single exchange on 5432 is PostgreSQL. */
const HINTED_THRESHOLD = 40;

export type RecordSink = (rec: DecodedRecord, conn: Conn, decoder: string) => void;

export interface RouterOptions {
  detectThreshold: number;
  /** How many bytes to wait for before giving up on detecting a protocol. */
  detectWindow?: number;
  maxInvalidsPerConn?: number;
  /** Whether a TCP port listens on this host (discovery's socket scan): a connection older than
   *  the agent whose local port listens is the server's; one to a loopback port that listens, the
   *  client's. Its bytes cannot always tell (inferRole). */
  listening?: (port: number) => boolean;
  /** The agent's own API (address, port), once it listens. Its page polls it every second and a
   *  client's side of that traffic (the browser, curl) is not the user's application: it filled
   *  the latest traces and put the agent in the service graph as an external node. Its server
   *  side is the agent's own process, which the kernel tracer leaves out already. */
  agentApi?: { addr: string; port: number };
}

export class Router {
  private nextStream = 1;
  readonly streams = new Map<number, Conn>();
  private readonly once = new Once();
  /** Reads of bound connections collected between beginBatch() and endBatch(), all for one
   *  decoder that takes batches (its parse_batch export): fed a run per call. */
  private readonly batch = new ChunkBatch<Conn>();
  private batchDecoder?: LoadedDecoder;
  private batching = false;

  constructor(
    private readonly registry: DecoderRegistry,
    private readonly sink: RecordSink,
    private readonly metrics: SelfMetrics,
    private readonly opts: RouterOptions,
  ) {}

  /** The agent's API listens there from now on (RouterOptions.agentApi). */
  setAgentApi(addr: string, port: number): void { this.opts.agentApi = { addr, port }; }

  /** Called by the registry hooks for every record any decoder emits. */
  onRecord(rec: DecodedRecord, decoderName: string): void {
    const conn = this.streams.get(rec.stream);
    if (!conn) {
      this.metrics.inc('telegen_decoder_orphan_records_total', 'Records for a stream the router no longer knows', { decoder: decoderName });
      return;
    }
    if (rec.kind === KIND_UPGRADE) {
      const next = rec.attributes['telegen.protocol.next'];
      if (typeof next === 'string') conn.switchTo = next;
      // request bytes (headers, credentials included) are for the next decoder only, never exported
      let req = rec.attributes['telegen.upgrade.request'];
      delete rec.attributes['telegen.upgrade.request'];
      // a request over one record field comes in pieces (decoders/http1/emit.ts)
      for (let i = 1; i < 4; i++) {
        const more = rec.attributes[`telegen.upgrade.request.${i}`];
        if (typeof more !== 'string') break;
        delete rec.attributes[`telegen.upgrade.request.${i}`];
        if (typeof req === 'string') req += more;
      }
      if (typeof req === 'string') conn.switchRequest = { bytes: Buffer.from(req, 'base64'), ts: rec.tsStart };
    }
    if (rec.attributes['telegen.ends.swapped'] !== undefined) {
      delete rec.attributes['telegen.ends.swapped'];
      // The guessed ends were backwards and the decoder (http2: the first block with :status or
      // :method) read its streams the other way round: the span's client and server follow it.
      if (conn.meta.roleGuessed && !conn.endsSwapped) {
        conn.endsSwapped = true;
        const m = conn.meta, addr = m.localAddr, port = m.localPort;
        m.localAddr = m.remoteAddr; m.localPort = m.remotePort;
        m.remoteAddr = addr; m.remotePort = port;
        this.metrics.inc('telegen_connections_ends_swapped_total', 'Capture connections without a handshake whose bytes showed the ports had guessed client and server the wrong way round', { decoder: decoderName });
      }
    }
    this.sink(rec, conn, decoderName);
  }

  open(meta: ConnMeta): Conn {
    // u32 stream ids: wrap around, skipping ids still in use (a connection lives far shorter).
    let id = this.nextStream;
    while (this.streams.has(id) || id === 0) id = (id + 1) >>> 0;
    this.nextStream = (id + 1) >>> 0;
    const conn: Conn = { stream: id, meta, state: 'detecting', early: [], earlyBytes: 0, invalids: 0, lastTs: 0n };
    this.streams.set(id, conn);
    const api = this.opts.agentApi;
    if (api && meta.remotePort === api.port && meta.transport === 'tcp' && meta.observer === undefined && reachesApi(meta.remoteAddr, api.addr)) this.ignore(conn, 'agent_api');
    return conn;
  }

  /** Bytes observed by the process that owns the socket (kernel source). */
  dataLocal(conn: Conn, egress: boolean, bytes: Uint8Array, ts: bigint): void {
    if (conn.state === 'ignored') return;
    if (conn.meta.role === 'unknown') {
      if (!this.inferRole(conn, egress, bytes)) {
        // Mid-message bytes of a connection older than the agent: skip them until a message start.
        conn.earlyBytes += bytes.length;
        if (conn.earlyBytes > (this.opts.detectWindow ?? 4096) * 16) this.ignore(conn, 'role_unknown');
        return;
      }
      conn.earlyBytes = 0;
    }
    this.data(conn, (conn.meta.role === 'client') === egress, bytes, ts);
  }

  /** A connection older than the agent: the side on a port that listens here is the server
   *  (HTTP/2 frames without side evidence — WINDOW_UPDATE, PING — score 55 both ways and Kafka
   *  reads them as a Produce header: a Go client that first read its server's frames became a
   *  "server", test/gotrace/http2-late failed in CI); else the bytes decide, but only bytes that
   *  read as one side: if any candidate scores them as both a request and a response, they could
   *  be that protocol from either side, so they decide nothing (this read is skipped, the next
   *  one asked) — taking the first direction asked made a client that first read a response a
   *  "server". Among candidates that do tell, the highest score wins. */
  private inferRole(conn: Conn, egress: boolean, bytes: Uint8Array): boolean {
    const m = conn.meta;
    if (m.transport === 'tcp' && this.opts.listening) {
      if (this.opts.listening(m.localPort)) { m.role = 'server'; return true; }
      if (isLoopback(m.remoteAddr) && this.opts.listening(m.remotePort)) { m.role = 'client'; return true; }
    }
    const port = Math.min(m.localPort, m.remotePort);
    let best = 0;
    let sentByClient = false;
    for (const d of this.registry.candidates(port, m.transport, m.comm, m.pid)) {
      const min = Math.min(this.threshold(d, m.localPort), this.threshold(d, m.remotePort));
      const rq = d.inst.detect(DIR_REQUEST, bytes);
      const rs = d.inst.detect(DIR_RESPONSE, bytes);
      if (rq >= min && rs >= min) return false;
      if (rq >= min && rq > best) { best = rq; sentByClient = true; }
      if (rs >= min && rs > best) { best = rs; sentByClient = false; }
    }
    if (best === 0) return false;
    m.role = sentByClient === egress ? 'client' : 'server';
    return true;
  }

  private buffer(conn: Conn, fromClient: boolean, bytes: Uint8Array, ts: bigint): void {
    const limit = this.opts.detectWindow ?? 4096;
    if (conn.earlyBytes + bytes.length > limit) {
      this.ignore(conn, 'undetected');
      return;
    }
    conn.early.push({ fromClient, bytes: bytes.slice(), ts });
    conn.earlyBytes += bytes.length;
  }

  private ignore(conn: Conn, reason: string): void {
    conn.state = 'ignored';
    conn.early = [];
    conn.earlyBytes = 0;
    this.metrics.inc('telegen_connections_unparsed_total', 'Connections no decoder took', { reason });
  }

  /** The source routes one ring batch: until endBatch(), reads of bound connections may be held
   *  (the byte views must stay valid until then) and fed several per decoder call. Any other
   *  router call feeds what is held first, so each connection sees its events in order. */
  beginBatch(): void { this.batching = true; }

  endBatch(): void {
    this.flush();
    this.batching = false;
  }

  /** In-order bytes of one direction; fromClient = client→server. */
  data(conn: Conn, fromClient: boolean, bytes: Uint8Array, ts: bigint): void {
    conn.lastTs = ts;
    if (conn.state === 'ignored') return;
    if (conn.flipped) fromClient = !fromClient;
    if (this.batching && conn.state === 'bound' && this.hold(conn, fromClient, bytes, ts)) return;
    this.flush();
    if (conn.state === 'detecting') {
      const sofar = this.directionBytes(conn, fromClient, bytes);
      if (!this.bind(conn, fromClient, sofar)) {
        if (!conn.meta.roleGuessed || !this.bindFlipped(conn, fromClient, sofar)) {
          this.buffer(conn, fromClient, bytes, ts);
          return;
        }
        fromClient = !fromClient;
      }
      const early = conn.early;
      conn.early = [];
      conn.earlyBytes = 0;
      for (const e of early) this.feed(conn, e.fromClient, e.bytes, e.ts);
    }
    this.feed(conn, fromClient, bytes, ts);
  }

  /** What detect() is asked about: this direction's bytes so far (the reads held while detecting,
   *  then this one), not the read alone. A server that reads a length prefix and then the rest
   *  (a Kafka broker reads the 4-byte size, then the request; librdkafka's mock the 12-byte
   *  header, then the client id) never had a read that alone looks like a request: its side of
   *  every connection went undecoded. Bounded by the detect window (buffer()). */
  private directionBytes(conn: Conn, fromClient: boolean, bytes: Uint8Array): Uint8Array {
    let n = 0;
    for (const e of conn.early) if (e.fromClient === fromClient) n += e.bytes.length;
    if (n === 0) return bytes;
    const out = new Uint8Array(n + bytes.length);
    let at = 0;
    for (const e of conn.early) if (e.fromClient === fromClient) { out.set(e.bytes, at); at += e.bytes.length; }
    out.set(bytes, at);
    return out;
  }

  /** The score a decoder needs to bind to a connection with this server port. */
  private threshold(d: LoadedDecoder, serverPort: number): number {
    const t = this.opts.detectThreshold;
    return t > HINTED_THRESHOLD && this.registry.hintedFor(d.name, serverPort) ? HINTED_THRESHOLD : t;
  }

  private bind(conn: Conn, fromClient: boolean, bytes: Uint8Array): boolean {
    const dir = fromClient ? DIR_REQUEST : DIR_RESPONSE;
    const { serverPort } = ends(conn.meta);
    let best: LoadedDecoder | undefined;
    let bestScore = 0;
    for (const d of this.registry.candidates(serverPort, conn.meta.transport, conn.meta.comm, conn.meta.pid)) {
      const s = d.inst.detect(dir, bytes);
      if (s >= this.threshold(d, serverPort) && s > bestScore) { best = d; bestScore = s; }
      if (s >= 100) break;
    }
    if (!best) return false;
    this.bindTo(conn, best);
    return true;
  }

  /** A connection whose ends were guessed (a capture without the handshake), whose bytes did not
   *  read as its guessed side: if they read as the other side only (a decoder scores them as
   *  that side and not as this one; the server is then the other end, with that end's port
   *  hints), the ends were the wrong way round. Swaps them and binds. */
  private bindFlipped(conn: Conn, fromClient: boolean, bytes: Uint8Array): boolean {
    const m = conn.meta;
    const dir = fromClient ? DIR_REQUEST : DIR_RESPONSE;
    const other = fromClient ? DIR_RESPONSE : DIR_REQUEST;
    const { clientPort } = ends(m); // the server's port once swapped
    let best: LoadedDecoder | undefined;
    let bestScore = 0;
    for (const d of this.registry.candidates(clientPort, m.transport, m.comm, m.pid)) {
      const need = this.threshold(d, clientPort);
      const s = d.inst.detect(other, bytes);
      if (s < need || s <= bestScore) continue;
      if (d.inst.detect(dir, bytes) >= need) return false; // either side: it tells nothing
      best = d; bestScore = s;
    }
    if (!best) return false;
    conn.flipped = true;
    const addr = m.localAddr, port = m.localPort;
    m.localAddr = m.remoteAddr; m.localPort = m.remotePort;
    m.remoteAddr = addr; m.remotePort = port;
    for (const e of conn.early) e.fromClient = !e.fromClient;
    this.metrics.inc('telegen_connections_ends_swapped_total', 'Capture connections without a handshake whose bytes showed the ports had guessed client and server the wrong way round', { decoder: best.name });
    this.bindTo(conn, best);
    return true;
  }

  private bindTo(conn: Conn, best: LoadedDecoder): void {
    conn.decoder = best;
    conn.state = 'bound';
    this.registry.bound(best, 1);
    this.metrics.inc('telegen_connections_bound_total', 'Connections bound to a decoder', { decoder: best.name });
  }

  /** Holds a read for a batch call when its decoder takes batches. */
  private hold(conn: Conn, fromClient: boolean, bytes: Uint8Array, ts: bigint): boolean {
    const d = conn.decoder!;
    if (!d.inst.batches || d.state === 'quarantined' || d.state === 'retired') return false;
    if (this.batch.n !== 0 && this.batchDecoder !== d) this.flush();
    this.batchDecoder = d;
    this.batch.push(conn.stream, fromClient ? DIR_REQUEST : DIR_RESPONSE, bytes, ts, conn);
    return true;
  }

  /** Feeds the held reads: runs still bound to the batch's decoder in batch calls; a read whose
   *  connection moved on (upgrade, quarantine) the way data() would have fed it then. */
  private flush(): void {
    const b = this.batch;
    if (b.n === 0) return;
    const d = this.batchDecoder!;
    try {
      for (let i = 0; i < b.n;) {
        const conn = b.tag[i];
        if (conn.state === 'ignored') { i++; continue; }
        if (conn.decoder !== d || d.state === 'quarantined' || d.state === 'retired') {
          this.feed(conn, b.dir[i] === DIR_REQUEST, b.bytes[i], b.ts[i]);
          i++;
          continue;
        }
        let e = i + 1;
        while (e < b.n && b.tag[e].decoder === d && b.tag[e].state === 'bound') e++;
        const j = d.inst.feedBatch(b, i, e);
        if (j < e) this.settle(b.tag[j], d, b.dir[j] === DIR_REQUEST, d.inst.batchResult, b.ts[j]);
        else this.settle(conn, d, true, 'ok', 0n);
        i = j < e ? j + 1 : e;
      }
    } finally {
      b.clear();
      this.batchDecoder = undefined;
    }
  }

  private feed(conn: Conn, fromClient: boolean, bytes: Uint8Array, ts: bigint): void {
    let d = conn.decoder!;
    if (d.state === 'quarantined' || d.state === 'retired') {
      // Its state for this stream is gone with it: continue on the active version, if any.
      const next = this.registry.get(d.name);
      this.registry.bound(d, -1);
      if (!next || next === d) { conn.decoder = undefined; this.ignore(conn, 'decoder_quarantined'); return; }
      conn.decoder = d = next;
      this.registry.bound(d, 1);
    }
    const r = d.inst.feed(conn.stream, fromClient ? DIR_REQUEST : DIR_RESPONSE, bytes, ts);
    this.settle(conn, d, fromClient, r, ts);
  }

  /** What a read's result asks of the router: quarantine, a decoder switch, a stream reset. */
  private settle(conn: Conn, d: LoadedDecoder, fromClient: boolean, r: FeedResult, ts: bigint): void {
    if (d.inst.quarantined && d.state !== 'quarantined') this.registry.quarantine(d, d.inst.lastError ?? 'repeated failures');
    if (r === 'ok') return;
    if (r === 'ignored' && conn.switchTo) { this.switchDecoder(conn, fromClient, d.inst.rest, ts); return; }
    this.onProblem(conn, r);
  }

  private switchDecoder(conn: Conn, fromClient: boolean, rest: Uint8Array | null, ts: bigint): void {
    const next = conn.switchTo!;
    const request = conn.switchRequest;
    conn.switchTo = undefined;
    conn.switchRequest = undefined;
    const old = conn.decoder!;
    // the other side's bytes the old decoder held back (a preface sent before the 101 arrived)
    const held = old.inst.takePending(conn.stream, fromClient ? DIR_RESPONSE : DIR_REQUEST);
    old.inst.closeStream(conn.stream);
    this.registry.bound(old, -1);
    const want = next === 'h2c' ? 'http2' : next;
    const nd = [...this.registry.decoders.values()].find((x) => x.name === want || x.inst.meta.protocols.includes(want));
    if (!nd) { this.ignore(conn, `upgrade:${next}`); return; }
    conn.decoder = nd;
    this.registry.bound(nd, 1);
    this.metrics.inc('telegen_connections_upgraded_total', 'Connections handed to another decoder after an Upgrade', { from: old.name, to: nd.name });
    if (request) this.feed(conn, true, request.bytes, request.ts);
    if (rest && rest.length) this.feed(conn, fromClient, rest.slice(), ts);
    if (held && held.length && conn.decoder === nd) this.feed(conn, !fromClient, held, ts);
  }

  private onProblem(conn: Conn, r: FeedResult): void {
    const name = conn.decoder!.name;
    this.metrics.inc('telegen_decoder_stream_resets_total', 'Streams reset after a decoder refused their bytes', { decoder: name, reason: r });
    if (r === 'trap') {
      const d = conn.decoder!;
      const err = d.inst.lastError;
      if (this.once.first(`trap:${name}:${err}`)) rlog.error({ decoder: name, err }, 'decoder failed; its streams were reset and it was restarted');
    }
    if (r === 'ignored') { conn.state = 'ignored'; return; }
    if (++conn.invalids >= (this.opts.maxInvalidsPerConn ?? 16)) this.ignore(conn, `too_many_${r}`);
  }

  /** A hint from the process that owns the socket (e.g. an HTTP/2 header field its nghttp2
   *  decoded or encoded); only a bound connection whose decoder takes hints gets it. */
  hintLocal(conn: Conn, egress: boolean, bytes: Uint8Array, ts: bigint): boolean {
    this.flush();
    const d = conn.decoder;
    if (conn.state !== 'bound' || !d || conn.meta.role === 'unknown' || !d.inst.takesHints) return false;
    const fromClient = (conn.meta.role === 'client') === egress;
    const r = d.inst.hint(conn.stream, fromClient ? DIR_REQUEST : DIR_RESPONSE, bytes, ts);
    if (r === 'trap') this.onProblem(conn, r);
    return r === 'ok';
  }

  /** `lost` bytes of one direction were not captured; `ts` is when the syscall that moved them
   *  returned when that is known (a sendfile, a read cut to the capture limit), else 0n. */
  gap(conn: Conn, fromClient: boolean, lost: number, ts = 0n): void {
    this.flush();
    if (conn.flipped) fromClient = !fromClient;
    this.metrics.inc('telegen_stream_gap_bytes_total', 'Stream bytes never captured (capture limit, ring full, sendfile/splice)', undefined, lost);
    if (conn.state !== 'bound') {
      if (conn.state === 'detecting') this.ignore(conn, 'gap_before_detect');
      return;
    }
    const r = conn.decoder!.inst.gap(conn.stream, fromClient ? DIR_REQUEST : DIR_RESPONSE, lost, ts);
    if (r !== 'ok') this.onProblem(conn, r);
  }

  close(conn: Conn): void {
    this.flush();
    if (conn.state === 'bound' && conn.decoder) {
      conn.decoder.inst.closeStream(conn.stream);
      this.registry.bound(conn.decoder, -1);
    }
    this.streams.delete(conn.stream);
  }

  /** Streams still on a swapped-out version past the drain timeout move to the active version. */
  migrateDrained(drainTimeoutMs: number): number {
    this.flush();
    const now = Date.now();
    let moved = 0;
    for (const conn of this.streams.values()) {
      const d = conn.decoder;
      if (conn.state !== 'bound' || !d || d.state !== 'draining' || now - d.stateSince < drainTimeoutMs) continue;
      const next = this.registry.get(d.name);
      if (!next || next === d) continue;
      d.inst.closeStream(conn.stream);
      this.registry.bound(d, -1);
      conn.decoder = next;
      this.registry.bound(next, 1);
      moved++;
    }
    if (moved) this.metrics.inc('telegen_streams_migrated_total', 'Streams moved to the active decoder version after the drain timeout', undefined, moved);
    return moved;
  }

  /** Lets decoders expire exchanges that never completed; `now` is in the source's clock. */
  tick(now: bigint): void {
    this.flush();
    for (const d of this.registry.all()) if (d.state === 'active' || d.state === 'draining') d.inst.tick(now);
  }

  activeConnections(): number { return this.streams.size; }
}

/** Whether a connection to `addr` (on the API's port) is one to the agent's API listening on
 *  `listen`: the same address, or loopback when it listens on loopback or every address. A
 *  remote host's port of the same number is not the agent's. */
function reachesApi(addr: string, listen: string): boolean {
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  if (a === listen) return true;
  return isLoopback(addr) && (isLoopback(listen) || listen === '0.0.0.0' || listen === '::' || listen === '');
}

/** 127.0.0.0/8 and ::1, also IPv4-mapped: a listening port there is this host's. */
function isLoopback(addr: string): boolean {
  return addr.startsWith('127.') || addr === '::1' || addr.startsWith('::ffff:127.');
}
