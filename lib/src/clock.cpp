#include "evroute/clock.h"

namespace evroute {

std::shared_ptr<Clock> Clock::system() {
  static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

Clock::TimePoint SystemClock::now() { return std::chrono::steady_clock::now(); }

bool SystemClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                             TimePoint deadline, const std::function<bool()>& pred) {
  return cv.wait_until(lock, deadline, pred);
}

Clock::TimePoint FakeClock::now() {
  std::lock_guard<std::mutex> g(mu_);
  return now_;
}

bool FakeClock::wait_until(std::unique_lock<std::mutex>&, std::condition_variable&,
                           TimePoint deadline, const std::function<bool()>& pred) {
  if (pred()) return true;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (deadline > now_) {
      sleeps_.push_back(deadline - now_);
      now_ = deadline;
    }
  }
  return pred();
}

void FakeClock::advance(Duration d) {
  std::lock_guard<std::mutex> g(mu_);
  now_ += d;
}

std::vector<Clock::Duration> FakeClock::sleeps() const {
  std::lock_guard<std::mutex> g(mu_);
  return sleeps_;
}

}  // namespace evroute
