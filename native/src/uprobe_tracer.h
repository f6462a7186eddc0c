#pragma once
// JS class UprobeTracer: loads a BPF object whose uprobe programs write into another tracer's
// maps (found by name among this process's BPF map fds and reused before load), attaches its
// tracepoint programs at once and its uprobes on demand, per binary and function.
#include <napi.h>

#include <map>
#include <string>

struct bpf_object;
struct bpf_link;

namespace telegen {

class UprobeTracer : public Napi::ObjectWrap<UprobeTracer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit UprobeTracer(const Napi::CallbackInfo &info);
  ~UprobeTracer();

 private:
  Napi::Value Open(const Napi::CallbackInfo &info);
  Napi::Value AttachUprobe(const Napi::CallbackInfo &info);
  Napi::Value Detach(const Napi::CallbackInfo &info);
  Napi::Value Stats(const Napi::CallbackInfo &info);
  Napi::Value Keys(const Napi::CallbackInfo &info);
  static Napi::Value Nghttp2Layout(const Napi::CallbackInfo &info);
  static Napi::Value SymbolOffset(const Napi::CallbackInfo &info);
  Napi::Value Maps(const Napi::CallbackInfo &info);
  Napi::Value Close(const Napi::CallbackInfo &info);

  void Teardown();

  bpf_object *obj_ = nullptr;
  std::map<int, bpf_link *> links_;  // handle → link; tracepoint links use negative handles
  std::map<int, int> fds_;           // handle → uprobe_multi link fd (no libbpf link object)
  int next_ = 1;
};

}  // namespace telegen
