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
struct tg_tls_handshake_event tg_anchor_tls_handshake_event __attribute__((used));
enum tg_tls_record tg_anchor_tls_record __attribute__((used));
enum tg_tls_hs_outcome tg_anchor_tls_hs_outcome __attribute__((used));
enum tg_tls_library tg_anchor_tls_library __attribute__((used));

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

enum sock_guess {
	SOCK_KNOWN = 0, /* only a socket the call itself used, or the one remembered for the object */
	SOCK_GUESS = 1, /* else the thread's last socket (a memory-BIO writer encrypts before it writes) */
	SOCK_LEARN = 2, /* ... and remember it (a memory-BIO reader decrypts right after its read) */
};

/* The socket of object `ssl` for a call that began at the thread's data_seq `seq`, or -1. */
static __always_inline __s64 ssl_socket(__u64 ssl, __u32 pid, __u32 seq, int guess)
{
	struct ssl_key sk = { .ssl = ssl, .pid = pid };
	struct tg_thread_call *t = thread_calls();
	__u32 fd;

	if (t && t->data_seq != seq) {
		fd = t->data_fd;
		bpf_map_update_elem(&tls_ssl_fd, &sk, &fd, BPF_ANY);
		return fd;
	}
	__u32 *known = bpf_map_lookup_elem(&tls_ssl_fd, &sk);
	if (known)
		return *known;
	if (guess == SOCK_KNOWN || !t || !t->data_seq)
		return -1;
	fd = t->data_fd;
	if (guess == SOCK_LEARN)
		bpf_map_update_elem(&tls_ssl_fd, &sk, &fd, BPF_ANY);
	return fd;
}

static __always_inline void emit(struct ssl_call *c, __u64 id, __u64 moved)
{
	bool rd = c->op == TLS_OP_READ;
	struct tg_conn_info *ci = tls_conn(id >> 32, ssl_socket(c->ssl, id >> 32, c->seq, rd ? SOCK_LEARN : SOCK_GUESS));
	if (!ci) {
		stat_inc(TG_TLS_STAT_NO_CONN);
		return;
	}
	/* A write is stamped when it began: with a socket BIO (curl) the ciphertext leaves inside the
	 * call, and on a busy machine the peer read, answered and its span ended before the return. */
	tls_emit_tail(&tls_pos, &tls_scratch, ci, id, rd ? TG_DIR_INGRESS : TG_DIR_EGRESS, c->buf, moved, capture_max,
		      capture_tail, rd ? bpf_ktime_get_ns() : c->ts);
}

/* ---- Handshakes ----
 * A handshake that fails leaves no plaintext, so nothing above sees it. The object's handshake is
 * followed from its start (SSL_set_connect_state/SSL_set_accept_state, a handshake call) to its
 * first plaintext byte, when its entry in hs_state goes: the common case costs one lookup per
 * plaintext call. It is reported failed when
 *  - a call that may handshake returns failure and raised an error on the way (OpenSSL's
 *    ERR_vset_error, which every SSLfatal and ERR_raise reaches: the error queue is what
 *    SSL_get_error reads to say SSL_ERROR_SSL instead of WANT_READ/WANT_WRITE), or
 *    SSL_do_handshake returned 0, or GnuTLS returned a fatal code — a non-blocking handshake's
 *    WANT_READ/WANT_WRITE (GNUTLS_E_AGAIN) raises none and is no failure;
 *  - the object is freed with its handshake unfinished (the peer closed or reset: no error is
 *    raised for that), or finished with a certificate that did not verify and never used (node
 *    verifies after OpenSSL's handshake, then destroys the socket).
 * Node's TLS does its handshake inside SSL_read/SSL_write, never calling SSL_do_handshake: those
 * calls count as handshake calls while the object has no plaintext yet.
 *
 * Whether a handshake finished and the verify result are fields of the SSL object: the host reads
 * their offsets out of SSL_in_init and SSL_get_verify_result (each one load from the object) of
 * the file and passes them as the attach cookie (in_init << 32 | verify_result); 0: unknown. */

enum { HS_EXPLICIT = 1, HS_DONE = 2, HS_UNVERIFIED = 4 };

struct hs_call {
	__u64 ssl;
	__u64 ts;
	__u32 seq;
	__u8 side; /* enum tg_role: SSL_connect, SSL_accept; 0 for SSL_do_handshake, gnutls_handshake */
	__u8 lib;  /* enum tg_tls_library */
	__u8 _pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_CALLS_MAX);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct hs_call);
} hs_calls SEC(".maps");

