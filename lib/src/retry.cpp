#include "evroute/retry.h"

#include "deadline.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

namespace evroute {

namespace {

std::uint32_t saturating_increment(std::uint32_t n) { return n == UINT32_MAX ? n : n + 1; }

// now + d without overflowing the clock's range.
Clock::TimePoint deadline_after(Clock::TimePoint now, Clock::Duration d) {
  return internal::saturating_add(now, d);
}

// The failure's retry-after hint, clamped to `max` (compared in milliseconds first, so a huge hint
// cannot overflow the conversion to nanoseconds).
Clock::Duration retry_after_hint(const Status& failure, Clock::Duration max) {
  const std::chrono::milliseconds hint = failure.retry_after();
  if (hint <= std::chrono::milliseconds::zero()) return Clock::Duration::zero();
  if (hint > std::chrono::floor<std::chrono::milliseconds>(max)) return max;
  return hint;
}

// `ns` (not negative, possibly +inf or NaN) as a Duration of at most `max`. A double at or past
// 2^63 does not fit the Duration's rep (casting it is undefined behaviour, and on x86 yields a
// negative count), and need not: it is past any `max`.
Clock::Duration saturating_duration(double ns, Clock::Duration max) {
  if (!(ns < 0x1p63)) return max;
  return std::min(max, Clock::Duration(static_cast<Clock::Duration::rep>(ns)));
}

}  // namespace

Clock::Duration RetryStrategy::hold_off(Clock::TimePoint) const { return Clock::Duration::zero(); }

// ---- Breaker

Breaker::Breaker(std::uint32_t threshold, Clock::Duration cooldown)
    : threshold_(threshold), cooldown_(cooldown) {}

Clock::Duration Breaker::on_failure(const Status&, Clock::TimePoint now) {
  failures_ = saturating_increment(failures_);
  if (!is_open()) return Clock::Duration::zero();
  open_until_ = deadline_after(now, cooldown_);
  return cooldown_;
}

void Breaker::on_success() {
  failures_ = 0;
  open_until_ = Clock::TimePoint();
}

Clock::Duration Breaker::hold_off(Clock::TimePoint now) const {
  return is_open() && open_until_ > now ? open_until_ - now : Clock::Duration::zero();
}

// ---- ExponentialBackoff

ExponentialBackoff::ExponentialBackoff(Options options) : options_(options), rng_(options.seed) {
  if (options_.base < Clock::Duration::zero()) {
    throw std::invalid_argument("ExponentialBackoff: base must not be negative");
  }
  if (options_.max < options_.base) {
    throw std::invalid_argument("ExponentialBackoff: max must not be less than base");
  }
  if (!(options_.factor >= 1.0)) {
    throw std::invalid_argument("ExponentialBackoff: factor must be at least 1");
  }
  if (!(options_.jitter >= 0.0 && options_.jitter <= 1.0)) {
    throw std::invalid_argument("ExponentialBackoff: jitter must be within [0, 1]");
  }
}

Clock::Duration ExponentialBackoff::on_failure(const Status&, Clock::TimePoint) {
  failures_ = saturating_increment(failures_);
  return delay_for(options_, failures_, rng_());
}

Clock::Duration ExponentialBackoff::delay_for(const Options& options, std::uint32_t failures,
                                              std::uint64_t random) {
  failures = std::max<std::uint32_t>(failures, 1);
  // In double, then clamped: factor^n overflows to +inf long before failures_ does, and
  // min(max, inf) is max. (A base of 0 stays 0: 0 * inf would be NaN.) The conversion back
  // saturates too: max itself may be Duration::max(), which a double rounds up past the rep's
  // range.
  const double base = static_cast<double>(options.base.count());
  const double max = static_cast<double>(options.max.count());
  double d = base == 0.0 ? 0.0 : std::min(max, base * std::pow(options.factor, failures - 1));
  const auto bits = static_cast<double>(random >> 11);  // 53 random bits: portable
  if (options.full_jitter) {
    const double u = bits / 0x1.fffffffffffffp52;  // [0, 1]: the full delay d is possible
    return saturating_duration(d * u, options.max);
  }
  if (options.jitter > 0.0) {
    const double u = bits * 0x1.0p-53;  // [0, 1)
    d -= d * options.jitter * u;
  }
  return std::max(options.base, saturating_duration(d, options.max));
}

void ExponentialBackoff::on_success() { failures_ = 0; }

// ---- CombinedStrategy

CombinedStrategy::CombinedStrategy(std::vector<std::shared_ptr<RetryStrategy>> strategies)
    : strategies_(std::move(strategies)) {
  for (const auto& s : strategies_) {
    if (!s) throw std::invalid_argument("CombinedStrategy: null strategy");
  }
}

Clock::Duration CombinedStrategy::on_failure(const Status& failure, Clock::TimePoint now) {
  Clock::Duration delay = Clock::Duration::zero();
  for (const auto& s : strategies_) delay = std::max(delay, s->on_failure(failure, now));
  return delay;
}

void CombinedStrategy::on_success() {
  for (const auto& s : strategies_) s->on_success();
}

Clock::Duration CombinedStrategy::hold_off(Clock::TimePoint now) const {
  Clock::Duration wait = Clock::Duration::zero();
  for (const auto& s : strategies_) wait = std::max(wait, s->hold_off(now));
  return wait;
}

// ---- Retrying

Retrying::Retrying(std::shared_ptr<Sink> destination, std::shared_ptr<RetryStrategy> strategy,
                   Options options)
    : destination_(std::move(destination)),
      strategy_(std::move(strategy)),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : Clock::system()) {
  if (!destination_) throw std::invalid_argument("Retrying: null destination");
  if (!strategy_) throw std::invalid_argument("Retrying: null strategy");
}

