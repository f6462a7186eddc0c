// Capability dropping after start-up: Node has no capset(2)/prctl(2), so the agent keeps only
// what its run-time attaches need through this (issue 11, docs/security.md).
#pragma once
#include <napi.h>

namespace telegen {
Napi::Value DropCapabilities(const Napi::CallbackInfo& info);
}  // namespace telegen
