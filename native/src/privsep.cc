#include "privsep.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ring_reader.h"

namespace telegen {
namespace {

constexpr size_t kMaxFds = 8;
constexpr uint32_t kMaxFrame = 1 << 20;

std::string Errno(const char *what) { return std::string(what) + ": " + strerror(errno); }

// Writes all of buf; the socket may be non-blocking (libuv owns it on the loader side).
bool WriteAll(int fd, const uint8_t *buf, size_t len, int timeout_ms) {
  while (len > 0) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n > 0) {
      buf += n;
      len -= n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool ReadAll(int fd, uint8_t *buf, size_t len) {
  while (len > 0) {
    ssize_t n = recv(fd, buf, len, 0);
    if (n > 0) {
      buf += n;
      len -= n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = ECONNRESET;
    return false;
  }
  return true;
}

// sendFds(sock, fds, frame): the frame's first byte carries the fds (SCM_RIGHTS), the rest
// follows as plain bytes. The receiver must read that first byte with recvmsg.
Napi::Value SendFds(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsArray() || !info[2].IsBuffer())
    throw Napi::TypeError::New(env, "sendFds(sock: number, fds: number[], frame: Buffer)");
  int sock = info[0].As<Napi::Number>().Int32Value();
  Napi::Array arr = info[1].As<Napi::Array>();
  auto frame = info[2].As<Napi::Buffer<uint8_t>>();
  if (arr.Length() > kMaxFds) throw Napi::RangeError::New(env, "too many fds");
  if (frame.Length() == 0) throw Napi::RangeError::New(env, "empty frame");
  std::vector<int> fds;
  for (uint32_t i = 0; i < arr.Length(); i++) fds.push_back(arr.Get(i).As<Napi::Number>().Int32Value());

  iovec iov{frame.Data(), 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kMaxFds)]{};
  if (!fds.empty()) {
    msg.msg_control = ctl;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  for (;;) {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0 || errno != EINTR) {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{sock, POLLOUT, 0};
        if (poll(&p, 1, 2000) > 0) continue;
      }
      break;
    }
  }
  if (n != 1) throw Napi::Error::New(env, Errno("sendmsg"));
  if (!WriteAll(sock, frame.Data() + 1, frame.Length() - 1, 2000)) throw Napi::Error::New(env, Errno("send"));
  return Napi::Number::New(env, static_cast<double>(frame.Length()));
}

// connectReceive(path, timeoutMs) → { fd, fds, frame }: connects to the loader and reads its
// first frame (u32 big-endian length + body) with the fds attached to it. The connected socket
// is returned for net.Socket({ fd }); nothing past that frame has been read from it.
Napi::Value ConnectReceive(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "connectReceive(path: string, timeoutMs: number)");
  std::string path = info[0].As<Napi::String>();
  int timeout_ms = info[1].As<Napi::Number>().Int32Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) throw Napi::RangeError::New(env, "socket path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw Napi::Error::New(env, Errno("socket"));
  auto fail = [&](const char *what) {
    std::string e = Errno(what);
    close(s);
    return Napi::Error::New(env, e);
  };
  if (connect(s, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) < 0) throw fail("connect");
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

  uint8_t hdr[4];
  iovec iov{hdr, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kMaxFds)]{};
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof(ctl);
  ssize_t n;
  do n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n == 0) errno = ECONNRESET;
  if (n != 1) throw fail("recvmsg");
  Napi::Array fds = Napi::Array::New(env);
  for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.Set(fds.Length(), fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) throw fail("recvmsg: fds truncated");
  if (!ReadAll(s, hdr + 1, 3)) throw fail("recv header");
  uint32_t len = (uint32_t(hdr[0]) << 24) | (uint32_t(hdr[1]) << 16) | (uint32_t(hdr[2]) << 8) | hdr[3];
  if (len > kMaxFrame) {
    errno = EMSGSIZE;
    throw fail("frame");
  }
  auto body = Napi::Buffer<uint8_t>::New(env, len);
  if (!ReadAll(s, body.Data(), len)) throw fail("recv frame");
  timeval zero{0, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof(zero));
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", s);
  out.Set("fds", fds);
  out.Set("frame", body);
  return out;
}

