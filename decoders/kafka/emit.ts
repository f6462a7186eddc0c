// Builds one KIND_EXCHANGE record from an Exchange (request fields + response fields).
import { KIND_EXCHANGE, FLAG_ERROR, FLAG_TRUNCATED } from "../abi/abi";
import {
  A_NETWORK_PROTOCOL_NAME, A_MESSAGING_SYSTEM, A_MESSAGING_OPERATION_NAME,
  A_MESSAGING_OPERATION_TYPE, A_MESSAGING_DESTINATION_NAME, A_MESSAGING_DESTINATION_PARTITION_ID,
  A_MESSAGING_CONSUMER_GROUP_NAME, A_MESSAGING_BATCH_MESSAGE_COUNT, A_MESSAGING_CLIENT_ID,
  A_KAFKA_API_KEY, A_KAFKA_API_VERSION, A_KAFKA_CORRELATION_ID, A_KAFKA_ERROR_CODE,
  A_MESSAGING_MESSAGE_BODY_SIZE, A_KAFKA_COMPRESSION_CODEC, A_MESSAGING_KAFKA_OFFSET,
  A_ERROR_TYPE, A_TELEGEN_REQUEST_SIZE, A_TELEGEN_RESPONSE_SIZE, A_TELEGEN_KAFKA_TOPICS,
  A_TELEGEN_KAFKA_PARTITION_COUNT, A_TELEGEN_KAFKA_TOPIC_ID, A_TELEGEN_KAFKA_ACKS,
  A_TELEGEN_KAFKA_HIGH_WATERMARK, A_TELEGEN_KAFKA_TRANSACTIONAL_ID,
} from "../abi/attributes";
import {
  begin, addBytes, addString, addInt, beginStrs, addStrsItem, endStrs, finish, orFlags,
} from "../abi/emit";
import {
  Exchange, NONE, API_NAMES, ERROR_NAMES, CODEC_NAMES, STR_CAP, knownApi,
  API_PRODUCE, API_FETCH, API_OFFSET_COMMIT, API_TXN_OFFSET_COMMIT, API_API_VERSIONS,
} from "./types";

const KAFKA = "kafka";

/** Private attribute (meta().attributes in index.ts): EndTxn's outcome, "commit" or "abort". */
export const A_TELEGEN_KAFKA_TRANSACTION_RESULT: i32 = 1024;

// Kafka's Uuid.toString(): URL-safe base64 without padding (22 characters).
const B64: usize = memory.data<u8>([
  65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90,
  97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117,
  118, 119, 120, 121, 122, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 45, 95,
]);
const UUID_TEXT: usize = memory.data(24);

function uuidText(id: usize): void {
  let o: usize = 0;
  let i: usize = 0;
  while (i + 3 <= 15) {
    const n = (<u32>load<u8>(id + i) << 16) | (<u32>load<u8>(id + i + 1) << 8) | <u32>load<u8>(id + i + 2);
    store<u8>(UUID_TEXT + o, load<u8>(B64 + <usize>((n >> 18) & 63)));
    store<u8>(UUID_TEXT + o + 1, load<u8>(B64 + <usize>((n >> 12) & 63)));
    store<u8>(UUID_TEXT + o + 2, load<u8>(B64 + <usize>((n >> 6) & 63)));
    store<u8>(UUID_TEXT + o + 3, load<u8>(B64 + <usize>(n & 63)));
    o += 4; i += 3;
  }
  const last = <u32>load<u8>(id + 15);
  store<u8>(UUID_TEXT + o, load<u8>(B64 + <usize>(last >> 2)));
  store<u8>(UUID_TEXT + o + 1, load<u8>(B64 + <usize>((last & 3) << 4)));
}

/** ApiVersions answered UNSUPPORTED_VERSION is the protocol's version negotiation (KIP-511):
 *  the client sent its newest version, the broker answers with the versions it has and the
 *  client retries. It is not a failed operation: the code is kept, the span is not an error. */
function versionNegotiation(x: Exchange): bool {
  return x.apiKey == API_API_VERSIONS && x.errorCode == 35;
}

