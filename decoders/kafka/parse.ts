// Kafka frames: size-prefixed headers and the bodies of the APIs we describe. Every read is
// bounds-checked against the bytes present (rEnd) and the message's declared end (rMsgEnd); a
// failed read clears rOk and every loop stops, so hostile input ends the walk, never traps.
import {
  Exchange, MAX_MESSAGE, STR_CAP, TOPICS_CAP, NONE, knownApi, maxVersion, isFlexible,
  API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA, API_OFFSET_COMMIT, API_OFFSET_FETCH,
  API_FIND_COORDINATOR, API_JOIN_GROUP, API_HEARTBEAT, API_LEAVE_GROUP, API_SYNC_GROUP,
  API_API_VERSIONS, API_CREATE_TOPICS, API_INIT_PRODUCER_ID, API_DESCRIBE_GROUPS,
  API_DELETE_TOPICS, API_TXN_OFFSET_COMMIT, API_ADD_PARTITIONS_TO_TXN, API_ADD_OFFSETS_TO_TXN, API_END_TXN,
  API_LIST_GROUPS, API_SASL_AUTHENTICATE, API_DELETE_RECORDS, API_OFFSET_FOR_LEADER_EPOCH,
  API_DESCRIBE_CONFIGS, API_CREATE_PARTITIONS, API_DELETE_GROUPS, API_SASL_HANDSHAKE,
  API_WRITE_TXN_MARKERS, API_DESCRIBE_ACLS, API_CREATE_ACLS, API_DELETE_ACLS, API_ALTER_CONFIGS,
  API_ALTER_REPLICA_LOG_DIRS, API_DESCRIBE_LOG_DIRS, API_CREATE_DELEGATION_TOKEN,
  API_RENEW_DELEGATION_TOKEN, API_EXPIRE_DELEGATION_TOKEN, API_DESCRIBE_DELEGATION_TOKEN,
  API_ELECT_LEADERS, API_INCREMENTAL_ALTER_CONFIGS, API_ALTER_PARTITION_REASSIGNMENTS,
  API_LIST_PARTITION_REASSIGNMENTS, API_OFFSET_DELETE, API_DESCRIBE_CLIENT_QUOTAS,
  API_ALTER_CLIENT_QUOTAS, API_DESCRIBE_USER_SCRAM_CREDENTIALS, API_ALTER_USER_SCRAM_CREDENTIALS,
  API_DESCRIBE_CLUSTER, API_DESCRIBE_PRODUCERS, API_DESCRIBE_TRANSACTIONS, API_LIST_TRANSACTIONS,
  API_CONSUMER_GROUP_HEARTBEAT, API_CONSUMER_GROUP_DESCRIBE, API_GET_TELEMETRY_SUBSCRIPTIONS,
  API_PUSH_TELEMETRY, API_DESCRIBE_TOPIC_PARTITIONS,
} from "./types";

// ---- reader -------------------------------------------------------------------------------

let rp: usize = 0;       // read position
let rEnd: usize = 0;     // end of the bytes present (message end or window end)
let rMsgEnd: usize = 0;  // declared end of the message (may lie beyond the window)
let rOk: bool = true;
let rFlex: bool = false; // compact encodings + tagged fields (flexible versions)
// The records that end the message run past the window: only (empty) tag sections follow them.
let rTailUnseen: bool = false;
// Last string read: pointer and length (-1 = null).
let sPtr: usize = 0;
let sLen: i32 = -1;

export function readerInit(start: usize, present: usize, declared: usize, flex: bool): void {
  rp = start; rEnd = present; rMsgEnd = declared; rOk = true; rFlex = flex; rTailUnseen = false;
}
export function readerOk(): bool { return rOk; }

@inline function need(n: usize): bool {
  if (!rOk || rp + n > rEnd || rp + n < rp) { rOk = false; return false; }
  return true;
}

