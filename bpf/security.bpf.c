// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Security monitor from tracepoints only (no LSM hooks, no kprobes): sched_process_exec for every
 * exec (file, argv, ancestry), and syscall enter/exit pairs for the calls rules look at — the
 * set*id family, capset, ptrace attach, bpf() loads, module loading, mount, open/openat/openat2 and
 * path changes (rename, link, unlink, chmod, …) under watched prefixes, and connect to non-loopback addresses. Enter keeps the arguments (user memory
 * is only safe to read there), exit adds the result, so a record says whether the call worked.
 * Rules are evaluated in user space (policies/security, a YAML file per rule set); the kernel
 * side only drops what no rule could ever want (the agent itself, loopback connects, ptrace
 * peeks, bpf() map reads, opens outside the watched prefixes), because those are by far the
 * most frequent calls. An open is matched by the path it resolved to (dentries and mounts of the
 * opened file), not by the name passed, which can be relative or go through symlinks; a failed
 * open has no file and is matched by its name. The calls that change a watched path without an
 * open there (rename, link, symlink, unlink, chmod, chown, truncate) are reported when they
 * succeeded, on the path they changed, walked again through the dentry cache (walk_name.h). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "security.h"
#include "common.h"
#include "walk_name.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10

const volatile __u32 self_pid = 0;

struct tg_security_event *tg_anchor_security_event __attribute__((used));
struct tg_security_prefix *tg_anchor_security_prefix __attribute__((used));
enum tg_security_call tg_anchor_security_call __attribute__((used));
enum tg_security_stat tg_anchor_security_stat __attribute__((used));
enum tg_security_flags tg_anchor_security_flags __attribute__((used));
enum tg_security_limits tg_anchor_security_limits __attribute__((used));

/* A call between enter and exit: what enter read, keyed by thread. */
struct inflight {
	__u64 args[4];
	__u32 call;
	__u16 port;
	__u16 family;
	__u8 addr[16];
	char path[TG_SECURITY_PATH_LEN];
	char extra[TG_SECURITY_EXTRA_LEN];
	/* file changes: the names as passed ([0] the path changed, [1] the source), what they are
	 * relative to, their length with the NUL (as read) and how the last component is taken */
	__s32 dfd[2];
	__s32 nlen[2];
	__u32 follow[2]; /* enum name_mode */
	char names[2][WALK_LEN];
};

/* LRU: a thread killed inside a call never runs its exit, and its entry must not stay. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct inflight);
} tg_sec_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct inflight);
} tg_sec_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TG_SECURITY_PREFIXES);
	__type(key, __u32);
	__type(value, struct tg_security_prefix);
} tg_sec_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_SECURITY_RING_BYTES_DEFAULT);
} tg_sec_ring SEC(".maps");

TG_STATS_NOPREEMPT(tg_sec_stats, TG_SECURITY_STAT_MAX)

static __always_inline int is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_pid;
}

/* kernfs_node's parent before Linux 6.15 renamed it __parent. */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* The caller's cgroup v2 id and the names of its directory and its parent's. */
static __always_inline void fill_cgroup(struct tg_security_event *e, struct task_struct *t)
{
	e->cgroup_id = bpf_get_current_cgroup_id();
	struct kernfs_node *kn = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn);
	if (!kn)
		return;
	bpf_probe_read_kernel_str(e->cgroup[1], TG_SECURITY_CGROUP_NAME_LEN, BPF_CORE_READ(kn, name));
	struct kernfs_node *p = kn_parent(kn);
	if (p)
		bpf_probe_read_kernel_str(e->cgroup[0], TG_SECURITY_CGROUP_NAME_LEN, BPF_CORE_READ(p, name));
}

/* Who did it: the thread, its credentials after the call, its cgroup and its ancestry by real parent. */
static __always_inline void fill_task(struct tg_security_event *e)
{
	__u64 id = bpf_get_current_pid_tgid();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	e->euid = BPF_CORE_READ(t, cred, euid.val);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	fill_cgroup(e, t);
	struct task_struct *p = t;
#pragma unroll
	for (int i = 0; i < TG_SECURITY_ANCESTORS; i++) {
		p = BPF_CORE_READ(p, real_parent);
		if (!p)
			break;
		e->ppid[i] = BPF_CORE_READ(p, tgid);
		BPF_CORE_READ_INTO(&e->pcomm[i], p, comm);
		if (e->ppid[i] <= 1)
			break;
	}
}

