// HTTP/2 framing (RFC 9113 §4, §6): walks frames of one direction over (ptr, end), streams DATA
// payloads without buffering them, reassembles header blocks and hands them to HPACK and stitch.
import { DIR_REQUEST, PARSE_NEEDS_MORE, PARSE_INVALID } from "../abi/abi";
import {
  Conn, DirState, T_DATA, T_HEADERS, T_PRIORITY, T_RST_STREAM, T_SETTINGS, T_PUSH_PROMISE, T_PING,
  T_GOAWAY, T_WINDOW_UPDATE, T_CONTINUATION, F_END_STREAM, F_ACK, F_END_HEADERS, F_PADDED, F_PRIORITY,
  FRAME_HEADER, PREFACE_LEN, M_START, M_SYNC, M_HUNT, BLOCK_CAP, CONTINUATION_CAP, DEFAULT_MAX_FRAME, HUNT_GIVE_UP,
  TABLES,
} from "./types";
import {
  decodeBlock, resetFields, markUnknown, hpackLost, hpackSetLimit, hpWarn, HP_OK, W_INDEX_RANGE, W_SIZE_LIMIT, W_SIZE_BOMB, W_FIELDS,
} from "./hpack";
import { onHeaders, onPushPromise, onDataFrame, onData, onEndStream, onRst, onGoaway, onLost, onDataLost, onBlockCut, onUpgradeBody } from "./stitch";
import { looksLikeRequest, upgradeRequest, switchingHead } from "./upgrade";
import { emitEvent, h2ErrorName } from "./emit";
import { INPUT_CAP } from "../abi/window";
import { fieldsHave } from "./hpack";

/** The direction stream state uses: the physical one, unless the roles were guessed backwards. */
@inline function ld(c: Conn, dir: i32): i32 {
  return c.swap == 1 ? dir ^ 1 : dir;
}

/** The client connection preface (RFC 9113 §3.4). */
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** Number of leading bytes at p (up to n) that match the preface; -1 at the first mismatch. */
export function prefaceMatch(p: usize, n: u32): i32 {
  const m = n < <u32>PREFACE_LEN ? n : <u32>PREFACE_LEN;
  for (let i: u32 = 0; i < m; i++) {
    if (<u32>load<u8>(p + <usize>i) != <u32>PREFACE.charCodeAt(<i32>i)) return -1;
  }
  return <i32>m;
}

@inline function be24(p: usize): u32 {
  return (<u32>load<u8>(p) << 16) | (<u32>load<u8>(p + 1) << 8) | <u32>load<u8>(p + 2);
}
@inline function be32(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}

/**
 * Whether a frame header at p could be real: type known, flags and stream id allowed for the
 * type, length within maxLen and fixed where the type fixes it. Returns the length or -1.
 * Used to find frame boundaries after lost bytes or when joining a connection mid-stream.
 */
export function plausibleHeader(p: usize, maxLen: u32): i32 {
  const len = be24(p);
  const type = load<u8>(p + 3);
  const flags = <u32>load<u8>(p + 4);
  const raw = be32(p + 5);
  if (raw & 0x80000000) return -1;
  const sid = raw;
  if (len > maxLen) return -1;
  switch (type) {
    case T_DATA: if (sid == 0 || (flags & ~0x09) != 0) return -1; break;
    case T_HEADERS: if (sid == 0 || (flags & ~0x2d) != 0 || len == 0) return -1; break;
    case T_PRIORITY: if (sid == 0 || len != 5 || flags != 0) return -1; break;
    case T_RST_STREAM: if (sid == 0 || len != 4 || flags != 0) return -1; break;
    case T_SETTINGS: if (sid != 0 || len % 6 != 0 || (flags & ~1) != 0 || ((flags & 1) != 0 && len != 0)) return -1; break;
    case T_PUSH_PROMISE: if (sid == 0 || (flags & ~0x0c) != 0 || len < 4) return -1; break;
    case T_PING: if (sid != 0 || len != 8 || (flags & ~1) != 0) return -1; break;
    case T_GOAWAY: if (sid != 0 || len < 8 || flags != 0) return -1; break;
    case T_WINDOW_UPDATE: if (len != 4 || flags != 0) return -1; break;
    case T_CONTINUATION: if (sid == 0 || (flags & ~0x04) != 0) return -1; break;
    default: return -1;
  }
  return <i32>len;
}

