// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket tracer: TCP payload and connection lifecycle, and UDP datagrams, from syscall
 * tracepoints only (this kernel family has no kprobes and refuses fentry). Enter handlers
 * remember the user buffer, exit handlers know how many bytes moved and copy them from user
 * memory; sendfile/splice move bytes inside the kernel, so their records carry the count
 * without payload. A UDP socket is tracked like a TCP one (by pid+fd, lazily, role unknown); each
 * datagram's event carries its own peer, and the host splits the socket into flows by peer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "telegen.h"
#include "socket.h"
#include "common.h"
#include "thread_call.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define MSG_PEEK 2

/* Set by the loader before load. */
TG_PID_FILTER
const volatile __u32 capture_max = TG_CAPTURE_DEFAULT;
/* Bytes kept from the end of a TCP call longer than capture_max, as a second record; 0: none. */
const volatile __u32 capture_tail = TG_CAPTURE_TAIL_DEFAULT;
const volatile __u32 wakeup_bytes = TG_WAKEUP_BYTES_DEFAULT; /* 0: wake on every record */

/* Anchors: user space reads these types from BTF (scripts/gen-layout.js), so they must be
 * referenced by something the compiler keeps. */
struct tg_data_event *tg_anchor_data __attribute__((used));
struct tg_conn_event *tg_anchor_conn __attribute__((used));
struct tg_go_link_event *tg_anchor_go_link __attribute__((used));
enum tg_event_type tg_anchor_ev __attribute__((used));
enum tg_dir tg_anchor_dir __attribute__((used));
enum tg_data_flags tg_anchor_flags __attribute__((used));
enum tg_role tg_anchor_role __attribute__((used));
enum tg_proto tg_anchor_proto __attribute__((used));
enum tg_stat tg_anchor_stat __attribute__((used));
enum tg_socket_limits tg_anchor_limits __attribute__((used));

/* Connection ids only need to be unique while this object is loaded. */
__u64 conn_seq = 0;

struct conn_key {
	__u32 pid;
	__u32 fd;
};

struct conn_state {
	struct tg_conn_info info;
	__u64 file;   /* the struct file the fd held when tracked: an fd reused after a close we
	               * did not see (close_range, dup2, exit) must not inherit this connection */
	__u64 pos[2]; /* bytes moved so far per enum tg_dir; also the totals reported at close */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_CONN_MAX_DEFAULT);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} tg_conns SEC(".maps");

enum call_kind {
	CALL_BUF = 1,     /* (buf, len) */
	CALL_IOV = 2,     /* (iov, iovcnt) */
	CALL_CONNECT = 3,
	CALL_ACCEPT = 4,
	CALL_MMSG = 5,    /* (mmsghdr vector, vlen): sendmmsg/recvmmsg, one event per message */
	CALL_NOCOPY = 6,  /* sendfile/splice: the kernel moved the bytes, none passed through user
			   * memory: a record without payload, so positions stay true */
};

/* Messages reported per sendmmsg/recvmmsg by the unrolled exits: resolvers send A+AAAA in one
 * call (glibc), dig one. With bpf_loop every message is (TG_MMSG_LOOP_MAX). */
#define TG_MMSG_MAX 4

/* Enter → exit hand-off, stored on the thread itself: no hashing on the hot path, and the
 * kernel frees it with the thread, so a missed exit cannot leak. kind == 0: nothing saved.
 * The TLS tracer reads the thread's last data socket from it (thread_call.h). */
TG_THREAD_CALLS_MAP(tg_calls);

/* Records are variable-sized, so they are assembled here and copied with bpf_ringbuf_output.
 * Twice the limit so "offset < limit, size <= limit" is provably in bounds. A plain array
 * indexed by CPU (resized by the loader) because per-CPU values are capped at 32 KiB. */
struct scratch {
	struct tg_data_event ev;
	__u8 payload[TG_CAPTURE_LIMIT * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct scratch);
} tg_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_RING_BYTES_DEFAULT);
} tg_ring SEC(".maps");

