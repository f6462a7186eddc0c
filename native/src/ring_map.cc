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
// Each mmap that replaces a mapping flushes the TLB of every CPU running a thread of this process
// (an IPI each; ~0.1-0.4 ms of the reader's CPU per call on this 2-vCPU VM, about 1% of a core at
// 1k req/s with a call per 64 KiB chunk and another per release): chunks are mapped several at
// a time and released ones blanked together once there are a few, fewer calls for a window
// that is still well under 1 MiB of a 16 MiB ring.
constexpr uint64_t kAheadBytes = 256 * 1024;
constexpr uint64_t kSpareBytes = 512 * 1024;

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
  // At most an eighth of a small ring either way, so its window stays a fraction of it too.
  ahead_ = static_cast<uint32_t>(std::max<uint64_t>(1, std::min(kAheadBytes, size_ / 8) / chunk_));
  spare_ = static_cast<uint32_t>(std::min(kSpareBytes, size_ / 8) / chunk_);
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

bool RingMap::MapRun(uint64_t c) {
  uint64_t n = 1;
  while (n < ahead_ && c + n < mapped_.size() && !mapped_[c + n]) n++;
  // The data area starts one page after the producer page in the map's offsets, twice over, so
  // consecutive chunks are consecutive offsets across the end of the first copy as well.
  while (mmap(data_ + c * chunk_, n * chunk_, PROT_READ, MAP_SHARED | MAP_FIXED, fd_, 2 * page_ + c * chunk_) == MAP_FAILED) {
    if (n == 1) return false;
    n = 1;
  }
  for (uint64_t i = c; i < c + n; i++) {
    mapped_[i] = true;
    live_.push_back(static_cast<uint32_t>(i));
  }
  return true;
}

void RingMap::Release(uint64_t pos) {
  __atomic_store_n(cons_, pos, __ATOMIC_RELEASE);
  // The next read starts in pos's chunk and goes on into the ahead_ chunks after it (first
  // copy); every other mapped chunk only holds released records (a wrapped record's
  // continuation, or what came before pos).
  const uint64_t first = size_ / chunk_;
  const uint64_t keep = (pos & mask_) / chunk_;
  released_.clear();
  for (uint32_t c : live_)
    if (c >= first || (c - keep + first) % first > ahead_) released_.push_back(c);
  if (released_.size() <= spare_) return;
  std::sort(released_.begin(), released_.end());
  for (size_t i = 0; i < released_.size();) {
    size_t j = i + 1;
    while (j < released_.size() && released_[j] == released_[j - 1] + 1) j++;
    // Replaced, not unmapped: the reserved range stays ours and a stale read sees zeros.
    if (Blank(data_ + uint64_t(released_[i]) * chunk_, (j - i) * chunk_) != MAP_FAILED)
      for (size_t k = i; k < j; k++) mapped_[released_[k]] = false;
    i = j;
  }
  size_t w = 0;
  for (uint32_t c : live_)
    if (mapped_[c]) live_[w++] = c;
  live_.resize(w);
}

}  // namespace telegen