/**
 * Looks for a frame boundary in [from, len). A candidate is accepted when the frame ends exactly
 * at the end of the bytes we have or is followed by another plausible header. Returns the
 * boundary, or -(keepFrom + 1) when more bytes are needed to decide.
 */
function hunt(base: usize, from: u32, len: u32, maxLen: u32): i64 {
  for (let q = from; q + FRAME_HEADER <= len; q++) {
    const fl = plausibleHeader(base + <usize>q, maxLen);
    if (fl < 0) continue;
    const e = <u64>q + FRAME_HEADER + <u64>fl;
    if (e == <u64>len) return <i64>q;
    if (e + FRAME_HEADER <= <u64>len) {
      const fl2 = plausibleHeader(base + <usize>e, maxLen);
      if (fl2 < 0) continue;
      // A third header, when we have it, must fit too: bytes inside a body rarely chain thrice.
      const e2 = e + FRAME_HEADER + <u64>fl2;
      if (e2 + FRAME_HEADER <= <u64>len && plausibleHeader(base + <usize>e2, maxLen) < 0) continue;
      return <i64>q;
    }
    return -(<i64>q + 1);
  }
  const keep: u32 = len > from + 8 ? len - 8 : from;
  return -(<i64>keep + 1);
}

/**
 * A HEADERS frame header at p, right after lost bytes, whose block begins with a pseudo-header
 * field of this direction's side (:method/:path/:authority/:scheme from the client, :status from
 * the server, RFC 9113 §8.3): taken as a frame boundary though no second header confirms it.
 */
function headersAfterGap(c: Conn, dir: i32, p: usize, n: u32, maxLen: u32): bool {
  if (c.swap < 0) return false;
  const fl = plausibleHeader(p, maxLen);
  if (fl < 0 || load<u8>(p + 3) != T_HEADERS) return false;
  const flags = <u32>load<u8>(p + 4);
  let off: u32 = FRAME_HEADER;
  if (flags & F_PADDED) off += 1;
  if (flags & F_PRIORITY) off += 5;
  if (off >= n || off >= FRAME_HEADER + <u32>fl) return false;
  const avail = (n < FRAME_HEADER + <u32>fl ? n : FRAME_HEADER + <u32>fl) - off;
  return blockSide(p + <usize>off, avail) == (ld(c, dir) == DIR_REQUEST ? 1 : 2);
}

/** HPACK state of this direction is lost: forget the table and any half-assembled block. */
function lose(c: Conn, d: DirState, dir: i32): void {
  hpackLost(d.hpack);
  d.blockActive = false;
  d.blockLen = 0;
  d.blockDropped = false;
  freeBlock(d);
}

const HP_ERR_NAMES: string[] = ["", "cut", "integer_overflow", "invalid_huffman", "index_zero", "too_large"];

function completeBlock(c: Conn, connId: u32, d: DirState, dir: i32, ptr: usize, n: u32, ts: u64): void {
  const r = decodeBlock(d.hpack, ptr, n);
  const w = hpWarn;
  if (r != HP_OK) {
    // The block's remaining fields, and any table inserts among them, are lost.
    emitEvent(c, connId, ts, "http2.hpack." + HP_ERR_NAMES[-r], "header block of " + n.toString() + " bytes", d.blockStream);
    hpackLost(d.hpack);
    markUnknown();
  } else if (w != 0) {
    if (w & W_INDEX_RANGE) emitEvent(c, connId, ts, "http2.hpack.index_out_of_range", "reported unknown", d.blockStream);
    if (w & W_SIZE_BOMB) emitEvent(c, connId, ts, "http2.hpack.table_size_too_large", "mirrored up to 65536", d.blockStream);
    else if (w & W_SIZE_LIMIT) emitEvent(c, connId, ts, "http2.hpack.table_size_over_setting", "", d.blockStream);
    if (w & W_FIELDS) emitEvent(c, connId, ts, "http2.hpack.too_many_fields", "", d.blockStream);
  }
  dispatchBlock(c, connId, d, dir, ts);
}

