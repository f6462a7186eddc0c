// HTTP/2 (RFC 9113) and HPACK (RFC 7541) constants and the per-connection state of the decoder.
import { warn } from "../abi/emit";
import { Budget } from "../abi/budget";

// Frame types (RFC 9113 §6).
export const T_DATA: u8 = 0;
export const T_HEADERS: u8 = 1;
export const T_PRIORITY: u8 = 2;
export const T_RST_STREAM: u8 = 3;
export const T_SETTINGS: u8 = 4;
export const T_PUSH_PROMISE: u8 = 5;
export const T_PING: u8 = 6;
export const T_GOAWAY: u8 = 7;
export const T_WINDOW_UPDATE: u8 = 8;
export const T_CONTINUATION: u8 = 9;

// Frame flags.
export const F_END_STREAM: u8 = 0x1;
export const F_ACK: u8 = 0x1;
export const F_END_HEADERS: u8 = 0x4;
export const F_PADDED: u8 = 0x8;
export const F_PRIORITY: u8 = 0x20;

export const FRAME_HEADER: u32 = 9;
export const PREFACE_LEN: u32 = 24;
export const DEFAULT_MAX_FRAME: u32 = 16384;
export const DEFAULT_TABLE_SIZE: u32 = 4096;

// Limits that keep memory bounded whatever the peer sends.
/** Largest dynamic table we mirror; a peer allowed more gets its oldest entries reported unknown. */
export const HPACK_HARD_CAP: u32 = 65536;
/** Largest header block (HEADERS + CONTINUATION fragments) we reassemble. */
export const BLOCK_CAP: u32 = 131072;
/** CONTINUATION frames tolerated for one block before it is treated as a flood. */
export const CONTINUATION_CAP: u32 = 1024;
/** Open HTTP/2 streams tracked per connection; the oldest is flushed beyond this. Servers that
 *  set no SETTINGS_MAX_CONCURRENT_STREAMS (Node, grpc-go, Envoy) let a client keep hundreds open:
 *  h2load -m 300 against Node had 300 in flight, and at 256 none of 600 exchanges kept its status.
 *  Their header lists are bounded together by STREAM_LISTS_CAP. */
export const MAX_STREAMS: i32 = 1024;
/** Serialised header-list bytes the open streams of one connection may hold; past it the oldest
 *  stream is flushed (a typical request's list is ~100-300 bytes; a hostile 16 KiB one per stream
 *  would otherwise take 16 MiB at MAX_STREAMS). */
export const STREAM_LISTS_CAP: i32 = 1 << 20;
/** Serialised header list kept per block (names and values); longer lists are cut. */
export const HEADER_LIST_CAP: i32 = 16384;
/** gRPC message lengths remembered per direction of one call. */
export const GRPC_LENS_CAP: i32 = 64;
/** Diagnostic events per connection; further problems are only counted. */
export const EVENTS_PER_CONN: u32 = 16;
/** A direction that never showed one HTTP/2 frame in this many bytes is not HTTP/2. */
export const HUNT_GIVE_UP: u32 = 1048576;
/** Hint sets (decoded fields from the peer's own HTTP/2 library) kept per connection. */
export const HINT_SETS_MAX: i32 = 256;
/** Bytes of hint lists kept per connection (a traced process controls what its hints hold). */
export const HINT_BYTES_MAX: i32 = 262144;
/** How long a finished exchange waits for the hints that name its unknown fields. */
export const HINT_WAIT_NS: u64 = 2_000_000_000;
/** How long a stream the client reset before any response waits for one already in flight. */
export const RST_WAIT_NS: u64 = 1_000_000_000;
/** A stream without any frame for this long is expired by tick(). */
export const STREAM_TIMEOUT_NS: u64 = 300_000_000_000;

