// Compares our reassembly of one capture with tshark's; shared by the corpus and live-capture tests.
import { replayFile, ReplayStats } from '../../host/src/replay';
import { CollectSink, Collected, Token, checkAgainstSegments, normalize, tsharkPackets, tsharkTcpStreams } from './oracle';

export interface Comparison {
  stats: ReplayStats;
  sink: CollectSink;
  tcpCompared: number;
  /** Directions checked byte-by-byte against tshark's per-segment payloads. */
  segmentChecks: number;
  udpCompared: number;
  bytesCompared: number;
  problems: string[];
}

const ep = (e: { addr: string; port: number }) => `${e.addr}:${e.port}`;
const pairKey = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`);

function tokenEq(a: Token, b: Token): boolean {
  return typeof a === 'number' ? a === b : typeof b !== 'number' && a.equals(b);
}

function describe(t: Token[]): string {
  return '[' + t.map((x) => (typeof x === 'number' ? `gap ${x}` : `${x.length} bytes`)).join(', ') + ']';
}

export async function compareWithTshark(file: string, decodeAs: string[] = []): Promise<Comparison> {
  const sink = new CollectSink();
  const stats = await replayFile(file, sink);
  const problems: string[] = [];
  let tcpCompared = 0, udpCompared = 0, bytesCompared = 0, segmentChecks = 0;
  const pk = tsharkPackets(file, decodeAs);
  const segments = pk.tcp;

  // TCP: group both sides' streams by endpoint pair, pair them up in order of appearance.
  const oracle = tsharkTcpStreams(file, pk.tcpStreams).filter((s) => s.bytes[0].length + s.bytes[1].length > 0);
  const ours = sink.conns.filter((c) => c.conn.transport === 'tcp' && c.chunks[0].length + c.chunks[1].length > 0);
  const group = new Map<string, Collected[]>();
  for (const c of ours) {
    const k = pairKey(ep(c.conn.client), ep(c.conn.server));
    if (!group.has(k)) group.set(k, []);
    group.get(k)!.push(c);
  }
  for (const s of oracle) {
    const k = pairKey(s.nodes[0], s.nodes[1]);
    const c = group.get(k)?.shift();
    if (!c) { problems.push(`tshark tcp.stream ${s.index} (${s.nodes.join(' ↔ ')}) has no matching connection`); continue; }
    const node0IsClient = s.nodes[0] === ep(c.conn.client);
    for (let side = 0; side < 2; side++) {
      const want = s.bytes[side];
      const fromClient = (side === 0) === node0IsClient;
      const spans = c.spans[fromClient ? 0 : 1];
      // tshark does not count bytes before the first data as missing, reports a hole as
      // "[N bytes missing]" once the peer's ACK passes it, and stops at a hole it never gives up on.
      let from = 0;
      while (from < spans.length && !spans[from].data) from++;
      const ours: Token[] = normalize(spans.slice(from).map((sp) => sp.data ?? sp.len));
      const theirs = s.tokens[side];
      bytesCompared += want.length;
      let k = 0;
      while (k < theirs.length && k < ours.length && tokenEq(theirs[k], ours[k])) k++;
      const stuckAtHole = k === theirs.length && (k === ours.length || typeof ours[k] === 'number');
      if (!stuckAtHole) {
        problems.push(`tcp.stream ${s.index} from ${s.nodes[side]}: layout differs at token ${k}: tshark ${describe(theirs)}, ours ${describe(ours)}`);
      }
      const seg = segments.find((x) => x.stream === s.index && x.src === s.nodes[side]);
      const bad = checkAgainstSegments(spans, seg ? seg.segs : []);
      segmentChecks++;
      if (bad) problems.push(`tcp.stream ${s.index} from ${s.nodes[side]}: ${bad}`);
    }
    tcpCompared++;
  }
  for (const [k, rest] of group) for (const c of rest) problems.push(`our conn ${c.conn.id} (${k}) has data but no tshark stream`);

  // UDP: datagrams per conversation, in order, each equal.
  const dgs = pk.udp;
  const byPair = new Map<string, { src: string; payload: Buffer }[]>();
  const streamPairs = new Map<number, string>();
  for (const d of dgs) {
    // tshark numbers UDP conversations; the pair is taken from the first datagram's two ends.
    if (!streamPairs.has(d.stream)) streamPairs.set(d.stream, '');
    const list = byPair.get(String(d.stream)) ?? [];
    list.push(d);
    byPair.set(String(d.stream), list);
  }
  const udpOurs = sink.conns.filter((c) => c.conn.transport === 'udp');
  const oursByKey = new Map<string, Collected>();
  for (const c of udpOurs) oursByKey.set(pairKey(ep(c.conn.client), ep(c.conn.server)), c);
  const used = new Set<Collected>();
  for (const [, list] of byPair) {
    // Find our conn by any datagram's sender: the other end is whichever of ours contains it.
    const src = list[0].src;
    const c = udpOurs.find((u) => !used.has(u) && (ep(u.conn.client) === src || ep(u.conn.server) === src) &&
      list.every((d) => ep(u.conn.client) === d.src || ep(u.conn.server) === d.src));
    if (!c) { problems.push(`tshark udp conversation from ${src} has no matching conn`); continue; }
    used.add(c);
    udpCompared++;
    if (c.datagrams.length !== list.length) {
      problems.push(`udp conn ${c.conn.id}: tshark ${list.length} datagrams, ours ${c.datagrams.length}`);
      continue;
    }
    list.forEach((d, i) => {
      const g = c.datagrams[i];
      bytesCompared += d.payload.length;
      if (!g.bytes.equals(d.payload) || (ep(g.fromClient ? c.conn.client : c.conn.server) !== d.src)) {
        problems.push(`udp conn ${c.conn.id} datagram ${i} differs`);
      }
    });
  }
  for (const c of udpOurs) if (!used.has(c)) problems.push(`our udp conn ${c.conn.id} has no tshark conversation`);
  void oursByKey;
  return { stats, sink, tcpCompared, segmentChecks, udpCompared, bytesCompared, problems };
}