function dispatchBlock(c: Conn, connId: u32, d: DirState, dir: i32, ts: u64): void {
  if (c.swap < 0) {
    // Joined mid-connection: the first block that shows its side fixes the roles.
    let clientSide = -1;
    if (d.blockType == T_PUSH_PROMISE || fieldsHave(":status")) clientSide = dir ^ 1;
    else if (fieldsHave(":method")) clientSide = dir;
    if (clientSide >= 0) c.swap = clientSide == DIR_REQUEST ? 0 : 1;
  }
  if (d.blockType == T_PUSH_PROMISE) onPushPromise(c, connId, d.blockPromised, d.blockBytes, d.blockTs);
  else onHeaders(c, connId, ld(c, dir), d.blockStream, d.blockEndStream, d.blockBytes, d.blockTs);
  d.blockActive = false;
  d.blockLen = 0;
  d.blockDropped = false;
  freeBlock(d);
}

/** A reassembly buffer grown past 4 KiB goes after its block (a big block is rare; kept, one per
 *  direction of every connection, they would hold the decoder's TABLES). */
function freeBlock(d: DirState): void {
  const b = d.blockBuf;
  if (b !== null && b.length > 4096 && !d.blockActive) { TABLES.give(<i64>b.length); d.blockBuf = null; }
}

/** Buffers of a closing connection go back to the decoder's TABLES. */
export function releaseConn(c: Conn): void {
  for (let i = 0; i < 2; i++) {
    const d = c.dirs[i];
    const b = d.blockBuf, pb = d.partBuf;
    if (b !== null) { TABLES.give(<i64>b.length); d.blockBuf = null; }
    if (pb !== null) { TABLES.give(<i64>pb.length); d.partBuf = null; }
    hpackLost(d.hpack);
  }
}

/** The last appendBlock that failed did so for the decoder's TABLES, not BLOCK_CAP. */
let appendBudget = false;

function appendBlock(d: DirState, ptr: usize, n: u32): bool {
  appendBudget = false;
  if (d.blockLen + n > BLOCK_CAP) return false;
  let b = d.blockBuf;
  if (b == null || <u32>b.length < d.blockLen + n) {
    let cap: u32 = b == null ? 4096 : <u32>b.length * 2;
    while (cap < d.blockLen + n) cap *= 2;
    // past the decoder's budget the block is dropped as one too large (HPACK state lost)
    if (!TABLES.take(<i64>cap - <i64>(b == null ? 0 : b.length))) { appendBudget = true; return false; }
    const nb = new Uint8Array(<i32>cap);
    if (b != null && d.blockLen > 0) memory.copy(nb.dataStart, b.dataStart, d.blockLen);
    d.blockBuf = nb;
    b = nb;
  }
  memory.copy(b.dataStart + <usize>d.blockLen, ptr, n);
  d.blockLen += n;
  return true;
}

/** HEADERS, PUSH_PROMISE or CONTINUATION whose whole payload is at p. */
function headerFrame(c: Conn, connId: u32, d: DirState, dir: i32, type: u8, flags: u8, sid: u32, p: usize, flen: u32, ts: u64): void {
  if (type == T_CONTINUATION) {
    if (!d.blockActive) {
      // The block started before we joined or in lost bytes: its inserts are unknown to us.
      if (!d.hpack.joined) emitEvent(c, connId, ts, "http2.continuation_without_headers", "", sid);
      lose(c, d, dir);
      return;
    }
    d.blockFrames++;
    d.blockBytes += FRAME_HEADER + flen;
    if (!d.blockDropped) {
      if (d.blockFrames > CONTINUATION_CAP || !appendBlock(d, p, flen)) {
        d.blockDropped = true;
        emitEvent(c, connId, ts, d.blockFrames > CONTINUATION_CAP ? "http2.continuation_flood" : "http2.header_block_too_large",
          appendBudget ? "decoder memory budget reached, block dropped, HPACK state unknown" : "block dropped, HPACK state unknown", sid);
      }
    }
    if (flags & F_END_HEADERS) {
      if (d.blockDropped) {
        lose(c, d, dir);
        resetFields(true);
        d.blockActive = true;
        dispatchBlock(c, connId, d, dir, ts);
      } else {
        completeBlock(c, connId, d, dir, d.blockBuf!.dataStart, d.blockLen, ts);
      }
    }
    return;
  }
  let off: u32 = 0;
  let pad: u32 = 0;
  if (flags & F_PADDED) {
    if (flen < 1) { malformed(c, connId, d, dir, sid, ts); return; }
    pad = <u32>load<u8>(p);
    off = 1;
  }
  let promised: u32 = 0;
  if (type == T_HEADERS) {
    if (flags & F_PRIORITY) off += 5; // exclusive bit + stream dependency, weight
  } else {
    if (off + 4 > flen) { malformed(c, connId, d, dir, sid, ts); return; }
    promised = be32(p + <usize>off) & 0x7fffffff;
    off += 4;
  }
  if (off + pad > flen) { malformed(c, connId, d, dir, sid, ts); return; }
  const frag = p + <usize>off;
  const fragLen = flen - off - pad;
  d.blockActive = true;
  d.blockType = type;
  d.blockStream = sid;
  d.blockPromised = promised;
  d.blockEndStream = type == T_HEADERS && (flags & F_END_STREAM) != 0;
  d.blockBytes = FRAME_HEADER + flen;
  d.blockFrames = 1;
  d.blockLen = 0;
  d.blockDropped = false;
  d.blockTs = ts;
  if (flags & F_END_HEADERS) {
    completeBlock(c, connId, d, dir, frag, fragLen, ts);
  } else if (!appendBlock(d, frag, fragLen)) {
    d.blockDropped = true;
  }
}

