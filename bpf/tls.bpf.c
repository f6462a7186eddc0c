// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TLS plaintext: uprobes on OpenSSL's SSL_read/SSL_write/SSL_read_ex/SSL_write_ex (libssl.so.3
 * and binaries that link OpenSSL statically and export it, such as node). The entry remembers
 * the buffer and the time, the return copies what actually moved: a write is stamped at its entry,
 * a read at its return.
 *
 * Which socket? Reading the fd out of the SSL object needs per-version struct offsets, and
 * node's SSL objects sit on memory BIOs with no fd at all. Instead the same thread's socket
 * syscalls name it: a read/write inside the SSL call (socket BIO: curl, nghttp) is certain and
 * is remembered per SSL object; otherwise (memory BIO: node reads the ciphertext, then
 * decrypts it on the same thread) the last tracked socket the thread touched. Both come from
 * the socket tracer's per-thread store (tg_calls, shared by fd; thread_call.h). The connection
 * identity comes from the socket tracer's own map (tg_conns, shared by fd), and records go to
 * its ring (tg_ring, shared by fd) as tg_data_event with TG_DATA_TLS. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "telegen.h"
#include "socket.h"
#include "tls.h"
#include "common.h"
#include "thread_call.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

TG_PID_FILTER
const volatile __u32 capture_max = TG_TLS_CAPTURE_LIMIT;
/* Bytes kept from the end of a call longer than capture_max (tls_emit_tail); 0: none. */
const volatile __u32 capture_tail = TG_TLS_TAIL_LIMIT;

enum tg_tls_limits tg_anchor_tls_limits __attribute__((used));
enum tg_tls_stat tg_anchor_tls_stat __attribute__((used));
enum tg_tls_h2_block tg_anchor_tls_h2_block __attribute__((used));
struct tg_tls_h2_field tg_anchor_tls_h2_field __attribute__((used));

TG_STATS(tls_stats, TG_TLS_STAT_MAX)

#include "tls_emit.h"

enum { TLS_OP_READ = 1, TLS_OP_WRITE = 2 };

struct ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 moved_ptr; /* size_t * of the _ex variants, else 0 */
	__u32 seq;       /* the thread's data_seq at entry: changed at exit = a socket syscall ran inside */
	__u8 op;
	__u8 _pad[3];
	__u64 ts;        /* bpf_ktime_get_ns() at entry: a write's stamp (tls_emit) */
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

/* The socket tracer's per-thread store, reused by fd (shareMaps): written by its syscall
 * programs, only read here. */
TG_THREAD_CALLS_MAP(tg_calls);

TLS_EMIT_MAPS(tls_pos, tls_scratch)

static __always_inline struct tg_thread_call *thread_calls(void)
{
	return bpf_task_storage_get(&tg_calls, bpf_get_current_task_btf(), 0, 0);
}

/* ---- SSL_* ---- */

static __always_inline int ssl_enter(__u64 ssl, __u64 buf, __u64 moved_ptr, __u8 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!pid_wanted(id >> 32))
		return 0;
	struct tg_thread_call *t = thread_calls();
	struct ssl_call c = { .ssl = ssl, .buf = buf, .moved_ptr = moved_ptr, .seq = t ? t->data_seq : 0, .op = op,
			      .ts = bpf_ktime_get_ns() };
	bpf_map_update_elem(&tls_calls, &id, &c, BPF_ANY);
	return 0;
}

