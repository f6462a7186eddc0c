/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Plaintext into the socket tracer's ring, shared by the TLS tracers (tls.bpf.c for OpenSSL,
 * go_tls.bpf.c for Go's crypto/tls): once a call's socket is known, its bytes become one
 * tg_data_event with TG_DATA_TLS, positioned in the connection's plaintext stream. The includer
 * defines tg_ring, stat_inc() and the rodata capture_max, and passes its own position map
 * (conn_id → __u64[2]) and per-CPU scratch array (struct tls_emit_scratch). */
#ifndef TELEGEN_TLS_EMIT_H
#define TELEGEN_TLS_EMIT_H

struct tls_emit_scratch {
	struct tg_data_event ev;
	__u8 payload[TG_TLS_CAPTURE_LIMIT * 2];
};

#define CLAMP_REG(v, max) \
	asm volatile("if %[x] <= %[m] goto +1; %[x] = %[m]" : [x] "+r"(v) : [m] "i"(max))

/* `moved` bytes at user address `buf` went over `ci` in direction `dir` on thread `id`. */
static __always_inline void tls_emit(void *pos_map, void *scratch_map, const struct tg_conn_info *ci,
				     __u64 id, __u8 dir, __u64 buf, __u64 moved)
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
	__u32 cap = capture_max;
	if (cap > TG_TLS_CAPTURE_LIMIT)
		cap = TG_TLS_CAPTURE_LIMIT;
	__u64 want = moved < cap ? moved : cap;
	CLAMP_REG(want, TG_TLS_CAPTURE_LIMIT);
	__u64 got = want;
	if (want && bpf_probe_read_user(s->payload, want, (void *)buf)) {
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

#endif /* TELEGEN_TLS_EMIT_H */
