// MemoryBudget: a byte limit on the events a process holds, shared by any number of queues.
//
// A producer charges events before it hands them on: try_charge() reserves the events' footprint
// (Event::footprint(): the one allocation holding id, attributes and payload) against the limit,
// all of them or none. A charged event gives its bytes back by itself when its last handle is
// destroyed — whichever queue, sink or thread lets go of it last, and whether it was delivered,
// failed, dropped, dead-lettered or left undelivered at close. So the budget measures real memory:
// an event fanned out to N queues is one allocation and is charged once, not N times.
//
// An event is charged to at most one budget; charging it again (to this budget or another) is a
// no-op. At most 255 budgets may exist at once (the constructor throws std::length_error beyond).
//
// Lifetime: a budget must outlive every event charged to it (destroy the queues first).
//
// Thread-safety: safe for concurrent use; events may be released on any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "evroute/event.h"

namespace evroute {

class MemoryBudget {
 public:
  // limit_bytes == 0: no limit (the budget only counts).
  explicit MemoryBudget(std::size_t limit_bytes);
  ~MemoryBudget();
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Charges every not-yet-charged event in `events` if their footprints fit under the limit
  // together with what is in use; otherwise charges nothing, counts a rejection and returns false.
  bool try_charge(std::span<const Event> events);

  // Bytes that try_charge() would need for `events` (what is not charged yet).
  static std::size_t uncharged_bytes(std::span<const Event> events) noexcept;

  std::size_t limit() const noexcept { return limit_; }
  std::size_t in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  std::uint64_t rejections() const noexcept { return rejections_.load(std::memory_order_relaxed); }

 private:
  friend class Event;
  static void release(std::uint8_t slot, std::size_t bytes) noexcept;  // from Event's release

  const std::size_t limit_;
  const std::uint8_t slot_;  // this budget's index in a process-wide table (1..255)
  std::atomic<std::size_t> in_use_{0};
  std::atomic<std::uint64_t> rejections_{0};
};

}  // namespace evroute
