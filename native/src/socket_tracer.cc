#include "socket_tracer.h"

#include "bpf_common.h"

#include "map_fill.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <algorithm>
#include <set>

#include "telegen.h"
#include "socket.h"
#include "socket.skel.h"

namespace telegen {

namespace {

// libbpf reports verifier logs and attach failures through its print callback; keep the
// recent tail so a failure report can say why instead of just an errno.
std::mutex g_log_mu;
std::string g_log;

int CaptureLibbpfLog(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[2048];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::lock_guard<std::mutex> lk(g_log_mu);
  g_log.append(buf);
  if (g_log.size() > 65536) g_log.erase(0, g_log.size() - 65536);
  return 0;
}

std::string TakeLog(size_t tail = 1500) {
  std::lock_guard<std::mutex> lk(g_log_mu);
  std::string s;
  s.swap(g_log);
  if (s.size() > tail) s = "..." + s.substr(s.size() - tail);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}


struct Options {
  uint64_t ring_bytes = TG_RING_BYTES_DEFAULT;
  uint32_t capture_max = TG_CAPTURE_DEFAULT;
  uint32_t capture_tail = TG_CAPTURE_TAIL_DEFAULT;
  uint32_t conn_max = TG_CONN_MAX_DEFAULT;
  uint32_t self_pid = 0;
  uint32_t target_pid = 0;
  uint32_t wakeup_bytes = TG_WAKEUP_BYTES_DEFAULT;
  // false: load and attach only; the ring is drained elsewhere (privilege separation's worker).
  bool drain = true;
  // How the iovec calls' exits walk iovecs: "auto" (bpf_loop where the kernel has it), "loop",
  // "unrolled" (TG_IOV_MAX iovecs; what kernels before 5.17 get).
  std::string iov_walk = "auto";
};

uint64_t NumberOpt(Napi::Object o, const char *key, uint64_t def, uint64_t min, uint64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != static_cast<uint64_t>(d))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be an integer in [" + std::to_string(min) +
                                             ", " + std::to_string(max) + "]");
  return static_cast<uint64_t>(d);
}

Options ParseOptions(Napi::Env env, Napi::Value v) {
  Options o;
  o.self_pid = getpid();
  if (v.IsUndefined()) return o;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object obj = v.As<Napi::Object>();
  uint64_t page = sysconf(_SC_PAGESIZE);
  uint64_t ring = NumberOpt(obj, "ringBytes", o.ring_bytes, page, 1ULL << 30);
  // The kernel wants a power-of-two multiple of the page size.
  uint64_t p2 = page;
  while (p2 < ring) p2 <<= 1;
  o.ring_bytes = p2;
  o.capture_max = NumberOpt(obj, "captureMax", o.capture_max, 1, TG_CAPTURE_LIMIT);
  o.capture_tail = NumberOpt(obj, "captureTail", o.capture_tail, 0, TG_CAPTURE_LIMIT);
  o.conn_max = NumberOpt(obj, "connMax", o.conn_max, 1, 1U << 26);
  o.self_pid = NumberOpt(obj, "selfPid", o.self_pid, 0, UINT32_MAX);
  o.target_pid = NumberOpt(obj, "targetPid", o.target_pid, 0, UINT32_MAX);
  // A threshold a small ring can never reach would leave only the poll timer.
  o.wakeup_bytes = NumberOpt(obj, "wakeupBytes", std::min<uint64_t>(o.wakeup_bytes, o.ring_bytes / 4), 0, o.ring_bytes / 2);
  Napi::Value drain = obj.Get("drain");
  if (drain.IsBoolean()) o.drain = drain.As<Napi::Boolean>();
  Napi::Value walk = obj.Get("iovWalk");
  if (!walk.IsUndefined() && !walk.IsNull()) {
    std::string w = walk.IsString() ? walk.As<Napi::String>().Utf8Value() : "";
    if (w != "auto" && w != "loop" && w != "unrolled")
      throw Napi::TypeError::New(env, "iovWalk must be \"auto\", \"loop\" or \"unrolled\"");
    o.iov_walk = w;
  }
  return o;
}

// Test-only fault injection, so the partial-failure paths run on a kernel where every
// program works: TELEGEN_FAULT_INJECT="load:tg_in_close,attach:tg_out_read".
bool FaultInjected(const char *stage, const char *prog) {
  const char *env = getenv("TELEGEN_FAULT_INJECT");
  if (!env) return false;
  std::string want = std::string(stage) + ":" + prog;
  std::string list = env;
  size_t at = 0;
  while (at <= list.size()) {
    size_t end = list.find(',', at);
    if (end == std::string::npos) end = list.size();
    if (list.compare(at, end - at, want) == 0) return true;
    at = end + 1;
  }
  return false;
}

// Opens and loads the skeleton with the programs in `disabled` left out. On failure returns
// nullptr and the reason (with the verifier's tail) in *err.
socket_bpf *LoadSkeleton(const Options &o, const std::set<std::string> &disabled, std::string *err) {
  socket_bpf *s = socket_bpf__open();
  if (!s) {
    *err = "open: " + ErrStr(errno) + " " + TakeLog();
    return nullptr;
  }
  s->rodata->self_pid = o.self_pid;
  s->rodata->target_pid = o.target_pid;
  s->rodata->capture_max = o.capture_max;
  s->rodata->capture_tail = o.capture_tail;
  s->rodata->wakeup_bytes = o.wakeup_bytes;
  int ncpu = libbpf_num_possible_cpus();
  bpf_map__set_max_entries(s->maps.tg_conns, o.conn_max);
  bpf_map__set_max_entries(s->maps.tg_ring, o.ring_bytes);
  bpf_map__set_max_entries(s->maps.tg_scratch, ncpu > 0 ? ncpu : 1);
  bpf_program *p;
  bpf_object__for_each_program(p, s->obj) {
    if (disabled.count(bpf_program__name(p))) bpf_program__set_autoload(p, false);
    // A tracepoint program presented as XDP: the verifier rejects its helpers, for real.
    if (FaultInjected("load", bpf_program__name(p))) bpf_program__set_type(p, BPF_PROG_TYPE_XDP);
  }
  TakeLog();
  int e = socket_bpf__load(s);
  if (e) {
    *err = "load: " + ErrStr(e) + "\n" + TakeLog();
    socket_bpf__destroy(s);
    return nullptr;
  }
  return s;
}

const char kUnrolled[] = "_unrolled";

// The twin of an iovec call's exit: "tg_out_writev" <-> "tg_out_writev_unrolled"; "" if none.
std::string TwinOf(const std::string &name, const std::set<std::string> &all) {
  const size_t n = sizeof(kUnrolled) - 1;
  std::string t = name.size() > n && name.compare(name.size() - n, n, kUnrolled) == 0
                      ? name.substr(0, name.size() - n)
                      : name + kUnrolled;
  return all.count(t) ? t : "";
}

bool IsUnrolled(const std::string &name) {
  const size_t n = sizeof(kUnrolled) - 1;
  return name.size() > n && name.compare(name.size() - n, n, kUnrolled) == 0;
}

// bpf_loop (5.17+) walks every iovec; without it the unrolled twins load instead.
bool KernelHasBpfLoop() { return libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, nullptr) == 1; }

