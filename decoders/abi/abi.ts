// Decoder ABI v1 constants. This file is valid AssemblyScript AND TypeScript:
// decoders import it when compiled by asc, the host imports it when compiled by tsc.
// Keep it to plain `export const NAME = <integer literal>;` lines.

export const ABI_VERSION = 1;

// parse() returns bytes consumed (>= 0) or one of these ParseStates.
export const PARSE_NEEDS_MORE = -1; // nothing consumed; present the same bytes again with more
export const PARSE_INVALID = -2;    // not this protocol / unrecoverable; the host resets the stream
export const PARSE_IGNORED = -3;    // bytes are valid but of no interest; the host drops them

// Direction of bytes relative to the connection's client/server roles.
export const DIR_REQUEST = 0;  // client -> server
export const DIR_RESPONSE = 1; // server -> client

// Record kinds.
export const KIND_EXCHANGE = 1; // one request with its response: becomes a span
export const KIND_EVENT = 2;    // a standalone protocol event (log record)
export const KIND_UPGRADE = 3;  // the stream switches protocol; field PROTOCOL_NEXT names it
export const KIND_METRIC = 4;   // a counter/gauge sample the decoder wants exported

// Record flags (bit set).
export const FLAG_ERROR = 1;        // the exchange failed (e.g. HTTP 5xx, SQLSTATE error, RST)
export const FLAG_NO_RESPONSE = 2;  // request seen, response never came (closed/timeout)
export const FLAG_NO_REQUEST = 4;   // response seen without its request (joined mid-stream)
export const FLAG_TRUNCATED = 8;    // some field values were cut to the field cap
export const FLAG_UNKNOWN = 16;     // some values could not be known (lost bytes, missed state)
// With FLAG_NO_RESPONSE: the decoder gave up waiting (tick) while the connection was still open;
// ts_end is that tick's `now`, the last moment it was known to be unanswered. A close() or an
// eviction is not a timeout: the host cannot tell them apart from the end time alone.
export const FLAG_TIMEOUT = 32;

// Field value types.
export const T_STR = 0;   // UTF-8 bytes
export const T_INT = 1;   // i64 little-endian, 8 bytes
export const T_FLOAT = 2; // f64 little-endian, 8 bytes
export const T_BOOL = 3;  // 1 byte
export const T_STRS = 4;  // several strings, each u32 LE length + bytes (string[] attribute)
export const T_SET = 5;   // no value; only as a record's first field, id = set number: the fields
                          // after it define the set, alone it reuses them (README, "Field sets")

// Layout of a record in decoder memory, passed to telegen.emit(ptr, len):
//   u16 kind | u16 flags | u32 total_len | u64 stream | u64 ts_start_ns | u64 ts_end_ns   (32 bytes)
//   then fields: u16 attribute_id | u8 type | u8 0 | u32 value_len | value bytes
export const RECORD_HEADER_SIZE = 32;
export const FIELD_HEADER_SIZE = 8;

// Log levels for telegen.log(level, ptr, len).
export const LOG_DEBUG = 0;
export const LOG_INFO = 1;
export const LOG_WARN = 2;
export const LOG_ERROR = 3;

// Attribute ids >= this are decoder-private: the decoder's meta() JSON maps them to names
// ("attributes": {"1024": "my.attr"}), so a new protocol needs no host change.
export const ATTR_PRIVATE_BASE = 1024;

// Optional export gap(stream, dir, len) -> i32: the host tells the decoder that `len` bytes of
// direction `dir` were lost (capture limit, ring overflow). Return 0 when the decoder absorbed
// the gap (e.g. it was inside a body it skips anyway), PARSE_INVALID to have the stream reset.
export const GAP_ABSORBED = 0;
