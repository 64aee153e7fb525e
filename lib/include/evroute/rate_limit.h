// RateLimited: holds writes back so that its destination sees at most `per_second` events per
// second on average, with bursts of at most `burst` events (a token bucket).
//
// The bucket holds up to `burst` tokens and starts full; it refills at `per_second` tokens per
// second. write() waits until a token is there, takes it and writes. write_batch() of n events
// waits until min(n, burst) tokens are there and takes n: a batch larger than the burst goes out
// whole and leaves the bucket in debt, which later writes wait out. So over any window of T
// seconds the destination gets at most max(burst, largest batch) + per_second * T events. Every
// attempt counts (put it behind Retrying: retries are paced too).
//
// close() wakes every waiting write at once (it returns kClosed), closes the destination and
// returns what the destination's close() returned (later calls return it again, see sink.h). Waits
// use the injectable Clock, so tests use FakeClock and never sleep.
//
// stats() reports how many writes had to wait and the total time they waited (summed over
// concurrent writers).
//
// Ownership: shares ownership of the destination and the clock.
// Thread-safety: write(), write_batch(), close() and stats() are safe from any thread; concurrent
// writers take tokens in no particular order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "evroute/batch_sink.h"
#include "evroute/clock.h"

namespace evroute {

class RateLimited final : public BatchSink {
 public:
  struct Options {
    double per_second = 1.0;         // > 0
    double burst = 1.0;              // >= 1: tokens the bucket holds (and starts with)
    std::shared_ptr<Clock> clock{};  // null: Clock::system()
  };
  struct Stats {
    std::uint64_t throttled = 0;        // writes that had to wait for tokens
    Clock::Duration throttled_time{0};  // time they spent waiting, summed
  };

  // Throws std::invalid_argument on a null destination or out-of-range options.
  RateLimited(std::shared_ptr<Sink> destination, Options options);

  Status write(const Event& event) override;
  Status write_batch(std::span<const Event> events, std::span<Status> results) override;
  Status close() override;
  Stats stats() const;

 private:
  Status acquire(std::size_t n);  // waits for tokens; kClosed when closed meanwhile

  const std::shared_ptr<Sink> destination_;
  const Options options_;
  const std::shared_ptr<Clock> clock_;

  mutable std::mutex mu_;
  std::condition_variable wake_;  // close() wakes waiters
  bool closed_ = false;
  std::once_flag close_once_;  // close() runs once; later calls return close_report_
  Status close_report_;
  double tokens_;              // may go below zero after a batch larger than the burst
  Clock::TimePoint refilled_;  // when tokens_ was last brought up to date
  Stats stats_;
};

}  // namespace evroute