// Decoder-wide budgets: the limits above are per connection, and one module decodes every
// connection within its 32 MiB. 20 connections that each filled both 64 KiB tables (in blocks
// reassembled from CONTINUATION frames) and held 860 open streams with 1.1 KB header lists trapped
// the module at the 21st, which resets every connection it decodes.
/** HPACK table storage beyond each table's first TABLE_BASE bytes, plus header blocks being
 *  reassembled and header frames kept across reads (parse.ts), on all connections. Past it a table
 *  keeps only its newest entries that fit what it already has (HPACK numbers entries from the
 *  newest: the ones kept keep their true index; older ones become unknown, never wrong) and a
 *  block that cannot be reassembled is dropped as one too large (HPACK state lost, fields unknown). */
export const TABLES = new Budget(4 << 20, "http2: budget for HPACK tables and header blocks reached; tables keep only their newest entries (older ones unknown) until connections close");
/** What a table holds before it counts: its first entry buffer and metadata ring (HpackTable). */
export const TABLE_BASE: i32 = 1024 + 64 * 16;
/** Open streams (STREAM_COST each) and their stored header lists, on all connections. Past it the
 *  connection adding a stream or a list flushes its own least recently active streams (as past
 *  STREAM_LISTS_CAP); one that holds no other keeps a list of at most LIST_FLOOR bytes, TRUNCATED. */
const STREAMS_BUDGET: i64 = 6 << 20;
/** What an open stream costs besides its header lists (H2Stream, its map entry). */
export const STREAM_COST: i32 = 256;
/** The header list a stream keeps while the decoder is past STREAMS_BUDGET and its connection
 *  holds no other stream to flush (pseudo-header fields come first, RFC 9113 §8.3). */
export const LIST_FLOOR: i32 = 1024;
let streamBytes: i64 = 0;
let streamCuts: i64 = 0;
/** Counts open-stream bytes (negative: given back). */
export function streamsAdd(n: i64): void { streamBytes += n; }
/** Whether the open streams of all connections are past STREAMS_BUDGET. */
export function streamsOver(): bool { return streamBytes > STREAMS_BUDGET; }
/** Past STREAMS_BUDGET a stream was flushed early or a list cut to LIST_FLOOR: logged once. */
export function streamsPast(): void {
  if (streamCuts++ == 0) warn("http2: budget for open streams and their header lists reached; connections flush their oldest streams (a connection with none keeps lists cut to 1 KiB, TRUNCATED) until others end");
}
export function streamsPastCount(): i64 { return streamCuts; }
export function streamsInUse(): i64 { return streamBytes; }

// Direction framing modes.
export const M_START: u8 = 0;  // nothing seen yet
export const M_SYNC: u8 = 1;   // on a frame boundary
export const M_HUNT: u8 = 2;   // bytes were lost or the connection is older than us: look for a frame header

// Header field flags (decoded field list and dynamic table entries).
export const HF_NAME_UNKNOWN: u8 = 1;
export const HF_VALUE_UNKNOWN: u8 = 2;
export const HF_NEVER_INDEXED: u8 = 4;

/** gRPC length-prefixed message framing state of one direction of one call. */
export class GrpcDir {
  have: u32 = 0;      // prefix bytes read so far (0..5)
  flag: u32 = 0;
  len: u32 = 0;
  remain: u32 = 0;    // message bytes still to skip
  msgs: i64 = 0;
  compressed: i64 = 0;
  lens: StaticArray<u32> = new StaticArray<u32>(GRPC_LENS_CAP);
  nLens: i32 = 0;
  lost: bool = false; // bytes of this direction were lost: framing unknown from here
  bad: bool = false;  // a prefix that no gRPC sender writes (flag bits other than compressed)
}

