// Kafka decoder: protocol tables and the per-stream / per-exchange state.
// Sources: the Kafka protocol guide (kafka.apache.org/protocol) and the message definitions
// (clients/src/main/resources/common/message/*.json: validVersions / flexibleVersions).

// socket.request.max.bytes defaults to 100 MiB; a size above it is not a Kafka frame.
export const MAX_MESSAGE: i32 = 104857600;
// In-flight requests remembered per connection; the oldest is flushed (no response) beyond this.
export const MAX_PENDING: i32 = 64;
// Topic names are at most 249 bytes; group and client ids are cut here (record flagged).
export const STR_CAP: i32 = 255;
// Distinct topic names kept per exchange (bytes of u16 length + name entries).
export const TOPICS_CAP: i32 = 1024;
// Unanswered requests older than this are flushed by tick().
export const PENDING_TIMEOUT_NS: u64 = 30_000_000_000;
// Bytes a desynchronised direction may discard before the stream is declared not Kafka.
export const MAX_GARBAGE: i64 = 1048576;
// One-way produce correlation ids remembered per stream (see StreamState.oneWay).
export const ONE_WAY_KEPT: i32 = 8;
// Highest api key in the table below.
export const API_KEY_MAX: i32 = 92;
// "no value" marker for optional integer fields.
export const NONE: i64 = -9223372036854775807;

export const API_PRODUCE: i32 = 0;
export const API_FETCH: i32 = 1;
export const API_LIST_OFFSETS: i32 = 2;
export const API_METADATA: i32 = 3;
export const API_CONTROLLED_SHUTDOWN: i32 = 7;
export const API_OFFSET_COMMIT: i32 = 8;
export const API_OFFSET_FETCH: i32 = 9;
export const API_FIND_COORDINATOR: i32 = 10;
export const API_JOIN_GROUP: i32 = 11;
export const API_HEARTBEAT: i32 = 12;
export const API_LEAVE_GROUP: i32 = 13;
export const API_SYNC_GROUP: i32 = 14;
export const API_DESCRIBE_GROUPS: i32 = 15;
export const API_SASL_HANDSHAKE: i32 = 17;
export const API_API_VERSIONS: i32 = 18;
export const API_CREATE_TOPICS: i32 = 19;
export const API_DELETE_TOPICS: i32 = 20;
export const API_INIT_PRODUCER_ID: i32 = 22;
export const API_LIST_GROUPS: i32 = 16;
export const API_DELETE_RECORDS: i32 = 21;
export const API_OFFSET_FOR_LEADER_EPOCH: i32 = 23;
export const API_ADD_PARTITIONS_TO_TXN: i32 = 24;
export const API_ADD_OFFSETS_TO_TXN: i32 = 25;
export const API_END_TXN: i32 = 26;
export const API_DESCRIBE_CONFIGS: i32 = 32;
export const API_SASL_AUTHENTICATE: i32 = 36;
export const API_CREATE_PARTITIONS: i32 = 37;
export const API_TXN_OFFSET_COMMIT: i32 = 28;
export const API_DELETE_GROUPS: i32 = 42;
export const API_WRITE_TXN_MARKERS: i32 = 27;
export const API_DESCRIBE_ACLS: i32 = 29;
export const API_CREATE_ACLS: i32 = 30;
export const API_DELETE_ACLS: i32 = 31;
export const API_ALTER_CONFIGS: i32 = 33;
export const API_ALTER_REPLICA_LOG_DIRS: i32 = 34;
export const API_DESCRIBE_LOG_DIRS: i32 = 35;
export const API_CREATE_DELEGATION_TOKEN: i32 = 38;
export const API_RENEW_DELEGATION_TOKEN: i32 = 39;
export const API_EXPIRE_DELEGATION_TOKEN: i32 = 40;
export const API_DESCRIBE_DELEGATION_TOKEN: i32 = 41;
export const API_ELECT_LEADERS: i32 = 43;
export const API_INCREMENTAL_ALTER_CONFIGS: i32 = 44;
export const API_ALTER_PARTITION_REASSIGNMENTS: i32 = 45;
export const API_LIST_PARTITION_REASSIGNMENTS: i32 = 46;
export const API_OFFSET_DELETE: i32 = 47;
export const API_DESCRIBE_CLIENT_QUOTAS: i32 = 48;
export const API_ALTER_CLIENT_QUOTAS: i32 = 49;
export const API_DESCRIBE_USER_SCRAM_CREDENTIALS: i32 = 50;
export const API_ALTER_USER_SCRAM_CREDENTIALS: i32 = 51;
export const API_DESCRIBE_CLUSTER: i32 = 60;
export const API_DESCRIBE_PRODUCERS: i32 = 61;
export const API_DESCRIBE_TRANSACTIONS: i32 = 65;
export const API_LIST_TRANSACTIONS: i32 = 66;
export const API_CONSUMER_GROUP_HEARTBEAT: i32 = 68;
export const API_CONSUMER_GROUP_DESCRIBE: i32 = 69;
export const API_GET_TELEMETRY_SUBSCRIPTIONS: i32 = 71;
export const API_PUSH_TELEMETRY: i32 = 72;
export const API_DESCRIBE_TOPIC_PARTITIONS: i32 = 75;

