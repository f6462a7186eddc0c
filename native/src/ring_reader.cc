#include "ring_reader.h"

#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
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

RingReader::RingReader(Napi::Env env, int map_fd, uint64_t size, Napi::Function handler)
    : size_(size), handoff_(std::make_shared<Handoff>()) {
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

  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  evfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epfd_ < 0 || evfd_ < 0) throw Napi::Error::New(env, Errno("epoll/eventfd"));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = map_fd;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, map_fd, &ev) < 0) throw Napi::Error::New(env, Errno("epoll_ctl ring"));
  ev.data.fd = evfd_;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) < 0) throw Napi::Error::New(env, Errno("epoll_ctl eventfd"));

  tsfn_ = Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, &RingReader::CallJs>::New(
      env, handler, "telegen-ring", 1, 1);
}

RingReader::~RingReader() {
  // Stop() normally ran already; this only covers a tracer collected without close().
  if (thread_.joinable()) {
    stopping_ = true;
    {
      std::lock_guard<std::mutex> lk(handoff_->mu);
      handoff_->stopping = true;
    }
    handoff_->cv.notify_all();
    uint64_t one = 1;
    (void)!write(evfd_, &one, sizeof(one));
    thread_.join();
  }
  if (!stopped_) tsfn_.Release();
  if (epfd_ >= 0) close(epfd_);
  if (evfd_ >= 0) close(evfd_);
}

void RingReader::Start() { thread_ = std::thread([this] { Run(); }); }

void RingReader::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lk(handoff_->mu);
    handoff_->stopping = true;
  }
  handoff_->cv.notify_all();
  uint64_t one = 1;
  (void)!write(evfd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  tsfn_.Release();
  map_.reset();
  if (!ring_ab_.IsEmpty()) {
    Napi::ArrayBuffer ab = ring_ab_.Value();
    if (!ab.IsDetached()) ab.Detach();
    ring_ab_.Reset();
  }
  ring_view_.Reset();
  index_view_.Reset();
}

uint64_t RingReader::PendingBytes() const {
  if (!map_) return 0;
  return map_->Producer() - map_->Consumer();
}

void RingReader::CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t *, Batch *batch) {
  std::shared_ptr<Handoff> h = batch->handoff;
  bool stopping;
  {
    std::lock_guard<std::mutex> lk(h->mu);
    stopping = h->stopping;
  }
  if (env != nullptr && fn != nullptr && !stopping) {
    try {
      fn.Call({Napi::Number::New(env, batch->count)});
    } catch (const Napi::Error &e) {
      // The TS wrapper catches handler errors itself; reaching here means the wrapper threw.
      // Surface it to the process like any uncaught exception, after releasing the thread.
      {
        std::lock_guard<std::mutex> lk(h->mu);
        h->done = true;
      }
      h->cv.notify_all();
      delete batch;
      e.ThrowAsJavaScriptException();
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lk(h->mu);
    h->done = true;
  }
  h->cv.notify_all();
  delete batch;
}

bool RingReader::DrainOnce() {
  uint64_t start = map_->Consumer();
  uint32_t count = 0;
  uint64_t cons = map_->Walk(start, map_->Producer(), kMaxBatch, [this, &count](uint64_t off, uint32_t len) {
    index_[2 * count] = static_cast<uint32_t>(off);
    index_[2 * count + 1] = len;
    count++;
    return true;
  });
  if (cons == start) return false;

  if (count > 0) {
    {
      std::lock_guard<std::mutex> lk(handoff_->mu);
      handoff_->done = false;
    }
    auto *batch = new Batch{handoff_, count};
    if (tsfn_.BlockingCall(batch) != napi_ok) {
      // The JS side is shutting down; with data pending, epoll would spin from here on.
      delete batch;
      stopping_ = true;
      return false;
    }
    std::unique_lock<std::mutex> lk(handoff_->mu);
    handoff_->cv.wait(lk, [this] { return handoff_->done || handoff_->stopping; });
    if (!handoff_->done) return false;  // stopping: JS never saw it, nothing to release
    batches_++;
    records_ += count;
  }
  map_->Release(cons);
  return true;
}

void RingReader::Run() {
  epoll_event evs[2];
  while (!stopping_) {
    if (DrainOnce()) continue;
    if (stopping_) break;
    // Level-triggered: data already committed returns at once. Producers skip the wake-up
    // until TG_WAKEUP_BYTES are waiting, so the timeout is what bounds a quiet record's latency.
    int n = epoll_wait(epfd_, evs, 2, TG_POLL_MS_DEFAULT);
    if (n < 0 && errno != EINTR) break;
  }
}

}  // namespace telegen
