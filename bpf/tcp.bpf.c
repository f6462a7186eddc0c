// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TCP metrics from tracepoints only (no kprobes, no fentry on this kernel family):
 * sock/inet_sock_set_state gives the lifecycle (open, close, failed connect), tcp_probe the RTT
 * samples, tcp_retransmit_skb / tcp_retransmit_synack / tcp_receive_reset / tcp_send_reset the trouble. tp_btf where the
 * handler needs the socket itself (byte counts, srtt); classic tracepoints where the record already
 * holds the addresses: tcp_send_reset (a reset for a closed port has no socket) and
 * tcp_retransmit_skb (its format is stable ABI, while its BTF prototype grew an argument in 6.x).
 * A server connection completes in softirq, where no process owns it yet: the accept()/accept4()
 * that returns it names its process, and its open is reported then.
 * Per-connection results go to a small ring (one record per open/close/retransmit/reset); RTT
 * samples are folded into per-CPU log2 histograms here, because tcp_probe fires on every ACK. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "tcp.h"
#include "fd_file.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

enum { S_ESTABLISHED = 1, S_SYN_SENT = 2, S_SYN_RECV = 3, S_FIN_WAIT1 = 4, S_CLOSE = 7, S_LAST_ACK = 9 };

const volatile __u32 self_pid = 0; /* the agent's own client connections are not counted */

struct tg_tcp_event *tg_anchor_tcp_event __attribute__((used));
enum tg_tcp_ev tg_anchor_tcp_ev __attribute__((used));
enum tg_tcp_role tg_anchor_tcp_role __attribute__((used));
enum tg_tcp_stat tg_anchor_tcp_stat __attribute__((used));
enum tg_tcp_limits tg_anchor_tcp_limits __attribute__((used));

struct conn {
	__u64 start_ns;       /* connect() or passive ESTABLISHED */
	__u64 established_ns; /* 0 until ESTABLISHED */
	/* bytes_acked/bytes_received at ESTABLISHED: the handshake's SYN is in them (by how much
	 * depends on the side), so the payload is the difference at close. */
	__u64 acked_base;
	__u64 recv_base;
	__u32 pid;
	__u8 role;
	__u8 opened; /* its OPEN record was sent (a server's waits for accept(), see tg_tcp_accept) */
	__u8 _pad[2];
	char comm[16];
};

/* Keyed by the struct sock address: stable for the socket's life, which is all we track. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_TCP_CONN_MAX_DEFAULT);
	__type(key, __u64);
	__type(value, struct conn);
} tg_tcp_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_TCP_RING_BYTES_DEFAULT);
} tg_tcp_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_TCP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tg_tcp_stats SEC(".maps");

/* [0, SLOTS): srtt samples; [SLOTS, 2*SLOTS): rttvar samples; log2 of microseconds. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * TG_TCP_HIST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tg_tcp_rtt_hist SEC(".maps");

static __always_inline void stat_inc(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&tg_tcp_stats, &i);
	if (v)
		*v += 1;
}

static __always_inline __u32 log2_slot(__u32 v)
{
	__u32 r = 0;
	if (v >= 1 << 16) { v >>= 16; r += 16; }
	if (v >= 1 << 8) { v >>= 8; r += 8; }
	if (v >= 1 << 4) { v >>= 4; r += 4; }
	if (v >= 1 << 2) { v >>= 2; r += 2; }
	if (v >= 1 << 1) { r += 1; }
	return r;
}

static __always_inline void hist_add(__u32 base, __u32 us)
{
	__u32 i = base + log2_slot(us);
	if (i >= 2 * TG_TCP_HIST_SLOTS)
		return;
	__u64 *v = bpf_map_lookup_elem(&tg_tcp_rtt_hist, &i);
	if (v)
		*v += 1;
}

/* Local and remote ends of a socket; IPv4 as ::ffff:a.b.c.d like the socket tracer. */
static __always_inline void fill_addrs(struct tg_tcp_event *e, const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->family = family;
	/* inet_sport, not skc_num: releasing the bound port at CLOSE zeroes skc_num before the
	 * tracepoint runs, and a server's port is the one attribute its close must carry. */
	e->lport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	e->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->raddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		e->laddr[10] = 0xff; e->laddr[11] = 0xff;
		e->raddr[10] = 0xff; e->raddr[11] = 0xff;
		__builtin_memcpy(&e->laddr[12], &l, 4);
		__builtin_memcpy(&e->raddr[12], &r, 4);
	}
}

static __always_inline struct tg_tcp_event *reserve(__u32 type)
{
	struct tg_tcp_event *e = bpf_ringbuf_reserve(&tg_tcp_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_TCP_STAT_RING_FULL);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = type;
	e->ts_ns = bpf_ktime_get_ns();
	stat_inc(TG_TCP_STAT_EVENTS);
	return e;
}

static __always_inline void fill_conn(struct tg_tcp_event *e, const struct conn *c)
{
	if (!c)
		return;
	e->pid = c->pid;
	e->role = c->role;
	__builtin_memcpy(e->comm, c->comm, sizeof(e->comm));
}