export function rdI8(): i32 {
  if (!need(1)) return 0;
  const v = <i32>load<i8>(rp); rp += 1; return v;
}
export function rdI16(): i32 {
  if (!need(2)) return 0;
  const v = <i32><i16>bswap<u16>(load<u16>(rp)); rp += 2; return v;
}
export function rdI32(): i32 {
  if (!need(4)) return 0;
  const v = <i32>bswap<u32>(load<u32>(rp)); rp += 4; return v;
}
export function rdI64(): i64 {
  if (!need(8)) return 0;
  const v = <i64>bswap<u64>(load<u64>(rp)); rp += 8; return v;
}
/** Unsigned varint of at most 5 bytes (32 bits); longer or overflowing is malformed. */
export function rdUvarint(): u32 {
  let v: u32 = 0;
  for (let shift: u32 = 0; shift < 35; shift += 7) {
    if (!need(1)) return 0;
    const b = <u32>load<u8>(rp); rp += 1;
    if (shift == 28 && (b & 0xf0) != 0) { rOk = false; return 0; }
    v |= (b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  rOk = false;
  return 0;
}
export function skip(n: i64): void {
  if (!rOk) return;
  if (n < 0 || <u64>n > <u64>(rEnd - rp)) { rOk = false; return; }
  rp += <usize>n;
}

/** Array length: int32 (-1 null) or compact uvarint N+1 (0 null). Returns -1 for null. A count
 *  larger than the bytes left in the message is hostile: each element takes at least one byte. */
export function rdArrayLen(): i32 {
  let n: i64;
  if (rFlex) n = <i64>rdUvarint() - 1;
  else n = <i64>rdI32();
  if (!rOk) return -1;
  if (n < -1 || n > <i64>(rMsgEnd - rp)) { rOk = false; return -1; }
  return <i32>n;
}

/** String: int16 length (-1 null) or compact uvarint N+1. Sets sPtr/sLen. */
export function rdStr(): void {
  let n: i64;
  if (rFlex) n = <i64>rdUvarint() - 1;
  else n = <i64>rdI16();
  sLen = -1; sPtr = 0;
  if (!rOk || n < 0) { if (n < -1) rOk = false; return; }
  if (!need(<usize>n)) return;
  sPtr = rp; sLen = <i32>n; rp += <usize>n;
}
/** Always a classic int16 string (the request header's client_id, even in header v2). */
export function rdStrClassic(): void {
  const n = rdI16();
  sLen = -1; sPtr = 0;
  if (!rOk || n < 0) { if (n < -1) rOk = false; return; }
  if (!need(<usize>n)) return;
  sPtr = rp; sLen = n; rp += <usize>n;
}
export function strPtr(): usize { return sPtr; }
export function strLen(): i32 { return sLen; }

/** Bytes / records field length: int32 or compact uvarint N+1; -1 null. Does not advance over
 *  the content. The content may extend beyond the window (message larger than the window). */
export function rdBytesLen(): i64 {
  let n: i64;
  if (rFlex) n = <i64>rdUvarint() - 1;
  else n = <i64>rdI32();
  if (!rOk) return -1;
  if (n < -1 || n > <i64>(rMsgEnd - rp)) { rOk = false; return -1; }
  return n;
}
export function skipTagged(): void {
  if (!rFlex || !rOk || rTailUnseen) return;
  const n = rdUvarint();
  for (let i: u32 = 0; i < n && rOk; i++) {
    rdUvarint();
    const size = rdUvarint();
    skip(<i64>size);
  }
}
function skipI32Array(): void {
  const n = rdArrayLen();
  if (n > 0) skip(<i64>n * 4);
}
function skipI64Array(): void {
  const n = rdArrayLen();
  if (n > 0) skip(<i64>n * 8);
}

// ---- header checks --------------------------------------------------------------------------

@inline export function beI32(p: usize): i32 { return <i32>bswap<u32>(load<u32>(p)); }
@inline export function beI16(p: usize): i32 { return <i32><i16>bswap<u16>(load<u16>(p)); }

/** Is there a plausible request header at p? Lenient (a connection's first bytes): a size in
 *  range, non-negative api key, version and correlation id, a client id that fits and is
 *  printable. Strict (resynchronising inside a byte stream, where zero-filled data would
 *  otherwise look like a header): also a known api key and version and a non-empty client id
 *  whose bytes are all present. */
export function plausibleRequest(p: usize, end: usize, strict: bool): bool {
  if (p + 14 > end) return false;
  const size = beI32(p);
  if (size < 10 || size > MAX_MESSAGE) return false;
  const key = beI16(p + 4);
  const ver = beI16(p + 6);
  if (key < 0 || ver < 0 || beI32(p + 8) < 0) return false;
  if (strict && (!knownApi(key) || ver > maxVersion(key))) return false;
  const cl = beI16(p + 12);
  if (cl < -1 || cl > size - 10) return false;
  if (strict && (cl < 1 || p + 14 + <usize>cl > end)) return false;
  if (cl > 0) {
    const q = p + 14;
    const n = <usize>cl;
    const stop = q + n < end ? q + n : end;
    for (let s = q; s < stop; s++) {
      const c = load<u8>(s);
      if (c < 0x20 || c > 0x7e) return false;
    }
  }
  return true;
}

/** Whether the head of a Produce request (api key 0, version v) at p could be real: 1 yes, 0 no,
 *  -1 the bytes end before it could tell. A response's int32 correlation id 0..12 reads as api
 *  key 0 and a Produce version, so a young connection's responses pass the header checks; the
 *  body's first fields are bounded by the protocol (Produce schema; acks is -1, 0 or 1, a topic
 *  name 1..249 of [a-zA-Z0-9._-]), which a response's bytes seldom meet. */
export function producePlausible(p: usize, end: usize, v: i32): i32 {
  const declared = p + 4 + <usize>beI32(p);
  readerInit(p + 12, end < declared ? end : declared, declared, false);
  rdStrClassic(); // client id
  if (isFlexible(API_PRODUCE, v)) { rFlex = true; skipTagged(); }
  if (v >= 3) rdStr(); // transactional id
  const acks = rdI16();
  const timeout = rdI32();
  const topics = rdArrayLen();
  let name = true;
  if (v < 13) {
    rdStr();
    name = sLen >= 1 && sLen <= 249;
    for (let i: i32 = 0; name && i < sLen; i++) {
      const c = load<u8>(sPtr + <usize>i);
      name = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x5f || c == 0x2d;
    }
  }
  if (!rOk) return end < declared ? -1 : 0;
  return acks >= -1 && acks <= 1 && timeout >= 0 && topics >= 1 && name ? 1 : 0;
}

// ---- exchange fields --------------------------------------------------------------------------

export function copyStr(dst: StaticArray<u8>, ptr: usize, len: i32): i32 {
  const n = len > STR_CAP ? STR_CAP : len;
  if (n > 0) memory.copy(changetype<usize>(dst), ptr, <usize>n);
  return n;
}

/** Adds a topic name to the exchange's distinct list (first one = messaging.destination.name). */
function noteTopic(x: Exchange, ptr: usize, len: i32): void {
  if (len < 0) return;
  if (x.inResponse && x.reqTopicCount > 0) return;
  const base = changetype<usize>(x.topics);
  let q: i32 = 0;
  while (q + 2 <= x.topicsUsed) {
    const n = <i32>load<u16>(base + <usize>q);
    if (n == len && memory.compare(base + <usize>q + 2, ptr, <usize>len) == 0) return;
    q += 2 + n;
  }
  if (x.topicsUsed + 2 + len > TOPICS_CAP) { x.topicCount++; return; }
  store<u16>(base + <usize>x.topicsUsed, <u16>len);
  memory.copy(base + <usize>x.topicsUsed + 2, ptr, <usize>len);
  x.topicsUsed += 2 + len;
  x.topicCount++;
}

function noteTopicId(x: Exchange, ptr: usize): void {
  if (x.inResponse && (x.reqTopicCount > 0 || x.hasTopicId)) return;
  if (isZeroId(ptr)) return; // Uuid.ZERO_UUID: "no id", the name (if any) says which topic
  // A name learnt from a Metadata response is better than the id.
  const name = topicNameForId(ptr);
  if (name >= 0) {
    noteTopic(x, TOPIC_MAP + <usize>name * TOPIC_SLOT + 17, <i32>load<u8>(TOPIC_MAP + <usize>name * TOPIC_SLOT + 16));
    return;
  }
  if (!x.hasTopicId) {
    memory.copy(changetype<usize>(x.topicId), ptr, 16);
    x.hasTopicId = true;
  }
}

function notePartition(x: Exchange, partition: i32): void {
  if (x.inResponse && x.reqPartitionCount > 0) return;
  if (x.partitionCount == 0) x.partition = partition;
  else if (x.partition != partition) x.partitionMixed = true;
  x.partitionCount++;
}

@inline function noteError(x: Exchange, code: i32): void {
  if (code != 0 && x.errorCode == 0) x.errorCode = code;
}

function noteGroup(x: Exchange): void {
  if (sLen >= 0 && x.groupLen < 0) x.groupLen = copyStr(x.group, sPtr, sLen);
}

/** The transactional id just read (null or empty: an idempotent or plain producer, none reported). */
function noteTxn(x: Exchange): void {
  if (rOk && sLen > 0 && x.txnIdLen < 0) x.txnIdLen = copyStr(x.txnId, sPtr, sLen);
}

/** Reads a topic name (versions < idFrom) or a topic id (uuid, versions >= idFrom). */
function readTopic(x: Exchange, ver: i32, idFrom: i32): void {
  if (ver >= idFrom) {
    if (need(16)) { noteTopicId(x, rp); rp += 16; }
  } else {
    rdStr();
    if (rOk) noteTopic(x, sPtr, sLen);
  }
}

// ---- topic id -> name (learnt from Metadata v10+ responses, shared by all streams) ----------

const TOPIC_SLOTS: usize = 256;
const TOPIC_SLOT: usize = 16 + 1 + 250; // id, name length, name (topic names are <= 249 bytes)
const TOPIC_MAP: usize = memory.data(<i32>(TOPIC_SLOTS * TOPIC_SLOT));
const TOPIC_USED: usize = memory.data(<i32>TOPIC_SLOTS);

function topicHash(id: usize): usize {
  return <usize>(load<u32>(id) ^ load<u32>(id, 4) ^ load<u32>(id, 8) ^ load<u32>(id, 12)) & (TOPIC_SLOTS - 1);
}
function topicNameForId(id: usize): i32 {
  let h = topicHash(id);
  for (let i = 0; i < 8; i++) {
    const s = (h + <usize>i) & (TOPIC_SLOTS - 1);
    if (load<u8>(TOPIC_USED + s) == 0) return -1;
    if (memory.compare(TOPIC_MAP + s * TOPIC_SLOT, id, 16) == 0) return <i32>s;
  }
  return -1;
}
function isZeroId(id: usize): bool {
  return load<u64>(id) == 0 && load<u64>(id, 8) == 0;
}
function rememberTopicId(id: usize, name: usize, len: i32): void {
  if (len <= 0 || len > 249 || isZeroId(id)) return;
  const h = topicHash(id);
  let slot = h;
  for (let i = 0; i < 8; i++) {
    const s = (h + <usize>i) & (TOPIC_SLOTS - 1);
    if (load<u8>(TOPIC_USED + s) == 0 || memory.compare(TOPIC_MAP + s * TOPIC_SLOT, id, 16) == 0) { slot = s; break; }
  }
  // Full probe run: the home slot is overwritten (a bounded cache, not a registry).
  const p = TOPIC_MAP + slot * TOPIC_SLOT;
  memory.copy(p, id, 16);
  store<u8>(p + 16, <u8>len);
  memory.copy(p + 17, name, <usize>len);
  store<u8>(TOPIC_USED + slot, 1);
}

// ---- record batches -------------------------------------------------------------------------

/** Walks a records field of n bytes at rp (magic 2 batches, or legacy magic 0/1 message sets):
 *  counts records and bytes, notes the codec, never reads a record's key or value. */
function walkRecords(x: Exchange, n: i64): void {
  if (n < 0) return;
  if (x.bodySize == NONE) x.bodySize = 0;
  x.bodySize += n;
  if (x.recordCount == NONE) x.recordCount = 0;
  const start = rp;
  const declEnd = start + <usize>n;          // may lie beyond the window
  let q = start;
  // A batch's header must be present; its body may be cut off by the window (Produce larger
  // than the window still has exact counts) but not by the field's own end (a Fetch response
  // may end in a partial batch, which clients discard).
  while (q + 17 <= declEnd && q + 17 <= rEnd) {
    const batchLen = <i64>beI32(q + 8);
    if (batchLen < 0) break;
    const next = q + 12 + <usize>batchLen;
    if (next > declEnd || next < q) break;
    const magic = load<i8>(q + 16);
    if (magic == 2) {
      if (q + 61 > rEnd || batchLen < 49) break;
      const attrs = <i32>bswap<u16>(load<u16>(q + 21));
      const count = <i32>bswap<u32>(load<u32>(q + 57));
      // Control batches (transaction markers) hold no application records.
      if ((attrs & 0x20) == 0 && count > 0) x.recordCount += count;
      if (x.codec < 0 || x.codec == 0) x.codec = attrs & 7;
    } else if (magic == 0 || magic == 1) {
      if (q + 18 > rEnd) break;
      x.recordCount += 1; // a compressed wrapper counts as one: its inner messages are compressed
      const attrs = <i32>load<u8>(q + 17);
      if (x.codec < 0 || x.codec == 0) x.codec = attrs & 7;
    } else {
      break;
    }
    q = next;
  }
  // Records past the window (a message larger than it): what follows them is unseen. When they
  // end the message (the last partition; flexible versions then close with three tag sections,
  // one byte each when empty), every value reported is known and the record is not FLAG_UNKNOWN.
  if (declEnd > rEnd && rOk) {
    const tail = rMsgEnd - declEnd;
    if (tail == 0 || (rFlex && tail == 3)) { rp = rEnd; rTailUnseen = true; return; }
  }
  skip(n);
}

// ---- requests ---------------------------------------------------------------------------------

/** Highest version whose body layout we decode, per api key (-1: header only). */
export function decodedUpTo(key: i32): i32 {
  switch (key) {
    case API_PRODUCE: return 13;
    case API_FETCH: return 17;
    case API_LIST_OFFSETS: return 10;
    case API_METADATA: return 13;
    case API_OFFSET_COMMIT: return 10;
    case API_OFFSET_FETCH: return 10;
    case API_FIND_COORDINATOR: return 6;
    case API_JOIN_GROUP: return 9;
    case API_HEARTBEAT: return 4;
    case API_LEAVE_GROUP: return 5;
    case API_SYNC_GROUP: return 5;
    case API_DESCRIBE_GROUPS: return 6;
    case API_API_VERSIONS: return 4;
    case API_CREATE_TOPICS: return 7;
    case API_DELETE_TOPICS: return 6;
    case API_INIT_PRODUCER_ID: return 6;
    case API_TXN_OFFSET_COMMIT: return 5;
    case API_ADD_PARTITIONS_TO_TXN: return 5;
    case API_OFFSET_FOR_LEADER_EPOCH: return 4;
    case API_DELETE_RECORDS: return 2;
    case API_CREATE_PARTITIONS: return 3;
    case API_DESCRIBE_CONFIGS: return 4;
    // responses that open with (throttle time and) their error code: only that is read
    case API_ADD_OFFSETS_TO_TXN: return 4;
    case API_END_TXN: return 5;
    case API_LIST_GROUPS: return 5;
    case API_SASL_AUTHENTICATE: return 2;
    case API_DELETE_GROUPS: return 2;
    case API_SASL_HANDSHAKE: return 1;
    case API_WRITE_TXN_MARKERS: return 2;
    case API_ELECT_LEADERS: return 2;
    case API_ALTER_PARTITION_REASSIGNMENTS: return 1;
    case API_LIST_PARTITION_REASSIGNMENTS: return 0;
    case API_OFFSET_DELETE: return 0;
    case API_ALTER_REPLICA_LOG_DIRS: return 2;
    case API_DESCRIBE_LOG_DIRS: return 4;
    case API_DESCRIBE_PRODUCERS: return 0;
    case API_DESCRIBE_TRANSACTIONS: return 0;
    case API_CONSUMER_GROUP_HEARTBEAT: return 1;
    case API_CONSUMER_GROUP_DESCRIBE: return 1;
    case API_DESCRIBE_TOPIC_PARTITIONS: return 0;
    // client telemetry (KIP-714): the metrics a client pushes are not read
    case API_GET_TELEMETRY_SUBSCRIPTIONS: return 0;
    case API_PUSH_TELEMETRY: return 0;
    // responses whose errors are all that is read (their requests name no topic or group)
    case API_DESCRIBE_ACLS: return 3;
    case API_CREATE_ACLS: return 3;
    case API_DELETE_ACLS: return 3;
    case API_ALTER_CONFIGS: return 2;
    case API_INCREMENTAL_ALTER_CONFIGS: return 1;
    case API_CREATE_DELEGATION_TOKEN: return 3;
    case API_RENEW_DELEGATION_TOKEN: return 2;
    case API_EXPIRE_DELEGATION_TOKEN: return 2;
    case API_DESCRIBE_DELEGATION_TOKEN: return 3;
    case API_DESCRIBE_CLIENT_QUOTAS: return 1;
    case API_ALTER_CLIENT_QUOTAS: return 1;
    case API_DESCRIBE_USER_SCRAM_CREDENTIALS: return 0;
    case API_ALTER_USER_SCRAM_CREDENTIALS: return 0;
    case API_DESCRIBE_CLUSTER: return 2;
    case API_LIST_TRANSACTIONS: return 2;
  }
  return -1;
}

/** Decodes a request body (reader after the header's client id) into x. Versions beyond what we
 *  know are left alone: their header-level fields are all the record carries. */
export function parseRequestBody(x: Exchange, headerTagged: bool): void {
  const key = x.apiKey;
  const v = x.apiVersion;
  if (v > decodedUpTo(key)) return;
  if (headerTagged) { rFlex = true; skipTagged(); }
  rFlex = isFlexible(key, v);
  if (key == API_PRODUCE && v <= 13) produceRequest(x, v);
  else if (key == API_FETCH && v <= 17) fetchRequest(x, v);
  else if (key == API_LIST_OFFSETS && v <= 10) listOffsetsRequest(x, v);
  else if (key == API_METADATA && v <= 13) metadataRequest(x, v);
  else if (key == API_OFFSET_COMMIT && v <= 10) offsetCommitRequest(x, v);
  else if (key == API_OFFSET_FETCH && v <= 10) offsetFetchRequest(x, v);
  else if (key == API_FIND_COORDINATOR && v <= 6) findCoordinatorRequest(x, v);
  else if ((key == API_JOIN_GROUP && v <= 9) || (key == API_HEARTBEAT && v <= 4) ||
           (key == API_LEAVE_GROUP && v <= 5) || (key == API_SYNC_GROUP && v <= 5) ||
           (key == API_OFFSET_DELETE && v == 0) || (key == API_CONSUMER_GROUP_HEARTBEAT && v <= 1)) {
    // These bodies begin with the group id.
    rdStr(); noteGroup(x);
    // OffsetDelete: then the topics and partitions whose committed offsets go
    if (key == API_OFFSET_DELETE) offsetFetchTopics(x, 0);
  } else if (key == API_TXN_OFFSET_COMMIT && v <= 5) txnOffsetCommitRequest(x, v);
  else if ((key == API_INIT_PRODUCER_ID && v <= 6) || (key == API_END_TXN && v <= 5)) {
    rdStr(); noteTxn(x);             // both open with the transactional id (InitProducerId: null without one)
    if (key == API_END_TXN) {
      rdI64(); rdI16();              // producer id, epoch
      const committed = rdI8();      // Committed (bool): commit or abort, the one thing that tells them apart
      if (rOk) x.txnResult = committed != 0 ? 1 : 0;
    }
  } else if (key == API_ADD_OFFSETS_TO_TXN && v <= 4) {
    rdStr(); noteTxn(x);
    rdI64(); rdI16();                // producer id, epoch
    rdStr(); noteGroup(x);           // the group whose offsets the transaction commits
  } else if (key == API_DESCRIBE_TRANSACTIONS && v == 0) {
    if (rdArrayLen() > 0) { rdStr(); noteTxn(x); }
  } else if (key == API_ADD_PARTITIONS_TO_TXN && v <= 5) addPartitionsToTxnRequest(x, v);
  else if (key == API_ELECT_LEADERS && v <= 2) {
    if (v >= 1) rdI8();              // election type
    topicPartitions(x, 0, false, false); // null: every partition
  } else if (key == API_ALTER_PARTITION_REASSIGNMENTS && v <= 1) alterReassignmentsRequest(x, v);
  else if (key == API_LIST_PARTITION_REASSIGNMENTS && v == 0) { rdI32(); topicPartitions(x, 0, false, false); }
  else if (key == API_WRITE_TXN_MARKERS && v <= 2) writeTxnMarkersRequest(x, v);
  else if ((key == API_DESCRIBE_PRODUCERS && v == 0) || (key == API_DESCRIBE_LOG_DIRS && v <= 4)) topicPartitions(x, 0, false, false);
  else if (key == API_ALTER_REPLICA_LOG_DIRS && v <= 2) {
    const dirs = rdArrayLen();
    for (let d = 0; d < dirs && rOk; d++) { rdStr(); topicPartitions(x, 0, false, false); skipTagged(); }
  } else if (key == API_OFFSET_FOR_LEADER_EPOCH && v <= 4) offsetForLeaderEpochRequest(x, v);
  else if (key == API_DELETE_RECORDS && v <= 2) deleteRecordsRequest(x);
  else if (key == API_CREATE_PARTITIONS && v <= 3) createPartitionsRequest(x);
  else if ((key == API_DESCRIBE_GROUPS && v <= 6) || (key == API_DELETE_GROUPS && v <= 2) ||
           (key == API_CONSUMER_GROUP_DESCRIBE && v <= 1)) {
    const n = rdArrayLen();
    if (n > 0) { rdStr(); noteGroup(x); }
  } else if (key == API_CREATE_TOPICS && v <= 7) createTopicsRequest(x, v);
  else if (key == API_DELETE_TOPICS && v <= 6) deleteTopicsRequest(x, v);
  else if (key == API_DESCRIBE_TOPIC_PARTITIONS && v == 0) {
    const n = rdArrayLen();
    for (let t = 0; t < n && rOk; t++) { readTopic(x, 0, NEVER); skipTagged(); }
  } else if ((key == API_DESCRIBE_CONFIGS && v <= 4) || (key == API_ALTER_CONFIGS && v <= 2) ||
           (key == API_INCREMENTAL_ALTER_CONFIGS && v <= 1)) configResources(x);
}

// ConfigResource.Type.TOPIC: the resource name is a topic (2 = topic, 4 = broker, 8 = broker logger …).
const RESOURCE_TOPIC: i32 = 2;

/** Config requests: a topic resource names its topic, as CreateTopics and DeleteTopics do; broker
 *  and client-metrics resources name none. The resource's config names and values are not read. */
function configResources(x: Exchange): void {
  const n = rdArrayLen();
  for (let i = 0; i < n && rOk; i++) {
    const type = rdI8();
    rdStr();
    if (rOk && type == RESOURCE_TOPIC) noteTopic(x, sPtr, sLen);
    if (x.apiKey == API_DESCRIBE_CONFIGS) {
      const keys = rdArrayLen();
      for (let k = 0; k < keys && rOk; k++) rdStr();
    } else {
      const configs = rdArrayLen();
      for (let k = 0; k < configs && rOk; k++) {
        rdStr();
        if (x.apiKey == API_INCREMENTAL_ALTER_CONFIGS) rdI8(); // operation
        rdStr();
        skipTagged();
      }
    }
    skipTagged();
  }
}

function produceRequest(x: Exchange, v: i32): void {
  if (v >= 3) { rdStr(); noteTxn(x); }
  x.acks = rdI16();
  rdI32();                         // timeout
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, 13);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      notePartition(x, rdI32());
      walkRecords(x, rdBytesLen());
      skipTagged();
    }
    skipTagged();
  }
  skipTagged();
}

