// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Exec-time attach for the Go tracer. sched_process_exec reports every executable the host has
 * not looked at yet (go_exec_known, filled by the host), so a Go program is analyzed and hooked
 * right away instead of at the next /proc scan; sched_process_exit reports the processes the
 * host watches (go_exec_watch), so their probes go as soon as the last one exits.
 *
 * A Go server accepts its first connection milliseconds after exec, and the analysis takes
 * longer than that (hundreds of ms on a loaded machine): a request whose tls.Conn.Read began
 * before the probes were in is lost. With hold set, a new executable that may be Go — an ELF
 * with no PT_INTERP among the program headers the kernel read (Go links statically unless cgo)
 * — exec'd by a process with no controlling terminal (a job-control shell would report a
 * stopped foreground job) is stopped with SIGSTOP; the host sends SIGCONT once its probes are
 * in, or at once when it is not Go. Only the first exec of a file is held. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "go_exec.h"
#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 self_pid = 0;
const volatile __u8 hold = 0;

enum tg_go_exec_kind tg_anchor_go_exec_kind __attribute__((used));
enum tg_go_exec_known_value tg_anchor_go_exec_known_value __attribute__((used));
enum tg_go_exec_limits tg_anchor_go_exec_limits __attribute__((used));
enum tg_go_exec_stat tg_anchor_go_exec_stat __attribute__((used));
struct tg_go_exec_file tg_anchor_go_exec_file __attribute__((used));
struct tg_go_exec_event tg_anchor_go_exec_event __attribute__((used));

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_GO_EXEC_KNOWN_MAX);
	__type(key, struct tg_go_exec_file);
	__type(value, __u8);
} go_exec_known SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_GO_EXEC_WATCH_MAX);
	__type(key, __u32);
	__type(value, __u8);
} go_exec_watch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} go_exec_ring SEC(".maps");

TG_STATS(go_exec_stats, TG_GO_EXEC_STAT_MAX)

#define SIGSTOP 19
#define PT_INTERP 3
#define BUF_LEN 256

/* A 64-bit ELF executable with no PT_INTERP in the program headers inside bprm->buf (the
 * kernel's first 256 bytes of the file: the header and the first three entries, where a
 * dynamic executable puts PT_INTERP, right after PT_PHDR). */
static __always_inline bool maybe_static_elf(struct linux_binprm *bprm)
{
	__u8 buf[BUF_LEN];
	if (bpf_probe_read_kernel(buf, sizeof(buf), bprm->buf))
		return false;
	if (buf[0] != 0x7f || buf[1] != 'E' || buf[2] != 'L' || buf[3] != 'F' || buf[4] != 2)
		return false;
	__u64 phoff = *(__u64 *)&buf[32];
	__u16 phentsize = *(__u16 *)&buf[54];
	if (phentsize != 56)
		return false;
	for (int i = 0; i < 3; i++) {
		__u64 at = phoff + i * 56;
		if (at + 4 > BUF_LEN)
			break;
		if (*(__u32 *)&buf[at & (BUF_LEN - 1) & ~3ULL] == PT_INTERP)
			return false;
	}
	return true;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(go_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (pid == self_pid)
		return 0;
	struct inode *ino = BPF_CORE_READ(bprm, file, f_inode);
	struct tg_go_exec_file f = {
		.ino = BPF_CORE_READ(ino, i_ino),
		.dev = BPF_CORE_READ(ino, i_sb, s_dev),
	};
	__u8 *known = bpf_map_lookup_elem(&go_exec_known, &f);
	if (known && *known != TG_GO_EXEC_KNOWN_HOOKED)
		return 0;
	struct tg_go_exec_event *e = bpf_ringbuf_reserve(&go_exec_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_GO_EXEC_STAT_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ino = f.ino;
	e->dev = f.dev;
	e->pid = pid;
	e->kind = known ? TG_GO_EXEC_HOOKED : TG_GO_EXEC_EXEC;
	if (!known && hold && !BPF_CORE_READ(p, signal, tty) && maybe_static_elf(bprm)) {
		/* Stop only what the host is sure to hear about: the event is already reserved. */
		if (!bpf_send_signal(SIGSTOP)) {
			e->held = 1;
			stat_inc(TG_GO_EXEC_STAT_HELD);
		}
	}
	bpf_ringbuf_submit(e, 0);
	stat_inc(TG_GO_EXEC_STAT_EVENTS);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(go_exit, struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, tgid);
	if (BPF_CORE_READ(p, pid) != pid || !bpf_map_lookup_elem(&go_exec_watch, &pid))
		return 0;
	bpf_map_delete_elem(&go_exec_watch, &pid);
	struct tg_go_exec_event *e = bpf_ringbuf_reserve(&go_exec_ring, sizeof(*e), 0);
	if (!e) {
		stat_inc(TG_GO_EXEC_STAT_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = pid;
	e->kind = TG_GO_EXEC_EXIT;
	bpf_ringbuf_submit(e, 0);
	stat_inc(TG_GO_EXEC_STAT_EVENTS);
	return 0;
}