std::vector<std::string> ProgramNames() {
  std::vector<std::string> names;
  socket_bpf *s = socket_bpf__open();
  if (!s) return names;
  bpf_program *p;
  bpf_object__for_each_program(p, s->obj) names.push_back(bpf_program__name(p));
  socket_bpf__destroy(s);
  return names;
}

// libbpf finds tracepoint ids under tracefs; mount it when this mount namespace lacks it.
void EnsureTracefs(std::vector<std::string> *mounted) {
  if (access("/sys/kernel/tracing/events", F_OK) == 0 || access("/sys/kernel/debug/tracing/events", F_OK) == 0)
    return;
  if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0) mounted->push_back("/sys/kernel/tracing");
}

}  // namespace

Napi::Function SocketTracer::Init(Napi::Env env) {
  libbpf_set_print(CaptureLibbpfLog);
  return DefineClass(env, "SocketTracer",
                     {
                         InstanceMethod<&SocketTracer::Open>("open"),
                         InstanceMethod<&SocketTracer::Stats>("stats"),
                         InstanceMethod<&SocketTracer::MapStats>("mapStats"),
                         InstanceMethod<&SocketTracer::Maps>("maps"),
                         InstanceMethod<&SocketTracer::Close>("close"),
                         InstanceMethod<&SocketTracer::Detach>("detach"),
                         InstanceMethod<&SocketTracer::MapFds>("mapFds"),
                         InstanceMethod<&SocketTracer::SetPaused>("setPaused"),
                         InstanceMethod<&SocketTracer::SetMaxBatch>("setMaxBatch"),
                         InstanceAccessor<&SocketTracer::GetRing>("ring"),
                         InstanceAccessor<&SocketTracer::GetIndex>("index"),
                     });
}

SocketTracer::SocketTracer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<SocketTracer>(info) {}

SocketTracer::~SocketTracer() {
  reader_.reset();
  DestroyLinks(std::move(links_));
  links_.clear();
  if (skel_) socket_bpf__destroy(skel_);
  skel_ = nullptr;
}