function fetchRequest(x: Exchange, v: i32): void {
  if (v <= 14) rdI32();            // replica id (a tagged ReplicaState from v15)
  rdI32(); rdI32();                // max wait, min bytes
  if (v >= 3) rdI32();             // max bytes
  if (v >= 4) rdI8();              // isolation level
  if (v >= 7) { rdI32(); rdI32(); } // session id, epoch
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, 13);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      if (v >= 9) rdI32();         // current leader epoch
      const offset = rdI64();
      if (v >= 12) rdI32();        // last fetched epoch
      if (v >= 5) rdI64();         // log start offset
      rdI32();                     // partition max bytes
      skipTagged();
      if (rOk) {
        if (x.partitionCount == 0) x.offset = offset;
        notePartition(x, partition);
      }
    }
    skipTagged();
  }
  // Forgotten topics and rack id follow; nothing in them is reported.
}

function listOffsetsRequest(x: Exchange, v: i32): void {
  rdI32();                         // replica id
  if (v >= 2) rdI8();              // isolation level
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    rdStr(); if (rOk) noteTopic(x, sPtr, sLen);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      if (v >= 4) rdI32();         // current leader epoch
      rdI64();                     // timestamp
      if (v == 0) rdI32();         // max num offsets
      skipTagged();
      if (rOk) notePartition(x, partition);
    }
    skipTagged();
  }
}

