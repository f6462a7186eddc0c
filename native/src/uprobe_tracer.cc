#include "uprobe_tracer.h"

#include "bpf_common.h"
#include "map_fill.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace telegen {

namespace {

// From linux/bpf.h of kernels >= 6.6; libbpf 1.1's headers predate them.
constexpr int kUprobeMultiAttach = 48;  // BPF_TRACE_UPROBE_MULTI
constexpr int kLinkCreate = 28;         // BPF_LINK_CREATE
constexpr uint32_t kUprobeMultiReturn = 1;  // BPF_F_UPROBE_MULTI_RETURN

// BPF_LINK_CREATE of a uprobe_multi link for one (file, offset): the attr layout of
// link_create.uprobe_multi, written out because the system headers lack it.
int UprobeMultiLink(int prog_fd, const std::string &path, uint64_t offset, uint64_t cookie, bool ret, int pid) {
  alignas(8) unsigned char attr[128] = {};
  uint64_t off = offset, ck = cookie;
  uint32_t u32;
  uint64_t u64;
  u32 = prog_fd; memcpy(attr + 0, &u32, 4);
  u32 = kUprobeMultiAttach; memcpy(attr + 8, &u32, 4);
  u64 = reinterpret_cast<uintptr_t>(path.c_str()); memcpy(attr + 16, &u64, 8);
  u64 = reinterpret_cast<uintptr_t>(&off); memcpy(attr + 24, &u64, 8);
  u64 = reinterpret_cast<uintptr_t>(&ck); memcpy(attr + 40, &u64, 8);
  u32 = 1; memcpy(attr + 48, &u32, 4);                       // cnt
  u32 = ret ? kUprobeMultiReturn : 0; memcpy(attr + 52, &u32, 4);
  u32 = pid > 0 ? pid : 0; memcpy(attr + 56, &u32, 4);
  return static_cast<int>(syscall(__NR_bpf, kLinkCreate, attr, sizeof(attr)));
}

// The fd of this process's BPF map called `name`, or -1 (-2: more than one distinct map has
// that name, so sharing it would be a guess). Maps are found through /proc/self/fd because the
// tracer that owns them lives in another addon object and must not change for us.
int FindOwnMap(const std::string &name, bpf_map_info *out) {
  int found = -1;
  ForEachOwnMap([&](int fd, const bpf_map_info &info) {
    if (name != info.name) return true;
    if (found >= 0 && info.id != out->id) {
      found = -2;
      return false;
    }
    found = fd;
    *out = info;
    return true;
  });
  return found;
}


}  // namespace