/** One HTTP/2 stream = one request/response exchange. */
export class H2Stream {
  id: u32 = 0;
  tsStart: u64 = 0;
  tsEnd: u64 = 0;
  lastTs: u64 = 0;
  reqHdr: Uint8Array | null = null;   // serialised header lists (see stitch.ts)
  respHdr: Uint8Array | null = null;
  reqTrl: Uint8Array | null = null;
  respTrl: Uint8Array | null = null;
  /** Interim (1xx) response blocks, one list after another (103 Early Hints, 100 Continue). */
  respInfo: Uint8Array | null = null;
  reqEnd: bool = false;
  respEnd: bool = false;
  pushed: bool = false;
  /** Stream 1 of an h2c upgrade: its request was the HTTP/1.1 one (upgrade.ts). */
  h2c: bool = false;
  unknown: bool = false;      // some value could not be known (FLAG_UNKNOWN)
  hpackUnknown: bool = false; // ... because of HPACK state (telegen.hpack.unknown)
  truncated: bool = false;
  rstCode: i64 = -1;
  /** RST_STREAM that came while the ended exchange waited for hints (onRst): applied only if
   *  the hints never named its fields. */
  lateRst: i64 = -1;
  /** Reset by the client before any response: finished by a response block, RST_WAIT_NS or close. */
  rstWait: bool = false;
  reqBody: i64 = 0;
  respBody: i64 = 0;
  reqBytes: i64 = 0;
  respBytes: i64 = 0;
  /** Bytes of the request (response) direction were lost outside a DATA payload while this
   *  stream's side was open (a write or read longer than capture_max): frames of unknown length
   *  went by, so its body size and frame bytes are not known and are not reported. */
  reqBodyLost: bool = false;
  respBodyLost: bool = false;
  /** Request-direction bytes were lost after this stream's request had ended (stitch.ts onLost). */
  reqLostAfterEnd: bool = false;
  /** Frame bytes unknown, the body known (a header block cut by lost bytes, END_STREAM on it). */
  reqSizeLost: bool = false;
  respSizeLost: bool = false;
  grpc: bool = false;
  /** content-type unknown (dynamic table entry we never saw): frame speculatively, decide at the end. */
  grpcMaybe: bool = false;
  gReq: GrpcDir | null = null;
  gResp: GrpcDir | null = null;
  /** Blocks with HPACK-unknown fields not (yet) filled from hints. */
  unknownBlocks: i32 = 0;
  /** Per block slot (dir * 2 + trailers): fields the wire block held when some were unknown
   *  (a hint list of exactly that length fills it); 0 = nothing awaited, -1 = count unknown. */
  want: StaticArray<i32> = new StaticArray<i32>(4);
  /** Some fields were filled from hints (telegen.hpack.recovered). */
  recovered: bool = false;
  /** Finished, but waiting (up to HINT_WAIT_NS) for hints that fill unknown fields. */
  held: bool = false;
  heldFlags: i32 = 0;
  heldSince: u64 = 0;
  /** Bytes of the header lists stored for it (counted in Conn.listBytes). */
  listBytes: i32 = 0;
}

/** Header fields of one stream as the peer's HTTP/2 library decoded or encoded them (uprobes),
 *  per block slot (dir * 2 + trailers), in the serialised-list format of stitch.ts. */
export class HintSet {
  lists: StaticArray<Uint8Array | null> = new StaticArray<Uint8Array | null>(4);
  used: StaticArray<i32> = new StaticArray<i32>(4);   // bytes of lists[i] in use
  counts: StaticArray<i32> = new StaticArray<i32>(4); // fields in lists[i]
  cut: bool = false;                                  // a field did not fit: never used
}

