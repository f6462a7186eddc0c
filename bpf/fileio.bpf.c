// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* File I/O tracer from syscall tracepoints: openat remembers fd → path for the files opened
 * while tracing; read/write/pread64/pwrite64/fsync/close on those fds are timed (enter → exit)
 * and reported through a ring. Sockets, pipes and files opened before the tracer started have no
 * fd entry and cost one hash lookup. Paths under /proc, /sys and /dev are skipped at open: they
 * are kernel interfaces, not file data, and every ps or top would otherwise flood the ring.
 * Entries of processes that exit without closing are swept from user space. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "fileio.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 self_pid = 0;

struct tg_fileio_event *tg_anchor_fileio_event __attribute__((used));
enum tg_fileio_op tg_anchor_fileio_op __attribute__((used));
enum tg_fileio_stat tg_anchor_fileio_stat __attribute__((used));
enum tg_fileio_limits tg_anchor_fileio_limits __attribute__((used));

struct fd_key {
	__u32 pid;
	__u32 fd;
};

struct file_path {
	char path[TG_FILEIO_PATH_LEN];
};

struct inflight {
	__u64 ts;
	__u64 arg; /* openat: the user pointer to the name; others: the fd */
	__u32 op;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_FILEIO_FILES_MAX_DEFAULT);
	__type(key, struct fd_key);
	__type(value, struct file_path);
} tg_fileio_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct inflight);
} tg_fileio_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_FILEIO_RING_BYTES_DEFAULT);
} tg_fileio_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_FILEIO_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tg_fileio_stats SEC(".maps");

static __always_inline void stat_inc(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&tg_fileio_stats, &i);
	if (v)
		*v += 1;
}

static __always_inline int enter(__u32 op, __u64 arg, int need_fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = id;
	if (pid == self_pid)
		return 0;
	if (need_fd) {
		struct fd_key k = { .pid = pid, .fd = arg };
		if (!bpf_map_lookup_elem(&tg_fileio_files, &k))
			return 0;
	}
	struct inflight f = { .ts = bpf_ktime_get_ns(), .arg = arg, .op = op };
	bpf_map_update_elem(&tg_fileio_inflight, &tid, &f, BPF_ANY);
	return 0;
}

static __always_inline int pseudo_fs(const char *p)
{
	if (p[0] != '/')
		return 0;
	if (p[1] == 'p' && p[2] == 'r' && p[3] == 'o' && p[4] == 'c' && (p[5] == '/' || p[5] == 0))
		return 1;
	if (((p[1] == 's' && p[2] == 'y' && p[3] == 's') || (p[1] == 'd' && p[2] == 'e' && p[3] == 'v'))
	    && (p[4] == '/' || p[4] == 0))
		return 1;
	return 0;
}

static __always_inline int leave(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = id;
	struct inflight *f = bpf_map_lookup_elem(&tg_fileio_inflight, &tid);
	if (!f)
		return 0;
	struct inflight in = *f;
	bpf_map_delete_elem(&tg_fileio_inflight, &tid);
	struct file_path p = {};
	if (in.op == TG_FILEIO_OPEN) {
		bpf_probe_read_user_str(p.path, sizeof(p.path), (const void *)in.arg);
		if (pseudo_fs(p.path))
			return 0;
	}
	struct tg_fileio_event *e = bpf_ringbuf_reserve(&tg_fileio_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_FILEIO_STAT_RING_FULL);
	} else {
		e->op = in.op;
		e->pid = pid;
		e->latency_ns = bpf_ktime_get_ns() - in.ts;
		e->ret = ret;
		e->_pad0 = 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		e->path[0] = 0;
	}
	if (in.op == TG_FILEIO_OPEN) {
		if (e) {
			e->fd = ret;
			__builtin_memcpy(e->path, p.path, sizeof(e->path));
		}
		if (ret >= 0) {
			struct fd_key k = { .pid = pid, .fd = ret };
			if (bpf_map_update_elem(&tg_fileio_files, &k, &p, BPF_ANY))
				stat_inc(TG_FILEIO_STAT_MAP_FULL);
		}
	} else {
		struct fd_key k = { .pid = pid, .fd = in.arg };
		struct file_path *fp = bpf_map_lookup_elem(&tg_fileio_files, &k);
		if (e) {
			e->fd = in.arg;
			if (fp)
				__builtin_memcpy(e->path, fp->path, sizeof(e->path));
		}
		if (in.op == TG_FILEIO_CLOSE && ret == 0)
			bpf_map_delete_elem(&tg_fileio_files, &k);
	}
	if (e) {
		bpf_ringbuf_submit(e, 0);
		stat_inc(TG_FILEIO_STAT_EVENTS);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tg_fio_in_openat(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_OPEN, ctx->args[1], 0); }
SEC("tracepoint/syscalls/sys_exit_openat")
int tg_fio_out_openat(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_read")
int tg_fio_in_read(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_READ, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_read")
int tg_fio_out_read(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_write")
int tg_fio_in_write(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_WRITE, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_write")
int tg_fio_out_write(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_pread64")
int tg_fio_in_pread(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_PREAD, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_pread64")
int tg_fio_out_pread(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_pwrite64")
int tg_fio_in_pwrite(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_PWRITE, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_pwrite64")
int tg_fio_out_pwrite(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_fsync")
int tg_fio_in_fsync(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_FSYNC, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_fsync")
int tg_fio_out_fsync(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_close")
int tg_fio_in_close(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_CLOSE, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_close")
int tg_fio_out_close(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
