#include "caps.h"

#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace telegen {
namespace {

// Capabilities belong to each thread, not to the process: capset(2) changes the caller only.
// Node already runs libuv, V8 and our ring threads by the time the agent is up, so every thread
// is made to drop its own set from a signal handler (what libcap's psx does), and /proc is read
// back to prove it.
struct Plan {
  unsigned long long keep = 0;
  int last = 40;
  __user_cap_data_struct data[2]{};
};
Plan g_plan;
std::atomic<int> g_done{0};
std::atomic<int> g_failed{0};

int LastCap() {
  FILE* f = std::fopen("/proc/sys/kernel/cap_last_cap", "r");
  int last = 40;
  if (f) {
    if (std::fscanf(f, "%d", &last) != 1) last = 40;
    std::fclose(f);
  }
  return last < 63 ? last : 63;
}

// Raw syscalls only: this runs inside a signal handler on any thread.
bool DropHere() {
  for (int c = 0; c <= g_plan.last; c++) {
    if (g_plan.keep & (1ULL << c)) continue;
    // Needs CAP_SETPCAP, which a DaemonSet does not grant: then the bounding set stays and
    // no_new_privs below is what keeps an exec from regaining anything.
    syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0);
  }
  syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[2];
  std::memcpy(data, g_plan.data, sizeof(data));
  if (syscall(SYS_capset, &hdr, data) != 0) return false;
  return syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

void OnSignal(int) {
  int saved = errno;
  if (!DropHere()) g_failed.fetch_add(1);
  g_done.fetch_add(1);
  errno = saved;
}

// One hex field ("CapEff:", "SigBlk:") of /proc/.../status; ~0 when unreadable.
unsigned long long StatusHex(const std::string& statusPath, const char* field) {
  FILE* f = std::fopen(statusPath.c_str(), "r");
  if (!f) return ~0ULL;
  char line[256];
  const size_t n = std::strlen(field);
  unsigned long long v = ~0ULL;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, n) == 0) { v = std::strtoull(line + n, nullptr, 16); break; }
  }
  std::fclose(f);
  return v;
}

unsigned long long CapEffOf(const std::string& statusPath) { return StatusHex(statusPath, "CapEff:"); }

// A thread that blocks the signal never runs the handler until it unblocks it: waiting for it
// cost 2 s per round (10 s of start-up for Node's watchdog thread), so it is not signalled.
bool Blocks(const std::string& statusPath, int sig) {
  const unsigned long long blk = StatusHex(statusPath, "SigBlk:");
  return blk != ~0ULL && (blk >> (sig - 1)) & 1ULL;
}

std::set<pid_t> Threads() {
  std::set<pid_t> out;
  DIR* d = opendir("/proc/self/task");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    out.insert(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  closedir(d);
  return out;
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

// dropCapabilities(keep: number[]) → { kept, threads, unchanged, signal }: `kept` the mask every
// thread now holds (decimal string), `unchanged` the thread ids that still hold more: a thread
// that blocks `signal` cannot be reached (Node's SIGUSR1 watchdog blocks every signal it can).
Napi::Value DropCapabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "dropCapabilities(keep: number[])");
  Napi::Array arr = info[0].As<Napi::Array>();
  g_plan.last = LastCap();
  unsigned long long keep = 0;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    int bit = arr.Get(i).As<Napi::Number>().Int32Value();
    if (bit < 0 || bit > g_plan.last) throw Napi::RangeError::New(env, "capability " + std::to_string(bit) + " unknown to this kernel");
    keep |= 1ULL << bit;
  }
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct cur[2]{};
  if (syscall(SYS_capget, &hdr, cur) != 0) throw Napi::Error::New(env, Errno("capget"));
  const unsigned long long permitted = cur[0].permitted | (static_cast<unsigned long long>(cur[1].permitted) << 32);
  const unsigned long long target = keep & permitted;  // nothing can be gained, only kept
  g_plan.keep = target;
  std::memset(g_plan.data, 0, sizeof g_plan.data);
  g_plan.data[0].effective = g_plan.data[0].permitted = static_cast<uint32_t>(target);
  g_plan.data[1].effective = g_plan.data[1].permitted = static_cast<uint32_t>(target >> 32);

  const int sig = SIGRTMAX - 3;  // glibc keeps the lowest RT signals; Node uses none of these
  struct sigaction sa{}, old{};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, &old) != 0) throw Napi::Error::New(env, Errno("sigaction"));

  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  const pid_t pid = getpid();
  g_failed.store(0);
  if (!DropHere()) { sigaction(sig, &old, nullptr); throw Napi::Error::New(env, Errno("capset on the main thread")); }
  // Threads started while we signal inherit from whoever created them: repeat until /proc shows
  // every thread at the target (a few rounds at most).
  std::set<pid_t> pending;
  for (int round = 0; round < 5; round++) {
    pending.clear();
    for (pid_t tid : Threads()) {
      if (tid == self) continue;
      const std::string st = "/proc/self/task/" + std::to_string(tid) + "/status";
      if (CapEffOf(st) == target || Blocks(st, sig)) continue;
      pending.insert(tid);
    }
    if (pending.empty()) break;
    g_done.store(0);
    int sent = 0;
    for (pid_t tid : pending) if (syscall(SYS_tgkill, pid, tid, sig) == 0) sent++;
    for (int i = 0; i < 400 && g_done.load() < sent; i++) {
      timespec ts{0, 5 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
  }
  // The handler stays: a thread that had the signal blocked runs it whenever it unblocks, and
  // an RT signal's default action would end the process.
  pending.clear();
  for (pid_t tid : Threads()) {
    if (CapEffOf("/proc/self/task/" + std::to_string(tid) + "/status") != target) pending.insert(tid);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("kept", Napi::String::New(env, std::to_string(target)));
  out.Set("threads", Napi::Number::New(env, static_cast<double>(Threads().size())));
  Napi::Array left = Napi::Array::New(env);
  uint32_t n = 0;
  for (pid_t tid : pending) left.Set(n++, Napi::Number::New(env, tid));
  out.Set("unchanged", left);
  out.Set("failed", Napi::Number::New(env, g_failed.load()));
  out.Set("signal", Napi::Number::New(env, sig));
  return out;
}

}  // namespace telegen
