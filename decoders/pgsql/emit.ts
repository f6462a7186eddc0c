// Record building: one KIND_EXCHANGE per query (simple Query, extended Execute, a Parse that is
// not executed in its batch, function call), one for the startup/authentication exchange, one per
// CancelRequest; KIND_EVENT for NoticeResponse and NotificationResponse; KIND_UPGRADE when the
// server accepts TLS. Secrets (passwords, SASL payloads, MD5 salts, cancel keys) are never read
// into a record.
import { KIND_EXCHANGE, KIND_EVENT, KIND_UPGRADE, FLAG_ERROR, FLAG_TRUNCATED, FLAG_UNKNOWN, FLAG_NO_REQUEST } from "../abi/abi";
import {
  A_DB_SYSTEM_NAME, A_DB_QUERY_TEXT, A_DB_OPERATION_NAME, A_DB_COLLECTION_NAME, A_DB_NAMESPACE,
  A_DB_RESPONSE_STATUS_CODE, A_DB_RESPONSE_RETURNED_ROWS, A_TELEGEN_DB_USER, A_TELEGEN_DB_STATEMENT_NAME,
  A_TELEGEN_DB_PORTAL_NAME, A_ERROR_MESSAGE, A_TELEGEN_DB_COMMAND_TAG, A_TELEGEN_DB_SEVERITY,
  A_TELEGEN_DB_APPLICATION_NAME, A_NETWORK_PROTOCOL_NAME, A_NETWORK_PROTOCOL_VERSION, A_ERROR_TYPE,
  A_TELEGEN_DB_BACKEND_PID, A_TELEGEN_DB_AUTH_METHOD, A_TELEGEN_DB_SERVER_VERSION,
  A_TELEGEN_DB_COPY_MESSAGES, A_TELEGEN_DB_COPY_BYTES, A_TELEGEN_DB_NOTIFICATION_CHANNEL,
  A_TELEGEN_DB_EVENT_NAME, A_TELEGEN_DB_PORTAL_SUSPENDED, A_TELEGEN_PROTOCOL_NEXT,
} from "../abi/attributes";
import { begin, finish, addBytes, addFields, addSetMark, lastFlags, addString, addInt, addBool, orFlags } from "../abi/emit";
import { T_STR, FIELD_HEADER_SIZE } from "../abi/abi";
import { Bytes, Op, Stream, OP_PARSE, OP_FUNC, TAG_CAP, tagRowCount, tagCountsReturnedRows, zeroBytes } from "./types";
import { operationName, opPtr, opLen, collectionName, collStart, collLen, upper } from "./sql";

// "postgresql", the value of two attributes of every record: the two fields encoded once here
// and copied as one block (two addBytes per record were ~2% of the module's time).
const POSTGRESQL: usize = memory.data<u8>([0x70, 0x6f, 0x73, 0x74, 0x67, 0x72, 0x65, 0x73, 0x71, 0x6c]);
const PG_FIELD: u32 = FIELD_HEADER_SIZE + 10;
const PG_FIELDS: usize = memory.data(2 * PG_FIELD);
function pgField(at: usize, id: i32): void {
  store<u16>(at, <u16>id);
  store<u8>(at, <u8>T_STR, 2);
  store<u8>(at, 0, 3);
  store<u32>(at, 10, 4);
  memory.copy(at + FIELD_HEADER_SIZE, POSTGRESQL, 10);
}
pgField(PG_FIELDS, A_DB_SYSTEM_NAME);
pgField(PG_FIELDS + PG_FIELD, A_NETWORK_PROTOCOL_NAME);

// Inlined, as begin() and finish(): a call costs its fuel check (host/src/decoders/meter.ts).
@inline function common(st: Stream): void {
  addFields(PG_FIELDS, 2 * PG_FIELD);
  if (st.database.has) addBytesOf(A_DB_NAMESPACE, st.database);
  if (st.user.has) addBytesOf(A_TELEGEN_DB_USER, st.user);
  if (st.appName.has && st.appName.len > 0) addBytesOf(A_TELEGEN_DB_APPLICATION_NAME, st.appName);
}

@inline function addBytesOf(id: i32, b: Bytes): void {
  addBytes(id, b.ptr(), <u32>b.len);
  if (b.cut) orFlags(FLAG_TRUNCATED);
}