static __always_inline struct tg_security_event *reserve(void)
{
	struct tg_security_event *e = bpf_ringbuf_reserve(&tg_sec_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_SECURITY_STAT_RING_FULL);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	fill_task(e);
	return e;
}

static __always_inline void submit(struct tg_security_event *e)
{
	bpf_ringbuf_submit(e, 0);
	stat_inc(TG_SECURITY_STAT_EVENTS);
}

static __always_inline struct inflight *scratch(__u32 call)
{
	__u32 k = 0;
	struct inflight *f = bpf_map_lookup_elem(&tg_sec_scratch, &k);
	if (!f)
		return NULL;
	__builtin_memset(f, 0, sizeof(*f));
	f->call = call;
	return f;
}

static __always_inline int begin(struct inflight *f)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&tg_sec_inflight, &tid, f, BPF_ANY))
		stat_inc(TG_SECURITY_STAT_INFLIGHT_FULL);
	return 0;
}

static __always_inline int enter_args(struct trace_event_raw_sys_enter *ctx, __u32 call)
{
	if (is_self())
		return 0;
	struct inflight *f = scratch(call);
	if (!f)
		return 0;
	/* One load per field: a loop makes clang step the ctx pointer, which the verifier refuses. */
	f->args[0] = BPF_CORE_READ(ctx, args[0]);
	f->args[1] = BPF_CORE_READ(ctx, args[1]);
	f->args[2] = BPF_CORE_READ(ctx, args[2]);
	f->args[3] = BPF_CORE_READ(ctx, args[3]);
	return begin(f);
}

static __always_inline int finish(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *f = bpf_map_lookup_elem(&tg_sec_inflight, &tid);
	if (!f)
		return 0;
	struct tg_security_event *e = reserve();
	if (e) {
		e->call = f->call;
		e->ret = ret;
		__builtin_memcpy(e->args, f->args, sizeof(e->args));
		__builtin_memcpy(e->addr, f->addr, sizeof(e->addr));
		e->port = f->port;
		e->family = f->family;
		bpf_probe_read_kernel(e->path, sizeof(e->path), f->path);
		bpf_probe_read_kernel(e->extra, sizeof(e->extra), f->extra);
		submit(e);
	}
	bpf_map_delete_elem(&tg_sec_inflight, &tid);
	return 0;
}