Napi::Function UprobeTracer::Init(Napi::Env env) {
  return DefineClass(env, "UprobeTracer",
                     {
                         InstanceMethod<&UprobeTracer::Open>("open"),
                         InstanceMethod<&UprobeTracer::AttachUprobe>("attachUprobe"),
                         InstanceMethod<&UprobeTracer::Detach>("detach"),
                         InstanceMethod<&UprobeTracer::Stats>("stats"),
                         InstanceMethod<&UprobeTracer::Keys>("keys"),
                         StaticMethod<&UprobeTracer::Nghttp2Layout>("nghttp2Layout"),
                         StaticMethod<&UprobeTracer::SymbolOffset>("symbolOffset"),
                         InstanceMethod<&UprobeTracer::Maps>("maps"),
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
  // Programs named *_multi are for uprobe_multi links (AttachUprobe): their attach type is set
  // before load. A kernel without uprobe_multi (< 6.6) refuses them: the object is then loaded
  // again without them.
  auto is_multi = [](bpf_program *mp) {
    const char *pn = bpf_program__name(mp);
    size_t pl = strlen(pn);
    return pl > 6 && strcmp(pn + pl - 6, "_multi") == 0;
  };
  bpf_object *obj = nullptr;
  for (int attempt = 0; attempt < 2 && !obj_; attempt++) {
    obj = bpf_object__open_file(path.c_str(), nullptr);
    if (!obj) throw Napi::Error::New(env, "open " + path + ": " + ErrStr(errno));
    std::string err;
    auto fail = [&](const std::string &msg) {
      bpf_object__close(obj);
      throw Napi::Error::New(env, msg);
    };
    for (auto &kv : NumberEntries(o.Get("rodata")))
      if (!SetRodata(obj, kv.first, kv.second, &err)) fail(err);
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
    SizeScratchMaps(obj);
    bool any_multi = false;
    bpf_program *mp;
    bpf_object__for_each_program(mp, obj) {
      if (!is_multi(mp)) continue;
      any_multi = true;
      if (attempt == 0) bpf_program__set_expected_attach_type(mp, static_cast<bpf_attach_type>(kUprobeMultiAttach));
      else bpf_program__set_autoload(mp, false);
    }
    int e = bpf_object__load(obj);
    if (!e) {
      obj_ = obj;
      break;
    }
    if (attempt == 1 || !any_multi) fail("load " + path + ": " + ErrStr(e));
    bpf_object__close(obj);
  }

  EnsureTracefs();
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
      failed.Set(failed.Length(), Failure(env, bpf_program__name(p), ErrStr(errno)));
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

// attachUprobe(program, binaryPath, function, retprobe, pid = -1, cookie = 0) → handle.
// function: a symbol name, or a number = file offset (a callback found by address). pid -1:
// every process that maps the file, now and later (the kernel hooks the inode). cookie: read by
// the program with bpf_get_attach_cookie().
Napi::Value UprobeTracer::AttachUprobe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!obj_) throw Napi::Error::New(env, "not open");
  std::string prog = info[0].As<Napi::String>().Utf8Value();
  std::string bin = info[1].As<Napi::String>().Utf8Value();
  bool by_offset = info[2].IsNumber();
  std::string func = by_offset ? "" : info[2].As<Napi::String>().Utf8Value();
  size_t offset = by_offset ? static_cast<size_t>(info[2].As<Napi::Number>().Int64Value()) : 0;
  bool ret = info[3].ToBoolean();
  int pid = info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : -1;
  uint64_t cookie = info[5].IsNumber() ? static_cast<uint64_t>(info[5].As<Napi::Number>().Int64Value()) : 0;
  bpf_program *p = bpf_object__find_program_by_name(obj_, prog.c_str());
  if (!p) throw Napi::Error::New(env, "no program " + prog);
  std::string pname = prog;
  if (pname.size() > 6 && pname.compare(pname.size() - 6, 6, "_multi") == 0) {
    if (!by_offset) throw Napi::Error::New(env, prog + ": uprobe_multi programs attach by offset");
    int fd = UprobeMultiLink(bpf_program__fd(p), bin, offset, cookie, ret, pid);
    if (fd < 0) throw Napi::Error::New(env, "uprobe_multi " + bin + ":" + std::to_string(offset) + ": " + ErrStr(errno));
    int h = next_++;
    fds_[h] = fd;
    return Napi::Number::New(env, h);
  }
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = ret,
              .func_name = by_offset ? nullptr : func.c_str());
  bpf_link *l = bpf_program__attach_uprobe_opts(p, pid, bin.c_str(), offset, &opts);
  if (!l) throw Napi::Error::New(env, "uprobe " + bin + ":" + (by_offset ? std::to_string(offset) : func) + ": " + ErrStr(errno));
  int h = next_++;
  links_[h] = l;
  return Napi::Number::New(env, h);
}

// keys(mapName) → every key of a hash map, as Buffers.
Napi::Value UprobeTracer::Keys(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  if (!obj_) return out;
  std::string n = info[0].As<Napi::String>().Utf8Value();
  bpf_map *m = bpf_object__find_map_by_name(obj_, n.c_str());
  if (!m) throw Napi::Error::New(env, "no map " + n);
  size_t ks = bpf_map__key_size(m);
  std::vector<char> cur(ks), next(ks);
  const void *prev = nullptr;
  while (bpf_map_get_next_key(bpf_map__fd(m), prev, next.data()) == 0 && out.Length() < 65536) {
    out.Set(out.Length(), Napi::Buffer<char>::Copy(env, next.data(), ks));
    cur.swap(next);
    prev = cur.data();
  }
  return out;
}