function addErrorFields(op: Op): void {
  if (!op.hasError) return;
  if (op.err.code.has) {
    addBytesOf(A_DB_RESPONSE_STATUS_CODE, op.err.code);
    if (op.isError) addBytesOf(A_ERROR_TYPE, op.err.code);
  }
  if (op.err.message.has) addBytesOf(A_ERROR_MESSAGE, op.err.message);
  if (op.err.severity.has) addBytesOf(A_TELEGEN_DB_SEVERITY, op.err.severity);
  if (op.isError) orFlags(FLAG_ERROR);
}

/** The first word(s) of a command tag ("INSERT 0 1" → "INSERT", "CREATE TABLE" → "CREATE"). */
@inline function addOperationFromTag(tags: Bytes): void {
  addOperationFromTagAt(tags.ptr(), tags.len);
}

function addOperationFromTagAt(p: usize, len: i32): void {
  let n = 0;
  // A word at a time (see cstrLen in stitch.ts): the first ' ' or ';'.
  while (n + 8 <= len) {
    const w = load<u64>(p + <usize>n);
    const z = zeroBytes(w ^ 0x2020202020202020) | zeroBytes(w ^ 0x3b3b3b3b3b3b3b3b);
    if (z != 0) { n += <i32>(ctz(z) >> 3); break; }
    n += 8;
  }
  while (n < len) {
    const c = load<u8>(p + <usize>n);
    if (c == 32 || c == 59) break;
    n++;
  }
  if (n > 0) addBytes(A_DB_OPERATION_NAME, p, <u32>n);
}

// The field sets of emitOrphanTag: per slot u64 k0 | u64 k1 | i64 rows | u64 commonGen |
// i32 tag length | u16 flags | u8 defined. A fresh instance starts empty, as the host's table.
const SET_ENTRY: usize = 40;
const SET_WAYS: i32 = 256; // 128 slots of two; ids 0..255
const SETS: usize = memory.data(SET_WAYS * <i32>SET_ENTRY);
const SET_OLDER: usize = memory.data(SET_WAYS >> 1); // per slot: the way used longer ago

@inline function sameSet(e: usize, k0: u64, k1: u64, rows: i64, gen: u64, tagLen: i32): bool {
  return load<u8>(e, 38) != 0 && load<u64>(e) == k0 && load<u64>(e, 8) == k1 && load<i64>(e, 16) == rows &&
    load<u64>(e, 24) == gen && load<i32>(e, 32) == tagLen;
}

/**
 * A CommandComplete answering no request we saw (joined mid-stream, or backend bytes only) when
 * nothing but DataRows was counted before it: built straight from the tag in the input, the same
 * record emitQuery builds from an orphan Op holding that tag (without copying the tag twice).
 */
export function emitOrphanTag(stream: u32, st: Stream, tsStart: u64, tsEnd: u64, tag: usize, tagLen: i32, rows: i64): void {
  begin(KIND_EXCHANGE, FLAG_NO_REQUEST, <u64>stream, tsStart, tsEnd < tsStart ? tsStart : tsEnd);
  // Its fields follow from the stream's startup fields, the tag and `rows` alone: a short tag's
  // record names a field set (decoders/abi/README.md, "Field sets") kept in a two-way table
  // by those inputs; a repeat is a reference, neither built here nor compared by the host.
  let set: usize = 0;
  if (tagLen <= 16) {
    const n = <usize>tagLen;
    // Two words that, for a given length, hold every byte of the tag (overlapping, as copyValue).
    let k0: u64 = 0, k1: u64 = 0;
    if (n >= 8) { k0 = load<u64>(tag); k1 = load<u64>(tag + n - 8); }
    else if (n >= 4) { k0 = <u64>load<u32>(tag); k1 = <u64>load<u32>(tag + n - 4); }
    else if (n != 0) { k0 = <u64>load<u8>(tag) | (<u64>load<u8>(tag + (n >> 1)) << 8); k1 = <u64>load<u8>(tag + n - 1); }
    let h = (k0 ^ (k1 * 0x9e3779b97f4a7c15) ^ <u64>rows ^ (st.commonGen << 17) ^ (<u64>n << 56)) * 0xff51afd7ed558ccd;
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53;
    // Two ways per slot (two hot sets in one slot would redefine each other on every record),
    // the one used longer ago replaced.
    const way = <i32>(h >> 57) << 1;
    let id = way;
    set = SETS + <usize>id * SET_ENTRY;
    let hit = sameSet(set, k0, k1, rows, st.commonGen, tagLen);
    if (!hit) {
      id = way + 1;
      set += SET_ENTRY;
      hit = sameSet(set, k0, k1, rows, st.commonGen, tagLen);
    }
    if (hit) {
      store<u8>(SET_OLDER + <usize>(way >> 1), <u8>(id ^ 1) & 1);
      addSetMark(id);
      orFlags(<i32>load<u16>(set, 36));
      finish();
      return;
    }
    const older = <i32>load<u8>(SET_OLDER + <usize>(way >> 1));
    id = way + older;
    set = SETS + <usize>id * SET_ENTRY;
    store<u8>(SET_OLDER + <usize>(way >> 1), <u8>(older ^ 1));
    store<u8>(set, 0, 38);
    store<u64>(set, k0); store<u64>(set, k1, 8); store<i64>(set, rows, 16);
    store<u64>(set, st.commonGen, 24); store<i32>(set, tagLen, 32);
    addSetMark(id);
  }
  common(st);
  const cut = tagLen > TAG_CAP;
  const n = cut ? TAG_CAP : tagLen;
  addOperationFromTagAt(tag, n);
  addBytes(A_TELEGEN_DB_COMMAND_TAG, tag, <u32>n);
  if (cut) orFlags(FLAG_TRUNCATED);
  // The tag's count, when it is of rows returned: DataRows before it may be lost (joined
  // mid-stream, a read cut short).
  const tagRows = tagRowCount(tag, tagLen);
  if (tagRows >= 0 && tagCountsReturnedRows(tag, tagLen, false, false, true)) addInt(A_DB_RESPONSE_RETURNED_ROWS, tagRows);
  else if (rows > 0) addInt(A_DB_RESPONSE_RETURNED_ROWS, rows);
  finish();
  if (set != 0) { store<u16>(set, <u16>lastFlags(), 36); store<u8>(set, 1, 38); }
}

