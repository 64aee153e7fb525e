// Retrying: retries a failing write under a strategy, within a bound, then hands the event to a
// dead-letter sink.
//
// write(event) writes to the destination. On success it returns OK. On a retryable failure
// (Status::is_retryable()) it asks the strategy how long to wait, waits (honouring the failure's
// retry_after() hint, clamped to `max_retry_after`, and the strategy's hold_off()), and tries
// again, until the write succeeds, the bound is reached (`max_attempts` attempts, or `max_elapsed`
// since the first attempt; zero means no bound of that kind), or the sink is closed. A
// non-retryable failure (kRejected, kInvalidArgument...) gives up at once; so does a destination
// write that throws (kRejected, "the destination threw: <what>"): one event that a sink cannot
// handle is dead-lettered with that reason instead of ending the thread. Giving up hands the
// event to `dead_letter` (if set), counts it, and returns the last failure. A write interrupted by
// close() returns kClosed without giving up on the event (the caller still owns it: a Queue counts
// it as undelivered).
//
// While failures are outstanding (none has succeeded since), the first attempt of a write (or of a
// batch) first waits out the strategy's hold_off(), i.e. an open Breaker's remaining cooldown, so
// the next event does not hit an endpoint the breaker has given up on at once; close() interrupts
// that wait too (kClosed, no attempt made). That wait is not a retry: no on_retry, no count.
//
// write_batch(events, results) retries the batch as one unit: a retryable failure retries the whole
// batch (one strategy step per attempt, as for one event), and reaching the bound gives up on every
// event of it. A non-retryable failure of a batch of several events does not give up on them: the
// batch is split and each event is retried on its own (as a batch of one, so the destination's
// format stays the same), so only the events the destination really refuses are given up on. When
// the destination is not a BatchSink, write_batch() is one write() per event. Stats and hooks count
// events, not attempts of a batch: a batch of 10 retried once counts 10 retries; on_retry is called
// once per batch attempt with the batch's first event, on_give_up once per event.
//
// Unlike go-events' RetryingSink: retries are bounded, close() wakes a backoff wait at once and
// closes the destination, and the success path neither allocates nor logs. The lib does not log:
// the on_retry / on_give_up hooks let the embedder do so.
//
// Time comes from an injectable Clock, so tests use FakeClock and never sleep.
//
// Ownership: shares ownership of the destination, the strategy and the dead-letter sink.
// Thread-safety: write(), write_batch() and close() are safe from any thread; concurrent writes
// share the strategy's state (a breaker counts failures across all of them, holds all of them off
// while open, and one success resets it) and wait out their own backoffs independently.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "evroute/batch_sink.h"
#include "evroute/clock.h"

namespace evroute {

// Decides how long to wait after a failure. Called by Retrying under its lock: implementations need
// no synchronization of their own, and must not block.
class RetryStrategy {
 public:
  virtual ~RetryStrategy() = default;
  // A retryable attempt failed at `now`: how long to wait before the next attempt (zero: at once).
  virtual Clock::Duration on_failure(const Status& failure, Clock::TimePoint now) = 0;
  // An attempt succeeded.
  virtual void on_success() = 0;
  // How long any attempt, of any write, must still wait at `now` before it may go (zero: it may go
  // now). Retrying asks before the first attempt of a write while failures are outstanding (since
  // the last success) and again after every backoff wait, so a strategy can hold off writes that
  // have not failed themselves, as go-events asks its breaker before every send. The default holds
  // nothing off: a backoff only delays the retries of the write that failed.
  virtual Clock::Duration hold_off(Clock::TimePoint now) const;
};

// Circuit breaker: after `threshold` consecutive failures (counted across every write) the breaker
// opens: no attempt goes until `cooldown` has passed since the last failure, neither the retry of
// the write that failed nor the first attempt of the next write (after a give-up, or concurrently).
// While open, every further failure waits `cooldown` again. One success closes it.
class Breaker final : public RetryStrategy {
 public:
  Breaker(std::uint32_t threshold, Clock::Duration cooldown);
  Clock::Duration on_failure(const Status& failure, Clock::TimePoint now) override;
  void on_success() override;
  Clock::Duration hold_off(Clock::TimePoint now) const override;
  bool is_open() const { return failures_ >= threshold_; }
  std::uint32_t consecutive_failures() const { return failures_; }

