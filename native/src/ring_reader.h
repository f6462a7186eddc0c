// Drains a BPF ring buffer map on its own thread and hands JavaScript one call per batch.
// The map is mmapped directly (kernel ringbuf ABI, a window at a time: ring_map.h) so JS reads
// records in place: no copy, no object per record. The consumer position only advances after the JS handler returned,
// which is what keeps the kernel from overwriting the bytes JS is looking at.
#pragma once

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ring_map.h"

namespace telegen {

class RingReader {
 public:
  static constexpr uint32_t kMaxBatch = 4096;

  // Maps `map_fd` (a BPF_MAP_TYPE_RINGBUF of `size` bytes). Throws Napi::Error on failure.
  RingReader(Napi::Env env, int map_fd, uint64_t size, Napi::Function handler);
  ~RingReader();

  // The data area (2 * size bytes, read-only, a wrapping record contiguous; only the current
  // batch's chunks are mapped, the rest reads as zeros) and the reused batch index.
  Napi::Value RingView(Napi::Env env) { return ring_view_.Value(); }
  Napi::Value IndexView(Napi::Env env) { return index_view_.Value(); }

  void Start();
  // Stops the thread and unmaps the consumer page. JS views are detached so a stale
  // reference reads nothing instead of faulting. Must run on the JS thread.
  void Stop();

  uint64_t Batches() const { return batches_.load(); }
  uint64_t Records() const { return records_.load(); }
  uint64_t PendingBytes() const;
  uint64_t Size() const { return size_; }

 private:
  struct Handoff {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    bool stopping = false;
  };
  struct Batch {
    std::shared_ptr<Handoff> handoff;
    uint32_t count;
  };

  void Run();
  bool DrainOnce();  // true when it consumed anything
  static void CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t *, Batch *batch);

  uint64_t size_;
  std::unique_ptr<RingMap> map_;  // null once stopped
  uint32_t *index_ = nullptr;  // backing store of index_view_
  int epfd_ = -1;
  int evfd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::shared_ptr<Handoff> handoff_;
  Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, &RingReader::CallJs> tsfn_;
  Napi::Reference<Napi::ArrayBuffer> ring_ab_;
  Napi::Reference<Napi::Uint8Array> ring_view_;
  Napi::Reference<Napi::Uint32Array> index_view_;
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> records_{0};
};

}  // namespace telegen
