#include "bpf_common.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace telegen {

std::string ErrStr(int err) { return strerror(err < 0 ? -err : err); }

void DestroyLinks(std::vector<bpf_link *> links, std::vector<int> fds) {
  size_t n = links.size() + fds.size();
  if (n == 0) return;
  auto one = [&](size_t i) {
    if (i < links.size()) bpf_link__destroy(links[i]);
    else close(fds[i - links.size()]);
  };
  // Threads only pay off when there are waits to overlap; a thread per 4 items, at most 32.
  size_t workers = std::min<size_t>(32, (n + 3) / 4);
  if (workers <= 1) {
    for (size_t i = 0; i < n; i++) one(i);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (size_t w = 0; w < workers; w++) {
    try {
      pool.emplace_back([&, w] { for (size_t i = w; i < n; i += workers) one(i); });
    } catch (...) {
      // No thread (limits): this stride runs here instead.
      for (size_t i = w; i < n; i += workers) one(i);
    }
  }
  for (auto &t : pool) t.join();
}

void SizeScratchMaps(bpf_object *obj, const std::vector<std::string> &keep) {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return;
  const std::string suffix = "_scratch";
  bpf_map *m;
  bpf_object__for_each_map(m, obj) {
    const std::string name = bpf_map__name(m);
    if (bpf_map__type(m) != BPF_MAP_TYPE_ARRAY || name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    if (std::find(keep.begin(), keep.end(), name) != keep.end()) continue;
    if (bpf_map__max_entries(m) > static_cast<uint32_t>(ncpu)) bpf_map__set_max_entries(m, ncpu);
  }
}

bool SetRodata(bpf_object *obj, const std::string &name, double value, std::string *err) {
  bpf_map *rodata = nullptr;
  bpf_map *m;
  bpf_object__for_each_map(m, obj) {
    const char *n = bpf_map__name(m);
    size_t l = strlen(n);
    if (bpf_map__is_internal(m) && l >= 7 && strcmp(n + l - 7, ".rodata") == 0) rodata = m;
  }
  btf *b = bpf_object__btf(obj);
  int sec_id = b ? btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC) : -1;
  if (!rodata || sec_id < 0) {
    *err = "object has no .rodata for " + name;
    return false;
  }
  const btf_type *sec = btf__type_by_id(b, sec_id);
  const btf_var_secinfo *vs = btf_var_secinfos(sec);
  size_t size = 0;
  // libbpf 1.1 hands out a const view: edit a copy and set it back.
  const char *cur = static_cast<const char *>(bpf_map__initial_value(rodata, &size));
  std::vector<char> data(cur, cur + size);
  for (unsigned i = 0; i < btf_vlen(sec); i++, vs++) {
    const btf_type *var = btf__type_by_id(b, vs->type);
    if (name != btf__name_by_offset(b, var->name_off)) continue;
    if (vs->offset + vs->size > size || vs->size > 8) {
      *err = name + ": unsupported size";
      return false;
    }
    // Negative values keep their two's-complement bits (e.g. -1 = "any").
    uint64_t v = value < 0 ? static_cast<uint64_t>(static_cast<int64_t>(value)) : static_cast<uint64_t>(value);
    memcpy(data.data() + vs->offset, &v, vs->size);  // little-endian hosts only (x86, arm64)
    return bpf_map__set_initial_value(rodata, data.data(), size) == 0;
  }
  *err = "no read-only variable " + name;
  return false;
}

void EnsureTracefs() {
  if (access("/sys/kernel/tracing/events", F_OK) == 0 || access("/sys/kernel/debug/tracing/events", F_OK) == 0) return;
  mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr);
}

std::vector<std::pair<std::string, double>> NumberEntries(const Napi::Value &v) {
  std::vector<std::pair<std::string, double>> out;
  if (!v.IsObject()) return out;
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    out.emplace_back(k, o.Get(k).ToNumber().DoubleValue());
  }
  return out;
}

Napi::Object Failure(Napi::Env env, const std::string &name, const std::string &error) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("name", name);
  f.Set("error", error);
  return f;
}

}  // namespace telegen
