#include "heap.h"

#include <malloc.h>
#include <v8.h>

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

// relieveHeap() -> boolean (false when there is no V8 isolate on this thread).
// Start-up peaks where libbpf parses the kernel's BTF (two 5.3 MiB copies of
// /sys/kernel/btf/vmlinux per BPF object, freed after its load) on top of what the JS modules
// and the decoders' compilation left: a young generation grown to 16 MiB semi-spaces and freed
// malloc chunks. A critical memory-pressure notification is the one V8 entry point that runs a
// full collection which also shrinks the young generation (gc() keeps it); without compaction
// of a large heap it costs ~40 ms. Then the freed pages go back (malloc_trim).
Napi::Value RelieveHeap(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::TryGetCurrent();
  if (isolate) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
  malloc_trim(0);
  return Napi::Boolean::New(info.Env(), isolate != nullptr);
}

}  // namespace

void InitHeap(Napi::Env env, Napi::Object exports) {
  exports.Set("tuneNativeHeap", Napi::Function::New(env, TuneNativeHeap));
  exports.Set("trimNativeHeap", Napi::Function::New(env, TrimNativeHeap));
  exports.Set("relieveHeap", Napi::Function::New(env, RelieveHeap));
}

}  // namespace telegen