// open(options, handler(count)) → { attached, failed, progIds, mounted, ringBytes, ... }
Napi::Value SocketTracer::Open(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (skel_) throw Napi::Error::New(env, "already open");
  Options o = ParseOptions(env, info[0]);
  if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "handler must be a function");
  Napi::Function handler = info[1].As<Napi::Function>();

  Napi::Object report = Napi::Object::New(env);
  Napi::Array failed = Napi::Array::New(env);
  auto add_failed = [&](const std::string &name, const std::string &error) {
    Napi::Object f = Napi::Object::New(env);
    f.Set("name", name);
    f.Set("error", error);
    failed.Set(failed.Length(), f);
  };

  std::vector<std::string> mounted;
  EnsureTracefs(&mounted);

  std::string err;
  std::vector<std::string> names = ProgramNames();
  std::set<std::string> all(names.begin(), names.end());
  // One of each iovec exit's twins: the bpf_loop walk where the kernel has it.
  bool loop = o.iov_walk == "loop" || (o.iov_walk == "auto" && KernelHasBpfLoop());
  std::set<std::string> disabled;
  for (const std::string &n : names)
    if (!TwinOf(n, all).empty() && IsUnrolled(n) == loop) disabled.insert(n);
  socket_bpf *skel = LoadSkeleton(o, disabled, &err);
  if (!skel) {
    // libbpf loads all programs or none. Find the ones this kernel rejects, one at a time
    // with tiny maps, and load the rest: one bad program must not take the tracer down. A
    // bpf_loop exit the kernel refuses is replaced by its unrolled twin when that loads.
    std::string first_err = err;
    Options probe = o;
    probe.conn_max = 64;
    probe.ring_bytes = sysconf(_SC_PAGESIZE);
    auto loads_alone = [&](const std::string &n, std::string *perr) {
      std::set<std::string> others(all);
      others.erase(n);
      socket_bpf *one = LoadSkeleton(probe, others, perr);
      if (one) socket_bpf__destroy(one);
      return one != nullptr;
    };
    std::set<std::string> chosen;
    for (const std::string &n : names)
      if (!disabled.count(n)) chosen.insert(n);
    for (const std::string &n : chosen) {
      std::string perr;
      if (loads_alone(n, &perr)) continue;
      disabled.insert(n);
      std::string twin = TwinOf(n, all), terr;
      if (!twin.empty() && !IsUnrolled(n) && loads_alone(twin, &terr)) {
        disabled.erase(twin);
        continue;
      }
      add_failed(n, perr);
    }
    if (disabled.size() < names.size()) skel = LoadSkeleton(o, disabled, &err);
    if (!skel) throw Napi::Error::New(env, "socket tracer did not load: " + first_err);
  }
  skel_ = skel;
  // What the loaded iovec exits walk: TG_IOV_LOOP_MAX only if every one of them uses bpf_loop.
  uint32_t iov_max = TG_IOV_LOOP_MAX;
  for (const std::string &n : names)
    if (IsUnrolled(n) && !disabled.count(n)) iov_max = TG_IOV_MAX;

  Napi::Array attached = Napi::Array::New(env);
  Napi::Array prog_ids = Napi::Array::New(env);
  bpf_program *p;
  bpf_object__for_each_program(p, skel_->obj) {
    if (!bpf_program__autoload(p)) continue;
    const char *name = bpf_program__name(p);
    bpf_prog_info pinfo{};
    __u32 plen = sizeof(pinfo);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &pinfo, &plen) == 0) prog_ids.Set(prog_ids.Length(), pinfo.id);
    TakeLog();
    bpf_link *link = nullptr;
    if (FaultInjected("attach", name))
      errno = EINVAL;
    else
      link = bpf_program__attach(p);
    if (!link) {
      int e = errno;
      std::string log = TakeLog(400);
      add_failed(name, "attach: " + ErrStr(e) + (log.empty() ? "" : "\n" + log));
      continue;
    }
    links_.push_back(link);
    attached.Set(attached.Length(), name);
  }

  if (o.drain) {
    try {
      reader_ = std::make_unique<RingReader>(env, bpf_map__fd(skel_->maps.tg_ring),
                                             bpf_map__max_entries(skel_->maps.tg_ring), handler);
    } catch (...) {
      Teardown();
      throw;
    }
    reader_->Start();
  }

  Napi::Array mounted_js = Napi::Array::New(env);
  for (const std::string &m : mounted) mounted_js.Set(mounted_js.Length(), m);
  report.Set("attached", attached);
  report.Set("failed", failed);
  report.Set("progIds", prog_ids);
  report.Set("mounted", mounted_js);
  report.Set("ringBytes", Napi::Number::New(env, static_cast<double>(o.ring_bytes)));
  report.Set("captureMax", o.capture_max);
  report.Set("captureTail", o.capture_tail);
  report.Set("connMax", o.conn_max);
  report.Set("selfPid", o.self_pid);
  report.Set("targetPid", o.target_pid);
  report.Set("wakeupBytes", o.wakeup_bytes);
  report.Set("iovMax", iov_max);
  return report;
}