// First flexible version per api key (255 = never flexible), from each message definition's
// "flexibleVersions". Decides the request header (v2 vs v1) and response header (v1 vs v0).
const FLEX_FROM: usize = memory.data<u8>([
  9, 12, 6, 9, 4, 2, 6, 3, 8, 6,          //  0 Produce .. 9 OffsetFetch
  3, 6, 4, 4, 4, 5, 3, 255, 3, 5,         // 10 FindCoordinator .. 19 CreateTopics
  4, 2, 2, 4, 3, 3, 3, 1, 3, 2,           // 20 DeleteTopics .. 29 DescribeAcls
  2, 2, 4, 2, 2, 2, 2, 2, 2, 2,           // 30 CreateAcls .. 39 RenewDelegationToken
  2, 2, 2, 2, 1, 0, 0, 255, 1, 1,         // 40 ExpireDelegationToken .. 49 AlterClientQuotas
  0, 0, 0, 1, 1, 0, 0, 0, 0, 0,           // 50 DescribeUserScramCredentials .. 59 FetchSnapshot
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0,           // 60 DescribeCluster .. 69 ConsumerGroupDescribe
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0,           // 70 ControllerRegistration .. 79 ShareAcknowledge
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0,           // 80 AddRaftVoter .. 89 StreamsGroupDescribe
  0, 0, 0,                                // 90 .. 92 share group offsets
]);

// Highest version plausibly on the wire per api key (current Kafka maximum plus headroom); a
// header above it is not trusted when detecting or resynchronising.
const MAX_VERSION: usize = memory.data<u8>([
  15, 20, 12, 15, 9, 6, 10, 5, 12, 12,
  8, 11, 6, 7, 7, 8, 7, 3, 6, 9,
  8, 4, 8, 6, 7, 6, 7, 4, 7, 5,
  5, 5, 6, 4, 4, 6, 4, 5, 5, 4,
  4, 5, 4, 4, 3, 3, 2, 2, 3, 3,
  2, 2, 4, 3, 3, 4, 5, 4, 2, 3,
  4, 2, 6, 3, 2, 2, 3, 2, 3, 3,
  2, 2, 2, 2, 2, 2, 3, 3, 3, 3,
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
  2, 2, 2,
]);

// messaging.operation.name per api key: the api name in snake_case.
export const API_NAMES: StaticArray<string> = [
  "produce", "fetch", "list_offsets", "metadata", "leader_and_isr", "stop_replica",
  "update_metadata", "controlled_shutdown", "offset_commit", "offset_fetch",
  "find_coordinator", "join_group", "heartbeat", "leave_group", "sync_group",
  "describe_groups", "list_groups", "sasl_handshake", "api_versions", "create_topics",
  "delete_topics", "delete_records", "init_producer_id", "offset_for_leader_epoch",
  "add_partitions_to_txn", "add_offsets_to_txn", "end_txn", "write_txn_markers",
  "txn_offset_commit", "describe_acls", "create_acls", "delete_acls", "describe_configs",
  "alter_configs", "alter_replica_log_dirs", "describe_log_dirs", "sasl_authenticate",
  "create_partitions", "create_delegation_token", "renew_delegation_token",
  "expire_delegation_token", "describe_delegation_token", "delete_groups", "elect_leaders",
  "incremental_alter_configs", "alter_partition_reassignments",
  "list_partition_reassignments", "offset_delete", "describe_client_quotas",
  "alter_client_quotas", "describe_user_scram_credentials", "alter_user_scram_credentials",
  "vote", "begin_quorum_epoch", "end_quorum_epoch", "describe_quorum", "alter_partition",
  "update_features", "envelope", "fetch_snapshot", "describe_cluster", "describe_producers",
  "broker_registration", "broker_heartbeat", "unregister_broker", "describe_transactions",
  "list_transactions", "allocate_producer_ids", "consumer_group_heartbeat",
  "consumer_group_describe", "controller_registration", "get_telemetry_subscriptions",
  "push_telemetry", "assign_replicas_to_dirs", "list_client_metrics_resources",
  "describe_topic_partitions", "share_group_heartbeat", "share_group_describe", "share_fetch",
  "share_acknowledge", "add_raft_voter", "remove_raft_voter", "update_raft_voter",
  "initialize_share_group_state", "read_share_group_state", "write_share_group_state",
  "delete_share_group_state", "read_share_group_state_summary", "streams_group_heartbeat",
  "streams_group_describe", "describe_share_group_offsets", "alter_share_group_offsets",
  "delete_share_group_offsets",
];

