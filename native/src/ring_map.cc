#include "ring_map.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace telegen {

namespace {

std::runtime_error Fail(const char *what) { return std::runtime_error(std::string(what) + ": " + strerror(errno)); }

}  // namespace

RingMap::RingMap(int map_fd, uint64_t size) : size_(size), mask_(size - 1), page_(sysconf(_SC_PAGESIZE)) {
  void *c = mmap(nullptr, page_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (c == MAP_FAILED) throw Fail("mmap ring consumer page");
  cons_ = static_cast<uint64_t *>(c);

  // Address space for producer page + ring + tail first (anonymous, nothing resident), then the
  // producer page and the data area once over its start.
  reserved_len_ = page_ + 2 * size_;
  void *base = mmap(nullptr, reserved_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    munmap(cons_, page_);
    throw Fail("reserve ring address space");
  }
  if (mmap(base, page_ + size_, PROT_READ, MAP_SHARED | MAP_FIXED, map_fd, page_) == MAP_FAILED) {
    int err = errno;
    munmap(base, reserved_len_);
    munmap(cons_, page_);
    errno = err;
    throw Fail("mmap ring data");
  }
  prod_ = static_cast<uint64_t *>(base);
  data_ = static_cast<uint8_t *>(base) + page_;
}

RingMap::~RingMap() {
  if (cons_) munmap(cons_, page_);
  if (prod_ && owns_data_) munmap(prod_, reserved_len_);
}

void *RingMap::TakeDataMapping(size_t *len) {
  *len = reserved_len_;
  owns_data_ = false;
  return prod_;
}

void RingMap::CopyStraddler(uint64_t off, uint64_t total) {
  // The producer cannot overwrite [off, off + total) before Release passes it, so the wrapped
  // part at the ring's start is stable while it is copied.
  size_t wrapped = off + total - size_;
  memcpy(data_ + size_, data_, wrapped);
  if (wrapped > tail_used_) tail_used_ = wrapped;
}

void RingMap::Release(uint64_t pos) {
  __atomic_store_n(cons_, pos, __ATOMIC_RELEASE);
  if (tail_used_) {
    size_t len = (tail_used_ + page_ - 1) & ~(page_ - 1);
    madvise(data_ + size_, len, MADV_DONTNEED);
    tail_used_ = 0;
  }
}

}  // namespace telegen