 private:
  const std::uint32_t threshold_;
  const Clock::Duration cooldown_;
  std::uint32_t failures_ = 0;
  Clock::TimePoint open_until_{};  // last failure while open + cooldown
};

// Exponential backoff: after the n-th consecutive failure waits
//   d = min(max, base * factor^(n-1)),  minus a random fraction of up to `jitter` (0..1) of d,
// never less than `base`. With `full_jitter` it waits a uniformly random time in [0, d] instead
// (AWS's "full jitter": clients that failed together spread out the most; `jitter` and the floor at
// `base` do not apply). No overflow however many failures, even with max = Duration::max(): the
// delay saturates at `max` (go-events' limit collapses after ~56). One success resets. `seed` makes
// the jitter reproducible.
class ExponentialBackoff final : public RetryStrategy {
 public:
  struct Options {
    Clock::Duration base = std::chrono::milliseconds(200);
    double factor = 2.0;
    Clock::Duration max = std::chrono::seconds(30);
    double jitter = 0.2;
    std::uint64_t seed = std::random_device{}();
    bool full_jitter = false;
  };
  explicit ExponentialBackoff(Options options);
  // The wait after the `failures`-th failure in a row (1 for the first), its jitter drawn from
  // `random` (64 random bits): what on_failure() returns, from the count alone and with no state,
  // for a caller whose next attempt another process may make (a redelivery). `options` must be
  // valid as the constructor checks them.
  static Clock::Duration delay_for(const Options& options, std::uint32_t failures,
                                   std::uint64_t random);
  Clock::Duration on_failure(const Status& failure, Clock::TimePoint now) override;
  void on_success() override;

 private:
  const Options options_;
  std::uint32_t failures_ = 0;
  std::mt19937_64 rng_;
};

// Asks every strategy and waits for the longest delay (e.g. a backoff plus a breaker); holds off
// for as long as the longest hold_off() of them.
class CombinedStrategy final : public RetryStrategy {
 public:
  explicit CombinedStrategy(std::vector<std::shared_ptr<RetryStrategy>> strategies);
  Clock::Duration on_failure(const Status& failure, Clock::TimePoint now) override;
  void on_success() override;
  Clock::Duration hold_off(Clock::TimePoint now) const override;

 private:
  const std::vector<std::shared_ptr<RetryStrategy>> strategies_;
};

class Retrying final : public BatchSink {
 public:
  struct Options {
    std::uint32_t max_attempts = 8;  // attempts per event, first included; 0 = no bound
    Clock::Duration max_elapsed{0};  // since the first attempt; 0 = no bound
    Clock::Duration max_retry_after = std::chrono::minutes(5);  // clamp on a failure's hint
    std::shared_ptr<Clock> clock{};                             // null: Clock::system()
    std::shared_ptr<Sink> dead_letter{};  // receives events given up on; may be null
    // Called (without locks held) before waiting for a retry, and when giving up on an event.
    std::function<void(const Event&, const Status&, std::uint32_t attempt, Clock::Duration delay)>
        on_retry{};
    std::function<void(const Event&, const Status&, std::uint32_t attempts)> on_give_up{};
  };

  struct Stats {
    std::uint64_t delivered = 0;      // events the destination took
    std::uint64_t retries = 0;        // attempts after the first
    std::uint64_t gave_up = 0;        // events given up on (bound reached, or not retryable)
    std::uint64_t dead_lettered = 0;  // of those, taken by the dead-letter sink
  };

  Retrying(std::shared_ptr<Sink> destination, std::shared_ptr<RetryStrategy> strategy,
           Options options);

  Status write(const Event& event) override;
  Status write_batch(std::span<const Event> events, std::span<Status> results) override;
  Status close() override;
  Stats stats() const;

 private:
  // Attempts `unit` (one event when `results` is empty, else a batch through write_batch_to) until
  // it succeeds, is closed or gives up. With `split_on_reject`, a non-retryable failure returns at
  // once (setting *rejected) instead of giving up.
  Status deliver(std::span<const Event> unit, std::span<Status> results, bool split_on_reject,
                 bool* rejected);
  Status give_up(std::span<const Event> unit, Status last, std::uint32_t attempts);
  // Waits until strategy_->hold_off() lets an attempt go; false when closed first.
  bool wait_for_hold_off();

  const std::shared_ptr<Sink> destination_;
  const std::shared_ptr<RetryStrategy> strategy_;
  const Options options_;
  const std::shared_ptr<Clock> clock_;

  std::mutex mu_;  // guards strategy_ calls and closed_; wake_ waits on it
  std::condition_variable wake_;
  bool closed_ = false;
  std::once_flag close_once_;  // close() runs once; later calls return close_report_
  Status close_report_;
  std::atomic<bool> closed_flag_{false};  // lock-free check on the write path
  // Set (under mu_) by a failure; lets the success path skip locking for strategy_->on_success()
  // when no failure happened since the last success.
  std::atomic<bool> failing_{false};
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> gave_up_{0};
  std::atomic<std::uint64_t> dead_lettered_{0};
};

}  // namespace evroute
