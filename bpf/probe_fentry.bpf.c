// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Feature probe for `telegen doctor`: loaded on its own with bpftool. A fentry program needs the
 * kernel to resolve its BTF attach target at load time, so a successful load means fentry works. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("fentry/do_nanosleep")
int BPF_PROG(probe_fentry)
{
	return 0;
}
