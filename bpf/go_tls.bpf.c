// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TLS plaintext from Go programs: crypto/tls is Go code, not OpenSSL, so the OpenSSL uprobes
 * (tls.bpf.c) never see it. Uprobes on crypto/tls.(*Conn).Write and .Read — at the entry and at
 * every RET instruction the host found by decoding the function (a uretprobe swaps the return
 * address on the goroutine's stack, which Go's stack copying cannot survive).
 *
 * Go >= 1.17 register ABI on amd64: at the entry rax = *tls.Conn, rbx/rcx/rdi = the []byte
 * (ptr/len/cap); at a RET rax = n. Write is emitted at its entry (see go_enter), Read at its RETs. r14 always holds the current goroutine (g), which is the
 * call's key: a goroutine that blocks in Read may resume on another thread.
 *
 * The socket is read out of the Go structs: tls.Conn.conn (net.Conn interface, data word) →
 * *net.TCPConn → conn.fd (*netFD) → pfd.Sysfd. The field offsets depend on the Go version; the
 * host packs the binary's row (host/src/gotrace/offsets.ts) into each entry uprobe's BPF cookie,
 * 16 bits per offset. A net.Conn that is not a TCP conn yields an fd the socket tracer does not
 * know, which is counted as no_conn and dropped. Records are the socket tracer's tg_data_event
 * with TG_DATA_TLS, into its own ring (tg_ring) with its own connection identity (tg_conns),
 * both shared by fd as in tls.bpf.c. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "telegen.h"
#include "tls.h"
#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

TG_PID_FILTER
const volatile __u32 capture_max = TG_TLS_CAPTURE_LIMIT;

/* Same counters as the OpenSSL tracer (enum tg_tls_stat). */
TG_STATS(go_tls_stats, TG_TLS_STAT_MAX)

#include "tls_emit.h"
#include "go_conn.h"

enum { GO_OP_READ = 1, GO_OP_WRITE = 2 };

struct go_call {
	__u64 buf;
	__u32 fd;
	__u8 op;
	__u8 _pad[3];
};

/* Calls in flight, per goroutine. LRU: a goroutine that never returns (killed process,
 * a RET we did not probe) ages out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_CALLS_MAX);
	__type(key, struct g_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

TLS_EMIT_MAPS(go_tls_pos, go_scratch)

/* The cookie's 16-bit fields: see packOffsets() in host/src/gotrace/offsets.ts. */
static __always_inline __u64 cookie_field(__u64 cookie, int i)
{
	return (cookie >> (16 * i)) & 0xffff;
}

static __always_inline void emit(const struct go_call *c, __u64 id, __u64 moved)
{
	struct tg_conn_info *ci = tls_conn(id >> 32, c->fd);
	if (!ci) {
		stat_inc(TG_TLS_STAT_NO_CONN);
		return;
	}
	/* Called at Write's entry (go_enter) and Read's RETs: each stamped when its bytes are there. */
	tls_emit(&go_tls_pos, &go_scratch, ci, id, c->op == GO_OP_READ ? TG_DIR_INGRESS : TG_DIR_EGRESS, c->buf, moved,
		 capture_max, bpf_ktime_get_ns());
}

