// A BPF ring buffer mapped into this process a window at a time.
//
// Every page of a ringbuf mapping is resident from mmap on, and libbpf maps the data area twice
// in a row (so a record that wraps around the end reads contiguously): the socket ring's 16 MiB
// counted 32 MiB in the agent's RSS whatever the traffic. Here address space for the same
// layout is reserved (producer page, then the data area twice), but only the producer page and
// the chunks that hold records not yet released are mapped from the ring; the rest is private
// anonymous memory nobody writes, which reads as zeros and is not resident. A record that wraps
// is read through the second copy's chunks, as with the double mapping, so offsets are the same:
// [0, size) is the ring, [size, 2 * size) only ever holds a wrapping record's continuation.
// The kernel memory of the ring is allocated whether mapped or not: this changes what the
// agent's RSS counts (and what a stale view could read), not what the ring costs the machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace telegen {

class RingMap {
 public:
  // Maps the ringbuf map `map_fd` of `size` bytes (a power of two, a multiple of the page); the
  // fd is duplicated, the caller keeps its own. Throws std::runtime_error naming the failed step.
  RingMap(int map_fd, uint64_t size);
  ~RingMap();
  RingMap(const RingMap &) = delete;
  RingMap &operator=(const RingMap &) = delete;

  uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }
  uint64_t chunk() const { return chunk_; }
  int fd() const { return fd_; }
  // The reserved range for whoever unmaps it later: the destructor then leaves it mapped (the
  // zero-copy reader's JS view owns it and may outlive this).
  void *TakeDataMapping(size_t *len);

  uint64_t Consumer() const { return __atomic_load_n(cons_, __ATOMIC_ACQUIRE); }
  uint64_t Producer() const { return __atomic_load_n(prod_, __ATOMIC_ACQUIRE); }
  // Lets the kernel reuse everything before `pos`; the chunks nothing unread is in are blanked
  // once more than a few of them are (every mmap here costs a TLB shootdown on each CPU that
  // runs a thread of the process). Records before `pos` may read zeros afterwards.
  void Release(uint64_t pos);

  // Visits committed records from position `from` up to `to`, at most `max` of them and while
  // `visit` returns true (false leaves that record unread); discarded records are skipped.
  // `visit(offset, len)` gets the payload's offset in data(), mapped and contiguous even across
  // the end, and its length. Returns the position after the last record passed.
  template <typename F>
  uint64_t Walk(uint64_t from, uint64_t to, uint32_t max, F &&visit);

 private:
  // Maps every chunk of [begin, end) (offsets in the doubled area) not mapped yet; false when
  // the kernel refused one (the walk stops there and the next one tries again).
  bool Ensure(uint64_t begin, uint64_t end) {
    for (uint64_t c = begin / chunk_; c <= (end - 1) / chunk_; c++)
      if (!mapped_[c] && !MapRun(c)) return false;
    return true;
  }
  // Maps chunk c and the unmapped ones after it, up to ahead_ chunks, in one mmap.
  bool MapRun(uint64_t c);

  uint32_t ahead_;  // chunks mapped per mmap
  uint32_t spare_;  // released chunks left mapped before they are blanked, all at once

  int fd_ = -1;
  uint64_t size_;
  uint64_t mask_;
  uint64_t chunk_;
  size_t page_;
  uint64_t *cons_ = nullptr;  // consumer page, RW
  uint64_t *prod_ = nullptr;  // producer page, start of the reserved range
  uint8_t *data_ = nullptr;
  size_t reserved_len_ = 0;
  bool owns_data_ = true;
  std::vector<bool> mapped_;  // per chunk of the doubled area
  std::vector<uint32_t> live_;  // the chunks mapped now
  std::vector<uint32_t> released_;  // scratch of Release(): the chunks to blank
};

// Header layout of a ringbuf record (uapi linux/bpf.h): u32 len with busy/discard bits, u32 pgoff.
constexpr uint32_t kRingBusyBit = 1U << 31;
constexpr uint32_t kRingDiscardBit = 1U << 30;
constexpr uint32_t kRingHdrSz = 8;

template <typename F>
uint64_t RingMap::Walk(uint64_t from, uint64_t to, uint32_t max, F &&visit) {
  uint64_t pos = from;
  uint32_t n = 0;
  while (pos < to && n < max) {
    uint64_t off = pos & mask_;
    if (!Ensure(off, off + kRingHdrSz)) break;  // 8-aligned: a header never wraps
    uint32_t len = __atomic_load_n(reinterpret_cast<uint32_t *>(data_ + off), __ATOMIC_ACQUIRE);
    if (len & kRingBusyBit) break;  // reserved but not yet committed: stop in order
    uint32_t dlen = len & ~(kRingBusyBit | kRingDiscardBit);
    uint64_t total = (static_cast<uint64_t>(dlen) + kRingHdrSz + 7) & ~7ULL;
    if (!(len & kRingDiscardBit)) {
      if (dlen && !Ensure(off, off + kRingHdrSz + dlen)) break;
      if (!visit(off + kRingHdrSz, dlen)) break;
      n++;
    }
    pos += total;
  }
  return pos;
}

}  // namespace telegen
