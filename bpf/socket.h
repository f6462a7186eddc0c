/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Limits and defaults of the socket tracer (socket.bpf.c), shared with the native loader.
 * An enum rather than #defines so the values land in BTF and reach layout.ts too. */
#ifndef TELEGEN_SOCKET_H
#define TELEGEN_SOCKET_H

enum tg_socket_limits {
	TG_CAPTURE_LIMIT = 32768,       /* largest capture_max; power of two (verifier masks) */
	TG_CAPTURE_DEFAULT = 16384,     /* payload bytes kept per syscall by default */
	TG_CAPTURE_TAIL_DEFAULT = 16384, /* ... and of a longer TCP call, from its end (capture_tail;
	                                  * at most TG_CAPTURE_LIMIT) */
	TG_IOV_LOOP_MAX = 1024,         /* iovecs walked per readv/writev/sendmsg/recvmsg with bpf_loop
	                                 * (kernel 5.17+): UIO_MAXIOV, every iovec a call can take */
	TG_MMSG_LOOP_MAX = 1024,        /* messages reported per sendmmsg/recvmmsg with bpf_loop (the
	                                 * kernel caps vlen at UIO_MAXIOV); unrolled: 4 */
	TG_IOV_MAX = 10,                /* iovecs walked unrolled, where the kernel has no bpf_loop: Node
	                                 * writes a chunk as 4 and gathers queued writes into one writev
	                                 * (9 for two chunks and the last); the verifier takes ~1.5 s more
	                                 * than for 8, ~6 s more for 13; 16 did not load in 90 s */
	TG_CONN_MAX_DEFAULT = 1048576,  /* tracked connections (LRU) */
	TG_RING_BYTES_DEFAULT = 16777216,
	TG_WAKEUP_BYTES_DEFAULT = 65536, /* committed bytes that wake the reader at once */
	TG_POLL_MS_DEFAULT = 40,         /* the reader's poll interval otherwise (TELEGEN_RING_POLL_MS) */
};

#endif /* TELEGEN_SOCKET_H */
