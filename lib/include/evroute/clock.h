// Clock: the source of time for components whose behaviour depends on it (retry backoff, breaker
// cooldown), replaceable in tests so that they never sleep.
//
// wait_until() is how components sleep: it waits on the caller's condition variable until `pred`
// holds or the clock reaches `deadline`, so a sleeping component can always be woken (e.g. by
// close()). SystemClock does this with std::chrono::steady_clock. FakeClock never blocks on time:
// when a waiter would have to sleep, time jumps straight to the deadline, and the wait is recorded,
// so a test can assert the exact delays a component chose.
//
// Thread-safety: both clocks are safe for concurrent use.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace evroute {

class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

  virtual ~Clock() = default;
  virtual TimePoint now() = 0;
  // Waits (lock held on entry and exit) until pred() is true or deadline is reached.
  // Returns pred()'s final value.
  virtual bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          TimePoint deadline, const std::function<bool()>& pred) = 0;

  // The process-wide steady clock.
  static std::shared_ptr<Clock> system();
};

class SystemClock final : public Clock {
 public:
  TimePoint now() override;
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  TimePoint deadline, const std::function<bool()>& pred) override;
};

class FakeClock final : public Clock {
 public:
  TimePoint now() override;
  // If pred() is false and deadline is in the future, advances time to deadline (recording the
  // sleep) instead of blocking; returns pred().
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  TimePoint deadline, const std::function<bool()>& pred) override;

  void advance(Duration d);
  // Every sleep a waiter took, in order.
  std::vector<Duration> sleeps() const;

 private:
  mutable std::mutex mu_;
  TimePoint now_{};
  std::vector<Duration> sleeps_;
};

}  // namespace evroute
