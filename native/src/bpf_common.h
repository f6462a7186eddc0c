#pragma once
// Helpers every addon class that loads a BPF object file shares (BpfObject, UprobeTracer, the
// map fill sampler): error text, read-only config variables by name, tracefs, JS option maps.
#include <napi.h>

#include <string>
#include <utility>
#include <vector>

struct bpf_object;
struct bpf_link;

namespace telegen {

std::string ErrStr(int err);

// Writes `value` into the read-only variable `name` of the object's .rodata (before load), found
// through the object's BTF so no offsets are hard-coded on this side.
bool SetRodata(bpf_object *obj, const std::string &name, double value, std::string *err);

// "*_scratch" arrays hold one record per CPU, indexed by bpf_get_smp_processor_id(): declared for
// 256 CPUs, sized to the possible ones before load (a 32 KiB slot each is kernel memory charged to
// the loading process's memory cgroup: 8 MiB per map otherwise). Names in `keep` are left alone.
void SizeScratchMaps(bpf_object *obj, const std::vector<std::string> &keep = {});

// libbpf finds tracepoint ids under tracefs: mounts it where this mount namespace lacks it.
void EnsureTracefs();

// { name: number, ... } from JS (rodata values, map sizes); anything else → empty.
std::vector<std::pair<std::string, double>> NumberEntries(const Napi::Value &v);

// Destroys the links and closes the fds (perf events, raw links) on several threads at once.
// Each detach waits the kernel out of an RCU grace period (tracepoint unregister, uprobe
// unregister): one after the other that was seconds at shutdown with many hooked libraries;
// concurrent waits share grace periods.
void DestroyLinks(std::vector<bpf_link *> links, std::vector<int> fds = {});

// { name, error }: one entry of the `failed` list every load/attach report carries.
Napi::Object Failure(Napi::Env env, const std::string &name, const std::string &error);

}  // namespace telegen
