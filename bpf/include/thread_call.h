/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A thread's socket syscall state, kept by the socket tracer on the thread itself (task storage
 * tg_calls) and read by the TLS tracer, which reuses the map by fd. One store serves both: the
 * TLS tracer had its own programs on eight syscall tracepoints and an LRU hash written on every
 * socket read and write of every process: 1.4 µs (saturation) to 2 µs (1k req/s) of kernel time
 * per plaintext HTTP request, measured with kernel.bpf_stats_enabled. */
#ifndef TELEGEN_THREAD_CALL_H
#define TELEGEN_THREAD_CALL_H

struct tg_thread_call {
	/* The call in flight, enter → exit (kind == 0: none). */
	__u64 buf;  /* buffer or iovec array */
	__u64 cnt;  /* buffer length or iovec count */
	__u64 addr; /* user sockaddr of sendto/recvfrom/msg_name (UDP peer), 0 if none */
	__u32 fd;
	__u8 kind;  /* enum call_kind (socket.bpf.c) */
	__u8 dir;   /* enum tg_dir */
	__u16 _pad;
	/* Outlive the call: the last tracked socket the thread read or wrote, and how many such
	 * calls it made (0: none yet). A change of data_seq across an SSL call means a socket
	 * syscall ran inside it (socket BIO); otherwise data_fd is the socket it touched last
	 * (memory BIO: node reads the ciphertext, then decrypts it on the same thread). */
	__u32 data_fd;
	__u32 data_seq;
};

#define TG_THREAD_CALLS_MAP(name)                           \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_TASK_STORAGE);    \
		__uint(map_flags, BPF_F_NO_PREALLOC);       \
		__type(key, int);                           \
		__type(value, struct tg_thread_call);       \
	} name SEC(".maps")

#endif /* TELEGEN_THREAD_CALL_H */