namespace {

// The subset of nghttp2.h the layout probe calls (public API, stable since 1.0).
struct NgMem {
  void *user;
  void *(*malloc)(size_t, void *);
  void (*free)(void *, void *);
  void *(*calloc)(size_t, size_t, void *);
  void *(*realloc)(void *, size_t, void *);
};
thread_local void *g_first_ptr = nullptr;
thread_local size_t g_first_size = 0;
void NoteFirst(void *p, size_t n) {
  if (!g_first_ptr && p) {
    g_first_ptr = p;
    g_first_size = n;
  }
}
void *NgMalloc(size_t n, void *) { void *p = malloc(n); NoteFirst(p, n); return p; }
void NgFree(void *p, void *) { free(p); }
void *NgCalloc(size_t a, size_t b, void *) { void *p = calloc(a, b); NoteFirst(p, a * b); return p; }
void *NgRealloc(void *p, size_t n, void *) { return realloc(p, n); }

}  // namespace

// symbolOffset(file, name) → the file offset of function `name` (.dynsym, then .symtab), or -1.
// uprobe_multi links take offsets; libbpf 1.1 resolves names only inside its perf-event attach.
Napi::Value UprobeTracer::SymbolOffset(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Napi::Number::New(env, -1);
  struct stat st {};
  void *map = fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(sizeof(Elf64_Ehdr))
                  ? mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED) return Napi::Number::New(env, -1);
  const char *b = static_cast<const char *>(map);
  size_t size = st.st_size;
  double found = -1;
  auto in = [&](uint64_t off, uint64_t len) { return off <= size && len <= size - off; };
  const auto *eh = reinterpret_cast<const Elf64_Ehdr *>(b);
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
      in(eh->e_shoff, uint64_t(eh->e_shnum) * sizeof(Elf64_Shdr)) && in(eh->e_phoff, uint64_t(eh->e_phnum) * sizeof(Elf64_Phdr))) {
    const auto *sh = reinterpret_cast<const Elf64_Shdr *>(b + eh->e_shoff);
    const auto *ph = reinterpret_cast<const Elf64_Phdr *>(b + eh->e_phoff);
    for (uint32_t want : {uint32_t(SHT_DYNSYM), uint32_t(SHT_SYMTAB)}) {
      for (int i = 0; i < eh->e_shnum && found < 0; i++) {
        if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum || !in(sh[i].sh_offset, sh[i].sh_size)) continue;
        const Elf64_Shdr &str = sh[sh[i].sh_link];
        if (!in(str.sh_offset, str.sh_size)) continue;
        const auto *sym = reinterpret_cast<const Elf64_Sym *>(b + sh[i].sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); k++) {
          if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || sym[k].st_shndx == SHN_UNDEF || sym[k].st_name >= str.sh_size) continue;
          const char *n = b + str.sh_offset + sym[k].st_name;
          if (strncmp(n, name.c_str(), str.sh_size - sym[k].st_name) != 0 || n[name.size()] != 0) continue;
          for (int j = 0; j < eh->e_phnum; j++) {
            if (ph[j].p_type == PT_LOAD && sym[k].st_value >= ph[j].p_vaddr && sym[k].st_value < ph[j].p_vaddr + ph[j].p_memsz) {
              found = static_cast<double>(sym[k].st_value - ph[j].p_vaddr + ph[j].p_offset);
              break;
            }
          }
          break;
        }
      }
      if (found >= 0) break;
    }
  }
  munmap(map, size);
  return Napi::Number::New(env, found);
}