/** A query exchange (QUERY, EXECUTE, PARSE-as-prepare, FUNC). */
export function emitQuery(stream: u32, st: Stream, op: Op, flags: i32, tsEnd: u64): void {
  begin(KIND_EXCHANGE, flags, <u64>stream, op.ts, tsEnd < op.ts ? op.ts : tsEnd);
  common(st);
  if (op.text.has) {
    addBytesOf(A_DB_QUERY_TEXT, op.text);
    if (op.kind == OP_PARSE) {
      // Parsed but not executed in this batch: the operation is the prepare itself.
      addString(A_DB_OPERATION_NAME, "PREPARE");
    } else if (op.namingKnown) {
      if (op.opLen > 0) { upper(op.text.ptr() + <usize>op.opOff, op.opLen); addBytes(A_DB_OPERATION_NAME, opPtr(), <u32>opLen); }
      else if (op.tags.len > 0) addOperationFromTag(op.tags);
    } else {
      operationName(op.text.ptr(), op.text.len);
      if (opLen > 0) addBytes(A_DB_OPERATION_NAME, opPtr(), <u32>opLen);
      else if (op.tags.len > 0) addOperationFromTag(op.tags);
    }
    if (op.namingKnown) {
      if (op.collLen > 0) addBytes(A_DB_COLLECTION_NAME, op.text.ptr() + <usize>op.collOff, <u32>op.collLen);
    } else {
      collectionName(op.text.ptr(), op.text.len);
      if (collLen > 0) addBytes(A_DB_COLLECTION_NAME, collStart, <u32>collLen);
    }
  } else if (op.kind == OP_FUNC) {
    addString(A_DB_OPERATION_NAME, "FUNCTION CALL");
  } else if (op.tags.len > 0) {
    addOperationFromTag(op.tags);
  }
  if (op.stmt.has && op.stmt.len > 0) addBytesOf(A_TELEGEN_DB_STATEMENT_NAME, op.stmt);
  if (op.portal.has && op.portal.len > 0) addBytesOf(A_TELEGEN_DB_PORTAL_NAME, op.portal);
  if (op.tagCount > 0) addBytesOf(A_TELEGEN_DB_COMMAND_TAG, op.tags);
  // The tags' count of rows returned is exact; DataRows counted are short of it when some were
  // in bytes the agent lost (a client's 64 KiB reads captured to their first 16 KiB).
  if (op.tagHasRows) addInt(A_DB_RESPONSE_RETURNED_ROWS, op.tagRows);
  else if (op.rows > 0) addInt(A_DB_RESPONSE_RETURNED_ROWS, op.rows);
  if (op.suspended) addBool(A_TELEGEN_DB_PORTAL_SUSPENDED, true);
  if (op.copyMsgs > 0 || op.copyFailed) {
    addInt(A_TELEGEN_DB_COPY_MESSAGES, op.copyMsgs);
    addInt(A_TELEGEN_DB_COPY_BYTES, op.copyBytes);
  }
  addErrorFields(op);
  if (op.skipped) { addString(A_ERROR_TYPE, "pipeline_aborted"); orFlags(FLAG_ERROR); }
  if (op.unknown) orFlags(FLAG_UNKNOWN);
  finish();
}