/** Dynamic table of one HPACK decoding context (one direction of one connection). */
export class HpackTable {
  // Entry bytes (name then value) live contiguously in buf from the oldest entry to `end`.
  buf: Uint8Array = new Uint8Array(1024);
  end: u32 = 0;
  // Entry metadata ring, newest at `head`: 4 u32 per entry (offset, nameLen, valueLen, flags).
  ring: StaticArray<u32> = new StaticArray<u32>(64 * 4);
  ringCap: u32 = 64;
  head: u32 = 0;
  count: u32 = 0;
  size: u32 = 0;                        // RFC 7541 §4.1 size of the entries we hold
  maxSize: u32 = DEFAULT_TABLE_SIZE;    // current maximum (dynamic table size updates)
  limit: u32 = DEFAULT_TABLE_SIZE;      // SETTINGS_HEADER_TABLE_SIZE announced by the decoding peer
  /** Entries older than the ones we hold may exist and are unknown (mid-stream join, lost bytes). */
  joined: bool = false;
  /** The encoder's max size is unknown: do not evict by our (possibly too small) accounting. */
  sizeUnknown: bool = false;
}

/** State of one direction (client→server or server→client) of a connection. */
export class DirState {
  mode: u8 = M_START;
  hpack: HpackTable = new HpackTable();
  maxFrame: u32 = DEFAULT_MAX_FRAME;   // SETTINGS_MAX_FRAME_SIZE of the receiving peer
  skip: u32 = 0;                        // bytes of the current frame still to discard
  // DATA frame being streamed.
  dataStream: u32 = 0;
  dataContent: u32 = 0;
  dataPad: u32 = 0;
  dataPadPending: bool = false;
  dataEndStream: bool = false;
  dataActive: bool = false;
  dataFirst: bool = false;              // the next payload chunk starts the frame's content
  // Header block being reassembled from HEADERS/PUSH_PROMISE + CONTINUATION.
  blockActive: bool = false;
  blockType: u8 = 0;
  blockStream: u32 = 0;
  blockPromised: u32 = 0;
  blockEndStream: bool = false;
  blockBuf: Uint8Array | null = null;
  blockLen: u32 = 0;
  blockBytes: u32 = 0;                  // frame bytes of the block (for sizes)
  blockFrames: u32 = 0;
  blockDropped: bool = false;           // too large / flood: drained, not decoded
  blockTs: u64 = 0;
  /** A header frame (HEADERS, PUSH_PROMISE, CONTINUATION) the window ended inside: its header and
   *  the payload bytes we had, kept until the next parse (which sees it again) or a gap (the rest of
   *  it was never captured: a read or write longer than capture_max). 0 = none. */
  partType: u8 = 0;
  partFlags: u8 = 0;
  partStream: u32 = 0;
  partFlen: u32 = 0;
  partTs: u64 = 0;
  partBuf: Uint8Array | null = null;
  partLen: u32 = 0;
  sawPreface: bool = false;
  sawBytes: bool = false;
  /** The client side began with an h2c upgrade request (upgrade.ts) ... */
  h2c: bool = false;
  /** ... whose body bytes (Content-Length) still precede the preface. */
  h1Body: u32 = 0;
  everSynced: bool = false;             // a frame boundary was ever found in this direction
  huntBytes: u32 = 0;                   // bytes skipped while looking for one
  /** Lost bytes ended here and nothing after them was looked at yet (gapDir, parseFrames). */
  afterGap: bool = false;
}

export class Conn {
  dirs: StaticArray<DirState> = [new DirState(), new DirState()];
  /**
   * 1 when the host's client/server guess for a connection older than us was backwards (the
   * "request" side sends :status): stream state then uses the other direction. -1 = not known yet.
   */
  swap: i32 = -1;
  streams: Map<u32, H2Stream> = new Map<u32, H2Stream>();
  events: u32 = 0;
  suppressed: u32 = 0;
  /** Hints arrived on this connection: exchanges with unknown fields wait a little for theirs. */
  hinted: bool = false;
  hints: Map<u32, HintSet> = new Map<u32, HintSet>();
  hintBytes: i32 = 0;
  /** Header-list bytes of the open streams (H2Stream.listBytes; STREAM_LISTS_CAP). */
  listBytes: i32 = 0;
  /** The last stream id of the server's GOAWAY (stitch.ts onGoaway; none: u32 max). */
  goawayLast: u32 = 0xffffffff;
}
