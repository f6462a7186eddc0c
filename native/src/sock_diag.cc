// Listening sockets from NETLINK_SOCK_DIAG instead of /proc/net/{tcp,tcp6}: reading /proc/net/tcp
// walks every bucket of the established hash (262,144 here, empty or not, again on each 4 KiB
// chunk the reader asks for) to list two dozen sockets, ~10% of the idle agent's samples at a
// read every 2 s; a dump asking for TCP_LISTEN only walks the listening hash and skips the
// established one altogether (inet_diag_dump_icsk).
#include "sock_diag.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace telegen {

namespace {

constexpr uint32_t kTcpListen = 10;  // TCP_LISTEN
constexpr uint32_t kTcpClose = 7;    // TCP_CLOSE: an unconnected UDP socket

struct Row {
  uint8_t family;
  uint16_t port;
  uint32_t inode;
  uint8_t addr[16];
};

// One dump of `family`/`protocol` sockets in `states`; false with errno when the kernel has no
// handler for it (udp_diag not loaded) or the socket fails.
bool Dump(int fd, uint8_t family, uint8_t protocol, uint32_t states, uint32_t seq, std::vector<Row> *out) {
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 r;
  } req{};
  req.nlh.nlmsg_len = sizeof(req);
  req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nlh.nlmsg_seq = seq;
  req.r.sdiag_family = family;
  req.r.sdiag_protocol = protocol;
  req.r.idiag_states = 1U << states;
  if (send(fd, &req, sizeof(req), 0) != static_cast<ssize_t>(sizeof(req))) return false;
  alignas(nlmsghdr) static char buf[32768];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return true;
    int len = static_cast<int>(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto *e = static_cast<nlmsgerr *>(NLMSG_DATA(h));
        errno = e->error ? -e->error : EIO;
        return false;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      auto *m = static_cast<inet_diag_msg *>(NLMSG_DATA(h));
      if (protocol == IPPROTO_UDP) {
        // A connected UDP socket is a client's: as /proc/net/udp rows with a remote address.
        if (m->id.idiag_dport != 0) continue;
        bool zero = true;
        for (int i = 0; i < 4; i++) zero = zero && m->id.idiag_dst[i] == 0;
        if (!zero) continue;
      }
      Row r{};
      r.family = m->idiag_family;
      r.port = ntohs(m->id.idiag_sport);
      r.inode = m->idiag_inode;
      memcpy(r.addr, m->id.idiag_src, m->idiag_family == AF_INET ? 4 : 16);
      out->push_back(r);
    }
  }
}

}  // namespace

// listeningSockets('tcp' | 'udp') → [family (4|6), port, inode, address (Buffer: 4 or 16 bytes), …]
// flat, or null when the kernel cannot answer (the caller reads /proc/net instead).
Napi::Value ListeningSockets(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bool udp = info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "udp";
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return env.Null();
  std::vector<Row> rows;
  bool ok = Dump(fd, AF_INET, udp ? IPPROTO_UDP : IPPROTO_TCP, udp ? kTcpClose : kTcpListen, 1, &rows) &&
            Dump(fd, AF_INET6, udp ? IPPROTO_UDP : IPPROTO_TCP, udp ? kTcpClose : kTcpListen, 2, &rows);
  close(fd);
  if (!ok) return env.Null();
  Napi::Array out = Napi::Array::New(env, rows.size() * 4);
  uint32_t i = 0;
  for (const Row &r : rows) {
    out.Set(i++, Napi::Number::New(env, r.family == AF_INET ? 4 : 6));
    out.Set(i++, Napi::Number::New(env, r.port));
    out.Set(i++, Napi::Number::New(env, r.inode));
    out.Set(i++, Napi::Buffer<uint8_t>::Copy(env, r.addr, r.family == AF_INET ? 4 : 16));
  }
  return out;
}

}  // namespace telegen