static __always_inline int go_enter(struct pt_regs *ctx, __u8 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if (!pid_wanted(pid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__s64 sysfd;
	if (!go_tls_sysfd(ctx->ax, cookie_field(cookie, 0), cookie_field(cookie, 1), cookie_field(cookie, 2), &sysfd)) {
		stat_inc(TG_TLS_STAT_READ_FAULT);
		return 0;
	}
	if (sysfd < 0 || sysfd > 0x7fffffff) {
		stat_inc(TG_TLS_STAT_NO_CONN);
		return 0;
	}
	struct go_call c = { .buf = ctx->bx, .fd = (__u32)sysfd, .op = op };
	if (op == GO_OP_WRITE) {
		/* The plaintext is all there at the entry, and it must enter the ring before the
		 * write(2) it causes: emitted at the RET, a goroutine descheduled between the syscall
		 * and the RET lets the peer's answer (read on another thread) into the ring first, and
		 * the decoder sees a response before its request. Write sends all of b unless it
		 * fails, which then shows as a request without a response. */
		__s64 len = ctx->cx;
		if (len > 0)
			emit(&c, id, len);
		return 0;
	}
	struct g_key k = go_gkey(ctx, pid);
	bpf_map_update_elem(&go_calls, &k, &c, BPF_ANY);
	return 0;
}

static __always_inline int go_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct g_key k = go_gkey(ctx, id >> 32);
	struct go_call *p = bpf_map_lookup_elem(&go_calls, &k);
	if (!p)
		return 0;
	struct go_call c = *p;
	bpf_map_delete_elem(&go_calls, &k);
	__s64 n = ctx->ax;
	if (n <= 0)
		return 0;
	emit(&c, id, n);
	return 0;
}

/* Each with its uprobe_multi twin (common.h). The return probe sits at every RET of both
 * functions: the call in flight says which it was. */
TG_UPROBE_PAIR(go_tls_write_enter, go_enter(ctx, GO_OP_WRITE))
TG_UPROBE_PAIR(go_tls_read_enter, go_enter(ctx, GO_OP_READ))
TG_UPROBE_PAIR(go_tls_return, go_return(ctx))

/* ---- Goroutine-aware requests (net/http) ----
 * A request served by net/http runs on one goroutine (serverHandler.ServeHTTP); the calls it
 * makes run on that goroutine or on goroutines it spawns (runtime.newproc1), at any depth. Each
 * goroutine working for a request maps to that request (go_reqs, keyed by goid: g structs are
 * reused, goids never are); a child inherits its parent's entry when it is created and loses it
 * when it exits (runtime.goexit0). An outgoing HTTP/1 call (net/http.(*persistConn).roundTrip)
 * from such a goroutine emits one small record naming its connection and the request's
 * connection (tg_go_link_event); the host makes the client span decoded on the first a child of
 * the server span decoded on the second. Nothing is emitted for goroutines outside requests.
 *
 * Offsets come in the cookie as eight 6-bit words counting 8-byte units (packHttpOffsets in
 * host/src/gotrace/http-offsets.ts): every field followed is pointer-aligned. */

enum {
	GH_TLS_CONN_DATA = 0, /* tls.Conn.conn data word → *net.TCPConn */
	GH_TCP_CONN_FD = 1,   /* *net.TCPConn → *netFD */
	GH_NETFD_SYSFD = 2,   /* netFD.pfd.Sysfd */
	GH_G_GOID = 3,        /* runtime.g.goid */
	GH_RESP_CONN = 4,     /* http.response.conn (*http.conn) */
	GH_CONN_SERVER = 5,   /* http.conn.server (*http.Server) */
	GH_HOLDER_CONN = 6,   /* http.conn.rwc / persistConn.conn: net.Conn data word */
	GH_HOLDER_TLS = 7,    /* http.conn.tlsState / persistConn.tlsState: non-nil over TLS */
};

static __always_inline __u64 hoff(__u64 cookie, int i)
{
	return ((cookie >> (6 * i)) & 0x3f) * 8;
}

struct go_gkey {
	__u32 pid;
	__u32 _pad;
	__u64 goid;
};

/* The server request a goroutine works for: its connection, when its handler started, and the
 * goroutine serving it (whose own entry says whether the request is still in flight). */
struct go_req {
	__u64 conn_id;
	__u64 ts_ns;
	__u64 goid;
};

/* LRU: goroutines whose exit we missed (probes attached after they started) age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_gkey);
	__type(value, struct go_req);
} go_reqs SEC(".maps");

/* newproc1 entry → its RETs, per thread: it runs on the system stack (g0), never migrates. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct go_req);
} go_spawning SEC(".maps");

static __always_inline __u64 read_goid(__u64 g, __u64 cookie)
{
	__u64 goid = 0;
	if (!g || bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + hoff(cookie, GH_G_GOID))))
		return 0;
	return goid;
}

static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;
	if (!addr || bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* The tracked connection behind an http.conn or persistConn: its net.Conn is a *tls.Conn when
 * the holder has a TLS state, else a *net.TCPConn (another net.Conn yields an fd the socket
 * tracer does not track: no link). 0 when unknown. */
static __always_inline __u64 holder_conn_id(__u32 pid, __u64 holder, __u64 cookie, __u8 role)
{
	__u64 c = read_ptr(holder + hoff(cookie, GH_HOLDER_CONN));
	if (read_ptr(holder + hoff(cookie, GH_HOLDER_TLS)))
		c = read_ptr(c + hoff(cookie, GH_TLS_CONN_DATA));
	__u64 netfd = read_ptr(c + hoff(cookie, GH_TCP_CONN_FD));
	__s64 sysfd = (__s64)read_ptr(netfd + hoff(cookie, GH_NETFD_SYSFD));
	if (!netfd)
		return 0;
	struct tg_conn_info *ci = tls_conn(pid, sysfd);
	/* The role the socket tracer saw (accept/connect) must match: a layout the offsets table
	 * got wrong then yields no link rather than one on another socket. */
	return ci && ci->role == role ? ci->conn_id : 0;
}

/* serverHandler.ServeHTTP(sh, rw ResponseWriter, req): rax = sh.srv, rbx/rcx = rw. Only
 * HTTP/1's *http.response is followed, recognized by response.conn.server == sh.srv (HTTP/2's
 * responseWriter has another shape and fails the check). */
static __always_inline int on_serve_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if (!pid_wanted(pid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 hc = read_ptr(ctx->cx + hoff(cookie, GH_RESP_CONN));
	if (!hc || read_ptr(hc + hoff(cookie, GH_CONN_SERVER)) != ctx->ax)
		return 0;
	struct go_req r = { .conn_id = holder_conn_id(pid, hc, cookie, TG_ROLE_SERVER), .ts_ns = bpf_ktime_get_ns() };
	r.goid = read_goid(ctx->r14, cookie);
	if (!r.conn_id || !r.goid)
		return 0;
	struct go_gkey k = { .pid = pid, .goid = r.goid };
	bpf_map_update_elem(&go_reqs, &k, &r, BPF_ANY);
	return 0;
}

/* Each RET of ServeHTTP: the request is over; goroutines it spawned keep their (now stale)
 * entry until they exit, and a call they make later finds the request gone (no link). */
static __always_inline int on_serve_return(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct go_gkey k = { .pid = bpf_get_current_pid_tgid() >> 32, .goid = read_goid(ctx->r14, cookie) };
	struct go_req *r = bpf_map_lookup_elem(&go_reqs, &k);
	if (r && r->goid == k.goid)
		bpf_map_delete_elem(&go_reqs, &k);
	return 0;
}

/* runtime.newproc1(fn, callergp *g, callerpc) *g: rbx = the spawning goroutine. Most spawns
 * are outside any request and stop at the lookup. */
static __always_inline int on_spawn_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct go_gkey k = { .pid = id >> 32, .goid = read_goid(ctx->bx, cookie) };
	struct go_req *r = bpf_map_lookup_elem(&go_reqs, &k);
	if (r) {
		struct go_req copy = *r;
		bpf_map_update_elem(&go_spawning, &id, &copy, BPF_ANY);
	}
	return 0;
}

/* Each RET of newproc1: rax = the new g, its goid already assigned. */
static __always_inline int on_spawn_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct go_req *p = bpf_map_lookup_elem(&go_spawning, &id);
	if (!p)
		return 0;
	struct go_req r = *p;
	bpf_map_delete_elem(&go_spawning, &id);
	struct go_gkey k = { .pid = id >> 32, .goid = read_goid(ctx->ax, bpf_get_attach_cookie(ctx)) };
	if (k.goid)
		bpf_map_update_elem(&go_reqs, &k, &r, BPF_ANY);
	return 0;
}