// peerCred(fd) → { pid, uid, gid } of the process that connected (SO_PEERCRED, kernel-checked).
Napi::Value PeerCred(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "peerCred(fd: number)");
  ucred c{};
  socklen_t len = sizeof(c);
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_PEERCRED, &c, &len) < 0)
    throw Napi::Error::New(env, Errno("SO_PEERCRED"));
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", c.pid);
  out.Set("uid", c.uid);
  out.Set("gid", c.gid);
  return out;
}

// Per-thread state inherited across fork and exec: set on the thread that spawns the worker.
// setNoNewPrivs(emptyBounding): with true, that thread's bounding set is emptied too, so the
// worker starts with no capability even in CapBnd (this thread never execs; its effective set
// is untouched and still sets the worker's uid).
Napi::Value SetNoNewPrivs(const Napi::CallbackInfo &info) {
  if (info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>()) {
    int last = 40;
    if (FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r")) {
      if (fscanf(f, "%d", &last) != 1) last = 40;
      fclose(f);
    }
    for (int c = 0; c <= last && c < 64; c++)
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) throw Napi::Error::New(info.Env(), Errno("PR_CAPBSET_DROP"));
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw Napi::Error::New(info.Env(), Errno("PR_SET_NO_NEW_PRIVS"));
  return info.Env().Undefined();
}

// mapFdsByName(names) → { name: fd } for the BPF maps this process holds open under those names
// (BPF_OBJ_GET_INFO_BY_FD over /proc/self/fd). A name held by two different maps is an error:
// the caller could not tell which to hand over.
Napi::Value MapFdsByName(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "mapFdsByName(names: string[])");
  Napi::Array names = info[0].As<Napi::Array>();
  std::vector<std::string> want;
  for (uint32_t i = 0; i < names.Length(); i++) want.push_back(names.Get(i).As<Napi::String>());
  std::vector<int> fd_of(want.size(), -1);
  std::vector<__u32> id_of(want.size(), 0);
  DIR *d = opendir("/proc/self/fd");
  if (!d) throw Napi::Error::New(env, Errno("opendir /proc/self/fd"));
  int self = dirfd(d);
  std::string clash;
  while (dirent *e = readdir(d)) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || e->d_name[0] == '\0' || fd == self) continue;
    // Only map fds: the info call would fill a program's or link's info into this struct.
    char target[64] = {0};
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    if (readlink(link.c_str(), target, sizeof(target) - 1) < 0 || std::strcmp(target, "anon_inode:bpf-map") != 0) continue;
    bpf_map_info mi{};
    __u32 len = sizeof(mi);
    if (bpf_obj_get_info_by_fd(static_cast<int>(fd), &mi, &len) != 0) continue;
    for (size_t i = 0; i < want.size(); i++) {
      if (want[i] != mi.name) continue;
      if (fd_of[i] >= 0 && id_of[i] != mi.id) clash = want[i];
      fd_of[i] = static_cast<int>(fd);
      id_of[i] = mi.id;
    }
  }
  closedir(d);
  if (!clash.empty()) throw Napi::Error::New(env, "two maps are named " + clash);
  Napi::Object out = Napi::Object::New(env);
  for (size_t i = 0; i < want.size(); i++)
    if (fd_of[i] >= 0) out.Set(want[i], fd_of[i]);
  return out;
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  if (info.Length() > 0 && info[0].IsNumber()) close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// mapSumPerCpu(fd, keys) → sums over CPUs of u64 values at keys 0..keys-1 (the stats map).
Napi::Value MapSumPerCpu(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint32_t keys = info[1].As<Napi::Number>().Uint32Value();
  int ncpu = libbpf_num_possible_cpus();
  std::vector<__u64> per_cpu(ncpu > 0 ? ncpu : 1);
  Napi::Array out = Napi::Array::New(env, keys);
  for (__u32 i = 0; i < keys; i++) {
    double sum = 0;
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) == 0)
      for (__u64 v : per_cpu) sum += static_cast<double>(v);
    out.Set(i, Napi::Number::New(env, sum));
  }
  return out;
}

