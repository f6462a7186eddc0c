#include <napi.h>

#include "bpf_object.h"
#include "caps.h"
#include "heap.h"
#include "map_fill.h"
#include "privsep.h"
#include "profile_tracer.h"
#include "sock_diag.h"
#include "socket_tracer.h"
#include "uprobe_tracer.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SocketTracer", telegen::SocketTracer::Init(env));
  exports.Set("ProfileTracer", telegen::ProfileTracer::Init(env));
  exports.Set("BpfObject", telegen::BpfObject::Init(env));
  exports.Set("UprobeTracer", telegen::UprobeTracer::Init(env));
  exports.Set("listeningSockets", Napi::Function::New(env, telegen::ListeningSockets));
  exports.Set("dropCapabilities", Napi::Function::New(env, telegen::DropCapabilities));
  telegen::InitMapFill(env, exports);
  telegen::InitPrivsep(env, exports);
  telegen::InitHeap(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(telegen_native, Init)