/* Processes that own tracked sockets, so their exit can be announced (an exit closes the
 * fds without the close() syscall we watch). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} tg_pids SEC(".maps");

TG_STATS_NOPREEMPT(tg_stats, TG_STAT_MAX)

static __always_inline void count_output(long err)
{
	stat_inc(err ? TG_STAT_RING_FULL : TG_STAT_EVENTS);
}

/* Waking the reader costs the producing syscall an irq_work and a wake-up: only do it once
 * enough is waiting; the reader also polls every few ms, which bounds the latency. Only the
 * record that crosses the threshold wakes (`before`: what was waiting without it): while the
 * reader is behind, it is awake anyway and further wake-ups would only cost the producers. */
static __always_inline __u64 wakeup_flag_after(__u64 before, __u64 record_bytes)
{
	if (!wakeup_bytes)
		return 0;
	return before < wakeup_bytes && before + record_bytes >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									       : BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 wakeup_flag(__u64 record_bytes)
{
	if (!wakeup_bytes)
		return 0;
	return wakeup_flag_after(bpf_ringbuf_query(&tg_ring, BPF_RB_AVAIL_DATA), record_bytes);
}

/* Runs on every read/write family call of every followed process. The task pointer is a BTF
 * one, so the walk to the fd array is plain loads (the verifier makes them fault-safe); only the
 * indexed slot needs the helper: 1 helper call where BPF_CORE_READ took 5. */
static __always_inline struct file *fd_file(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	if (!files)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline void v4_mapped(__u8 *dst, __u32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr, 4);
}

/* The struct sock behind a file if it is a TCP stream or UDP datagram socket over IPv4/IPv6
 * (udp_only: UDP only; tcp_only: TCP only), else NULL. Most fds a process reads are not
 * sockets: the inode mode answers that in two reads. */
static __always_inline struct sock *file_inet_sock(struct file *f, bool tcp_only)
{
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	short type = BPF_CORE_READ(sock, type);
	if (type != SOCK_STREAM && (tcp_only || type != SOCK_DGRAM))
		return NULL;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	if (type == SOCK_STREAM ? proto != IPPROTO_TCP : proto != IPPROTO_UDP)
		return NULL;
	return sk;
}

static __always_inline void sk_local(struct tg_conn_info *ci, struct sock *sk)
{
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET)
		v4_mapped(ci->laddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
	else
		BPF_CORE_READ_INTO(&ci->laddr, sk, __sk_common.skc_v6_rcv_saddr);
	ci->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
}

/* A datagram's peer: the syscall's sockaddr when it gave one (unconnected sockets: dnsmasq's
 * recvfrom/sendto, a resolver's sendto), else the connected peer. The local end is read now:
 * an unbound client socket gets its port at its first send, after it was tracked. */
static __always_inline void udp_ends(struct tg_conn_info *ci, struct sock *sk, __u64 uaddr)
{
	sk_local(ci, sk);
	if (uaddr) {
		struct {
			__u16 family;
			__u16 port; /* network order */
			__u32 v4;   /* sin_addr, or sin6_flowinfo */
		} head;
		if (!bpf_probe_read_user(&head, sizeof(head), (void *)uaddr)) {
			if (head.family == AF_INET) {
				v4_mapped(ci->raddr, head.v4);
				ci->rport = bpf_ntohs(head.port);
				return;
			}
			if (head.family == AF_INET6 &&
			    !bpf_probe_read_user(ci->raddr, sizeof(ci->raddr), (void *)(uaddr + 8))) {
				ci->rport = bpf_ntohs(head.port);
				return;
			}
		}
	}
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET)
		v4_mapped(ci->raddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	else
		BPF_CORE_READ_INTO(&ci->raddr, sk, __sk_common.skc_v6_daddr);
	ci->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
}

static __always_inline void fill_conn(struct tg_conn_info *ci, struct sock *sk, __u8 role)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	ci->conn_id = __sync_fetch_and_add(&conn_seq, 1) + 1;
	ci->cgroup_id = bpf_get_current_cgroup_id();
	ci->pid = id >> 32;
	ci->tid = (__u32)id;
	ci->family = family;
	ci->role = role;
	ci->proto = BPF_CORE_READ(sk, sk_protocol);
	if (family == AF_INET) {
		v4_mapped(ci->laddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		v4_mapped(ci->raddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		BPF_CORE_READ_INTO(&ci->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&ci->raddr, sk, __sk_common.skc_v6_daddr);
	}
	ci->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ci->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* The process name, not the thread's: runtimes name their worker threads. */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	bpf_probe_read_kernel_str(ci->comm, sizeof(ci->comm), &leader->comm);
}

static __always_inline void emit_conn(__u32 type, struct conn_state *st)
{
	struct tg_conn_event *e = bpf_ringbuf_reserve(&tg_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_STAT_RING_FULL);
		return;
	}
	e->type = type;
	e->_pad0 = 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->bytes_sent = st->pos[TG_DIR_EGRESS];
	e->bytes_recv = st->pos[TG_DIR_INGRESS];
	e->conn = st->info;
	e->conn.tid = (__u32)bpf_get_current_pid_tgid();
	bpf_ringbuf_submit(e, wakeup_flag(sizeof(*e)));
	stat_inc(TG_STAT_EVENTS);
}

static __always_inline struct conn_state *track(struct conn_key *k, struct file *f,
						struct sock *sk, __u8 role)
{
	struct conn_state st = {};

	fill_conn(&st.info, sk, role);
	st.file = (__u64)f;
	if (bpf_map_update_elem(&tg_conns, k, &st, BPF_ANY))
		return NULL;
	__u8 one = 1;
	bpf_map_update_elem(&tg_pids, &k->pid, &one, BPF_ANY);
	if (role != TG_ROLE_UNKNOWN) {
		stat_inc(TG_STAT_CONN_OPEN);
		emit_conn(TG_EV_CONN_OPEN, &st);
	}
	return bpf_map_lookup_elem(&tg_conns, k);
}

/* ---- enter side ---- */

static __always_inline int save_call(__u32 fd, __u64 buf, __u64 cnt, __u64 addr, __u8 kind,
				     __u8 dir)
{
	struct tg_thread_call *a = bpf_task_storage_get(&tg_calls, bpf_get_current_task_btf(), 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a)
		return 0;
	a->buf = buf;
	a->cnt = cnt;
	a->addr = addr;
	a->fd = fd;
	a->kind = kind;
	a->dir = dir;
	if (kind != CALL_CONNECT && kind != CALL_ACCEPT) {
		a->data_fd = fd;
		a->data_seq++;
	}
	return 0;
}

/* Whether fd is a TCP/UDP socket this tracer follows, tracking it now if it was not seen
 * opening (a connection older than the agent). */
static __always_inline bool data_fd_tracked(__u32 pid, __u64 fd)
{
	if ((__s64)fd < 0)
		return false;
	struct file *f = fd_file(fd);
	if (!f)
		return false;
	struct conn_key k = { .pid = pid, .fd = fd };
	struct conn_state *st = bpf_map_lookup_elem(&tg_conns, &k);
	if (st && st->file == (__u64)f)
		return true;
	/* Not seen opening: a connection older than the agent, or the fd now holds something
	 * else. */
	struct sock *sk = file_inet_sock(f, false);
	if (!sk) {
		if (st)
			bpf_map_delete_elem(&tg_conns, &k);
		return false;
	}
	return track(&k, f, sk, TG_ROLE_UNKNOWN) != NULL;
}

static __always_inline int data_enter(__u64 fd, __u64 buf, __u64 cnt, __u64 addr, __u8 kind,
				      __u8 dir)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!pid_wanted(pid) || cnt == 0 || !data_fd_tracked(pid, fd))
		return 0;
	return save_call(fd, buf, cnt, addr, kind, dir);
}