/* runtime.goexit0(gp), reached from goexit1 through mcall, on g0: rax = the exiting goroutine.
 * (goexit1 itself has two entries of one name, its body and an ABI0 wrapper, which a stripped
 * binary cannot tell apart.) */
static __always_inline int on_exit_enter(struct pt_regs *ctx)
{
	struct go_gkey k = { .pid = bpf_get_current_pid_tgid() >> 32, .goid = read_goid(ctx->ax, bpf_get_attach_cookie(ctx)) };
	bpf_map_delete_elem(&go_reqs, &k);
	return 0;
}

/* (*persistConn).roundTrip(req): rax = pc. Runs on the caller's goroutine (the request is then
 * written by the connection's writeLoop goroutine, on whatever thread). */
static __always_inline int on_client_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct go_gkey k = { .pid = pid, .goid = read_goid(ctx->r14, cookie) };
	struct go_req *r = bpf_map_lookup_elem(&go_reqs, &k);
	if (!r)
		return 0;
	struct go_req req = *r;
	/* The serving goroutine's own entry still holds this request: it is in flight. */
	struct go_gkey sk = { .pid = pid, .goid = req.goid };
	struct go_req *s = bpf_map_lookup_elem(&go_reqs, &sk);
	if (!s || s->ts_ns != req.ts_ns || s->goid != req.goid)
		return 0;
	__u64 conn_id = holder_conn_id(pid, ctx->ax, cookie, TG_ROLE_CLIENT);
	if (!conn_id) {
		stat_inc(TG_TLS_STAT_NO_CONN);
		return 0;
	}
	struct tg_go_link_event *e = bpf_ringbuf_reserve(&tg_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_TLS_STAT_RING_FULL);
		return 0;
	}
	e->type = TG_EV_GO_LINK;
	e->pid = pid;
	e->ts_ns = bpf_ktime_get_ns();
	e->conn_id = conn_id;
	e->parent_conn_id = req.conn_id;
	e->parent_ts_ns = req.ts_ns;
	e->goid = k.goid;
	e->parent_goid = req.goid;
	bpf_ringbuf_submit(e, 0);
	stat_inc(TG_TLS_STAT_LINKS);
	return 0;
}

/* Each program twice: perf-event uprobe and uprobe_multi link. */
TG_UPROBE_PAIR(go_serve_enter, on_serve_enter(ctx))
TG_UPROBE_PAIR(go_serve_return, on_serve_return(ctx))
TG_UPROBE_PAIR(go_spawn_enter, on_spawn_enter(ctx))
TG_UPROBE_PAIR(go_spawn_return, on_spawn_return(ctx))
TG_UPROBE_PAIR(go_exit_enter, on_exit_enter(ctx))
TG_UPROBE_PAIR(go_client_enter, on_client_enter(ctx))
