// The CPU profiler's loader and drain. See bpf/profile.bpf.c for what the kernel side keeps.
#include "profile_tracer.h"

#include "bpf_common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <unordered_map>

#include "profile.h"
#include "profile.skel.h"

namespace telegen {

namespace {

int PerfEventOpen(struct perf_event_attr *attr, int cpu) {
  return static_cast<int>(syscall(__NR_perf_event_open, attr, -1 /* every task */, cpu, -1, PERF_FLAG_FD_CLOEXEC));
}

// CPUs that are online now ("0-3,6"); an offline CPU cannot take a perf event.
std::vector<int> OnlineCpus() {
  std::vector<int> out;
  FILE *f = fopen("/sys/devices/system/cpu/online", "r");
  if (f) {
    char buf[1024] = {0};
    if (fgets(buf, sizeof(buf), f)) {
      char *p = buf;
      while (*p && *p != '\n') {
        char *end;
        long a = strtol(p, &end, 10);
        long b = a;
        if (*end == '-') b = strtol(end + 1, &end, 10);
        for (long c = a; c <= b; c++) out.push_back(static_cast<int>(c));
        p = (*end == ',') ? end + 1 : end;
        if (end == p && *p != ',') break;
      }
    }
    fclose(f);
  }
  if (out.empty()) {
    int n = libbpf_num_possible_cpus();
    for (int c = 0; c < n; c++) out.push_back(c);
  }
  return out;
}

}  // namespace

Napi::Function ProfileTracer::Init(Napi::Env env) {
  return DefineClass(env, "ProfileTracer",
                     {
                         InstanceMethod<&ProfileTracer::Open>("open"),
                         InstanceMethod<&ProfileTracer::Drain>("drain"),
                         InstanceMethod<&ProfileTracer::DrainAsync>("drainAsync"),
                         InstanceMethod<&ProfileTracer::SetEnabled>("setEnabled"),
                         InstanceMethod<&ProfileTracer::SetTarget>("setTarget"),
                         InstanceMethod<&ProfileTracer::SetRecording>("setRecording"),
                         InstanceMethod<&ProfileTracer::CollectRecords>("collectRecords"),
                         InstanceMethod<&ProfileTracer::Stats>("stats"),
                         InstanceMethod<&ProfileTracer::Close>("close"),
                     });
}

ProfileTracer::ProfileTracer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<ProfileTracer>(info) {}

ProfileTracer::~ProfileTracer() { Teardown(); }

void ProfileTracer::Teardown() {
  // libbpf's perf link owns the perf event fd: destroying it disables and closes the event.
  DestroyLinks(std::move(links_));
  links_.clear();
  rb_.reset();
  carry_.clear();
  if (skel_) profile_bpf__destroy(skel_);
  skel_ = nullptr;
}

// open({ frequency, enabled = true, record = false, recordBytes = 256 KiB })
//   -> { cpus, attached: [cpu], failed: [{ cpu, error }], progId }
Napi::Value ProfileTracer::Open(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (skel_) throw Napi::Error::New(env, "already open");
  Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  uint64_t freq = o.Has("frequency") ? o.Get("frequency").As<Napi::Number>().Int64Value() : 99;
  if (freq < 1 || freq > 10000) throw Napi::RangeError::New(env, "frequency must be 1..10000 Hz");

  skel_ = profile_bpf__open();
  if (!skel_) throw Napi::Error::New(env, std::string("profiler did not open: ") + strerror(errno));
  if (o.Has("recordBytes")) {
    // A power of two and a multiple of the page size (the caller rounds).
    uint32_t bytes = o.Get("recordBytes").As<Napi::Number>().Uint32Value();
    if (bytes) bpf_map__set_max_entries(skel_->maps.tg_prof_samples, bytes);
  }
  if (profile_bpf__load(skel_) != 0) {
    int err = errno;
    Teardown();
    throw Napi::Error::New(env, std::string("profiler did not load: ") + strerror(err));
  }
  try {
    rb_ = std::make_unique<RingMap>(bpf_map__fd(skel_->maps.tg_prof_samples), bpf_map__max_entries(skel_->maps.tg_prof_samples));
  } catch (const std::runtime_error &e) {
    Teardown();
    throw Napi::Error::New(env, std::string("profiler sample ring: ") + e.what());
  }
  skel_->bss->record = o.Has("record") && o.Get("record").ToBoolean().Value() ? 1u : 0u;
  // Attached switched off unless asked otherwise: the caller sets its target first, so no
  // sample of a process outside it is ever counted.
  bool start_on = o.Has("enabled") ? o.Get("enabled").ToBoolean().Value() : true;
  skel_->data->enabled = start_on ? 1u : 0u;

  Napi::Array attached = Napi::Array::New(env);
  Napi::Array failed = Napi::Array::New(env);
  std::string first_err;
  for (int cpu : OnlineCpus()) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    // The software clock works in VMs and containers without a PMU (no hardware counters here).
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.freq = 1;
    attr.sample_freq = freq;
    int fd = PerfEventOpen(&attr, cpu);
    std::string err;
    if (fd < 0) {
      err = std::string("perf_event_open: ") + strerror(errno);
    } else {
      bpf_link *l = bpf_program__attach_perf_event(skel_->progs.tg_profile, fd);
      if (!l) {
        err = std::string("attach: ") + strerror(errno);
        close(fd);
      } else {
        links_.push_back(l);
        attached.Set(attached.Length(), cpu);
        continue;
      }
    }
    if (first_err.empty()) first_err = err;
    Napi::Object f = Napi::Object::New(env);
    f.Set("cpu", cpu);
    f.Set("error", err);
    failed.Set(failed.Length(), f);
  }
  if (links_.empty()) {
    Teardown();
    throw Napi::Error::New(env, "profiler: no CPU could take a cpu-clock perf event (" + first_err + ")");
  }
  Napi::Object rep = Napi::Object::New(env);
  rep.Set("cpus", attached.Length() + failed.Length());
  rep.Set("attached", attached);
  rep.Set("failed", failed);
  struct bpf_prog_info pinfo;
  memset(&pinfo, 0, sizeof(pinfo));
  uint32_t len = sizeof(pinfo);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(skel_->progs.tg_profile), &pinfo, &len) == 0) rep.Set("progId", pinfo.id);
  rep.Set("stackEntries", bpf_map__max_entries(skel_->maps.tg_prof_stacks));
  rep.Set("maxDepth", TG_PROF_MAX_DEPTH);
  return rep;
}

