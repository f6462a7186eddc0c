// HTTP/2 header fields from Go's own HPACK code (bpf/go_http2.bpf.c): which functions get which
// program, the struct offsets those programs follow, and the cookie that carries them. Fields
// reach the http2 decoder as hints, so connections opened before the agent (whose HPACK dynamic
// table we never saw) still get :method, :path, :authority and the rest.
import { GoBinary } from './analyze';
import { OffsetRow, rowFor } from './offsets';

/** Offsets into net/http's bundled HTTP/2 structs (scripts/go-offsets: `go-offsets http2`). */
export interface H2Offsets {
  /** HeadersFrame → its embedded FrameHeader.StreamID. */
  frameStreamId: number;
  /** writeResHeaders.streamID. */
  resHeadersStreamId: number;
  /** serverConn.conn (net.Conn): its data word, the *tls.Conn. */
  serverConnConnData: number;
  /** clientStream.cc (the probe reads it at 0: a row where it is not is not used). */
  clientStreamCc: number;
  clientStreamId: number;
  /** ClientConn.tconn (net.Conn): its data word. */
  clientConnTconnData: number;
}

/** Only what was generated: clientStream changed shape in the go1.18 transport rewrite, and a
 *  wrong stream id or socket would put one request's fields on another. */
export const GO_H2_OFFSETS: OffsetRow<H2Offsets>[] = [
  {
    from: [1, 19], to: [1, 19], generatedFrom: 'go1.19.8',
    offsets: { frameStreamId: 8, resHeadersStreamId: 0, serverConnConnData: 24, clientStreamCc: 0, clientStreamId: 40, clientConnTconnData: 16 },
  },
];

export function h2OffsetsFor(version: string): H2Offsets | undefined {
  return rowFor(GO_H2_OFFSETS, version);
}

type Ctx = (o: H2Offsets) => [number, number];

export interface H2Probe {
  /** Function name as pclntab has it. */
  func: string;
  /** Program in bpf/go_http2.bpf.c (its `_multi` twin after the capability drop). */
  prog: string;
  /** The two block-probe offsets its cookie carries. */
  ctx?: Ctx;
  /** Its RETs end the block (go_h2_block_end). */
  endsBlock?: boolean;
}

const BUNDLED = 'net/http.';
const XNET = 'golang.org/x/net/http2.';
const readBlock: Ctx = (o) => [o.frameStreamId, 0];
const serverBlock: Ctx = (o) => [o.resHeadersStreamId, o.serverConnConnData];
const clientBlock: Ctx = (o) => [o.clientStreamId, o.clientConnTconnData];

/** Both name forms: net/http's bundled copy (http2 prefix, vendored hpack) and golang.org/x/net
 *  (gRPC-Go, programs using x/net/http2 directly). */
export const GO_H2_PROBES: readonly H2Probe[] = [
  { func: 'crypto/tls.(*Conn).Read', prog: 'go_h2_tls_enter' },
  { func: 'crypto/tls.(*Conn).Write', prog: 'go_h2_tls_enter' },
  { func: `${BUNDLED}(*http2Framer).readMetaFrame`, prog: 'go_h2_read_block', ctx: readBlock, endsBlock: true },
  { func: `${XNET}(*Framer).readMetaFrame`, prog: 'go_h2_read_block', ctx: readBlock, endsBlock: true },
  { func: `${BUNDLED}(*http2Framer).readMetaFrame.func1`, prog: 'go_h2_decoded_field' },
  { func: `${XNET}(*Framer).readMetaFrame.func1`, prog: 'go_h2_decoded_field' },
  { func: `${BUNDLED}(*http2writeResHeaders).writeFrame`, prog: 'go_h2_server_block', ctx: serverBlock, endsBlock: true },
  { func: `${XNET}(*writeResHeaders).writeFrame`, prog: 'go_h2_server_block', ctx: serverBlock, endsBlock: true },
  // x/net's clientStream layout follows the x/net version, not Go's: only the bundled copy.
  { func: `${BUNDLED}(*http2clientStream).encodeAndWriteHeaders`, prog: 'go_h2_client_block', ctx: clientBlock, endsBlock: true },
  { func: 'google.golang.org/grpc/internal/transport.(*loopyWriter).writeHeader', prog: 'go_h2_grpc_block', endsBlock: true },
  { func: 'vendor/golang.org/x/net/http2/hpack.(*Encoder).WriteField', prog: 'go_h2_encoded_field' },
  { func: 'golang.org/x/net/http2/hpack.(*Encoder).WriteField', prog: 'go_h2_encoded_field' },
];

