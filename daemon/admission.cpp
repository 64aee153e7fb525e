#include "admission.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <utility>
#include <vector>

namespace evrouted {

HttpRefusal http_refusal(Outcome outcome) {
  switch (outcome) {
    case Outcome::kWouldBlock:  // only when the caller could not wait: it should have
      return {503, "1", "the request cannot be admitted now; retry"};
    case Outcome::kReparse:
      return {503, "1", "the configuration is being reloaded; retry"};
    case Outcome::kFull:
    case Outcome::kOverBudget:
      return {503, "1", nullptr};
    case Outcome::kUnavailable:
    case Outcome::kClosed:
      return {503, "5", nullptr};
    case Outcome::kTooLarge:
      return {413, nullptr, nullptr};
    case Outcome::kAccepted:
      break;
  }
  return {202, nullptr, nullptr};
}

namespace {

const Decision kClosed{Outcome::kClosed, "evrouted is shutting down"};
const Decision kWouldBlock{Outcome::kWouldBlock, "the request would wait"};

}  // namespace

bool Admission::stop() {
  std::lock_guard<std::shared_mutex> g(mu_);
  return accepting_.exchange(false);
}

Decision Admission::admit(const Topology& t, std::span<const evroute::Event> events, Wait wait) {
  if (!accepting()) return kClosed;
  const bool may_wait = wait == Wait::kAllowed;
  // A stored queue's write syncs (fsync: always) or may find its storage full: never on a caller
  // that must not wait.
  if (!may_wait && t.has_stored_queue) return kWouldBlock;
  if (Decision d = store(t, events); d.outcome != Outcome::kAccepted) return d;
  if (!t.has_memory_queue) {
    accepted_.fetch_add(events.size(), std::memory_order_relaxed);
    return {};
  }

  if (t.has_blocking_queue && may_wait) {
    // Most of the time every `block` queue has room now: it is claimed as a caller that may not
    // wait claims it, under mu_ shared. Only when it is not does the request wait, exclusively
    // (pool threads took mu_ exclusively for every disk-queued request, and queued up on it).
    if (Decision d = admit_to_memory(t, events, /*may_wait=*/false);
        d.outcome != Outcome::kWouldBlock) {
      return d;
    }
  }
  return admit_to_memory(t, events, may_wait);
}

Decision Admission::admit_to_memory(const Topology& t, std::span<const evroute::Event> events,
                                    bool may_wait) {
  // A request that may wait holds mu_ exclusively while it waits for room in every `block` queue,
  // then writes (whole or nothing). One that must not wait (an event loop) holds it shared instead
  // and claims its room in each such queue (Pipeline::reserved) before it writes, so that
  // concurrent requests never fill a queue past its capacity (a write into a full `block` queue
  // would wait); when the room is not there now it claims nothing and returns kWouldBlock.
  const bool exclusive_admission = t.has_blocking_queue && may_wait;
  std::unique_lock<std::shared_mutex> exclusive(mu_, std::defer_lock);
  std::shared_lock<std::shared_mutex> shared(mu_, std::defer_lock);
  if (exclusive_admission) {
    exclusive.lock();
  } else if (may_wait) {
    shared.lock();
  } else if (!lock_briefly([&] { return shared.try_lock(); })) {
    return kWouldBlock;
  }
  if (!accepting()) return kClosed;

  Claims claims;
  if (t.has_blocking_queue) {
    if (Decision d = make_room(t, events, may_wait, claims); d.outcome != Outcome::kAccepted) {
      return d;
    }
  }
  if (Decision d = charge(events); d.outcome != Outcome::kAccepted) return d;
  // Each queue takes the request's events under one lock and wakes its worker at most once, which
  // then takes them as one batch.
  for (const auto& p : t.pipelines) {
    const evroute::SinkQueue* q = p->queue();
    if (!q || q->stored()) continue;
    if (evroute::Status s = p->accept(events); !s.is_ok() && !s.is_closed()) {
      spdlog::warn("sink '{}': {} event(s) from {}: {}", p->name(), events.size(),
                   events.front().id(), s.to_string());
    }
  }
  accepted_.fetch_add(events.size(), std::memory_order_relaxed);
  return {};
}

Decision Admission::store(const Topology& t, std::span<const evroute::Event> events) {
  if (!t.has_stored_queue) return {};
  for (const auto& p : t.pipelines) {
    const evroute::SinkQueue* q = p->queue();
    if (!q || !q->stored()) continue;
    const evroute::Status s = p->accept(events);
    if (s.is_closed()) return kClosed;
    if (s.code() == evroute::Code::kFull) {
      spdlog::warn("sink '{}': {} queue full ({}); request refused", p->name(),
                   p->queue_kind().name(), s.message());
      return {Outcome::kFull, "sink '" + p->name() + "' " + std::string(p->queue_kind().name()) +
                                  " queue is full; retry later"};
    }
    std::atomic<bool>& failing = p->storage_failing();
    if (!s.is_ok()) {
      // Logged once per failure, not once per refused request (a client may retry every second).
      if (!failing.exchange(true, std::memory_order_relaxed)) {
        spdlog::error("sink '{}': cannot store events, requests are refused until it can: {}",
                      p->name(), s.to_string());
      }
      return {Outcome::kUnavailable, "sink '" + p->name() + "' cannot store events; retry later"};
    }
    if (failing.load(std::memory_order_relaxed) &&
        failing.exchange(false, std::memory_order_relaxed)) {
      spdlog::info("sink '{}': its {} queue stores events again", p->name(),
                   p->queue_kind().name());
    }
  }
  return {};
}

Decision Admission::make_room(const Topology& t, std::span<const evroute::Event> events,
                              bool may_wait, Claims& claims) {
  for (const auto& p : t.pipelines) {
    evroute::SinkQueue* q = p->queue();
    const std::size_t capacity = q ? q->blocking_capacity() : 0;
    if (capacity == 0 || q->stored()) continue;
    const std::size_t n = p->count_matching(events);
    if (n == 0) continue;
    if (n > capacity) {
      return {Outcome::kTooLarge, "batch routes " + std::to_string(n) + " events to sink '" +
                                      p->name() + "', more than its queue capacity (" +
                                      std::to_string(capacity) + ")"};
    }
    if (!may_wait) {
      const std::uint64_t others = p->reserved().fetch_add(n, std::memory_order_relaxed);
      claims.claimed.emplace_back(p.get(), n);
      if (q->pending() + others + n > capacity) return kWouldBlock;
      continue;
    }
    const Duration block = p->config().queue.block_timeout;
    const auto wait = block.count() > 0 ? block : Duration(std::chrono::hours(24 * 365));
    if (!q->wait_for_room(n, std::chrono::steady_clock::now() + wait)) {
      if (!accepting()) return kClosed;
      spdlog::warn("sink '{}': queue full ({} pending); request refused", p->name(), q->pending());
      return {Outcome::kFull, "sink '" + p->name() + "' queue is full; retry later"};
    }
  }
  return {};
}

Decision Admission::charge(std::span<const evroute::Event> events) {
  if (budget_.try_charge(events)) return {};
  const std::size_t need = evroute::MemoryBudget::uncharged_bytes(events);
  if (need > budget_.limit()) {
    return {Outcome::kTooLarge, "request needs " + std::to_string(need) +
                                    " bytes of queue memory, more than limits.memory (" +
                                    std::to_string(budget_.limit()) + ")"};
  }
  if (budget_log_.allow()) {
    spdlog::warn("limits.memory reached ({} of {} bytes in use); refusing requests ({} so far)",
                 budget_.in_use(), budget_.limit(), budget_.rejections());
  }
  return {Outcome::kOverBudget, "evrouted's queue memory limit is reached; retry later"};
}

}  // namespace evrouted