Napi::Value ProfileTracer::SetEnabled(const Napi::CallbackInfo &info) {
  if (!skel_) throw Napi::Error::New(info.Env(), "not open");
  bool on = info[0].ToBoolean().Value();
  __atomic_store_n(&skel_->data->enabled, on ? 1u : 0u, __ATOMIC_SEQ_CST);
  // A sample that read `enabled` just before the store is still counting; like the flip in
  // Drain(), a short pause lets it finish so a drain after this call sees its count.
  if (!on) usleep(1000);
  return info.Env().Undefined();
}

// setRecording(on): write each sample's time to the ring (trace links) or not.
Napi::Value ProfileTracer::SetRecording(const Napi::CallbackInfo &info) {
  if (!skel_) throw Napi::Error::New(info.Env(), "not open");
  __atomic_store_n(&skel_->bss->record, info[0].ToBoolean().Value() ? 1u : 0u, __ATOMIC_RELAXED);
  return info.Env().Undefined();
}

// collectRecords(): empties the sample-time ring into the host's carry when a drain is skipped
// (the worker behind), so the ring holds one interval, not however many are deferred. Never
// while a drain runs on the thread pool (it consumes the ring itself).
Napi::Value ProfileTracer::CollectRecords(const Napi::CallbackInfo &info) {
  if (skel_ && !draining_ && !closing_) TakeRing();
  return info.Env().Undefined();
}

