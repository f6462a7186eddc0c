/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* File I/O tracer (bpf/fileio.bpf.c) ↔ user space. No implicit padding (checked with -Wpadded);
 * TypeScript offsets are generated into host/src/generated/fileio-layout.ts. */
#ifndef TELEGEN_FILEIO_H
#define TELEGEN_FILEIO_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum tg_fileio_op {
	TG_FILEIO_OPEN = 1,
	TG_FILEIO_READ = 2,
	TG_FILEIO_WRITE = 3,
	TG_FILEIO_PREAD = 4,
	TG_FILEIO_PWRITE = 5,
	TG_FILEIO_FSYNC = 6,
	TG_FILEIO_CLOSE = 7,
};

enum tg_fileio_stat {
	TG_FILEIO_STAT_EVENTS = 0,
	TG_FILEIO_STAT_RING_FULL = 1, /* operations not reported: the ring had no room */
	TG_FILEIO_STAT_MAP_FULL = 2,  /* opened files not tracked: the fd map was full */
	TG_FILEIO_STAT_MAX = 3,
};

enum tg_fileio_limits {
	TG_FILEIO_PATH_LEN = 128,
	TG_FILEIO_FILES_MAX_DEFAULT = 65536,
	TG_FILEIO_RING_BYTES_DEFAULT = 4194304,
};

struct tg_fileio_event {
	__u32 op;   /* enum tg_fileio_op */
	__u32 pid;  /* tgid */
	__u64 latency_ns;
	__s64 ret;  /* bytes moved, the new fd, or -errno */
	__u32 fd;
	__u32 _pad0;
	char comm[16];
	char path[TG_FILEIO_PATH_LEN]; /* as given to openat (relative paths stay relative) */
};

#endif /* TELEGEN_FILEIO_H */