static __always_inline void emit(struct ssl_call *c, __u64 id, __u64 moved)
{
	__u32 pid = id >> 32;
	struct ssl_key sk = { .ssl = c->ssl, .pid = pid };
	__u32 fd;
	struct tg_thread_call *t = thread_calls();

	if (t && t->data_seq != c->seq) {
		fd = t->data_fd;
		bpf_map_update_elem(&tls_ssl_fd, &sk, &fd, BPF_ANY);
	} else {
		__u32 *known = bpf_map_lookup_elem(&tls_ssl_fd, &sk);
		if (known) {
			fd = *known;
		} else {
			if (!t || !t->data_seq) {
				stat_inc(TG_TLS_STAT_NO_CONN);
				return;
			}
			fd = t->data_fd;
			/* Learned from reads only: a memory-BIO reader decrypts right after reading
			 * the ciphertext, while its writer encrypts before writing. */
			if (c->op == TLS_OP_READ)
				bpf_map_update_elem(&tls_ssl_fd, &sk, &fd, BPF_ANY);
		}
	}
	struct tg_conn_info *ci = tls_conn(pid, fd);
	if (!ci) {
		stat_inc(TG_TLS_STAT_NO_CONN);
		return;
	}
	/* A write is stamped when it began: with a socket BIO (curl) the ciphertext leaves inside the
	 * call, and on a busy machine the peer read, answered and its span ended before the return. */
	bool rd = c->op == TLS_OP_READ;
	tls_emit_tail(&tls_pos, &tls_scratch, ci, id, rd ? TG_DIR_INGRESS : TG_DIR_EGRESS, c->buf, moved, capture_max,
		      capture_tail, rd ? bpf_ktime_get_ns() : c->ts);
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

/* Each entry probe with its uprobe_multi twin (common.h), for binaries the /proc rescan finds
 * after the capability drop, when the agent may hold only CAP_BPF + CAP_PERFMON. The return
 * probe is a uretprobe; its twin is attached as a uprobe_multi return probe (uprobe section:
 * the loader sets the attach type). */
TG_UPROBE_PAIR(tls_write_enter, ssl_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), 0, TLS_OP_WRITE))
TG_UPROBE_PAIR(tls_read_enter, ssl_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), 0, TLS_OP_READ))
TG_UPROBE_PAIR(tls_write_ex_enter, ssl_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM4(ctx), TLS_OP_WRITE))
TG_UPROBE_PAIR(tls_read_ex_enter, ssl_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM4(ctx), TLS_OP_READ))

SEC("uretprobe")
int tls_exit(struct pt_regs *ctx) { return ssl_exit(ctx); }

SEC("uprobe")
int tls_exit_multi(struct pt_regs *ctx) { return ssl_exit(ctx); }

/* ---- HTTP/2 header fields from nghttp2 ----
 * HPACK's dynamic table is connection state: a connection older than the agent references
 * entries we never saw, and the wire alone cannot name them (decoders/http2 reports them
 * unknown). The process's own nghttp2 knows them. Uprobes read the fields from user memory:
 *  - sent: nghttp2_submit_request/response/trailer (exported API, every nghttp2 user);
 *  - received: the application's header callback, with the on_header_callback2 signature
 *    (node exports its Http2Session::OnHeaderCallback; for libnghttp2 users the host finds
 *    the callback in the session, see h2_mem_recv).
 * Each field becomes one TG_DATA_H2_FIELD record on the connection of the session. The
 * session's socket is learned at nghttp2_session_mem_recv: the caller just read that
 * connection's bytes on this thread (a socket read, or SSL_read on top of one). */

struct h2_key {
	__u64 session;
	__u32 pid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_SSL_MAX);
	__type(key, struct h2_key);
	__type(value, __u32); /* fd */
} h2_session_fd SEC(".maps");

/* Sessions whose callbacks were looked at already. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_SSL_MAX);
	__type(key, struct h2_key);
	__type(value, __u8);
} h2_cb_seen SEC(".maps");

/* Read by the host, which attaches h2_on_header{1,2} at each address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct tg_tls_h2_cb);
	__type(value, __u8);
} h2_cbs SEC(".maps");

struct h2_submit {
	__u64 session;
	__u64 nva;
	__u64 nvlen;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_CALLS_MAX);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct h2_submit);
} h2_calls SEC(".maps");

/* nghttp2's public structs (nghttp2.h; stable since 1.0) and nghttp2_rcbuf (1.21+). */
struct ng_nv {
	__u64 name;
	__u64 value;
	__u64 namelen;
	__u64 valuelen;
	__u8 flags;
};
#define NG_FRAME_STREAM_ID 8   /* nghttp2_frame_hd.stream_id */
#define NG_FRAME_TYPE 12       /* nghttp2_frame_hd.type */
#define NG_HEADERS_CAT 56      /* nghttp2_headers.cat */
#define NG_RCBUF_BASE 16       /* nghttp2_rcbuf.base, .len follows */
#define NG_HCAT_HEADERS 3
#define H2_TYPE_HEADERS 1

static __always_inline int h2_session_conn(__u64 session, __u32 pid, __u64 id, bool may_guess)
{
	struct h2_key k = { .session = session, .pid = pid };
	__u32 *fd = bpf_map_lookup_elem(&h2_session_fd, &k);
	if (fd)
		return *fd;
	if (!may_guess)
		return -1;
	struct tg_thread_call *t = thread_calls();
	if (!t || !t->data_seq)
		return -1;
	__u32 f = t->data_fd;
	bpf_map_update_elem(&h2_session_fd, &k, &f, BPF_ANY);
	return f;
}

