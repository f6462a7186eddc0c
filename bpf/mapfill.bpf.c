// SPDX-License-Identifier: GPL-2.0
// Map fill without walking keys: a bpf_map iterator that reads each map's element counter
// (kept per CPU by every hash/LRU map since 6.6) through the kfunc bpf_map_sum_elem_count.
// One read of the iterator costs O(maps in the system), whatever their size — a 1M-entry LRU
// costs the same as an empty one. native/src/map_fill.cc reads it; kernels without the kfunc
// refuse the load and the agent falls back to paced key walks.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "mapfill.h"

extern __s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym;

SEC("iter/bpf_map")
int tg_map_fill(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;
	struct tg_map_fill r = {};

	if (!map)
		return 0;
	r.id = map->id;
	r.entries = bpf_map_sum_elem_count(map);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