function malformed(c: Conn, connId: u32, d: DirState, dir: i32, sid: u32, ts: u64): void {
  emitEvent(c, connId, ts, "http2.malformed_frame", "padding or length inconsistent", sid);
  lose(c, d, dir);
}

function settingsFrame(c: Conn, d: DirState, dir: i32, p: usize, flen: u32): void {
  const other = c.dirs[1 - dir];
  for (let i: u32 = 0; i + 6 <= flen; i += 6) {
    const id = (<u32>load<u8>(p + <usize>i) << 8) | <u32>load<u8>(p + <usize>i + 1);
    const v = be32(p + <usize>i + 2);
    if (id == 1) {
      // SETTINGS_HEADER_TABLE_SIZE: the limit of the sender's decoder, i.e. of the other direction.
      hpackSetLimit(other.hpack, v);
    } else if (id == 5) {
      // SETTINGS_MAX_FRAME_SIZE: frames the sender accepts, i.e. sent in the other direction.
      if (v >= DEFAULT_MAX_FRAME && v <= 0xffffff && v > other.maxFrame) other.maxFrame = v;
    }
  }
}

/** Parses the frames of one direction in the input window; returns bytes consumed or NEEDS_MORE. */
export function parseFrames(c: Conn, connId: u32, dir: i32, base: usize, len: u32, ts: u64): i32 {
  const d = c.dirs[dir];
  let p: u32 = 0;
  if (d.mode == M_START) {
    const other = c.dirs[1 - dir];
    if (dir == DIR_REQUEST && !d.sawBytes && !d.h2c && looksLikeRequest(base, len)) {
      const r = upgradeRequest(c, connId, d, base, len, ts);
      if (r < 0) return r;
      if (r > 0) { p = <u32>r; d.h2c = true; c.swap = 0; }
    }
    if (d.h1Body > 0) {
      const take = d.h1Body < len - p ? d.h1Body : len - p;
      onUpgradeBody(c, take);
      d.h1Body -= take;
      p += take;
    }
    // the preface follows the upgrade request (and the 101): hold what was taken until it comes
    if (d.h2c && (d.h1Body > 0 || p == len)) return <i32>p;
    const m = prefaceMatch(base + <usize>p, len - p);
    if (dir == DIR_REQUEST && m >= 0) {
      if (<u32>m < PREFACE_LEN) return p > 0 ? <i32>p : PARSE_NEEDS_MORE;
      p += PREFACE_LEN;
      d.mode = M_SYNC;
      d.sawPreface = true;
      c.swap = 0;
      d.hpack.joined = false;
      d.hpack.sizeUnknown = false;
    } else if (dir != DIR_REQUEST && (other.sawPreface || other.h2c || !other.sawBytes)) {
      if (other.h2c && !d.sawBytes) {
        const r = switchingHead(base, len);
        if (r < 0) return r;
        p = <u32>r;
        if (p > 0) d.sawBytes = true; // taken once
      }
      // A server's first frame is SETTINGS (RFC 9113 §3.4), also right after an h2c 101.
      if (len - p < FRAME_HEADER) return p > 0 ? <i32>p : PARSE_NEEDS_MORE;
      const f = base + <usize>p;
      if (load<u8>(f + 3) == T_SETTINGS && (load<u8>(f + 4) & F_ACK) == 0 && plausibleHeader(f, 0xffffff) >= 0) {
        d.mode = M_SYNC;
        c.swap = 0;
        d.hpack.joined = false;
        d.hpack.sizeUnknown = false;
      }
    }
    if (d.mode == M_START) {
      // A connection older than us: the peer's table holds entries we never saw.
      hpackLost(d.hpack);
      d.mode = M_HUNT;
    }
  }
  d.sawBytes = true;
  d.partType = 0; // the host hands a frame we stopped inside back to us whole, or reports it lost
  while (true) {
    if (d.skip > 0) {
      const avail = len - p;
      const take = d.skip < avail ? d.skip : avail;
      p += take;
      d.skip -= take;
      if (d.skip > 0) break;
      continue;
    }
    if (d.dataActive) {
      if (d.dataPadPending) {
        if (p >= len) break;
        const pad = <u32>load<u8>(base + <usize>p);
        p++;
        d.dataPadPending = false;
        if (pad > d.dataContent) {
          emitEvent(c, connId, ts, "http2.malformed_frame", "DATA padding longer than the frame", d.dataStream);
          d.dataPad = d.dataContent;
          d.dataContent = 0;
        } else {
          d.dataPad = pad;
          d.dataContent -= pad;
        }
      }
      if (d.dataContent > 0) {
        if (p >= len) break;
        const avail = len - p;
        const take = d.dataContent < avail ? d.dataContent : avail;
        onData(c, ld(c, dir), d.dataStream, base + <usize>p, take, d.dataFirst ? d.dataContent : 0);
        d.dataFirst = false;
        p += take;
        d.dataContent -= take;
        if (d.dataContent > 0) break;
      }
      if (d.dataPad > 0) {
        const avail = len - p;
        const take = d.dataPad < avail ? d.dataPad : avail;
        p += take;
        d.dataPad -= take;
        if (d.dataPad > 0) break;
      }
      d.dataActive = false;
      if (d.dataEndStream) onEndStream(c, connId, ld(c, dir), d.dataStream, ts);
      continue;
    }
    if (d.mode == M_HUNT) {
      const maxLen = d.maxFrame < 65536 ? d.maxFrame : 65536;
      let q = hunt(base, p, len, maxLen);
      if (d.afterGap && len - p >= FRAME_HEADER) {
        // The first bytes after lost ones: a capture cut to a short snaplen (or a read cut to the
        // capture limit) loses each packet's tail, so the next frame header is often followed by
        // no whole frame, and the chain hunt() wants never comes before the next loss.
        if (q == -(<i64>p + 1) && headersAfterGap(c, dir, base + <usize>p, len - p, maxLen)) q = <i64>p;
        d.afterGap = false;
      }
      if (q < 0) {
        const to = <u32>(-q - 1);
        d.huntBytes += to - p;
        p = to;
        // Never one frame in this much: not HTTP/2 (misdetected); let the host drop the stream.
        if (!d.everSynced && d.huntBytes > HUNT_GIVE_UP) return PARSE_INVALID;
        break;
      }
      d.huntBytes += <u32>q - p;
      p = <u32>q;
      d.mode = M_SYNC;
    }
    if (len - p < FRAME_HEADER) break;
    d.everSynced = true;
    const h = base + <usize>p;
    const flen = be24(h);
    const type = load<u8>(h + 3);
    const flags = load<u8>(h + 4);
    const sid = be32(h + 5) & 0x7fffffff;
    if (d.blockActive && (type != T_CONTINUATION || sid != d.blockStream)) {
      // RFC 9113 §6.10: nothing may interleave a header block. Its inserts are lost.
      emitEvent(c, connId, ts, "http2.continuation_missing", "header block interrupted", d.blockStream);
      lose(c, d, dir);
    }
    if (flen > d.maxFrame && type != T_DATA) {
      // Only DATA is passed through above the negotiated size (seen in the wild and decoded by
      // tshark); anything else this large is hostile or we lost sync.
      emitEvent(c, connId, ts, "http2.frame_too_large", "type " + type.toString() + " length " + flen.toString(), sid);
    } else if (flen > d.maxFrame) {
      emitEvent(c, connId, ts, "http2.frame_too_large", "DATA length " + flen.toString(), sid);
    }
    // (if-chains, not a switch: a `break` must leave the loop when a frame is incomplete)
    if (type == T_DATA) {
      p += FRAME_HEADER;
      d.dataActive = true;
      d.dataStream = sid;
      d.dataEndStream = (flags & F_END_STREAM) != 0;
      d.dataPadPending = (flags & F_PADDED) != 0 && flen > 0;
      d.dataContent = d.dataPadPending ? flen - 1 : flen;
      d.dataPad = 0;
      d.dataFirst = true;
      onDataFrame(c, ld(c, dir), sid, FRAME_HEADER + flen, ts);
      continue;
    }
    if (type == T_HEADERS || type == T_PUSH_PROMISE || type == T_CONTINUATION) {
      if (flen + FRAME_HEADER > INPUT_CAP) {
        emitEvent(c, connId, ts, "http2.header_block_too_large", "frame of " + flen.toString() + " bytes skipped", sid);
        lose(c, d, dir);
        p += FRAME_HEADER;
        d.skip = flen;
        continue;
      }
      if (len - p < FRAME_HEADER + flen) {
        keepPartial(d, type, flags, sid, h + FRAME_HEADER, len - p - FRAME_HEADER, flen, ts);
        break;
      }
      headerFrame(c, connId, d, dir, type, flags, sid, h + FRAME_HEADER, flen, ts);
      p += FRAME_HEADER + flen;
      continue;
    }
    if (type == T_SETTINGS && (flags & F_ACK) == 0 && flen <= 4096) {
      if (len - p < FRAME_HEADER + flen) break;
      settingsFrame(c, d, dir, h + FRAME_HEADER, flen);
      p += FRAME_HEADER + flen;
      continue;
    }
    if (type == T_RST_STREAM && flen == 4) {
      if (len - p < FRAME_HEADER + 4) break;
      onRst(c, connId, ld(c, dir), sid, be32(h + FRAME_HEADER), ts);
      p += FRAME_HEADER + 4;
      continue;
    }
    if (type == T_GOAWAY && flen >= 8) {
      if (len - p < FRAME_HEADER + 8) break;
      const code = be32(h + FRAME_HEADER + 4);
      if (code != 0) emitEvent(c, connId, ts, "http2.goaway", h2ErrorName(code), 0);
      onGoaway(c, connId, ld(c, dir), be32(h + FRAME_HEADER) & 0x7fffffff, ts);
      p += FRAME_HEADER + 8;
      d.skip = flen - 8; // debug data
      continue;
    }
    // PRIORITY, PING, WINDOW_UPDATE, SETTINGS ACK, malformed control frames and unknown
    // extension types (RFC 9113 §5.5): skipped.
    p += FRAME_HEADER;
    d.skip = flen;
  }
  return p > 0 ? <i32>p : PARSE_NEEDS_MORE;
}

