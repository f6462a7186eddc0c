// Kernel source: turns ring-buffer batches (zero-copy views from the native addon) into router
// calls. Reads fields by the BTF-generated offsets; connection strings are built once per
// connection, not per event.
import { tg_data_event, tg_conn_event, tg_conn_info, tg_go_link_event, tg_event_type, tg_dir, tg_role, tg_data_flags, tg_proto } from '../generated/layout';
import { tg_tls_handshake_event, tg_tls_record } from '../generated/tls-layout';
import { Router, Conn } from './router';
import { ConnMeta, Role } from '../model';
import { SelfMetrics } from '../metrics/self';
import { forgetProcess } from '../pipeline/process';

const INFO_DATA = tg_data_event.conn;
const INFO_CONN = tg_conn_event.conn;
/** Router key of a connection's TLS plaintext (bpf/tls.bpf.c): its own stream beside the
 *  ciphertext one; conn ids are counters and never reach bit 63. */
const TLS_STREAM = 1n << 63n;

function addrString(ring: Uint8Array, off: number, family: number): string {
  // IPv4 arrives mapped (::ffff:a.b.c.d) whatever the socket family.
  let v4 = true;
  for (let i = 0; i < 10; i++) if (ring[off + i] !== 0) { v4 = false; break; }
  if (v4 && ring[off + 10] === 0xff && ring[off + 11] === 0xff) return `${ring[off + 12]}.${ring[off + 13]}.${ring[off + 14]}.${ring[off + 15]}`;
  void family;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((ring[off + i] << 8) | ring[off + i + 1]).toString(16));
  // RFC 5952: compress the longest run of zero groups.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (parts[i] !== '0') { i++; continue; }
    let j = i; while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

function commString(ring: Uint8Array, off: number): string {
  let end = off;
  while (end < off + 16 && ring[end] !== 0) end++;
  return Buffer.from(ring.buffer, ring.byteOffset + off, end - off).toString('latin1');
}

function roleOf(v: number): Role {
  return v === tg_role.TG_ROLE_CLIENT ? 'client' : v === tg_role.TG_ROLE_SERVER ? 'server' : 'unknown';
}

interface KConn { conn: Conn; next: [number, number]; pid: number; udp?: { socket: bigint; key: string; lastTs: bigint } }

/** UDP flows have no close: one idle this long (source clock) is forgotten. */
export const UDP_FLOW_IDLE_NS = 30_000_000_000n;

/** A UDP socket's flow: the socket (conn_id) and the datagram's peer. One unconnected socket
 *  (dnsmasq's, a resolver's) talks to many peers; each peer is its own exchange stream. */
function udpFlowKey(ring: Uint8Array, dv: DataView, info: number, socket: bigint): string {
  let k = socket.toString(36) + '|' + dv.getUint16(info + tg_conn_info.rport, true) + '|';
  for (let i = 0; i < 16; i++) k += ring[info + tg_conn_info.raddr + i].toString(16) + '.';
  return k;
}

export class KernelIngest {
  private readonly conns = new Map<bigint, KConn>();
  /** The plaintext (non-TLS) streams of `conns` again, by their id as a number (ids are counters:
   *  exact below 2^53). A data record finds its connection here from two 32-bit words: no BigInt
   *  of its id and no BigInt-keyed lookups (tlsConns, conns), which hash the BigInt each time. */
  private readonly byNum = new Map<number, KConn>();
  /** Connections per process: exit() closes every fd without close() events. */
  private readonly byPid = new Map<number, Set<bigint>>();
  /** Connections whose plaintext the TLS tracer delivers: their ciphertext is dropped. */
  private readonly tlsConns = new Set<bigint>();
  /** UDP flows by udpFlowKey, and each UDP socket's flows (its close ends them all). */
  private readonly udpFlows = new Map<string, KConn>();
  private readonly udpBySocket = new Map<bigint, Set<string>>();
  /** Per process: whether any connection it opened could serve (server role, or unknown: older
   *  than the agent). Only ever turns true while the process lives (see mayServe). */
  private readonly serving = new Map<number, boolean>();
  /** Per process: whether any connection it opened could be a client one (client role, or
   *  unknown). Only ever turns true while the process lives (see mayCall). */
  private readonly calling = new Map<number, boolean>();
  private dv: DataView | null = null;
  private ringRef: Uint8Array | null = null;
  lastTs = 0n;
  /** Set by the agent's overload gate (host/src/memory/overload.ts): while >= 0, data records are
   *  skipped undecoded and counted in shedRecords[shedReason], and their stream restarts at its
   *  next record (shed()). Connection and process events still apply. */
  shedReason = -1;
  readonly shedRecords = new Float64Array(4);
  /** Called after each batch that held records, with their number (the overload gate ticks often
   *  only while they come, and counts what a resumed reader took). */
  onRead?: (records: number) => void;
  /** Where TG_EV_GO_LINK records go (the Go tracer sets it: gotrace/links.ts); dropped without. */
  goLinks?: { add(connId: bigint, tsNs: bigint, parentConnId: bigint, parentTsNs: bigint): void };
  /** Where TG_EV_TLS_HANDSHAKE records go (the TLS tracer sets it: tracers/tls-handshake.ts), with
   *  the connection as the kernel named it and the decoder its cleartext bytes were bound to
   *  (PostgreSQL's SSLRequest precedes the handshake); dropped without. */
  tlsHandshake?: (dv: DataView, off: number, conn: ConnMeta, decoder: string | undefined) => void;