function metadataRequest(x: Exchange, v: i32): void {
  const topics = rdArrayLen();     // null (v1+) = all topics
  for (let t = 0; t < topics && rOk; t++) {
    if (v >= 10) { if (need(16)) { const id = rp; rp += 16; rdStr(); if (sLen < 0 && rOk) noteTopicId(x, id); else if (rOk) noteTopic(x, sPtr, sLen); } }
    else { rdStr(); if (rOk) noteTopic(x, sPtr, sLen); }
    skipTagged();
  }
}

function offsetCommitRequest(x: Exchange, v: i32): void {
  rdStr(); noteGroup(x);
  if (v >= 1) { rdI32(); rdStr(); }  // generation id / member epoch, member id
  if (v >= 7) rdStr();               // group instance id
  if (v >= 2 && v <= 4) rdI64();     // retention time
  committedOffsets(x, v, 10, v >= 6, v == 1);
}

/** The topics of OffsetCommit and TxnOffsetCommit: per partition its offset, the leader epoch
 *  (`epoch`), a commit timestamp (`timestamp`, OffsetCommit v1) and metadata. */
function committedOffsets(x: Exchange, v: i32, idFrom: i32, epoch: bool, timestamp: bool): void {
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, idFrom);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      const offset = rdI64();
      if (epoch) rdI32();
      if (timestamp) rdI64();
      rdStr();                       // metadata
      skipTagged();
      if (rOk) {
        if (x.partitionCount == 0) x.offset = offset;
        notePartition(x, partition);
      }
    }
    skipTagged();
  }
}

