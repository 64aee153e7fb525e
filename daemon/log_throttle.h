// LogThrottle: "log this at most once a second". Under overload the same warning would otherwise be
// logged once per request (a full queue, a memory limit reached, a failing accept): the caller logs
// only when allow() says so, with a count of what happened since if it keeps one.
//
// Thread-safety: allow() is safe from any thread (one atomic); exactly one of several concurrent
// callers gets true per period.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace evrouted {

class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::nanoseconds period = std::chrono::seconds(1))
      : period_ns_(period.count()) {}

  // True for the first call, then at most once per period (on the steady clock).
  bool allow() {
    const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    std::int64_t last = last_ns_.load(std::memory_order_relaxed);
    if (last != kNever && now - last < period_ns_) return false;
    return last_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed);
  }

 private:
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::min();
  const std::int64_t period_ns_;
  std::atomic<std::int64_t> last_ns_{kNever};
};

}  // namespace evrouted