static __always_inline int msg_enter(__u64 fd, __u64 umsg, __u64 flags, __u8 dir)
{
	struct user_msghdr msg;

	if (dir == TG_DIR_INGRESS && (flags & MSG_PEEK))
		return 0;
	if (!pid_wanted(bpf_get_current_pid_tgid() >> 32))
		return 0;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)umsg))
		return 0;
	return data_enter(fd, (__u64)msg.msg_iov, msg.msg_iovlen, (__u64)msg.msg_name, CALL_IOV, dir);
}

SEC("tracepoint/syscalls/sys_enter_read")
int tg_in_read(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], 0, CALL_BUF, TG_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_write")
int tg_in_write(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], 0, CALL_BUF, TG_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int tg_in_readv(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], 0, CALL_IOV, TG_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int tg_in_writev(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], 0, CALL_IOV, TG_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int tg_in_sendto(struct trace_event_raw_sys_enter *ctx)
{
	/* dest_addr: the datagram's peer on an unconnected UDP socket (ignored for TCP). */
	return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[4], CALL_BUF,
			  TG_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int tg_in_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	/* A peek is read again later: reporting it would count the bytes twice. */
	if (ctx->args[3] & MSG_PEEK)
		return 0;
	/* src_addr is filled in by the kernel: read at exit. */
	return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[4], CALL_BUF,
			  TG_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int tg_in_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], 0, CALL_MMSG, TG_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvmmsg")
