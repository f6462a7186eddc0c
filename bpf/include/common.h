/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What tracer objects write the same way: their counters, which processes they follow, the
 * bound the verifier needs on a length, and the uprobe/uprobe_multi program pairs. Macros, so
 * each object keeps its own map names (the host reads counters by map name) and includes only
 * the parts it uses. */
#ifndef TELEGEN_COMMON_H
#define TELEGEN_COMMON_H

/* Per-CPU counters: a per-CPU array `map` of `max` u64 slots indexed by the tracer's stat enum,
 * and stat_inc() on it. TG_STATS adds atomically: a uprobe or tp_btf program can be preempted
 * on its CPU between the lookup and the add. Classic tracepoints and perf_event programs run
 * with preemption off, so TG_STATS_NOPREEMPT keeps the cheaper plain add. */
#define TG_STATS_WITH(map, max, add)                                     \
	struct {                                                         \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                 \
		__uint(max_entries, max);                                \
		__type(key, __u32);                                      \
		__type(value, __u64);                                    \
	} map SEC(".maps");                                              \
	static __always_inline void stat_inc(__u32 idx)                  \
	{                                                                \
		__u64 *v = bpf_map_lookup_elem(&map, &idx);               \
		if (v)                                                   \
			add;                                             \
	}
#define TG_STATS(map, max) TG_STATS_WITH(map, max, __sync_fetch_and_add(v, 1))
#define TG_STATS_NOPREEMPT(map, max) TG_STATS_WITH(map, max, *v += 1)

/* Which processes the object follows, set by the host before load: never the agent itself
 * (its own exports would trace themselves), and with target_pid set, only that process. */
#define TG_PID_FILTER                                                    \
	const volatile __u32 self_pid = 0;                               \
	const volatile __u32 target_pid = 0; /* 0 = every process */     \
	static __always_inline bool pid_wanted(__u32 pid)                \
	{                                                                \
		if (pid == self_pid)                                     \
			return false;                                    \
		return target_pid == 0 || pid == target_pid;             \
	}

/* Caps a length in its register, where the verifier sees the bound (clang may otherwise
 * compare a copy and pass the unbounded original to a helper). */
#define CLAMP_REG(v, max) \
	asm volatile("if %[x] <= %[m] goto +1; %[x] = %[m]" : [x] "+r"(v) : [m] "i"(max))

/* A uprobe program and its uprobe_multi twin with the same body: files found after the agent
 * dropped to its run-time capabilities cannot get perf-event uprobes on this kernel
 * (CAP_SYS_ADMIN only), and uprobe_multi links need no perf event. The loader sets the twin's
 * attach type by its _multi suffix. */
#define TG_UPROBE_PAIR(name, body)                                        \
	SEC("uprobe") int name(struct pt_regs *ctx) { return body; }      \
	SEC("uprobe") int name##_multi(struct pt_regs *ctx) { return body; }

#endif /* TELEGEN_COMMON_H */
