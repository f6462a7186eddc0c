// Connection table: decoded frames → connections → ReplaySink calls.
import {
  Frame, PROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, addrKey, addrText,
} from './decode';
import { serverByPorts } from './ports';
import { HalfOutput, TcpHalf, rel } from './tcp';
import type { ReplayConn, ReplaySink, ReplayStats } from './types';

/** Internal per-connection state; `conn` is the object the sink sees. */
class Flow implements HalfOutput {
  /** Key text of the client side, to tell directions apart ("addrKey|port"). */
  clientKey = '';
  /** The table key, to evict this flow once it has been closed long enough. */
  key = '';
  closed = false;
  closedAt = 0n;
  lastTs = 0n;
  client!: TcpHalf;
  server!: TcpHalf;
  constructor(readonly conn: ReplayConn, private readonly sink: ReplaySink, private readonly stats: ReplayStats) {}

  data(fromClient: boolean, bytes: Uint8Array, ts: bigint): void {
    this.stats.payloadBytes += bytes.length;
    this.sink.onData(this.conn, fromClient, bytes, ts);
  }
  gap(fromClient: boolean, lost: number, ts: bigint): void {
    this.stats.gaps++;
    this.stats.gapBytes += lost;
    this.sink.onGap(this.conn, fromClient, lost, ts);
  }
}

/** How long a closed TCP connection keeps absorbing stragglers (late ACKs, retransmitted FINs): 2×MSL. */
const CLOSED_LINGER_NS = 120_000_000_000n;

export class FlowTable {
  private readonly flows = new Map<string, Flow>();
  /** Open flows in creation order, so end-of-capture closes are deterministic. */
  private readonly live = new Set<Flow>();
  private nextId = 1;
  /** Closed flows in close order; they absorb stragglers for a while, then leave the table. */
  private closedQ: Flow[] = [];
  private closedHead = 0;

  constructor(private readonly sink: ReplaySink, private readonly stats: ReplayStats, private readonly maxBuffered: number) {}

  packet(f: Frame, ts: bigint): void {
    if (this.closedHead < this.closedQ.length) this.evict(ts);
    const b = f.buf;
    const sk = addrKey(b, f.srcOff, f.v6) + '|' + f.sport;
    const dk = addrKey(b, f.dstOff, f.v6) + '|' + f.dport;
    // One map entry per conversation regardless of direction: order the two ends.
    const key = (f.proto === PROTO_TCP ? 't' : 'u') + (sk < dk ? sk + '>' + dk : dk + '>' + sk);
    let flow = this.flows.get(key);
    if (f.proto === PROTO_TCP) this.tcp(f, ts, key, sk, flow);
    else {
      if (!flow) flow = this.open(f, ts, key, sk, 'udp');
      this.udp(flow, f, ts, sk);
    }
  }

  /** End of capture: flush and close everything still open, in open order. */
  finish(): void {
    for (const flow of this.live) this.close(flow, flow.lastTs);
  }

  private open(f: Frame, ts: bigint, key: string, sk: string, transport: 'tcp' | 'udp'): Flow {
    const src = { addr: addrText(f.buf, f.srcOff, f.v6), port: f.sport };
    const dst = { addr: addrText(f.buf, f.dstOff, f.v6), port: f.dport };
    let srcIsClient: boolean;
    let roleKnown: boolean;
    const syn = transport === 'tcp' && (f.flags & TCP_SYN) !== 0;
    if (syn) {
      // SYN: sender is the client; SYN-ACK (the SYN was not captured): receiver is.
      srcIsClient = (f.flags & TCP_ACK) === 0;
      roleKnown = true;
    } else {
      // TCP mid-stream trusts ports down to "smaller port serves"; UDP trusts the first datagram
      // unless a well-known or privileged port says the sender is the server (e.g. a DNS reply).
      const s = serverByPorts(f.sport, f.dport, transport === 'tcp');
      srcIsClient = s <= 0;
      roleKnown = transport === 'udp' && s <= 0;
    }
    const conn: ReplayConn = {
      id: this.nextId++,
      transport,
      client: srcIsClient ? src : dst,
      server: srcIsClient ? dst : src,
      roleKnown,
    };
    const flow = new Flow(conn, this.sink, this.stats);
    const dk = addrKey(f.buf, f.dstOff, f.v6) + '|' + f.dport;
    flow.clientKey = srcIsClient ? sk : dk;
    flow.key = key;
    if (transport === 'tcp') {
      flow.client = new TcpHalf(true, flow, this.maxBuffered);
      flow.server = new TcpHalf(false, flow, this.maxBuffered);
      this.stats.tcpConns++;
    } else {
      this.stats.udpConns++;
    }
    flow.lastTs = ts;
    this.flows.set(key, flow);
    this.live.add(flow);
    this.sink.onOpen(conn, ts);
    return flow;
  }