  constructor(private readonly router: Router, private readonly metrics: SelfMetrics) {}

  private view(ring: Uint8Array): DataView {
    if (this.ringRef !== ring || !this.dv) { this.ringRef = ring; this.dv = new DataView(ring.buffer, ring.byteOffset, ring.byteLength); }
    return this.dv;
  }

  private metaOf(ring: Uint8Array, dv: DataView, info: number): ConnMeta {
    const family = dv.getUint16(info + tg_conn_info.family, true);
    return {
      role: roleOf(ring[info + tg_conn_info.role]),
      transport: ring[info + tg_conn_info.proto] === tg_proto.TG_PROTO_UDP ? 'udp' : 'tcp',
      localAddr: addrString(ring, info + tg_conn_info.laddr, family),
      localPort: dv.getUint16(info + tg_conn_info.lport, true),
      remoteAddr: addrString(ring, info + tg_conn_info.raddr, family),
      remotePort: dv.getUint16(info + tg_conn_info.rport, true),
      pid: dv.getUint32(info + tg_conn_info.pid, true),
      tid: dv.getUint32(info + tg_conn_info.tid, true),
      comm: commString(ring, info + tg_conn_info.comm),
      cgroupId: dv.getBigUint64(info + tg_conn_info.cgroup_id, true),
      connId: dv.getBigUint64(info + tg_conn_info.conn_id, true),
      spanCache: undefined,
      correlateCache: undefined,
    };
  }

  private connFor(ring: Uint8Array, dv: DataView, info: number, key?: bigint): KConn {
    const id = key ?? dv.getBigUint64(info + tg_conn_info.conn_id, true);
    let k = this.conns.get(id);
    if (k) return k;
    const meta = this.metaOf(ring, dv, info);
    if (id & TLS_STREAM) meta.tls = true;
    this.noteRole(meta.pid!, meta.role);
    k = { conn: this.router.open(meta), next: [-1, -1], pid: meta.pid! };
    this.conns.set(id, k);
    let set = this.byPid.get(k.pid);
    if (!set) { set = new Set(); this.byPid.set(k.pid, set); }
    set.add(id);
    return k;
  }

  /** The flow of one datagram. A new flow's role is left to its bytes (Router.inferRole: DNS by
   *  the QR bit): taking it from the first datagram's direction made a long-lived resolver
   *  socket whose first datagram seen was an answer (the agent started between a query and its
   *  answer) the "server" of its flow, and the server's flow the "client", for the flow's life. */
  private udpFlowFor(ring: Uint8Array, dv: DataView, info: number, ts: bigint): KConn {
    const socket = dv.getBigUint64(info + tg_conn_info.conn_id, true);
    const key = udpFlowKey(ring, dv, info, socket);
    let k = this.udpFlows.get(key);
    if (k) { k.udp!.lastTs = ts; return k; }
    const meta = this.metaOf(ring, dv, info);
    meta.role = 'unknown';
    this.noteRole(meta.pid!, meta.role);
    k = { conn: this.router.open(meta), next: [-1, -1], pid: meta.pid!, udp: { socket, key, lastTs: ts } };
    this.udpFlows.set(key, k);
    let set = this.udpBySocket.get(socket);
    if (!set) { set = new Set(); this.udpBySocket.set(socket, set); }
    set.add(key);
    return k;
  }

