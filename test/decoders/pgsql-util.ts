// Helpers for the pgsql decoder tests: backend message builders (frontend messages come from
// pg-protocol's serializer), capture replay into the decoder, and the tshark oracle.
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Harness, loadDecoder, repoRoot } from '../helpers/decoder';
import { DecodedRecord } from '../../host/src/decoders/records';

export const DIR_REQ = 0;
export const DIR_RESP = 1;

export function cstr(s: string): Buffer { return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]); }
export function i32(n: number): Buffer { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; }
export function i16(n: number): Buffer { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; }

/** A typed backend message: type byte, int32 length (including itself), body. */
export function msg(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type, 'latin1'), i32(body.length + 4), body]);
}

export const be = {
  authOk: () => msg('R', i32(0)),
  authMd5: (salt: Buffer) => msg('R', i32(5), salt),
  authCleartext: () => msg('R', i32(3)),
  authSasl: (...mechs: string[]) => msg('R', i32(10), ...mechs.map(cstr), Buffer.from([0])),
  authSaslContinue: (data: string) => msg('R', i32(11), Buffer.from(data)),
  authSaslFinal: (data: string) => msg('R', i32(12), Buffer.from(data)),
  param: (k: string, v: string) => msg('S', cstr(k), cstr(v)),
  keyData: (pid: number, key: number) => msg('K', i32(pid), i32(key)),
  ready: (status = 'I') => msg('Z', Buffer.from(status)),
  rowDesc: (...cols: string[]) => msg('T', i16(cols.length), ...cols.map((c) => Buffer.concat([cstr(c), i32(0), i16(0), i32(25), i16(-1), i32(-1), i16(0)]))),
  dataRow: (...vals: string[]) => msg('D', i16(vals.length), ...vals.map((v) => Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v)]))),
  complete: (tag: string) => msg('C', cstr(tag)),
  empty: () => msg('I'),
  error: (sev: string, code: string, text: string) => msg('E', Buffer.from('S'), cstr(sev), Buffer.from('V'), cstr(sev), Buffer.from('C'), cstr(code), Buffer.from('M'), cstr(text), Buffer.from([0])),
  notice: (sev: string, code: string, text: string) => msg('N', Buffer.from('S'), cstr(sev), Buffer.from('V'), cstr(sev), Buffer.from('C'), cstr(code), Buffer.from('M'), cstr(text), Buffer.from([0])),
  parseComplete: () => msg('1'),
  bindComplete: () => msg('2'),
  closeComplete: () => msg('3'),
  noData: () => msg('n'),
  paramDesc: (...oids: number[]) => msg('t', i16(oids.length), ...oids.map(i32)),
  suspended: () => msg('s'),
  copyIn: (cols: number) => msg('G', Buffer.from([0]), i16(cols), ...Array.from({ length: cols }, () => i16(0))),
  copyOut: (cols: number) => msg('H', Buffer.from([0]), i16(cols), ...Array.from({ length: cols }, () => i16(0))),
  copyData: (data: string) => msg('d', Buffer.from(data)),
  copyDone: () => msg('c'),
  notification: (pid: number, chan: string, payload: string) => msg('A', i32(pid), cstr(chan), cstr(payload)),
  sslYes: () => Buffer.from('S'),
  sslNo: () => Buffer.from('N'),
};

export type Step = [number, Buffer];

/** Feeds steps in order on one stream; timestamps 1000, 2000, … per step. */
export function play(h: Harness, stream: number, steps: Step[], t0 = 1000n): string[] {
  const results: string[] = [];
  steps.forEach(([dir, bytes], i) => results.push(h.inst.feed(stream, dir, bytes, t0 + BigInt(i) * 1000n)));
  return results;
}

export function fresh(): Harness { return loadDecoder('pgsql'); }

export function exchanges(h: Harness): DecodedRecord[] { return h.records.filter((r) => r.kind === 1); }

// ------------------------------------------------------------------ captures

/** Bytes of one direction of a stream, or (`gap` > 0, no bytes) that many bytes the capture lost. */
export interface StreamChunk { stream: number; dir: number; bytes: Buffer; ts: bigint; gap?: number }

const PG_PORTS = [5432, 15432, 8000];

/**
 * Reassembled stream chunks of a capture. Uses host/src/replay when it has landed; until then
 * tshark's own TCP analysis (retransmissions dropped) in capture order.
 */
