/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every struct that crosses from the kernel into user space. Fixed-width fields, naturally
 * aligned, no implicit padding (built with -Wpadded), each with a size assert. The TypeScript
 * reader's offsets are generated from the compiled object's BTF (host/src/generated/layout.ts);
 * nothing about a layout is written anywhere else. */
#ifndef TELEGEN_H
#define TELEGEN_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TG_COMM_LEN 16
#define TG_ADDR_LEN 16

/* Every record in the ring buffer starts with `__u32 type` holding one of these. */
enum tg_event_type {
	TG_EV_DATA = 1,       /* socket payload chunk: struct tg_data_event + payload */
	TG_EV_CONN_OPEN = 2,  /* connect()/accept() completed: struct tg_conn_event */
	TG_EV_CONN_CLOSE = 3, /* close() of a tracked socket: struct tg_conn_event */
	/* The last thread of a process that had tracked sockets exited: the kernel closed
	 * them without close(), so every connection of conn.pid is gone. struct tg_conn_event
	 * with conn.pid/tid/comm/cgroup_id set and the rest zero. */
	TG_EV_PROC_EXIT = 4,
	/* A Go program's outgoing HTTP call belongs to the server request in flight on its
	 * goroutine or an ancestor goroutine (bpf/go_tls.bpf.c): struct tg_go_link_event. */
	TG_EV_GO_LINK = 5,
	/* A TLS handshake failed (bpf/tls.bpf.c): struct tg_tls_handshake_event (tls.h). */
	TG_EV_TLS_HANDSHAKE = 6,
};

/* tg_data_event.flags */
enum tg_data_flags {
	/* Plaintext from the TLS uprobes (bpf/tls.bpf.c): conn names the socket it travels on,
	 * pos counts plaintext bytes. The host routes it as its own stream and drops that
	 * connection's ciphertext from then on. */
	TG_DATA_TLS = 1,
	/* Not stream bytes: one HTTP/2 header field an HTTP/2 library (nghttp2) decoded or was
	 * given to encode, read from user memory by uprobes (bpf/tls.bpf.c). Payload: struct
	 * tg_tls_h2_field (bpf/include/tls.h) + name + value; pos unused. dir EGRESS = the
	 * process sends it, INGRESS = it received it. The http2 decoder's hint() fills header
	 * fields HPACK could not know (dynamic-table entries inserted before the agent). */
	TG_DATA_H2_FIELD = 2,
};

enum tg_dir {
	TG_DIR_EGRESS = 0,  /* bytes the process wrote */
	TG_DIR_INGRESS = 1, /* bytes the process read */
};

enum tg_role {
	TG_ROLE_UNKNOWN = 0,
	TG_ROLE_CLIENT = 1, /* the process called connect() */
	TG_ROLE_SERVER = 2, /* the process got the socket from accept() */
};

/* tg_conn_info.proto: the IP protocol numbers. */
enum tg_proto {
	TG_PROTO_TCP = 6,
	TG_PROTO_UDP = 17,
};

/* Identity of a connection as seen by one process. laddr/lport is the local end. */
struct tg_conn_info {
	__u64 conn_id;   /* unique while the tracer is loaded: a counter bumped per tracked socket */
	__u64 cgroup_id;
	__u32 pid;       /* tgid */
	__u32 tid;
	__u8 laddr[TG_ADDR_LEN]; /* IPv4 as ::ffff:a.b.c.d */
	__u8 raddr[TG_ADDR_LEN];
	__u16 lport;     /* host byte order */
	__u16 rport;
	__u16 family;    /* AF_INET / AF_INET6 */
	__u8 role;       /* enum tg_role */
	/* enum tg_proto. UDP: raddr/rport in a data event are that datagram's peer (the
	 * sockaddr of sendto/sendmsg/recvfrom/recvmsg, else the connected peer), laddr/lport the
	 * socket's bound end at that moment; conn_id names the socket, not the flow. */
	__u8 proto;
	char comm[TG_COMM_LEN];
};

struct tg_data_event {
	__u32 type;      /* TG_EV_DATA */
	__u8 dir;        /* enum tg_dir */
	__u8 truncated;  /* 1 when the syscall moved more bytes than were captured */
	__u8 flags;      /* enum tg_data_flags */
	__u8 _pad0;
	__u64 ts_ns;     /* bpf_ktime_get_ns() at syscall exit (TLS plaintext: a read at its return, a write at its entry) */
	__u64 pos;       /* byte position of payload[0] in this direction of the stream */
	__u32 len;       /* bytes of payload that follow this struct */
	__u32 orig_len;  /* bytes the syscall actually moved */
	struct tg_conn_info conn;
	/* __u8 payload[len] follows */
};

struct tg_conn_event {
	__u32 type;      /* TG_EV_CONN_OPEN / TG_EV_CONN_CLOSE */
	__u32 _pad0;
	__u64 ts_ns;
	__u64 bytes_sent;
	__u64 bytes_recv;
	struct tg_conn_info conn;
};

/* TG_EV_GO_LINK: the next exchange the process starts on conn_id (a client connection) is a
 * child of the server request that was in flight on parent_conn_id at parent_ts_ns. */
struct tg_go_link_event {
	__u32 type;            /* TG_EV_GO_LINK */
	__u32 pid;
	__u64 ts_ns;           /* entry of the client call */
	__u64 conn_id;         /* the call's connection (tg_conn_info.conn_id) */
	__u64 parent_conn_id;  /* the server request's connection */
	__u64 parent_ts_ns;    /* entry of the request's handler */
	__u64 goid;            /* goroutine making the call */
	__u64 parent_goid;     /* goroutine serving the request */
};

/* Per-CPU counters (array map "tg_stats"), indexed by this enum. */
enum tg_stat {
	TG_STAT_EVENTS = 0,      /* records written to the ring */
	TG_STAT_RING_FULL = 1,   /* records the ring could not take */
	TG_STAT_TRUNCATED = 2,   /* payloads cut to the capture limit */
	TG_STAT_CONN_OPEN = 3,
	TG_STAT_CONN_CLOSE = 4,
	TG_STAT_READ_FAULT = 5,  /* bpf_probe_read_user failed */
	TG_STAT_TAILS = 6,       /* of the events: tail records of calls longer than capture_max */
	TG_STAT_MAX = 8,
};

#ifdef __cplusplus
static_assert(sizeof(struct tg_conn_info) == 80, "tg_conn_info layout");
static_assert(sizeof(struct tg_data_event) == 112, "tg_data_event layout");
static_assert(sizeof(struct tg_conn_event) == 112, "tg_conn_event layout");
static_assert(sizeof(struct tg_go_link_event) == 56, "tg_go_link_event layout");
#else
_Static_assert(sizeof(struct tg_conn_info) == 80, "tg_conn_info layout");
_Static_assert(sizeof(struct tg_data_event) == 112, "tg_data_event layout");
_Static_assert(sizeof(struct tg_conn_event) == 112, "tg_conn_event layout");
_Static_assert(sizeof(struct tg_go_link_event) == 56, "tg_go_link_event layout");
#endif

#endif /* TELEGEN_H */
