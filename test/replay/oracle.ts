// tshark as the independent oracle: per TCP stream the bytes of each direction (follow,tcp,raw),
// per UDP conversation the datagrams in order. Also a collecting ReplaySink for our side.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { ReplayConn, ReplaySink } from '../../host/src/replay';

export const repoRoot = process.env.TELEGEN_ROOT || path.resolve(__dirname, '..', '..', '..');
export const corpusDir = process.env.TELEGEN_CORPUS || path.resolve(repoRoot, '../shared/corpus');

export function haveTshark(): boolean {
  return spawnSync('tshark', ['-v'], { stdio: 'ignore' }).status === 0;
}

export interface OracleStream {
  index: number;
  nodes: [string, string]; // "addr:port" of node 0 (first packet's sender) and node 1
  bytes: [Buffer, Buffer]; // concatenated payload sent by node 0 / node 1 (gap markers left out)
  /** Per side: data runs and the gaps tshark itself reported ("[N bytes missing in capture file]"). */
  tokens: [Token[], Token[]];
}

/** A run of stream data, or a number of bytes missing. */
export type Token = Buffer | number;

/** Merge adjacent runs of the same kind, so two layouts can be compared token by token. */
export function normalize(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (const t of tokens) {
    const last = out[out.length - 1];
    if (typeof t === 'number') {
      if (t === 0) continue;
      if (typeof last === 'number') out[out.length - 1] = last + t; else out.push(t);
    } else {
      if (t.length === 0) continue;
      if (last !== undefined && typeof last !== 'number') out[out.length - 1] = Buffer.concat([last, t]); else out.push(t);
    }
  }
  return out;
}

function tshark(args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 512 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
}

function normNode(s: string): string {
  // tshark prints IPv6 endpoints as [addr]:port.
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(s.trim());
  return m ? `${m[1]}:${m[2]}` : s.trim();
}

export function tsharkTcpStreams(file: string, n: number): OracleStream[] {
  if (n === 0) return [];
  const args = ['-r', file, '-q'];
  for (let i = 0; i < n; i++) args.push('-z', `follow,tcp,raw,${i}`);
  const out = tshark(args);
  const res: OracleStream[] = [];
  for (const block of out.split(/^={10,}$/m)) {
    const filt = /Filter: tcp\.stream eq (\d+)/.exec(block);
    if (!filt) continue;
    const n0 = /^Node 0: (.*)$/m.exec(block), n1 = /^Node 1: (.*)$/m.exec(block);
    const parts: [Buffer[], Buffer[]] = [[], []];
    const tokens: [Token[], Token[]] = [[], []];
    for (const line of block.split('\n')) {
      if (!/^\t?[0-9a-f]+$/.test(line)) continue;
      const side = line.startsWith('\t') ? 1 : 0;
      const b = Buffer.from(line.trim(), 'hex');
      // tshark's follow writes a hole it gave up on as this text, on its own line.
      const m = /^\[(\d+) bytes missing in capture file\]\.?\0?$/.exec(b.toString('latin1'));
      if (m) { tokens[side].push(Number(m[1])); continue; }
      parts[side].push(b);
      tokens[side].push(b);
    }
    res.push({
      index: Number(filt[1]),
      nodes: [normNode(n0 ? n0[1] : ''), normNode(n1 ? n1[1] : '')],
      bytes: [Buffer.concat(parts[0]), Buffer.concat(parts[1])],
      tokens: [normalize(tokens[0]), normalize(tokens[1])],
    });
  }
  return res.sort((a, b) => a.index - b.index);
}

export interface OracleDatagram { stream: number; src: string; payload: Buffer }

/** Per TCP stream and sender ("addr:port"): the captured payload bytes by tshark's relative sequence number. */
export interface OracleSegments { stream: number; src: string; segs: { seq: number; payload: Buffer }[] }

export interface OraclePackets { tcpStreams: number; tcp: OracleSegments[]; udp: OracleDatagram[] }

/** One tshark pass over the file: TCP segments with payload and UDP datagrams (ICMP-quoted headers excluded). */
export function tsharkPackets(file: string, decodeAs: string[] = []): OraclePackets {
  const out = tshark(['-r', file, ...decodeAs, '-Y', '(tcp || udp) && !icmp && !icmpv6', '-T', 'fields', '-E', 'separator=/t',
    '-e', 'tcp.stream', '-e', 'udp.stream', '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'tcp.srcport', '-e', 'udp.srcport',
    '-e', 'tcp.seq', '-e', 'tcp.payload', '-e', 'udp.payload']);
  const map = new Map<string, OracleSegments>();
  const udp: OracleDatagram[] = [];
  let tcpStreams = 0;
  const first = (x: string | undefined) => (x || '').split(',')[0]; // tunnels repeat fields; outermost first
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [ts, us, ip4, ip6, tport, uport, seq, thex, uhex] = line.split('\t');
    const addr = first(ip4) || first(ip6);
    if (ts !== '') {
      tcpStreams = Math.max(tcpStreams, Number(first(ts)) + 1);
      if (!thex) continue;
      const src = `${addr}:${first(tport)}`;
      const k = `${first(ts)}|${src}`;
      let e = map.get(k);
      if (!e) { e = { stream: Number(first(ts)), src, segs: [] }; map.set(k, e); }
      e.segs.push({ seq: Number(first(seq)), payload: Buffer.from(thex.replace(/:/g, ''), 'hex') });
    } else if (us !== '') {
      udp.push({ stream: Number(first(us)), src: `${addr}:${first(uport)}`, payload: Buffer.from(first(uhex).replace(/:/g, ''), 'hex') });
    }
  }
  return { tcpStreams, tcp: [...map.values()], udp };
}

