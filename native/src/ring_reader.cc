#include "ring_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "socket.h"

namespace telegen {

namespace {

struct Mapping {
  void *addr;
  size_t len;
};

// Runs when the last JS reference to the ring view is gone: only then is it safe to unmap.
void UnmapFinalizer(Napi::Env, void *, Mapping *m) {
  munmap(m->addr, m->len);
  delete m;
}

std::string Errno(const char *what) { return std::string(what) + ": " + strerror(errno); }

}  // namespace

// Why no reader thread: it could do nothing while JS held a batch (the consumer position waits
// for the handler), so each batch cost a hand-off instead: an eventfd write to wake the event
// loop, a condition variable both ways and two thread switches, ~0.1 ms of CPU per batch on this
// 2-vCPU VM (a batch every ~10 ms at 1k req/s). libuv watches the ring fd itself (level-triggered:
// it fires again on the next loop turn while records are waiting) and a timer stands in for the
// producers' skipped wake-ups, as the thread's epoll timeout did.
RingReader::RingReader(Napi::Env env, int map_fd, uint64_t size, Napi::Function handler)
    : env_(env), size_(size), alive_(std::make_shared<bool>(true)) {
  try {
    map_ = std::make_unique<RingMap>(map_fd, size);
  } catch (const std::runtime_error &e) {
    throw Napi::Error::New(env, e.what());
  }
  size_t len;
  void *mapping = map_->TakeDataMapping(&len);
  auto ab = Napi::ArrayBuffer::New(env, map_->data(), 2 * size_, UnmapFinalizer, new Mapping{mapping, len});
  ring_ab_ = Napi::Persistent(ab);
  ring_view_ = Napi::Persistent(Napi::Uint8Array::New(env, 2 * size_, ab, 0));
  auto index_ab = Napi::ArrayBuffer::New(env, kMaxBatch * 2 * sizeof(uint32_t));
  index_ = static_cast<uint32_t *>(index_ab.Data());
  index_view_ = Napi::Persistent(Napi::Uint32Array::New(env, kMaxBatch * 2, index_ab, 0));
  handler_ = Napi::Persistent(handler);
  resource_ = Napi::Persistent(Napi::Object::New(env));

  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw Napi::Error::New(env, "no event loop");
  auto *h = new Handles();
  h->fd = fcntl(map_fd, F_DUPFD_CLOEXEC, 0);
  if (h->fd < 0) {
    delete h;
    throw Napi::Error::New(env, Errno("dup ring fd"));
  }
  int err = uv_poll_init(loop, &h->poll, h->fd);
  if (err != 0) {
    close(h->fd);
    delete h;
    throw Napi::Error::New(env, std::string("watch ring fd: ") + uv_strerror(err));
  }
  uv_timer_init(loop, &h->timer);
  h->poll.data = h;
  h->timer.data = h;
  h->open = 2;
  h->reader = this;
  handles_ = h;
  // How long a record below the producers' wake-up threshold may wait: each poll that finds
  // records is a batch, and a batch has a fixed cost (a loop turn, the handler's entry, the
  // router's per-batch work), so a longer interval trades that latency for CPU at low rates.
  if (const char *v = getenv("TELEGEN_RING_POLL_MS")) {
    char *end = nullptr;
    long ms = strtol(v, &end, 10);
    if (end != v && *end == '\0' && ms >= 1 && ms <= 1000) poll_ms_ = static_cast<uint32_t>(ms);
  }
}

RingReader::~RingReader() {
  *alive_ = false;
  // Stop() normally ran already; this only covers a tracer collected without close().
  CloseHandles();
}

void RingReader::Start() {
  if (started_ || stopped_) return;
  started_ = true;
  if (paused_) return;
  uv_poll_start(&handles_->poll, UV_READABLE, OnPoll);
  uv_timer_start(&handles_->timer, OnTimer, poll_ms_, poll_ms_);
}

void RingReader::SetPaused(bool paused) {
  if (paused == paused_) return;
  paused_ = paused;
  if (!started_ || stopped_ || handles_ == nullptr) return;
  // The poll is level-triggered: left running over a ring nobody drains it would fire on every
  // loop turn.
  if (paused) {
    uv_poll_stop(&handles_->poll);
    uv_timer_stop(&handles_->timer);
  } else {
    uv_poll_start(&handles_->poll, UV_READABLE, OnPoll);
    uv_timer_start(&handles_->timer, OnTimer, 0, poll_ms_);
  }
}

void RingReader::CloseHandles() {
  Handles *h = handles_;
  if (h == nullptr) return;
  handles_ = nullptr;
  h->reader = nullptr;
  uv_close(reinterpret_cast<uv_handle_t *>(&h->poll), OnClose);
  uv_close(reinterpret_cast<uv_handle_t *>(&h->timer), OnClose);
}

void RingReader::OnClose(uv_handle_t *handle) {
  auto *h = static_cast<Handles *>(handle->data);
  if (--h->open > 0) return;
  close(h->fd);
  delete h;
}

void RingReader::Stop() {
  if (stopped_) return;
  stopped_ = true;
  CloseHandles();
  map_.reset();
  if (!ring_ab_.IsEmpty()) {
    Napi::ArrayBuffer ab = ring_ab_.Value();
    if (!ab.IsDetached()) ab.Detach();
    ring_ab_.Reset();
  }
  ring_view_.Reset();
  index_view_.Reset();
}

bool RingReader::DrainAll() {
  if (stopped_ || draining_ || !map_) return true;
  paused_ = false;
  std::shared_ptr<bool> alive = alive_;
  // Nothing new arrives (links are gone), so this ends; the bound is only a guard.
  for (int i = 0; i < 1 << 20; i++) {
    if (stopped_ || !map_) return true;
    uint64_t before = map_->Consumer();
    if (before == map_->Producer()) return true;
    Drain();
    if (!*alive) return false;
    if (stopped_ || !map_ || map_->Consumer() == before) return true;
  }
  return true;
}

uint64_t RingReader::PendingBytes() const {
  if (!map_) return 0;
  return map_->Producer() - map_->Consumer();
}

void RingReader::OnPoll(uv_poll_t *handle, int status, int) {
  auto *h = static_cast<Handles *>(handle->data);
  // An fd that cannot be polled any more would report its error on every turn; the timer still
  // drains the ring.
  if (status < 0) uv_poll_stop(handle);
  if (h->reader != nullptr) h->reader->Drain();
}

void RingReader::OnTimer(uv_timer_t *handle) {
  auto *h = static_cast<Handles *>(handle->data);
  if (h->reader != nullptr) h->reader->Drain();
}

// One batch per call: with more waiting, the poll fires again on the next loop turn, so timers
// and I/O of the rest of the agent run between batches under load.
void RingReader::Drain() {
  if (stopped_ || draining_ || paused_ || !map_) return;
  uint64_t start = map_->Consumer();
  uint32_t count = 0;
  uint64_t cons = map_->Walk(start, map_->Producer(), max_batch_, [this, &count](uint64_t off, uint32_t len) {
    index_[2 * count] = static_cast<uint32_t>(off);
    index_[2 * count + 1] = len;
    count++;
    return true;
  });
  if (cons == start) return;
  if (count > 0) {
    std::shared_ptr<bool> alive = alive_;
    draining_ = true;
    {
      Napi::HandleScope scope(env_);
      try {
        // MakeCallback: the handler's microtasks and nextTicks run before the batch is released,
        // as they did when a thread-safe function called it.
        handler_.MakeCallback(resource_.Value(), {Napi::Number::New(env_, count)});
      } catch (const Napi::Error &e) {
        // The TS wrapper catches handler errors itself; reaching here means the wrapper threw.
        // Surface it to the process like any uncaught exception; the batch is released regardless.
        napi_fatal_exception(env_, e.Value());
      }
    }
    if (!*alive) return;  // the handler closed the tracer: the reader is gone
    draining_ = false;
    if (stopped_ || !map_) return;  // closed from the handler: the ring is unmapped
    batches_++;
    records_ += count;
  }
  map_->Release(cons);
}

}  // namespace telegen