// error.type per error code -1..120 (org.apache.kafka.common.protocol.Errors); others: the number.
export const ERROR_NAMES: StaticArray<string> = [
  "UNKNOWN_SERVER_ERROR", "NONE", "OFFSET_OUT_OF_RANGE", "CORRUPT_MESSAGE",
  "UNKNOWN_TOPIC_OR_PARTITION", "INVALID_FETCH_SIZE", "LEADER_NOT_AVAILABLE",
  "NOT_LEADER_OR_FOLLOWER", "REQUEST_TIMED_OUT", "BROKER_NOT_AVAILABLE", "REPLICA_NOT_AVAILABLE",
  "MESSAGE_TOO_LARGE", "STALE_CONTROLLER_EPOCH", "OFFSET_METADATA_TOO_LARGE", "NETWORK_EXCEPTION",
  "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR",
  "INVALID_TOPIC_EXCEPTION", "RECORD_LIST_TOO_LARGE", "NOT_ENOUGH_REPLICAS",
  "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "INVALID_REQUIRED_ACKS", "ILLEGAL_GENERATION",
  "INCONSISTENT_GROUP_PROTOCOL", "INVALID_GROUP_ID", "UNKNOWN_MEMBER_ID", "INVALID_SESSION_TIMEOUT",
  "REBALANCE_IN_PROGRESS", "INVALID_COMMIT_OFFSET_SIZE", "TOPIC_AUTHORIZATION_FAILED",
  "GROUP_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "INVALID_TIMESTAMP",
  "UNSUPPORTED_SASL_MECHANISM", "ILLEGAL_SASL_STATE", "UNSUPPORTED_VERSION", "TOPIC_ALREADY_EXISTS",
  "INVALID_PARTITIONS", "INVALID_REPLICATION_FACTOR", "INVALID_REPLICA_ASSIGNMENT", "INVALID_CONFIG",
  "NOT_CONTROLLER", "INVALID_REQUEST", "UNSUPPORTED_FOR_MESSAGE_FORMAT", "POLICY_VIOLATION",
  "OUT_OF_ORDER_SEQUENCE_NUMBER", "DUPLICATE_SEQUENCE_NUMBER", "INVALID_PRODUCER_EPOCH",
  "INVALID_TXN_STATE", "INVALID_PRODUCER_ID_MAPPING", "INVALID_TRANSACTION_TIMEOUT",
  "CONCURRENT_TRANSACTIONS", "TRANSACTION_COORDINATOR_FENCED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "SECURITY_DISABLED", "OPERATION_NOT_ATTEMPTED",
  "KAFKA_STORAGE_ERROR", "LOG_DIR_NOT_FOUND", "SASL_AUTHENTICATION_FAILED", "UNKNOWN_PRODUCER_ID",
  "REASSIGNMENT_IN_PROGRESS", "DELEGATION_TOKEN_AUTH_DISABLED", "DELEGATION_TOKEN_NOT_FOUND",
  "DELEGATION_TOKEN_OWNER_MISMATCH", "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
  "DELEGATION_TOKEN_AUTHORIZATION_FAILED", "DELEGATION_TOKEN_EXPIRED", "INVALID_PRINCIPAL_TYPE",
  "NON_EMPTY_GROUP", "GROUP_ID_NOT_FOUND", "FETCH_SESSION_ID_NOT_FOUND",
  "INVALID_FETCH_SESSION_EPOCH", "LISTENER_NOT_FOUND", "TOPIC_DELETION_DISABLED",
  "FENCED_LEADER_EPOCH", "UNKNOWN_LEADER_EPOCH", "UNSUPPORTED_COMPRESSION_TYPE",
  "STALE_BROKER_EPOCH", "OFFSET_NOT_AVAILABLE", "MEMBER_ID_REQUIRED",
  "PREFERRED_LEADER_NOT_AVAILABLE", "GROUP_MAX_SIZE_REACHED", "FENCED_INSTANCE_ID",
  "ELIGIBLE_LEADERS_NOT_AVAILABLE", "ELECTION_NOT_NEEDED", "NO_REASSIGNMENT_IN_PROGRESS",
  "GROUP_SUBSCRIBED_TO_TOPIC", "INVALID_RECORD", "UNSTABLE_OFFSET_COMMIT",
  "THROTTLING_QUOTA_EXCEEDED", "PRODUCER_FENCED", "RESOURCE_NOT_FOUND", "DUPLICATE_RESOURCE",
  "UNACCEPTABLE_CREDENTIAL", "INCONSISTENT_VOTER_SET", "INVALID_UPDATE_VERSION",
  "FEATURE_UPDATE_FAILED", "PRINCIPAL_DESERIALIZATION_FAILURE", "SNAPSHOT_NOT_FOUND",
  "POSITION_OUT_OF_RANGE", "UNKNOWN_TOPIC_ID", "DUPLICATE_BROKER_REGISTRATION",
  "BROKER_ID_NOT_REGISTERED", "INCONSISTENT_TOPIC_ID", "INCONSISTENT_CLUSTER_ID",
  "TRANSACTIONAL_ID_NOT_FOUND", "FETCH_SESSION_TOPIC_ID_ERROR", "INELIGIBLE_REPLICA",
  "NEW_LEADER_ELECTED", "OFFSET_MOVED_TO_TIERED_STORAGE", "FENCED_MEMBER_EPOCH",
  "UNRELEASED_INSTANCE_ID", "UNSUPPORTED_ASSIGNOR", "STALE_MEMBER_EPOCH",
  "MISMATCHED_ENDPOINT_TYPE", "UNSUPPORTED_ENDPOINT_TYPE", "UNKNOWN_CONTROLLER_ID",
  "UNKNOWN_SUBSCRIPTION_ID", "TELEMETRY_TOO_LARGE", "INVALID_REGISTRATION", "TRANSACTION_ABORTABLE",
];

