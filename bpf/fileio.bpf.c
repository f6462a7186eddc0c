// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* File I/O tracer from syscall tracepoints: openat (and open) remembers fd → (path, directory) for
 * the files opened while tracing (and openat2); read/write/pread64/pwrite64/fsync/close on those fds are timed
 * (enter → exit), the vectored calls as their plain operation (readv → read, writev → write,
 * preadv/preadv2 → pread, pwritev/pwritev2 → pwrite) and fdatasync as fsync. dup/dup2/dup3 and
 * fcntl(F_DUPFD*) give the new fd the entry of the old one: a shell's `cmd > file` opens the file
 * and dup2()s it onto fd 1 before the exec, so that is how a program's stdout reaches a file. Every operation is counted here, in a cumulative histogram per process, directory and
 * operation (tg_fileio_hists), which user space reads at each metric collection: at tens of
 * thousands of operations per second one ring record each cost the agent more CPU than it had.
 * The ring carries only what needs the single operation: slow ones (>= slow_ns, logged with their
 * path) and failed ones (counted by errno). An fd with no entry whose first operation finds a
 * regular file behind it (inherited across fork/exec, as `exec >>log` leaves it to a shell's
 * children, or opened before the tracer started) gets its entry then (adopt); sockets and pipes
 * stay without one and cost a hash lookup and the fd's inode mode. Paths under /proc, /sys and
 * /dev are skipped at open: they are kernel interfaces, not file data. Entries of processes that
 * exit without closing are swept from user space. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "fileio.h"
#include "common.h"
#include "fd_file.h"
#include <linux/magic.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

TG_PID_FILTER
const volatile __u64 slow_ns = 100000000;
const volatile __u32 dir_depth = 3;

struct tg_fileio_event *tg_anchor_fileio_event __attribute__((used));
struct tg_fileio_hist_key *tg_anchor_fileio_hist_key __attribute__((used));
struct tg_fileio_hist *tg_anchor_fileio_hist __attribute__((used));
struct tg_fileio_dir *tg_anchor_fileio_dir __attribute__((used));
enum tg_fileio_op tg_anchor_fileio_op __attribute__((used));
enum tg_fileio_stat tg_anchor_fileio_stat __attribute__((used));
enum tg_fileio_limits tg_anchor_fileio_limits __attribute__((used));
enum tg_fileio_lat_bound_us tg_anchor_fileio_lat_bound_us __attribute__((used));
enum tg_fileio_size_bound tg_anchor_fileio_size_bound __attribute__((used));

/* Upper bounds from fileio.h (user space reads the same enums for the exported boundaries). */
static const __u64 lat_bounds_ns[TG_FILEIO_LAT_BUCKETS - 1] = {
	TG_FILEIO_LAT_B00 * 1000ULL, TG_FILEIO_LAT_B01 * 1000ULL, TG_FILEIO_LAT_B02 * 1000ULL, TG_FILEIO_LAT_B03 * 1000ULL,
	TG_FILEIO_LAT_B04 * 1000ULL, TG_FILEIO_LAT_B05 * 1000ULL, TG_FILEIO_LAT_B06 * 1000ULL, TG_FILEIO_LAT_B07 * 1000ULL,
	TG_FILEIO_LAT_B08 * 1000ULL, TG_FILEIO_LAT_B09 * 1000ULL, TG_FILEIO_LAT_B10 * 1000ULL, TG_FILEIO_LAT_B11 * 1000ULL,
	TG_FILEIO_LAT_B12 * 1000ULL, TG_FILEIO_LAT_B13 * 1000ULL, TG_FILEIO_LAT_B14 * 1000ULL, TG_FILEIO_LAT_B15 * 1000ULL,
	TG_FILEIO_LAT_B16 * 1000ULL, TG_FILEIO_LAT_B17 * 1000ULL, TG_FILEIO_LAT_B18 * 1000ULL,
};
static const __u64 size_bounds[TG_FILEIO_SIZE_BUCKETS - 1] = {
	TG_FILEIO_SIZE_B0, TG_FILEIO_SIZE_B1, TG_FILEIO_SIZE_B2, TG_FILEIO_SIZE_B3, TG_FILEIO_SIZE_B4,
	TG_FILEIO_SIZE_B5, TG_FILEIO_SIZE_B6, TG_FILEIO_SIZE_B7, TG_FILEIO_SIZE_B8,
};