// setTarget({ pids: number[], cgroups: bigint[] } | null): null profiles every process.
Napi::Value ProfileTracer::SetTarget(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!skel_) throw Napi::Error::New(env, "not open");
  int pfd = bpf_map__fd(skel_->maps.tg_prof_pids);
  int cfd = bpf_map__fd(skel_->maps.tg_prof_cgroups);
  // Off first so no sample sees a half-written target, then clear and refill.
  __atomic_store_n(&skel_->bss->filter, 0u, __ATOMIC_RELAXED);
  uint32_t pk;
  while (bpf_map_get_next_key(pfd, nullptr, &pk) == 0) bpf_map_delete_elem(pfd, &pk);
  uint64_t ck;
  while (bpf_map_get_next_key(cfd, nullptr, &ck) == 0) bpf_map_delete_elem(cfd, &ck);
  if (info.Length() == 0 || !info[0].IsObject()) return env.Undefined();
  Napi::Object o = info[0].As<Napi::Object>();
  uint8_t one = 1;
  int n = 0;
  if (o.Has("pids")) {
    Napi::Array a = o.Get("pids").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      uint32_t pid = a.Get(i).As<Napi::Number>().Uint32Value();
      if (bpf_map_update_elem(pfd, &pid, &one, BPF_ANY) == 0) n++;
    }
  }
  if (o.Has("cgroups")) {
    Napi::Array a = o.Get("cgroups").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      bool lossless;
      uint64_t id = a.Get(i).As<Napi::BigInt>().Uint64Value(&lossless);
      if (bpf_map_update_elem(cfd, &id, &one, BPF_ANY) == 0) n++;
    }
  }
  // A target that resolved to nothing still filters: it profiles nothing, as asked.
  __atomic_store_n(&skel_->bss->filter, 1u, __ATOMIC_RELAXED);
  return Napi::Number::New(env, n);
}

// What one drain collects off the JS thread.
struct DrainResult {
  std::vector<tg_prof_key> keys;
  std::vector<tg_prof_value> values;
  std::vector<int32_t> ids;
  std::vector<uint64_t> frames;
  std::vector<uint32_t> offsets;
  // Per sample-time record of this drain: the index of its key in `keys`, and its time.
  std::vector<uint32_t> rec_keys;
  std::vector<uint64_t> rec_times;
};

struct KeyHash {
  size_t operator()(const tg_prof_key &k) const {
    uint64_t a = (static_cast<uint64_t>(k.pid) << 32) | k.tid;
    uint64_t b = (static_cast<uint64_t>(static_cast<uint32_t>(k.ustack)) << 32) | static_cast<uint32_t>(k.kstack);
    return std::hash<uint64_t>()(a * 0x9E3779B97F4A7C15ull ^ b);
  }
};
struct KeyEq {
  bool operator()(const tg_prof_key &x, const tg_prof_key &y) const {
    return x.pid == y.pid && x.tid == y.tid && x.ustack == y.ustack && x.kstack == y.kstack;
  }
};

// Records held between drains at most (32 bytes each): a drain deferred for long (the worker
// behind) keeps the ring from overflowing without holding unbounded memory.
static constexpr size_t kMaxCarry = 1u << 18;

void ProfileTracer::TakeRing() {
  if (!rb_) return;
  const uint8_t *data = rb_->data();
  uint64_t cons = rb_->Walk(rb_->Consumer(), rb_->Producer(), UINT32_MAX, [&](uint64_t off, uint32_t len) {
    if (len < sizeof(tg_prof_sample)) return true;
    tg_prof_sample s;
    memcpy(&s, data + off, sizeof(s));
    if (carry_.size() < kMaxCarry) carry_.push_back(s);
    else carry_dropped_++;
    return true;
  });
  rb_->Release(cons);
}

// Matches the ring's sample-time records with the keys drained from map `was`. A record of the
// other map was written after the flip: it belongs to the next drain and stays in the carry.
static void MatchRecords(ProfileTracer *owner, uint32_t was, DrainResult &r) {
  owner->TakeRing();
  std::vector<tg_prof_sample> mine;
  std::vector<tg_prof_sample> &carry = owner->carry();
  size_t w = 0;
  for (size_t i = 0; i < carry.size(); i++) {
    if (carry[i].map == was) mine.push_back(carry[i]);
    else carry[w++] = carry[i];
  }
  carry.resize(w);
  if (mine.empty()) return;
  std::unordered_map<tg_prof_key, uint32_t, KeyHash, KeyEq> index;
  index.reserve(r.keys.size());
  for (uint32_t i = 0; i < r.keys.size(); i++) index.emplace(r.keys[i], i);
  for (const tg_prof_sample &s : mine) {
    tg_prof_key k = { s.pid, s.tid, s.ustack, s.kstack };
    auto it = index.find(k);
    if (it == index.end()) continue;  // its count was dropped (count map full)
    r.rec_keys.push_back(it->second);
    r.rec_times.push_back(s.ts);
  }
}

