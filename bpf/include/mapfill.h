/* Map fill sampler (bpf/mapfill.bpf.c → native/src/map_fill.cc): one record per BPF map in the
 * system, written by a bpf_map iterator. C only: nothing here crosses into TypeScript. */
#ifndef TELEGEN_MAPFILL_H
#define TELEGEN_MAPFILL_H

struct tg_map_fill {
	__u32 id;      /* kernel map id (bpf_map_info.id) */
	__u32 pad;
	__s64 entries; /* bpf_map_sum_elem_count(): hash/LRU maps keep it per CPU; 0 for other types */
};

#endif