struct hs_state {
	__u64 start_ns;
	__u8 side;     /* enum tg_role, from the calls */
	__u8 lib;
	__u8 flags;    /* HS_EXPLICIT: a handshake function ran; HS_DONE: one returned success */
	__u8 has_conn;
	__u32 _pad;
	struct tg_conn_info conn; /* kept: a failure may be seen after the socket closed */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_HS_MAX);
	__type(key, struct ssl_key);
	__type(value, struct hs_state);
} hs_state SEC(".maps");

/* The first error a thread's call in flight raised (OpenSSL's ERR_vset_error). */
struct hs_err {
	__u64 call_ts; /* entry time of that call: an error of an earlier call does not count */
	__u32 lib;
	__u32 reason;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_CALLS_MAX);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct hs_err);
} hs_errs SEC(".maps");

#define ERR_LIB_SSL 20

static __always_inline void hs_begin(__u64 ssl, __u32 pid, __u8 side, __u8 lib, __u8 flags, bool fresh)
{
	struct ssl_key sk = { .ssl = ssl, .pid = pid };
	struct hs_state *st = fresh ? NULL : bpf_map_lookup_elem(&hs_state, &sk);
	if (st) {
		if (!st->side)
			st->side = side;
		st->flags |= flags;
		return;
	}
	struct hs_state n = { .start_ns = bpf_ktime_get_ns(), .side = side, .lib = lib, .flags = flags };
	bpf_map_update_elem(&hs_state, &sk, &n, BPF_ANY);
}

static __always_inline void hs_note_conn(struct hs_state *st, __u32 pid, __s64 fd)
{
	if (st->has_conn)
		return;
	struct tg_conn_info *ci = tls_conn(pid, fd);
	if (!ci)
		return;
	st->conn = *ci;
	st->has_conn = 1;
}

static __always_inline __u8 hs_side(struct hs_state *st)
{
	return st->has_conn && st->conn.role ? st->conn.role : st->side;
}

static __always_inline void hs_count(__u32 ok_or_failed, __u8 side)
{
	stat_inc(ok_or_failed + (side == TG_ROLE_CLIENT ? 0 : side == TG_ROLE_SERVER ? 1 : 2));
}

/* One TG_EV_TLS_HANDSHAKE record. */
static __always_inline void hs_record(struct hs_state *st, __u64 id, __u8 outcome, __s32 ret, struct hs_err *e,
				      __s32 verify)
{
	__u8 side = hs_side(st);
	struct tg_tls_handshake_event *ev = bpf_ringbuf_reserve(&tg_ring, sizeof(*ev), 0);
	if (ev) {
		ev->type = TG_EV_TLS_HANDSHAKE;
		ev->outcome = outcome;
		ev->library = st->lib;
		ev->side = side;
		ev->has_conn = st->has_conn;
		ev->start_ns = st->start_ns;
		ev->ts_ns = bpf_ktime_get_ns();
		ev->ret = ret;
		ev->err_lib = e ? e->lib : 0;
		ev->err_reason = e ? e->reason : 0;
		ev->verify = verify;
		ev->conn = st->conn;
		if (!st->has_conn) {
			ev->conn.pid = id >> 32;
			ev->conn.cgroup_id = bpf_get_current_cgroup_id();
			bpf_get_current_comm(ev->conn.comm, sizeof(ev->conn.comm));
		}
		ev->conn.tid = (__u32)id;
		bpf_ringbuf_submit(ev, 0);
	} else {
		stat_inc(TG_TLS_STAT_RING_FULL);
	}
}

/* A failure: its record, its count; the object's handshake is then over for us. */
static __always_inline void hs_report(struct hs_state *st, struct ssl_key *sk, __u64 id, __u8 outcome, __s32 ret,
				      struct hs_err *e, __s32 verify)
{
	hs_record(st, id, outcome, ret, e, verify);
	hs_count(TG_TLS_STAT_HS_FAILED_CLIENT, hs_side(st));
	bpf_map_delete_elem(&hs_state, sk);
}

static __always_inline struct hs_err *hs_error_of(__u64 id, __u64 call_ts)
{
	struct hs_err *e = bpf_map_lookup_elem(&hs_errs, &id);
	return e && e->call_ts == call_ts ? e : NULL;
}