  private noteRole(pid: number, role: Role): void {
    if (role !== 'client') this.serving.set(pid, true);
    else if (!this.serving.has(pid)) this.serving.set(pid, false);
    if (role !== 'server') this.calling.set(pid, true);
    else if (!this.calling.has(pid)) this.calling.set(pid, false);
  }

  /** Whether `pid` may have made a call: false only for a process every connection of which,
   *  since the agent started, was accepted as a server one. */
  mayCall(pid: number): boolean {
    return this.calling.get(pid) ?? true;
  }

  /**
   * Whether `pid` may be serving a request: false only for a process every connection of which,
   * since the agent started, was opened as a client (a load generator, a batch job). A request it
   * served would have arrived on a server connection seen before any client call made for it,
   * so a CLIENT span of such a process can have no enclosing SERVER span: the correlator decides
   * it at once instead of holding it (and the server span it is linked to) for its window.
   */
  mayServe(pid: number): boolean {
    return this.serving.get(pid) ?? true;
  }

  private dropUdp(k: KConn, closedTs?: bigint): void {
    const u = k.udp!;
    // The socket's close (or its process's exit): a query still unanswered then waited until it.
    if (closedTs !== undefined) k.conn.meta.closedTs = closedTs;
    this.router.close(k.conn);
    this.udpFlows.delete(u.key);
    const set = this.udpBySocket.get(u.socket);
    if (set) { set.delete(u.key); if (!set.size) this.udpBySocket.delete(u.socket); }
  }

  private dropSocketFlows(socket: bigint, closedTs?: bigint): void {
    const set = this.udpBySocket.get(socket);
    if (!set) return;
    for (const key of [...set]) { const k = this.udpFlows.get(key); if (k) this.dropUdp(k, closedTs); }
  }

  private drop(id: bigint, k: KConn, closedTs?: bigint): void {
    if (closedTs !== undefined) k.conn.meta.closedTs = closedTs;
    this.router.close(k.conn);
    this.conns.delete(id);
    if (id & TLS_STREAM) this.tlsConns.delete(id ^ TLS_STREAM);
    else this.byNum.delete(Number(id));
    const set = this.byPid.get(k.pid);
    if (set) { set.delete(id); if (!set.size) this.byPid.delete(k.pid); }
  }

  /** One batch from the native drain thread: index holds [offset, length] pairs into ring. */
  onBatch(ring: Uint8Array, index: Uint32Array, count: number): void {
    // The router may hold a batch's reads to feed several per decoder call: the views stay valid
    // until this returns.
    this.router.beginBatch();
    try {
      this.records(ring, index, count);
    } finally {
      this.router.endBatch();
    }
    if (count > 0) this.onRead?.(count);
  }

  private records(ring: Uint8Array, index: Uint32Array, count: number): void {
    const dv = this.view(ring);
    for (let i = 0; i < count; i++) {
      const off = index[2 * i];
      const len = index[2 * i + 1];
      if (len < 4) continue;
      const type = dv.getUint32(off, true);
      if (type === tg_event_type.TG_EV_DATA) {
        if (this.shedReason >= 0) { this.shed(dv, off); continue; }
        if (len < tg_data_event.size) { this.metrics.inc('telegen_ring_malformed_total', 'Ring records shorter than their type'); continue; }
        this.onData(ring, dv, off, len);
      } else if (type === tg_event_type.TG_EV_CONN_CLOSE) {
        if (len < tg_conn_event.size) continue;
        const id = dv.getBigUint64(off + INFO_CONN + tg_conn_info.conn_id, true);
        const ts = dv.getBigUint64(off + tg_conn_event.ts_ns, true);
        const k = this.conns.get(id);
        if (k) this.drop(id, k, ts);
        this.dropSocketFlows(id, ts);
        const t = this.conns.get(id | TLS_STREAM);
        if (t) this.drop(id | TLS_STREAM, t, ts);
        this.tlsConns.delete(id);
      } else if (type === tg_event_type.TG_EV_PROC_EXIT) {
        if (len < tg_conn_event.size) continue;
        const pid = dv.getUint32(off + INFO_CONN + tg_conn_info.pid, true);
        const ts = dv.getBigUint64(off + tg_conn_event.ts_ns, true);
        for (const id of this.byPid.get(pid) ?? []) { const k = this.conns.get(id); if (k) this.drop(id, k, ts); }
        this.byPid.delete(pid);
        this.serving.delete(pid);
        this.calling.delete(pid);
        for (const k of [...this.udpFlows.values()]) if (k.pid === pid) this.dropUdp(k, ts);
        forgetProcess(pid);
      } else if (type === tg_event_type.TG_EV_CONN_OPEN) {
        if (len < tg_conn_event.size) continue;
        this.connFor(ring, dv, off + INFO_CONN);
      } else if (type === tg_event_type.TG_EV_GO_LINK) {
        if (len < tg_go_link_event.size || !this.goLinks) continue;
        const at = (f: number) => dv.getBigUint64(off + f, true);
        this.goLinks.add(at(tg_go_link_event.conn_id), at(tg_go_link_event.ts_ns), at(tg_go_link_event.parent_conn_id), at(tg_go_link_event.parent_ts_ns));
      } else if (type === tg_tls_record.TG_TLS_RECORD_HANDSHAKE) {
        if (len < tg_tls_handshake_event.size || !this.tlsHandshake) continue;
        const meta = this.metaOf(ring, dv, off + tg_tls_handshake_event.conn);
        this.tlsHandshake(dv, off, meta, this.conns.get(meta.connId!)?.conn.decoder?.name);
      }
    }
  }