// Flips the count map the program writes, then reads and clears the one it wrote: one
// get_next_key + lookup + delete per key and per stack. Thousands of syscalls on a busy host,
// so it runs on the libuv thread pool, never on the agent's JS thread.
static void CollectDrain(ProfileTracer *owner, profile_bpf *skel, DrainResult &r) {
  uint32_t was = __atomic_load_n(&skel->bss->active, __ATOMIC_RELAXED);
  __atomic_store_n(&skel->bss->active, was ^ 1u, __ATOMIC_SEQ_CST);
  // A sample that read `active` just before the flip may still be writing the old map; one
  // sample takes microseconds, so a short pause lets those land in this drain.
  usleep(1000);
  int fd = bpf_map__fd(was ? skel->maps.tg_prof_counts1 : skel->maps.tg_prof_counts0);

  std::vector<tg_prof_key> all;
  tg_prof_key k, next;
  tg_prof_key *prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    all.push_back(next);
    k = next;
    prev = &k;
  }
  for (const tg_prof_key &key : all) {
    tg_prof_value v;
    if (bpf_map_lookup_elem(fd, &key, &v) != 0) continue;
    bpf_map_delete_elem(fd, &key);
    r.keys.push_back(key);
    r.values.push_back(v);
    if (key.ustack >= 0) r.ids.push_back(key.ustack);
    if (key.kstack >= 0) r.ids.push_back(key.kstack);
  }
  std::sort(r.ids.begin(), r.ids.end());
  r.ids.erase(std::unique(r.ids.begin(), r.ids.end()), r.ids.end());

  int sfd = bpf_map__fd(skel->maps.tg_prof_stacks);
  r.offsets.push_back(0);
  uint64_t buf[TG_PROF_MAX_DEPTH];
  for (int32_t id : r.ids) {
    uint32_t key = static_cast<uint32_t>(id);
    if (bpf_map_lookup_elem(sfd, &key, buf) == 0) {
      for (int d = 0; d < TG_PROF_MAX_DEPTH && buf[d]; d++) r.frames.push_back(buf[d]);
      // Freed so the 64K map holds only live stacks; a count of the next interval naming
      // this id before it is stored again falls back to the host's copy of this stack.
      bpf_map_delete_elem(sfd, &key);
    }
    r.offsets.push_back(static_cast<uint32_t>(r.frames.size()));
  }
  MatchRecords(owner, was, r);
}

// { n, keys: Int32Array(4n) [pid, tid, ustack, kstack], counts: Float64Array(n),
//   comms: string[n], stackIds: Int32Array(m), stackOffsets: Uint32Array(m+1),
//   frames: BigUint64Array, recKeys: Uint32Array(s) (index of each sample-time record's key),
//   recTimes: BigUint64Array(s) (its bpf_ktime_get_ns) } ; stacks missing from the map have no frames.
static Napi::Object DrainToJs(Napi::Env env, const DrainResult &r) {
  size_t n = r.keys.size();
  Napi::Int32Array kout = Napi::Int32Array::New(env, n * 4);
  Napi::Float64Array cout = Napi::Float64Array::New(env, n);
  Napi::Array comms = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    kout[i * 4] = static_cast<int32_t>(r.keys[i].pid);
    kout[i * 4 + 1] = static_cast<int32_t>(r.keys[i].tid);
    kout[i * 4 + 2] = r.keys[i].ustack;
    kout[i * 4 + 3] = r.keys[i].kstack;
    cout[i] = static_cast<double>(r.values[i].count);
    comms.Set(i, Napi::String::New(env, r.values[i].comm, strnlen(r.values[i].comm, sizeof(r.values[i].comm))));
  }
  Napi::Int32Array idOut = Napi::Int32Array::New(env, r.ids.size());
  for (size_t i = 0; i < r.ids.size(); i++) idOut[i] = r.ids[i];
  Napi::Uint32Array offOut = Napi::Uint32Array::New(env, r.offsets.size());
  for (size_t i = 0; i < r.offsets.size(); i++) offOut[i] = r.offsets[i];
  napi_value ab;
  void *data = nullptr;
  napi_create_arraybuffer(env, r.frames.size() * 8, &data, &ab);
  if (!r.frames.empty()) memcpy(data, r.frames.data(), r.frames.size() * 8);
  napi_value big;
  napi_create_typedarray(env, napi_biguint64_array, r.frames.size(), ab, 0, &big);
  Napi::Uint32Array recKeys = Napi::Uint32Array::New(env, r.rec_keys.size());
  for (size_t i = 0; i < r.rec_keys.size(); i++) recKeys[i] = r.rec_keys[i];
  napi_value tab;
  void *tdata = nullptr;
  napi_create_arraybuffer(env, r.rec_times.size() * 8, &tdata, &tab);
  if (!r.rec_times.empty()) memcpy(tdata, r.rec_times.data(), r.rec_times.size() * 8);
  napi_value times;
  napi_create_typedarray(env, napi_biguint64_array, r.rec_times.size(), tab, 0, &times);

  Napi::Object out = Napi::Object::New(env);
  out.Set("n", static_cast<double>(n));
  out.Set("keys", kout);
  out.Set("counts", cout);
  out.Set("comms", comms);
  out.Set("stackIds", idOut);
  out.Set("stackOffsets", offOut);
  out.Set("frames", Napi::Value(env, big));
  out.Set("recKeys", recKeys);
  out.Set("recTimes", Napi::Value(env, times));
  return out;
}

