/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Records into the socket tracer's ring, shared by the plaintext tracers (tls.bpf.c for
 * OpenSSL and nghttp2, go_tls.bpf.c for Go's crypto/tls, go_http2.bpf.c for Go's HPACK code):
 * once a call's socket is known, its bytes become one tg_data_event with TG_DATA_TLS,
 * positioned in the connection's plaintext stream, and a header field one with
 * TG_DATA_H2_FIELD. The includer defines stat_inc() (TG_STATS, common.h) on enum tg_tls_stat. */
#ifndef TELEGEN_TLS_EMIT_H
#define TELEGEN_TLS_EMIT_H

#include "common.h"

/* The socket tracer's maps: the loader replaces both with the socket tracer's by fd before
 * load (shareMaps → bpf_map__reuse_fd), so the sizes here only matter for a stand-alone load.
 * Only the leading tg_conn_info of a tg_conns value is read: a plaintext record carries the
 * connection identity the socket tracer gave its ciphertext. */
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

/* Scratch for one plaintext record (the largest): an array indexed by CPU, since a per-CPU
 * map value cannot be this large (32 KiB limit). */
struct tls_emit_scratch {
	struct tg_data_event ev;
	__u8 payload[TG_TLS_CAPTURE_LIMIT * 2];
};

/* An object's own maps for tls_emit(): plaintext byte positions per connection and direction
 * (ciphertext positions are the socket tracer's), and the scratch. */
#define TLS_EMIT_MAPS(pos_map, scratch_map)                      \
	struct {                                                 \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);             \
		__uint(max_entries, TG_TLS_SSL_MAX);             \
		__type(key, __u64); /* conn_id */                \
		__type(value, __u64[2]);                         \
	} pos_map SEC(".maps");                                  \
	struct {                                                 \
		__uint(type, BPF_MAP_TYPE_ARRAY);                \
		__uint(max_entries, 256); /* sized to the CPUs */ \
		__type(key, __u32);                              \
		__type(value, struct tls_emit_scratch);          \
	} scratch_map SEC(".maps");

/* Scratch for one header field record (its payload: struct tg_tls_h2_field, name, value). */
#define TLS_H2_FIELD_MAX (sizeof(struct tg_tls_h2_field) + TG_TLS_H2_NAME_MAX + TG_TLS_H2_VALUE_MAX)
struct tls_h2_scratch {
	struct tg_data_event ev;
	__u8 payload[TLS_H2_FIELD_MAX];
};

/* The connection of socket `fd` in process `pid`, or NULL where the socket tracer does not
 * track it (a pipe, a file, a net.Conn that is no TCP socket). */
static __always_inline struct tg_conn_info *tls_conn(__u32 pid, __s64 fd)
{
	if (fd < 0 || fd > 0x7fffffff)
		return NULL;
	struct conn_key k = { .pid = pid, .fd = (__u32)fd };
	return bpf_map_lookup_elem(&tg_conns, &k);
}

/* The record head: `len` payload bytes follow, of `orig_len` that moved, on `ci` by thread `id`,
 * stamped `ts` (bpf_ktime_get_ns()). */
static __always_inline void tls_event_head(struct tg_data_event *ev, const struct tg_conn_info *ci, __u64 id,
					   __u8 dir, __u8 flags, __u8 truncated, __u64 pos, __u32 len, __u32 orig_len,
					   __u64 ts)
{
	ev->type = TG_EV_DATA;
	ev->dir = dir;
	ev->truncated = truncated;
	ev->flags = flags;
	ev->_pad0 = 0;
	ev->ts_ns = ts;
	ev->pos = pos;
	ev->len = len;
	ev->orig_len = orig_len;
	ev->conn = *ci;
	ev->conn.tid = (__u32)id;
}

/* `moved` bytes at user address `buf` went over `ci` in direction `dir` on thread `id`; at most
 * `cap` of them (the rodata capture_max) are kept from the start and, of a longer call, up to `tail`
 * more from its end, as a second record. `ts` is when the call began for a write (its bytes may
 * reach the peer, and be answered, before the call returns: a client span stamped at the return
 * could start after its server span ended) and when it returned for a read (the bytes are only
 * there then).
 *
 * Why the tail: one long write often holds several protocol messages (node's res.end() of 40 KB
 * over HTTP/2 is HEADERS and three DATA frames in one SSL_write), and what ends the exchange (the
 * END_STREAM frame, gRPC trailers) is at the end. The head record's orig_len then stops where the
 * tail begins, so the host reports exactly the bytes between them as lost (with `ts`), and the tail
 * record continues at its own position: the decoder sees [head][gap][tail] and finds the frames of
 * the tail. Each call writes at most cap + tail bytes of payload into the ring. */