// mapCountKeys(fd, keySize): O(entries) syscalls, diagnostics only.
Napi::Value MapCountKeys(const Napi::CallbackInfo &info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::vector<uint8_t> key(64), next(64);
  double n = 0;
  void *prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    n++;
    key.swap(next);
    prev = key.data();
  }
  return Napi::Number::New(info.Env(), n);
}

// RingConsumer(fd, size, handler): a RingReader over a ring buffer fd this process was given.
class RingConsumer : public Napi::ObjectWrap<RingConsumer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "RingConsumer",
                       {InstanceMethod<&RingConsumer::Stats>("stats"), InstanceMethod<&RingConsumer::Close>("close"),
                        InstanceMethod<&RingConsumer::SetPaused>("setPaused"),
                        InstanceMethod<&RingConsumer::SetMaxBatch>("setMaxBatch"),
                        InstanceAccessor<&RingConsumer::Ring>("ring"), InstanceAccessor<&RingConsumer::Index>("index")});
  }
  explicit RingConsumer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<RingConsumer>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsFunction())
      throw Napi::TypeError::New(env, "new RingConsumer(fd: number, size: number, handler: (count) => void)");
    double size = info[1].As<Napi::Number>().DoubleValue();
    uint64_t sz = static_cast<uint64_t>(size);
    if (sz == 0 || (sz & (sz - 1)) != 0) throw Napi::RangeError::New(env, "ring size must be a power of two");
    reader_ = std::make_unique<RingReader>(env, info[0].As<Napi::Number>().Int32Value(), sz, info[2].As<Napi::Function>());
    reader_->Start();
  }

 private:
  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("batches", Napi::Number::New(env, static_cast<double>(reader_ ? reader_->Batches() : batches_)));
    out.Set("records", Napi::Number::New(env, static_cast<double>(reader_ ? reader_->Records() : records_)));
    out.Set("ringPendingBytes", Napi::Number::New(env, static_cast<double>(reader_ ? reader_->PendingBytes() : 0)));
    return out;
  }
  Napi::Value Close(const Napi::CallbackInfo &info) {
    if (reader_) {
      batches_ = reader_->Batches();
      records_ = reader_->Records();
      reader_->Stop();
      reader_.reset();
    }
    return info.Env().Undefined();
  }
  Napi::Value SetPaused(const Napi::CallbackInfo &info) {
    if (reader_) reader_->SetPaused(info.Length() > 0 && info[0].ToBoolean().Value());
    return info.Env().Undefined();
  }
  Napi::Value SetMaxBatch(const Napi::CallbackInfo &info) {
    if (reader_ && info.Length() > 0 && info[0].IsNumber()) reader_->SetMaxBatch(info[0].As<Napi::Number>().Uint32Value());
    return info.Env().Undefined();
  }
  Napi::Value Ring(const Napi::CallbackInfo &info) { return reader_ ? reader_->RingView(info.Env()) : info.Env().Null(); }
  Napi::Value Index(const Napi::CallbackInfo &info) { return reader_ ? reader_->IndexView(info.Env()) : info.Env().Null(); }

  std::unique_ptr<RingReader> reader_;
  uint64_t batches_ = 0;
  uint64_t records_ = 0;
};

}  // namespace

Napi::Object InitPrivsep(Napi::Env env, Napi::Object exports) {
  exports.Set("sendFds", Napi::Function::New(env, SendFds));
  exports.Set("connectReceive", Napi::Function::New(env, ConnectReceive));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
  exports.Set("setNoNewPrivs", Napi::Function::New(env, SetNoNewPrivs));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("mapFdsByName", Napi::Function::New(env, MapFdsByName));
  exports.Set("mapSumPerCpu", Napi::Function::New(env, MapSumPerCpu));
  exports.Set("mapCountKeys", Napi::Function::New(env, MapCountKeys));
  exports.Set("RingConsumer", RingConsumer::Init(env));
  return exports;
}

}  // namespace telegen
