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
	TG_SECURITY_CALL_MAX = 17,
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
	__u64 args[4]; /* the call's numeric arguments as passed (connect: none, see addr/port) */
	__u8 addr[16]; /* connect: IPv4 as ::ffff:a.b.c.d */
	__u16 port;    /* connect: host byte order */
	__u16 family;
	__u32 _pad1;
	char comm[16];
	char pcomm[TG_SECURITY_ANCESTORS][16];
	char path[TG_SECURITY_PATH_LEN];   /* exec: the file; openat: the path; mount: the target */
	char extra[TG_SECURITY_EXTRA_LEN]; /* exec: argv; mount: source NUL fstype */
};

#endif /* TELEGEN_SECURITY_H */