export interface Collected {
  conn: ReplayConn;
  /** Concatenated data per direction: [fromClient, fromServer]. */
  chunks: [Buffer[], Buffer[]];
  datagrams: { fromClient: boolean; bytes: Buffer }[];
  gaps: { fromClient: boolean; lost: number }[];
  /** Stream layout per direction [fromClient, fromServer]: data (with bytes) and gaps (without), by offset. */
  spans: [Span[], Span[]];
  events: string[];
  openTs: bigint;
  closeTs: bigint | null;
  closes: number;
}

export interface Span { off: number; len: number; data?: Buffer }

export class CollectSink implements ReplaySink {
  readonly conns: Collected[] = [];
  private byId = new Map<number, Collected>();
  onOpen(conn: ReplayConn, tsNs: bigint): void {
    const c: Collected = { conn, chunks: [[], []], datagrams: [], gaps: [], spans: [[], []], events: [], openTs: tsNs, closeTs: null, closes: 0 };
    this.conns.push(c);
    this.byId.set(conn.id, c);
  }
  onData(conn: ReplayConn, fromClient: boolean, bytes: Uint8Array, tsNs: bigint): void {
    const c = this.get(conn);
    const copy = Buffer.from(bytes);
    c.chunks[fromClient ? 0 : 1].push(copy);
    c.datagrams.push({ fromClient, bytes: copy });
    addSpan(c.spans[fromClient ? 0 : 1], copy.length, copy);
    c.events.push(`${fromClient ? 'C' : 'S'}:${copy.toString('latin1')}@${tsNs}`);
  }
  onGap(conn: ReplayConn, fromClient: boolean, lost: number, tsNs: bigint): void {
    const c = this.get(conn);
    c.gaps.push({ fromClient, lost });
    addSpan(c.spans[fromClient ? 0 : 1], lost);
    c.events.push(`${fromClient ? 'C' : 'S'}:gap${lost}@${tsNs}`);
  }
  onClose(conn: ReplayConn, tsNs: bigint): void {
    const c = this.get(conn);
    c.closes++;
    c.closeTs = tsNs;
  }
  stream(c: Collected, fromClient: boolean): Buffer {
    return Buffer.concat(c.chunks[fromClient ? 0 : 1]);
  }
  private get(conn: ReplayConn): Collected {
    const c = this.byId.get(conn.id);
    if (!c) throw new Error(`event for conn ${conn.id} before onOpen`);
    if (c.closeTs !== null) throw new Error(`event for conn ${conn.id} after onClose`);
    return c;
  }
}

function addSpan(list: Span[], len: number, data?: Buffer): void {
  const last = list[list.length - 1];
  list.push({ off: last ? last.off + last.len : 0, len, data });
}

/**
 * Checks our layout of one direction against the captured segments: every byte we delivered at
 * stream offset k is the byte tshark saw at relative sequence k+1, and no captured byte falls in
 * a range we reported as a gap or after our end. Returns a problem text or null.
 */
export function checkAgainstSegments(spans: Span[], segs: { seq: number; payload: Buffer }[]): string | null {
  let end = 0;
  for (const s of segs) end = Math.max(end, s.seq - 1 + s.payload.length);
  const ourEnd = spans.length ? spans[spans.length - 1].off + spans[spans.length - 1].len : 0;
  const size = Math.max(end, ourEnd);
  if (size > (256 << 20)) return `implausible stream size ${size}`;
  const bytes = Buffer.alloc(size), have = new Uint8Array(size);
  for (const s of segs) {
    const o = s.seq - 1;
    for (let i = 0; i < s.payload.length; i++) {
      if (o + i < 0 || have[o + i]) continue; // first capture of a byte wins, as in our reassembly
      bytes[o + i] = s.payload[i];
      have[o + i] = 1;
    }
  }
  for (const sp of spans) {
    for (let i = 0; i < sp.len; i++) {
      const k = sp.off + i;
      if (sp.data) {
        if (!have[k]) return `we delivered offset ${k} that tshark never saw`;
        if (bytes[k] !== sp.data[i]) return `byte at offset ${k} differs`;
      } else if (have[k]) {
        return `offset ${k} was captured but we reported it as a gap`;
      }
    }
  }
  for (let k = ourEnd; k < size; k++) if (have[k]) return `captured offset ${k} was never delivered (we stop at ${ourEnd})`;
  return null;
}

export function listCaptures(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(pcap|pcapng|cap)$/.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}