static __always_inline void tls_emit_tail(void *pos_map, void *scratch_map, const struct tg_conn_info *ci,
					  __u64 id, __u8 dir, __u64 buf, __u64 moved, __u32 cap, __u32 tail, __u64 ts)
{
	__u64 cid = ci->conn_id;
	__u64 *pos = bpf_map_lookup_elem(pos_map, &cid);
	if (!pos) {
		__u64 zero[2] = {};
		bpf_map_update_elem(pos_map, &cid, zero, BPF_NOEXIST);
		pos = bpf_map_lookup_elem(pos_map, &cid);
		if (!pos)
			return;
	}
	__u64 at = __sync_fetch_and_add(&pos[dir & 1], moved);

	__u32 cpu = bpf_get_smp_processor_id();
	struct tls_emit_scratch *s = bpf_map_lookup_elem(scratch_map, &cpu);
	if (!s) {
		stat_inc(TG_TLS_STAT_RING_FULL);
		return;
	}
	if (cap > TG_TLS_CAPTURE_LIMIT)
		cap = TG_TLS_CAPTURE_LIMIT;
	if (tail > TG_TLS_TAIL_LIMIT)
		tail = TG_TLS_TAIL_LIMIT;
	__u64 want = moved < cap ? moved : cap;
	__u64 tail_len = 0;
	if (moved > cap)
		tail_len = moved - cap < tail ? moved - cap : tail;
	/* the head record stands for everything before the tail: its uncaptured rest is the gap */
	__u64 head_span = moved - tail_len;
	CLAMP_REG(want, TG_TLS_CAPTURE_LIMIT);
	__u64 got = want;
	if (want && bpf_probe_read_user(s->payload, want, (void *)buf)) {
		stat_inc(TG_TLS_STAT_READ_FAULT);
		got = 0;
	}
	tls_event_head(&s->ev, ci, id, dir, TG_DATA_TLS, got < moved, at, got,
		       head_span > 0xffffffffULL ? 0xffffffffU : head_span, ts);
	if (got < moved)
		stat_inc(TG_TLS_STAT_TRUNCATED);
	__u64 size = got;
	CLAMP_REG(size, TG_TLS_CAPTURE_LIMIT);
	if (bpf_ringbuf_output(&tg_ring, s, sizeof(s->ev) + size, 0))
		stat_inc(TG_TLS_STAT_RING_FULL);
	else
		stat_inc(TG_TLS_STAT_EVENTS);
	if (!tail_len)
		return;

	CLAMP_REG(tail_len, TG_TLS_TAIL_LIMIT);
	got = tail_len;
	if (bpf_probe_read_user(s->payload, tail_len, (void *)(buf + moved - tail_len))) {
		stat_inc(TG_TLS_STAT_READ_FAULT);
		got = 0;
	}
	tls_event_head(&s->ev, ci, id, dir, TG_DATA_TLS, got < tail_len, at + moved - tail_len, got, tail_len, ts);
	size = got;
	CLAMP_REG(size, TG_TLS_TAIL_LIMIT);
	if (bpf_ringbuf_output(&tg_ring, s, sizeof(s->ev) + size, 0))
		stat_inc(TG_TLS_STAT_RING_FULL);
	else
		stat_inc(TG_TLS_STAT_TAILS);
}

/* The head only (Go's crypto/tls tracer: a Read is one record, a Write is emitted at its entry). */
static __always_inline void tls_emit(void *pos_map, void *scratch_map, const struct tg_conn_info *ci,
				     __u64 id, __u8 dir, __u64 buf, __u64 moved, __u32 cap, __u64 ts)
{
	tls_emit_tail(pos_map, scratch_map, ci, id, dir, buf, moved, cap, 0, ts);
}

/* One HTTP/2 header field (name/nl, value/vl in user memory) of stream `sid`, header block
 * `block`, on socket `fd` of the calling process, built in the caller's per-CPU scratch `s`.
 * A name longer than TG_TLS_H2_NAME_MAX drops the field; a longer value is cut (truncated). */
static __always_inline void tls_h2_field_emit(struct tls_h2_scratch *s, __u64 id, __s64 fd,
					      __u8 dir, __u32 sid, __u8 block,
					      __u64 name, __u64 nl, __u64 value, __u64 vl)
{
	struct tg_conn_info *ci = tls_conn(id >> 32, fd);
	if (!ci) {
		stat_inc(TG_TLS_STAT_H2_NO_CONN);
		return;
	}
	if (nl == 0 || nl > TG_TLS_H2_NAME_MAX)
		return;
	__u8 cut = vl > TG_TLS_H2_VALUE_MAX;
	if (cut)
		vl = TG_TLS_H2_VALUE_MAX;
	CLAMP_REG(nl, TG_TLS_H2_NAME_MAX);
	CLAMP_REG(vl, TG_TLS_H2_VALUE_MAX);
	struct tg_tls_h2_field *f = (void *)s->payload;
	if (bpf_probe_read_user(s->payload + sizeof(*f), nl, (void *)name) ||
	    (vl && bpf_probe_read_user(s->payload + sizeof(*f) + nl, vl, (void *)value))) {
		stat_inc(TG_TLS_STAT_READ_FAULT);
		return;
	}
	f->stream_id = sid;
	f->block = block;
	f->_pad0 = 0;
	f->name_len = nl;
	f->value_len = vl;
	__u64 size = sizeof(*f) + nl + vl;
	CLAMP_REG(size, TLS_H2_FIELD_MAX);
	tls_event_head(&s->ev, ci, id, dir, TG_DATA_H2_FIELD, cut, 0, size, size, bpf_ktime_get_ns());
	if (bpf_ringbuf_output(&tg_ring, s, sizeof(s->ev) + size, 0))
		stat_inc(TG_TLS_STAT_RING_FULL);
	else
		stat_inc(TG_TLS_STAT_H2_FIELDS);
}

#endif /* TELEGEN_TLS_EMIT_H */
