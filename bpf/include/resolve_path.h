/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The absolute path of an opened file, rebuilt from its dentries and mounts with bpf_loop (the
 * file I/O and security tracers): one step up per component (leaf first, crossing mount points),
 * then names written root first. The includer defines RESOLVE_PATH_LEN (the longest path it
 * keeps) and owns the per-CPU `struct resolve` work area (a map of its own). */
#ifndef TELEGEN_RESOLVE_PATH_H
#define TELEGEN_RESOLVE_PATH_H

#include "fd_file.h"

#ifndef RESOLVE_PATH_LEN
#error "define RESOLVE_PATH_LEN before including resolve_path.h"
#endif

#define RESOLVE_DEPTH 16
#define RESOLVE_MASK 255

struct resolve {
	struct dentry *ds[RESOLVE_DEPTH]; /* leaf first */
	__u32 n;    /* dentries in ds */
	__u32 next; /* components written to buf so far (root first) */
	__u32 o;    /* bytes in buf */
	__u32 _pad;
	struct dentry *d;
	struct dentry *root; /* the root dentry of m */
	struct mount *m;
	char buf[2 * (RESOLVE_MASK + 1)];
};

/* bpf_loop's context must live on the stack: it points to the per-CPU work area. */
struct resolve_ctx {
	struct resolve *r;
};

/* One dentry up (one read per component: names are read on the way down only, where the
 * security tracer stops as soon as no watched prefix can match). */
static long up_step(__u32 i, void *arg)
{
	struct resolve *r = ((struct resolve_ctx *)arg)->r;
	struct dentry *d = r->d;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == r->root || d == parent) {
		struct mount *m = r->m;
		struct mount *pm = BPF_CORE_READ(m, mnt_parent);
		if (pm == m)
			return 1; /* the root of the mount tree */
		r->d = BPF_CORE_READ(m, mnt_mountpoint);
		r->m = pm;
		r->root = BPF_CORE_READ(pm, mnt.mnt_root);
		return 0;
	}
	__u32 n = r->n;
	if (n >= RESOLVE_DEPTH)
		return 1;
	r->ds[n & (RESOLVE_DEPTH - 1)] = d;
	r->n = n + 1;
	r->d = parent;
	return 0;
}

/* Appends the next component (root first) to buf. */
static long down_step(__u32 i, void *arg)
{
	struct resolve *r = ((struct resolve_ctx *)arg)->r;
	__u32 next = r->next;
	if (next >= r->n)
		return 1;
	/* next < n <= RESOLVE_DEPTH: the mask changes nothing but bounds the index for the verifier. */
	__u32 k = (r->n - 1 - next) & (RESOLVE_DEPTH - 1);
	__u32 o = r->o;
	if (o >= RESOLVE_PATH_LEN)
		return 1;
	struct qstr q = {};
	bpf_probe_read_kernel(&q, sizeof(q), &r->ds[k]->d_name);
	r->buf[o & RESOLVE_MASK] = '/';
	o++;
	__u32 len = q.len;
	if (len > RESOLVE_PATH_LEN)
		len = RESOLVE_PATH_LEN;
	bpf_probe_read_kernel(&r->buf[o & RESOLVE_MASK], len & (RESOLVE_PATH_LEN * 2 - 1), q.name);
	r->o = o + len;
	r->next = next + 1;
	return 0;
}

/* struct vfsmount is embedded in struct mount (fs/mount.h): the mount that holds it. */
static __always_inline struct mount *real_mount(struct vfsmount *vm)
{
	return (struct mount *)((void *)vm - bpf_core_field_offset(struct mount, mnt));
}

/* Starts at dentry d of mount m and climbs to the root of the mount tree (r->ds, leaf first);
 * nothing is written to buf yet. */
static __always_inline void resolve_up(struct resolve *r, struct dentry *d, struct mount *m)
{
	r->d = d;
	r->m = m;
	r->root = BPF_CORE_READ(m, mnt.mnt_root);
	r->n = 0;
	r->next = 0;
	r->o = 0;
	struct resolve_ctx c = { .r = r };
	bpf_loop(RESOLVE_DEPTH + 8, up_step, &c, 0);
}

/* Writes up to `components` more components (root first) after what buf holds. */
static __always_inline void resolve_down(struct resolve *r, __u32 components)
{
	struct resolve_ctx c = { .r = r };
	bpf_loop(components, down_step, &c, 0);
}

/* What resolve_down wrote in r->buf into out (RESOLVE_PATH_LEN bytes, NUL-terminated; "/" for
 * the root itself). */
static __always_inline void resolve_copy_out(struct resolve *r, char *out)
{
	__u32 o = r->o;
	if (!o)
		r->buf[o++] = '/';
	r->buf[o & RESOLVE_MASK] = 0;
	bpf_probe_read_kernel(out, RESOLVE_PATH_LEN, r->buf);
	out[RESOLVE_PATH_LEN - 1] = 0;
}

#endif
