/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A name as the kernel just resolved it, walked again through the dentry cache from the directory
 * it was relative to (dirfd, cwd or the process root), for calls that name a file but return no fd
 * (rename, link, unlink, chmod, …): there is no lookup helper for tracepoint programs, so each
 * component is found among the cached children of its directory. A call that succeeded looked up
 * every component a moment ago, so they are cached; "." and ".." step like the kernel does (".."
 * crosses mount roots, stops at the process root), mount points are entered, and symlinks in the
 * directory part (and the last component when the call follows it) are followed when their target
 * is kept in the inode (i_link: tmpfs, ext4 fast symlinks, …). Anything else — a name longer than
 * WALK_LEN, a component longer than WALK_COMP, a symlink without i_link, a component gone from the
 * cache — ends the walk as WALK_FAIL and the caller reports the name unresolved.
 * One bpf_loop step does one thing (a character of the name, one sibling, one child mount), so
 * long names and large directories cost iterations, not verifier complexity. */
#ifndef TELEGEN_WALK_NAME_H
#define TELEGEN_WALK_NAME_H

#define WALK_LEN 256
#define WALK_MASK (WALK_LEN - 1)
#define WALK_COMP 128
#define WALK_LINKS 8
#define WALK_STEPS 131072

#define WALK_S_IFMT 0170000
#define WALK_S_IFLNK 0120000

enum walk_state {
	WALK_NEXT = 0,  /* skip the slashes before a component */
	WALK_END = 1,   /* find where the component ends */
	WALK_LAST = 2,  /* skip the slashes after it: is it the last one? */
	WALK_SCAN = 3,  /* compare the sibling `child` with the component */
	WALK_MOUNT = 4, /* compare the child mount at `ln` with the mount point `child` */
	WALK_DONE = 5,
	WALK_FAIL = 6,
};

struct walk {
	struct dentry *d; /* the directory reached so far (the leaf itself once DONE with follow_last) */
	struct mount *m;
	struct dentry *rootd; /* the process root: ".." stops there, absolute names start there */
	struct mount *rootm;
	struct dentry *child;
	struct list_head *ln;
	__u32 state;
	__u32 pos;  /* start of the component being looked up (DONE without follow_last: the leaf) */
	__u32 e;    /* its end */
	__u32 q;    /* past the slashes after it */
	__u32 len;  /* bytes in s */
	__u32 links;
	__u32 follow_last; /* the call follows a symlink as last component (chmod, chown, truncate) */
	__u32 last;
	char s[2 * WALK_LEN];
	char t[2 * WALK_LEN];
	__u64 comp[WALK_COMP / 8]; /* the component, zero-padded, compared a word at a time */
	__u64 cand[WALK_COMP / 8];
};

struct walk_ctx {
	struct walk *w;
};

static __always_inline struct dentry *walk_sib(struct hlist_node *n)
{
	return n ? (struct dentry *)((void *)n - bpf_core_field_offset(struct dentry, d_sib)) : NULL;
}

/* "..": like follow_dotdot, the root of a mount steps to its mount point first. */
static __always_inline void walk_up(struct walk *w)
{
	for (int i = 0; i < 8; i++) {
		if (w->d == w->rootd && w->m == w->rootm)
			return;
		struct mount *m = w->m;
		if (w->d != BPF_CORE_READ(m, mnt.mnt_root))
			break;
		struct mount *pm = BPF_CORE_READ(m, mnt_parent);
		if (pm == m)
			return;
		w->d = BPF_CORE_READ(m, mnt_mountpoint);
		w->m = pm;
	}
	struct dentry *d = w->d; /* a local: CO-RE relocates every access inside BPF_CORE_READ */
	w->d = BPF_CORE_READ(d, d_parent);
}

static __always_inline long walk_fail(struct walk *w)
{
	w->state = WALK_FAIL;
	return 1;
}

/* After a component: the next one, or the end of the name. */
static __always_inline long walk_advance(struct walk *w)
{
	w->pos = w->q;
	if (w->last) {
		w->state = WALK_DONE;
		return 1;
	}
	w->state = WALK_NEXT;
	return 0;
}

/* Where the walk goes once the component is found as dentry c. */
static __always_inline long walk_found(struct walk *w, struct dentry *c)
{
	struct inode *ino = BPF_CORE_READ(c, d_inode);
	__u16 mode = BPF_CORE_READ(ino, i_mode);
	if ((mode & WALK_S_IFMT) == WALK_S_IFLNK && (!w->last || w->follow_last)) {
		/* t = target + the rest of the name, which then becomes the name walked */
		const char *link = BPF_CORE_READ(ino, i_link);
		if (!link || ++w->links > WALK_LINKS)
			return walk_fail(w);
		long n = bpf_probe_read_kernel_str(w->t, WALK_LEN, link);
		if (n <= 1)
			return walk_fail(w);
		n--;
		__u32 e = w->e;
		__u32 rest = w->len > e ? w->len - e : 0;
		if (n + rest >= WALK_LEN)
			return walk_fail(w);
		__u64 rn = rest;
		barrier_var(rn); /* keeps the mask: the verifier bounds the size by it */
		rn &= WALK_MASK;
		bpf_probe_read_kernel(&w->t[n & WALK_MASK], rn, &w->s[e & WALK_MASK]);
		bpf_probe_read_kernel(w->s, WALK_LEN, w->t);
		w->len = n + rest;
		w->pos = 0;
		if (w->s[0] == '/') {
			w->d = w->rootd;
			w->m = w->rootm;
		}
		w->state = WALK_NEXT;
		return 0;
	}
	w->child = c;
	if (BPF_CORE_READ(c, d_flags) & DCACHE_MOUNTED) {
		struct mount *m = w->m;
		w->ln = BPF_CORE_READ(m, mnt_mounts.next);
		w->state = WALK_MOUNT;
		return 0;
	}
	w->d = c;
	return walk_advance(w);
}