/** TxnOffsetCommit: the offsets a transaction commits for a group (always topic names). */
function txnOffsetCommitRequest(x: Exchange, v: i32): void {
  rdStr(); noteTxn(x);
  rdStr(); noteGroup(x);
  rdI64(); rdI16();                  // producer id, epoch
  if (v >= 3) { rdI32(); rdStr(); rdStr(); } // generation id, member id, group instance id
  committedOffsets(x, v, NEVER, v >= 2, false);
}

/** AddPartitionsToTxn: the partitions a transaction is about to write (plain int32s). From v4
 *  (KIP-890) a broker batches several transactions, each with a verify-only flag. */
function addPartitionsToTxnRequest(x: Exchange, v: i32): void {
  if (v <= 3) {
    rdStr(); noteTxn(x);
    rdI64(); rdI16();                // producer id, epoch
    topicPartitions(x, 0, false, false);
    return;
  }
  const txns = rdArrayLen();
  for (let t = 0; t < txns && rOk; t++) {
    rdStr(); noteTxn(x);             // the first transaction's id
    rdI64(); rdI16(); rdI8();        // producer id, epoch, verify only
    topicPartitions(x, 0, false, false);
    skipTagged();
  }
}

/** AlterPartitionReassignments: per partition its new replica list (null cancels a move). */
function alterReassignmentsRequest(x: Exchange, v: i32): void {
  rdI32();                           // timeout
  if (v >= 1) rdI8();                // allow replication factor change
  topicPartitions(x, 0, false, true, P_REPLICAS);
}

/** WriteTxnMarkers (coordinator to leaders): per producer the commit/abort marker's partitions. */
function writeTxnMarkersRequest(x: Exchange, v: i32): void {
  const markers = rdArrayLen();
  for (let m = 0; m < markers && rOk; m++) {
    rdI64(); rdI16(); rdI8();        // producer id, epoch, commit
    topicPartitions(x, 0, false, false);
    rdI32();                         // coordinator epoch
    if (v >= 2) rdI8();              // transaction version
    skipTagged();
  }
}

/** OffsetForLeaderEpoch: a consumer validating its position after a leader change (KIP-320):
 *  per partition the current leader epoch (v2+) and the leader epoch. */
function offsetForLeaderEpochRequest(x: Exchange, v: i32): void {
  if (v >= 3) rdI32();               // replica id
  topicPartitions(x, v >= 2 ? 2 : 1, false, true);
}

/** DeleteRecords: each partition's new log start offset. */
function deleteRecordsRequest(x: Exchange): void {
  topicPartitions(x, 0, true, true);
}

/** CreatePartitions: per topic its new partition count and optional replica assignments. */
function createPartitionsRequest(x: Exchange): void {
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, 0, NEVER);
    rdI32();                         // count
    const assignments = rdArrayLen(); // null: the broker places them
    for (let i = 0; i < assignments && rOk; i++) { skipI32Array(); skipTagged(); }
    skipTagged();
  }
}

/** Topic names, each with partitions: the partition index, then `ints` int32 fields and an int64
 *  offset (`withOffset`) or the fields `what` names; `structs`: each partition is a struct
 *  (tagged fields after it). */
function topicPartitions(x: Exchange, ints: i32, withOffset: bool, structs: bool, what: i32 = P_NONE): void {
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, 0, NEVER);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      for (let k = 0; k < ints; k++) rdI32();
      const offset = withOffset ? rdI64() : -1;
      if (what != P_NONE) partitionTail(x, what);
      if (structs) skipTagged();
      if (rOk) {
        if (withOffset && x.partitionCount == 0) x.offset = offset;
        notePartition(x, partition);
      }
    }
    skipTagged();
  }
}

/** Per topic name, per partition its error code: OffsetForLeaderEpoch (error, partition, leader
 *  epoch from v1, end offset; throttle time from v2) and DeleteRecords (partition, low watermark,
 *  error; throttle time always). */
