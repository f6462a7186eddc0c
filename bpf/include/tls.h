/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Limits and counters of the TLS plaintext tracer (tls.bpf.c). Its records are the socket
 * tracer's struct tg_data_event (telegen.h) with flags = TG_DATA_TLS, written into the socket
 * tracer's own ring: plaintext reaches the same router and decoders. */
#ifndef TELEGEN_TLS_H
#define TELEGEN_TLS_H

enum tg_tls_limits {
	TG_TLS_CAPTURE_LIMIT = 16384, /* plaintext kept per SSL_read/SSL_write (one TLS record) */
	TG_TLS_CALLS_MAX = 16384,     /* threads inside an SSL_* call at once */
	TG_TLS_SSL_MAX = 65536,       /* SSL objects whose socket fd is known */
};

/* Per-CPU counters (array map "tls_stats"). */
enum tg_tls_stat {
	TG_TLS_STAT_EVENTS = 0,     /* plaintext records written */
	TG_TLS_STAT_RING_FULL = 1,
	TG_TLS_STAT_NO_CONN = 2,    /* plaintext whose socket we could not name: dropped */
	TG_TLS_STAT_READ_FAULT = 3,
	TG_TLS_STAT_TRUNCATED = 4,
	TG_TLS_STAT_MAX = 8,
};

#endif /* TELEGEN_TLS_H */
