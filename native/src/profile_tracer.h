#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "profile.h"
#include "ring_map.h"

struct profile_bpf;
struct bpf_link;

namespace telegen {

// JS class ProfileTracer: loads bpf/profile.bpf.c, opens a software cpu-clock perf event on
// every online CPU and attaches the sampler to each; drain() hands the counts of the last
// interval and the stacks they name to JS as flat typed arrays.
class ProfileTracer : public Napi::ObjectWrap<ProfileTracer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ProfileTracer(const Napi::CallbackInfo &info);
  ~ProfileTracer();

 private:
  Napi::Value Open(const Napi::CallbackInfo &info);
  Napi::Value Drain(const Napi::CallbackInfo &info);
  Napi::Value DrainAsync(const Napi::CallbackInfo &info);
  Napi::Value SetEnabled(const Napi::CallbackInfo &info);
  Napi::Value SetTarget(const Napi::CallbackInfo &info);
  Napi::Value SetRecording(const Napi::CallbackInfo &info);
  Napi::Value CollectRecords(const Napi::CallbackInfo &info);
  Napi::Value Stats(const Napi::CallbackInfo &info);
  Napi::Value Close(const Napi::CallbackInfo &info);

  void Teardown();

 public:
  // Called by the drain's thread-pool job when it has finished (on the JS thread).
  void DrainDone();

 private:
  bool draining_ = false;
  bool closing_ = false;
  profile_bpf *skel_ = nullptr;
  std::vector<bpf_link *> links_;
  // Sample-time records (trace links): read at each drain on the thread pool, one drain at a
  // time, so no lock. `carry_` holds records of the next drain's map (written after the flip).
  std::unique_ptr<RingMap> rb_;
  std::vector<tg_prof_sample> carry_;
  uint64_t carry_dropped_ = 0;

 public:
  // Moves what the ring holds into `carry_` (bounded; the excess is counted as lost).
  void TakeRing();
  std::vector<tg_prof_sample> &carry() { return carry_; }
};

}  // namespace telegen
