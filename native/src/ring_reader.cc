#include "ring_reader.h"

#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
    : size_(size), mask_(size - 1), page_(sysconf(_SC_PAGESIZE)), handoff_(std::make_shared<Handoff>()) {
  cons_map_ = mmap(nullptr, page_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (cons_map_ == MAP_FAILED) {
    cons_map_ = nullptr;
    throw Napi::Error::New(env, Errno("mmap ring consumer page"));
  }
  // The kernel maps the data pages twice in a row, so a record that wraps around the end
  // is still contiguous at its offset in this view.
  size_t prod_len = page_ + 2 * size_;
  prod_map_ = mmap(nullptr, prod_len, PROT_READ, MAP_SHARED, map_fd, page_);
  if (prod_map_ == MAP_FAILED) {
    prod_map_ = nullptr;
    munmap(cons_map_, page_);
    cons_map_ = nullptr;
    throw Napi::Error::New(env, Errno("mmap ring data"));
  }
  data_ = static_cast<uint8_t *>(prod_map_) + page_;

  auto ab = Napi::ArrayBuffer::New(env, data_, 2 * size_, UnmapFinalizer, new Mapping{prod_map_, prod_len});
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
  if (cons_map_) munmap(cons_map_, page_);
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
  if (cons_map_) {
    munmap(cons_map_, page_);
    cons_map_ = nullptr;
  }
  if (!ring_ab_.IsEmpty()) {
    Napi::ArrayBuffer ab = ring_ab_.Value();
    if (!ab.IsDetached()) ab.Detach();
    ring_ab_.Reset();
  }
  ring_view_.Reset();
  index_view_.Reset();
}

uint64_t RingReader::PendingBytes() const {
  if (!cons_map_ || !prod_map_) return 0;
  uint64_t cons = __atomic_load_n(static_cast<uint64_t *>(cons_map_), __ATOMIC_ACQUIRE);
  uint64_t prod = __atomic_load_n(static_cast<uint64_t *>(prod_map_), __ATOMIC_ACQUIRE);
  return prod - cons;
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
  auto *cons_pos = static_cast<uint64_t *>(cons_map_);
  auto *prod_pos = static_cast<uint64_t *>(prod_map_);
  uint64_t cons = __atomic_load_n(cons_pos, __ATOMIC_ACQUIRE);
  uint64_t prod = __atomic_load_n(prod_pos, __ATOMIC_ACQUIRE);
  uint64_t start = cons;
  uint32_t count = 0;

  while (cons < prod && count < kMaxBatch) {
    auto *hdr = reinterpret_cast<uint32_t *>(data_ + (cons & mask_));
    uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
    if (len & BPF_RINGBUF_BUSY_BIT) break;  // reserved but not yet committed: stop in order
    uint32_t dlen = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
      index_[2 * count] = static_cast<uint32_t>((cons & mask_) + BPF_RINGBUF_HDR_SZ);
      index_[2 * count + 1] = dlen;
      count++;
    }
    cons += (static_cast<uint64_t>(dlen) + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL;
  }
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
  __atomic_store_n(cons_pos, cons, __ATOMIC_RELEASE);
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