/** Keeps the start of a header frame the window ends inside (see DirState.partType). */
function keepPartial(d: DirState, type: u8, flags: u8, sid: u32, p: usize, avail: u32, flen: u32, ts: u64): void {
  if (avail > flen) avail = flen;
  d.partType = type;
  d.partFlags = flags;
  d.partStream = sid;
  d.partFlen = flen;
  d.partTs = ts;
  let b = d.partBuf;
  if (b == null || <u32>b.length < avail) {
    const cap = avail < 4096 ? 4096 : avail;
    // past the decoder's budget nothing is kept: if the rest is lost, so is the block (gapDir)
    if (!TABLES.take(<i64>cap - <i64>(b == null ? 0 : b.length))) { d.partType = 0; return; }
    b = new Uint8Array(<i32>cap);
    d.partBuf = b;
  }
  if (avail > 0) memory.copy(b.dataStart, p, avail);
  d.partLen = avail;
}

/**
 * The rest of a header block was lost (a write or read longer than the capture limit cuts the
 * frames after its first capture_max bytes): the fields decoded from what was captured are the
 * block's (pseudo-header fields come first, RFC 9113 §8.3), the others and the table are unknown.
 * Without this the stream had no request (no span at all) or no response.
 */
function cutBlock(c: Conn, connId: u32, d: DirState, dir: i32): void {
  const pt = d.partType;
  d.partType = 0;
  if (pt == T_HEADERS || pt == T_PUSH_PROMISE) {
    if (d.blockActive) return; // a block interrupted by another: lost, as when parsed whole
    const buf = d.partBuf!;
    const n = d.partLen;
    const flags = d.partFlags;
    let off: u32 = 0;
    let pad: u32 = 0;
    if (flags & F_PADDED) {
      if (n < 1) return;
      pad = <u32>load<u8>(buf.dataStart);
      off = 1;
    }
    let promised: u32 = 0;
    if (pt == T_HEADERS) {
      if (flags & F_PRIORITY) off += 5;
    } else {
      if (off + 4 > n) return;
      promised = be32(buf.dataStart + <usize>off) & 0x7fffffff;
      off += 4;
    }
    if (off + pad > d.partFlen || off > n) return;
    const fragEnd = n < d.partFlen - pad ? n : d.partFlen - pad;
    d.blockActive = true;
    d.blockType = pt;
    d.blockStream = d.partStream;
    d.blockPromised = promised;
    d.blockEndStream = pt == T_HEADERS && (flags & F_END_STREAM) != 0;
    d.blockBytes = FRAME_HEADER + d.partFlen;
    d.blockFrames = 1;
    d.blockLen = 0;
    d.blockDropped = false;
    d.blockTs = d.partTs;
    if (!appendBlock(d, buf.dataStart + <usize>off, fragEnd - off)) d.blockDropped = true;
  } else if (pt == T_CONTINUATION) {
    if (!d.blockActive || d.partStream != d.blockStream) return;
    d.blockFrames++;
    d.blockBytes += FRAME_HEADER + d.partFlen;
    if (!d.blockDropped && !appendBlock(d, d.partBuf!.dataStart, d.partLen)) d.blockDropped = true;
  } else if (!d.blockActive) {
    return;
  }
  if (d.blockDropped || d.blockLen == 0) {
    resetFields(true);
  } else {
    // Cut by the capture, not by the peer: no hpack event; the last field is usually cut.
    decodeBlock(d.hpack, d.blockBuf!.dataStart, d.blockLen);
    markUnknown();
  }
  hpackLost(d.hpack);
  const sid = d.blockStream;
  const push = d.blockType == T_PUSH_PROMISE;
  dispatchBlock(c, connId, d, dir, d.blockTs);
  if (!push) onBlockCut(c, ld(c, dir), sid);
}

