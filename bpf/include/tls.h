/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Limits and counters of the TLS plaintext tracer (tls.bpf.c). Its records are the socket
 * tracer's struct tg_data_event (telegen.h) with flags = TG_DATA_TLS, written into the socket
 * tracer's own ring: plaintext reaches the same router and decoders. */
#ifndef TELEGEN_TLS_H
#define TELEGEN_TLS_H

enum tg_tls_limits {
	TG_TLS_H2_NAME_MAX = 256,     /* header field name bytes kept (longer: the field is dropped) */
	TG_TLS_H2_VALUE_MAX = 4096,   /* header field value bytes kept (longer: cut, truncated = 1) */
	TG_TLS_H2_NV_MAX = 64,        /* fields of one nghttp2_submit_* call read */
	TG_TLS_CAPTURE_LIMIT = 16384, /* plaintext kept per SSL_read/SSL_write (one TLS record) */
	TG_TLS_TAIL_LIMIT = 16384,    /* ... and of a longer call, from its end (tls_emit_tail) */
	TG_TLS_CALLS_MAX = 16384,     /* threads inside an SSL_* call at once */
	TG_TLS_SSL_MAX = 65536,       /* SSL objects whose socket fd is known */
	TG_TLS_HS_MAX = 16384,        /* SSL objects between their handshake's start and first plaintext */
};

/* Per-CPU counters (array maps tls_stats, go_tls_stats and go_h2_stats: the OpenSSL, Go TLS
 * and Go HTTP/2 objects write the ones that apply to them). */
enum tg_tls_stat {
	TG_TLS_STAT_EVENTS = 0,     /* plaintext records written */
	TG_TLS_STAT_RING_FULL = 1,
	TG_TLS_STAT_NO_CONN = 2,    /* plaintext whose socket we could not name: dropped */
	TG_TLS_STAT_READ_FAULT = 3,
	TG_TLS_STAT_TRUNCATED = 4,
	TG_TLS_STAT_H2_FIELDS = 5,  /* HTTP/2 header fields written (nghttp2 or Go HPACK uprobes) */
	TG_TLS_STAT_H2_NO_CONN = 6, /* ... whose connection could not be named: dropped */
	TG_TLS_STAT_LINKS = 7,      /* Go only: goroutine links (TG_EV_GO_LINK) written */
	TG_TLS_STAT_TAILS = 8,      /* tail records of calls longer than capture_max (tls_emit_tail) */
	/* TLS handshakes (OpenSSL, GnuTLS) by outcome and side: ok is counted once the connection
	 * moved plaintext or was freed with its handshake complete; failed is one
	 * TG_EV_TLS_HANDSHAKE record (when the ring took it). */
	TG_TLS_STAT_HS_OK_CLIENT = 9,
	TG_TLS_STAT_HS_OK_SERVER = 10,
	TG_TLS_STAT_HS_OK_UNKNOWN = 11,
	TG_TLS_STAT_HS_FAILED_CLIENT = 12,
	TG_TLS_STAT_HS_FAILED_SERVER = 13,
	TG_TLS_STAT_HS_FAILED_UNKNOWN = 14,
	TG_TLS_STAT_MAX = 15,
};

/* Blocks an HTTP/2 header field belongs to. */
enum tg_tls_h2_block {
	TG_TLS_H2_HEADERS = 0,  /* the first block of its side: request or response headers */
	TG_TLS_H2_TRAILERS = 1, /* a later block: trailers */
};

/* Payload head of a TG_DATA_H2_FIELD record, followed by name_len + value_len bytes. The
 * http2 decoder reads the same layout (decoders/http2/hint.ts). */
struct tg_tls_h2_field {
	__u32 stream_id;
	__u8 block;      /* enum tg_tls_h2_block */
	__u8 _pad0;
	__u16 name_len;
	__u32 value_len;
};

/* Where an application's nghttp2 header callbacks are: found in a session at
 * nghttp2_session_mem_recv (the host attaches h2_on_header{1,2} there). Key of map h2_cbs. */
struct tg_tls_h2_cb {
	__u64 addr;      /* the callback's address in the process */
	__u32 pid;
	__u32 version;   /* 1: on_header_callback, 2: on_header_callback2 */
};

/* The record type of a failed handshake, named here so the TLS layout carries it. */
enum tg_tls_record {
	TG_TLS_RECORD_HANDSHAKE = TG_EV_TLS_HANDSHAKE,
};

/* How a handshake failed (tg_tls_handshake_event.outcome). */
enum tg_tls_hs_outcome {
	TG_TLS_HS_FATAL = 1,      /* a handshake call failed for good: OpenSSL raised an SSL error or
				   * returned 0; GnuTLS returned a fatal GNUTLS_E_* */
	TG_TLS_HS_INCOMPLETE = 2, /* the SSL object was freed with its handshake unfinished (the peer
				   * closed or reset, the caller gave up): no error was raised */
	TG_TLS_HS_REJECTED = 3,   /* the handshake finished, the peer's certificate did not verify,
				   * and the caller freed the object without sending or reading a byte */
	/* Not failures yet: SSL_get_verify_result told the caller the peer's certificate did not
	 * verify, on a connection that has moved no plaintext (node's tls verifies after OpenSSL's
	 * handshake, then destroys the socket and exits without SSL_free). The host reports it
	 * rejected when the connection closes first, unless TG_TLS_HS_USED (plaintext moved:
	 * curl -k goes on) came. Neither is counted in tls_stats. */
	TG_TLS_HS_UNVERIFIED = 4,
	TG_TLS_HS_USED = 5,
};

enum tg_tls_library {
	TG_TLS_LIB_OPENSSL = 1,
	TG_TLS_LIB_GNUTLS = 2,
};

/* TG_EV_TLS_HANDSHAKE: a TLS handshake that did not complete, on conn (valid when has_conn). */
struct tg_tls_handshake_event {
	__u32 type;       /* TG_EV_TLS_HANDSHAKE */
	__u8 outcome;     /* enum tg_tls_hs_outcome */
	__u8 library;     /* enum tg_tls_library */
	__u8 side;        /* enum tg_role: the connection's, else the handshake call's */
	__u8 has_conn;
	__u64 start_ns;   /* first handshake call (or SSL_set_*_state) on the object */
	__u64 ts_ns;      /* when the failure was seen */
	__s32 ret;        /* the failing call's return: OpenSSL <= 0, GnuTLS a GNUTLS_E_* code */
	__u32 err_lib;    /* OpenSSL: library of the first error the call raised (ERR_LIB_SSL = 20) */
	__u32 err_reason; /* ... and its reason code (SSL_R_*), 0 when none was seen */
	__s32 verify;     /* OpenSSL: the SSL's verify_result (X509_V_ERR_*), -1 when unreadable */
	struct tg_conn_info conn;
};
_Static_assert(sizeof(struct tg_tls_handshake_event) == 120, "tg_tls_handshake_event layout");

#endif /* TELEGEN_TLS_H */