#define EXIT(sys)                                                              \
	SEC("tracepoint/syscalls/sys_exit_" #sys)                              \
	int tg_sec_out_##sys(struct trace_event_raw_sys_exit *ctx)             \
	{                                                                      \
		return finish(ctx->ret);                                       \
	}
#define ARGS(sys, call)                                                        \
	SEC("tracepoint/syscalls/sys_enter_" #sys)                             \
	int tg_sec_in_##sys(struct trace_event_raw_sys_enter *ctx)             \
	{                                                                      \
		return enter_args(ctx, call);                                  \
	}                                                                      \
	EXIT(sys)

ARGS(setuid, TG_SECURITY_SETUID)
ARGS(setreuid, TG_SECURITY_SETREUID)
ARGS(setresuid, TG_SECURITY_SETRESUID)
ARGS(setgid, TG_SECURITY_SETGID)
ARGS(setregid, TG_SECURITY_SETREGID)
ARGS(setresgid, TG_SECURITY_SETRESGID)
ARGS(capset, TG_SECURITY_CAPSET)

#define PTRACE_TRACEME 0
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206

/* Only the requests that start tracing: peeks and pokes of a debugger already attached are
 * thousands per second and say nothing new. */
SEC("tracepoint/syscalls/sys_enter_ptrace")
int tg_sec_in_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	long req = ctx->args[0];
	if (req != PTRACE_ATTACH && req != PTRACE_SEIZE && req != PTRACE_TRACEME)
		return 0;
	return enter_args(ctx, TG_SECURITY_PTRACE);
}
EXIT(ptrace)

/* Commands that put something into the kernel (maps, programs, attachments); lookups, updates
 * and id walks are what every BPF agent does all day. */
#define BPF_CMDS ((1ULL << 0) | (1ULL << 5) | (1ULL << 8) | (1ULL << 17) | (1ULL << 28))

SEC("tracepoint/syscalls/sys_enter_bpf")
int tg_sec_in_bpf(struct trace_event_raw_sys_enter *ctx)
{
	__u64 cmd = ctx->args[0];
	if (cmd >= 64 || !((1ULL << cmd) & BPF_CMDS))
		return 0;
	return enter_args(ctx, TG_SECURITY_BPF);
}
EXIT(bpf)

SEC("tracepoint/syscalls/sys_enter_init_module")
int tg_sec_in_init_module(struct trace_event_raw_sys_enter *ctx)
{
	if (is_self())
		return 0;
	struct inflight *f = scratch(TG_SECURITY_INIT_MODULE);
	if (!f)
		return 0;
	f->args[1] = ctx->args[1];
	bpf_probe_read_user_str(f->extra, sizeof(f->extra), (const void *)ctx->args[2]);
	return begin(f);
}
EXIT(init_module)

SEC("tracepoint/syscalls/sys_enter_finit_module")
int tg_sec_in_finit_module(struct trace_event_raw_sys_enter *ctx)
{
	if (is_self())
		return 0;
	struct inflight *f = scratch(TG_SECURITY_FINIT_MODULE);
	if (!f)
		return 0;
	f->args[0] = ctx->args[0];
	f->args[2] = ctx->args[2];
	bpf_probe_read_user_str(f->extra, sizeof(f->extra), (const void *)ctx->args[1]);
	return begin(f);
}
EXIT(finit_module)

SEC("tracepoint/syscalls/sys_enter_mount")
int tg_sec_in_mount(struct trace_event_raw_sys_enter *ctx)
{
	if (is_self())
		return 0;
	struct inflight *f = scratch(TG_SECURITY_MOUNT);
	if (!f)
		return 0;
	bpf_probe_read_user_str(f->path, sizeof(f->path), (const void *)ctx->args[1]);
	bpf_probe_read_user_str(f->extra, TG_SECURITY_EXTRA_LEN / 2, (const void *)ctx->args[0]);
	bpf_probe_read_user_str(f->extra + TG_SECURITY_EXTRA_LEN / 2, TG_SECURITY_EXTRA_LEN / 2, (const void *)ctx->args[2]);
	f->args[3] = ctx->args[3];
	return begin(f);
}
EXIT(mount)

/* Whether a path starts with one of the prefixes the open rules watch. */
static __always_inline int watched(const char *path)
{
	for (__u32 i = 0; i < TG_SECURITY_PREFIXES; i++) {
		__u32 k = i;
		struct tg_security_prefix *p = bpf_map_lookup_elem(&tg_sec_prefixes, &k);
		if (!p || !p->len)
			continue;
		__u32 len = p->len;
		int same = 1;
		for (__u32 j = 0; j < TG_SECURITY_PREFIX_LEN; j++) {
			if (j >= len)
				break;
			if (path[j] != p->prefix[j]) {
				same = 0;
				break;
			}
		}
		if (same)
			return 1;
	}
	return 0;
}

/* The path an open resolved to, rebuilt from the file's dentries and mounts. The name a process
 * passes can be relative, hold "//", "." or "..", or go through symlinks: a watched file is
 * watched by what it is, not by how it was named. */
#define RESOLVE_PATH_LEN TG_SECURITY_PATH_LEN
#include "resolve_path.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct resolve);
} tg_sec_resolve SEC(".maps");

/* Whether some watched prefix agrees with the first o bytes of buf (it may still match). */
static __always_inline int may_match(const char *buf, __u32 o)
{
	for (__u32 i = 0; i < TG_SECURITY_PREFIXES; i++) {
		__u32 k = i;
		struct tg_security_prefix *p = bpf_map_lookup_elem(&tg_sec_prefixes, &k);
		if (!p || !p->len)
			continue;
		__u32 len = p->len < o ? p->len : o;
		int same = 1;
		for (__u32 j = 0; j < TG_SECURITY_PREFIX_LEN; j++) {
			if (j >= len)
				break;
			if (buf[j] != p->prefix[j]) {
				same = 0;
				break;
			}
		}
		if (same)
			return 1;
	}
	return 0;
}

