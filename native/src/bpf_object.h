#pragma once
// Generic loader for the kernel tracers beyond the socket tracer (tcp, xdp, fileio, security):
// opens a compiled BPF object file, sets its read-only config variables by name (from BTF),
// resizes maps, loads (leaving out programs this kernel rejects), attaches each program on its
// own, and gives JavaScript map access plus a polled ring buffer. Links are fds: a killed
// process leaves no program behind.
#include <napi.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "ring_map.h"

struct bpf_object;
struct bpf_link;

namespace telegen {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit BpfObject(const Napi::CallbackInfo &info);
  ~BpfObject();

 private:
  Napi::Value Load(const Napi::CallbackInfo &info);
  Napi::Value Attach(const Napi::CallbackInfo &info);
  Napi::Value MapInfo(const Napi::CallbackInfo &info);
  Napi::Value MapEntries(const Napi::CallbackInfo &info);
  Napi::Value MapLookup(const Napi::CallbackInfo &info);
  Napi::Value MapUpdate(const Napi::CallbackInfo &info);
  Napi::Value MapDelete(const Napi::CallbackInfo &info);
  Napi::Value MapCount(const Napi::CallbackInfo &info);
  Napi::Value RingOpen(const Napi::CallbackInfo &info);
  Napi::Value RingPoll(const Napi::CallbackInfo &info);
  Napi::Value RingWatch(const Napi::CallbackInfo &info);
  Napi::Value Maps(const Napi::CallbackInfo &info);
  Napi::Value Close(const Napi::CallbackInfo &info);

  void Teardown();
  // The ring's fd watched on the event loop (uv_poll); the handle outlives this object until
  // libuv's close callback ran.
  struct Watch;
  static void OnRingReady(uv_poll_t *h, int status, int events);
  void StopWatch();
  int MapFd(Napi::Env env, const Napi::Value &name, unsigned *key_size, unsigned *value_size, bool *per_cpu);

  bpf_object *obj_ = nullptr;
  std::vector<bpf_link *> links_;
  std::vector<int> link_fds_;  // XDP links made with bpf_link_create
  std::unique_ptr<RingMap> ring_;
  // Filled by the ring callback during RingPoll: records copied out (rings here carry rare events).
  std::vector<std::string> pending_;
  size_t pending_limit_ = 0;
  Watch *watch_ = nullptr;
  Napi::FunctionReference watch_cb_;
};

}  // namespace telegen