  private close(flow: Flow, ts: bigint): void {
    if (flow.closed) return;
    if (flow.conn.transport === 'tcp') {
      flow.client.flush(ts);
      flow.server.flush(ts);
      this.stats.duplicateBytes += flow.client.dupBytes + flow.server.dupBytes;
    }
    flow.closed = true;
    flow.closedAt = ts;
    this.closedQ.push(flow);
    this.live.delete(flow);
    this.sink.onClose(flow.conn, ts);
  }

  /** Forget flows closed more than CLOSED_LINGER_NS ago (capture time), so long captures stay bounded. */
  private evict(ts: bigint): void {
    const q = this.closedQ;
    while (this.closedHead < q.length && ts - q[this.closedHead].closedAt > CLOSED_LINGER_NS) {
      const flow = q[this.closedHead++];
      if (this.flows.get(flow.key) === flow) this.flows.delete(flow.key);
    }
    if (this.closedHead > 1024 && this.closedHead * 2 > q.length) {
      q.splice(0, this.closedHead);
      this.closedHead = 0;
    }
  }

  private udp(flow: Flow, f: Frame, ts: bigint, sk: string): void {
    flow.lastTs = ts;
    const fromClient = sk === flow.clientKey;
    if (f.cut > 0) {
      // The captured start of the datagram, then its lost rest: a DNS answer cut by the snaplen
      // still holds its header and question (id, rcode, name, type: what tshark reads from it),
      // and the decoder flags what ran past its end. Reported whole as lost, the answered query
      // read as unanswered (a timeout error).
      this.stats.snaplenCut++;
      if (f.payEnd > f.payOff) flow.data(fromClient, f.buf.subarray(f.payOff, f.payEnd), ts);
      flow.gap(fromClient, f.cut, ts);
      return;
    }
    flow.data(fromClient, f.buf.subarray(f.payOff, f.payEnd), ts);
  }

  private tcp(f: Frame, ts: bigint, key: string, sk: string, flow: Flow | undefined): void {
    const flags = f.flags;
    const syn = (flags & TCP_SYN) !== 0;
    if (flow && syn) {
      const fromClient = sk === flow.clientKey;
      const half = fromClient ? flow.client : flow.server;
      // A SYN that does not repeat the one we anchored on starts a new connection on the same
      // 4-tuple: port reuse, the old one ended without us seeing FIN/RST, or the old "connection"
      // was only mid-stream stragglers.
      const sameSyn = half.synSeen && f.seq === half.isn;
      const newConn = !sameSyn && (flow.closed || half.started || ((flags & TCP_ACK) === 0 && !flow.conn.roleKnown));
      if (newConn) {
        if (!flow.closed) this.close(flow, ts);
        flow = undefined;
      }
    }
    if (!flow) {
      flow = this.open(f, ts, key, sk, 'tcp');
    } else if (flow.closed) {
      // Stragglers after FIN/RST (final ACKs, retransmitted FINs) belong to nothing.
      this.bump('tcp-after-close');
      return;
    }
    flow.lastTs = ts;
    const fromClient = sk === flow.clientKey;
    const half = fromClient ? flow.client : flow.server;
    const peer = fromClient ? flow.server : flow.client;
    let seq = f.seq;
    if (syn) {
      half.syn(seq);
      seq = (seq + 1) >>> 0; // SYN occupies one sequence number; data (TFO) follows it
    }
    const payLen = f.payEnd - f.payOff;
    if (f.cut > 0) this.stats.snaplenCut++;
    if (payLen > 0 || f.cut > 0 || (flags & TCP_FIN) !== 0) {
      half.segment(seq, f.buf.subarray(f.payOff, f.payEnd), f.cut, (flags & TCP_FIN) !== 0, ts);
    }
    if ((flags & TCP_ACK) !== 0) {
      if (peer.started) peer.acked(f.ack, ts);
      else peer.hint(f.ack);
    }
    if ((flags & TCP_RST) !== 0) {
      this.close(flow, ts);
      return;
    }
    if (flow.client.done && flow.server.done) this.close(flow, ts);
  }

  private bump(reason: string): void {
    this.stats.skipped[reason] = (this.stats.skipped[reason] ?? 0) + 1;
  }
}
