#include "evroute/rate_limit.h"

#include "deadline.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace evroute {

RateLimited::RateLimited(std::shared_ptr<Sink> destination, Options options)
    : destination_(std::move(destination)),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : Clock::system()),
      tokens_(options_.burst),
      refilled_(clock_->now()) {
  if (!destination_) throw std::invalid_argument("RateLimited: null destination");
  if (!(options_.per_second > 0.0) || !std::isfinite(options_.per_second)) {
    throw std::invalid_argument("RateLimited: per_second must be more than 0");
  }
  if (!(options_.burst >= 1.0) || !std::isfinite(options_.burst)) {
    throw std::invalid_argument("RateLimited: burst must be at least 1");
  }
}

Status RateLimited::acquire(std::size_t n) {
  const double need = std::min(static_cast<double>(n), options_.burst);
  std::unique_lock<std::mutex> lock(mu_);
  bool waited = false;
  for (;;) {
    if (closed_) return Status::closed("rate-limited sink is closed");
    const Clock::TimePoint now = clock_->now();
    if (now > refilled_) {
      const double elapsed = std::chrono::duration<double>(now - refilled_).count();
      tokens_ = std::min(options_.burst, tokens_ + elapsed * options_.per_second);
      refilled_ = now;
    }
    if (tokens_ >= need) break;
    // Sleep until the missing tokens have dripped in (rounded up to a whole nanosecond, so the
    // next look finds them), unless close() comes first. A wait too long for a Duration (a tiny
    // per_second, a large debt) saturates: casting the double would be undefined.
    const double missing_ns = std::ceil((need - tokens_) / options_.per_second * 1e9);
    const Clock::Duration wait =
        missing_ns < 0x1p63 ? Clock::Duration(static_cast<Clock::Duration::rep>(missing_ns))
                            : Clock::Duration::max();
    waited = true;
    if (clock_->wait_until(lock, wake_, internal::saturating_add(now, wait),
                           [this] { return closed_; })) {
      return Status::closed("rate-limited sink closed while throttling");
    }
    stats_.throttled_time += clock_->now() - now;
  }
  tokens_ -= static_cast<double>(n);
  if (waited) ++stats_.throttled;
  return Status::ok();
}

Status RateLimited::write(const Event& event) {
  if (!event) return Status::invalid_argument("empty event");
  if (Status s = acquire(1); !s.is_ok()) return s;
  return destination_->write(event);
}

Status RateLimited::write_batch(std::span<const Event> events, std::span<Status> results) {
  if (Status s = check_batch(events, results); !s.is_ok()) return s;
  if (events.empty()) return Status::ok();
  if (Status s = acquire(events.size()); !s.is_ok()) {
    std::fill(results.begin(), results.end(), s);
    return s;
  }
  return write_batch_to(*destination_, events, results);
}

Status RateLimited::close() {
  std::call_once(close_once_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    wake_.notify_all();
    close_report_ = destination_->close();
  });
  return close_report_;
}

RateLimited::Stats RateLimited::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace evroute
