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
	TG_FILEIO_OP_MAX = 8,
};

enum tg_fileio_stat {
	TG_FILEIO_STAT_EVENTS = 0,    /* operations timed (each counted in a histogram) */
	TG_FILEIO_STAT_RING_FULL = 1, /* slow or failed operations not reported: the ring had no room */
	TG_FILEIO_STAT_MAP_FULL = 2,  /* opened files not tracked: the fd map was full */
	TG_FILEIO_STAT_HIST_FULL = 3, /* operations counted in the per-operation overflow slot: the histogram map was full */
	TG_FILEIO_STAT_DIRS_FULL = 4, /* opens whose directory became "other": max_directories were known */
	TG_FILEIO_STAT_MAX = 5,
};

enum tg_fileio_limits {
	TG_FILEIO_PATH_LEN = 128,
	TG_FILEIO_FILES_MAX_DEFAULT = 65536,
	TG_FILEIO_RING_BYTES_DEFAULT = 4194304,
	TG_FILEIO_HIST_MAX_DEFAULT = 4096,
	TG_FILEIO_DIRS_MAX_DEFAULT = 200,
	TG_FILEIO_DIR_OTHER = 0,      /* directory id of every directory past max_directories */
	TG_FILEIO_LAT_BUCKETS = 20,   /* explicit boundaries below + the overflow bucket */
	TG_FILEIO_SIZE_BUCKETS = 10,
};

/* Histogram bucket upper bounds (inclusive, as OpenTelemetry explicit buckets are), in ascending
 * order: the kernel counts into them and the exported boundaries are read from here. Latency in
 * microseconds (page-cache hits take microseconds, a disk flush milliseconds), sizes in bytes. */
enum tg_fileio_lat_bound_us {
	TG_FILEIO_LAT_B00 = 10, TG_FILEIO_LAT_B01 = 25, TG_FILEIO_LAT_B02 = 50, TG_FILEIO_LAT_B03 = 100,
	TG_FILEIO_LAT_B04 = 250, TG_FILEIO_LAT_B05 = 500, TG_FILEIO_LAT_B06 = 1000, TG_FILEIO_LAT_B07 = 2500,
	TG_FILEIO_LAT_B08 = 5000, TG_FILEIO_LAT_B09 = 10000, TG_FILEIO_LAT_B10 = 25000, TG_FILEIO_LAT_B11 = 50000,
	TG_FILEIO_LAT_B12 = 100000, TG_FILEIO_LAT_B13 = 250000, TG_FILEIO_LAT_B14 = 500000,
	TG_FILEIO_LAT_B15 = 1000000, TG_FILEIO_LAT_B16 = 2500000, TG_FILEIO_LAT_B17 = 5000000,
	TG_FILEIO_LAT_B18 = 10000000,
};
enum tg_fileio_size_bound {
	TG_FILEIO_SIZE_B0 = 0, TG_FILEIO_SIZE_B1 = 512, TG_FILEIO_SIZE_B2 = 4096, TG_FILEIO_SIZE_B3 = 16384,
	TG_FILEIO_SIZE_B4 = 65536, TG_FILEIO_SIZE_B5 = 262144, TG_FILEIO_SIZE_B6 = 1048576,
	TG_FILEIO_SIZE_B7 = 4194304, TG_FILEIO_SIZE_B8 = 16777216,
};

/* One histogram series in the kernel: what the exported attribute set is made of. */
struct tg_fileio_hist_key {
	__u32 pid;    /* tgid */
	__u32 op;     /* enum tg_fileio_op */
	__u64 dir_id; /* key of tg_fileio_dirs; TG_FILEIO_DIR_OTHER past max_directories */
	char comm[16];
};

/* Cumulative since the series appeared (user space diffs successive reads, so nothing is reset
 * under a concurrent update). Counts and sums are atomic adds; min/max are plain compare-and-store
 * (two CPUs updating one series at the same instant may keep the other's extreme). */
struct tg_fileio_hist {
	__u64 lat_sum_ns;
	__u64 lat_min_ns;
	__u64 lat_max_ns;
	__u64 lat_counts[TG_FILEIO_LAT_BUCKETS];
	__u64 size_min;
	__u64 size_max;
	__u64 size_counts[TG_FILEIO_SIZE_BUCKETS]; /* read/write/pread/pwrite that succeeded */
	__u64 size_sums[TG_FILEIO_SIZE_BUCKETS];   /* bytes moved, per bucket */
};

/* Directory interned at openat: its first directory_depth components ("(relative)", "(unknown)"). */
struct tg_fileio_dir {
	char name[TG_FILEIO_PATH_LEN];
};

/* Only operations at least slow_ns long or that failed: everything else is in the histograms. */
struct tg_fileio_event {
	__u32 op;   /* enum tg_fileio_op */
	__u32 pid;  /* tgid */
	__u64 latency_ns;
	__s64 ret;  /* bytes moved, the new fd, or -errno */
	__u32 fd;
	__u32 _pad0;
	__u64 dir_id; /* as in tg_fileio_hist_key */
	char comm[16];
	char path[TG_FILEIO_PATH_LEN]; /* as given to openat (relative paths stay relative) */
};

#endif /* TELEGEN_FILEIO_H */