/* The sequence space counts SYN and FIN as one byte each; bytes_acked/bytes_received follow it.
 * Payload = the counter at close - its value at ESTABLISHED - the FIN, when one was exchanged:
 * ours is in bytes_acked once the peer acknowledged it (we shut down sending and nothing is
 * outstanding), the peer's is in bytes_received once it arrived (tcp_fin sets SOCK_DONE). */
static __always_inline void set_base(struct conn *c, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	c->acked_base = BPF_CORE_READ(tp, bytes_acked);
	c->recv_base = BPF_CORE_READ(tp, bytes_received);
}

#define SEND_SHUTDOWN 2

static __always_inline void payload_bytes(struct tg_tcp_event *e, const struct conn *c, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u64 acked = BPF_CORE_READ(tp, bytes_acked) - c->acked_base;
	__u64 recv = BPF_CORE_READ(tp, bytes_received) - c->recv_base;
	__u8 shut = BPF_CORE_READ(sk, sk_shutdown);
	if ((shut & SEND_SHUTDOWN) && BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq) && acked)
		acked--;
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	if ((flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))) && recv)
		recv--;
	e->bytes_sent = acked;
	e->bytes_recv = recv;
}

static __always_inline void set_current(struct conn *c)
{
	c->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(c->comm, sizeof(c->comm));
}

static __always_inline void emit_open(const struct sock *sk, struct conn *c, __u64 now)
{
	c->opened = 1;
	struct tg_tcp_event *e = reserve(TG_TCP_OPEN);
	if (!e)
		return;
	fill_addrs(e, sk);
	fill_conn(e, c);
	e->state = S_ESTABLISHED;
	e->duration_ns = now - c->start_ns; /* client: handshake time; server: time until accepted */
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tg_tcp_state, const struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u64 key = (__u64)sk;
	__u64 now = bpf_ktime_get_ns();

	if (newstate == S_SYN_SENT) {
		/* connect(): process context, so the caller is the owner. */
		if (self_pid && (bpf_get_current_pid_tgid() >> 32) == self_pid)
			return 0;
		struct conn c = { .start_ns = now, .role = TG_TCP_ROLE_CLIENT };
		set_current(&c);
		if (bpf_map_update_elem(&tg_tcp_conns, &key, &c, BPF_ANY))
			stat_inc(TG_TCP_STAT_MAP_FULL);
		return 0;
	}

	struct conn *c = bpf_map_lookup_elem(&tg_tcp_conns, &key);
	if (newstate == S_ESTABLISHED) {
		if (oldstate == S_SYN_RECV) {
			/* Passive open completes in softirq: whoever runs now is not the owner. Its OPEN
			 * waits for the process that accepts it (or for its close, if none does). */
			struct conn n = { .start_ns = now, .established_ns = now, .role = TG_TCP_ROLE_SERVER };
			set_base(&n, sk);
			if (bpf_map_update_elem(&tg_tcp_conns, &key, &n, BPF_ANY))
				stat_inc(TG_TCP_STAT_MAP_FULL);
			return 0;
		}
		if (!c)
			return 0;
		c->established_ns = now;
		set_base(c, sk);
		emit_open(sk, c, now);
		return 0;
	}
	if (!c)
		return 0;
	if (newstate == S_FIN_WAIT1 || newstate == S_LAST_ACK) {
		/* Only close()/shutdown() make these transitions: process context, the owner. */
		if (!c->pid)
			set_current(c);
		return 0;
	}
	if (newstate != S_CLOSE)
		return 0;

	if (c->established_ns && !c->opened)
		emit_open(sk, c, now); /* a server connection nobody accepted */
	struct tg_tcp_event *e = reserve(c->established_ns ? TG_TCP_CLOSE : TG_TCP_FAIL);
	if (e) {
		fill_addrs(e, sk);
		fill_conn(e, c);
		e->state = oldstate;
		e->duration_ns = now - (c->established_ns ? c->established_ns : c->start_ns);
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;
		if (c->established_ns)
			payload_bytes(e, c, sk);
		e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
		e->rttvar_us = BPF_CORE_READ(tp, mdev_us) >> 2;
		e->retrans = BPF_CORE_READ(tp, total_retrans);
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&tg_tcp_conns, &key);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tg_tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 srtt = BPF_CORE_READ(tp, srtt_us) >> 3;
	if (!srtt)
		return 0; /* no RTT sample yet */
	hist_add(0, srtt);
	hist_add(TG_TCP_HIST_SLOTS, BPF_CORE_READ(tp, mdev_us) >> 2);
	stat_inc(TG_TCP_STAT_PROBES);
	return 0;
}