/* The component s[pos, e) is known: step over it or start looking it up. */
static __always_inline long walk_component(struct walk *w)
{
	__u32 p = w->pos, clen = w->e - w->pos;
	char c0 = w->s[p & WALK_MASK], c1 = w->s[(p + 1) & WALK_MASK];
	if (clen == 1 && c0 == '.')
		return walk_advance(w);
	if (clen == 2 && c0 == '.' && c1 == '.') {
		walk_up(w);
		return walk_advance(w);
	}
	if (w->last && !w->follow_last) {
		w->state = WALK_DONE; /* the leaf: d is its directory, s[pos, e) its name */
		return 1;
	}
	if (clen >= WALK_COMP)
		return walk_fail(w);
	__builtin_memset(w->comp, 0, sizeof(w->comp));
	__u64 cn = clen;
	barrier_var(cn);
	cn &= WALK_COMP - 1;
	bpf_probe_read_kernel(w->comp, cn, &w->s[p & WALK_MASK]);
	struct dentry *d = w->d;
	w->child = walk_sib(BPF_CORE_READ(d, d_children.first));
	w->state = WALK_SCAN;
	return 0;
}

static __always_inline long walk_scan(struct walk *w)
{
	struct dentry *c = w->child;
	if (!c)
		return walk_fail(w);
	__u32 clen = w->e - w->pos;
	struct qstr q = {};
	bpf_probe_read_kernel(&q, sizeof(q), &c->d_name);
	/* negative and unhashed (being deleted) dentries are not the name's file */
	if (q.len == clen && BPF_CORE_READ(c, d_inode) && BPF_CORE_READ(c, d_hash.pprev)) {
		__builtin_memset(w->cand, 0, sizeof(w->cand));
		__u64 cn = clen;
		barrier_var(cn);
		cn &= WALK_COMP - 1;
		bpf_probe_read_kernel(w->cand, cn, q.name);
		int same = 1;
		for (int k = 0; k < WALK_COMP / 8; k++) {
			if (w->cand[k] != w->comp[k]) {
				same = 0;
				break;
			}
		}
		if (same)
			return walk_found(w, c);
	}
	w->child = walk_sib(BPF_CORE_READ(c, d_sib.next));
	return 0;
}

static __always_inline long walk_mount(struct walk *w)
{
	struct list_head *ln = w->ln;
	struct mount *m = w->m;
	struct list_head *head = (struct list_head *)((void *)m + bpf_core_field_offset(struct mount, mnt_mounts));
	struct dentry *c = w->child;
	if (!ln || ln == head) {
		/* mounted in another namespace only: this one sees the directory itself */
		w->d = c;
		return walk_advance(w);
	}
	struct mount *mc = (struct mount *)((void *)ln - bpf_core_field_offset(struct mount, mnt_child));
	if (BPF_CORE_READ(mc, mnt_mountpoint) != c) {
		w->ln = BPF_CORE_READ(ln, next);
		return 0;
	}
	struct dentry *root = BPF_CORE_READ(mc, mnt.mnt_root);
	w->m = mc;
	if (BPF_CORE_READ(root, d_flags) & DCACHE_MOUNTED) {
		/* mounts stacked on the same point: the top one is what lookups see */
		w->child = root;
		w->ln = BPF_CORE_READ(mc, mnt_mounts.next);
		return 0;
	}
	w->d = root;
	return walk_advance(w);
}

/* One step: a character while parsing, one sibling or one child mount while looking up. */
static long walk_step(__u32 i, void *arg)
{
	struct walk *w = ((struct walk_ctx *)arg)->w;
	__u32 state = w->state;
	if (state == WALK_NEXT) {
		__u32 p = w->pos;
		if (p >= w->len) {
			/* nothing left: the name ended with "/"; d is what it named */
			w->state = w->follow_last ? WALK_DONE : WALK_FAIL;
			return 1;
		}
		if (w->s[p & WALK_MASK] == '/') {
			w->pos = p + 1;
			return 0;
		}
		w->e = p;
		w->state = WALK_END;
		return 0;
	}
	if (state == WALK_END) {
		__u32 e = w->e;
		if (e < w->len && w->s[e & WALK_MASK] != '/') {
			w->e = e + 1;
			return 0;
		}
		w->q = e;
		w->state = WALK_LAST;
		return 0;
	}
	if (state == WALK_LAST) {
		__u32 q = w->q;
		if (q < w->len && w->s[q & WALK_MASK] == '/') {
			w->q = q + 1;
			return 0;
		}
		w->last = q >= w->len;
		return walk_component(w);
	}
	if (state == WALK_SCAN)
		return walk_scan(w);
	if (state == WALK_MOUNT)
		return walk_mount(w);
	return 1;
}

#endif
