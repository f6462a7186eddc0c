// Drains a BPF ring buffer map on the JS thread's event loop and hands JavaScript one call per batch.
// The map is mmapped directly (kernel ringbuf ABI, a window at a time: ring_map.h) so JS reads
// records in place: no copy, no object per record. The consumer position only advances after the JS handler returned,
// which is what keeps the kernel from overwriting the bytes JS is looking at.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "ring_map.h"
#include "socket.h"

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
  // Stops (true) or resumes (false) reading: while paused the kernel's ring fills and its
  // producers drop and count what does not fit (ring_full), which costs this process nothing —
  // the agent's CPU budget. Must run on the JS thread.
  void SetPaused(bool paused);
  bool Paused() const { return paused_; }
  // Caps the records handed to JS per call (1..kMaxBatch). Every span a batch creates is alive
  // until the call returns, so after a resume over a full ring a 4096-record call keeps ~2,000
  // spans reachable across a scavenge and V8 promotes them: smaller calls let them die young.
  void SetMaxBatch(uint32_t n) { max_batch_ = n < 1 ? 1 : (n > kMaxBatch ? kMaxBatch : n); }
  uint32_t MaxBatch() const { return max_batch_; }
  // Stops watching the ring and unmaps the consumer page. JS views are detached so a stale
  // reference reads nothing instead of faulting. Must run on the JS thread (a handler may call it).
  void Stop();
  // Reads what the ring still holds, batch after batch, to its end (paused or not): called once
  // the programs are detached, so a stopping agent decodes everything captured before the stop
  // instead of losing the last records. Returns false when the handler closed the tracer (the
  // reader is gone: the caller must not touch it). Must run on the JS thread.
  bool DrainAll();

  uint64_t Batches() const { return batches_; }
  uint64_t Records() const { return records_; }
  uint64_t PendingBytes() const;
  uint64_t Size() const { return size_; }

 private:
  // The libuv handles outlive the reader until their close callbacks ran.
  struct Handles {
    uv_poll_t poll;
    uv_timer_t timer;
    int fd = -1;
    int open = 0;
    RingReader *reader = nullptr;
  };

  static void OnPoll(uv_poll_t *h, int status, int events);
  static void OnTimer(uv_timer_t *h);
  static void OnClose(uv_handle_t *h);
  void Drain();
  void CloseHandles();

  Napi::Env env_;
  uint64_t size_;
  std::unique_ptr<RingMap> map_;  // null once stopped
  uint32_t *index_ = nullptr;  // backing store of index_view_
  Handles *handles_ = nullptr;
  bool started_ = false;
  bool stopped_ = false;
  bool draining_ = false;
  bool paused_ = false;
  // Cleared by the destructor: a handler that closes the tracer deletes this reader under Drain.
  std::shared_ptr<bool> alive_;
  Napi::FunctionReference handler_;
  Napi::ObjectReference resource_;
  Napi::Reference<Napi::ArrayBuffer> ring_ab_;
  Napi::Reference<Napi::Uint8Array> ring_view_;
  Napi::Reference<Napi::Uint32Array> index_view_;
  uint32_t poll_ms_ = TG_POLL_MS_DEFAULT;
  uint32_t max_batch_ = kMaxBatch;
  uint64_t batches_ = 0;
  uint64_t records_ = 0;
};

}  // namespace telegen
