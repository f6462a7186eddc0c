#include "uprobe_tracer.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace telegen {

namespace {

std::string ErrStr(int err) { return strerror(err < 0 ? -err : err); }

// The fd of this process's BPF map called `name`, or -1 (-2: more than one distinct map has
// that name, so sharing it would be a guess). Maps are found through /proc/self/fd because the
// tracer that owns them lives in another addon object and must not change for us.
int FindOwnMap(const std::string &name, bpf_map_info *out) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int found = -1;
  __u32 found_id = 0;
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
    if (name != info.name) continue;
    if (found >= 0 && info.id != found_id) {
      found = -2;
      break;
    }
    found = fd;
    found_id = info.id;
    *out = info;
  }
  closedir(d);
  return found;
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
    if (vs->offset + vs->size > size || vs->size > 8) break;
    uint64_t v = static_cast<uint64_t>(value);
    memcpy(data.data() + vs->offset, &v, vs->size);  // little-endian hosts only
    return bpf_map__set_initial_value(rodata, data.data(), size) == 0;
  }
  *err = "no read-only variable " + name;
  return false;
}

}  // namespace

Napi::Function UprobeTracer::Init(Napi::Env env) {
  return DefineClass(env, "UprobeTracer",
                     {
                         InstanceMethod<&UprobeTracer::Open>("open"),
                         InstanceMethod<&UprobeTracer::AttachUprobe>("attachUprobe"),
                         InstanceMethod<&UprobeTracer::Detach>("detach"),
                         InstanceMethod<&UprobeTracer::Stats>("stats"),
                         InstanceMethod<&UprobeTracer::Close>("close"),
                     });
}

UprobeTracer::UprobeTracer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<UprobeTracer>(info) {}

UprobeTracer::~UprobeTracer() { Teardown(); }

// open(path, { rodata: {name: number}, shareMaps: [name...] }) →
//   { attached: [tracepoint programs], failed: [{name, error}], uprobes: [program names] }
Napi::Value UprobeTracer::Open(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (obj_) throw Napi::Error::New(env, "already open");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  bpf_object *obj = bpf_object__open_file(path.c_str(), nullptr);
  if (!obj) throw Napi::Error::New(env, "open " + path + ": " + ErrStr(errno));
  std::string err;
  auto fail = [&](const std::string &msg) {
    bpf_object__close(obj);
    throw Napi::Error::New(env, msg);
  };
  if (o.Get("rodata").IsObject()) {
    Napi::Object r = o.Get("rodata").As<Napi::Object>();
    Napi::Array keys = r.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      if (!SetRodata(obj, k, r.Get(k).ToNumber().DoubleValue(), &err)) fail(err);
    }
  }
  if (o.Get("shareMaps").IsArray()) {
    Napi::Array names = o.Get("shareMaps").As<Napi::Array>();
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string n = names.Get(i).As<Napi::String>().Utf8Value();
      bpf_map *m = bpf_object__find_map_by_name(obj, n.c_str());
      if (!m) fail("no map " + n + " in " + path);
      bpf_map_info mi{};
      int fd = FindOwnMap(n, &mi);
      if (fd == -2) fail("more than one BPF map named " + n + " in this process");
      if (fd < 0) fail("map " + n + " not found in this process (is the socket tracer running?)");
      int e = bpf_map__reuse_fd(m, fd);
      if (e) fail("reuse map " + n + ": " + ErrStr(e));
    }
  }
  int e = bpf_object__load(obj);
  if (e) fail("load " + path + ": " + ErrStr(e));
  obj_ = obj;

  if (access("/sys/kernel/tracing/events", F_OK) != 0 && access("/sys/kernel/debug/tracing/events", F_OK) != 0)
    mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr);
  Napi::Array attached = Napi::Array::New(env);
  Napi::Array failed = Napi::Array::New(env);
  Napi::Array uprobes = Napi::Array::New(env);
  bpf_program *p;
  bpf_object__for_each_program(p, obj_) {
    const char *sec = bpf_program__section_name(p);
    // Uprobes need a binary and a function: attachUprobe() does them.
    if (strncmp(sec, "uprobe", 6) == 0 || strncmp(sec, "uretprobe", 9) == 0) {
      uprobes.Set(uprobes.Length(), bpf_program__name(p));
      continue;
    }
    bpf_link *l = bpf_program__attach(p);
    if (!l) {
      Napi::Object f = Napi::Object::New(env);
      f.Set("name", bpf_program__name(p));
      f.Set("error", ErrStr(errno));
      failed.Set(failed.Length(), f);
      continue;
    }
    links_[-(next_++)] = l;
    attached.Set(attached.Length(), bpf_program__name(p));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("attached", attached);
  out.Set("failed", failed);
  out.Set("uprobes", uprobes);
  return out;
}

// attachUprobe(program, binaryPath, functionName, retprobe, pid = -1) → handle. pid -1: every
// process that maps the file, now and later (the kernel hooks the inode).
Napi::Value UprobeTracer::AttachUprobe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!obj_) throw Napi::Error::New(env, "not open");
  std::string prog = info[0].As<Napi::String>().Utf8Value();
  std::string bin = info[1].As<Napi::String>().Utf8Value();
  std::string func = info[2].As<Napi::String>().Utf8Value();
  bool ret = info[3].ToBoolean();
  int pid = info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : -1;
  bpf_program *p = bpf_object__find_program_by_name(obj_, prog.c_str());
  if (!p) throw Napi::Error::New(env, "no program " + prog);
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret, .func_name = func.c_str());
  bpf_link *l = bpf_program__attach_uprobe_opts(p, pid, bin.c_str(), 0, &opts);
  if (!l) throw Napi::Error::New(env, "uprobe " + bin + ":" + func + ": " + ErrStr(errno));
  int h = next_++;
  links_[h] = l;
  return Napi::Number::New(env, h);
}

Napi::Value UprobeTracer::Detach(const Napi::CallbackInfo &info) {
  int h = info[0].As<Napi::Number>().Int32Value();
  auto it = links_.find(h);
  if (it == links_.end()) return Napi::Boolean::New(info.Env(), false);
  bpf_link__destroy(it->second);
  links_.erase(it);
  return Napi::Boolean::New(info.Env(), true);
}

// stats(mapName) → per-index sums of a per-CPU u64 array map.
Napi::Value UprobeTracer::Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  if (!obj_) return out;
  std::string n = info[0].As<Napi::String>().Utf8Value();
  bpf_map *m = bpf_object__find_map_by_name(obj_, n.c_str());
  if (!m) throw Napi::Error::New(env, "no map " + n);
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> vals(ncpu > 0 ? ncpu : 1);
  for (uint32_t i = 0; i < bpf_map__max_entries(m); i++) {
    uint64_t sum = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(m), &i, vals.data()) == 0)
      for (uint64_t v : vals) sum += v;
    out.Set(i, Napi::Number::New(env, static_cast<double>(sum)));
  }
  return out;
}

void UprobeTracer::Teardown() {
  for (auto &kv : links_) bpf_link__destroy(kv.second);
  links_.clear();
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
}

Napi::Value UprobeTracer::Close(const Napi::CallbackInfo &info) {
  Teardown();
  return info.Env().Undefined();
}

}  // namespace telegen
