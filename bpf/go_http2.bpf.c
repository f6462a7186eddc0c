// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* HTTP/2 header fields from Go's own HPACK code (net/http's bundled http2 and its vendored
 * hpack, golang.org/x/net/http2 and hpack as gRPC-Go uses them). On a connection older than the
 * agent, HPACK on the wire refers to dynamic-table entries inserted before we looked — and Go's
 * encoder indexes every field it may — so :path, :authority, content-type are unknown there.
 * The process's own encoder and decoder see every field in the clear: each one becomes a
 * TG_DATA_H2_FIELD record (struct tg_tls_h2_field, the same as the nghttp2 uprobes of
 * tls.bpf.c), which the http2 decoder takes as a hint (decoders/http2/hint.ts).
 *
 * The HPACK functions know neither the stream nor the connection, so a "block" probe at the
 * entry of the function that frames one header block records, per goroutine, which stream and
 * which socket the fields that follow on that goroutine belong to; the RETs of that function
 * end the block (entry probes only, RETs found by the host: no uretprobes in Go).
 *   decoded:  (*Framer).readMetaFrame(hf *HeadersFrame)  rbx = hf, StreamID at +8; the socket
 *             is the TLS conn this goroutine last read or wrote (Framer.r may be a bufio.Reader;
 *             every Go HTTP/2 reader reads its frames on one goroutine per connection)
 *             fields: readMetaFrame.func1(hf HeaderField), the emit closure: rax/rbx name, rcx/rdi value
 *   encoded:  (*writeResHeaders).writeFrame(ctx writeContext)  server: rax = w (streamID at +0),
 *             rcx = the *serverConn, whose .conn is the *tls.Conn
 *             (*clientStream).encodeAndWriteHeaders(req)  client: rax = cs, cs.cc.tconn, cs.ID
 *             (*loopyWriter).writeHeader(streamID, ...)  gRPC-Go: rbx = stream, socket as for decoded
 *             fields: hpack.(*Encoder).WriteField(f HeaderField): rbx/rcx name, rdi/rsi value
 * A block's first field tells headers (a pseudo-header) from trailers (never one).
 *
 * Struct offsets come in each probe's cookie, 8 bits each (packH2Cookie, host/src/gotrace/
 * http2.ts): 0-2 the tls.Conn → fd chain of host/src/gotrace/offsets.ts, 3-4 the block
 * probe's own two. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "telegen.h"
#include "tls.h"
#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

TG_PID_FILTER

/* enum tg_tls_stat: H2_FIELDS, H2_NO_CONN, READ_FAULT, RING_FULL are the ones used here. */
TG_STATS(go_h2_stats, TG_TLS_STAT_MAX)

#include "tls_emit.h"
#include "go_conn.h"

/* Goroutine → socket fd of the TLS conn it last read or wrote. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_CALLS_MAX);
	__type(key, struct g_key);
	__type(value, __u32);
} go_h2_gfd SEC(".maps");

enum { BLOCK_UNKNOWN = 0xff };

struct h2_block {
	__s32 fd;
	__u32 stream;
	__u8 dir;
	__u8 block; /* enum tg_tls_h2_block, BLOCK_UNKNOWN until its first field */
	__u8 _pad[2];
};

/* Goroutine → the header block it is encoding or decoding now. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_TLS_CALLS_MAX);
	__type(key, struct g_key);
	__type(value, struct h2_block);
} go_h2_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_h2_scratch);
} go_h2_scratch SEC(".maps");

static __always_inline __u64 cookie_field(__u64 cookie, int i)
{
	return (cookie >> (8 * i)) & 0xff;
}

static __always_inline __u64 cookie_ctx(__u64 cookie, int i)
{
	return cookie_field(cookie, 3 + i);
}

/* *tls.Conn → its socket fd, or -1 (offsets 0-2 of the cookie: the chain of go_tls.bpf.c). */
static __always_inline __s32 tls_conn_fd(__u64 cookie, __u64 tls_conn)
{
	__s64 sysfd;
	if (!go_tls_sysfd(tls_conn, cookie_field(cookie, 0), cookie_field(cookie, 1), cookie_field(cookie, 2), &sysfd) ||
	    sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	return (__s32)sysfd;
}

static __always_inline void begin(struct pt_regs *ctx, __u32 pid, __s32 fd, __u32 stream, __u8 dir)
{
	struct g_key k = go_gkey(ctx, pid);
	struct h2_block b = { .fd = fd, .stream = stream, .dir = dir, .block = BLOCK_UNKNOWN };
	bpf_map_update_elem(&go_h2_blocks, &k, &b, BPF_ANY);
}

static __always_inline __s32 goroutine_fd(struct pt_regs *ctx, __u32 pid)
{
	struct g_key k = go_gkey(ctx, pid);
	__u32 *fd = bpf_map_lookup_elem(&go_h2_gfd, &k);
	return fd ? (__s32)*fd : -1;
}

/* crypto/tls.(*Conn).Read and Write entries: which socket this goroutine works on. */
static __always_inline int tls_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if (!pid_wanted(pid))
		return 0;
	__s32 fd = tls_conn_fd(bpf_get_attach_cookie(ctx), ctx->ax);
	if (fd < 0)
		return 0;
	struct g_key k = go_gkey(ctx, pid);
	__u32 f = fd;
	bpf_map_update_elem(&go_h2_gfd, &k, &f, BPF_ANY);
	return 0;
}

