// Listening TCP/UDP sockets of this network namespace over NETLINK_SOCK_DIAG (discovery).
#pragma once
#include <napi.h>

namespace telegen {
Napi::Value ListeningSockets(const Napi::CallbackInfo &info);
}  // namespace telegen
