/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Exec and exit events for the Go tracer (go_exec.bpf.c): a new executable is analyzed as soon
 * as it is exec'd, not at the next /proc scan, and probes go when its last process exits. */
#ifndef TELEGEN_GO_EXEC_H
#define TELEGEN_GO_EXEC_H

enum tg_go_exec_kind {
	TG_GO_EXEC_EXEC = 1, /* an executable the host has not looked at yet */
	TG_GO_EXEC_EXIT = 2, /* a watched process (one the host hooked) exited */
	TG_GO_EXEC_HOOKED = 3, /* a process exec'd a file the host hooked: it joins that binary */
};

/* Values of go_exec_known: a looked-at file's exec is silent, a hooked one's is reported (so the
 * host knows every process running a hooked file without walking /proc for it). */
enum tg_go_exec_known_value {
	TG_GO_EXEC_KNOWN_SILENT = 1,
	TG_GO_EXEC_KNOWN_HOOKED = 2,
};

enum tg_go_exec_limits {
	TG_GO_EXEC_KNOWN_MAX = 16384, /* executables already looked at (map go_exec_known) */
	TG_GO_EXEC_WATCH_MAX = 16384, /* processes whose exit the host wants (map go_exec_watch) */
};

/* Per-CPU counters (array map go_exec_stats). */
enum tg_go_exec_stat {
	TG_GO_EXEC_STAT_EVENTS = 0,
	TG_GO_EXEC_STAT_RING_FULL = 1,
	TG_GO_EXEC_STAT_HELD = 2, /* processes stopped until the host attached */
	TG_GO_EXEC_STAT_MAX = 4,
};

/* Key of go_exec_known: the executable's inode, dev in the kernel's encoding (MAJOR << 20 | MINOR). */
struct tg_go_exec_file {
	__u64 ino;
	__u32 dev;
	__u32 _pad;
};

struct tg_go_exec_event {
	__u64 ino;
	__u32 dev;
	__u32 pid;
	__u8 kind;  /* enum tg_go_exec_kind */
	__u8 held;  /* 1: stopped with SIGSTOP; the host sends SIGCONT once its probes are in */
	__u8 _pad[6];
};

#endif /* TELEGEN_GO_EXEC_H */