int tg_in_recvmmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[3] & MSG_PEEK)
		return 0;
	return data_enter(ctx->args[0], ctx->args[1], ctx->args[2], 0, CALL_MMSG, TG_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int tg_in_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return msg_enter(ctx->args[0], ctx->args[1], ctx->args[2], TG_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int tg_in_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return msg_enter(ctx->args[0], ctx->args[1], ctx->args[2], TG_DIR_INGRESS);
}

/* sendfile(out_fd, in_fd, offset, count): the file's bytes go out on out_fd inside the kernel
 * (nginx's static files; Go's io.Copy from an *os.File to a TCPConn). in_fd is never a socket:
 * sendfile reads regular files and block devices only. copy_file_range moves bytes between
 * regular files only: nothing for this tracer. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int tg_in_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ctx->args[0], 0, ctx->args[3], 0, CALL_NOCOPY, TG_DIR_EGRESS);
}

/* splice(fd_in, off_in, fd_out, off_out, len, flags): one end is a pipe. A socket as fd_out
 * sends (a proxy or file server splicing out of a pipe), as fd_in receives (a proxy splicing
 * a socket's bytes into a pipe). */
SEC("tracepoint/syscalls/sys_enter_splice")
int tg_in_splice(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 fd_in = ctx->args[0], fd_out = ctx->args[2], len = ctx->args[4];

	if (!pid_wanted(pid) || len == 0)
		return 0;
	if (data_fd_tracked(pid, fd_out))
		return save_call(fd_out, 0, len, 0, CALL_NOCOPY, TG_DIR_EGRESS);
	if (data_fd_tracked(pid, fd_in))
		return save_call(fd_in, 0, len, 0, CALL_NOCOPY, TG_DIR_INGRESS);
	return 0;
}

static __always_inline int lifecycle_enter(__u64 fd, __u8 kind)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!pid_wanted(pid) || (__s64)fd < 0)
		return 0;
	return save_call(fd, 0, 0, 0, kind, 0);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int tg_in_connect(struct trace_event_raw_sys_enter *ctx)
{
	return lifecycle_enter(ctx->args[0], CALL_CONNECT);
}