export function emitExchange(stream: u32, x: Exchange, extraFlags: i32): void {
  let flags = x.flags | extraFlags;
  if (x.errorCode != 0 && !versionNegotiation(x)) flags |= FLAG_ERROR;
  begin(KIND_EXCHANGE, flags, <u64>stream, x.tsStart, x.tsEnd >= x.tsStart ? x.tsEnd : x.tsStart);
  addString(A_NETWORK_PROTOCOL_NAME, KAFKA);
  addString(A_MESSAGING_SYSTEM, KAFKA);
  if (knownApi(x.apiKey)) {
    addString(A_MESSAGING_OPERATION_NAME, API_NAMES[x.apiKey]);
    if (x.apiKey == API_PRODUCE) addString(A_MESSAGING_OPERATION_TYPE, "send");
    else if (x.apiKey == API_FETCH) addString(A_MESSAGING_OPERATION_TYPE, "receive");
    // A transaction's offset commit settles the consumed messages as OffsetCommit does; it
    // only takes effect when the transaction commits.
    else if (x.apiKey == API_OFFSET_COMMIT || x.apiKey == API_TXN_OFFSET_COMMIT) addString(A_MESSAGING_OPERATION_TYPE, "settle");
  }
  if (x.apiKey >= 0) {
    addInt(A_KAFKA_API_KEY, x.apiKey);
    addInt(A_KAFKA_API_VERSION, x.apiVersion);
  }
  addInt(A_KAFKA_CORRELATION_ID, x.corr);
  if (x.clientIdLen > 0) addBytes(A_MESSAGING_CLIENT_ID, changetype<usize>(x.clientId), <u32>x.clientIdLen);

  const topics = changetype<usize>(x.topics);
  if (x.topicsUsed > 0) {
    addBytes(A_MESSAGING_DESTINATION_NAME, topics + 2, <u32>load<u16>(topics));
    if (x.topicCount > 1) {
      beginStrs(A_TELEGEN_KAFKA_TOPICS);
      let q: i32 = 0;
      while (q + 2 <= x.topicsUsed) {
        const n = <i32>load<u16>(topics + <usize>q);
        addStrsItem(topics + <usize>q + 2, <u32>n);
        q += 2 + n;
      }
      endStrs();
      // Names beyond the kept list were counted but not stored.
      if (q < x.topicsUsed || x.topicCount > countTopics(x)) orFlags(FLAG_TRUNCATED);
    }
  } else if (x.hasTopicId) {
    uuidText(changetype<usize>(x.topicId));
    addBytes(A_TELEGEN_KAFKA_TOPIC_ID, UUID_TEXT, 22);
  }
  if (x.partitionCount >= 1 && !x.partitionMixed) addString(A_MESSAGING_DESTINATION_PARTITION_ID, x.partition.toString());
  if (x.partitionCount > 1) addInt(A_TELEGEN_KAFKA_PARTITION_COUNT, x.partitionCount);
  if (x.groupLen >= 0) {
    addBytes(A_MESSAGING_CONSUMER_GROUP_NAME, changetype<usize>(x.group), <u32>x.groupLen);
    if (x.groupLen >= STR_CAP) orFlags(FLAG_TRUNCATED);
  }
  if (x.txnIdLen >= 0) {
    addBytes(A_TELEGEN_KAFKA_TRANSACTIONAL_ID, changetype<usize>(x.txnId), <u32>x.txnIdLen);
    if (x.txnIdLen >= STR_CAP) orFlags(FLAG_TRUNCATED);
  }
  if (x.txnResult >= 0) addString(A_TELEGEN_KAFKA_TRANSACTION_RESULT, x.txnResult == 1 ? "commit" : "abort");
  if (x.clientIdLen >= STR_CAP) orFlags(FLAG_TRUNCATED);
  if (x.recordCount != NONE) addInt(A_MESSAGING_BATCH_MESSAGE_COUNT, x.recordCount);
  if (x.bodySize != NONE) addInt(A_MESSAGING_MESSAGE_BODY_SIZE, x.bodySize);
  if (x.codec >= 0 && x.codec < CODEC_NAMES.length) addString(A_KAFKA_COMPRESSION_CODEC, CODEC_NAMES[x.codec]);
  if (x.acks != -100) addInt(A_TELEGEN_KAFKA_ACKS, x.acks);
  if (x.offset >= 0 && x.partitionCount == 1) addInt(A_MESSAGING_KAFKA_OFFSET, x.offset);
  if (x.highWatermark != NONE && x.partitionCount == 1) addInt(A_TELEGEN_KAFKA_HIGH_WATERMARK, x.highWatermark);
  if (x.errorCode != 0) {
    addInt(A_KAFKA_ERROR_CODE, x.errorCode);
  }
  if (x.errorCode != 0 && !versionNegotiation(x)) {
    const i = x.errorCode + 1;
    if (i >= 0 && i < ERROR_NAMES.length) addString(A_ERROR_TYPE, ERROR_NAMES[i]);
    else addString(A_ERROR_TYPE, x.errorCode.toString());
  }
  if (x.requestSize != NONE) addInt(A_TELEGEN_REQUEST_SIZE, x.requestSize);
  if (x.responseSize != NONE) addInt(A_TELEGEN_RESPONSE_SIZE, x.responseSize);
  finish();
}

function countTopics(x: Exchange): i32 {
  const topics = changetype<usize>(x.topics);
  let q: i32 = 0;
  let n: i32 = 0;
  while (q + 2 <= x.topicsUsed) { q += 2 + <i32>load<u16>(topics + <usize>q); n++; }
  return n;
}
