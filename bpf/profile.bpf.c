// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* CPU profiler: a perf_event program on the software cpu-clock of every CPU. Each sample
 * stores the user and kernel stacks in a stack-trace map and bumps a count for
 * {pid, tid, user stack, kernel stack} in the kernel, so user space reads one entry per
 * distinct stack per interval instead of one event per sample. Two count maps are used in
 * turn: user space flips `active` and then drains the map the program no longer writes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "profile.h"
#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EEXIST 17
#define ENOMEM 12
#define EFAULT 14

/* Written by user space at run time through the mmapped .bss. */
__u32 active = 0;      /* which count map the program writes: 0 or 1 */
__u32 enabled = 1;     /* profiling switched off at run time: sample nothing */
__u32 filter = 0;      /* 1: only pids in tg_prof_pids or cgroups in tg_prof_cgroups */
__u32 record = 0;      /* 1: also write each sample's time to tg_prof_samples (trace links) */

struct tg_prof_key *tg_anchor_prof_key __attribute__((used));
struct tg_prof_value *tg_anchor_prof_value __attribute__((used));
enum tg_prof_stat tg_anchor_prof_stat __attribute__((used));
struct tg_prof_sample *tg_anchor_prof_sample __attribute__((used));

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, TG_PROF_STACKS_DEFAULT);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, TG_PROF_MAX_DEPTH * sizeof(__u64));
} tg_prof_stacks SEC(".maps");

struct counts_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_PROF_COUNTS_DEFAULT);
	__type(key, struct tg_prof_key);
	__type(value, struct tg_prof_value);
};
struct counts_map tg_prof_counts0 SEC(".maps");
struct counts_map tg_prof_counts1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} tg_prof_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} tg_prof_cgroups SEC(".maps");

/* Sized by user space before load for one drain interval of samples (cpus x frequency). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tg_prof_samples SEC(".maps");

TG_STATS_NOPREEMPT(tg_prof_stats, TG_PROF_STAT_MAX)

/* -EFAULT only says there was no stack of that kind (kernel stack of a user-mode sample,
 * user stack of a kernel thread); the rest lose a stack and are counted. */
static __always_inline __s32 stack_id(void *ctx, __u64 flags)
{
	long id = bpf_get_stackid(ctx, &tg_prof_stacks, flags);
	if (id >= 0)
		return (__s32)id;
	if (id == -EEXIST)
		stat_inc(TG_PROF_STAT_COLLISIONS);
	else if (id == -ENOMEM)
		stat_inc(TG_PROF_STAT_STACK_NOMEM);
	else if (id != -EFAULT)
		stat_inc(TG_PROF_STAT_STACK_LOST);
	return (__s32)id;
}

static __always_inline void count(void *map, struct tg_prof_key *key)
{
	struct tg_prof_value *v = bpf_map_lookup_elem(map, key);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		return;
	}
	struct tg_prof_value init = { .count = 1 };
	bpf_get_current_comm(init.comm, sizeof(init.comm));
	/* BPF_NOEXIST: another CPU may have inserted the same key meanwhile; then add to it. */
	if (bpf_map_update_elem(map, key, &init, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(map, key);
	if (v)
		__sync_fetch_and_add(&v->count, 1);
	else
		stat_inc(TG_PROF_STAT_COUNTS_FULL);
}

SEC("perf_event")
int tg_profile(struct bpf_perf_event_data *ctx)
{
	if (!enabled)
		return 0;
	stat_inc(TG_PROF_STAT_SAMPLES);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	if (tid == 0) {
		stat_inc(TG_PROF_STAT_IDLE);
		return 0;
	}
	__u32 pid = pid_tgid >> 32;
	if (filter) {
		__u64 cg = bpf_get_current_cgroup_id();
		if (!bpf_map_lookup_elem(&tg_prof_pids, &pid) && !bpf_map_lookup_elem(&tg_prof_cgroups, &cg)) {
			stat_inc(TG_PROF_STAT_FILTERED);
			return 0;
		}
	}
	struct tg_prof_key key = {
		.pid = pid,
		.tid = tid,
		.ustack = stack_id(ctx, BPF_F_USER_STACK),
		.kstack = stack_id(ctx, 0),
	};
	__u32 map = active;
	if (map)
		count(&tg_prof_counts1, &key);
	else
		count(&tg_prof_counts0, &key);
	if (record) {
		/* Counts say how often, not when: the time is what joins a sample to the request in
		 * flight on its thread. One 32-byte record per sample (99 Hz per CPU) is cheap. */
		struct tg_prof_sample *r = bpf_ringbuf_reserve(&tg_prof_samples, sizeof(*r), 0);
		if (!r) {
			stat_inc(TG_PROF_STAT_RECORDS_LOST);
			return 0;
		}
		r->ts = bpf_ktime_get_ns();
		r->pid = pid;
		r->tid = tid;
		r->ustack = key.ustack;
		r->kstack = key.kstack;
		r->map = map;
		r->_pad = 0;
		bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	}
	return 0;
}
