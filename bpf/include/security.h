/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Security monitor (bpf/security.bpf.c) ↔ user space. No implicit padding; TypeScript offsets
 * are generated into host/src/generated/security-layout.ts. */
#ifndef TELEGEN_SECURITY_H
#define TELEGEN_SECURITY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The call an event reports; user space groups them into rule events (setuid, module, …). */
enum tg_security_call {
	TG_SECURITY_EXEC = 1,
	TG_SECURITY_SETUID = 2,
	TG_SECURITY_SETREUID = 3,
	TG_SECURITY_SETRESUID = 4,
	TG_SECURITY_SETGID = 5,
	TG_SECURITY_SETREGID = 6,
	TG_SECURITY_SETRESGID = 7,
	TG_SECURITY_CAPSET = 8,
	TG_SECURITY_PTRACE = 9,
	TG_SECURITY_BPF = 10,
	TG_SECURITY_INIT_MODULE = 11,
	TG_SECURITY_FINIT_MODULE = 12,
	TG_SECURITY_MOUNT = 13,
	TG_SECURITY_OPENAT = 14,
	TG_SECURITY_CONNECT = 15,
	TG_SECURITY_OPEN = 16, /* open(2): what musl's open() calls on x86-64 (Alpine images) */
	/* Calls that change what a watched path names without opening it (rule event file_change). */
	TG_SECURITY_RENAME = 17,
	TG_SECURITY_RENAMEAT = 18,
	TG_SECURITY_RENAMEAT2 = 19,
	TG_SECURITY_LINK = 20,
	TG_SECURITY_LINKAT = 21,
	TG_SECURITY_SYMLINK = 22,
	TG_SECURITY_SYMLINKAT = 23,
	TG_SECURITY_UNLINK = 24,
	TG_SECURITY_UNLINKAT = 25,
	TG_SECURITY_RMDIR = 26,
	TG_SECURITY_CHMOD = 27,
	TG_SECURITY_FCHMODAT = 28,
	TG_SECURITY_FCHMODAT2 = 29,
	TG_SECURITY_CHOWN = 30,
	TG_SECURITY_LCHOWN = 31,
	TG_SECURITY_FCHOWNAT = 32,
	TG_SECURITY_TRUNCATE = 33,
	TG_SECURITY_MKDIR = 34,
	TG_SECURITY_MKDIRAT = 35,
	TG_SECURITY_MKNOD = 36,
	TG_SECURITY_MKNODAT = 37,
	/* on an open file: a file opened read-only can still have its mode or owner changed */
	TG_SECURITY_FCHMOD = 38,
	TG_SECURITY_FCHOWN = 39,
	TG_SECURITY_FTRUNCATE = 40,
	TG_SECURITY_CALL_MAX = 41,
};

/* tg_security_event.flags */
enum tg_security_flags {
	TG_SECURITY_F_UNRESOLVED = 1,        /* path is the name as given: it could not be walked */
	TG_SECURITY_F_SOURCE_UNRESOLVED = 2, /* the same for the source (extra) */
};

enum tg_security_stat {
	TG_SECURITY_STAT_EVENTS = 0,
	TG_SECURITY_STAT_RING_FULL = 1, /* events lost: the ring had no room */
	TG_SECURITY_STAT_INFLIGHT_FULL = 2, /* calls not reported: too many in flight at once */
	TG_SECURITY_STAT_MAX = 3,
};

enum tg_security_limits {
	TG_SECURITY_ANCESTORS = 4,     /* parent, grandparent, … reported with every event */
	TG_SECURITY_PATH_LEN = 128,
	TG_SECURITY_EXTRA_LEN = 256,   /* exec: argv, NUL-separated; mount: source NUL fstype */
	TG_SECURITY_PREFIXES = 8,      /* watched path prefixes for openat (from the open rules) */
	TG_SECURITY_PREFIX_LEN = 60,
	TG_SECURITY_CGROUP_NAME_LEN = 88, /* a cgroup directory's name (cri-containerd-<64 hex>.scope is 85; the record stays within the 1 KiB memset limit) */
	TG_SECURITY_RING_BYTES_DEFAULT = 4194304,
};

/* One watched path prefix (an entry of tg_sec_prefixes, written by user space). */
struct tg_security_prefix {
	__u32 len; /* 0: unused slot */
	char prefix[TG_SECURITY_PREFIX_LEN];
};

struct tg_security_event {
	__u32 call; /* enum tg_security_call */
	__u32 pid;  /* tgid */
	__u32 tid;
	__u32 uid;  /* real uid when the call returned */
	__u32 euid; /* effective uid when the call returned (after a setuid: the new one) */
	__u32 ppid[TG_SECURITY_ANCESTORS]; /* tgids of parent, grandparent, …; 0 past init */
	__u32 _pad0;
	__u64 ts_ns;
	__s64 ret; /* the syscall's return value (exec: 0) */
	/* the call's numeric arguments as passed (connect: none, see addr/port; file changes:
	 * chmod [mode], chown [uid, gid], truncate [length], and the AT_* flags in args[2]) */
	__u64 args[4];
	__u8 addr[16]; /* connect: IPv4 as ::ffff:a.b.c.d */
	__u16 port;    /* connect: host byte order */
	__u16 family;
	__u32 flags; /* enum tg_security_flags */
	char comm[16];
	char pcomm[TG_SECURITY_ANCESTORS][16];
	/* exec: the file; openat: the path; mount: the target; file changes: the path changed
	 * (rename, link, symlink: the new name) */
	char path[TG_SECURITY_PATH_LEN];
	/* exec: argv; mount: source NUL fstype; rename, link: the source path; symlink: the target
	 * as given */
	char extra[TG_SECURITY_EXTRA_LEN];
	/* exec: the file the new image runs (its mm's exe_file, a script's interpreter), rebuilt from
	 * its dentries and mounts: symlinks, relative names and execveat/fexecve's /dev/fd/N resolved */
	char exe[TG_SECURITY_PATH_LEN];
	/* exec: the working directory relative names (the file's, a script's in argv) are relative to
	 * (resolved the same way) */
	char cwd[TG_SECURITY_PATH_LEN];
	/* the caller's cgroup (v2): its id, its directory's name and its parent's ([0] parent,
	 * [1] leaf), where container runtimes put the container id and Kubernetes the pod uid;
	 * read in the kernel, so a process that exits at once still names its container */
	__u64 cgroup_id;
	char cgroup[2][TG_SECURITY_CGROUP_NAME_LEN];
};

#endif /* TELEGEN_SECURITY_H */