/* A plaintext scratch begins as a header field's does and is larger. */
static __always_inline void h2_emit(__u64 id, int fd, __u32 sid, __u8 block, __u8 dir,
				    __u64 name, __u64 nl, __u64 value, __u64 vl)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct tls_emit_scratch *s = bpf_map_lookup_elem(&tls_scratch, &cpu);
	if (!s) {
		stat_inc(TG_TLS_STAT_RING_FULL);
		return;
	}
	tls_h2_field_emit((struct tls_h2_scratch *)s, id, fd, dir, sid, block, name, nl, value, vl);
}

/* Every field of an nghttp2_nv array (nghttp2_submit_*). */
static __always_inline void h2_emit_nva(__u64 id, int fd, __u32 sid, __u8 block, __u64 nva, __u64 nvlen)
{
	if (nvlen > TG_TLS_H2_NV_MAX)
		nvlen = TG_TLS_H2_NV_MAX;
	for (__u32 i = 0; i < TG_TLS_H2_NV_MAX; i++) {
		if (i >= nvlen)
			break;
		struct ng_nv nv;
		if (bpf_probe_read_user(&nv, sizeof(nv), (void *)(nva + (__u64)i * sizeof(nv)))) {
			stat_inc(TG_TLS_STAT_READ_FAULT);
			return;
		}
		h2_emit(id, fd, sid, block, TG_DIR_EGRESS, nv.name, nv.namelen, nv.value, nv.valuelen);
	}
}

/* nghttp2_session_mem_recv(2)(session, in, inlen): learn the session's socket; with the
 * callback offsets in the attach cookie (high 32 bits: on_header_callback, low:
 * on_header_callback2, both within nghttp2_session; found by the host for this library
 * file), report the application's header callback once per session. */
static __always_inline int h2_mem_recv_impl(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if (!pid_wanted(pid))
		return 0;
	__u64 session = PT_REGS_PARM1(ctx);
	struct tg_thread_call *t = thread_calls();
	if (t && t->data_seq) {
		struct h2_key k = { .session = session, .pid = pid };
		__u32 f = t->data_fd;
		bpf_map_update_elem(&h2_session_fd, &k, &f, BPF_ANY);
	}
	__u64 cookie = bpf_get_attach_cookie(ctx);
	if (!cookie)
		return 0;
	struct h2_key k = { .session = session, .pid = pid };
	if (bpf_map_lookup_elem(&h2_cb_seen, &k))
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&h2_cb_seen, &k, &one, BPF_ANY);
	__u64 cb1 = 0, cb2 = 0;
	__u32 off1 = cookie >> 32, off2 = (__u32)cookie;
	if (off2)
		bpf_probe_read_user(&cb2, sizeof(cb2), (void *)(session + off2));
	if (off1)
		bpf_probe_read_user(&cb1, sizeof(cb1), (void *)(session + off1));
	/* nghttp2 calls on_header_callback2 when set, else on_header_callback. */
	struct tg_tls_h2_cb cb = { .addr = cb2 ? cb2 : cb1, .pid = pid, .version = cb2 ? 2 : 1 };
	if (cb.addr)
		bpf_map_update_elem(&h2_cbs, &cb, &one, BPF_NOEXIST);
	return 0;
}

TG_UPROBE_PAIR(h2_mem_recv, h2_mem_recv_impl(ctx))

/* nghttp2_session_del(session): its socket mapping must not outlive it (addresses are reused). */
static __always_inline int h2_session_del_impl(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct h2_key k = { .session = PT_REGS_PARM1(ctx), .pid = id >> 32 };
	bpf_map_delete_elem(&h2_session_fd, &k);
	bpf_map_delete_elem(&h2_cb_seen, &k);
	return 0;
}

TG_UPROBE_PAIR(h2_session_del, h2_session_del_impl(ctx))

static __always_inline int h2_on_header(struct pt_regs *ctx, __u64 name, __u64 nl, __u64 value, __u64 vl)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if (!pid_wanted(pid))
		return 0;
	__u64 frame = PT_REGS_PARM2(ctx);
	struct { __s32 sid; __u8 type; } hd;
	__u32 cat = 0;
	if (bpf_probe_read_user(&hd.sid, 4, (void *)(frame + NG_FRAME_STREAM_ID)) ||
	    bpf_probe_read_user(&hd.type, 1, (void *)(frame + NG_FRAME_TYPE)))
		return 0;
	/* PUSH_PROMISE fields are a promised request: not this stream's. */
	if (hd.type != H2_TYPE_HEADERS || hd.sid <= 0)
		return 0;
	bpf_probe_read_user(&cat, 4, (void *)(frame + NG_HEADERS_CAT));
	int fd = h2_session_conn(PT_REGS_PARM1(ctx), pid, id, true);
	h2_emit(id, fd, hd.sid, cat == NG_HCAT_HEADERS ? TG_TLS_H2_TRAILERS : TG_TLS_H2_HEADERS,
		TG_DIR_INGRESS, name, nl, value, vl);
	return 0;
}