static __always_inline int sk_event(const struct sock *sk, __u32 type)
{
	__u64 key = (__u64)sk;
	struct tg_tcp_event *e = reserve(type);
	if (!e)
		return 0;
	fill_addrs(e, sk);
	fill_conn(e, bpf_map_lookup_elem(&tg_tcp_conns, &key));
	e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Fires from the retransmit timer, TLP and fast retransmit alike: one per segment resent, as
 * TcpRetransSegs counts them. The record stores both ends v4-mapped in the *_v6 fields. */
SEC("tracepoint/tcp/tcp_retransmit_skb")
int tg_tcp_retransmit(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	if (bpf_core_field_exists(ctx->err) && ctx->err)
		return 0; /* not sent: nothing went on the wire */
	struct tg_tcp_event *e = reserve(TG_TCP_RETRANS);
	if (!e)
		return 0;
	e->family = ctx->family;
	e->lport = ctx->sport;
	e->rport = ctx->dport;
	bpf_probe_read_kernel(e->laddr, 16, ctx->saddr_v6);
	bpf_probe_read_kernel(e->raddr, 16, ctx->daddr_v6);
	e->state = ctx->state;
	__u64 key = (__u64)ctx->skaddr;
	fill_conn(e, bpf_map_lookup_elem(&tg_tcp_conns, &key));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* A SYN-ACK resent for a connection still in the listener's queue (its first was lost, or the
 * client resent its SYN): tcp_rtx_synack counts it in TcpRetransSegs like any resent segment but
 * never passes tcp_retransmit_skb. The connection has no socket of its own yet (skaddr is the
 * listener): the server role and both ends, no process (none has accepted it). */
SEC("tracepoint/tcp/tcp_retransmit_synack")
int tg_tcp_retransmit_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	struct tg_tcp_event *e = reserve(TG_TCP_RETRANS);
	if (!e)
		return 0;
	/* The request's own ends: the record's family (and so which of its address fields hold the
	 * ends) is the listener's, AF_INET6 for a dual-stack (::) one, while an IPv4 client's request
	 * holds IPv4 addresses only. */
	const struct sock_common *rc = &((const struct request_sock *)ctx->req)->__req_common;
	__u16 family = BPF_CORE_READ(rc, skc_family);
	e->family = family;
	e->lport = ctx->sport;
	e->rport = ctx->dport;
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->laddr, rc, skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->raddr, rc, skc_v6_daddr);
	} else {
		__u32 l = BPF_CORE_READ(rc, skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(rc, skc_daddr);
		e->laddr[10] = 0xff; e->laddr[11] = 0xff;
		e->raddr[10] = 0xff; e->raddr[11] = 0xff;
		__builtin_memcpy(&e->laddr[12], &l, 4);
		__builtin_memcpy(&e->raddr[12], &r, 4);
	}
	e->state = S_SYN_RECV;
	e->role = TG_TCP_ROLE_SERVER;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tg_tcp_reset_rx, struct sock *sk)
{
	return sk_event(sk, TG_TCP_RESET_RX);
}

/* sockaddr_in / sockaddr_in6 as the tracepoint stores them (28 bytes). */
static __always_inline void from_sockaddr(const __u8 *sa, __u8 addr[16], __u16 *port, __u16 *family)
{
	__u16 f = sa[0] | (sa[1] << 8);
	*family = f;
	*port = (sa[2] << 8) | sa[3];
	if (f == AF_INET6) {
		__builtin_memcpy(addr, sa + 8, 16);
	} else {
		addr[10] = 0xff; addr[11] = 0xff;
		__builtin_memcpy(addr + 12, sa + 4, 4);
	}
}

SEC("tracepoint/tcp/tcp_send_reset")
int tg_tcp_reset_tx(struct trace_event_raw_tcp_send_reset *ctx)
{
	struct tg_tcp_event *e = reserve(TG_TCP_RESET_TX);
	if (!e)
		return 0;
	__u8 sa[28];
	__u16 fam = 0;
	/* saddr is the end sending the reset (the tracepoint reverses an skb's tuple). */
	bpf_probe_read_kernel(sa, sizeof(sa), ctx->saddr);
	from_sockaddr(sa, e->laddr, &e->lport, &fam);
	bpf_probe_read_kernel(sa, sizeof(sa), ctx->daddr);
	from_sockaddr(sa, e->raddr, &e->rport, &e->family);
	e->state = ctx->state;
	__u64 key = (__u64)ctx->skaddr;
	if (key)
		fill_conn(e, bpf_map_lookup_elem(&tg_tcp_conns, &key));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* accept()/accept4() return the new connection's fd in the process that owns it: a server
 * connection gets its process, and its OPEN record goes out with it. */
static __always_inline int accepted(long fd)
{
	if (fd < 0 || (self_pid && (bpf_get_current_pid_tgid() >> 32) == self_pid))
		return 0;
	struct file *f = current_fd_file(fd);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u64 key = (__u64)sk;
	struct conn *c = bpf_map_lookup_elem(&tg_tcp_conns, &key);
	if (!c || c->opened || c->role != TG_TCP_ROLE_SERVER)
		return 0;
	set_current(c);
	emit_open(sk, c, bpf_ktime_get_ns());
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tg_tcp_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tg_tcp_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}
