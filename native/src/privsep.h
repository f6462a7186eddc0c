// Privilege separation (issue 11, docs/security.md): the root loader hands the socket tracer's
// map fds to the unprivileged worker over a Unix socket (SCM_RIGHTS, which Node cannot send), and
// the worker drains the ring buffer it was given. Node has no sendmsg/recvmsg with control data,
// no SO_PEERCRED and no prctl, hence these few calls.
#pragma once
#include <napi.h>

namespace telegen {
Napi::Object InitPrivsep(Napi::Env env, Napi::Object exports);
}  // namespace telegen
