#pragma once
// Map fill for /metrics, shared by every tracer class: which maps an object holds
// (DescribeMaps), and how full each is (mapFill: one bpf_map iterator read for all of them;
// mapWalkKeys: a paced key walk where the iterator's kfunc is missing).
#include <napi.h>

#include <functional>

struct bpf_object;
struct bpf_map_info;

namespace telegen {

// [{name, id, type, maxEntries}] for the object's own maps (libbpf's .rodata/.bss left out).
Napi::Array DescribeMaps(Napi::Env env, bpf_object *obj);

// Calls fn(fd, info) for each BPF map fd this process holds (found through /proc/self/fd), until
// fn returns false. Maps owned by another addon object are reached this way without touching it.
void ForEachOwnMap(const std::function<bool(int fd, const bpf_map_info &info)> &fn);

// exports.mapFill(), exports.mapWalkKeys(id, cursor, budgetUs), exports.ownMaps(prefix).
void InitMapFill(Napi::Env env, Napi::Object exports);

}  // namespace telegen