// Kernel counters summed over CPUs, indexed by enum tg_stat, plus the reader's own.
Napi::Value SocketTracer::Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!skel_) throw Napi::Error::New(env, "not open");
  int ncpu = libbpf_num_possible_cpus();
  std::vector<__u64> per_cpu(ncpu > 0 ? ncpu : 1);
  Napi::Array kernel = Napi::Array::New(env, TG_STAT_MAX);
  int fd = bpf_map__fd(skel_->maps.tg_stats);
  for (__u32 i = 0; i < TG_STAT_MAX; i++) {
    double sum = 0;
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) == 0)
      for (__u64 v : per_cpu) sum += static_cast<double>(v);
    kernel.Set(i, Napi::Number::New(env, sum));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("kernel", kernel);
  out.Set("batches", Napi::Number::New(env, static_cast<double>(reader_ ? reader_->Batches() : 0)));
  out.Set("records", Napi::Number::New(env, static_cast<double>(reader_ ? reader_->Records() : 0)));
  out.Set("ringPendingBytes", Napi::Number::New(env, static_cast<double>(reader_ ? reader_->PendingBytes() : 0)));
  return out;
}

// Walks the connection map's keys: O(entries) syscalls, for diagnostics and tests only.
Napi::Value SocketTracer::MapStats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!skel_) throw Napi::Error::New(env, "not open");
  int fd = bpf_map__fd(skel_->maps.tg_conns);
  __u64 key = 0, next = 0;
  double n = 0;
  void *prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    n++;
    key = next;
    prev = &key;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("conns", Napi::Number::New(env, n));
  out.Set("connMax", bpf_map__max_entries(skel_->maps.tg_conns));
  out.Set("ringBytes", Napi::Number::New(env, static_cast<double>(bpf_map__max_entries(skel_->maps.tg_ring))));
  return out;
}

Napi::Value SocketTracer::Maps(const Napi::CallbackInfo &info) { return DescribeMaps(info.Env(), skel_ ? skel_->obj : nullptr); }

void SocketTracer::Teardown() {
  // Links first so nothing new is produced while the reader winds down.
  DestroyLinks(std::move(links_));
  links_.clear();
  if (reader_) reader_->Stop();
  reader_.reset();
  if (skel_) socket_bpf__destroy(skel_);
  skel_ = nullptr;
}

// The fds the privilege-separated worker needs: it drains the ring and reads the counters itself.
Napi::Value SocketTracer::MapFds(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!skel_) throw Napi::Error::New(env, "not open");
  Napi::Object out = Napi::Object::New(env);
  out.Set("ring", bpf_map__fd(skel_->maps.tg_ring));
  out.Set("stats", bpf_map__fd(skel_->maps.tg_stats));
  out.Set("conns", bpf_map__fd(skel_->maps.tg_conns));
  return out;
}

// detach(): capture stops (the programs are detached); what the ring holds then is handed to the
// handler, batch after batch, to its end: a stopping agent decodes what was captured before the
// stop instead of dropping it (SIGTERM flushes). close() does this first too.
Napi::Value SocketTracer::Detach(const Napi::CallbackInfo &info) {
  DestroyLinks(std::move(links_));
  links_.clear();
  // false: a handler closed the tracer during the drain and tore it down itself.
  if (reader_) reader_->DrainAll();
  return info.Env().Undefined();
}

Napi::Value SocketTracer::Close(const Napi::CallbackInfo &info) {
  DestroyLinks(std::move(links_));
  links_.clear();
  if (reader_ && !reader_->DrainAll()) return info.Env().Undefined();
  Teardown();
  return info.Env().Undefined();
}

Napi::Value SocketTracer::GetRing(const Napi::CallbackInfo &info) {
  return reader_ ? reader_->RingView(info.Env()) : info.Env().Null();
}

// setPaused(paused): the ring is not read while paused (see RingReader::SetPaused).
Napi::Value SocketTracer::SetPaused(const Napi::CallbackInfo &info) {
  if (reader_) reader_->SetPaused(info.Length() > 0 && info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// setMaxBatch(n): at most n records per handler call (see RingReader::SetMaxBatch).
Napi::Value SocketTracer::SetMaxBatch(const Napi::CallbackInfo &info) {
  if (reader_ && info.Length() > 0 && info[0].IsNumber()) reader_->SetMaxBatch(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value SocketTracer::GetIndex(const Napi::CallbackInfo &info) {
  return reader_ ? reader_->IndexView(info.Env()) : info.Env().Null();
}

}  // namespace telegen
