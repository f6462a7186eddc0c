#include "bpf_object.h"

#include "bpf_common.h"
#include "map_fill.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace telegen {

namespace {

bool IsPerCpu(bpf_map_type t) {
  return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

struct LoadSpec {
  std::string path;
  std::vector<std::pair<std::string, double>> rodata;
  std::vector<std::pair<std::string, uint32_t>> max_entries;
};

bpf_object *OpenAndLoad(const LoadSpec &spec, const std::set<std::string> &disabled, bool tiny, std::string *err) {
  bpf_object *obj = bpf_object__open_file(spec.path.c_str(), nullptr);
  if (!obj) {
    *err = "open " + spec.path + ": " + ErrStr(errno);
    return nullptr;
  }
  for (auto &kv : spec.rodata)
    if (!SetRodata(obj, kv.first, kv.second, err)) {
      bpf_object__close(obj);
      return nullptr;
    }
  for (auto &kv : spec.max_entries) {
    bpf_map *m = bpf_object__find_map_by_name(obj, kv.first.c_str());
    if (!m) {
      *err = "no map " + kv.first;
      bpf_object__close(obj);
      return nullptr;
    }
    bpf_map__set_max_entries(m, kv.second);
  }
  int ncpu = libbpf_num_possible_cpus();
  bpf_map *m;
  bpf_object__for_each_map(m, obj) {
    // Probing loads (one program each) only need the maps to exist.
    if (tiny && bpf_map__type(m) == BPF_MAP_TYPE_RINGBUF) bpf_map__set_max_entries(m, sysconf(_SC_PAGESIZE));
    else if (tiny && !bpf_map__is_internal(m) && bpf_map__type(m) != BPF_MAP_TYPE_PERCPU_ARRAY &&
             bpf_map__type(m) != BPF_MAP_TYPE_ARRAY) bpf_map__set_max_entries(m, 64);
    (void)ncpu;
  }
  std::vector<std::string> sized;
  for (auto &kv : spec.max_entries) sized.push_back(kv.first);
  SizeScratchMaps(obj, sized);
  bpf_program *p;
  bpf_object__for_each_program(p, obj) {
    if (disabled.count(bpf_program__name(p))) bpf_program__set_autoload(p, false);
  }
  int e = bpf_object__load(obj);
  if (e) {
    *err = "load: " + ErrStr(e);
    bpf_object__close(obj);
    return nullptr;
  }
  return obj;
}

std::vector<std::string> ProgramNames(const std::string &path) {
  std::vector<std::string> names;
  bpf_object *obj = bpf_object__open_file(path.c_str(), nullptr);
  if (!obj) return names;
  bpf_program *p;
  bpf_object__for_each_program(p, obj) names.push_back(bpf_program__name(p));
  bpf_object__close(obj);
  return names;
}

Napi::Buffer<uint8_t> Copy(Napi::Env env, const void *p, size_t n) {
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t *>(p), n);
}

}  // namespace

Napi::Function BpfObject::Init(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceMethod<&BpfObject::Load>("load"),
                         InstanceMethod<&BpfObject::Attach>("attach"),
                         InstanceMethod<&BpfObject::MapInfo>("mapInfo"),
                         InstanceMethod<&BpfObject::MapEntries>("mapEntries"),
                         InstanceMethod<&BpfObject::MapLookup>("mapLookup"),
                         InstanceMethod<&BpfObject::MapUpdate>("mapUpdate"),
                         InstanceMethod<&BpfObject::MapDelete>("mapDelete"),
                         InstanceMethod<&BpfObject::MapCount>("mapCount"),
                         InstanceMethod<&BpfObject::Maps>("maps"),
                         InstanceMethod<&BpfObject::RingOpen>("ringOpen"),
                         InstanceMethod<&BpfObject::RingPoll>("ringPoll"),
                         InstanceMethod<&BpfObject::RingWatch>("ringWatch"),
                         InstanceMethod<&BpfObject::Close>("close"),
                     });
}

