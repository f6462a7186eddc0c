// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Application log capture: write()/writev() on fd 1 and 2 by selected processes (a pid in
 * tg_logs_pids, or a process whose name is in tg_logs_comms; the host fills both) and by the
 * processes they fork, to the stdout/stderr those inherited (tg_logs_heirs). The buffer is
 * remembered at syscall entry and read at exit, so only bytes the kernel accepted are reported
 * (a non-blocking stdout that returns EAGAIN is retried by the program and must not appear
 * twice). A network socket on fd 1/2 is no log (an inetd-style service's connection); a Unix one
 * is (journald's stream). Its own object, apart from the socket tracer, so it can be switched off
 * alone. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "logs.h"
#include "common.h"
#include "fd_file.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 self_pid = 0;
const volatile __u32 capture_max = 1024;
/* 1: a process that accepts a TCP connection is selected from then on (a service), so the lines
 * it prints while serving its very first request are captured too. */
const volatile __u32 select_servers = 0;

struct tg_logs_event *tg_anchor_logs_event __attribute__((used));
enum tg_logs_stat tg_anchor_logs_stat __attribute__((used));
enum tg_logs_limits tg_anchor_logs_limits __attribute__((used));

enum { CALL_WRITE = 1, CALL_WRITEV = 2 };

struct pending {
	__u64 buf;  /* write: the buffer; writev: the iovec array */
	__u32 cnt;  /* writev: iovec count */
	__u16 fd;
	__u16 kind; /* 0 = none in flight */
};

struct comm_key {
	char comm[16];
};

struct scratch {
	struct tg_logs_event ev;
	/* Twice the limit: a copy starts below TG_LOGS_DATA_MAX and is at most that long, which the
	 * verifier can see without knowing how the two relate. */
	__u8 data[TG_LOGS_DATA_MAX * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_LOGS_PIDS_MAX_DEFAULT);
	__type(key, __u32);
	__type(value, __u8);
} tg_logs_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_LOGS_COMMS_MAX);
	__type(key, struct comm_key);
	__type(value, __u8);
} tg_logs_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending);
} tg_logs_calls SEC(".maps");

/* A process forked by a selected one (PostgreSQL's backends, forked by the postmaster that
 * accepted; a shell-out): the stdout and stderr it inherited, the only files it writes logs to.
 * A child whose stdout the parent made a pipe before exec writes data to the parent there. */
struct heir {
	__u64 out; /* struct file * of fd 1 and 2 at fork (0: none) */
	__u64 err;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_LOGS_PIDS_MAX_DEFAULT);
	__type(key, __u32);
	__type(value, struct heir);
} tg_logs_heirs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} tg_logs_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_LOGS_RING_BYTES_DEFAULT);
} tg_logs_ring SEC(".maps");

TG_STATS_NOPREEMPT(tg_logs_stats, TG_LOGS_STAT_MAX)

static __always_inline void leader_comm(char *out)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	bpf_probe_read_kernel_str(out, 16, &leader->comm);
}

static __always_inline int wanted(__u32 pid)
{
	if (pid == self_pid)
		return 0;
	if (bpf_map_lookup_elem(&tg_logs_pids, &pid))
		return 1;
	struct comm_key k = {};
	leader_comm(k.comm);
	return bpf_map_lookup_elem(&tg_logs_comms, &k) != 0;
}

/* The struct file behind one of the current process's fds (0 when it is not open). */
static __always_inline __u64 fd_file(__u32 fd)
{
	return (__u64)current_fd_file(fd);
}

/* An heir's write counts when it goes to the file it inherited on that fd. */
static __always_inline int heir_writes_log(__u32 pid, __u32 fd)
{
	struct heir *h = bpf_map_lookup_elem(&tg_logs_heirs, &pid);
	if (!h)
		return 0;
	__u64 f = fd_file(fd);
	return f && f == (fd == 1 ? h->out : h->err);
}

/* fork/clone of a new process (not a thread) by a selected process or an heir: the child is an
 * heir of the stdout/stderr its parent logs to (an heir's own inherited ones). Runs in the parent. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(tg_logs_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 cpid = BPF_CORE_READ(child, pid);
	if (BPF_CORE_READ(child, tgid) != cpid)
		return 0;
	__u32 ppid = BPF_CORE_READ(parent, tgid);
	struct heir h = {};
	struct heir *ph = bpf_map_lookup_elem(&tg_logs_heirs, &ppid);
	if (ph) {
		h = *ph;
	} else if (wanted(ppid)) {
		h.out = fd_file(1);
		h.err = fd_file(2);
	} else {
		return 0;
	}
	if (bpf_map_update_elem(&tg_logs_heirs, &cpid, &h, BPF_ANY))
		stat_inc(TG_LOGS_STAT_PIDS_FULL);
	return 0;
}

#ifndef S_IFMT
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#endif
#ifndef AF_INET
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#endif

/* The socket behind f, or NULL when f is no socket. */
static __always_inline struct socket *file_socket(struct file *f)
{
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	return BPF_CORE_READ(f, private_data);
}

