// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TLS plaintext: uprobes on OpenSSL's SSL_read/SSL_write/SSL_read_ex/SSL_write_ex (libssl.so.3
 * and binaries that link OpenSSL statically and export it, such as node). The entry remembers
 * the buffer, the return copies what actually moved.
 *
 * Which socket? Reading the fd out of the SSL object needs per-version struct offsets, and
 * node's SSL objects sit on memory BIOs with no fd at all. Instead the same thread's socket
 * syscalls name it: a read/write inside the SSL call (socket BIO: curl, nghttp) is certain and
 * is remembered per SSL object; otherwise (memory BIO: node reads the ciphertext, then
 * decrypts it on the same thread) the last tracked socket the thread touched. The connection
 * identity comes from the socket tracer's own map (tg_conns, shared by fd), and records go to
 * its ring (tg_ring, shared by fd) as tg_data_event with TG_DATA_TLS. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "telegen.h"
#include "socket.h"
#include "tls.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 self_pid = 0;
const volatile __u32 target_pid = 0;
const volatile __u32 capture_max = TG_TLS_CAPTURE_LIMIT;

enum tg_tls_limits tg_anchor_tls_limits __attribute__((used));
enum tg_tls_stat tg_anchor_tls_stat __attribute__((used));

/* The socket tracer's maps: the loader replaces both with the socket tracer's fds before
 * load (bpf_map__reuse_fd), so sizes here only matter for a stand-alone load. Only the
 * leading tg_conn_info of a tg_conns value is read. */
struct conn_key {
	__u32 pid;
	__u32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct conn_key);
	__type(value, struct tg_conn_info);
} tg_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} tg_ring SEC(".maps");

enum { TLS_OP_READ = 1, TLS_OP_WRITE = 2 };

struct ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 moved_ptr; /* size_t * of the _ex variants, else 0 */
	__u32 fd;
	__u8 op;
	__u8 has_fd;     /* a socket syscall ran inside this call */
	__u16 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_CALLS_MAX);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct ssl_call);
} tls_calls SEC(".maps");

struct ssl_key {
	__u64 ssl;
	__u32 pid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_SSL_MAX);
	__type(key, struct ssl_key);
	__type(value, __u32); /* fd */
} tls_ssl_fd SEC(".maps");

/* Last tracked socket fd a thread read or wrote. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_CALLS_MAX);
	__type(key, __u64);
	__type(value, __u32);
} tls_last_fd SEC(".maps");

/* Plaintext byte positions per connection and direction (ciphertext positions are the
 * socket tracer's). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_SSL_MAX);
	__type(key, __u64); /* conn_id */
	__type(value, __u64[2]);
} tls_pos SEC(".maps");

struct scratch {
	struct tg_data_event ev;
	__u8 payload[TG_TLS_CAPTURE_LIMIT * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct scratch);
} tls_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_TLS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&tls_stats, &idx);
	if (v)
		__sync_fetch_and_add(v, 1); /* uprobes can be preempted on this CPU */
}

static __always_inline bool pid_wanted(__u32 pid)
{
	if (pid == self_pid)
		return false;
	return target_pid == 0 || pid == target_pid;
}

/* ---- the thread's socket syscalls ---- */