BpfObject::BpfObject(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObject>(info) {}

BpfObject::~BpfObject() { Teardown(); }

// load(path, { rodata: {name: number}, maxEntries: {map: n} }) → { programs, failed: [{name, error}] }
// Programs the kernel rejects are found one at a time and left out; the rest load.
Napi::Value BpfObject::Load(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (obj_) throw Napi::Error::New(env, "already loaded");
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  LoadSpec spec;
  spec.path = info[0].As<Napi::String>().Utf8Value();
  if (info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    spec.rodata = NumberEntries(o.Get("rodata"));
    for (auto &kv : NumberEntries(o.Get("maxEntries"))) spec.max_entries.emplace_back(kv.first, static_cast<uint32_t>(kv.second));
  }
  EnsureTracefs();
  Napi::Array failed = Napi::Array::New(env);
  std::string err;
  std::set<std::string> disabled;
  bpf_object *obj = OpenAndLoad(spec, disabled, false, &err);
  if (!obj) {
    std::string first = err;
    std::vector<std::string> names = ProgramNames(spec.path);
    for (const std::string &n : names) {
      std::set<std::string> others;
      for (const std::string &m : names)
        if (m != n) others.insert(m);
      std::string perr;
      bpf_object *one = OpenAndLoad(spec, others, true, &perr);
      if (one) {
        bpf_object__close(one);
      } else {
        disabled.insert(n);
        failed.Set(failed.Length(), Failure(env, n, perr));
      }
    }
    if (disabled.size() < names.size()) obj = OpenAndLoad(spec, disabled, false, &err);
    if (!obj) throw Napi::Error::New(env, "BPF object " + spec.path + " did not load: " + first);
  }
  obj_ = obj;
  Napi::Array programs = Napi::Array::New(env);
  bpf_program *p;
  bpf_object__for_each_program(p, obj_) {
    if (bpf_program__autoload(p)) programs.Set(programs.Length(), bpf_program__name(p));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("programs", programs);
  out.Set("failed", failed);
  out.Set("ncpu", libbpf_num_possible_cpus());
  return out;
}

// attach(program, ifname?) → kernel program id. Tracepoints etc. by their SEC(); XDP programs
// on `ifname` through a bpf link (detached when the link fd closes, even on SIGKILL), trying
// native mode first and generic (skb) mode where the driver has none.
Napi::Value BpfObject::Attach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!obj_) throw Napi::Error::New(env, "not loaded");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bpf_program *p = bpf_object__find_program_by_name(obj_, name.c_str());
  if (!p) throw Napi::Error::New(env, "no program " + name);
  bpf_link *link = nullptr;
  if (bpf_program__type(p) == BPF_PROG_TYPE_XDP) {
    if (!info[1].IsString()) throw Napi::TypeError::New(env, "XDP program needs an interface name");
    std::string ifname = info[1].As<Napi::String>().Utf8Value();
    unsigned ifindex = if_nametoindex(ifname.c_str());
    if (!ifindex) throw Napi::Error::New(env, "no interface " + ifname);
    // A BPF_LINK_CREATE link (not the netlink attach): it dies with its fd. Default mode first
    // (native where the driver has it); generic (skb) mode explicitly when that is refused.
    LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = 0);
    int fd = bpf_link_create(bpf_program__fd(p), ifindex, BPF_XDP, &lopts);
    if (fd < 0) {
      LIBBPF_OPTS(bpf_link_create_opts, gopts, .flags = XDP_FLAGS_SKB_MODE);
      fd = bpf_link_create(bpf_program__fd(p), ifindex, BPF_XDP, &gopts);
    }
    if (fd < 0) throw Napi::Error::New(env, "attach " + name + " on " + ifname + ": " + ErrStr(errno));
    link_fds_.push_back(fd);
  } else {
    link = bpf_program__attach(p);
  }
  if (!link) {
    if (bpf_program__type(p) != BPF_PROG_TYPE_XDP) throw Napi::Error::New(env, "attach " + name + ": " + ErrStr(errno));
  } else {
    links_.push_back(link);
  }
  bpf_prog_info pinfo{};
  __u32 plen = sizeof(pinfo);
  double id = 0;
  if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &pinfo, &plen) == 0) id = pinfo.id;
  return Napi::Number::New(env, id);
}

int BpfObject::MapFd(Napi::Env env, const Napi::Value &name, unsigned *key_size, unsigned *value_size, bool *per_cpu) {
  if (!obj_) throw Napi::Error::New(env, "not loaded");
  std::string n = name.As<Napi::String>().Utf8Value();
  bpf_map *m = bpf_object__find_map_by_name(obj_, n.c_str());
  if (!m) throw Napi::Error::New(env, "no map " + n);
  *key_size = bpf_map__key_size(m);
  *per_cpu = IsPerCpu(bpf_map__type(m));
  unsigned vs = bpf_map__value_size(m);
  // Per-CPU values come back as one 8-byte-aligned slot per possible CPU.
  *value_size = *per_cpu ? ((vs + 7) / 8 * 8) * libbpf_num_possible_cpus() : vs;
  return bpf_map__fd(m);
}