/** Bytes of one direction were lost. Inside a DATA payload or a skipped frame we stay in step. */
export function gapDir(c: Conn, connId: u32, dir: i32, lost: u32): void {
  const d = c.dirs[dir];
  if (d.skip >= lost) { d.skip -= lost; return; }
  if (d.dataActive && !d.dataPadPending && d.dataContent + d.dataPad >= lost) {
    onDataLost(c, ld(c, dir), d.dataStream, d.dataContent < lost ? d.dataContent : lost);
    if (d.dataContent >= lost) d.dataContent -= lost;
    else { d.dataPad -= lost - d.dataContent; d.dataContent = 0; }
    return;
  }
  if (d.partType != 0 || d.blockActive) cutBlock(c, connId, d, dir);
  lose(c, d, dir);
  onLost(c, ld(c, dir));
  d.skip = 0;
  d.dataActive = false;
  d.mode = M_HUNT;
  d.afterGap = true;
}

/** Request (1) or response (2) evidence from the first field of a header block, 0 if none. */
function blockSide(p: usize, n: u32): i32 {
  let i: u32 = 0;
  // Skip dynamic table size updates (001xxxxx); only single-byte ones are worth the trouble here.
  while (i < n && (load<u8>(p + <usize>i) & 0xe0) == 0x20 && (load<u8>(p + <usize>i) & 0x1f) != 0x1f) i++;
  if (i >= n) return 0;
  const b = <u32>load<u8>(p + <usize>i);
  let idx: u32;
  if (b & 0x80) idx = b & 0x7f;
  else if (b & 0x40) idx = b & 0x3f;
  else idx = b & 0x0f;
  if (idx == 0 && (b & 0x80) == 0 && i + 3 < n) {
    // Literal with a new name: look at the raw (not Huffman) name.
    const nl = <u32>load<u8>(p + <usize>i + 1);
    if (nl < 0x80 && nl >= 5 && i + 2 + nl <= n && load<u8>(p + <usize>i + 2) == 0x3a /* : */) {
      const c1 = <u32>load<u8>(p + <usize>i + 3);
      const c2 = <u32>load<u8>(p + <usize>i + 4);
      if (c1 == 0x6d || c1 == 0x70 || c1 == 0x61 || (c1 == 0x73 && c2 == 0x63)) return 1; // :method :path :authority :scheme
      if (c1 == 0x73 && c2 == 0x74) return 2; // :status
    }
    return 0;
  }
  // Static indices 1..7 are :authority, :method, :path, :scheme; 8..14 are :status.
  if (idx >= 1 && idx <= 7) return 1;
  if (idx >= 8 && idx <= 14) return 2;
  return 0;
}