/* Writes the resolved path of the current process's fd into out (NUL-terminated, cut at the
 * buffer); 0 when the fd cannot be read or when its first component already rules out every
 * watched prefix (most opens: /usr, /proc, /tmp … stop there). */
static __always_inline int resolve_fd(long fd, char *out)
{
	__u32 zero = 0;
	struct resolve *r = bpf_map_lookup_elem(&tg_sec_resolve, &zero);
	if (!r)
		return 0;
	struct file *f = current_fd_file(fd);
	if (!f)
		return 0;
	resolve_up(r, BPF_CORE_READ(f, f_path.dentry), real_mount(BPF_CORE_READ(f, f_path.mnt)));
	resolve_down(r, 1);
	if (!may_match(r->buf, r->o))
		return 0;
	resolve_down(r, RESOLVE_DEPTH);
	resolve_copy_out(r, out);
	return 1;
}

/* The whole path of a dentry on a mount into out (NUL-terminated, cut at the buffer). A file
 * with no directory (its own parent, not its mount's root: a memfd, other anonymous files) is
 * "/" and its name, "/memfd:NAME" as /proc/PID/exe names a memfd. */
static __always_inline void resolve_into(struct resolve *r, struct dentry *d, struct vfsmount *mnt, char *out)
{
	if (BPF_CORE_READ(d, d_parent) == d && d != BPF_CORE_READ(mnt, mnt_root)) {
		out[0] = '/';
		bpf_probe_read_kernel_str(out + 1, TG_SECURITY_PATH_LEN - 1, BPF_CORE_READ(d, d_name.name));
		return;
	}
	resolve_up(r, d, real_mount(mnt));
	resolve_down(r, RESOLVE_DEPTH);
	resolve_copy_out(r, out);
}

SEC("tracepoint/sched/sched_process_exec")
int tg_sec_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	if (is_self())
		return 0;
	struct tg_security_event *e = reserve();
	if (!e)
		return 0;
	e->call = TG_SECURITY_EXEC;
	unsigned int off = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + off);
	/* The new image's argv, as the kernel just copied it onto the new stack. */
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	unsigned long start = BPF_CORE_READ(t, mm, arg_start);
	unsigned long n = BPF_CORE_READ(t, mm, arg_end) - start;
	if (n > TG_SECURITY_EXTRA_LEN)
		n = TG_SECURITY_EXTRA_LEN;
	bpf_probe_read_user(e->extra, n & (2 * TG_SECURITY_EXTRA_LEN - 1), (const void *)start);
	/* What runs and where a relative name led: rules watch a file by what it is, as for opens
	 * (./x, a symlink elsewhere, execveat(dirfd, "x"), fexecve's /dev/fd/N, a memfd). */
	__u32 zero = 0;
	struct resolve *r = bpf_map_lookup_elem(&tg_sec_resolve, &zero);
	if (r) {
		struct file *exe = BPF_CORE_READ(t, mm, exe_file);
		if (exe)
			resolve_into(r, BPF_CORE_READ(exe, f_path.dentry), BPF_CORE_READ(exe, f_path.mnt), e->exe);
		/* Always: a relative name may be the file's (./x) or, for an interpreter, its
		 * script's (sh x.sh), which user space finds in argv. */
		resolve_into(r, BPF_CORE_READ(t, fs, pwd.dentry), BPF_CORE_READ(t, fs, pwd.mnt), e->cwd);
	}
	submit(e);
	return 0;
}

/* openat/openat2 return: a failed open reports the name as given (when watched: nothing else
 * names the file); a successful one reports where it led, when that is watched. */
static __always_inline int finish_open(long ret, __u32 call)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *f = bpf_map_lookup_elem(&tg_sec_inflight, &tid);
	if (ret < 0)
		return f ? finish(ret) : 0;
	if (is_self())
		return 0;
	if (f)
		bpf_map_delete_elem(&tg_sec_inflight, &tid);
	struct inflight *s = scratch(call);
	if (!s || !resolve_fd(ret, s->path) || !watched(s->path))
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(t, files, fdt, fd);
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[ret]);
	/* The flags as opened (O_CREAT and O_TRUNC are not kept: a created or truncated file is
	 * opened for writing anyway). */
	s->args[2] = BPF_CORE_READ(file, f_flags);
	begin(s);
	return finish(ret);
}