static __always_inline int note_fd(__u64 fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if (!pid_wanted(pid) || (__s64)fd < 0)
		return 0;
	struct conn_key k = { .pid = pid, .fd = fd };
	/* Only sockets the socket tracer tracks: pipes, files and eventfds are not it. */
	if (!bpf_map_lookup_elem(&tg_conns, &k))
		return 0;
	__u32 f = fd;
	bpf_map_update_elem(&tls_last_fd, &id, &f, BPF_ANY);
	struct ssl_call *c = bpf_map_lookup_elem(&tls_calls, &id);
	if (c) {
		c->fd = f;
		c->has_fd = 1;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int tls_sys_read(struct trace_event_raw_sys_enter *ctx) { return note_fd(ctx->args[0]); }

SEC("tracepoint/syscalls/sys_enter_write")
int tls_sys_write(struct trace_event_raw_sys_enter *ctx) { return note_fd(ctx->args[0]); }

SEC("tracepoint/syscalls/sys_enter_readv")
int tls_sys_readv(struct trace_event_raw_sys_enter *ctx) { return note_fd(ctx->args[0]); }

SEC("tracepoint/syscalls/sys_enter_writev")
int tls_sys_writev(struct trace_event_raw_sys_enter *ctx) { return note_fd(ctx->args[0]); }

SEC("tracepoint/syscalls/sys_enter_sendto")
int tls_sys_sendto(struct trace_event_raw_sys_enter *ctx) { return note_fd(ctx->args[0]); }

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int tls_sys_recvfrom(struct trace_event_raw_sys_enter *ctx) { return note_fd(ctx->args[0]); }

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int tls_sys_sendmsg(struct trace_event_raw_sys_enter *ctx) { return note_fd(ctx->args[0]); }

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int tls_sys_recvmsg(struct trace_event_raw_sys_enter *ctx) { return note_fd(ctx->args[0]); }

/* ---- SSL_* ---- */

static __always_inline int ssl_enter(__u64 ssl, __u64 buf, __u64 moved_ptr, __u8 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!pid_wanted(id >> 32))
		return 0;
	struct ssl_call c = { .ssl = ssl, .buf = buf, .moved_ptr = moved_ptr, .op = op };
	bpf_map_update_elem(&tls_calls, &id, &c, BPF_ANY);
	return 0;
}

#define CLAMP_REG(v, max) \
	asm volatile("if %[x] <= %[m] goto +1; %[x] = %[m]" : [x] "+r"(v) : [m] "i"(max))

static __always_inline void emit(struct ssl_call *c, __u64 id, __u64 moved)
{
	__u32 pid = id >> 32;
	struct ssl_key sk = { .ssl = c->ssl, .pid = pid };
	__u32 fd;

	if (c->has_fd) {
		fd = c->fd;
		bpf_map_update_elem(&tls_ssl_fd, &sk, &fd, BPF_ANY);
	} else {
		__u32 *known = bpf_map_lookup_elem(&tls_ssl_fd, &sk);
		if (known) {
			fd = *known;
		} else {
			__u32 *last = bpf_map_lookup_elem(&tls_last_fd, &id);
			if (!last) {
				stat_inc(TG_TLS_STAT_NO_CONN);
				return;
			}
			fd = *last;
			/* Learned from reads only: a memory-BIO reader decrypts right after reading
			 * the ciphertext, while its writer encrypts before writing. */
			if (c->op == TLS_OP_READ)
				bpf_map_update_elem(&tls_ssl_fd, &sk, &fd, BPF_ANY);
		}
	}
	struct conn_key k = { .pid = pid, .fd = fd };
	struct tg_conn_info *ci = bpf_map_lookup_elem(&tg_conns, &k);
	if (!ci) {
		stat_inc(TG_TLS_STAT_NO_CONN);
		return;
	}
	__u64 cid = ci->conn_id;
	__u64 *pos = bpf_map_lookup_elem(&tls_pos, &cid);
	if (!pos) {
		__u64 zero[2] = {};
		bpf_map_update_elem(&tls_pos, &cid, zero, BPF_NOEXIST);
		pos = bpf_map_lookup_elem(&tls_pos, &cid);
		if (!pos)
			return;
	}
	__u8 dir = c->op == TLS_OP_READ ? TG_DIR_INGRESS : TG_DIR_EGRESS;
	__u64 at = __sync_fetch_and_add(&pos[dir & 1], moved);

	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&tls_scratch, &cpu);
	if (!s) {
		stat_inc(TG_TLS_STAT_RING_FULL);
		return;
	}
	__u32 cap = capture_max;
	if (cap > TG_TLS_CAPTURE_LIMIT)
		cap = TG_TLS_CAPTURE_LIMIT;
	__u64 want = moved < cap ? moved : cap;
	CLAMP_REG(want, TG_TLS_CAPTURE_LIMIT);
	__u64 got = want;
	if (want && bpf_probe_read_user(s->payload, want, (void *)c->buf)) {
		stat_inc(TG_TLS_STAT_READ_FAULT);
		got = 0;
	}
	s->ev.type = TG_EV_DATA;
	s->ev.dir = dir;
	s->ev.truncated = got < moved;
	s->ev.flags = TG_DATA_TLS;
	s->ev._pad0 = 0;
	s->ev.ts_ns = bpf_ktime_get_ns();
	s->ev.pos = at;
	s->ev.len = got;
	s->ev.orig_len = moved > 0xffffffffULL ? 0xffffffffU : moved;
	s->ev.conn = *ci;
	s->ev.conn.tid = (__u32)id;
	if (got < moved)
		stat_inc(TG_TLS_STAT_TRUNCATED);
	__u64 size = got;
	CLAMP_REG(size, TG_TLS_CAPTURE_LIMIT);
	if (bpf_ringbuf_output(&tg_ring, s, sizeof(s->ev) + size, 0))
		stat_inc(TG_TLS_STAT_RING_FULL);
	else
		stat_inc(TG_TLS_STAT_EVENTS);
}

static __always_inline int ssl_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *p = bpf_map_lookup_elem(&tls_calls, &id);
	if (!p)
		return 0;
	struct ssl_call c = *p;
	bpf_map_delete_elem(&tls_calls, &id);

	long ret = PT_REGS_RC(ctx);
	__u64 moved;
	if (c.moved_ptr) {
		/* SSL_read_ex/SSL_write_ex: 1 on success, the count through the pointer. */
		if ((int)ret != 1)
			return 0;
		if (bpf_probe_read_user(&moved, sizeof(moved), (void *)c.moved_ptr)) {
			stat_inc(TG_TLS_STAT_READ_FAULT);
			return 0;
		}
	} else {
		if ((int)ret <= 0)
			return 0;
		moved = (int)ret;
	}
	if (moved == 0)
		return 0;
	emit(&c, id, moved);
	return 0;
}

SEC("uprobe")
int tls_write_enter(struct pt_regs *ctx)
{
	return ssl_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), 0, TLS_OP_WRITE);
}

SEC("uprobe")
int tls_read_enter(struct pt_regs *ctx)
{
	return ssl_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), 0, TLS_OP_READ);
}

SEC("uprobe")
int tls_write_ex_enter(struct pt_regs *ctx)
{
	return ssl_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM4(ctx), TLS_OP_WRITE);
}

SEC("uprobe")
int tls_read_ex_enter(struct pt_regs *ctx)
{
	return ssl_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM4(ctx), TLS_OP_READ);
}

SEC("uretprobe")
int tls_exit(struct pt_regs *ctx) { return ssl_exit(ctx); }