/* A field of the SSL object at the offset in the cookie's half (`hi`), or -1 when unknown. */
static __always_inline __s32 ssl_field(__u64 ssl, __u64 cookie, bool hi)
{
	__u32 off = hi ? cookie >> 32 : (__u32)cookie;
	__s32 v;
	if (!off || bpf_probe_read_user(&v, sizeof(v), (void *)(ssl + off)))
		return -1;
	return v;
}

/* Whether the object's handshake state machine never left TLS_ST_BEFORE (0): no ClientHello was
 * sent (client) or taken in (server). A TCP connect-and-close to a TLS port (a load balancer's or
 * kubelet's tcpSocket probe, a port scan, a capture's readiness check) is no handshake: node
 * frees such a server object with in_init set, and each probe was a failure span. OpenSSL
 * (1.1.0 to 3.x) keeps statem.hand_state two ints before statem.in_init (hand_state,
 * request_state, in_init), whose offset the cookie has: that is read here. */
static __always_inline bool hs_never_began(__u64 ssl, __u64 cookie)
{
	__u32 off = cookie >> 32;
	__s32 v;
	if (off < 8 || bpf_probe_read_user(&v, sizeof(v), (void *)(ssl + off - 8)))
		return false;
	return v == 0;
}

/* Plaintext moved: the handshake completed and the connection is in use. */
static __always_inline void hs_used(__u64 ssl, __u32 pid)
{
	struct ssl_key sk = { .ssl = ssl, .pid = pid };
	struct hs_state *st = bpf_map_lookup_elem(&hs_state, &sk);
	if (!st)
		return;
	if (st->flags & HS_UNVERIFIED)
		hs_record(st, bpf_get_current_pid_tgid(), TG_TLS_HS_USED, 0, NULL, 0);
	hs_count(TG_TLS_STAT_HS_OK_CLIENT, hs_side(st));
	bpf_map_delete_elem(&hs_state, &sk);
}

/* A read or write that failed on an object with no plaintext yet (node handshakes inside them). */
static __always_inline void hs_io_failed(struct ssl_call *c, __u64 id, __s32 ret, __u64 cookie)
{
	__u32 pid = id >> 32;
	struct ssl_key sk = { .ssl = c->ssl, .pid = pid };
	struct hs_state *st = bpf_map_lookup_elem(&hs_state, &sk);
	if (!st)
		return;
	hs_note_conn(st, pid, ssl_socket(c->ssl, pid, c->seq, c->op == TLS_OP_READ ? SOCK_LEARN : SOCK_GUESS));
	struct hs_err *e = hs_error_of(id, c->ts);
	if (e)
		hs_report(st, &sk, id, TG_TLS_HS_FATAL, ret, e, ssl_field(c->ssl, cookie, false));
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
		if ((int)ret != 1) {
			hs_io_failed(&c, id, (int)ret, bpf_get_attach_cookie(ctx));
			return 0;
		}
		if (bpf_probe_read_user(&moved, sizeof(moved), (void *)c.moved_ptr)) {
			stat_inc(TG_TLS_STAT_READ_FAULT);
			return 0;
		}
	} else {
		if ((int)ret <= 0) {
			hs_io_failed(&c, id, (int)ret, bpf_get_attach_cookie(ctx));
			return 0;
		}
		moved = (int)ret;
	}
	if (moved == 0)
		return 0;
	/* Plaintext read: the peer is talking to us, the handshake is done with. A write is not
	 * enough: node writes the request it holds the moment OpenSSL's handshake ends, and its
	 * verification (after that) may still throw the connection away. */
	if (c.op == TLS_OP_READ)
		hs_used(c.ssl, id >> 32);
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

/* SSL_do_handshake, SSL_connect, SSL_accept (both jump to SSL_do_handshake: the first entry's
 * call stays, the inner return takes it), gnutls_handshake. */
static __always_inline int hs_enter(struct pt_regs *ctx, __u8 side, __u8 lib)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if (!pid_wanted(pid))
		return 0;
	__u64 ssl = PT_REGS_PARM1(ctx);
	struct hs_call *prev = bpf_map_lookup_elem(&hs_calls, &id);
	if (prev && prev->ssl == ssl) {
		if (!prev->side)
			prev->side = side;
		return 0;
	}
	/* A handshake call on an established connection (a renegotiation, a caller that calls
	 * SSL_do_handshake before each use) returns at once: not a handshake to follow. */
	if (lib == TG_TLS_LIB_OPENSSL && ssl_field(ssl, bpf_get_attach_cookie(ctx), true) == 0)
		return 0;
	struct tg_thread_call *t = thread_calls();
	struct hs_call c = { .ssl = ssl, .ts = bpf_ktime_get_ns(), .seq = t ? t->data_seq : 0, .side = side, .lib = lib };
	bpf_map_update_elem(&hs_calls, &id, &c, BPF_ANY);
	hs_begin(ssl, pid, side, lib, HS_EXPLICIT, false);
	return 0;
}

