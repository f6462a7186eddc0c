// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP flow tracer: counts packets and bytes per flow (5-tuple + interface) in an LRU hash and
 * always passes the packet on. Attached through bpf links (generic mode where the driver has no
 * native XDP, e.g. lo), so nothing stays attached when the agent exits or is killed. Optionally
 * every sample_every-th packet's first bytes go to a ring for inspection. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

const volatile __u32 sample_every = 0; /* 0: no header sampling */

struct tg_xdp_flow_key *tg_anchor_xdp_key __attribute__((used));
struct tg_xdp_flow_value *tg_anchor_xdp_value __attribute__((used));
struct tg_xdp_sample *tg_anchor_xdp_sample __attribute__((used));
enum tg_xdp_stat tg_anchor_xdp_stat __attribute__((used));
enum tg_xdp_limits tg_anchor_xdp_limits __attribute__((used));

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_XDP_FLOW_MAX_DEFAULT);
	__type(key, struct tg_xdp_flow_key);
	__type(value, struct tg_xdp_flow_value);
} tg_xdp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_XDP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tg_xdp_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_XDP_RING_BYTES_DEFAULT);
} tg_xdp_ring SEC(".maps");

static __always_inline void stat_add(__u32 i, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&tg_xdp_stats, &i);
	if (v)
		*v += n;
}

static __always_inline void sample(struct xdp_md *ctx, __u32 len)
{
	__u32 k = TG_XDP_STAT_PACKETS;
	__u64 *seen = bpf_map_lookup_elem(&tg_xdp_stats, &k);
	if (!seen || *seen % sample_every)
		return;
	struct tg_xdp_sample *s = bpf_ringbuf_reserve(&tg_xdp_ring, sizeof(*s), 0);
	if (!s) {
		stat_add(TG_XDP_STAT_RING_FULL, 1);
		return;
	}
	__u32 n = len < TG_XDP_SAMPLE_BYTES ? len : TG_XDP_SAMPLE_BYTES;
	s->ifindex = ctx->ingress_ifindex;
	s->len = len;
	s->_pad0 = 0;
	s->ts_ns = bpf_ktime_get_ns();
	__builtin_memset(s->data, 0, sizeof(s->data));
	/* Constant sizes keep the verifier simple: take the biggest power of two that fits. */
	if (n >= 128) { bpf_xdp_load_bytes(ctx, 0, s->data, 128); n = 128; }
	else if (n >= 64) { bpf_xdp_load_bytes(ctx, 0, s->data, 64); n = 64; }
	else if (n >= 32) { bpf_xdp_load_bytes(ctx, 0, s->data, 32); n = 32; }
	else n = 0;
	s->captured = n;
	bpf_ringbuf_submit(s, 0);
	stat_add(TG_XDP_STAT_SAMPLED, 1);
}

SEC("xdp")
int tg_xdp_flow(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 len = end - data;
	stat_add(TG_XDP_STAT_PACKETS, 1);
	stat_add(TG_XDP_STAT_BYTES, len);
	if (sample_every)
		sample(ctx, len);

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	__u16 proto = eth->h_proto;
	void *l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;
		if ((void *)(vh + 1) > end)
			return XDP_PASS;
		proto = vh->h_vlan_encapsulated_proto;
		l3 = vh + 1;
	}
	struct tg_xdp_flow_key key = {};
	key.ifindex = ctx->ingress_ifindex;
	void *l4;
	int has_ports = 1;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		key.saddr[10] = key.saddr[11] = 0xff;
		key.daddr[10] = key.daddr[11] = 0xff;
		__builtin_memcpy(&key.saddr[12], &ip->saddr, 4);
		__builtin_memcpy(&key.daddr[12], &ip->daddr, 4);
		key.proto = ip->protocol;
		l4 = (void *)ip + ip->ihl * 4;
		/* Later fragments carry no ports. */
		if (ip->frag_off & bpf_htons(0x1fff))
			has_ports = 0;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		__builtin_memcpy(key.saddr, &ip6->saddr, 16);
		__builtin_memcpy(key.daddr, &ip6->daddr, 16);
		key.proto = ip6->nexthdr; /* extension headers are not walked: counted under their number */
		l4 = ip6 + 1;
	} else {
		stat_add(TG_XDP_STAT_NON_IP, 1);
		return XDP_PASS;
	}
	if (has_ports && (key.proto == IPPROTO_TCP || key.proto == IPPROTO_UDP)) {
		__u16 *ports = l4;
		if ((void *)(ports + 2) <= end) {
			key.sport = bpf_ntohs(ports[0]);
			key.dport = bpf_ntohs(ports[1]);
		}
	}
	__u64 now = bpf_ktime_get_ns();
	struct tg_xdp_flow_value *v = bpf_map_lookup_elem(&tg_xdp_flows, &key);
	if (v) {
		__sync_fetch_and_add(&v->packets, 1);
		__sync_fetch_and_add(&v->bytes, len);
		v->last_ns = now;
		return XDP_PASS;
	}
	struct tg_xdp_flow_value nv = { .packets = 1, .bytes = len, .first_ns = now, .last_ns = now };
	/* NOEXIST: another CPU may have created it meanwhile; then add to theirs. */
	if (bpf_map_update_elem(&tg_xdp_flows, &key, &nv, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(&tg_xdp_flows, &key);
		if (v) {
			__sync_fetch_and_add(&v->packets, 1);
			__sync_fetch_and_add(&v->bytes, len);
		} else {
			stat_add(TG_XDP_STAT_MAP_FULL, 1);
		}
	}
	return XDP_PASS;
}
