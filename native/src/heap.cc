#include "heap.h"

#include <malloc.h>

namespace telegen {
namespace {

// tuneNativeHeap(mmapThresholdBytes, trimThresholdBytes) -> boolean.
// glibc raises its mmap threshold to the size of every mmapped block that is freed (up to
// 32 MiB) and its trim threshold to twice that: after a few large transient buffers every later
// one is carved from the brk heap, and up to 64 MiB of freed memory stays resident at its top.
// Setting both explicitly turns that adaptation off, so large blocks go back to the kernel when
// they are freed.
Napi::Value TuneNativeHeap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "tuneNativeHeap(mmapThresholdBytes, trimThresholdBytes)");
  }
  int mmap_threshold = info[0].As<Napi::Number>().Int32Value();
  int trim_threshold = info[1].As<Napi::Number>().Int32Value();
  bool ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
  return Napi::Boolean::New(env, ok);
}

// trimNativeHeap() -> boolean (true when memory went back to the kernel).
// Frees below the top of a heap (fragmentation) are never trimmed by free(); malloc_trim
// returns every whole free page of every arena.
Napi::Value TrimNativeHeap(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
}

}  // namespace

void InitHeap(Napi::Env env, Napi::Object exports) {
  exports.Set("tuneNativeHeap", Napi::Function::New(env, TuneNativeHeap));
  exports.Set("trimNativeHeap", Napi::Function::New(env, TrimNativeHeap));
}

}  // namespace telegen