// Record batch attributes bits 0-2 (and legacy message attributes bits 0-2).
export const CODEC_NAMES: StaticArray<string> = ["none", "gzip", "snappy", "lz4", "zstd"];

@inline export function knownApi(key: i32): bool {
  return key >= 0 && key <= API_KEY_MAX;
}

@inline export function isFlexible(key: i32, version: i32): bool {
  if (!knownApi(key)) return false;
  return version >= <i32>load<u8>(FLEX_FROM + <usize>key);
}

@inline export function maxVersion(key: i32): i32 {
  return knownApi(key) ? <i32>load<u8>(MAX_VERSION + <usize>key) : -1;
}

/** Request header version: 0 only for ControlledShutdown v0, 2 for flexible versions, else 1. */
@inline export function requestHeaderVersion(key: i32, version: i32): i32 {
  if (key == API_CONTROLLED_SHUTDOWN && version == 0) return 0;
  return isFlexible(key, version) ? 2 : 1;
}

/** Response header version: 1 (tagged fields) for flexible versions, except ApiVersions (always 0
 *  so a client can read the answer before it knows which versions the broker speaks). */
@inline export function responseHeaderVersion(key: i32, version: i32): i32 {
  if (key == API_API_VERSIONS) return 0;
  return isFlexible(key, version) ? 1 : 0;
}

/** Everything one exchange carries to its record: request fields, then response fields.
 *  Objects are pooled per stream and reused, so no allocation happens per message. */
export class Exchange {
  corr: i32 = 0;
  apiKey: i32 = -1;
  apiVersion: i32 = -1;
  tsStart: u64 = 0;
  tsEnd: u64 = 0;
  flags: i32 = 0;
  requestSize: i64 = NONE;
  responseSize: i64 = NONE;
  oneWay: bool = false;