// nghttp2Layout(libraryPath) → { onHeader, onHeader2 }: byte offsets of the session's copies of
// on_header_callback and on_header_callback2 inside nghttp2_session, which is opaque and
// changes between versions. Found by creating a session in that very library with marker
// values as callbacks (never called: the session sees no input) and looking for them in it.
Napi::Value UprobeTracer::Nghttp2Layout(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  // DEEPBIND: the library must use its own symbols, not those of an nghttp2 linked into node.
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!h) throw Napi::Error::New(env, std::string("dlopen: ") + dlerror());
  using CbNew = int (*)(void **);
  using CbDel = void (*)(void *);
  using CbSet = void (*)(void *, void *);
  using SessNew3 = int (*)(void **, const void *, void *, const void *, NgMem *);
  using SessDel = void (*)(void *);
  auto cb_new = reinterpret_cast<CbNew>(dlsym(h, "nghttp2_session_callbacks_new"));
  auto cb_del = reinterpret_cast<CbDel>(dlsym(h, "nghttp2_session_callbacks_del"));
  auto set1 = reinterpret_cast<CbSet>(dlsym(h, "nghttp2_session_callbacks_set_on_header_callback"));
  auto set2 = reinterpret_cast<CbSet>(dlsym(h, "nghttp2_session_callbacks_set_on_header_callback2"));
  auto sess_new = reinterpret_cast<SessNew3>(dlsym(h, "nghttp2_session_server_new3"));
  auto sess_del = reinterpret_cast<SessDel>(dlsym(h, "nghttp2_session_del"));
  if (!cb_new || !cb_del || !set1 || !set2 || !sess_new || !sess_del) {
    dlclose(h);
    throw Napi::Error::New(env, "not an nghttp2 library with on_header_callback2: " + path);
  }
  const uintptr_t m1 = 0x7e1e9e0000000d01ULL, m2 = 0x7e1e9e0000000d02ULL;
  void *cbs = nullptr;
  if (cb_new(&cbs) != 0) {
    dlclose(h);
    throw Napi::Error::New(env, "nghttp2_session_callbacks_new failed");
  }
  set1(cbs, reinterpret_cast<void *>(m1));
  set2(cbs, reinterpret_cast<void *>(m2));
  NgMem mem{nullptr, NgMalloc, NgFree, NgCalloc, NgRealloc};
  g_first_ptr = nullptr;
  g_first_size = 0;
  void *session = nullptr;
  int rv = sess_new(&session, cbs, nullptr, nullptr, &mem);
  cb_del(cbs);
  long off1 = -1, off2 = -1;
  // The session is the first allocation nghttp2_session_server_new3 makes.
  if (rv == 0 && session == g_first_ptr) {
    const char *b = static_cast<const char *>(session);
    for (size_t o = 0; o + sizeof(uintptr_t) <= g_first_size; o += sizeof(uintptr_t)) {
      uintptr_t v;
      memcpy(&v, b + o, sizeof(v));
      if (v == m1 && off1 < 0) off1 = static_cast<long>(o);
      if (v == m2 && off2 < 0) off2 = static_cast<long>(o);
    }
  }
  if (rv == 0) sess_del(session);
  dlclose(h);
  if (off1 < 0 || off2 < 0) throw Napi::Error::New(env, "callback offsets not found in nghttp2_session of " + path);
  Napi::Object out = Napi::Object::New(env);
  out.Set("onHeader", Napi::Number::New(env, off1));
  out.Set("onHeader2", Napi::Number::New(env, off2));
  return out;
}

Napi::Value UprobeTracer::Detach(const Napi::CallbackInfo &info) {
  int h = info[0].As<Napi::Number>().Int32Value();
  auto fit = fds_.find(h);
  if (fit != fds_.end()) {
    close(fit->second);
    fds_.erase(fit);
    return Napi::Boolean::New(info.Env(), true);
  }
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
  std::vector<bpf_link *> links;
  std::vector<int> fds;
  for (auto &kv : links_) links.push_back(kv.second);
  for (auto &kv : fds_) fds.push_back(kv.second);
  links_.clear();
  fds_.clear();
  DestroyLinks(std::move(links), std::move(fds));
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
}

Napi::Value UprobeTracer::Maps(const Napi::CallbackInfo &info) { return DescribeMaps(info.Env(), obj_); }

Napi::Value UprobeTracer::Close(const Napi::CallbackInfo &info) {
  Teardown();
  return info.Env().Undefined();
}

}  // namespace telegen