struct fd_key {
	__u32 pid;
	__u32 fd;
};

struct file_ent {
	char path[TG_FILEIO_PATH_LEN];
	__u64 dir_id; /* the directory cut from path at openat */
	__u64 inode;  /* the opened file's inode: the fd still names this file while they match */
	__u32 untraced; /* counts nothing: an adopted fd under /dev (tmpfs), or one being adopted */
	__u32 _pad;
};

/* Not an operation of enum tg_fileio_op: a dup whose new fd takes the old fd's entry. */
#define OP_DUP 0x100

struct inflight {
	__u64 ts;
	__u64 arg; /* openat: the user pointer to the name; others: the fd */
	__u32 op;
	__u32 _pad;
};

/* Per-CPU working space: a path, its directory and a fresh histogram do not fit the BPF stack. */
struct scratch {
	struct file_ent f;
	struct tg_fileio_dir d;
	struct tg_fileio_hist h;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_FILEIO_FILES_MAX_DEFAULT);
	__type(key, struct fd_key);
	__type(value, struct file_ent);
} tg_fileio_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct inflight);
} tg_fileio_inflight SEC(".maps");

/* dir_id (64-bit FNV-1a of the name, never 0) → name. Its size is max_directories: an insert that
 * finds it full makes the directory TG_FILEIO_DIR_OTHER, as the first max_directories seen win. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_FILEIO_DIRS_MAX_DEFAULT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct tg_fileio_dir);
} tg_fileio_dirs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_FILEIO_HIST_MAX_DEFAULT);
	__type(key, struct tg_fileio_hist_key);
	__type(value, struct tg_fileio_hist);
} tg_fileio_hists SEC(".maps");

/* Per operation: what the full tg_fileio_hists could not hold (exported as the overflow series).
 * User space sets the minima to ~0 before attaching. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TG_FILEIO_OP_MAX);
	__type(key, __u32);
	__type(value, struct tg_fileio_hist);
} tg_fileio_hist_over SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} tg_fileio_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_FILEIO_RING_BYTES_DEFAULT);
} tg_fileio_ring SEC(".maps");

TG_STATS_NOPREEMPT(tg_fileio_stats, TG_FILEIO_STAT_MAX)

/* The inode behind one of the current process's fds (0 when the fd is not open). */
static __always_inline __u64 fd_inode(__u64 fd)
{
	struct file *f = current_fd_file(fd);
	if (!f)
		return 0;
	return (__u64)BPF_CORE_READ(f, f_inode);
}

static __always_inline int adopt(__u32 pid, __u64 fd, struct file *f, struct inode *ino);

