/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* User bytes into a record's payload, from one buffer or an iovec array (write/writev and the
 * socket calls): the socket and logs tracers copy alike. The includer defines COPY_LIMIT (the
 * most bytes kept, a power of two; the payload holds twice that so "offset < limit, size <=
 * limit" is provably in bounds), COPY_IOV_MAX (iovecs walked unrolled), COPY_FAULT (the stat
 * counted by stat_inc() when user memory cannot be read) and, for the bpf_loop walk,
 * COPY_IOV_LOOP_MAX. */
#ifndef TELEGEN_COPY_USER_H
#define TELEGEN_COPY_USER_H

#include "common.h"

/* Copies n (<= COPY_LIMIT) user bytes to buf[off] with off < COPY_LIMIT; returns the bytes
 * copied (0 on a fault). */
static __always_inline __u32 copy_user(__u8 *buf, __u32 off, __u64 src, __u32 n)
{
	if (off >= COPY_LIMIT)
		return 0;
	/* Callers keep off below the limit; clang knows it and drops the test above, the
	 * verifier does not, so restate it in a form that survives. */
	__u64 at = off;
	asm volatile("%[x] &= %[m]" : [x] "+r"(at) : [m] "i"(COPY_LIMIT - 1));
	__u64 len = n;
	CLAMP_REG(len, COPY_LIMIT);
	if (bpf_probe_read_user(&buf[at], len, (void *)src)) {
		stat_inc(COPY_FAULT);
		return 0;
	}
	return len;
}

/* Up to `want` bytes of the iovcnt iovecs at iovp, one after another into buf. */
static __always_inline __u32 copy_iov(__u8 *buf, __u64 iovp, __u64 iovcnt, __u32 want)
{
	__u32 got = 0;

	for (int i = 0; i < COPY_IOV_MAX; i++) {
		struct iovec iov;

		if (i >= iovcnt || got >= want)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iovp + i * sizeof(iov)))) {
			stat_inc(COPY_FAULT);
			break;
		}
		__u64 n = iov.iov_len;
		if (n > want - got)
			n = want - got;
		if (n == 0)
			continue;
		__u32 c = copy_user(buf, got, (__u64)iov.iov_base, n);
		got += c;
		if (c != n)
			break;
	}
	return got;
}

#ifdef COPY_IOV_LOOP_MAX
/* The same walk as a bpf_loop (kernel 5.17+): the step is verified once, not once per iovec,
 * so every iovec a syscall can take (COPY_IOV_LOOP_MAX, UIO_MAXIOV) is walked. Unrolled, each
 * iovec multiplies the verifier's work: past ~13 the socket tracer no longer loads in time. */
struct copy_iov_walk {
	__u8 *buf;
	__u64 iovp;
	__u64 iovcnt;
	__u64 skip; /* bytes passed over before copying: a call's tail starts inside an iovec */
	__u32 want;
	__u32 got;
};

static long copy_iov_step(__u64 i, struct copy_iov_walk *w)
{
	struct iovec iov;
	__u32 got = w->got, want = w->want;

	if (i >= w->iovcnt || got >= want)
		return 1;
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(w->iovp + i * sizeof(iov)))) {
		stat_inc(COPY_FAULT);
		return 1;
	}
	__u64 n = iov.iov_len, base = (__u64)iov.iov_base;
	if (w->skip) {
		if (n <= w->skip) {
			w->skip -= n;
			return 0;
		}
		base += w->skip;
		n -= w->skip;
		w->skip = 0;
	}
	if (n > want - got)
		n = want - got;
	if (n == 0)
		return 0;
	/* copy_user masks the offset and clamps the size itself: what the verifier knows of
	 * w->got here is only that it is a number. */
	__u32 c = copy_user(w->buf, got, base, n);
	w->got = got + c;
	return c != n;
}

/* Up to `want` bytes of the iovecs from byte `skip` of their concatenation on. */
static __always_inline __u32 copy_iov_loop_from(__u8 *buf, __u64 iovp, __u64 iovcnt, __u64 skip, __u32 want)
{
	struct copy_iov_walk w = { .buf = buf, .iovp = iovp, .iovcnt = iovcnt, .skip = skip, .want = want, .got = 0 };

	bpf_loop(iovcnt < COPY_IOV_LOOP_MAX ? iovcnt : COPY_IOV_LOOP_MAX, copy_iov_step, &w, 0);
	return w.got;
}

static __always_inline __u32 copy_iov_loop(__u8 *buf, __u64 iovp, __u64 iovcnt, __u32 want)
{
	return copy_iov_loop_from(buf, iovp, iovcnt, 0, want);
}
#endif

#endif /* TELEGEN_COPY_USER_H */