/**
 * Confidence that the first bytes of a direction are HTTP/2: the client preface is certain; a
 * server SETTINGS frame first is likely; otherwise a chain of plausible frames (a connection
 * older than us). HEADERS starting with :method/:path or :status, frames of a pushed (even) stream,
 * PUSH_PROMISE and SETTINGS_ENABLE_PUSH = 1 tell the two sides apart; other frames (PING,
 * WINDOW_UPDATE, SETTINGS, RST_STREAM…) either side sends, so they score 55 or more both ways.
 */
export function detectFrames(dir: i32, base: usize, len: u32): i32 {
  const m = prefaceMatch(base, len);
  if (m >= 0 && len > 0) {
    if (<u32>m >= PREFACE_LEN) return dir == DIR_REQUEST ? 100 : 10;
    return m >= 4 && dir == DIR_REQUEST ? 60 : 0;
  }
  let q: u32 = 0;
  let frames = 0;
  let settingsFirst = false;
  let reqEv = 0;
  let respEv = 0;
  while (q + FRAME_HEADER <= len) {
    const fl = plausibleHeader(base + <usize>q, 16384);
    if (fl < 0) break;
    const type = load<u8>(base + <usize>q + 3);
    const flags = load<u8>(base + <usize>q + 4);
    if (frames == 0) settingsFirst = type == T_SETTINGS && (flags & 1) == 0;
    const payload = base + <usize>q + FRAME_HEADER;
    if (type == T_PUSH_PROMISE) respEv++;
    // Even streams are the server's (pushed, RFC 9113 5.1.1): the client never sends on them.
    const sid = be32(base + <usize>q + 5) & 0x7fffffff;
    if ((type == T_HEADERS || type == T_DATA) && (sid & 1) == 0) respEv++;
    // SETTINGS_ENABLE_PUSH = 1 only a client sends (a server must not, RFC 9113 6.5.2).
    if (type == T_SETTINGS && (flags & 1) == 0 && q + FRAME_HEADER + <u32>fl <= len) {
      for (let o: u32 = 0; o + 6 <= <u32>fl; o += 6) {
        if (((<u32>load<u8>(payload + o) << 8) | <u32>load<u8>(payload + o + 1)) == 2 && be32(payload + o + 2) == 1) reqEv++;
      }
    }
    if (type == T_HEADERS && q + FRAME_HEADER + <u32>fl <= len) {
      let off: u32 = 0;
      let pad: u32 = 0;
      if (flags & F_PADDED) { pad = <u32>load<u8>(payload); off = 1; }
      if (flags & F_PRIORITY) off += 5;
      if (off + pad < <u32>fl) {
        const side = blockSide(payload + <usize>off, <u32>fl - off - pad);
        if (side == 1) reqEv++;
        else if (side == 2) respEv++;
      }
    }
    q += FRAME_HEADER + <u32>fl;
    frames++;
  }
  if (frames == 0) return 0;
  const whole = q == len || frames >= 2;
  if (!whole) return 20;
  if (dir == DIR_REQUEST) {
    if (respEv > 0 && reqEv == 0) return 10;
    return reqEv > 0 ? 80 : 55;
  }
  if (reqEv > 0 && respEv == 0) return 10;
  if (settingsFirst || respEv > 0) return 80;
  return 55;
}