static __always_inline int enter(__u32 op, __u64 arg, int need_fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = id;
	if (!pid_wanted(pid))
		return 0;
	if (need_fd) {
		struct fd_key k = { .pid = pid, .fd = arg };
		struct file_ent *fp = bpf_map_lookup_elem(&tg_fileio_files, &k);
		struct file *f = current_fd_file(arg);
		__u64 inode = f ? (__u64)BPF_CORE_READ(f, f_inode) : 0;
		/* An fd can stop naming the file without a close(): exec closes O_CLOEXEC fds, and
		 * close_range or dup2 over it do the same. Its number then comes back as a socket or a
		 * pipe, whose I/O is no file I/O of that path. */
		if (fp && fp->inode != inode) {
			bpf_map_delete_elem(&tg_fileio_files, &k);
			fp = NULL;
		}
		if (!fp) {
			/* No open seen by this process: the fd came with fork/exec (`exec >>log` in a
			 * shell, then its children's writes) or was opened before the agent. */
			if (!inode || !adopt(pid, arg, f, (struct inode *)inode))
				return 0;
		} else if (fp->untraced) {
			if (op == TG_FILEIO_CLOSE)
				bpf_map_delete_elem(&tg_fileio_files, &k);
			return 0;
		}
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

#define MASK (TG_FILEIO_PATH_LEN - 1)

/* Cutting a path to its directory, one byte per bpf_loop step: a plain loop over the path makes
 * the verifier walk every (position, output length, component count) state and gives up. */
struct cut_ctx {
	struct scratch *s;
	__u64 h;      /* FNV-1a of the output so far */
	__u64 h_done; /* ... of the components known to be directories */
	__u32 o, o_done, comps, after_slash;
};

static long cut_step(__u32 i, void *arg)
{
	struct cut_ctx *c = arg;
	char ch = c->s->f.path[i & MASK];
	if (!ch)
		return 1;
	if (ch == '/') {
		c->after_slash = 1;
		return 0;
	}
	if (c->after_slash) {
		/* A component starts: everything before it is a directory, the last one never is. */
		c->o_done = c->o;
		c->h_done = c->h;
		if (c->comps == dir_depth)
			return 1;
		c->comps++;
		c->after_slash = 0;
		c->s->d.name[c->o & MASK] = '/';
		c->h = (c->h ^ '/') * 0x100000001b3ULL;
		c->o++;
	}
	c->s->d.name[c->o & MASK] = ch;
	c->h = (c->h ^ (__u8)ch) * 0x100000001b3ULL;
	c->o++;
	return 0;
}

/* file.directory of s->f.path into s->d, returning its id (64-bit FNV-1a of the name, never
 * TG_FILEIO_DIR_OTHER): the dirname's first dir_depth components, repeated slashes folded
 * ("/var//lib/pg/x" → "/var/lib/pg"), "/" for a file at the root; "(relative)" or "(unknown)"
 * when the name alone cannot say. */
static __always_inline __u64 cut_dir(struct scratch *s)
{
	__builtin_memset(s->d.name, 0, sizeof(s->d.name));
	struct cut_ctx c = { .s = s, .h = 0xcbf29ce484222325ULL, .h_done = 0xcbf29ce484222325ULL, .after_slash = 1 };
	if (s->f.path[0] != '/') {
		const char *n = s->f.path[0] ? "(relative)" : "(unknown)";
		for (int i = 0; i < 11 && n[i]; i++) {
			s->d.name[i] = n[i];
			c.h_done = (c.h_done ^ (__u8)n[i]) * 0x100000001b3ULL;
		}
	} else {
		bpf_loop(TG_FILEIO_PATH_LEN - 1, cut_step, &c, 0);
		if (c.o_done) {
			s->d.name[c.o_done & MASK] = 0;
		} else {
			s->d.name[0] = '/';
			s->d.name[1] = 0;
			c.h_done = (c.h_done ^ '/') * 0x100000001b3ULL;
		}
	}
	return c.h_done == TG_FILEIO_DIR_OTHER ? 1 : c.h_done;
}

/* A relative name says nothing of its directory (PostgreSQL opens everything relative to its
 * data directory): once openat succeeded, the opened file's dentries and mounts give its
 * absolute path. */
#define RESOLVE_PATH_LEN TG_FILEIO_PATH_LEN
#include "resolve_path.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct resolve);
} tg_fileio_resolve SEC(".maps");

/* The absolute path of an open file into out (cut at TG_FILEIO_PATH_LEN); out is left alone
 * when f is NULL. */
static __always_inline void resolve_file(struct file *f, char *out)
{
	__u32 zero = 0;
	struct resolve *r = bpf_map_lookup_elem(&tg_fileio_resolve, &zero);
	if (!r || !f)
		return;
	resolve_up(r, BPF_CORE_READ(f, f_path.dentry), real_mount(BPF_CORE_READ(f, f_path.mnt)));
	resolve_down(r, RESOLVE_DEPTH);
	resolve_copy_out(r, out);
}

/* The directory's id, interned in tg_fileio_dirs (TG_FILEIO_DIR_OTHER once it is full). */
static __always_inline __u64 intern_dir(struct scratch *s)
{
	__u64 h = cut_dir(s);
	if (bpf_map_lookup_elem(&tg_fileio_dirs, &h))
		return h;
	long err = bpf_map_update_elem(&tg_fileio_dirs, &h, &s->d, BPF_NOEXIST);
	if (err && err != -17 /* EEXIST: another CPU interned it meanwhile */) {
		stat_inc(TG_FILEIO_STAT_DIRS_FULL);
		return TG_FILEIO_DIR_OTHER;
	}
	return h;
}

#ifndef S_IFMT
#define S_IFMT 00170000
#define S_IFREG 0100000
#endif

/* First use of an fd with no entry: a regular file gets one, as if its open had been seen (path
 * from its dentries, directory interned), and is counted from this operation on. Everything else
 * costs these few reads on every operation, without an entry that would fill the map with every
 * socket and pipe: pipes, sockets and ttys (not regular files), and the kernel's interfaces, which
 * the open path skips by name. Returns whether the operation counts. */
static __always_inline int adopt(__u32 pid, __u64 fd, struct file *f, struct inode *ino)
{
	if ((BPF_CORE_READ(ino, i_mode) & S_IFMT) != S_IFREG)
		return 0;
	switch (BPF_CORE_READ(ino, i_sb, s_magic)) {
	case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC:
	case DEBUGFS_MAGIC: case TRACEFS_MAGIC: case SECURITYFS_MAGIC: case BPF_FS_MAGIC:
		return 0;
	}
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&tg_fileio_scratch, &zero);
	if (!s)
		return 0;
	/* The slot first: with the map full, every operation on the fd comes back here, and a
	 * failed insert costs far less than the path walk. Until filled, the entry counts nothing. */
	struct fd_key k = { .pid = pid, .fd = fd };
	s->f.path[0] = 0;
	s->f.untraced = 1;
	s->f._pad = 0;
	s->f.inode = (__u64)ino;
	s->f.dir_id = TG_FILEIO_DIR_OTHER;
	if (bpf_map_update_elem(&tg_fileio_files, &k, &s->f, BPF_ANY)) {
		stat_inc(TG_FILEIO_STAT_MAP_FULL);
		return 0;
	}
	resolve_file(f, s->f.path);
	/* /dev/shm is tmpfs: only its name says it is no file data (as at open). */
	s->f.untraced = pseudo_fs(s->f.path);
	if (s->f.untraced)
		return 0;
	s->f.dir_id = intern_dir(s);
	if (bpf_map_update_elem(&tg_fileio_files, &k, &s->f, BPF_EXIST))
		return 0; /* closed by another thread meanwhile */
	return 1;
}

