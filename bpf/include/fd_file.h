/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The struct file behind one of the current process's fds, for every object that reads the
 * fdtable: fileio (an fd's inode, paths), security (dirfds, exec'd files), logs (stdout/stderr
 * heirs, inet stream sockets) and tcp (an accepted socket). Include after vmlinux.h and
 * bpf_core_read.h. */
#ifndef TELEGEN_FD_FILE_H
#define TELEGEN_FD_FILE_H

/* The current process's open file at fd, or NULL. */
static __always_inline struct file *current_fd_file(long fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#endif /* TELEGEN_FD_FILE_H */