Status Retrying::write(const Event& event) {
  if (!event) return Status::invalid_argument("empty event");
  if (closed_flag_.load(std::memory_order_acquire))
    return Status::closed("retrying sink is closed");
  return deliver(std::span<const Event>(&event, 1), {}, false, nullptr);
}

Status Retrying::write_batch(std::span<const Event> events, std::span<Status> results) {
  if (Status s = check_batch(events, results); !s.is_ok()) return s;
  if (events.empty()) return Status::ok();
  if (closed_flag_.load(std::memory_order_acquire) || !destination_->as_batch_sink()) {
    Status first;  // closed: every write() says so at once; no BatchSink: one write() each
    for (std::size_t i = 0; i < events.size(); ++i) {
      results[i] = write(events[i]);
      if (first.is_ok() && !results[i].is_ok()) first = results[i];
    }
    return first;
  }
  bool rejected = false;
  Status status = deliver(events, results, events.size() > 1, &rejected);
  if (!rejected) {
    std::fill(results.begin(), results.end(), status);
    return status;
  }
  // Refused as a whole: find out which events the destination refuses, one at a time.
  Status first;
  for (std::size_t i = 0; i < events.size(); ++i) {
    results[i] = deliver(events.subspan(i, 1), results.subspan(i, 1), false, nullptr);
    if (first.is_ok() && !results[i].is_ok()) first = results[i];
  }
  return first;
}