export async function captureChunks(file: string, serverPorts: number[] = PG_PORTS): Promise<{ chunks: StreamChunk[]; closes: number[] }> {
  const replayIndex = path.join(repoRoot, 'dist', 'host', 'src', 'replay', 'index.js');
  const chunks: StreamChunk[] = [];
  const closes: number[] = [];
  if (fs.existsSync(replayIndex)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const replay = require(replayIndex);
    if (typeof replay.replayFile === 'function') {
      await replay.replayFile(file, {
        onOpen() {},
        onData(conn: { id: number; transport: string }, fromClient: boolean, bytes: Uint8Array, tsNs: bigint) {
          if (conn.transport === 'tcp') chunks.push({ stream: conn.id, dir: fromClient ? DIR_REQ : DIR_RESP, bytes: Buffer.from(bytes), ts: tsNs });
        },
        // A segment the capture lost (a busy machine's capture buffer): the decoder is told, as
        // the agent tells it, instead of being fed bytes with a hole in them.
        onGap(conn: { id: number; transport: string }, fromClient: boolean, lost: number, tsNs: bigint) {
          if (conn.transport === 'tcp') chunks.push({ stream: conn.id, dir: fromClient ? DIR_REQ : DIR_RESP, bytes: Buffer.alloc(0), ts: tsNs, gap: lost });
        },
        onClose(conn: { id: number }) { closes.push(conn.id); },
      });
      return { chunks, closes };
    }
  }
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=/t', '-e', 'tcp.stream', '-e', 'tcp.srcport', '-e', 'tcp.dstport',
    '-e', 'tcp.flags.syn', '-e', 'tcp.flags.ack', '-e', 'frame.time_epoch', '-e', 'tcp.analysis.retransmission', '-e', 'tcp.payload', '-Y', 'tcp'],
  { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const server = new Map<number, number>();
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [s, sp, dp, syn, ack, t, retrans, payload] = line.split('\t');
    const st = Number(s);
    if (!server.has(st)) {
      if (syn === '1' && ack === '0') server.set(st, Number(dp));
      else if (syn === '1') server.set(st, Number(sp));
      else server.set(st, serverPorts.includes(Number(sp)) ? Number(sp) : serverPorts.includes(Number(dp)) ? Number(dp) : Math.min(Number(sp), Number(dp)));
    }
    if (!payload || retrans) continue;
    const [sec, frac = '0'] = t.split('.');
    const ts = BigInt(sec) * 1_000_000_000n + BigInt((frac + '000000000').slice(0, 9));
    chunks.push({ stream: st, dir: Number(sp) === server.get(st) ? DIR_RESP : DIR_REQ, bytes: Buffer.from(payload.replace(/:/g, ''), 'hex'), ts });
  }
  for (const st of server.keys()) closes.push(st);
  return { chunks, closes };
}

export async function decodeCapture(file: string, serverPorts?: number[]): Promise<Harness> {
  const h = fresh();
  const { chunks, closes } = await captureChunks(file, serverPorts);
  for (const c of chunks) {
    if (c.gap) h.inst.gap(c.stream, c.dir, c.gap);
    else h.inst.feed(c.stream, c.dir, c.bytes, c.ts);
  }
  for (const id of closes) h.inst.closeStream(id);
  return h;
}

// ------------------------------------------------------------------ the tshark oracle

export interface Oracle {
  queries: string[];   // pgsql.query (Simple query and Parse)
  tags: string[];      // pgsql.tag (CommandComplete)
  codes: string[];     // pgsql.code (ErrorResponse and NoticeResponse SQLSTATEs)
  messages: string[];  // pgsql.message
  statements: string[]; // pgsql.statement, non-empty names (Parse, Bind, Describe, Close)
  portals: string[];    // pgsql.portal, non-empty names (Bind, Execute, Describe, Close)
}

/** tshark's TSV (the corpus *.expected.tsv shape): values of several messages joined with '|'. */
export function oracleFromTsv(tsv: string): Oracle {
  const lines = tsv.split('\n').filter(Boolean);
  const head = lines[0].split('\t');
  const col = (n: string) => head.indexOf(n);
  const o: Oracle = { queries: [], tags: [], codes: [], messages: [], statements: [], portals: [] };
  for (const line of lines.slice(1)) {
    const f = line.split('\t');
    const types = (f[col('pgsql.type')] || '').split('|');
    const nQuery = types.filter((t) => t === 'Simple query' || t === 'Parse').length;
    const take = (name: string, count: number, into: string[]) => {
      const v = f[col(name)];
      if (v === undefined || v === '' || count === 0) return;
      // A query text may itself contain '|': with one message of the kind in the packet, keep it whole.
      if (count === 1) into.push(unescape(v));
      else for (const x of v.split('|')) into.push(unescape(x));
    };
    take('pgsql.query', nQuery, o.queries);
    take('pgsql.tag', types.filter((t) => t === 'Command completion').length, o.tags);
    const nErr = types.filter((t) => t === 'Error' || t === 'Notice').length;
    take('pgsql.code', nErr, o.codes);
    take('pgsql.message', nErr, o.messages);
    for (const [name, into] of [['pgsql.statement', o.statements], ['pgsql.portal', o.portals]] as const) {
      const v = f[col(name)];
      if (v) for (const x of v.split('|')) if (x) into.push(unescape(x));
    }
  }
  return o;
}