/* Whether fd of the current process is a TCP (inet stream) socket. */
static __always_inline int is_inet_stream(__u32 fd)
{
	struct socket *sock = file_socket(current_fd_file(fd));
	if (!sock || BPF_CORE_READ(sock, type) != 1 /* SOCK_STREAM */)
		return 0;
	__u16 family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6;
}

/* An inetd-style service (systemd's Accept=yes, inetd, socat's EXEC with nofork) has its
 * connection on fd 0 and 1: what it writes there is its protocol, not a log. Only a Unix socket
 * on fd 1/2 is a log stream: journald's (systemd's StandardOutput=journal) or a parent's stdio
 * (libuv, so Node's child_process, makes them socketpairs). */
static __always_inline int is_network_socket(__u32 fd)
{
	struct socket *sock = file_socket(current_fd_file(fd));
	return sock && BPF_CORE_READ(sock, sk, __sk_common.skc_family) != AF_UNIX;
}

static __always_inline int enter(__u64 fd, __u64 buf, __u64 cnt, __u16 kind)
{
	/* Most writes are not to stdout/stderr: one compare, no map lookup. */
	if (fd != 1 && fd != 2)
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!wanted(pid) && !heir_writes_log(pid, fd))
		return 0;
	if (is_network_socket(fd))
		return 0;
	struct pending *p = bpf_task_storage_get(&tg_logs_calls, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return 0;
	p->buf = buf;
	p->cnt = cnt;
	p->fd = fd;
	p->kind = kind;
	return 0;
}

#define COPY_LIMIT TG_LOGS_DATA_MAX
#define COPY_IOV_MAX TG_LOGS_IOV_MAX
#define COPY_IOV_LOOP_MAX TG_LOGS_IOV_LOOP_MAX
#define COPY_FAULT TG_LOGS_STAT_READ_FAULT
#include "copy_user.h"

/* loop: writev's iovecs are walked with bpf_loop (5.17+), every one the call took; otherwise
 * the first TG_LOGS_IOV_MAX unrolled (the twin the host attaches where bpf_loop is missing). */
static __always_inline int leave(long ret, int loop)
{
	struct pending *p = bpf_task_storage_get(&tg_logs_calls, bpf_get_current_task_btf(), 0, 0);
	if (!p || !p->kind)
		return 0;
	struct pending in = *p;
	p->kind = 0;
	if (ret <= 0)
		return 0;

	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&tg_logs_scratch, &zero);
	if (!s)
		return 0;
	__u32 cap = capture_max;
	if (cap > TG_LOGS_DATA_MAX)
		cap = TG_LOGS_DATA_MAX;
	__u32 want = (__u64)ret < cap ? (__u32)ret : cap;
	__u32 got;
	if (in.kind != CALL_WRITEV)
		got = copy_user(s->data, 0, in.buf, want);
	else if (loop)
		got = copy_iov_loop(s->data, in.buf, in.cnt, want);
	else
		got = copy_iov(s->data, in.buf, in.cnt, want);
	if (got < (__u64)ret)
		stat_inc(TG_LOGS_STAT_TRUNCATED);

	__u64 id = bpf_get_current_pid_tgid();
	s->ev.ts_ns = bpf_ktime_get_ns();
	s->ev.pid = id >> 32;
	s->ev.tid = (__u32)id;
	s->ev.fd = in.fd;
	s->ev.len = got;
	s->ev.orig_len = ret;
	leader_comm(s->ev.comm);

	__u64 size = got;
	CLAMP_REG(size, TG_LOGS_DATA_MAX);
	/* Drained by polling: no wake-ups, which would cost every writer. */
	if (bpf_ringbuf_output(&tg_logs_ring, s, sizeof(s->ev) + size, BPF_RB_NO_WAKEUP))
		stat_inc(TG_LOGS_STAT_RING_FULL);
	else
		stat_inc(TG_LOGS_STAT_EVENTS);
	return 0;
}

static __always_inline int accepted(long ret)
{
	if (!select_servers || ret < 0)
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (pid == self_pid || bpf_map_lookup_elem(&tg_logs_pids, &pid))
		return 0;
	if (!is_inet_stream(ret))
		return 0;
	__u8 one = 1;
	if (bpf_map_update_elem(&tg_logs_pids, &pid, &one, BPF_NOEXIST) == -7 /* -E2BIG */)
		stat_inc(TG_LOGS_STAT_PIDS_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tg_logs_out_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tg_logs_out_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_write")
int tg_logs_in_write(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], ctx->args[1], 0, CALL_WRITE);
}

SEC("tracepoint/syscalls/sys_exit_write")
int tg_logs_out_write(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int tg_logs_in_writev(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], ctx->args[1], ctx->args[2], CALL_WRITEV);
}

/* Node's stdout to a pipe writes what piled up while the pipe was full as one writev of many
 * iovecs (one per console.log); bpf_loop walks them all. */
SEC("tracepoint/syscalls/sys_exit_writev")
int tg_logs_out_writev(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret, 1);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int tg_logs_out_writev_unrolled(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret, 0);
}