  /** A data record skipped by the overload gate. Its stream ends here rather than getting a gap:
   *  a gap before detection ignores a connection for good (router.gap), and every later exchange
   *  on it would be lost uncounted. Its next record starts a fresh stream, as for a connection
   *  older than the agent. */
  private shed(dv: DataView, off: number): void {
    this.shedRecords[this.shedReason]++;
    if (dv.getUint8(off + INFO_DATA + tg_conn_info.proto) === tg_proto.TG_PROTO_UDP) return;
    const raw = dv.getBigUint64(off + INFO_DATA + tg_conn_info.conn_id, true);
    const k = this.conns.get(raw);
    if (k) this.drop(raw, k);
    const t = this.conns.get(raw | TLS_STREAM);
    if (t) this.drop(raw | TLS_STREAM, t);
  }

  private onData(ring: Uint8Array, dv: DataView, off: number, len: number): void {
    if (ring[off + INFO_DATA + tg_conn_info.proto] === tg_proto.TG_PROTO_UDP) { this.onDatagram(ring, dv, off, len); return; }
    const flags = ring[off + tg_data_event.flags];
    // A plaintext stream already known (nearly every record): by its id's words. A stream in
    // byNum is never one whose connection turned TLS (that drop() removed it), so the tlsConns
    // test below would have let it through.
    const hi = dv.getUint32(off + INFO_DATA + tg_conn_info.conn_id + 4, true);
    const num = hi < 0x200000 ? dv.getUint32(off + INFO_DATA + tg_conn_info.conn_id, true) + hi * 2 ** 32 : -1;
    let k = num >= 0 && !(flags & (tg_data_flags.TG_DATA_H2_FIELD | tg_data_flags.TG_DATA_TLS)) ? this.byNum.get(num) : undefined;
    if (k === undefined) {
      const raw = dv.getBigUint64(off + INFO_DATA + tg_conn_info.conn_id, true);
      if (flags & tg_data_flags.TG_DATA_H2_FIELD) { this.onHint(ring, dv, off, len, raw); return; }
      let key = raw;
      if (flags & tg_data_flags.TG_DATA_TLS) {
        key = raw | TLS_STREAM;
        if (!this.tlsConns.has(raw)) {
          // From now on this connection is read as plaintext: its ciphertext stream ends here.
          this.tlsConns.add(raw);
          const c = this.conns.get(raw);
          if (c) this.drop(raw, c);
        }
      } else if (this.tlsConns.has(raw)) {
        return;
      }
      k = this.connFor(ring, dv, off + INFO_DATA, key);
      if (key === raw && num >= 0) this.byNum.set(num, k);
    }
    // The thread of this syscall, not of the connection's first one: an exchange's span carries
    // the thread that completed it (thread-per-request servers hand sockets to worker threads).
    k.conn.meta.tid = dv.getUint32(off + INFO_DATA + tg_conn_info.tid, true);
    const egress = ring[off + tg_data_event.dir] === tg_dir.TG_DIR_EGRESS;
    const d = egress ? 0 : 1;
    // Two words, not a BigInt per event: the same double (exact below 2^53, rounded once above).
    const pos = dv.getUint32(off + tg_data_event.pos, true) + dv.getUint32(off + tg_data_event.pos + 4, true) * 2 ** 32;
    const plen = Math.min(dv.getUint32(off + tg_data_event.len, true), len - tg_data_event.size);
    const orig = dv.getUint32(off + tg_data_event.orig_len, true);
    const ts = dv.getBigUint64(off + tg_data_event.ts_ns, true);
    this.lastTs = ts;
    const conn = k.conn;
    const fromClientKnown = conn.meta.role !== 'unknown';
    const fromClient = (conn.meta.role === 'client') === egress;
    // Positions tell us about bytes the kernel never delivered (ring full): lost some time before
    // this record. A record's own uncaptured bytes (past the capture limit; all of a sendfile's
    // or splice's, which carry none) had moved when its syscall returned, at ts.
    if (k.next[d] >= 0 && pos > k.next[d] && fromClientKnown) this.router.gap(conn, fromClient, pos - k.next[d]);
    k.next[d] = pos + orig;
    if (plen > 0) this.router.dataLocal(conn, egress, ring.subarray(off + tg_data_event.size, off + tg_data_event.size + plen), ts);
    if (orig > plen && conn.meta.role !== 'unknown') this.router.gap(conn, (conn.meta.role === 'client') === egress, orig - plen, ts);
  }