static __always_inline void hist_add(struct tg_fileio_hist *h, __u32 op, __u64 lat, long ret)
{
	__u32 b = TG_FILEIO_LAT_BUCKETS - 1;
	for (__u32 i = 0; i < TG_FILEIO_LAT_BUCKETS - 1; i++) {
		if (lat <= lat_bounds_ns[i]) {
			b = i;
			break;
		}
	}
	if (b >= TG_FILEIO_LAT_BUCKETS)
		return;
	__sync_fetch_and_add(&h->lat_counts[b], 1);
	__sync_fetch_and_add(&h->lat_sum_ns, lat);
	if (lat < h->lat_min_ns)
		h->lat_min_ns = lat;
	if (lat > h->lat_max_ns)
		h->lat_max_ns = lat;
	if (ret < 0 || op == TG_FILEIO_OPEN || op == TG_FILEIO_FSYNC || op == TG_FILEIO_CLOSE)
		return;
	__u64 sz = ret;
	b = TG_FILEIO_SIZE_BUCKETS - 1;
	for (__u32 i = 0; i < TG_FILEIO_SIZE_BUCKETS - 1; i++) {
		if (sz <= size_bounds[i]) {
			b = i;
			break;
		}
	}
	if (b >= TG_FILEIO_SIZE_BUCKETS)
		return;
	__sync_fetch_and_add(&h->size_counts[b], 1);
	__sync_fetch_and_add(&h->size_sums[b], sz);
	if (sz < h->size_min)
		h->size_min = sz;
	if (sz > h->size_max)
		h->size_max = sz;
}

