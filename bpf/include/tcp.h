/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* TCP metrics tracer (bpf/tcp.bpf.c) ↔ user space. No implicit padding (checked with -Wpadded);
 * TypeScript offsets are generated into host/src/generated/tcp-layout.ts. */
#ifndef TELEGEN_TCP_H
#define TELEGEN_TCP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum tg_tcp_ev {
	TG_TCP_OPEN = 1,     /* reached ESTABLISHED */
	TG_TCP_CLOSE = 2,    /* an established connection reached CLOSE: duration, bytes, srtt */
	TG_TCP_FAIL = 3,     /* a connect() that never got established (refused, reset, timed out) */
	TG_TCP_RETRANS = 4,  /* one segment retransmitted */
	TG_TCP_RESET_RX = 5, /* RST received */
	TG_TCP_RESET_TX = 6, /* RST sent */
};

enum tg_tcp_role {
	TG_TCP_ROLE_UNKNOWN = 0,
	TG_TCP_ROLE_CLIENT = 1, /* active open (connect) */
	TG_TCP_ROLE_SERVER = 2, /* passive open (from a listener) */
};

enum tg_tcp_stat {
	TG_TCP_STAT_EVENTS = 0,
	TG_TCP_STAT_RING_FULL = 1, /* events dropped: the ring had no room */
	TG_TCP_STAT_MAP_FULL = 2,  /* connections not tracked: the map refused the insert */
	TG_TCP_STAT_PROBES = 3,    /* tcp_probe samples folded into the RTT histograms */
	TG_TCP_STAT_MAX = 4,
};

enum tg_tcp_limits {
	TG_TCP_CONN_MAX_DEFAULT = 65536,
	TG_TCP_RING_BYTES_DEFAULT = 1048576,
	TG_TCP_HIST_SLOTS = 32, /* log2 buckets of microseconds: slot i counts [2^i, 2^(i+1)) */
};

struct tg_tcp_event {
	__u32 type; /* enum tg_tcp_ev */
	__u32 pid;  /* tgid of the process that opened/closed the socket; 0 when unknown */
	__u64 ts_ns;
	__u64 duration_ns; /* CLOSE: ESTABLISHED → CLOSE; FAIL: connect → CLOSE */
	__u64 bytes_sent;  /* CLOSE: bytes acknowledged by the peer */
	__u64 bytes_recv;  /* CLOSE: bytes received */
	__u32 srtt_us;     /* smoothed RTT at close, microseconds */
	__u32 rttvar_us;   /* RTT mean deviation at close (what ss shows as rttvar) */
	__u32 retrans;     /* CLOSE: segments retransmitted over the connection */
	__u16 family;      /* AF_INET / AF_INET6 */
	__u8 role;         /* enum tg_tcp_role */
	__u8 state;        /* the TCP state the event happened in (TCP_* values) */
	__u8 laddr[16];    /* IPv4 as ::ffff:a.b.c.d */
	__u8 raddr[16];
	__u16 lport;       /* host byte order */
	__u16 rport;
	__u32 _pad0;
	char comm[16];
};

#endif /* TELEGEN_TCP_H */