static __always_inline int enter_open(const void *upath, __u64 flags, __u32 call)
{
	if (is_self())
		return 0;
	struct inflight *f = scratch(call);
	if (!f)
		return 0;
	bpf_probe_read_user_str(f->path, sizeof(f->path), upath);
	if (!watched(f->path))
		return 0;
	f->args[2] = flags;
	return begin(f);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tg_sec_in_openat(struct trace_event_raw_sys_enter *ctx)
{
	return enter_open((const void *)ctx->args[1], ctx->args[2], TG_SECURITY_OPENAT);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tg_sec_out_openat(struct trace_event_raw_sys_exit *ctx)
{
	return finish_open(ctx->ret, TG_SECURITY_OPENAT);
}

/* glibc opens with openat, but musl (Alpine images, static tools) calls open(2) on x86-64. */
SEC("tracepoint/syscalls/sys_enter_open")
int tg_sec_in_open(struct trace_event_raw_sys_enter *ctx)
{
	return enter_open((const void *)ctx->args[0], ctx->args[1], TG_SECURITY_OPEN);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tg_sec_out_open(struct trace_event_raw_sys_exit *ctx)
{
	return finish_open(ctx->ret, TG_SECURITY_OPEN);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int tg_sec_in_openat2(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0; /* struct open_how starts with the flags */
	bpf_probe_read_user(&flags, sizeof(flags), (const void *)ctx->args[2]);
	return enter_open((const void *)ctx->args[1], flags, TG_SECURITY_OPENAT);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tg_sec_out_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return finish_open(ctx->ret, TG_SECURITY_OPENAT);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int tg_sec_in_connect(struct trace_event_raw_sys_enter *ctx)
{
	if (is_self())
		return 0;
	const __u8 *sa = (const __u8 *)ctx->args[1];
	__u16 family = 0;
	bpf_probe_read_user(&family, sizeof(family), sa);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	struct inflight *f = scratch(TG_SECURITY_CONNECT);
	if (!f)
		return 0;
	__be16 port = 0;
	bpf_probe_read_user(&port, sizeof(port), sa + 2);
	f->family = family;
	f->port = bpf_ntohs(port);
	if (family == AF_INET) {
		__u8 a[4] = {};
		bpf_probe_read_user(a, 4, sa + 4);
		if (a[0] == 127)
			return 0; /* loopback never leaves the host */
		f->addr[10] = 0xff;
		f->addr[11] = 0xff;
		__builtin_memcpy(&f->addr[12], a, 4);
	} else {
		bpf_probe_read_user(f->addr, 16, sa + 8);
		__u64 hi = 0, lo = 0;
		__builtin_memcpy(&hi, f->addr, 8);
		__builtin_memcpy(&lo, &f->addr[8], 8);
		if (hi == 0 && lo == bpf_cpu_to_be64(1))
			return 0; /* ::1 */
		if (hi == 0 && f->addr[8] == 0 && f->addr[9] == 0 && f->addr[10] == 0xff && f->addr[11] == 0xff && f->addr[12] == 127)
			return 0; /* ::ffff:127.x */
	}
	return begin(f);
}
EXIT(connect)

/* ---- Calls that change a path without opening it (rename, link, symlink, unlink, chmod, chown,
 * truncate). The name passed is walked again from its directory (walk_name.h) once the call has
 * succeeded: the path reported and filtered on is the file the call changed, however it was
 * named. A name that cannot be walked is sent as given, flagged, whatever its prefix: user space
 * cannot rule it out either. */

#define AT_FDCWD -100
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_SYMLINK_FOLLOW 0x400

enum name_mode {
	NAME_NONE = 0,
	NAME_LEAF = 1,   /* the last component is the entry itself (rename, link, unlink, lchown) */
	NAME_FOLLOW = 2, /* a symlink as last component is followed (chmod, chown, truncate) */
	NAME_RAW = 3,    /* kept as given (a symlink's target) */
	NAME_FD = 4,     /* no name: the open file at fd dfd (fchmod, fchown, ftruncate) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk);
} tg_sec_walk SEC(".maps");

/* The absolute path of name i of f (NUL-terminated in out, cut at TG_SECURITY_PATH_LEN); 0 when
 * it cannot be walked. */
static __always_inline int resolve_name(struct inflight *f, int i, char *out)
{
	__u32 zero = 0;
	struct walk *w = bpf_map_lookup_elem(&tg_sec_walk, &zero);
	struct resolve *r = bpf_map_lookup_elem(&tg_sec_resolve, &zero);
	if (!w || !r)
		return 0;
	i &= 1;
	if (f->follow[i] == NAME_FD) {
		struct file *file = current_fd_file(f->dfd[i]);
		if (!file)
			return 0;
		resolve_up(r, BPF_CORE_READ(file, f_path.dentry), real_mount(BPF_CORE_READ(file, f_path.mnt)));
		resolve_down(r, RESOLVE_DEPTH);
		__u32 o = r->o;
		if (!o)
			r->buf[o++] = '/';
		barrier_var(o);
		r->buf[o & RESOLVE_MASK] = 0;
		bpf_probe_read_kernel(out, TG_SECURITY_PATH_LEN, r->buf);
		out[TG_SECURITY_PATH_LEN - 1] = 0;
		return 1;
	}
	__s32 nlen = f->nlen[i];
	if (nlen <= 0 || nlen >= WALK_LEN)
		return 0; /* unreadable, or longer than what was kept */
	bpf_probe_read_kernel(w->s, WALK_LEN, f->names[i]);
	w->len = nlen - 1;
	w->pos = 0;
	w->e = 0;
	w->q = 0;
	w->last = 0;
	w->links = 0;
	w->state = WALK_NEXT;
	w->follow_last = f->follow[i] == NAME_FOLLOW;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(t, fs);
	w->rootd = BPF_CORE_READ(fs, root.dentry);
	w->rootm = real_mount(BPF_CORE_READ(fs, root.mnt));
	long dfd = f->dfd[i];
	if (w->len && w->s[0] == '/') {
		w->d = w->rootd;
		w->m = w->rootm;
	} else if (dfd == AT_FDCWD) {
		w->d = BPF_CORE_READ(fs, pwd.dentry);
		w->m = real_mount(BPF_CORE_READ(fs, pwd.mnt));
	} else {
		struct file *file = current_fd_file(dfd);
		if (!file)
			return 0;
		w->d = BPF_CORE_READ(file, f_path.dentry);
		w->m = real_mount(BPF_CORE_READ(file, f_path.mnt));
	}
	struct walk_ctx wc = { .w = w };
	bpf_loop(WALK_STEPS, walk_step, &wc, 0);
	if (w->state != WALK_DONE)
		return 0;

	resolve_up(r, w->d, w->m);
	resolve_down(r, RESOLVE_DEPTH);
	__u32 o = r->o;
	if (!w->follow_last && o < RESOLVE_PATH_LEN) {
		/* the leaf, which the walk did not enter: its directory's path + "/" + its name */
		__u32 p = w->pos;
		__u64 clen = w->e - w->pos;
		/* the mask must stay in the code: the verifier bounds the size by it */
		barrier_var(clen);
		clen &= WALK_COMP - 1;
		r->buf[o & RESOLVE_MASK] = '/';
		o++;
		bpf_probe_read_kernel(&r->buf[o & RESOLVE_MASK], clen, &w->s[p & WALK_MASK]);
		o += clen;
	}
	if (!o)
		r->buf[o++] = '/';
	barrier_var(o);
	r->buf[o & RESOLVE_MASK] = 0;
	bpf_probe_read_kernel(out, TG_SECURITY_PATH_LEN, r->buf);
	out[TG_SECURITY_PATH_LEN - 1] = 0; /* longer: cut */
	return 1;
}

static __always_inline void keep_name(struct inflight *f, int i, long dfd, const void *uname, __u32 mode)
{
	i &= 1;
	f->dfd[i] = dfd;
	f->follow[i] = mode;
	if (mode == NAME_FD) {
		/* what is sent if the fd is gone by the exit (closed by another thread) */
		__builtin_memcpy(f->names[i], "<fd>", 5);
		f->nlen[i] = 5;
		return;
	}
	f->nlen[i] = bpf_probe_read_user_str(f->names[i], WALK_LEN, uname);
}

/* name 0 is the path changed, name 1 (mode NAME_NONE: none) the source. */
static __always_inline int enter_change(__u32 call, long dfd0, const void *n0, __u32 m0, long dfd1, const void *n1,
					__u32 m1, __u64 a0, __u64 a1, __u64 flags)
{
	if (is_self())
		return 0;
	struct inflight *f = scratch(call);
	if (!f)
		return 0;
	keep_name(f, 0, dfd0, n0, m0);
	if (m1 != NAME_NONE)
		keep_name(f, 1, dfd1, n1, m1);
	f->args[0] = a0;
	f->args[1] = a1;
	f->args[2] = flags;
	return begin(f);
}

static __always_inline int finish_change(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *f = bpf_map_lookup_elem(&tg_sec_inflight, &tid);
	if (!f)
		return 0;
	/* only what happened: a failed rename or chmod changed nothing */
	if (ret != 0)
		goto out;
	struct tg_security_event *e = bpf_ringbuf_reserve(&tg_sec_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_SECURITY_STAT_RING_FULL);
		goto out;
	}
	__builtin_memset(e, 0, sizeof(*e));
	int report = 0;
	if (!resolve_name(f, 0, e->path)) {
		bpf_probe_read_kernel_str(e->path, sizeof(e->path), f->names[0]);
		e->flags |= TG_SECURITY_F_UNRESOLVED;
		report = 1;
	} else if (watched(e->path)) {
		report = 1;
	}
	if (f->follow[1] == NAME_RAW) {
		bpf_probe_read_kernel_str(e->extra, sizeof(e->extra), f->names[1]);
	} else if (f->follow[1] != NAME_NONE) {
		/* rename from a watched place removes the watched file; a link from one exposes it */
		if (!resolve_name(f, 1, e->extra)) {
			bpf_probe_read_kernel_str(e->extra, sizeof(e->extra), f->names[1]);
			e->flags |= TG_SECURITY_F_SOURCE_UNRESOLVED;
			report = 1;
		} else if (watched(e->extra)) {
			report = 1;
		}
	}
	if (!report) {
		bpf_ringbuf_discard(e, 0);
		goto out;
	}
	e->ts_ns = bpf_ktime_get_ns();
	fill_task(e);
	e->call = f->call;
	e->ret = ret;
	__builtin_memcpy(e->args, f->args, sizeof(e->args));
	submit(e);
out:
	bpf_map_delete_elem(&tg_sec_inflight, &tid);
	return 0;
}

#define CHANGE(sys, call, dfd0, n0, m0, dfd1, n1, m1, a0, a1, fl)                \
	SEC("tracepoint/syscalls/sys_enter_" #sys)                              \
	int tg_sec_in_##sys(struct trace_event_raw_sys_enter *ctx)              \
	{                                                                       \
		return enter_change(call, dfd0, (const void *)(n0), m0, dfd1,   \
				    (const void *)(n1), m1, a0, a1, fl);        \
	}                                                                       \
	SEC("tracepoint/syscalls/sys_exit_" #sys)                               \
	int tg_sec_out_##sys(struct trace_event_raw_sys_exit *ctx)              \
	{                                                                       \
		return finish_change(ctx->ret);                                 \
	}

#define A(i) BPF_CORE_READ(ctx, args[i])
/* The follow mode of *at calls that take AT_SYMLINK_NOFOLLOW. */
#define NOFOLLOW(fl) (((fl) & AT_SYMLINK_NOFOLLOW) ? NAME_LEAF : NAME_FOLLOW)

CHANGE(rename, TG_SECURITY_RENAME, AT_FDCWD, A(1), NAME_LEAF, AT_FDCWD, A(0), NAME_LEAF, 0, 0, 0)
CHANGE(renameat, TG_SECURITY_RENAMEAT, A(2), A(3), NAME_LEAF, A(0), A(1), NAME_LEAF, 0, 0, 0)
CHANGE(renameat2, TG_SECURITY_RENAMEAT2, A(2), A(3), NAME_LEAF, A(0), A(1), NAME_LEAF, 0, 0, A(4))
CHANGE(link, TG_SECURITY_LINK, AT_FDCWD, A(1), NAME_LEAF, AT_FDCWD, A(0), NAME_LEAF, 0, 0, 0)
CHANGE(linkat, TG_SECURITY_LINKAT, A(2), A(3), NAME_LEAF, A(0), A(1),
       (A(4) & AT_SYMLINK_FOLLOW) ? NAME_FOLLOW : NAME_LEAF, 0, 0, A(4))
CHANGE(symlink, TG_SECURITY_SYMLINK, AT_FDCWD, A(1), NAME_LEAF, 0, A(0), NAME_RAW, 0, 0, 0)
CHANGE(symlinkat, TG_SECURITY_SYMLINKAT, A(1), A(2), NAME_LEAF, 0, A(0), NAME_RAW, 0, 0, 0)
CHANGE(unlink, TG_SECURITY_UNLINK, AT_FDCWD, A(0), NAME_LEAF, 0, 0, NAME_NONE, 0, 0, 0)
CHANGE(unlinkat, TG_SECURITY_UNLINKAT, A(0), A(1), NAME_LEAF, 0, 0, NAME_NONE, 0, 0, A(2))
CHANGE(rmdir, TG_SECURITY_RMDIR, AT_FDCWD, A(0), NAME_LEAF, 0, 0, NAME_NONE, 0, 0, 0)
CHANGE(chmod, TG_SECURITY_CHMOD, AT_FDCWD, A(0), NAME_FOLLOW, 0, 0, NAME_NONE, A(1), 0, 0)
CHANGE(fchmodat, TG_SECURITY_FCHMODAT, A(0), A(1), NAME_FOLLOW, 0, 0, NAME_NONE, A(2), 0, 0)
CHANGE(fchmodat2, TG_SECURITY_FCHMODAT2, A(0), A(1), NOFOLLOW(A(3)), 0, 0, NAME_NONE, A(2), 0, A(3))
CHANGE(chown, TG_SECURITY_CHOWN, AT_FDCWD, A(0), NAME_FOLLOW, 0, 0, NAME_NONE, A(1), A(2), 0)
CHANGE(lchown, TG_SECURITY_LCHOWN, AT_FDCWD, A(0), NAME_LEAF, 0, 0, NAME_NONE, A(1), A(2), 0)
CHANGE(fchownat, TG_SECURITY_FCHOWNAT, A(0), A(1), NOFOLLOW(A(4)), 0, 0, NAME_NONE, A(2), A(3), A(4))
CHANGE(truncate, TG_SECURITY_TRUNCATE, AT_FDCWD, A(0), NAME_FOLLOW, 0, 0, NAME_NONE, A(1), 0, 0)
/* mode: the new entry's type and permissions (mknod: S_IFIFO, S_IFCHR, …); dev: a device's number */
CHANGE(mkdir, TG_SECURITY_MKDIR, AT_FDCWD, A(0), NAME_LEAF, 0, 0, NAME_NONE, A(1), 0, 0)
CHANGE(mkdirat, TG_SECURITY_MKDIRAT, A(0), A(1), NAME_LEAF, 0, 0, NAME_NONE, A(2), 0, 0)
CHANGE(mknod, TG_SECURITY_MKNOD, AT_FDCWD, A(0), NAME_LEAF, 0, 0, NAME_NONE, A(1), A(2), 0)
CHANGE(mknodat, TG_SECURITY_MKNODAT, A(0), A(1), NAME_LEAF, 0, 0, NAME_NONE, A(2), A(3), 0)
CHANGE(fchmod, TG_SECURITY_FCHMOD, A(0), 0, NAME_FD, 0, 0, NAME_NONE, A(1), 0, 0)
CHANGE(fchown, TG_SECURITY_FCHOWN, A(0), 0, NAME_FD, 0, 0, NAME_NONE, A(1), A(2), 0)
CHANGE(ftruncate, TG_SECURITY_FTRUNCATE, A(0), 0, NAME_FD, 0, 0, NAME_NONE, A(1), 0, 0)