/** tshark -T fields escapes \n, \r, \t and backslash. */
function unescape(s: string): string {
  return s.replace(/\\([nrt\\])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : '\\'));
}

export const ORACLE_FIELDS = ['frame.number', 'tcp.stream', 'pgsql.frontend', 'pgsql.type', 'pgsql.query', 'pgsql.statement', 'pgsql.portal', 'pgsql.tag', 'pgsql.severity', 'pgsql.code', 'pgsql.message'];

export function oracleFromCapture(file: string, decodeAs: string[] = []): Oracle {
  const args = ['-r', file, ...decodeAs.flatMap((d) => ['-d', d]), '-Y', 'pgsql', '-T', 'fields', '-E', 'header=y', '-E', 'separator=/t',
    '-E', 'occurrence=a', '-E', 'aggregator=|', '-E', 'quote=n', ...ORACLE_FIELDS.flatMap((f) => ['-e', f])];
  return oracleFromTsv(execFileSync('tshark', args, { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] }).toString());
}

/**
 * tshark 4.0 decodes pgsql strings as ASCII: every byte >= 0x80 of a UTF-8 text becomes U+FFFD.
 * The decoder keeps the UTF-8; for comparison its text is mapped the same way.
 */
export function asTshark(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b >= 0x80 ? '\uFFFD' : String.fromCharCode(b);
  return out;
}

/** What the decoder reported, in the oracle's terms. */
export function decoded(h: Harness): Oracle {
  const o: Oracle = { queries: [], tags: [], codes: [], messages: [], statements: [], portals: [] };
  for (const r of h.records) {
    const a = r.attributes;
    if (typeof a['db.query.text'] === 'string') o.queries.push(asTshark(a['db.query.text']));
    if (typeof a['telegen.db.command_tag'] === 'string') o.tags.push(...a['telegen.db.command_tag'].split(';'));
    if (typeof a['db.response.status_code'] === 'string') o.codes.push(a['db.response.status_code']);
    if (typeof a['error.message'] === 'string') o.messages.push(asTshark(a['error.message']));
    if (typeof a['telegen.db.statement.name'] === 'string') o.statements.push(a['telegen.db.statement.name']);
    if (typeof a['telegen.db.portal.name'] === 'string') o.portals.push(a['telegen.db.portal.name']);
  }
  return o;
}

export function multiset(xs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

/**
 * Differences: every tshark query text appears in a record (and no other); tags, codes, messages
 * agree as multisets; the sets of statement and portal names agree (a name is reported on each
 * Execute of it, tshark shows it on each Parse/Bind/Describe/Close).
 */
export function compare(want: Oracle, got: Oracle): string[] {
  const problems: string[] = [];
  for (const k of ['statements', 'portals'] as const) {
    const a = new Set(want[k]);
    const b = new Set(got[k]);
    for (const v of a) if (!b.has(v)) problems.push(`${k}: ${JSON.stringify(v)} not decoded`);
    for (const v of b) if (!a.has(v)) problems.push(`${k}: ${JSON.stringify(v)} tshark did not see`);
  }
  const gotQ = new Set(got.queries);
  for (const q of want.queries) if (!gotQ.has(q)) problems.push(`query not decoded: ${JSON.stringify(q.slice(0, 120))}`);
  const wantQ = new Set(want.queries);
  for (const q of got.queries) if (!wantQ.has(q)) problems.push(`query tshark did not see: ${JSON.stringify(q.slice(0, 120))}`);
  for (const k of ['tags', 'codes', 'messages'] as const) {
    const a = multiset(want[k]);
    const b = multiset(got[k]);
    for (const [v, n] of a) if ((b.get(v) ?? 0) !== n) problems.push(`${k}: ${JSON.stringify(v)} tshark ${n}, decoder ${b.get(v) ?? 0}`);
    for (const [v, n] of b) if (!a.has(v)) problems.push(`${k}: ${JSON.stringify(v)} tshark 0, decoder ${n}`);
  }
  return problems;
}