Napi::Value BpfObject::MapInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!obj_) throw Napi::Error::New(env, "not loaded");
  std::string n = info[0].As<Napi::String>().Utf8Value();
  bpf_map *m = bpf_object__find_map_by_name(obj_, n.c_str());
  if (!m) throw Napi::Error::New(env, "no map " + n);
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", static_cast<double>(bpf_map__type(m)));
  o.Set("keySize", bpf_map__key_size(m));
  o.Set("valueSize", bpf_map__value_size(m));
  o.Set("maxEntries", bpf_map__max_entries(m));
  o.Set("perCpu", IsPerCpu(bpf_map__type(m)));
  return o;
}

// mapEntries(name, max?) → [key0, value0, key1, value1, ...] as Buffers (per-CPU values are
// ncpu slots of roundup(value_size, 8) bytes). Keys are walked with get_next_key: a hash that
// changes meanwhile may skip or repeat a key, which callers aggregating counters tolerate.
Napi::Value BpfObject::MapEntries(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  unsigned ks, vs;
  bool pc;
  int fd = MapFd(env, info[0], &ks, &vs, &pc);
  double max = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 1e12;
  std::vector<uint8_t> key(ks), next(ks), val(vs);
  Napi::Array out = Napi::Array::New(env);
  void *prev = nullptr;
  uint32_t n = 0;
  while (n < max && bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    key = next;
    prev = key.data();
    if (bpf_map_lookup_elem(fd, key.data(), val.data()) != 0) continue;
    out.Set(out.Length(), Copy(env, key.data(), ks));
    out.Set(out.Length(), Copy(env, val.data(), vs));
    n++;
  }
  return out;
}

Napi::Value BpfObject::MapCount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  unsigned ks, vs;
  bool pc;
  int fd = MapFd(env, info[0], &ks, &vs, &pc);
  std::vector<uint8_t> key(ks), next(ks);
  void *prev = nullptr;
  double n = 0;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    key = next;
    prev = key.data();
    n++;
  }
  return Napi::Number::New(env, n);
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo &info) { return DescribeMaps(info.Env(), obj_); }

Napi::Value BpfObject::MapLookup(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  unsigned ks, vs;
  bool pc;
  int fd = MapFd(env, info[0], &ks, &vs, &pc);
  Napi::Buffer<uint8_t> k = info[1].As<Napi::Buffer<uint8_t>>();
  if (k.Length() != ks) throw Napi::RangeError::New(env, "key size");
  std::vector<uint8_t> val(vs);
  if (bpf_map_lookup_elem(fd, k.Data(), val.data()) != 0) return env.Null();
  return Copy(env, val.data(), vs);
}

Napi::Value BpfObject::MapUpdate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  unsigned ks, vs;
  bool pc;
  int fd = MapFd(env, info[0], &ks, &vs, &pc);
  Napi::Buffer<uint8_t> k = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> v = info[2].As<Napi::Buffer<uint8_t>>();
  if (k.Length() != ks || v.Length() != vs) throw Napi::RangeError::New(env, "key/value size");
  if (bpf_map_update_elem(fd, k.Data(), v.Data(), BPF_ANY) != 0) throw Napi::Error::New(env, "update: " + ErrStr(errno));
  return env.Undefined();
}

Napi::Value BpfObject::MapDelete(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  unsigned ks, vs;
  bool pc;
  int fd = MapFd(env, info[0], &ks, &vs, &pc);
  Napi::Buffer<uint8_t> k = info[1].As<Napi::Buffer<uint8_t>>();
  if (k.Length() != ks) throw Napi::RangeError::New(env, "key size");
  return Napi::Boolean::New(env, bpf_map_delete_elem(fd, k.Data()) == 0);
}