/* (session, frame, nghttp2_rcbuf *name, nghttp2_rcbuf *value, flags, user_data) */
static __always_inline int on_header2(struct pt_regs *ctx)
{
	__u64 nb[2] = {}, vb[2] = {};
	if (bpf_probe_read_user(nb, sizeof(nb), (void *)(PT_REGS_PARM3(ctx) + NG_RCBUF_BASE)) ||
	    bpf_probe_read_user(vb, sizeof(vb), (void *)(PT_REGS_PARM4(ctx) + NG_RCBUF_BASE)))
		return 0;
	return h2_on_header(ctx, nb[0], nb[1], vb[0], vb[1]);
}

TG_UPROBE_PAIR(h2_on_header2, on_header2(ctx))

#ifndef PT_REGS_PARM6
/* libbpf before 1.2 stops at five arguments; x86-64 passes the sixth in r9. */
#if defined(__TARGET_ARCH_x86)
#define PT_REGS_PARM6(x) ((x)->r9)
#elif defined(__TARGET_ARCH_arm64)
#define PT_REGS_PARM6(x) (((const struct user_pt_regs *)(x))->regs[5])
#endif
#endif

/* (session, frame, name, namelen, value, valuelen, flags, user_data) */
static __always_inline int on_header1(struct pt_regs *ctx)
{
	return h2_on_header(ctx, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), PT_REGS_PARM6(ctx));
}

TG_UPROBE_PAIR(h2_on_header1, on_header1(ctx))

/* nghttp2_submit_request(2)(session, pri_spec, nva, nvlen, data_prd, stream_user_data) →
 * the new stream's id, known at return. */
static __always_inline int h2_submit_request_impl(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!pid_wanted(id >> 32))
		return 0;
	struct h2_submit c = { .session = PT_REGS_PARM1(ctx), .nva = PT_REGS_PARM3(ctx), .nvlen = PT_REGS_PARM4(ctx) };
	bpf_map_update_elem(&h2_calls, &id, &c, BPF_ANY);
	return 0;
}

TG_UPROBE_PAIR(h2_submit_request, h2_submit_request_impl(ctx))

static __always_inline int h2_submit_request_ret_impl(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct h2_submit *p = bpf_map_lookup_elem(&h2_calls, &id);
	if (!p)
		return 0;
	struct h2_submit c = *p;
	bpf_map_delete_elem(&h2_calls, &id);
	int sid = (int)PT_REGS_RC(ctx);
	if (sid <= 0)
		return 0;
	int fd = h2_session_conn(c.session, id >> 32, id, false);
	h2_emit_nva(id, fd, sid, TG_TLS_H2_HEADERS, c.nva, c.nvlen);
	return 0;
}

SEC("uretprobe")
int h2_submit_request_ret(struct pt_regs *ctx) { return h2_submit_request_ret_impl(ctx); }

SEC("uprobe")
int h2_submit_request_ret_multi(struct pt_regs *ctx) { return h2_submit_request_ret_impl(ctx); }

/* nghttp2_submit_response(2)(session, stream_id, nva, nvlen, data_prd) */
static __always_inline int h2_submit_response_impl(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!pid_wanted(id >> 32))
		return 0;
	int fd = h2_session_conn(PT_REGS_PARM1(ctx), id >> 32, id, false);
	h2_emit_nva(id, fd, (__u32)PT_REGS_PARM2(ctx), TG_TLS_H2_HEADERS, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx));
	return 0;
}

TG_UPROBE_PAIR(h2_submit_response, h2_submit_response_impl(ctx))

/* nghttp2_submit_trailer(session, stream_id, nva, nvlen) */
static __always_inline int h2_submit_trailer_impl(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!pid_wanted(id >> 32))
		return 0;
	int fd = h2_session_conn(PT_REGS_PARM1(ctx), id >> 32, id, false);
	h2_emit_nva(id, fd, (__u32)PT_REGS_PARM2(ctx), TG_TLS_H2_TRAILERS, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx));
	return 0;
}

TG_UPROBE_PAIR(h2_submit_trailer, h2_submit_trailer_impl(ctx))

