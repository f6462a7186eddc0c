// PostgreSQL frontend/backend protocol 3.0 decoder: ABI exports only (see parse.ts, stitch.ts).
import { metaBlock, input } from "../abi/window";
import { GAP_ABSORBED, PARSE_NEEDS_MORE, PARSE_IGNORED } from "../abi/abi";
import { warn } from "../abi/emit";
import { parseBatch } from "../abi/batch";
import { parseInput, parseGap, detectBytes, releaseHeads } from "./parse";
import { streams, closeStream, expire } from "./stitch";
import { Stream } from "./types";

export { abi_version, input, input_cap } from "../abi/window";
export { records } from "../abi/emit";

let lastTs: u64 = 0;
// Concurrent connections decoded at once. Each costs 1–7 KiB of the module's 32 MiB memory; past
// this, new connections are left undecoded (PARSE_IGNORED) rather than risking the whole module.
const MAX_STREAMS: i32 = 4000;
let refusedLogged = false;

export function meta(): usize {
  return metaBlock('{"name":"pgsql","version":"1.0.0","protocols":["postgresql"],"ports":[5432],"transport":"tcp"}');
}

export function detect(dir: i32, len: i32): i32 {
  if (len <= 0) return 0;
  return detectBytes(dir, input(), len);
}

export function parse(stream: u32, dir: i32, len: i32, ts: u64): i32 {
  return parseAt(stream, dir, input(), len, ts);
}

/** Several reads in one call (decoders/abi/batch.ts): the host's call and the records' trips to
 *  JS cost as much as parsing a small read. */
export function parse_batch(count: u32): u32 {
  return parseBatch(count, parseAt);
}

function parseAt(stream: u32, dir: i32, ptr: usize, len: i32, ts: u64): i32 {
  if (len <= 0) return PARSE_NEEDS_MORE;
  if (ts > lastTs) lastTs = ts;
  const st = lookupStream(stream);
  if (st == null) {
    if (!refusedLogged) { refusedLogged = true; warn("pgsql: too many concurrent connections; new ones are not decoded"); }
    return PARSE_IGNORED;
  }
  const r = parseInput(stream, st, dir, ptr, len, ts);
  afterCall((++parses & (PARSES_PER_COLLECT - 1)) == 0);
  return r;
}

// Built with the minimal runtime (asc.json): no shadow stack, so nothing may be collected while a
// call runs; garbage is collected here, at the end of a call, where no caller holds a managed
// reference in a local (every live object is reachable from a global). Bounded: every
// PARSES_PER_COLLECT parses, every CLOSES_PER_COLLECT closes, on each tick, and after any call
// that grew the memory (whatever a burst allocated is reclaimed before the next one).
const PARSES_PER_COLLECT: u32 = 4096;
const CLOSES_PER_COLLECT: u32 = 64;
let parses: u32 = 0;
let closes: u32 = 0;
let pages: i32 = 0;

function afterCall(due: bool): void {
  if (ASC_RUNTIME == 2) return; // the incremental runtime collects on its own
  if (due || memory.size() > pages) {
    __collect();
    pages = memory.size();
  }
}

// Reads come in runs on one connection: the last stream looked up is kept (forgotten on close).
let lastId: u32 = 0;
let lastSt: Stream | null = null;

/** The stream's state, created on first sight; null past MAX_STREAMS. */
function lookupStream(stream: u32): Stream | null {
  if (lastSt != null && lastId == stream) return lastSt;
  let st: Stream;
  if (streams.has(stream)) st = streams.get(stream);
  else {
    if (streams.size >= MAX_STREAMS) return null;
    if (pooled > 0) { st = changetype<Stream>(pool[--pooled]); pool[pooled] = null; }
    else st = new Stream();
    streams.set(stream, st);
  }
  lastId = stream;
  lastSt = st;
  return st;
}

export function gap(stream: u32, dir: i32, len: u32): i32 {
  if (!streams.has(stream)) return GAP_ABSORBED;
  parseGap(stream, streams.get(stream), dir, len);
  return GAP_ABSORBED;
}

// Closed streams' objects, reset (Stream.recycle), for the next new connections: a new one cost
// ~20 allocations and their collection (a fifth of the module's time on short connections).
const POOL_CAP: i32 = 64;
const pool = new StaticArray<Stream | null>(POOL_CAP);
let pooled: i32 = 0;

export function close(stream: u32): void {
  if (lastId == stream) lastSt = null;
  const st = closeStream(stream, lastTs);
  if (st != null && pooled < POOL_CAP && st.recyclable) { st.recycle(); pool[pooled++] = st; }
  else if (st != null) releaseHeads(st);
  afterCall((++closes & (CLOSES_PER_COLLECT - 1)) == 0);
}

export function tick(now: u64): void {
  expire(now);
  afterCall(true);
}