SEC("tracepoint/syscalls/sys_enter_accept")
int tg_in_accept(struct trace_event_raw_sys_enter *ctx)
{
	return lifecycle_enter(ctx->args[0], CALL_ACCEPT);
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int tg_in_accept4(struct trace_event_raw_sys_enter *ctx)
{
	return lifecycle_enter(ctx->args[0], CALL_ACCEPT);
}

/* Closed on enter: after the syscall the fd number is already free for reuse. */
SEC("tracepoint/syscalls/sys_enter_close")
int tg_in_close(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct conn_key k = { .pid = pid, .fd = ctx->args[0] };
	struct conn_state *st = bpf_map_lookup_elem(&tg_conns, &k);

	if (!st)
		return 0;
	/* A socket picked up lazily that never moved a byte (a listener, an idle keep-alive)
	 * was never announced; closing it is not news either. */
	if (st->info.role != TG_ROLE_UNKNOWN || st->pos[0] || st->pos[1]) {
		stat_inc(TG_STAT_CONN_CLOSE);
		emit_conn(TG_EV_CONN_CLOSE, st);
	}
	bpf_map_delete_elem(&tg_conns, &k);
	return 0;
}

/* ---- exit side ---- */

#define COPY_LIMIT TG_CAPTURE_LIMIT
#define COPY_IOV_MAX TG_IOV_MAX
#define COPY_IOV_LOOP_MAX TG_IOV_LOOP_MAX
#define COPY_FAULT TG_STAT_READ_FAULT
#include "copy_user.h"

/* How a data exit walks iovecs: it takes (buf, len) calls only, or walks iovecs with bpf_loop,
 * or unrolled (the twin loaded where the kernel has no bpf_loop; the loader picks one). */
enum iov_walk { WALK_NONE, WALK_LOOP, WALK_UNROLLED };

/* Why a tail: one long write often holds several protocol messages (a gRPC server's 300 KB
 * response is its DATA frames and the trailers' HEADERS in one sendmsg), and what ends the exchange
 * is at the end; a long read likewise ends with the frames that followed a big message. Of a TCP
 * call longer than capture_max, up to capture_tail bytes from its end become a second record: the
 * head record's orig_len stops where the tail begins, so the host reports exactly the bytes between
 * as lost and the decoder sees [head][gap][tail] (as bpf/include/tls_emit.h does for plaintext).
 * Not for UDP (a datagram is a unit: its end is no stream position) nor sendfile/splice (no
 * payload), and not with the unrolled iovec walk, which cannot reach a long call's last iovecs. */
static __always_inline __u64 tail_of(struct conn_state *st, struct tg_thread_call *a, __u64 moved, __u32 cap,
				     enum iov_walk walk)
{
	__u32 tail = capture_tail;
	if (!tail || moved <= cap || st->info.proto != IPPROTO_TCP || a->kind == CALL_NOCOPY ||
	    (a->kind == CALL_IOV && walk != WALK_LOOP))
		return 0;
	/* Never longer than the head: a capture_max lowered to cut what crosses the ring must cut
	 * the tails too (1 KiB heads with 16 KiB tails moved 16 KiB per TLS ciphertext read). */
	if (tail > cap)
		tail = cap;
	if (tail > TG_CAPTURE_LIMIT)
		tail = TG_CAPTURE_LIMIT;
	return moved - cap < tail ? moved - cap : tail;
}

static __always_inline void emit_data(struct conn_state *st, struct tg_thread_call *a, __u64 moved,
				      enum iov_walk walk)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&tg_scratch, &cpu);
	__u8 dir = a->dir & 1;

	/* Positions advance by what the syscall moved, captured or not, so the host sees
	 * exactly where bytes are missing. */
	__u64 pos = __sync_fetch_and_add(&st->pos[dir], moved);
	if (!s) {
		stat_inc(TG_STAT_RING_FULL);
		return;
	}

	__u32 cap = capture_max;
	if (cap > TG_CAPTURE_LIMIT)
		cap = TG_CAPTURE_LIMIT;
	__u32 want = moved < cap ? moved : cap;
	if (a->kind == CALL_NOCOPY)
		want = 0;
	__u64 tail_len = tail_of(st, a, moved, cap, walk);
	/* A ring that cannot take the record (the reader paused or behind) is seen before the
	 * payload is copied from user memory: counted as the failed output would count it. The
	 * 8 bytes are the ring's own record header. */
	__u64 ring_size = bpf_ringbuf_query(&tg_ring, BPF_RB_RING_SIZE);
	__u64 waiting = bpf_ringbuf_query(&tg_ring, BPF_RB_AVAIL_DATA);
	if (waiting + sizeof(s->ev) + want + 8 > ring_size) {
		stat_inc(TG_STAT_RING_FULL);
		return;
	}
	__u32 got = 0;
	if (a->kind == CALL_IOV && walk == WALK_LOOP)
		got = copy_iov_loop(s->payload, a->buf, a->cnt, want);
	else if (a->kind == CALL_IOV)
		got = copy_iov(s->payload, a->buf, a->cnt, want);
	else if (a->kind != CALL_NOCOPY)
		got = copy_user(s->payload, 0, a->buf, want);

	/* The head stands for every byte before the tail: its uncaptured rest is the gap. */
	__u64 head_span = moved - tail_len;
	s->ev.type = TG_EV_DATA;
	s->ev.dir = dir;
	s->ev.truncated = got < moved;
	s->ev.flags = 0;
	s->ev._pad0 = 0;
	s->ev.ts_ns = bpf_ktime_get_ns();
	s->ev.pos = pos;
	s->ev.len = got;
	s->ev.orig_len = head_span > 0xffffffffULL ? 0xffffffffU : head_span;
	s->ev.conn = st->info;
	s->ev.conn.tid = (__u32)bpf_get_current_pid_tgid();
	if (st->info.proto == IPPROTO_UDP) {
		struct sock *sk = file_inet_sock(fd_file(a->fd), false);
		if (sk)
			udp_ends(&s->ev.conn, sk, a->addr);
	}
	if (got < moved && a->kind != CALL_NOCOPY)
		stat_inc(TG_STAT_TRUNCATED);

	__u64 size = got;
	CLAMP_REG(size, TG_CAPTURE_LIMIT);
	long err = bpf_ringbuf_output(&tg_ring, s, sizeof(s->ev) + size, wakeup_flag_after(waiting, sizeof(s->ev) + size));
	count_output(err);
	if (!tail_len)
		return;

	/* The record just written is in the ring (or was refused): what waits now includes it. */
	waiting = bpf_ringbuf_query(&tg_ring, BPF_RB_AVAIL_DATA);
	if (waiting + sizeof(s->ev) + tail_len + 8 > ring_size) {
		stat_inc(TG_STAT_RING_FULL);
		return;
	}
	CLAMP_REG(tail_len, TG_CAPTURE_LIMIT);
	if (a->kind == CALL_IOV && walk == WALK_LOOP)
		got = copy_iov_loop_from(s->payload, a->buf, a->cnt, moved - tail_len, tail_len);
	else
		got = copy_user(s->payload, 0, a->buf + moved - tail_len, tail_len);
	s->ev.truncated = got < tail_len;
	s->ev.pos = pos + moved - tail_len;
	s->ev.len = got;
	s->ev.orig_len = tail_len;
	size = got;
	CLAMP_REG(size, TG_CAPTURE_LIMIT);
	err = bpf_ringbuf_output(&tg_ring, s, sizeof(s->ev) + size, wakeup_flag_after(waiting, sizeof(s->ev) + size));
	count_output(err);
	if (!err)
		stat_inc(TG_STAT_TAILS);
}