/** The connection's startup: StartupMessage through ReadyForQuery (or the error ending it). */
export function emitStartup(stream: u32, st: Stream, flags: i32, tsEnd: u64): void {
  const op = st.startup;
  begin(KIND_EXCHANGE, flags, <u64>stream, op.ts, tsEnd < op.ts ? op.ts : tsEnd);
  common(st);
  addString(A_DB_OPERATION_NAME, "STARTUP");
  if (st.protoMajor > 0) addString(A_NETWORK_PROTOCOL_VERSION, st.protoMajor.toString() + "." + st.protoMinor.toString());
  if (st.authMethod.length > 0) addString(A_TELEGEN_DB_AUTH_METHOD, st.authMethod);
  if (st.backendPid >= 0) addInt(A_TELEGEN_DB_BACKEND_PID, st.backendPid);
  if (st.serverVersion.has) addBytesOf(A_TELEGEN_DB_SERVER_VERSION, st.serverVersion);
  addErrorFields(op);
  finish();
  st.startupOpen = false;
}

export function emitCancel(stream: u32, st: Stream, pid: i64, ts: u64): void {
  begin(KIND_EXCHANGE, 0, <u64>stream, ts, ts);
  common(st);
  addString(A_DB_OPERATION_NAME, "CANCEL");
  addInt(A_TELEGEN_DB_BACKEND_PID, pid);
  finish();
}

/** The server refused SSLRequest/GSSENCRequest ('N') and the connection closed before a
 *  StartupMessage: the client required encryption (libpq: "server does not support SSL, but SSL
 *  was required"). A failed STARTUP, from the request to the refusal. */
export function emitEncRefused(stream: u32, st: Stream, gss: bool, tsStart: u64, tsEnd: u64): void {
  begin(KIND_EXCHANGE, FLAG_ERROR, <u64>stream, tsStart, tsEnd < tsStart ? tsStart : tsEnd);
  common(st);
  addString(A_DB_OPERATION_NAME, "STARTUP");
  addString(A_ERROR_TYPE, gss ? "gssenc_refused" : "ssl_refused");
  addString(A_ERROR_MESSAGE, gss
    ? "the server refused GSSAPI encryption and the connection closed before a StartupMessage"
    : "the server refused SSL and the connection closed before a StartupMessage");
  finish();
}

/** The server accepted SSLRequest/GSSENCRequest: the rest of the stream is encrypted. */
export function emitUpgrade(stream: u32, st: Stream, tsStart: u64, tsEnd: u64, gss: bool): void {
  begin(KIND_UPGRADE, 0, <u64>stream, tsStart, tsEnd);
  common(st);
  addString(A_TELEGEN_PROTOCOL_NEXT, gss ? "gssapi" : "tls");
  finish();
}

/** NoticeResponse as an event; the fields were collected into `op` (severity, code, message). */
export function emitNotice(stream: u32, st: Stream, op: Op, ts: u64): void {
  begin(KIND_EVENT, 0, <u64>stream, ts, ts);
  common(st);
  addString(A_TELEGEN_DB_EVENT_NAME, "notice");
  if (op.err.code.has) addBytesOf(A_DB_RESPONSE_STATUS_CODE, op.err.code);
  if (op.err.message.has) addBytesOf(A_ERROR_MESSAGE, op.err.message);
  if (op.err.severity.has) addBytesOf(A_TELEGEN_DB_SEVERITY, op.err.severity);
  finish();
}

/** NotificationResponse (LISTEN/NOTIFY): the channel and the notifying backend; not the payload. */
export function emitNotification(stream: u32, st: Stream, pid: i64, chan: usize, chanLen: i32, ts: u64): void {
  begin(KIND_EVENT, 0, <u64>stream, ts, ts);
  common(st);
  addString(A_TELEGEN_DB_EVENT_NAME, "notification");
  addBytes(A_TELEGEN_DB_NOTIFICATION_CHANNEL, chan, <u32>chanLen);
  addInt(A_TELEGEN_DB_BACKEND_PID, pid);
  finish();
}