function partitionErrorsResponse(x: Exchange, v: i32, key: i32): void {
  if (key == API_DELETE_RECORDS || v >= 2) rdI32(); // throttle time
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, NEVER);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      let partition: i32;
      if (key == API_DELETE_RECORDS) { partition = rdI32(); rdI64(); noteError(x, rdI16()); }
      else { noteError(x, rdI16()); partition = rdI32(); if (v >= 1) rdI32(); rdI64(); }
      skipTagged();
      if (rOk) notePartition(x, partition);
    }
    skipTagged();
  }
}

/** Topic ids never replace names in this api's versions. */
const NEVER: i32 = 0x7fff;

function offsetFetchTopics(x: Exchange, v: i32): void {
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, 10);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) notePartition(x, rdI32());
    skipTagged();
  }
}

function offsetFetchRequest(x: Exchange, v: i32): void {
  if (v <= 7) {
    rdStr(); noteGroup(x);
    offsetFetchTopics(x, v);
    return;
  }
  const groups = rdArrayLen();
  for (let g = 0; g < groups && rOk; g++) {
    rdStr(); noteGroup(x);
    if (v >= 9) { rdStr(); rdI32(); } // member id, member epoch
    offsetFetchTopics(x, v);
    skipTagged();
  }
}

function findCoordinatorRequest(x: Exchange, v: i32): void {
  let keyPtr: usize = 0;
  let keyLen: i32 = -1;
  if (v <= 3) { rdStr(); keyPtr = sPtr; keyLen = sLen; }
  const keyType = v >= 1 ? rdI8() : 0;
  if (v >= 4) {
    const n = rdArrayLen();
    if (n > 0) { rdStr(); keyPtr = sPtr; keyLen = sLen; }
  }
  // Key type 0 = consumer group; 1 = transactional id (not a group).
  if (rOk && keyLen >= 0) {
    sPtr = keyPtr; sLen = keyLen;
    if (keyType == 0) noteGroup(x);
    else if (keyType == 1) noteTxn(x);
  }
}

function createTopicsRequest(x: Exchange, v: i32): void {
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    rdStr(); if (rOk) noteTopic(x, sPtr, sLen);
    rdI32(); rdI16();              // partitions, replication factor
    const assignments = rdArrayLen();
    for (let i = 0; i < assignments && rOk; i++) { rdI32(); skipI32Array(); skipTagged(); }
    const configs = rdArrayLen();
    for (let i = 0; i < configs && rOk; i++) { rdStr(); rdStr(); skipTagged(); }
    skipTagged();
  }
}

function deleteTopicsRequest(x: Exchange, v: i32): void {
  if (v <= 5) {
    const n = rdArrayLen();
    for (let t = 0; t < n && rOk; t++) { rdStr(); if (rOk) noteTopic(x, sPtr, sLen); }
  } else {
    const n = rdArrayLen();
    for (let t = 0; t < n && rOk; t++) {
      rdStr();
      if (!need(16)) break;
      if (sLen >= 0) noteTopic(x, sPtr, sLen); else noteTopicId(x, rp);
      rp += 16;
      skipTagged();
    }
  }
}

// ---- responses --------------------------------------------------------------------------------

/** Decodes a response body (reader after the response header) into x, whose request fields are
 *  already set. */
export function parseResponseBody(x: Exchange, headerTagged: bool): void {
  x.inResponse = true;
  x.reqTopicCount = x.topicCount + (x.hasTopicId ? 1 : 0);
  x.reqPartitionCount = x.partitionCount;
  const key = x.apiKey;
  const v = x.apiVersion;
  if (v > decodedUpTo(key)) return;
  if (headerTagged) { rFlex = true; skipTagged(); }
  rFlex = isFlexible(key, v);
  if (key == API_PRODUCE && v <= 13) produceResponse(x, v);
  else if (key == API_FETCH && v <= 17) fetchResponse(x, v);
  else if (key == API_LIST_OFFSETS && v <= 10) listOffsetsResponse(x, v);
  else if (key == API_METADATA && v <= 13) metadataResponse(x, v);
  else if (key == API_OFFSET_COMMIT && v <= 10) offsetCommitResponse(x, v, v >= 3, 10);
  // throttle time, then per topic name its partitions' error codes: OffsetCommit's shape
  else if ((key == API_TXN_OFFSET_COMMIT && v <= 5) || (key == API_ADD_PARTITIONS_TO_TXN && v <= 3)) offsetCommitResponse(x, v, true, NEVER);
  else if ((key == API_OFFSET_FOR_LEADER_EPOCH && v <= 4) || (key == API_DELETE_RECORDS && v <= 2)) partitionErrorsResponse(x, v, key);
  else if (key == API_ADD_PARTITIONS_TO_TXN && v <= 5) {
    rdI32(); noteError(x, rdI16());  // v4+: throttle time, top-level error, then per transaction
    const txns = rdArrayLen();
    for (let t = 0; t < txns && rOk; t++) { rdStr(); offsetCommitResponse(x, v, false, NEVER); skipTagged(); }
  } else if (key == API_OFFSET_DELETE && v == 0) {
    noteError(x, rdI16()); rdI32();  // error before the throttle time here
    offsetCommitResponse(x, v, false, NEVER);
  } else if (key == API_ALTER_REPLICA_LOG_DIRS && v <= 2) offsetCommitResponse(x, v, true, NEVER);
  else if (key == API_WRITE_TXN_MARKERS && v <= 2) {
    const markers = rdArrayLen();
    for (let m = 0; m < markers && rOk; m++) { rdI64(); offsetCommitResponse(x, v, false, NEVER); skipTagged(); }
  } else if (key == API_ELECT_LEADERS && v <= 2) {
    rdI32();
    if (v >= 1) noteError(x, rdI16());
    topicPartitions(x, 0, false, true, P_ERROR_MESSAGE);
  } else if (key == API_ALTER_PARTITION_REASSIGNMENTS && v <= 1) {
    rdI32();
    if (v >= 1) rdI8();              // allow replication factor change
    noteError(x, rdI16()); rdStr();
    topicPartitions(x, 0, false, true, P_ERROR_MESSAGE);
  } else if (key == API_LIST_PARTITION_REASSIGNMENTS && v == 0) {
    rdI32(); noteError(x, rdI16()); rdStr();
    topicPartitions(x, 0, false, true, P_REASSIGNMENT);
  } else if (key == API_DESCRIBE_PRODUCERS && v == 0) { rdI32(); topicPartitions(x, 0, false, true, P_PRODUCERS); }
  else if (key == API_DESCRIBE_LOG_DIRS && v <= 4) describeLogDirsResponse(x, v);
  // DescribeTopicPartitions (KIP-966: admin clients from Kafka 3.7); a paging cursor follows
  else if (key == API_DESCRIBE_TOPIC_PARTITIONS && v == 0) { rdI32(); metadataTopics(x, 13, true); }
  else if (key == API_DESCRIBE_TRANSACTIONS && v == 0) {
    rdI32();
    const n = rdArrayLen();
    for (let i = 0; i < n && rOk; i++) {
      noteError(x, rdI16());
      rdStr(); rdStr(); rdI32(); rdI64(); rdI64(); rdI16(); // id, state, timeout, start, producer id, epoch
      topicPartitions(x, 0, false, false); // what the transaction writes to
      skipTagged();
    }
  } else if (key == API_CREATE_ACLS || key == API_DELETE_ACLS || key == API_ALTER_CONFIGS ||
             key == API_INCREMENTAL_ALTER_CONFIGS || key == API_ALTER_CLIENT_QUOTAS ||
             key == API_ALTER_USER_SCRAM_CREDENTIALS) resultErrors(x, key, v);
  else if (key == API_DESCRIBE_USER_SCRAM_CREDENTIALS) {
    rdI32(); noteError(x, rdI16()); rdStr();
    const n = rdArrayLen();
    for (let i = 0; i < n && rOk; i++) {
      rdStr(); noteError(x, rdI16()); rdStr(); // user, error, message
      const creds = rdArrayLen();
      for (let c = 0; c < creds && rOk; c++) { rdI8(); rdI32(); skipTagged(); }
      skipTagged();
    }
  }
  else if (key == API_OFFSET_FETCH && v <= 10) offsetFetchResponse(x, v);
  else if (key == API_FIND_COORDINATOR && v <= 6) findCoordinatorResponse(x, v);
  else if (key == API_API_VERSIONS || key == API_SASL_HANDSHAKE) noteError(x, rdI16()); // error first
  else if ((key == API_JOIN_GROUP && v <= 9) || (key == API_HEARTBEAT && v <= 4) ||
           (key == API_SYNC_GROUP && v <= 5) || (key == API_INIT_PRODUCER_ID && v <= 6) ||
           (key == API_ADD_OFFSETS_TO_TXN && v <= 4) || (key == API_END_TXN && v <= 5) ||
           (key == API_LIST_GROUPS && v <= 5) || (key == API_SASL_AUTHENTICATE && v <= 2) ||
           key == API_DESCRIBE_ACLS || key == API_DESCRIBE_CLIENT_QUOTAS || key == API_DESCRIBE_CLUSTER ||
           key == API_LIST_TRANSACTIONS || key == API_CONSUMER_GROUP_HEARTBEAT ||
           key == API_GET_TELEMETRY_SUBSCRIPTIONS || key == API_PUSH_TELEMETRY ||
           (key >= API_CREATE_DELEGATION_TOKEN && key <= API_DESCRIBE_DELEGATION_TOKEN)) {
    if (v >= throttleFrom(key)) rdI32();
    noteError(x, rdI16());
  } else if ((key == API_DESCRIBE_GROUPS && v <= 6) || (key == API_DELETE_GROUPS && v <= 2) ||
             (key == API_DESCRIBE_CONFIGS && v <= 4) || (key == API_CREATE_PARTITIONS && v <= 3) ||
             key == API_CONSUMER_GROUP_DESCRIBE) {
    // the first result's error: DescribeGroups and DescribeConfigs open each result with it,
    // DeleteGroups and CreatePartitions follow the group id / topic name with it
    if (key != API_DESCRIBE_GROUPS || v >= 1) rdI32();
    if (rdArrayLen() > 0) {
      if (key == API_DELETE_GROUPS) rdStr();
      if (key == API_CREATE_PARTITIONS) readTopic(x, 0, NEVER);
      noteError(x, rdI16());
    }
  } else if (key == API_LEAVE_GROUP && v <= 5) {
    if (v >= 1) rdI32();
    noteError(x, rdI16());
    if (v >= 3) {
      const n = rdArrayLen();
      for (let i = 0; i < n && rOk; i++) { rdStr(); rdStr(); noteError(x, rdI16()); skipTagged(); }
    }
  } else if (key == API_CREATE_TOPICS && v <= 7) createTopicsResponse(x, v);
}

