/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What the Go uprobes (go_tls.bpf.c, go_http2.bpf.c) read the same way: the goroutine a probe
 * runs on, and the socket behind a *tls.Conn. */
#ifndef TELEGEN_GO_CONN_H
#define TELEGEN_GO_CONN_H

/* A goroutine: r14 holds its g on amd64 (register ABI, Go >= 1.17). Per goroutine, not per
 * thread: a goroutine that blocks may resume on another thread. */
struct g_key {
	__u64 g;
	__u32 pid;
	__u32 _pad;
};

static __always_inline struct g_key go_gkey(struct pt_regs *ctx, __u32 pid)
{
	struct g_key k = { .g = ctx->r14, .pid = pid };
	return k;
}

/* *tls.Conn → its socket's Sysfd into *sysfd: tls.Conn.conn (net.Conn interface, data word) →
 * *net.TCPConn → conn.fd (*netFD) → pfd.Sysfd, at the binary's three offsets
 * (host/src/gotrace/offsets.ts). False when a read faults (or a pointer is nil). A net.Conn
 * that is no TCP conn yields an fd the socket tracer does not track. */
static __always_inline bool go_tls_sysfd(__u64 tls_conn, __u64 o_conn, __u64 o_fd, __u64 o_sysfd, __s64 *sysfd)
{
	__u64 data = 0, netfd = 0;
	*sysfd = -1;
	return tls_conn &&
	       !bpf_probe_read_user(&data, sizeof(data), (void *)(tls_conn + o_conn)) && data &&
	       !bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(data + o_fd)) && netfd &&
	       !bpf_probe_read_user(sysfd, sizeof(*sysfd), (void *)(netfd + o_sysfd));
}

#endif /* TELEGEN_GO_CONN_H */