TG_UPROBE_PAIR(tls_hs_enter, hs_enter(ctx, TG_ROLE_UNKNOWN, TG_TLS_LIB_OPENSSL))
TG_UPROBE_PAIR(tls_hs_connect, hs_enter(ctx, TG_ROLE_CLIENT, TG_TLS_LIB_OPENSSL))
TG_UPROBE_PAIR(tls_hs_accept, hs_enter(ctx, TG_ROLE_SERVER, TG_TLS_LIB_OPENSSL))
TG_UPROBE_PAIR(gnutls_hs_enter, hs_enter(ctx, TG_ROLE_UNKNOWN, TG_TLS_LIB_GNUTLS))

/* GnuTLS codes that leave a handshake going (gnutls_error_is_fatal() is 0 for them). */
static __always_inline bool gnutls_fatal(int ret)
{
	switch (ret) {
	case -28: /* GNUTLS_E_AGAIN */
	case -52: /* GNUTLS_E_INTERRUPTED */
	case -16: /* GNUTLS_E_WARNING_ALERT_RECEIVED */
	case -37: /* GNUTLS_E_REHANDSHAKE */
	case -38: /* GNUTLS_E_GOT_APPLICATION_DATA */
	case -7:  /* GNUTLS_E_LARGE_PACKET */
		return false;
	}
	return true;
}

static __always_inline int hs_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	struct hs_call *p = bpf_map_lookup_elem(&hs_calls, &id);
	if (!p)
		return 0;
	struct hs_call c = *p;
	bpf_map_delete_elem(&hs_calls, &id);
	int ret = (int)PT_REGS_RC(ctx);
	struct ssl_key sk = { .ssl = c.ssl, .pid = pid };
	struct hs_state *st = bpf_map_lookup_elem(&hs_state, &sk);
	if (!st)
		return 0;
	hs_note_conn(st, pid, ssl_socket(c.ssl, pid, c.seq, SOCK_KNOWN));
	if (c.lib == TG_TLS_LIB_GNUTLS) {
		if (ret == 0)
			st->flags |= HS_DONE;
		else if (gnutls_fatal(ret))
			hs_report(st, &sk, id, TG_TLS_HS_FATAL, ret, NULL, -1);
		return 0;
	}
	if (ret == 1) {
		st->flags |= HS_DONE;
		return 0;
	}
	/* -1 without an error: WANT_READ/WANT_WRITE of a non-blocking handshake (or an I/O error,
	 * which the object's free reports). 0: "shut down controlled", a failure either way. */
	struct hs_err *e = hs_error_of(id, c.ts);
	if (e || ret == 0)
		hs_report(st, &sk, id, TG_TLS_HS_FATAL, ret, e, ssl_field(c.ssl, bpf_get_attach_cookie(ctx), false));
	return 0;
}

SEC("uretprobe")
int tls_hs_exit(struct pt_regs *ctx) { return hs_exit(ctx); }

SEC("uprobe")
int tls_hs_exit_multi(struct pt_regs *ctx) { return hs_exit(ctx); }

/* SSL_set_connect_state/SSL_set_accept_state: a handshake begins on the object. Node calls
 * nothing else before its SSL_read/SSL_write. */
static __always_inline int hs_set_state(struct pt_regs *ctx, __u8 side)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	/* Not afresh: SSL_connect calls SSL_set_connect_state itself, inside the handshake call
	 * whose state is already kept; SSL_free ends an address's state, so a reused one starts new. */
	if (pid_wanted(pid))
		hs_begin(PT_REGS_PARM1(ctx), pid, side, TG_TLS_LIB_OPENSSL, 0, false);
	return 0;
}

TG_UPROBE_PAIR(tls_hs_set_connect, hs_set_state(ctx, TG_ROLE_CLIENT))
TG_UPROBE_PAIR(tls_hs_set_accept, hs_set_state(ctx, TG_ROLE_SERVER))

