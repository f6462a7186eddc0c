// glibc malloc settings for a long-running agent: Node's ArrayBuffers, V8's compiler zones and
// libbpf all allocate from it, and its defaults keep freed memory resident (issue 12, soak RSS).
#pragma once
#include <napi.h>

namespace telegen {
void InitHeap(Napi::Env env, Napi::Object exports);
}  // namespace telegen
