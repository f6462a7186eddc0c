/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Structs shared by bpf/profile.bpf.c and native/src/profile_tracer.cc (the CPU profiler).
 * No implicit padding: both sides read them byte for byte. */
#ifndef TELEGEN_PROFILE_H
#define TELEGEN_PROFILE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The seed's "Stack Trace map 64K entries". */
#define TG_PROF_STACKS_DEFAULT 65536
/* Distinct {pid, tid, stacks} per drain interval. */
#define TG_PROF_COUNTS_DEFAULT 16384
/* Frames kept per stack (the kernel's default perf_event_max_stack). */
#define TG_PROF_MAX_DEPTH 127

/* A sampled stack pair of one thread. Stack ids < 0 mean "none" (user stack of a kernel
 * thread, kernel stack of a sample taken in user mode) or "lost" (counted in tg_prof_stat). */
struct tg_prof_key {
	__u32 pid;  /* tgid */
	__u32 tid;
	__s32 ustack;
	__s32 kstack;
};

struct tg_prof_value {
	__u64 count;
	char comm[16];
};

/* One sample's time, for joining it to the request in flight on its thread (trace links).
 * Written to the tg_prof_samples ring only while user space links samples; `map` names the
 * count map the sample was counted in (the value of `active`), so a record written just after
 * a flip is matched with the next drain. */
struct tg_prof_sample {
	__u64 ts;    /* bpf_ktime_get_ns: CLOCK_MONOTONIC, like the socket tracer's timestamps */
	__u32 pid;
	__u32 tid;
	__s32 ustack;
	__s32 kstack;
	__u32 map;
	__u32 _pad;
};

enum tg_prof_stat {
	TG_PROF_STAT_SAMPLES = 0,     /* samples taken (all CPUs, idle included) */
	TG_PROF_STAT_IDLE,            /* samples on the idle task: not counted */
	TG_PROF_STAT_FILTERED,        /* samples of processes outside the target */
	TG_PROF_STAT_COLLISIONS,      /* bpf_get_stackid -EEXIST: bucket held by another stack */
	TG_PROF_STAT_STACK_NOMEM,     /* bpf_get_stackid -ENOMEM: stack map full */
	TG_PROF_STAT_STACK_LOST,      /* other bpf_get_stackid errors */
	TG_PROF_STAT_COUNTS_FULL,     /* the count hash was full: sample dropped */
	TG_PROF_STAT_RECORDS_LOST,    /* the sample-time ring was full: that sample stays unlinked */
	TG_PROF_STAT_MAX,
};

#endif
