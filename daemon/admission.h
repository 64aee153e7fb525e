// Admission: whether evrouted acknowledges a request's events — all of them or none.
//
// admit() takes a request's events into every pipeline of a topology, in two steps:
//  1. Stored queues first (a disk queue...): each takes the events its sink's filter matches with
//     one write_all (one write and, with fsync: always, one fsync shared with concurrent requests —
//     group commit), outside the admission lock. So a 202 means: stored for every sink with a
//     stored queue, queued in memory for the others. A request refused after a stored queue took it
//     (a later sink was full) may still be delivered to that sink: resending it is safe when events
//     carry their own ids (receivers deduplicate on webhook-id).
//  2. Memory queues: for every queue whose writers wait for room when it is full (a `block`
//     queue), it first waits (up to that sink's block_timeout) for room for all the events routed
//     to it; only when every such queue has room are the events written. When some queue blocks,
//     admission is serialized (an exclusive lock), which makes "check for room, then write" atomic;
//     otherwise requests are admitted concurrently (a shared lock), each claiming its room in the
//     `block` queues first (a request that may wait tries that first too, and waits only when
//     the room is not there). Drop policies (drop_newest, drop_oldest) never refuse: they count.
//
// Memory: every admitted event is charged to one MemoryBudget of `limits.memory` bytes (see
// evroute/budget.h: an event fanned out to N sinks is one allocation, charged once, released when
// the last queue is done with it). A request whose events do not fit in what is left of it is
// refused whole (kOverBudget) after the queue checks; one that could never fit gets kTooLarge.
// Events already admitted are never dropped for it.
//
// Disk errors: when a stored queue cannot store a request's events (ENOSPC, EIO, a failed fsync),
// the request is refused (kUnavailable) and nothing of it is acknowledged; the queue recovers by
// itself once its storage takes writes again. The failure and the recovery are logged once each.
//
// Wait::kNever (an event-loop thread): admit() never waits — not for a stored queue's write, not
// for room, not for a lock held by a request that waits: it returns kWouldBlock having admitted
// nothing, and the caller admits again from a thread that may wait.
//
// stop() refuses every later request (kClosed) and returns once no request is being admitted, so
// a request is either admitted whole before the queues close or refused.
//
// Thread-safety: every member from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "evroute/budget.h"
#include "evroute/event.h"
#include "log_throttle.h"
#include "topology.h"

namespace evrouted {

enum class Outcome {
  kAccepted,
  kFull,         // a blocking queue stayed full past its block_timeout
  kTooLarge,     // more events for one sink than its queue can ever hold, or more bytes than
                 // limits.memory
  kClosed,       // shutting down
  kOverBudget,   // the events do not fit in what limits.memory has left now
  kUnavailable,  // a stored queue could not store the events (I/O error)
  kReparse,      // a reload changed the attribute fields: parse the request again and admit again
  kWouldBlock,   // Wait::kNever, and admitting would wait: nothing was admitted
};

struct Decision {
  Outcome outcome = Outcome::kAccepted;
  std::string message;
};

// The HTTP answer to an outcome other than kAccepted (202): the one table of them.
struct HttpRefusal {
  int status;               // 503 or 413
  const char* retry_after;  // the Retry-After header's value; null: none
  const char* message;      // the answer's message; null: the Decision's own
};
HttpRefusal http_refusal(Outcome outcome);

// Whether admit() may wait (see the header comment).
enum class Wait { kAllowed, kNever };

// Takes a lock through `try_lock` without waiting for long: a holder on the fast path lets go
// within microseconds, one that waits for room may hold it for a block_timeout.
template <typename TryLock>
bool lock_briefly(TryLock try_lock) {
  for (int i = 0; i < 200; ++i) {
    if (try_lock()) return true;
    if (i >= 20) std::this_thread::yield();
  }
  return false;
}

class Admission {
 public:
  explicit Admission(std::uint64_t memory_limit) : budget_(memory_limit) {}

  Decision admit(const Topology& t, std::span<const evroute::Event> events, Wait wait);
  // See the header comment. Returns false when it was stopped already.
  bool stop();
  bool accepting() const { return accepting_.load(std::memory_order_acquire); }

  std::uint64_t events_accepted() const { return accepted_.load(std::memory_order_relaxed); }
  // limits.memory: bytes in use, the limit (0: none), and requests refused for it.
  const evroute::MemoryBudget& memory() const { return budget_; }

 private:
  Decision store(const Topology& t, std::span<const evroute::Event> events);
  // Waits for (kAllowed) or claims (kNever) room in every `block` queue; `claims` gets what was
  // claimed, to give back once the events are written.
  struct Claims {
    std::vector<std::pair<Pipeline*, std::uint64_t>> claimed;
    ~Claims() {
      for (auto [p, n] : claimed) p->reserved().fetch_sub(n, std::memory_order_relaxed);
    }
  };
  // Step 2 of admit(), for the memory queues.
  Decision admit_to_memory(const Topology& t, std::span<const evroute::Event> events,
                           bool may_wait);
  Decision make_room(const Topology& t, std::span<const evroute::Event> events, bool may_wait,
                     Claims& claims);
  Decision charge(std::span<const evroute::Event> events);

  evroute::MemoryBudget budget_;  // declared first: outlives the queues holding charged events
  LogThrottle budget_log_;        // "limits.memory reached", at most once a second
  std::shared_mutex mu_;          // exclusive: a request waiting for room, or stop()
  std::atomic<bool> accepting_{true};
  std::atomic<std::uint64_t> accepted_{0};
};

}  // namespace evrouted
