#include "map_fill.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "bpf_common.h"
#include "mapfill.h"
#include "mapfill.skel.h"

namespace telegen {

namespace {

// The iterator program is loaded once per process and kept: a read costs one syscall pair.
std::mutex g_mu;
mapfill_bpf *g_skel = nullptr;
bpf_link *g_link = nullptr;
std::string g_err;

bool EnsureIterator(std::string *err) {
  if (g_link) return true;
  if (!g_err.empty()) {
    *err = g_err;
    return false;
  }
  g_skel = mapfill_bpf__open_and_load();
  if (!g_skel) {
    g_err = "map fill iterator did not load (needs the kfunc bpf_map_sum_elem_count, Linux 6.6+): " + ErrStr(errno);
  } else {
    g_link = bpf_program__attach_iter(g_skel->progs.tg_map_fill, nullptr);
    if (!g_link) {
      g_err = "map fill iterator did not attach: " + ErrStr(errno);
      mapfill_bpf__destroy(g_skel);
      g_skel = nullptr;
    }
  }
  *err = g_err;
  return g_link != nullptr;
}

// mapFill() → Float64Array [id0, entries0, id1, entries1, ...] for every map in the system.
// Throws when the iterator cannot run here (the caller then walks keys with mapWalkKeys).
Napi::Value MapFill(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<tg_map_fill> recs;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    std::string err;
    if (!EnsureIterator(&err)) throw Napi::Error::New(env, err);
    int fd = bpf_iter_create(bpf_link__fd(g_link));
    if (fd < 0) throw Napi::Error::New(env, "bpf_iter_create: " + ErrStr(errno));
    // Records never straddle reads we ask for in whole multiples of their size.
    tg_map_fill buf[256];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      recs.insert(recs.end(), buf, buf + n / sizeof(tg_map_fill));
    }
    close(fd);
  }
  Napi::Float64Array out = Napi::Float64Array::New(env, recs.size() * 2);
  for (size_t i = 0; i < recs.size(); i++) {
    out[i * 2] = recs[i].id;
    out[i * 2 + 1] = static_cast<double>(recs[i].entries);
  }
  return out;
}

// mapWalkKeys(id, cursor: Buffer | null, budgetUs) → { count, cursor: Buffer | null }.
// Walks keys from `cursor` until the walk ends (cursor null) or the time budget is spent (the
// caller resumes next tick), so a 1M-entry map never blocks the event loop for long. A cursor
// key deleted meanwhile restarts the kernel's walk: counts can overshoot on a churning map.
Napi::Value MapWalkKeys(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  double budget_us = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 2000;
  int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) throw Napi::Error::New(env, "map " + std::to_string(id) + ": " + ErrStr(errno));
  bpf_map_info mi{};
  __u32 len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) {
    int e = errno;
    close(fd);
    throw Napi::Error::New(env, "map info: " + ErrStr(e));
  }
  std::vector<uint8_t> key(mi.key_size), next(mi.key_size);
  void *prev = nullptr;
  if (info[1].IsBuffer()) {
    Napi::Buffer<uint8_t> c = info[1].As<Napi::Buffer<uint8_t>>();
    if (c.Length() == key.size()) {
      memcpy(key.data(), c.Data(), key.size());
      prev = key.data();
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(static_cast<int64_t>(budget_us));
  double count = 0;
  bool done = false;
  for (;;) {
    if (bpf_map_get_next_key(fd, prev, next.data()) != 0) {
      done = true;
      break;
    }
    key.swap(next);
    prev = key.data();
    count++;
    // The clock is read every 256 keys: a syscall per key already dominates.
    if ((static_cast<uint64_t>(count) & 255) == 0 && std::chrono::steady_clock::now() > deadline) break;
  }
  close(fd);
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", Napi::Number::New(env, count));
  if (done) out.Set("cursor", env.Null());
  else out.Set("cursor", Napi::Buffer<uint8_t>::Copy(env, key.data(), key.size()));
  return out;
}

Napi::Object MapDesc(Napi::Env env, const char *name, const bpf_map_info &mi) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name);
  o.Set("id", mi.id);
  o.Set("type", mi.type);
  o.Set("maxEntries", mi.max_entries);
  return o;
}

// ownMaps(prefix) → [{name, id, type, maxEntries}] of this process's maps whose name starts with
// `prefix` (the kernel keeps 15 characters of a map name).
Napi::Value OwnMaps(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string prefix = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Napi::Array out = Napi::Array::New(env);
  ForEachOwnMap([&](int, const bpf_map_info &mi) {
    if (strncmp(mi.name, prefix.c_str(), prefix.size()) == 0) out.Set(out.Length(), MapDesc(env, mi.name, mi));
    return true;
  });
  return out;
}

}  // namespace

void ForEachOwnMap(const std::function<bool(int fd, const bpf_map_info &info)> &fn) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  int dfd = dirfd(d);
  while (dirent *e = readdir(d)) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || fd == dfd) continue;
    char link[64];
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%ld", fd);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n <= 0) continue;
    link[n] = 0;
    if (strcmp(link, "anon_inode:bpf-map") != 0) continue;
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len)) continue;
    if (!fn(static_cast<int>(fd), info)) break;
  }
  closedir(d);
}

Napi::Array DescribeMaps(Napi::Env env, bpf_object *obj) {
  Napi::Array out = Napi::Array::New(env);
  if (!obj) return out;
  bpf_map *m;
  bpf_object__for_each_map(m, obj) {
    if (bpf_map__is_internal(m) || bpf_map__fd(m) < 0) continue;
    bpf_map_info mi{};
    __u32 len = sizeof(mi);
    if (bpf_obj_get_info_by_fd(bpf_map__fd(m), &mi, &len) != 0) continue;
    out.Set(out.Length(), MapDesc(env, bpf_map__name(m), mi));
  }
  return out;
}

void InitMapFill(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFill", Napi::Function::New(env, MapFill));
  exports.Set("mapWalkKeys", Napi::Function::New(env, MapWalkKeys));
  exports.Set("ownMaps", Napi::Function::New(env, OwnMaps));
}

}  // namespace telegen