  /** A header field the process's HTTP/2 library decoded or encoded (bpf/tls.bpf.c): a hint
   *  for the decoder of the connection's plaintext stream, never stream bytes. */
  private onHint(ring: Uint8Array, dv: DataView, off: number, len: number, raw: bigint): void {
    const k = this.conns.get(this.tlsConns.has(raw) ? raw | TLS_STREAM : raw);
    const plen = Math.min(dv.getUint32(off + tg_data_event.len, true), len - tg_data_event.size);
    const egress = ring[off + tg_data_event.dir] === tg_dir.TG_DIR_EGRESS;
    const ts = dv.getBigUint64(off + tg_data_event.ts_ns, true);
    // A value cut to the capture limit is not the value: leave the field out, so the block's
    // field count no longer matches and the decoder does not use the list (fail closed).
    const cut = ring[off + tg_data_event.truncated] !== 0;
    const used = !!k && plen > 0 && !cut && this.router.hintLocal(k.conn, egress, ring.subarray(off + tg_data_event.size, off + tg_data_event.size + plen), ts);
    this.metrics.inc('telegen_decoder_hints_total', 'Header fields from HTTP/2 library uprobes, by whether a decoder took them', { used: used ? 'yes' : 'no' });
  }

  /** One UDP datagram: fed to the router as a unit of its own (the DNS decoder reads one message
   *  per call for UDP). No positions or gaps: datagrams are not a byte stream, and one cut to the
   *  capture limit is fed as it is (the decoder flags what runs past its end). */
  private onDatagram(ring: Uint8Array, dv: DataView, off: number, len: number): void {
    const ts = dv.getBigUint64(off + tg_data_event.ts_ns, true);
    this.lastTs = ts;
    const egress = ring[off + tg_data_event.dir] === tg_dir.TG_DIR_EGRESS;
    const k = this.udpFlowFor(ring, dv, off + INFO_DATA, ts);
    k.conn.meta.tid = dv.getUint32(off + INFO_DATA + tg_conn_info.tid, true);
    const plen = Math.min(dv.getUint32(off + tg_data_event.len, true), len - tg_data_event.size);
    if (plen > 0) this.router.dataLocal(k.conn, egress, ring.subarray(off + tg_data_event.size, off + tg_data_event.size + plen), ts);
  }

  /** Whether connection `connId` (tg_conn_info.conn_id) is open, as its ciphertext or plaintext stream. */
  isOpen(connId: bigint): boolean {
    return this.conns.has(connId) || this.conns.has(connId | TLS_STREAM);
  }

  /** Connections the kernel closed while the ring was full never get a close event: expire them.
   *  UDP flows never get one: they go after UDP_FLOW_IDLE_NS (or maxIdleNs if shorter). */
  expireIdle(maxIdleNs: bigint): void {
    for (const [id, k] of this.conns) {
      if (this.lastTs - k.conn.lastTs > maxIdleNs && k.conn.lastTs > 0n) this.drop(id, k);
    }
    const udpIdle = maxIdleNs < UDP_FLOW_IDLE_NS ? maxIdleNs : UDP_FLOW_IDLE_NS;
    for (const k of [...this.udpFlows.values()]) if (this.lastTs - k.udp!.lastTs > udpIdle) this.dropUdp(k);
  }

  size(): number { return this.conns.size + this.udpFlows.size; }
}