static __always_inline void count(struct scratch *s, __u32 pid, __u32 op, __u64 dir_id, __u64 lat, long ret)
{
	struct tg_fileio_hist_key k = { .pid = pid, .op = op, .dir_id = dir_id };
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	struct tg_fileio_hist *h = bpf_map_lookup_elem(&tg_fileio_hists, &k);
	if (!h) {
		__builtin_memset(&s->h, 0, sizeof(s->h));
		s->h.lat_min_ns = ~0ULL;
		s->h.size_min = ~0ULL;
		bpf_map_update_elem(&tg_fileio_hists, &k, &s->h, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&tg_fileio_hists, &k);
	}
	if (!h) {
		stat_inc(TG_FILEIO_STAT_HIST_FULL);
		__u32 slot = op;
		h = bpf_map_lookup_elem(&tg_fileio_hist_over, &slot);
		if (!h)
			return;
	}
	hist_add(h, op, lat, ret);
	stat_inc(TG_FILEIO_STAT_EVENTS);
}

/* After dup/dup2/dup3/fcntl(F_DUPFD*) returned `ret`: the new fd names what the old one names, so
 * it gets the old one's entry (its directory, path and inode); when the old fd is no file traced
 * here, an entry the new fd number had is gone (dup2 closed that file). */
static __always_inline int dup_done(__u32 pid, __u64 oldfd, long ret)
{
	if (ret < 0 || ret == (long)oldfd)
		return 0;
	struct fd_key ok = { .pid = pid, .fd = oldfd }, nk = { .pid = pid, .fd = ret };
	struct file_ent *fp = bpf_map_lookup_elem(&tg_fileio_files, &ok);
	if (fp && fp->inode == fd_inode(ret)) {
		if (bpf_map_update_elem(&tg_fileio_files, &nk, fp, BPF_ANY))
			stat_inc(TG_FILEIO_STAT_MAP_FULL);
	} else {
		bpf_map_delete_elem(&tg_fileio_files, &nk);
	}
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
	if (in.op == OP_DUP)
		return dup_done(pid, in.arg, ret);
	__u64 lat = bpf_ktime_get_ns() - in.ts;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&tg_fileio_scratch, &zero);
	if (!s)
		return 0;
	const char *path;
	__u64 dir_id;
	if (in.op == TG_FILEIO_OPEN) {
		s->f.path[0] = 0;
		bpf_probe_read_user_str(s->f.path, sizeof(s->f.path), (const void *)in.arg);
		if (s->f.path[0] && s->f.path[0] != '/' && ret >= 0)
			resolve_file(current_fd_file(ret), s->f.path);
		if (pseudo_fs(s->f.path))
			return 0;
		s->f.untraced = 0;
		s->f._pad = 0;
		dir_id = s->f.dir_id = intern_dir(s);
		path = s->f.path;
		if (ret >= 0) {
			struct fd_key k = { .pid = pid, .fd = ret };
			s->f.inode = fd_inode(ret);
			if (bpf_map_update_elem(&tg_fileio_files, &k, &s->f, BPF_ANY))
				stat_inc(TG_FILEIO_STAT_MAP_FULL);
		}
	} else {
		struct fd_key k = { .pid = pid, .fd = in.arg };
		struct file_ent *fp = bpf_map_lookup_elem(&tg_fileio_files, &k);
		if (fp) {
			dir_id = fp->dir_id;
			/* The path only travels with a ring record (a close may delete the entry first). */
			if (ret < 0 || lat >= slow_ns)
				__builtin_memcpy(s->f.path, fp->path, sizeof(s->f.path));
		} else {
			/* closed by another thread meanwhile */
			s->f.path[0] = 0;
			dir_id = intern_dir(s);
		}
		path = s->f.path;
		if (in.op == TG_FILEIO_CLOSE && ret == 0)
			bpf_map_delete_elem(&tg_fileio_files, &k);
	}
	count(s, pid, in.op, dir_id, lat, ret);
	if (ret >= 0 && lat < slow_ns)
		return 0;
	struct tg_fileio_event *e = bpf_ringbuf_reserve(&tg_fileio_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_FILEIO_STAT_RING_FULL);
		return 0;
	}
	e->op = in.op;
	e->pid = pid;
	e->latency_ns = lat;
	e->ret = ret;
	e->fd = in.op == TG_FILEIO_OPEN ? ret : in.arg;
	e->_pad0 = 0;
	e->dir_id = dir_id;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->path, path, sizeof(e->path));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
