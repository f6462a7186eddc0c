/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Application log capture (bpf/logs.bpf.c) ↔ user space: what selected processes write to their
 * stdout and stderr. No implicit padding (checked with -Wpadded); TypeScript offsets are
 * generated into host/src/generated/logs-layout.ts. */
#ifndef TELEGEN_LOGS_H
#define TELEGEN_LOGS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum tg_logs_limits {
	/* Bytes of one write() kept at most (the capture_max setting is clamped to this). */
	TG_LOGS_DATA_MAX = 4096,
	/* writev(): iovecs read at most where the kernel has no bpf_loop (unrolled)… */
	TG_LOGS_IOV_MAX = 8,
	/* …and with it (UIO_MAXIOV: every iovec a writev can take). */
	TG_LOGS_IOV_LOOP_MAX = 1024,
	TG_LOGS_PIDS_MAX_DEFAULT = 4096,
	TG_LOGS_COMMS_MAX = 64,
	TG_LOGS_RING_BYTES_DEFAULT = 4194304,
};

enum tg_logs_stat {
	TG_LOGS_STAT_EVENTS = 0,
	TG_LOGS_STAT_RING_FULL = 1,  /* writes not reported: the ring had no room */
	TG_LOGS_STAT_TRUNCATED = 2,  /* writes longer than capture_max, cut */
	TG_LOGS_STAT_READ_FAULT = 3, /* the written bytes could not be read */
	TG_LOGS_STAT_PIDS_FULL = 4,  /* services not selected: the pid map was full */
	TG_LOGS_STAT_MAX = 5,
};

/* One write()/writev() of a selected process to fd 1 or 2 that moved bytes; len captured bytes
 * follow. */
struct tg_logs_event {
	__u64 ts_ns;    /* bpf_ktime_get_ns() at syscall exit */
	__u32 pid;      /* tgid */
	__u32 tid;
	__u32 fd;       /* 1 = stdout, 2 = stderr */
	__u32 len;      /* captured bytes that follow */
	__u64 orig_len; /* bytes the syscall moved */
	char comm[16];  /* the process's (group leader's) name */
};

#endif /* TELEGEN_LOGS_H */