/* (*Framer).readMetaFrame(hf *HeadersFrame): the fields decoded next are hf's stream's. */
static __always_inline int read_block(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!pid_wanted(pid))
		return 0;
	__u32 sid = 0;
	if (bpf_probe_read_user(&sid, sizeof(sid), (void *)(ctx->bx + cookie_ctx(bpf_get_attach_cookie(ctx), 0)))) {
		stat_inc(TG_TLS_STAT_READ_FAULT);
		return 0;
	}
	begin(ctx, pid, goroutine_fd(ctx, pid), sid, TG_DIR_INGRESS);
	return 0;
}

/* (*writeResHeaders).writeFrame(ctx writeContext): the server's response headers or trailers. */
static __always_inline int server_block(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!pid_wanted(pid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 sid = 0;
	__u64 conn = 0;
	if (bpf_probe_read_user(&sid, sizeof(sid), (void *)(ctx->ax + cookie_ctx(cookie, 0))) ||
	    bpf_probe_read_user(&conn, sizeof(conn), (void *)(ctx->cx + cookie_ctx(cookie, 1)))) {
		stat_inc(TG_TLS_STAT_READ_FAULT);
		return 0;
	}
	begin(ctx, pid, tls_conn_fd(cookie, conn), sid, TG_DIR_EGRESS);
	return 0;
}

/* (*clientStream).encodeAndWriteHeaders(req): the request headers of stream cs.ID on cs.cc. */
static __always_inline int client_block(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!pid_wanted(pid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 sid = 0;
	__u64 cc = 0, conn = 0;
	/* cs.cc is the struct's first field in every version. */
	if (bpf_probe_read_user(&sid, sizeof(sid), (void *)(ctx->ax + cookie_ctx(cookie, 0))) ||
	    bpf_probe_read_user(&cc, sizeof(cc), (void *)ctx->ax) || !cc ||
	    bpf_probe_read_user(&conn, sizeof(conn), (void *)(cc + cookie_ctx(cookie, 1)))) {
		stat_inc(TG_TLS_STAT_READ_FAULT);
		return 0;
	}
	begin(ctx, pid, tls_conn_fd(cookie, conn), sid, TG_DIR_EGRESS);
	return 0;
}

/* gRPC-Go (*loopyWriter).writeHeader(streamID uint32, endStream bool, hf, onWrite). */
static __always_inline int grpc_block(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!pid_wanted(pid))
		return 0;
	begin(ctx, pid, goroutine_fd(ctx, pid), (__u32)ctx->bx, TG_DIR_EGRESS);
	return 0;
}

static __always_inline int block_end(struct pt_regs *ctx)
{
	struct g_key k = go_gkey(ctx, bpf_get_current_pid_tgid() >> 32);
	bpf_map_delete_elem(&go_h2_blocks, &k);
	return 0;
}

static __always_inline int field(struct pt_regs *ctx, __u64 name, __u64 nl, __u64 value, __u64 vl)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	struct g_key k = go_gkey(ctx, pid);
	struct h2_block *b = bpf_map_lookup_elem(&go_h2_blocks, &k);
	if (!b)
		return 0; /* an encoder or decoder outside a block we know (e.g. request trailers) */
	if (nl == 0 || nl > TG_TLS_H2_NAME_MAX)
		return 0;
	if (b->block == BLOCK_UNKNOWN) {
		char c = 0;
		if (bpf_probe_read_user(&c, 1, (void *)name)) {
			stat_inc(TG_TLS_STAT_READ_FAULT);
			return 0;
		}
		b->block = c == ':' ? TG_TLS_H2_HEADERS : TG_TLS_H2_TRAILERS;
	}
	__u32 zero = 0;
	struct tls_h2_scratch *s = bpf_map_lookup_elem(&go_h2_scratch, &zero);
	if (s)
		tls_h2_field_emit(s, id, b->fd, b->dir, b->stream, b->block, name, nl, value, vl);
	return 0;
}

/* One program per role, each with its uprobe_multi twin (common.h). */
TG_UPROBE_PAIR(go_h2_tls_enter, tls_enter(ctx))
TG_UPROBE_PAIR(go_h2_read_block, read_block(ctx))
TG_UPROBE_PAIR(go_h2_server_block, server_block(ctx))
TG_UPROBE_PAIR(go_h2_client_block, client_block(ctx))
TG_UPROBE_PAIR(go_h2_grpc_block, grpc_block(ctx))
TG_UPROBE_PAIR(go_h2_block_end, block_end(ctx))
TG_UPROBE_PAIR(go_h2_decoded_field, field(ctx, ctx->ax, ctx->bx, ctx->cx, ctx->di))
TG_UPROBE_PAIR(go_h2_encoded_field, field(ctx, ctx->bx, ctx->cx, ctx->di, ctx->si))