SEC("tracepoint/syscalls/sys_enter_openat")
int tg_fio_in_openat(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_OPEN, ctx->args[1], 0); }
SEC("tracepoint/syscalls/sys_exit_openat")
int tg_fio_out_openat(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
/* glibc opens with openat, but musl (Alpine images, static tools) calls open(2) on x86-64: its
 * files would have no fd entry, so none of their I/O would count. */
SEC("tracepoint/syscalls/sys_enter_open")
int tg_fio_in_open(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_OPEN, ctx->args[0], 0); }
SEC("tracepoint/syscalls/sys_exit_open")
int tg_fio_out_open(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
/* openat2(dfd, name, how, size): systemd and container runtimes (RESOLVE_IN_ROOT) open with it. */
SEC("tracepoint/syscalls/sys_enter_openat2")
int tg_fio_in_openat2(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_OPEN, ctx->args[1], 0); }
SEC("tracepoint/syscalls/sys_exit_openat2")
int tg_fio_out_openat2(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
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
/* The vectored calls move bytes like their plain forms: counted as read/write/pread/pwrite. */
SEC("tracepoint/syscalls/sys_enter_readv")
int tg_fio_in_readv(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_READ, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_readv")
int tg_fio_out_readv(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_writev")
int tg_fio_in_writev(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_WRITE, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_writev")
int tg_fio_out_writev(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_preadv")
int tg_fio_in_preadv(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_PREAD, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_preadv")
int tg_fio_out_preadv(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_pwritev")
int tg_fio_in_pwritev(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_PWRITE, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_pwritev")
int tg_fio_out_pwritev(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_preadv2")
int tg_fio_in_preadv2(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_PREAD, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_preadv2")
int tg_fio_out_preadv2(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_pwritev2")
int tg_fio_in_pwritev2(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_PWRITE, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_pwritev2")
int tg_fio_out_pwritev2(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
/* PostgreSQL's WAL default on Linux (wal_sync_method=fdatasync), SQLite's, most databases'. */
SEC("tracepoint/syscalls/sys_enter_fdatasync")
int tg_fio_in_fdatasync(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_FSYNC, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_fdatasync")
int tg_fio_out_fdatasync(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
/* Every dup, whether or not the old fd is traced: dup2/dup3 onto a traced fd close its file. */
SEC("tracepoint/syscalls/sys_enter_dup")
int tg_fio_in_dup(struct trace_event_raw_sys_enter *ctx) { return enter(OP_DUP, ctx->args[0], 0); }
SEC("tracepoint/syscalls/sys_exit_dup")
int tg_fio_out_dup(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_dup2")
int tg_fio_in_dup2(struct trace_event_raw_sys_enter *ctx) { return enter(OP_DUP, ctx->args[0], 0); }
SEC("tracepoint/syscalls/sys_exit_dup2")
int tg_fio_out_dup2(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_dup3")
int tg_fio_in_dup3(struct trace_event_raw_sys_enter *ctx) { return enter(OP_DUP, ctx->args[0], 0); }
SEC("tracepoint/syscalls/sys_exit_dup3")
int tg_fio_out_dup3(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030
SEC("tracepoint/syscalls/sys_enter_fcntl")
int tg_fio_in_fcntl(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[1] != F_DUPFD && ctx->args[1] != F_DUPFD_CLOEXEC)
		return 0;
	return enter(OP_DUP, ctx->args[0], 0);
}
SEC("tracepoint/syscalls/sys_exit_fcntl")
int tg_fio_out_fcntl(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_close")
int tg_fio_in_close(struct trace_event_raw_sys_enter *ctx) { return enter(TG_FILEIO_CLOSE, ctx->args[0], 1); }
SEC("tracepoint/syscalls/sys_exit_close")
int tg_fio_out_close(struct trace_event_raw_sys_exit *ctx) { return leave(ctx->ret); }
