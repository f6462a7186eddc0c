// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Feature probe for `telegen doctor`: loaded on its own with bpftool. A tp_btf program needs the
 * kernel to resolve its BTF attach target at load time, so a successful load means tp_btf works. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_process_exit")
int BPF_PROG(probe_tp_btf, struct task_struct *p)
{
	return 0;
}
