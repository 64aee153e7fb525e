// RateLimited: a token bucket in front of a sink. Time is a FakeClock: the tests assert the exact
// waits the limiter chose, never how long anything took.
#include "evroute/rate_limit.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include "support/events.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;
using Delays = std::vector<Clock::Duration>;

using evtest::ev;

// Counts what reaches it, as single writes and as batches.
class CountingSink final : public BatchSink {
 public:
  Status write(const Event&) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return Status::closed();
    ++events_;
    return Status::ok();
  }
  Status write_batch(std::span<const Event> events, std::span<Status> results) override {
    std::lock_guard<std::mutex> lock(mu_);
    batches_.push_back(events.size());
    events_ += events.size();
    for (Status& r : results) r = Status::ok();
    return Status::ok();
  }
  Status close() override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    return Status::ok();
  }
  std::size_t events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<std::size_t> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  bool closed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  std::mutex mu_;
  std::size_t events_ = 0;
  std::vector<std::size_t> batches_;
  bool closed_ = false;
};

TEST(RateLimitedTest, BurstGoesAtOnceThenWritesArePaced) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<CountingSink>();
  RateLimited limited(sink, {.per_second = 10, .burst = 3, .clock = clock});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limited.write(ev("b" + std::to_string(i))).is_ok());
  EXPECT_TRUE(clock->sleeps().empty());  // the bucket starts full
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(limited.write(ev("p" + std::to_string(i))).is_ok());
  EXPECT_EQ(clock->sleeps(), (Delays{100ms, 100ms, 100ms, 100ms}));
  EXPECT_EQ(sink->events(), 7u);
  const auto stats = limited.stats();
  EXPECT_EQ(stats.throttled, 4u);
  EXPECT_EQ(stats.throttled_time, 400ms);
}

TEST(RateLimitedTest, IdleTimeRefillsUpToTheBurstOnly) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<CountingSink>();
  RateLimited limited(sink, {.per_second = 2, .burst = 2, .clock = clock});
  ASSERT_TRUE(limited.write(ev("a")).is_ok());
  ASSERT_TRUE(limited.write(ev("b")).is_ok());
  clock->advance(1h);  // an hour of silence buys two tokens, not 7200
  ASSERT_TRUE(limited.write(ev("c")).is_ok());
  ASSERT_TRUE(limited.write(ev("d")).is_ok());
  EXPECT_TRUE(clock->sleeps().empty());
  ASSERT_TRUE(limited.write(ev("e")).is_ok());
  EXPECT_EQ(clock->sleeps(), (Delays{500ms}));
}

TEST(RateLimitedTest, NoMoreThanRateTimesWindowPlusBurst) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<CountingSink>();
  RateLimited limited(sink, {.per_second = 50, .burst = 5, .clock = clock});
  const auto start = clock->now();
  for (int i = 0; i < 505; ++i) ASSERT_TRUE(limited.write(ev(std::to_string(i))).is_ok());
  // 5 from the full bucket, then 500 at 50/s: exactly 10 s of (fake) time.
  EXPECT_EQ(clock->now() - start, 10s);
  EXPECT_EQ(sink->events(), 505u);
}

TEST(RateLimitedTest, BatchLargerThanTheBurstGoesWholeAndLeavesADebt) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<CountingSink>();
  RateLimited limited(sink, {.per_second = 1, .burst = 2, .clock = clock});
  std::vector<Event> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(ev(std::to_string(i)));
  std::vector<Status> results(batch.size(), Status::unavailable("unset"));
  ASSERT_TRUE(limited.write_batch(batch, results).is_ok());
  for (const Status& r : results) EXPECT_TRUE(r.is_ok());
  EXPECT_TRUE(clock->sleeps().empty());
  ASSERT_TRUE(limited.write(ev("next")).is_ok());  // waits out the debt: from -8 to 1 token
  EXPECT_EQ(clock->sleeps(), (Delays{9s}));
  EXPECT_EQ(sink->batches(), (std::vector<std::size_t>{10}));
}

TEST(RateLimitedTest, ConcurrentWritersShareTheBucket) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<CountingSink>();
  RateLimited limited(sink, {.per_second = 100, .burst = 1, .clock = clock});
  const auto start = clock->now();
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(limited.write(ev(std::to_string(t) + "-" + std::to_string(i))).is_ok());
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(sink->events(), 200u);
  EXPECT_EQ(clock->now() - start, 1990ms);  // 199 tokens at 100/s after the first
}

TEST(RateLimitedTest, CloseWakesAWaitingWriteAtOnce) {
  auto sink = std::make_shared<CountingSink>();
  // Real time: the second token would take 1000 s.
  RateLimited limited(sink, {.per_second = 0.001, .burst = 1});
  ASSERT_TRUE(limited.write(ev("first")).is_ok());
  auto waiting = std::async(std::launch::async, [&] { return limited.write(ev("second")); });
  EXPECT_EQ(waiting.wait_for(50ms), std::future_status::timeout);  // it does wait
  ASSERT_TRUE(limited.close().is_ok());
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(waiting.get().is_closed());
  EXPECT_TRUE(sink->closed());
  EXPECT_EQ(sink->events(), 1u);
  EXPECT_TRUE(limited.write(ev("after")).is_closed());
  EXPECT_TRUE(limited.close().is_ok());  // idempotent
}

// A clock that stands still and ends every wait at once as if close() had come (the predicate is
// not consulted), recording how far ahead the deadline was.
class OneWaitClock final : public Clock {
 public:
  TimePoint now() override { return TimePoint(std::chrono::hours(1)); }
  bool wait_until(std::unique_lock<std::mutex>&, std::condition_variable&, TimePoint deadline,
                  const std::function<bool()>&) override {
    waits.push_back(deadline - now());
    return true;
  }
  std::vector<Duration> waits;
};

// A rate so low that the wait for the next token, in nanoseconds, does not fit a Duration: it was
// cast from double unchecked (undefined; on x86 a hugely negative wait, so the write spun with the
// lock held and not even close() could stop it). It must saturate: a wait as good as forever.
TEST(RateLimitedTest, AWaitTooLongForTheClockSaturatesInsteadOfOverflowing) {
  auto sink = std::make_shared<CountingSink>();
  auto clock = std::make_shared<OneWaitClock>();
  RateLimited limited(sink, {.per_second = 1e-12, .burst = 1, .clock = clock});
  ASSERT_TRUE(limited.write(ev("first")).is_ok());
  EXPECT_TRUE(limited.write(ev("second")).is_closed());  // the clock ended the wait
  ASSERT_EQ(clock->waits.size(), 1u);
  EXPECT_GT(clock->waits[0], std::chrono::hours(24 * 365 * 100))
      << "a wait of " << clock->waits[0].count() << " ns";
  EXPECT_EQ(sink->events(), 1u);
}

TEST(RateLimitedTest, RejectsBadOptionsAndEmptyEvents) {
  auto sink = std::make_shared<CountingSink>();
  EXPECT_THROW(RateLimited(nullptr, {}), std::invalid_argument);
  EXPECT_THROW(RateLimited(sink, {.per_second = 0}), std::invalid_argument);
  EXPECT_THROW(RateLimited(sink, {.per_second = 1, .burst = 0.5}), std::invalid_argument);
  RateLimited limited(sink, {.per_second = 1});
  EXPECT_EQ(limited.write(Event()).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace evroute