// ringOpen(map): later ringPoll(max) copies out up to `max` committed records without blocking.
// These rings carry rare events (connection ends, security hits, slow I/O); the socket tracer's
// zero-copy reader is for payload volume.
Napi::Value BpfObject::RingOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (ring_) throw Napi::Error::New(env, "ring already open");
  unsigned ks, vs;
  bool pc;
  int fd = MapFd(env, info[0], &ks, &vs, &pc);
  bpf_map_info mi{};
  uint32_t mi_len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &mi_len) != 0) throw Napi::Error::New(env, "ring map info: " + ErrStr(errno));
  try {
    ring_ = std::make_unique<RingMap>(fd, mi.max_entries);
  } catch (const std::runtime_error &e) {
    throw Napi::Error::New(env, e.what());
  }
  return env.Undefined();
}

Napi::Value BpfObject::RingPoll(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!ring_) throw Napi::Error::New(env, "no ring open");
  pending_limit_ = info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 4096;
  pending_.clear();
  // The rest stays in the ring for next time.
  const uint8_t *data = ring_->data();
  uint64_t cons = ring_->Walk(ring_->Consumer(), ring_->Producer(), pending_limit_, [&](uint64_t off, uint32_t len) {
    pending_.emplace_back(reinterpret_cast<const char *>(data + off), len);
    return true;
  });
  ring_->Release(cons);
  Napi::Array out = Napi::Array::New(env, pending_.size());
  for (size_t i = 0; i < pending_.size(); i++) out.Set(i, Copy(env, pending_[i].data(), pending_[i].size()));
  pending_.clear();
  return out;
}

struct BpfObject::Watch {
  uv_poll_t poll;
  int fd = -1;
  BpfObject *owner = nullptr;
};

// ringWatch(cb): cb(ok) runs once, on the event loop, when the ring holds records (at once if it
// does already); the caller drains and calls ringWatch again. A ring polled on a timer woke this
// process every poll_ms for nothing while idle; the fd's poll (level-triggered: it reports
// records committed before it was armed) wakes it when a producer's commit finds the consumer
// caught up, i.e. on the first record after a drain. cb(false): the fd cannot be watched; the
// caller polls on a timer instead. The handle does not keep the process alive (as the unref'd
// timers it replaces did not).
Napi::Value BpfObject::RingWatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!ring_) throw Napi::Error::New(env, "no ring open");
  if (info[0].IsFunction()) watch_cb_ = Napi::Persistent(info[0].As<Napi::Function>());
  if (watch_cb_.IsEmpty()) throw Napi::TypeError::New(env, "ringWatch needs a callback");
  if (watch_ == nullptr) {
    uv_loop_t *loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw Napi::Error::New(env, "no event loop");
    auto *w = new Watch();
    w->fd = fcntl(ring_->fd(), F_DUPFD_CLOEXEC, 0);
    if (w->fd < 0) {
      delete w;
      throw Napi::Error::New(env, "dup ring fd: " + ErrStr(errno));
    }
    int err = uv_poll_init(loop, &w->poll, w->fd);
    if (err != 0) {
      close(w->fd);
      delete w;
      throw Napi::Error::New(env, std::string("watch ring fd: ") + uv_strerror(err));
    }
    w->poll.data = w;
    w->owner = this;
    uv_unref(reinterpret_cast<uv_handle_t *>(&w->poll));
    watch_ = w;
  }
  int err = uv_poll_start(&watch_->poll, UV_READABLE, OnRingReady);
  if (err != 0) throw Napi::Error::New(env, std::string("watch ring fd: ") + uv_strerror(err));
  return env.Undefined();
}

void BpfObject::OnRingReady(uv_poll_t *h, int status, int) {
  auto *w = static_cast<Watch *>(h->data);
  uv_poll_stop(h);
  BpfObject *self = w->owner;
  if (self == nullptr || self->watch_cb_.IsEmpty()) return;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  try {
    self->watch_cb_.MakeCallback(self->Value(), {Napi::Boolean::New(env, status >= 0)});
  } catch (const Napi::Error &e) {
    napi_fatal_exception(env, e.Value());
  }
}

void BpfObject::StopWatch() {
  watch_cb_.Reset();
  Watch *w = watch_;
  if (w == nullptr) return;
  watch_ = nullptr;
  w->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), [](uv_handle_t *h) {
    auto *w = static_cast<Watch *>(h->data);
    close(w->fd);
    delete w;
  });
}

void BpfObject::Teardown() {
  StopWatch();
  DestroyLinks(std::move(links_), std::move(link_fds_));
  links_.clear();
  link_fds_.clear();
  ring_.reset();
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo &info) {
  Teardown();
  return info.Env().Undefined();
}

}  // namespace telegen