export const GO_H2_FUNCS: readonly string[] = [...new Set(GO_H2_PROBES.map((p) => p.func))];
export const GO_H2_BLOCK_END = 'go_h2_block_end';

/** Eight bits per offset: the tls.Conn → fd chain, then the block probe's two. Under 2^40, so
 *  exact as a JS number; undefined when an offset does not fit. */
export function packH2Cookie(chain: [number, number, number], ctx: [number, number]): number | undefined {
  const all = [...chain, ...ctx];
  if (all.some((v) => v < 0 || v > 255 || !Number.isInteger(v))) return undefined;
  return all.reduce((acc, v, i) => acc + v * 2 ** (8 * i), 0);
}

export interface H2Attach { prog: string; offset: number; cookie: number }

/**
 * The uprobes `g` gets for its HTTP/2 header fields, or why none. A block function is probed
 * only with its field function (a block whose fields we cannot read is no use), a field
 * function only with some block function (without one its fields have no stream).
 */
export function planH2(g: GoBinary): { attach: H2Attach[] } | { reason: string } {
  const hasBlock = GO_H2_PROBES.some((p) => p.endsBlock && g.funcs.has(p.func));
  if (!hasBlock) return { reason: 'does not use HTTP/2' };
  if (g.unsupported || !g.offsets) return { reason: g.unsupported ?? 'no crypto/tls offsets' };
  const o = h2OffsetsFor(g.buildInfo.goVersion);
  if (!o || o.clientStreamCc !== 0) return { reason: `no HTTP/2 struct offsets for ${g.buildInfo.goVersion} (host/src/gotrace/http2.ts covers ${GO_H2_OFFSETS.map((r) => r.generatedFrom).join(', ')})` };
  const chain: [number, number, number] = [g.offsets.tlsConnConnData, g.offsets.tcpConnFd, g.offsets.netFdSysfd];
  const attach: H2Attach[] = [];
  for (const p of GO_H2_PROBES) {
    const f = g.funcs.get(p.func);
    if (!f) continue;
    const cookie = packH2Cookie(chain, p.ctx ? p.ctx(o) : [0, 0]);
    if (cookie === undefined) return { reason: `an offset of ${p.func} does not fit its cookie` };
    attach.push({ prog: p.prog, offset: f.entryOffset, cookie });
    if (p.endsBlock) for (const r of f.returnOffsets) attach.push({ prog: GO_H2_BLOCK_END, offset: r, cookie: 0 });
  }
  const fields = attach.some((a) => a.prog === 'go_h2_decoded_field' || a.prog === 'go_h2_encoded_field');
  if (!fields) return { reason: 'HPACK field functions not found (inlined or renamed)' };
  return { attach };
}

/** What the header-field probes of one binary came to (GoBinaryStatus.http2). */
export interface H2Status { instrumented: boolean; probes: number; reason?: string }

/**
 * Attaches `g`'s header-field probes, all or none (a block probe without its RETs would leave a
 * stale block that later fields on the goroutine would be put in). Returns the handles.
 */
export function attachH2(g: GoBinary, attach: (a: H2Attach) => number, detach: (handle: number) => void): { handles: number[]; status: H2Status } {
  const plan = planH2(g);
  if ('reason' in plan) return { handles: [], status: { instrumented: false, probes: 0, reason: plan.reason } };
  const handles: number[] = [];
  try {
    for (const a of plan.attach) handles.push(attach(a));
  } catch (e) {
    for (const h of handles) detach(h);
    return { handles: [], status: { instrumented: false, probes: 0, reason: `uprobe attach failed: ${(e as Error).message}` } };
  }
  return { handles, status: { instrumented: true, probes: handles.length } };
}