static __always_inline struct tg_thread_call *take_call(struct tg_thread_call *out)
{
	struct tg_thread_call *a = bpf_task_storage_get(&tg_calls, bpf_get_current_task_btf(), 0, 0);
	if (!a || !a->kind)
		return NULL;
	*out = *a;
	a->kind = 0;
	return out;
}

/* sendmmsg/recvmmsg with bpf_loop: one step per message, every message the call moved. */
struct mmsg_walk {
	struct conn_state *st;
	__u64 vec;
	__u64 n;
	__u32 fd;
	__u8 dir;
	__u8 _pad[3];
};

static long mmsg_step(__u64 i, struct mmsg_walk *w)
{
	struct conn_state *st = w->st;
	struct mmsghdr m;
	struct tg_thread_call one = { .fd = w->fd, .kind = CALL_IOV, .dir = w->dir };

	if (i >= w->n || !st)
		return 1;
	if (bpf_probe_read_user(&m, sizeof(m), (void *)(w->vec + i * sizeof(m)))) {
		stat_inc(TG_STAT_READ_FAULT);
		return 1;
	}
	if (!m.msg_len)
		return 0;
	one.buf = (__u64)m.msg_hdr.msg_iov;
	one.cnt = m.msg_hdr.msg_iovlen;
	one.addr = (__u64)m.msg_hdr.msg_name;
	emit_data(st, &one, m.msg_len, WALK_LOOP);
	return 0;
}