Status Retrying::deliver(std::span<const Event> unit, std::span<Status> results,
                         bool split_on_reject, bool* rejected) {
  // An open breaker holds off this write's first attempt too (go-events asks its breaker before
  // every send). Only while failures are outstanding: the success path takes no lock for it.
  if (failing_.load(std::memory_order_relaxed) && !wait_for_hold_off()) {
    return Status::closed("retrying sink closed while the breaker held the write back");
  }
  // The clock is read only when a time bound needs it: the success path stays a single write.
  const bool time_bound = options_.max_elapsed > Clock::Duration::zero();
  const Clock::TimePoint start = time_bound ? clock_->now() : Clock::TimePoint();
  // A destination that throws fails this attempt, not the worker thread that called it: one event
  // must not take down every event behind it (try costs nothing on the path without a throw).
  auto attempt = [&]() -> Status {
    try {
      return results.empty() ? destination_->write(unit[0])
                             : write_batch_to(*destination_, unit, results);
    } catch (const std::exception& e) {
      return Status::rejected(std::string("the destination threw: ") + e.what());
    } catch (...) {
      return Status::rejected("the destination threw an exception");
    }
  };

  Status status = attempt();
  std::uint32_t attempt_no = 1;
  while (!status.is_ok()) {
    if (status.is_closed()) return status;
    if (!status.is_retryable()) {
      if (split_on_reject) {
        *rejected = true;
        return status;
      }
      return give_up(unit, std::move(status), attempt_no);
    }

    // Every retryable failure reaches the strategy, the last one too: a breaker counts failures
    // of the destination, not of one event.
    Clock::Duration delay;
    Clock::TimePoint deadline;
    bool out_of_time;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return Status::closed("retrying sink closed while retrying");
      const Clock::TimePoint now = clock_->now();
      delay = strategy_->on_failure(status, now);
      failing_.store(true, std::memory_order_relaxed);
      delay = std::max(
          {delay, retry_after_hint(status, options_.max_retry_after), Clock::Duration::zero()});
      deadline = deadline_after(now, delay);
      // Give up now rather than wait for an attempt the time bound would not allow.
      out_of_time = time_bound && deadline - start >= options_.max_elapsed;
    }
    if (out_of_time || (options_.max_attempts != 0 && attempt_no >= options_.max_attempts)) {
      return give_up(unit, std::move(status), attempt_no);
    }
    if (options_.on_retry) options_.on_retry(unit[0], status, attempt_no, delay);

    if (delay > Clock::Duration::zero()) {
      std::unique_lock<std::mutex> lock(mu_);
      if (clock_->wait_until(lock, wake_, deadline, [this] { return closed_; })) {
        return Status::closed("retrying sink closed while waiting to retry");
      }
    } else if (closed_flag_.load(std::memory_order_acquire)) {
      return Status::closed("retrying sink closed while retrying");
    }
    // Another write's failure may have (re)opened the breaker while this one waited.
    if (!wait_for_hold_off()) return Status::closed("retrying sink closed while waiting to retry");
    retries_.fetch_add(unit.size(), std::memory_order_relaxed);
    ++attempt_no;
    status = attempt();
  }

  delivered_.fetch_add(unit.size(), std::memory_order_relaxed);
  if (failing_.load(std::memory_order_relaxed)) [[unlikely]] {
    std::lock_guard<std::mutex> lock(mu_);
    failing_.store(false, std::memory_order_relaxed);
    strategy_->on_success();
  }
  return Status::ok();
}

bool Retrying::wait_for_hold_off() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (closed_) return false;
    const Clock::TimePoint now = clock_->now();
    const Clock::Duration wait = strategy_->hold_off(now);
    if (wait <= Clock::Duration::zero()) return true;
    if (clock_->wait_until(lock, wake_, deadline_after(now, wait), [this] { return closed_; })) {
      return false;
    }
  }
}

Status Retrying::give_up(std::span<const Event> unit, Status last, std::uint32_t attempts) {
  for (const Event& event : unit) {
    gave_up_.fetch_add(1, std::memory_order_relaxed);
    if (options_.dead_letter && options_.dead_letter->write(event).is_ok()) {
      dead_lettered_.fetch_add(1, std::memory_order_relaxed);
    }
    if (options_.on_give_up) options_.on_give_up(event, last, attempts);
  }
  const std::chrono::milliseconds retry_after = last.retry_after();
  return Status(last.code(), "gave up after " + std::to_string(attempts) +
                                 (attempts == 1 ? " attempt: " : " attempts: ") + last.message())
      .with_retry_after(retry_after);
}

Status Retrying::close() {
  std::call_once(close_once_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      closed_flag_.store(true, std::memory_order_release);
    }
    wake_.notify_all();  // closed_ was set under mu_, so no waiter can miss this
    close_report_ = destination_->close();
  });
  return close_report_;
}

Retrying::Stats Retrying::stats() const {
  return Stats{delivered_.load(std::memory_order_relaxed), retries_.load(std::memory_order_relaxed),
               gave_up_.load(std::memory_order_relaxed),
               dead_lettered_.load(std::memory_order_relaxed)};
}

}  // namespace evroute