function throttleFrom(key: i32): i32 {
  if (key == API_JOIN_GROUP) return 2;
  if (key == API_INIT_PRODUCER_ID || key == API_ADD_OFFSETS_TO_TXN || key == API_END_TXN) return 0;
  if (key == API_SASL_AUTHENTICATE || (key >= API_CREATE_DELEGATION_TOKEN && key <= API_DESCRIBE_DELEGATION_TOKEN)) {
    return 0x7fff; // none: the error code comes first
  }
  if (key == API_DESCRIBE_ACLS || key == API_DESCRIBE_CLIENT_QUOTAS || key == API_DESCRIBE_CLUSTER ||
      key == API_LIST_TRANSACTIONS || key == API_CONSUMER_GROUP_HEARTBEAT ||
      key == API_GET_TELEMETRY_SUBSCRIPTIONS || key == API_PUSH_TELEMETRY) return 0;
  return 1; // Heartbeat, SyncGroup, ListGroups
}

function produceResponse(x: Exchange, v: i32): void {
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, 13);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      noteError(x, rdI16());
      const base = rdI64();
      if (v >= 2) rdI64();          // log append time
      if (v >= 5) rdI64();          // log start offset
      if (v >= 8) {
        const errs = rdArrayLen();
        for (let e = 0; e < errs && rOk; e++) { rdI32(); rdStr(); skipTagged(); }
        rdStr();                    // error message
      }
      skipTagged();
      if (rOk) {
        if (x.offset == NONE) x.offset = base;
        notePartition(x, partition);
      }
    }
    skipTagged();
  }
}

function fetchResponse(x: Exchange, v: i32): void {
  if (v >= 1) rdI32();              // throttle time
  if (v >= 7) { noteError(x, rdI16()); rdI32(); } // error, session id
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, 13);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      noteError(x, rdI16());
      const hw = rdI64();
      if (v >= 4) rdI64();          // last stable offset
      if (v >= 5) rdI64();          // log start offset
      if (v >= 4) {
        const aborted = rdArrayLen();
        for (let a = 0; a < aborted && rOk; a++) { rdI64(); rdI64(); skipTagged(); }
      }
      if (v >= 11) rdI32();         // preferred read replica
      if (rOk && x.highWatermark == NONE) x.highWatermark = hw;
      if (rOk) notePartition(x, partition);
      walkRecords(x, rdBytesLen());
      skipTagged();
    }
    skipTagged();
  }
}

function listOffsetsResponse(x: Exchange, v: i32): void {
  if (v >= 2) rdI32();
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    rdStr(); if (rOk) noteTopic(x, sPtr, sLen);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      noteError(x, rdI16());
      let offset: i64 = NONE;
      if (v == 0) {
        const n = rdArrayLen();
        for (let k = 0; k < n && rOk; k++) { const o = rdI64(); if (k == 0) offset = o; }
      } else {
        rdI64();                    // timestamp
        offset = rdI64();
        if (v >= 4) rdI32();        // leader epoch
      }
      skipTagged();
      if (rOk) {
        if (x.offset == NONE) x.offset = offset;
        notePartition(x, partition);
      }
    }
    skipTagged();
  }
}

