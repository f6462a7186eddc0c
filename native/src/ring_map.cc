#include "ring_map.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace telegen {

namespace {

std::runtime_error Fail(const char *what) { return std::runtime_error(std::string(what) + ": " + strerror(errno)); }

// Chunks small enough that the window stays a sliver of a large ring, large enough that a
// steady trickle maps one every few hundred records.
constexpr uint64_t kMaxChunk = 64 * 1024;

void *Blank(void *addr, size_t len) {
  return mmap(addr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

}  // namespace

RingMap::RingMap(int map_fd, uint64_t size) : size_(size), mask_(size - 1), page_(sysconf(_SC_PAGESIZE)) {
  chunk_ = std::max<uint64_t>(page_, std::min<uint64_t>(size_ / 8, kMaxChunk));
  fd_ = fcntl(map_fd, F_DUPFD_CLOEXEC, 0);
  if (fd_ < 0) throw Fail("dup ring fd");
  void *c = mmap(nullptr, page_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (c == MAP_FAILED) {
    int err = errno;
    close(fd_);
    errno = err;
    throw Fail("mmap ring consumer page");
  }
  cons_ = static_cast<uint64_t *>(c);
  reserved_len_ = page_ + 2 * size_;
  void *base = mmap(nullptr, reserved_len_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED || mmap(base, page_, PROT_READ, MAP_SHARED | MAP_FIXED, fd_, page_) == MAP_FAILED) {
    int err = errno;
    if (base != MAP_FAILED) munmap(base, reserved_len_);
    munmap(cons_, page_);
    close(fd_);
    errno = err;
    throw Fail("mmap ring producer page");
  }
  prod_ = static_cast<uint64_t *>(base);
  data_ = static_cast<uint8_t *>(base) + page_;
  mapped_.assign(2 * size_ / chunk_, false);
}

RingMap::~RingMap() {
  munmap(cons_, page_);
  if (owns_data_) munmap(prod_, reserved_len_);
  close(fd_);
}

void *RingMap::TakeDataMapping(size_t *len) {
  *len = reserved_len_;
  owns_data_ = false;
  return prod_;
}

bool RingMap::MapChunk(uint64_t c) {
  // The data area starts one page after the producer page in the map's offsets, twice over.
  if (mmap(data_ + c * chunk_, chunk_, PROT_READ, MAP_SHARED | MAP_FIXED, fd_, 2 * page_ + c * chunk_) == MAP_FAILED)
    return false;
  mapped_[c] = true;
  live_.push_back(static_cast<uint32_t>(c));
  return true;
}

void RingMap::Release(uint64_t pos) {
  __atomic_store_n(cons_, pos, __ATOMIC_RELEASE);
  // The next read starts in pos's chunk: every other mapped chunk only holds released records
  // (a wrapped record's continuation, or what came before pos).
  uint64_t keep = (pos & mask_) / chunk_;
  size_t w = 0;
  for (uint32_t c : live_) {
    if (c == keep) { live_[w++] = c; continue; }
    // Replaced, not unmapped: the reserved range stays ours and a stale read sees zeros.
    if (Blank(data_ + c * chunk_, chunk_) == MAP_FAILED) { live_[w++] = c; continue; }
    mapped_[c] = false;
  }
  live_.resize(w);
}

}  // namespace telegen
