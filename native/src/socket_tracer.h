#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "ring_reader.h"

struct socket_bpf;
struct bpf_link;

namespace telegen {

// JS class SocketTracer: loads bpf/socket.bpf.c's skeleton, attaches each program on its
// own, and drains its ring buffer through a RingReader.
class SocketTracer : public Napi::ObjectWrap<SocketTracer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit SocketTracer(const Napi::CallbackInfo &info);
  ~SocketTracer();

 private:
  Napi::Value Open(const Napi::CallbackInfo &info);
  Napi::Value Stats(const Napi::CallbackInfo &info);
  Napi::Value MapStats(const Napi::CallbackInfo &info);
  Napi::Value Maps(const Napi::CallbackInfo &info);
  Napi::Value Close(const Napi::CallbackInfo &info);
  Napi::Value Detach(const Napi::CallbackInfo &info);
  Napi::Value MapFds(const Napi::CallbackInfo &info);
  Napi::Value GetRing(const Napi::CallbackInfo &info);
  Napi::Value GetIndex(const Napi::CallbackInfo &info);
  Napi::Value SetPaused(const Napi::CallbackInfo &info);
  Napi::Value SetMaxBatch(const Napi::CallbackInfo &info);

  void Teardown();

  socket_bpf *skel_ = nullptr;
  std::vector<bpf_link *> links_;
  std::unique_ptr<RingReader> reader_;
};

}  // namespace telegen