  clientId: StaticArray<u8> = new StaticArray<u8>(STR_CAP);
  clientIdLen: i32 = -1;
  group: StaticArray<u8> = new StaticArray<u8>(STR_CAP);
  groupLen: i32 = -1;
  // The producer's transactional id (transactions and FindCoordinator key type 1).
  txnId: StaticArray<u8> = new StaticArray<u8>(STR_CAP);
  txnIdLen: i32 = -1;
  // EndTxn's Committed: 1 commit, 0 abort, -1 not an EndTxn (or not read).
  txnResult: i32 = -1;

  // Distinct topic names: entries of u16 length + bytes.
  topics: StaticArray<u8> = new StaticArray<u8>(TOPICS_CAP);
  topicsUsed: i32 = 0;
  topicCount: i32 = 0;
  topicId: StaticArray<u8> = new StaticArray<u8>(16);
  hasTopicId: bool = false;
  partitionCount: i32 = 0;
  partition: i32 = -1;
  // Several topic-partitions with one partition number (a batch over topics, each to partition
  // N) still name that partition, as tshark lists it; different numbers name none.
  partitionMixed: bool = false;
  // Response-side topics/partitions count only when the request named none (e.g. Metadata for
  // all topics); these hold the request's counts when the response parse starts.
  reqTopicCount: i32 = 0;
  reqPartitionCount: i32 = 0;
  inResponse: bool = false;

  recordCount: i64 = NONE;
  bodySize: i64 = NONE;
  codec: i32 = -1;
  acks: i32 = -100;
  offset: i64 = NONE;
  highWatermark: i64 = NONE;
  errorCode: i32 = 0;

  reset(): void {
    this.corr = 0; this.apiKey = -1; this.apiVersion = -1; this.tsStart = 0; this.tsEnd = 0;
    this.flags = 0; this.requestSize = NONE; this.responseSize = NONE; this.oneWay = false;
    this.clientIdLen = -1; this.groupLen = -1; this.txnIdLen = -1; this.txnResult = -1;
    this.topicsUsed = 0; this.topicCount = 0; this.hasTopicId = false;
    this.partitionCount = 0; this.partition = -1; this.partitionMixed = false;
    this.reqTopicCount = 0; this.reqPartitionCount = 0; this.inResponse = false;
    this.recordCount = NONE; this.bodySize = NONE; this.codec = -1; this.acks = -100;
    this.offset = NONE; this.highWatermark = NONE; this.errorCode = 0;
  }
}

/** Per-connection state. Index 0 = request direction, 1 = response direction. */
export class StreamState {
  inflight: Array<Exchange> = new Array<Exchange>();
  free: Array<Exchange> = new Array<Exchange>();
  // Bytes still to discard of a message larger than the input window.
  skipReq: i64 = 0;
  skipResp: i64 = 0;
  // Exchange to emit once the skipped remainder of its message has passed.
  deferredReq: Exchange | null = null;
  deferredResp: Exchange | null = null;
  // Lost sync (gap, garbage): look for a plausible header before trusting a length again.
  desyncReq: bool = false;
  desyncResp: bool = false;
  // First bytes of a direction seen yet: a request stream must then start at a header.
  startedReq: bool = false;
  startedResp: bool = false;
  // Time the first byte of a still incomplete message was seen.
  partialTsReq: u64 = 0;
  partialTsResp: u64 = 0;
  garbage: i64 = 0;
  // Correlation ids of the last one-way (acks=0) produces: a broker never answers them, but a
  // non-conforming one may (librdkafka's mock does); its answer is then dropped, not reported
  // as a response without request.
  oneWay: StaticArray<i32> = new StaticArray<i32>(ONE_WAY_KEPT);
  oneWayCount: i32 = 0;
  oneWayNext: i32 = 0;
  // After a successful SaslHandshake v0 the SASL tokens travel as bare size-prefixed frames
  // without a Kafka header (KIP-43) until a real request follows; they are skipped, never
  // described (they carry credentials). saslResponses: token answers still expected.
  saslRaw: bool = false;
  saslResponses: i32 = 0;
  // The start of a message still incomplete at the end of the last read (the host holds those
  // bytes for the next one), kept in a Head of abi/head.ts (0 until first needed). A gap right
  // after them (a snaplen cut, lost segments) decodes what the head holds instead of losing the
  // whole message.
  headReq: usize = 0;
  headResp: usize = 0;
}

/** Bytes kept of an incomplete message's start (header, client id, the first topics). */
export const HEAD_CAP: i32 = 4096;
