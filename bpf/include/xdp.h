/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* XDP flow tracer (bpf/xdp.bpf.c) ↔ user space. No implicit padding (checked with -Wpadded);
 * TypeScript offsets are generated into host/src/generated/xdp-layout.ts. */
#ifndef TELEGEN_XDP_H
#define TELEGEN_XDP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum tg_xdp_stat {
	TG_XDP_STAT_PACKETS = 0,
	TG_XDP_STAT_BYTES = 1,
	TG_XDP_STAT_NON_IP = 2,    /* neither IPv4 nor IPv6: counted here only */
	TG_XDP_STAT_MAP_FULL = 3,  /* a new flow the LRU refused (should stay 0: LRU evicts) */
	TG_XDP_STAT_SAMPLED = 4,   /* header samples written to the ring */
	TG_XDP_STAT_RING_FULL = 5, /* header samples dropped: the ring had no room */
	TG_XDP_STAT_MAX = 6,
};

enum tg_xdp_limits {
	TG_XDP_FLOW_MAX_DEFAULT = 1048576,
	TG_XDP_RING_BYTES_DEFAULT = 262144,
	TG_XDP_SAMPLE_BYTES = 128, /* header bytes kept per sampled packet */
};

/* One direction of a flow as the packet carried it. IPv4 as ::ffff:a.b.c.d. */
struct tg_xdp_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order; 0 for protocols without ports */
	__u16 dport;
	__u32 ifindex;
	__u8 proto;  /* IPPROTO_* */
	__u8 _pad0[7];
};

struct tg_xdp_flow_value {
	__u64 packets;
	__u64 bytes; /* frame bytes from the link-layer header on */
	__u64 first_ns;
	__u64 last_ns;
};

struct tg_xdp_sample {
	__u32 ifindex;
	__u32 len;      /* frame length */
	__u32 captured; /* bytes of data[] that hold the frame's start */
	__u32 _pad0;
	__u64 ts_ns;
	__u8 data[TG_XDP_SAMPLE_BYTES];
};

#endif /* TELEGEN_XDP_H */