static __always_inline int data_exit(struct trace_event_raw_sys_exit *ctx, __u8 kind, enum iov_walk walk)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tg_thread_call a;

	/* The kind check guards against an enter whose exit we missed (a program that failed
	 * to attach): never read a connect()'s arguments as a buffer, nor a read's as iovecs. */
	if (!take_call(&a) || a.kind != kind)
		return 0;
	long ret = ctx->ret;
	if (ret <= 0)
		return 0;
	struct conn_key k = { .pid = id >> 32, .fd = a.fd };
	struct conn_state *st = bpf_map_lookup_elem(&tg_conns, &k);
	if (!st)
		return 0;
	if (kind != CALL_MMSG) {
		emit_data(st, &a, ret, walk);
		return 0;
	}
	/* ret messages moved; the kernel wrote each one's byte count into its msg_len. */
	if (walk == WALK_LOOP) {
		struct mmsg_walk w = { .st = st, .vec = a.buf, .n = ret < a.cnt ? ret : a.cnt, .fd = a.fd, .dir = a.dir };

		bpf_loop(w.n < TG_MMSG_LOOP_MAX ? w.n : TG_MMSG_LOOP_MAX, mmsg_step, &w, 0);
		return 0;
	}
	for (int i = 0; i < TG_MMSG_MAX; i++) {
		struct mmsghdr m;
		struct tg_thread_call one = { .fd = a.fd, .kind = CALL_IOV, .dir = a.dir };

		if (i >= ret || i >= a.cnt)
			break;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)(a.buf + i * sizeof(m)))) {
			stat_inc(TG_STAT_READ_FAULT);
			break;
		}
		if (!m.msg_len)
			continue;
		one.buf = (__u64)m.msg_hdr.msg_iov;
		one.cnt = m.msg_hdr.msg_iovlen;
		one.addr = (__u64)m.msg_hdr.msg_name;
		emit_data(st, &one, m.msg_len, walk);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int tg_out_read(struct trace_event_raw_sys_exit *ctx) { return data_exit(ctx, CALL_BUF, WALK_NONE); }

SEC("tracepoint/syscalls/sys_exit_write")
int tg_out_write(struct trace_event_raw_sys_exit *ctx) { return data_exit(ctx, CALL_BUF, WALK_NONE); }

SEC("tracepoint/syscalls/sys_exit_sendto")
int tg_out_sendto(struct trace_event_raw_sys_exit *ctx) { return data_exit(ctx, CALL_BUF, WALK_NONE); }

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int tg_out_recvfrom(struct trace_event_raw_sys_exit *ctx) { return data_exit(ctx, CALL_BUF, WALK_NONE); }

/* sendfile/splice: ret bytes moved, none copied: the record says where and how many (len 0,
 * orig_len ret, truncated), and the host reports them to the decoder as a gap. */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int tg_out_sendfile64(struct trace_event_raw_sys_exit *ctx) { return data_exit(ctx, CALL_NOCOPY, WALK_NONE); }

SEC("tracepoint/syscalls/sys_exit_splice")
int tg_out_splice(struct trace_event_raw_sys_exit *ctx) { return data_exit(ctx, CALL_NOCOPY, WALK_NONE); }

/* The iovec calls, each twice: tg_out_X walks with bpf_loop, tg_out_X_unrolled (same
 * tracepoint) walks TG_IOV_MAX iovecs unrolled; the loader loads one of the two. */
