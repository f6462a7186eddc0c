/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The struct file behind one of the current process's fds, for every object that reads the
 * fdtable: fileio (an fd's inode, paths), security (dirfds, exec'd files), logs (stdout/stderr
 * heirs, inet stream sockets) and tcp (an accepted socket). Include after vmlinux.h and
 * bpf_core_read.h. */
#ifndef TELEGEN_FD_FILE_H
#define TELEGEN_FD_FILE_H

/* The current process's open file at fd, or NULL. The task pointer is a BTF one, so the walk to
 * the fd array is plain loads (the verifier makes them fault-safe) and only the indexed slot needs
 * the helper: fileio runs this on every read/write of an fd it has no entry for, where the 5
 * helper calls of a BPF_CORE_READ walk cost ~100 ns more per call. */
static __always_inline struct file *current_fd_file(long fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct files_struct *files = t->files;
	if (!files)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if (!fdt || fd < 0 || fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#endif /* TELEGEN_FD_FILE_H */
