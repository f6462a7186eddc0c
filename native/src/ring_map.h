// A BPF ring buffer mapped into this process with its data area once.
//
// The kernel lets a consumer map the data pages twice in a row (libbpf does), so a record that
// wraps around the end reads contiguously. Every page of a ringbuf mapping is resident from
// mmap on, so the second copy added the whole ring size to the agent's RSS again (16 MiB for
// the socket ring). Here the data area is mapped once and followed by private anonymous
// address space of the same size: a record that straddles the end has its wrapped part copied
// there before anyone reads it, so it is still contiguous at its ring offset, and those pages
// are handed back once the consumer has moved past the record. Offsets are the same as with the
// double mapping: [0, size) is the ring, [size, 2 * size) holds at most one straddler's tail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace telegen {

class RingMap {
 public:
  // Maps the ringbuf map `map_fd` of `size` bytes (a power of two, a multiple of the page).
  // Throws std::runtime_error naming the failed step.
  RingMap(int map_fd, uint64_t size);
  ~RingMap();
  RingMap(const RingMap &) = delete;
  RingMap &operator=(const RingMap &) = delete;

  uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }
  // The reserved range (producer page, ring, tail) for whoever unmaps it later: the destructor
  // then leaves it mapped (the zero-copy reader's JS view owns it and may outlive this).
  void *TakeDataMapping(size_t *len);

  uint64_t Consumer() const { return __atomic_load_n(cons_, __ATOMIC_ACQUIRE); }
  uint64_t Producer() const { return __atomic_load_n(prod_, __ATOMIC_ACQUIRE); }
  // Lets the kernel reuse everything before `pos`; gives the tail pages back if a straddler
  // used them (nothing can read that copy any more).
  void Release(uint64_t pos);

  // Visits committed records from position `from`, at most `max` of them and while `visit`
  // returns true; discarded records are skipped without a visit. `visit(offset, len)` gets the
  // payload's offset in data() (contiguous even across the end) and its length. Returns the
  // position after the last record passed (== from when none).
  template <typename F>
  uint64_t Walk(uint64_t from, uint64_t to, uint32_t max, F &&visit);

 private:
  void CopyStraddler(uint64_t off, uint64_t total);

  uint64_t size_;
  uint64_t mask_;
  size_t page_;
  uint64_t *cons_ = nullptr;  // consumer page, RW
  uint64_t *prod_ = nullptr;  // producer page, start of the reserved range
  uint8_t *data_ = nullptr;
  size_t reserved_len_ = 0;
  bool owns_data_ = true;
  size_t tail_used_ = 0;      // bytes of the tail a straddler's copy touched
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
    uint32_t len = __atomic_load_n(reinterpret_cast<uint32_t *>(data_ + off), __ATOMIC_ACQUIRE);
    if (len & kRingBusyBit) break;  // reserved but not yet committed: stop in order
    uint32_t dlen = len & ~(kRingBusyBit | kRingDiscardBit);
    uint64_t total = (static_cast<uint64_t>(dlen) + kRingHdrSz + 7) & ~7ULL;
    if (!(len & kRingDiscardBit)) {
      if (off + kRingHdrSz + dlen > size_) CopyStraddler(off, kRingHdrSz + dlen);
      if (!visit(off + kRingHdrSz, dlen)) break;
      n++;
    }
    pos += total;
  }
  return pos;
}

}  // namespace telegen