class DrainWorker : public Napi::AsyncWorker {
 public:
  DrainWorker(Napi::Env env, ProfileTracer *owner, profile_bpf *skel)
      : Napi::AsyncWorker(env), owner_(owner), skel_(skel), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { CollectDrain(owner_, skel_, result_); }
  void OnOK() override {
    owner_->DrainDone();
    deferred_.Resolve(DrainToJs(Env(), result_));
  }
  void OnError(const Napi::Error &e) override {
    owner_->DrainDone();
    deferred_.Reject(e.Value());
  }

 private:
  ProfileTracer *owner_;
  profile_bpf *skel_;
  DrainResult result_;
  Napi::Promise::Deferred deferred_;
};

// drainAsync() -> Promise<drain object above>. One drain at a time; close() while one runs
// releases the kernel side when it ends.
Napi::Value ProfileTracer::DrainAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!skel_ || closing_) throw Napi::Error::New(env, "not open");
  if (draining_) throw Napi::Error::New(env, "a drain is already running");
  draining_ = true;
  // The JS object must outlive the thread-pool work that uses skel_.
  Ref();
  auto *w = new DrainWorker(env, this, skel_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

void ProfileTracer::DrainDone() {
  draining_ = false;
  if (closing_) Teardown();
  Unref();
}

// drain(): the same, synchronously (tests and tools without an event loop to spare).
Napi::Value ProfileTracer::Drain(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!skel_ || closing_) throw Napi::Error::New(env, "not open");
  if (draining_) throw Napi::Error::New(env, "a drain is already running");
  DrainResult r;
  CollectDrain(this, skel_, r);
  return DrainToJs(env, r);
}

// stats() -> number[TG_PROF_STAT_MAX], summed over CPUs.
Napi::Value ProfileTracer::Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!skel_) throw Napi::Error::New(env, "not open");
  int fd = bpf_map__fd(skel_->maps.tg_prof_stats);
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> vals(ncpu > 0 ? ncpu : 1);
  Napi::Array out = Napi::Array::New(env, TG_PROF_STAT_MAX);
  for (uint32_t i = 0; i < TG_PROF_STAT_MAX; i++) {
    uint64_t sum = 0;
    if (bpf_map_lookup_elem(fd, &i, vals.data()) == 0)
      for (uint64_t v : vals) sum += v;
    if (i == TG_PROF_STAT_RECORDS_LOST) sum += carry_dropped_;
    out.Set(i, static_cast<double>(sum));
  }
  return out;
}

Napi::Value ProfileTracer::Close(const Napi::CallbackInfo &info) {
  if (draining_) closing_ = true;  // DrainDone() tears down
  else Teardown();
  return info.Env().Undefined();
}

}  // namespace telegen