#define IOV_EXIT(name, kind)								\
	SEC("tracepoint/syscalls/sys_exit_" #name)					\
	int tg_out_##name(struct trace_event_raw_sys_exit *ctx)			\
	{										\
		return data_exit(ctx, kind, WALK_LOOP);					\
	}										\
	SEC("tracepoint/syscalls/sys_exit_" #name)					\
	int tg_out_##name##_unrolled(struct trace_event_raw_sys_exit *ctx)		\
	{										\
		return data_exit(ctx, kind, WALK_UNROLLED);				\
	}

IOV_EXIT(readv, CALL_IOV)
IOV_EXIT(writev, CALL_IOV)
IOV_EXIT(sendmsg, CALL_IOV)
IOV_EXIT(recvmsg, CALL_IOV)
IOV_EXIT(sendmmsg, CALL_MMSG)
IOV_EXIT(recvmmsg, CALL_MMSG)

static __always_inline int open_exit(struct trace_event_raw_sys_exit *ctx, __u8 want_kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tg_thread_call a;

	if (!take_call(&a) || a.kind != want_kind)
		return 0;
	long ret = ctx->ret;
	__u32 fd;
	__u8 role;
	if (want_kind == CALL_CONNECT) {
		/* Non-blocking connects (Node, curl) return EINPROGRESS with the 4-tuple set. */
		if (ret != 0 && ret != -EINPROGRESS)
			return 0;
		fd = a.fd;
		role = TG_ROLE_CLIENT;
	} else {
		if (ret < 0)
			return 0;
		fd = ret;
		role = TG_ROLE_SERVER;
	}
	struct file *f = fd_file(fd);
	/* UDP sockets are tracked at their first datagram: connect() on one is no news. */
	struct sock *sk = file_inet_sock(f, true);
	if (!sk)
		return 0;
	struct conn_key k = { .pid = id >> 32, .fd = fd };
	track(&k, f, sk, role);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int tg_out_connect(struct trace_event_raw_sys_exit *ctx) { return open_exit(ctx, CALL_CONNECT); }

SEC("tracepoint/syscalls/sys_exit_accept")
int tg_out_accept(struct trace_event_raw_sys_exit *ctx) { return open_exit(ctx, CALL_ACCEPT); }

SEC("tracepoint/syscalls/sys_exit_accept4")
int tg_out_accept4(struct trace_event_raw_sys_exit *ctx) { return open_exit(ctx, CALL_ACCEPT); }

/* Exit closes a process's fds without the close() we watch: without this, every short-lived
 * client would leave its connections in tg_conns until LRU eviction (issue 12 churn test). */
#define TG_EXIT_FD_WORDS 4096 /* 262144 fds; beyond that the LRU reclaims */

struct exit_fds {
	__u32 pid;
	unsigned long *open_fds;
};

static long forget_fd_word(__u64 i, struct exit_fds *c)
{
	unsigned long w = 0;

	if (bpf_probe_read_kernel(&w, sizeof(w), c->open_fds + i) || !w)
		return 0;
	for (__u32 b = 0; b < 64; b++) {
		if (!(w & (1UL << b)))
			continue;
		struct conn_key k = { .pid = c->pid, .fd = (__u32)(i * 64 + b) };
		bpf_map_delete_elem(&tg_conns, &k);
	}
	return 0;
}

static __always_inline void forget_conns(struct task_struct *task, __u32 pid)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);

	if (!fdt)
		return;
	struct exit_fds c = { .pid = pid, .open_fds = BPF_CORE_READ(fdt, open_fds) };
	__u32 words = (BPF_CORE_READ(fdt, max_fds) + 63) / 64;
	if (words > TG_EXIT_FD_WORDS)
		words = TG_EXIT_FD_WORDS;
	bpf_loop(words, forget_fd_word, &c, 0);
}

SEC("tracepoint/sched/sched_process_exit")
int tg_proc_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	/* Fires per thread; only the last one out takes the process's sockets with it. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	if (!bpf_map_lookup_elem(&tg_pids, &pid))
		return 0;
	bpf_map_delete_elem(&tg_pids, &pid);
	forget_conns(task, pid);

	struct tg_conn_event *e = bpf_ringbuf_reserve(&tg_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_STAT_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = TG_EV_PROC_EXIT;
	e->ts_ns = bpf_ktime_get_ns();
	e->conn.pid = pid;
	e->conn.tid = (__u32)id;
	e->conn.cgroup_id = bpf_get_current_cgroup_id();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	bpf_probe_read_kernel_str(e->conn.comm, sizeof(e->conn.comm), &leader->comm);
	bpf_ringbuf_submit(e, wakeup_flag(sizeof(*e)));
	stat_inc(TG_STAT_EVENTS);
	return 0;
}