/* SSL_free, gnutls_deinit: the object's last chance to say how its handshake ended. */
static __always_inline int hs_free(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	struct ssl_key sk = { .ssl = PT_REGS_PARM1(ctx), .pid = pid };
	/* The address may hold another object next: its socket is learned again. */
	bpf_map_delete_elem(&tls_ssl_fd, &sk);
	struct hs_state *st = bpf_map_lookup_elem(&hs_state, &sk);
	if (!st)
		return 0;
	/* Nothing went over a socket we know (an object set up, then its TCP connect failed). */
	if (!st->has_conn) {
		bpf_map_delete_elem(&hs_state, &sk);
		return 0;
	}
	/* The caller was told its peer's certificate did not verify: the host decides at the close. */
	if (st->flags & HS_UNVERIFIED) {
		bpf_map_delete_elem(&hs_state, &sk);
		return 0;
	}
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__s32 in_init = st->lib == TG_TLS_LIB_OPENSSL ? ssl_field(sk.ssl, cookie, true) : -1;
	__s32 verify = st->lib == TG_TLS_LIB_OPENSSL ? ssl_field(sk.ssl, cookie, false) : -1;
	/* A handshake call's success outranks in_init: TLS 1.3 sets it again while a post-handshake
	 * message (a session ticket) is read, and a read that stopped in one leaves it set (curl
	 * closing after its own host name check read 1 here). */
	bool done = (st->flags & HS_DONE) || in_init == 0;
	if (done && verify > 0)
		hs_report(st, &sk, id, TG_TLS_HS_REJECTED, 0, NULL, verify);
	else if (done)
		hs_used(sk.ssl, pid);
	else if ((in_init > 0 || (st->flags & HS_EXPLICIT)) && !hs_never_began(sk.ssl, cookie))
		hs_report(st, &sk, id, TG_TLS_HS_INCOMPLETE, 0, NULL, verify);
	else
		bpf_map_delete_elem(&hs_state, &sk);
	return 0;
}

TG_UPROBE_PAIR(tls_hs_free, hs_free(ctx))

/* SSL_get_verify_result(ssl): what it returns is the field the cookie locates, read at the entry. */
static __always_inline int hs_verify(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if (!pid_wanted(pid))
		return 0;
	struct ssl_key sk = { .ssl = PT_REGS_PARM1(ctx), .pid = pid };
	struct hs_state *st = bpf_map_lookup_elem(&hs_state, &sk);
	if (!st || !st->has_conn || (st->flags & HS_UNVERIFIED))
		return 0;
	__s32 verify = ssl_field(sk.ssl, bpf_get_attach_cookie(ctx), false);
	if (verify <= 0)
		return 0;
	st->flags |= HS_UNVERIFIED;
	hs_record(st, id, TG_TLS_HS_UNVERIFIED, 0, NULL, verify);
	return 0;
}

TG_UPROBE_PAIR(tls_hs_verify, hs_verify(ctx))

/* ERR_vset_error(lib, reason, fmt, args) and ERR_set_error(lib, reason, fmt, ...): OpenSSL's
 * error queue (SSLfatal calls the first). Hooked at libssl's PLT stubs for them, so only libssl's
 * own errors trap, or on the function where OpenSSL is linked in (node). The first ERR_LIB_SSL
 * error of the thread's TLS call in flight is kept for that call. */
static __always_inline int err_raised(struct pt_regs *ctx)
{
	/* Only the TLS layer's own: OpenSSL 3 raises, then pops, errors of other libraries inside a
	 * handshake that goes on (decoding the peer's public key tries its decoders one by one), and
	 * a fatal handshake error is always raised as ERR_LIB_SSL (SSLfatal). */
	if ((__u32)PT_REGS_PARM1(ctx) != ERR_LIB_SSL)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	if (!pid_wanted(id >> 32))
		return 0;
	__u64 call_ts;
	struct hs_call *h = bpf_map_lookup_elem(&hs_calls, &id);
	if (h) {
		call_ts = h->ts;
	} else {
		struct ssl_call *c = bpf_map_lookup_elem(&tls_calls, &id);
		if (!c)
			return 0;
		call_ts = c->ts;
	}
	struct hs_err *e = bpf_map_lookup_elem(&hs_errs, &id);
	if (e && e->call_ts == call_ts)
		return 0;
	struct hs_err n = { .call_ts = call_ts, .lib = ERR_LIB_SSL, .reason = (__u32)PT_REGS_PARM2(ctx) };
	bpf_map_update_elem(&hs_errs, &id, &n, BPF_ANY);
	return 0;
}

TG_UPROBE_PAIR(tls_err_raised, err_raised(ctx))

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