function metadataResponse(x: Exchange, v: i32): void {
  if (v >= 3) rdI32();
  const brokers = rdArrayLen();
  for (let b = 0; b < brokers && rOk; b++) {
    rdI32(); rdStr(); rdI32();
    if (v >= 1) rdStr();            // rack
    skipTagged();
  }
  if (v >= 2) rdStr();              // cluster id
  if (v >= 1) rdI32();              // controller id
  metadataTopics(x, v, false);
  if (v >= 8 && v <= 10) rdI32();
  if (v >= 13) noteError(x, rdI16());
}

/** Metadata's topics (per version `v`), which DescribeTopicPartitions repeats at v13's layout
 *  with two more replica lists (`elr`: eligible leader replicas and the last known ones, KIP-966).
 *  Topic ids (v10+) are remembered for the APIs that name topics by id. */
function metadataTopics(x: Exchange, v: i32, elr: bool): void {
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    noteError(x, rdI16());
    rdStr();
    const namePtr = sPtr;
    const nameLen = sLen;
    if (rOk) noteTopic(x, namePtr, nameLen);
    if (v >= 10 && need(16)) { rememberTopicId(rp, namePtr, nameLen); rp += 16; }
    if (v >= 1) rdI8();             // is internal
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      noteError(x, rdI16());
      const partition = rdI32();
      rdI32();                      // leader
      if (v >= 7) rdI32();          // leader epoch
      skipI32Array(); skipI32Array(); // replicas, isr
      if (elr) { skipI32Array(); skipI32Array(); }
      if (v >= 5) skipI32Array();   // offline replicas
      skipTagged();
      if (rOk) notePartition(x, partition);
    }
    if (v >= 8) rdI32();            // authorized operations
    skipTagged();
  }
}

function offsetCommitResponse(x: Exchange, v: i32, throttle: bool, idFrom: i32): void {
  if (throttle) rdI32();
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, idFrom);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      noteError(x, rdI16());
      skipTagged();
      if (rOk) notePartition(x, partition);
    }
    skipTagged();
  }
}

function offsetFetchPartitions(x: Exchange, v: i32): void {
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    readTopic(x, v, 10);
    const parts = rdArrayLen();
    for (let i = 0; i < parts && rOk; i++) {
      const partition = rdI32();
      const offset = rdI64();
      if (v >= 5) rdI32();          // leader epoch
      rdStr();                      // metadata
      noteError(x, rdI16());
      skipTagged();
      if (rOk) {
        if (x.offset == NONE) x.offset = offset;
        notePartition(x, partition);
      }
    }
    skipTagged();
  }
}

function offsetFetchResponse(x: Exchange, v: i32): void {
  if (v >= 3) rdI32();
  if (v <= 7) {
    offsetFetchPartitions(x, v);
    if (v >= 2) noteError(x, rdI16());
    return;
  }
  const groups = rdArrayLen();
  for (let g = 0; g < groups && rOk; g++) {
    rdStr();
    offsetFetchPartitions(x, v);
    noteError(x, rdI16());
    skipTagged();
  }
}

function findCoordinatorResponse(x: Exchange, v: i32): void {
  if (v >= 1) rdI32();
  if (v <= 3) { noteError(x, rdI16()); return; }
  const n = rdArrayLen();
  for (let i = 0; i < n && rOk; i++) {
    rdStr(); rdI32(); rdStr(); rdI32();
    noteError(x, rdI16());
    rdStr();
    skipTagged();
  }
}

function createTopicsResponse(x: Exchange, v: i32): void {
  if (v >= 2) rdI32();
  const topics = rdArrayLen();
  for (let t = 0; t < topics && rOk; t++) {
    rdStr(); if (rOk) noteTopic(x, sPtr, sLen);
    if (v >= 7) skip(16);
    noteError(x, rdI16());
    if (v >= 1) rdStr();            // error message
    if (v >= 5) {
      rdI32(); rdI16();
      const configs = rdArrayLen();
      for (let i = 0; i < configs && rOk; i++) { rdStr(); rdStr(); rdI8(); rdI8(); rdI8(); skipTagged(); }
    }
    skipTagged();
  }
}

// What follows the partition index in topicPartitions(), beyond int32s and an offset.
const P_NONE: i32 = -1;
const P_REPLICAS: i32 = 0;       // AlterPartitionReassignments request: the replica list
const P_ERROR_MESSAGE: i32 = 1;  // ElectLeaders, AlterPartitionReassignments: error, message
const P_REASSIGNMENT: i32 = 2;   // ListPartitionReassignments: replicas, adding, removing
const P_PRODUCERS: i32 = 3;      // DescribeProducers: error, message, active producers
const P_LOG_DIR: i32 = 4;        // DescribeLogDirs: size, offset lag, is future

/** The fields after a partition index that topicPartitions() passes over for `what`. */
function partitionTail(x: Exchange, what: i32): void {
  if (what == P_REPLICAS) skipI32Array();
  else if (what == P_REASSIGNMENT) { skipI32Array(); skipI32Array(); skipI32Array(); }
  else if (what == P_LOG_DIR) skip(8 + 8 + 1);
  else { noteError(x, rdI16()); rdStr(); }
  if (what == P_PRODUCERS) {
    const producers = rdArrayLen();
    // producer id, epoch, last sequence, last timestamp, coordinator epoch, txn start offset
    for (let p = 0; p < producers && rOk; p++) { skip(8 + 4 + 4 + 8 + 4 + 8); skipTagged(); }
  }
}

function describeLogDirsResponse(x: Exchange, v: i32): void {
  rdI32();
  if (v >= 3) noteError(x, rdI16());
  const dirs = rdArrayLen();
  for (let d = 0; d < dirs && rOk; d++) {
    noteError(x, rdI16());
    rdStr();                         // log dir
    topicPartitions(x, 0, false, true, P_LOG_DIR);
    if (v >= 4) { rdI64(); rdI64(); } // total, usable bytes
    skipTagged();
  }
}

/** Throttle time, then one result per item of the request, each opening with its error code:
 *  CreateAcls, DeleteAcls (and each matching ACL), AlterConfigs, IncrementalAlterConfigs,
 *  AlterClientQuotas, AlterUserScramCredentials (after the user name). */
function resultErrors(x: Exchange, key: i32, v: i32): void {
  rdI32();
  const n = rdArrayLen();
  for (let i = 0; i < n && rOk; i++) {
    if (key == API_ALTER_USER_SCRAM_CREDENTIALS) rdStr();
    noteError(x, rdI16());
    rdStr();                         // error message
    if (key == API_ALTER_CONFIGS || key == API_INCREMENTAL_ALTER_CONFIGS) { rdI8(); rdStr(); }
    else if (key == API_ALTER_CLIENT_QUOTAS) {
      const e = rdArrayLen();
      for (let k = 0; k < e && rOk; k++) { rdStr(); rdStr(); skipTagged(); }
    } else if (key == API_DELETE_ACLS) {
      const m = rdArrayLen();
      for (let k = 0; k < m && rOk; k++) {
        noteError(x, rdI16()); rdStr();
        rdI8(); rdStr();             // resource type, name
        if (v >= 1) rdI8();          // pattern type
        rdStr(); rdStr(); rdI8(); rdI8(); // principal, host, operation, permission
        skipTagged();
      }
    }
    skipTagged();
  }
}
