#include "evroute/retry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <future>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/eventually.h"

namespace evroute {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace std::chrono_literals;
using Delays = std::vector<Clock::Duration>;

// Answers writes from a script, then with `then`; kClosed once closed.
class ScriptedSink final : public Sink {
 public:
  explicit ScriptedSink(std::vector<Status> script = {}, Status then = Status::ok())
      : script_(std::move(script)), then_(std::move(then)) {}
  Status write(const Event& event) override {
    if (on_write) on_write();
    std::lock_guard<std::mutex> lock(mu_);
    ++writes_;
    if (closed_) return Status::closed();
    events_.push_back(event);
    return next_ < script_.size() ? script_[next_++] : then_;
  }
  Status close() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++closes_;
    closed_ = true;
    return Status::ok();
  }
  int writes() {
    std::lock_guard<std::mutex> lock(mu_);
    return writes_;
  }
  int closes() {
    std::lock_guard<std::mutex> lock(mu_);
    return closes_;
  }
  std::vector<Event> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::function<void()> on_write;  // set before use

 private:
  std::mutex mu_;
  const std::vector<Status> script_;
  const Status then_;
  std::size_t next_ = 0;
  int writes_ = 0, closes_ = 0;
  bool closed_ = false;
  std::vector<Event> events_;
};

Status down() { return Status::unavailable("down"); }

std::shared_ptr<ExponentialBackoff> backoff(Clock::Duration base, Clock::Duration max,
                                            double jitter = 0.0, std::uint64_t seed = 1) {
  return std::make_shared<ExponentialBackoff>(ExponentialBackoff::Options{
      .base = base, .factor = 2.0, .max = max, .jitter = jitter, .seed = seed});
}

Event event() { return Event::make("id", "payload"); }

TEST(BreakerTest, OpensAfterThresholdAndOneSuccessClosesIt) {
  Breaker breaker(3, seconds(1));
  EXPECT_EQ(breaker.on_failure(down(), {}), Clock::Duration::zero());
  EXPECT_EQ(breaker.on_failure(down(), {}), Clock::Duration::zero());
  EXPECT_FALSE(breaker.is_open());
  EXPECT_EQ(breaker.on_failure(down(), {}), seconds(1));
  EXPECT_TRUE(breaker.is_open());
  EXPECT_EQ(breaker.on_failure(down(), {}), seconds(1));
  breaker.on_success();
  EXPECT_FALSE(breaker.is_open());
  EXPECT_EQ(breaker.consecutive_failures(), 0u);
  EXPECT_EQ(breaker.on_failure(down(), {}), Clock::Duration::zero());
}

TEST(BreakerTest, RetryingWaitsTheCooldownWhileOpen) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>(5, down()));
  auto breaker = std::make_shared<Breaker>(3, seconds(1));
  Retrying retrying(dest, breaker, {.max_attempts = 0, .clock = clock});
  EXPECT_TRUE(retrying.write(event()).is_ok());
  EXPECT_EQ(clock->sleeps(), (Delays{seconds(1), seconds(1), seconds(1)}));
  EXPECT_EQ(dest->writes(), 6);
  EXPECT_EQ(retrying.stats().retries, 5u);
  EXPECT_EQ(retrying.stats().delivered, 1u);
  EXPECT_EQ(breaker->consecutive_failures(), 0u);  // the success reached the strategy
}

TEST(BreakerTest, HoldsOffForTheRestOfTheCooldownWhileOpen) {
  using TimePoint = Clock::TimePoint;
  Breaker breaker(2, seconds(10));
  EXPECT_EQ(breaker.hold_off(TimePoint()), Clock::Duration::zero());
  breaker.on_failure(down(), TimePoint(seconds(1)));
  EXPECT_EQ(breaker.hold_off(TimePoint(seconds(1))), Clock::Duration::zero());  // still closed
  breaker.on_failure(down(), TimePoint(seconds(2)));                            // opens
  EXPECT_EQ(breaker.hold_off(TimePoint(seconds(2))), seconds(10));
  EXPECT_EQ(breaker.hold_off(TimePoint(seconds(9))), seconds(3));
  EXPECT_EQ(breaker.hold_off(TimePoint(seconds(12))), Clock::Duration::zero());
  breaker.on_failure(down(), TimePoint(seconds(12)));  // a failure while open: cooldown again
  EXPECT_EQ(breaker.hold_off(TimePoint(seconds(13))), seconds(9));
  breaker.on_success();
  EXPECT_EQ(breaker.hold_off(TimePoint(seconds(13))), Clock::Duration::zero());
  // A combined strategy holds off as long as its longest hold-off; a backoff holds nothing off.
  auto b = std::make_shared<Breaker>(1, seconds(5));
  CombinedStrategy combined({backoff(milliseconds(100), seconds(1)), b});
  combined.on_failure(down(), TimePoint(seconds(1)));
  EXPECT_EQ(combined.hold_off(TimePoint(seconds(2))), seconds(4));
  EXPECT_EQ(backoff(milliseconds(100), seconds(1))->hold_off(TimePoint()), Clock::Duration::zero());
}

// go-events asks its breaker before every send: once a write gave up with the breaker open, the
// next write's first attempt waits out the rest of the cooldown instead of hitting the dead
// endpoint at once. Each write's attempt times are recorded on the fake clock.
TEST(BreakerTest, AnOpenBreakerHoldsOffTheNextWritesFirstAttempt) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>(4, down()));
  std::vector<Clock::TimePoint> attempts;
  dest->on_write = [&] { attempts.push_back(clock->now()); };
  auto breaker = std::make_shared<Breaker>(2, seconds(10));
  auto strategy = std::make_shared<CombinedStrategy>(
      std::vector<std::shared_ptr<RetryStrategy>>{backoff(milliseconds(100), seconds(1)), breaker});
  Retrying retrying(dest, strategy, {.max_attempts = 2, .clock = clock});
  using TimePoint = Clock::TimePoint;
  // 1st write: fails at 0, retried at 100 ms, fails again: the breaker opens, the write gives up.
  EXPECT_EQ(retrying.write(event()).code(), Code::kUnavailable);
  EXPECT_TRUE(breaker->is_open());
  // 2nd write: waits until 10.1 s before its first attempt, fails, retries at 20.1 s, gives up.
  EXPECT_EQ(retrying.write(event()).code(), Code::kUnavailable);
  // 3rd write: held off until 30.1 s; the destination is back and takes it.
  EXPECT_TRUE(retrying.write(event()).is_ok());
  EXPECT_FALSE(breaker->is_open());
  // 4th write: the breaker is closed again: at once.
  EXPECT_TRUE(retrying.write(event()).is_ok());
  EXPECT_EQ(attempts, (std::vector<TimePoint>{
                          TimePoint(), TimePoint(milliseconds(100)), TimePoint(milliseconds(10100)),
                          TimePoint(milliseconds(20100)), TimePoint(milliseconds(30100)),
                          TimePoint(milliseconds(30100))}));
  EXPECT_EQ(clock->sleeps(), (Delays{milliseconds(100), seconds(10), seconds(10), seconds(10)}));
  EXPECT_EQ(retrying.stats().retries, 2u);  // a hold-off is not a retry
  EXPECT_EQ(retrying.stats().gave_up, 2u);
}

// Lets a test see a wait begin: a system clock that counts the waits entered.
class WatchedClock final : public Clock {
 public:
  TimePoint now() override { return system_.now(); }
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  TimePoint deadline, const std::function<bool()>& pred) override {
    waits.fetch_add(1);
    return system_.wait_until(lock, cv, deadline, pred);
  }
  std::atomic<int> waits{0};

 private:
  SystemClock system_;
};

TEST(BreakerTest, CloseInterruptsTheHoldOffOfTheNextWrite) {
  auto clock = std::make_shared<WatchedClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  auto retrying =
      std::make_shared<Retrying>(dest, std::make_shared<Breaker>(1, std::chrono::hours(1)),
                                 Retrying::Options{.max_attempts = 1, .clock = clock});
  ASSERT_EQ(retrying->write(event()).code(), Code::kUnavailable);  // opens the breaker for an hour
  ASSERT_EQ(clock->waits.load(), 0);
  std::future<Status> done =
      std::async(std::launch::async, [retrying] { return retrying->write(event()); });
  evtest::eventually([&] { return clock->waits.load() != 0; });
  ASSERT_EQ(clock->waits.load(), 1) << "the second write did not wait for the breaker";
  EXPECT_EQ(dest->writes(), 1);  // held off: the dead endpoint was not tried again
  EXPECT_TRUE(retrying->close().is_ok());
  ASSERT_EQ(done.wait_for(seconds(10)), std::future_status::ready) << "close() did not wake it";
  EXPECT_EQ(done.get().code(), Code::kClosed);
  EXPECT_EQ(dest->writes(), 1);
  EXPECT_EQ(retrying->stats().gave_up, 1u);  // only the first write was given up on
}

TEST(ExponentialBackoffTest, DoublesFromBaseUpToMax) {
  auto b = backoff(milliseconds(100), seconds(1));
  Delays got;
  for (int i = 0; i < 6; ++i) got.push_back(b->on_failure(down(), {}));
  EXPECT_EQ(got, (Delays{milliseconds(100), milliseconds(200), milliseconds(400), milliseconds(800),
                         seconds(1), seconds(1)}));
  b->on_success();
  EXPECT_EQ(b->on_failure(down(), {}), milliseconds(100));
}

// delay_for is on_failure without the state: the same delays from the same random bits, so a
// jetstream queue's redelivery waits as long as the sink's own Retrying would.
TEST(ExponentialBackoffTest, DelayForIsOnFailureFromTheCountAlone) {
  for (const bool full : {false, true}) {
    const ExponentialBackoff::Options o{
        .base = 10ms, .factor = 3.0, .max = 2s, .jitter = 0.5, .seed = 42, .full_jitter = full};
    ExponentialBackoff stateful(o);
    std::mt19937_64 bits(42);  // the stream of random bits the stateful one draws from
    for (std::uint32_t n = 1; n <= 12; ++n) {
      EXPECT_EQ(stateful.on_failure(down(), {}), ExponentialBackoff::delay_for(o, n, bits()))
          << "failure " << n << (full ? ", full jitter" : "");
    }
  }
  const ExponentialBackoff::Options fixed{.base = 100ms, .max = 1s, .jitter = 0};
  EXPECT_EQ(ExponentialBackoff::delay_for(fixed, 1, 0), 100ms);
  EXPECT_EQ(ExponentialBackoff::delay_for(fixed, 3, 0), 400ms);
  EXPECT_EQ(ExponentialBackoff::delay_for(fixed, 0, 0), 100ms);  // 0 counts as the first
  EXPECT_EQ(ExponentialBackoff::delay_for(fixed, 4000000000u, 0), 1s);
}

TEST(ExponentialBackoffTest, NoOverflowAfterManyFailures) {
  auto b = backoff(milliseconds(100), seconds(30));
  Clock::Duration d{};
  for (int i = 0; i < 100; ++i) d = b->on_failure(down(), {});
  EXPECT_EQ(d, seconds(30));  // go-events collapsed to [0, base) after ~56
  for (int i = 0; i < 100000; ++i) {
    d = b->on_failure(down(), {});
    ASSERT_EQ(d, seconds(30)) << "failure " << 100 + i;
  }
}

// With max = Duration::max() the delay in double reaches 2^63 ns after ~36 failures (base 200 ms),
// which does not fit the nanosecond count: casting it was undefined, and on x86 gave a negative
// delay, i.e. retries with no wait at all. Delays must grow and then saturate at max.
TEST(ExponentialBackoffTest, SaturatesAtMaxEvenWhenMaxIsTheLargestDuration) {
  for (const Clock::Duration max : {Clock::Duration::max(), Clock::Duration(seconds(30)),
                                    Clock::Duration(std::chrono::hours(24 * 365 * 100))}) {
    for (const double factor : {2.0, 10.0, 1e300}) {
      ExponentialBackoff b({.base = milliseconds(200), .factor = factor, .max = max, .jitter = 0});
      Clock::Duration previous = Clock::Duration::zero();
      for (int n = 1; n <= 200; ++n) {
        const Clock::Duration d = b.on_failure(down(), {});
        ASSERT_GE(d, milliseconds(200)) << "failure " << n << ", factor " << factor;
        ASSERT_GE(d, previous) << "failure " << n << ", factor " << factor;
        ASSERT_LE(d, max) << "failure " << n << ", factor " << factor;
        previous = d;
      }
      EXPECT_EQ(previous, max) << "factor " << factor;
    }
  }
}

TEST(ExponentialBackoffTest, JitteredDelaysStayWithinBaseAndMaxWhenMaxIsTheLargestDuration) {
  for (const bool full : {false, true}) {
    ExponentialBackoff b({.base = milliseconds(200),
                          .max = Clock::Duration::max(),
                          .jitter = 0.5,
                          .seed = 3,
                          .full_jitter = full});
    for (int n = 1; n <= 200; ++n) {
      const Clock::Duration d = b.on_failure(down(), {});
      ASSERT_GE(d, full ? Clock::Duration::zero() : Clock::Duration(milliseconds(200)))
          << "failure " << n;
      if (n > 60) {
        ASSERT_GT(d, std::chrono::hours(1)) << "failure " << n << " collapsed";
      }
    }
  }
}

TEST(ExponentialBackoffTest, AZeroBaseStaysZero) {  // 0 * inf is NaN, not max
  ExponentialBackoff b({.base = Clock::Duration::zero(), .max = seconds(1), .jitter = 0});
  for (int n = 1; n <= 2000; ++n) ASSERT_EQ(b.on_failure(down(), {}), Clock::Duration::zero()) << n;
}

// Retrying on top of it: after many failures the delays it waits stay at max, never zero.
// No single event may take down the thread that delivers it: a destination that throws for one
// event fails that event (dead-lettered with the reason), and the next one goes through.
TEST(RetryingTest, ADestinationThatThrowsFailsTheEventNotTheThread) {
  auto dest = std::make_shared<ScriptedSink>();
  int calls = 0;
  dest->on_write = [&] {
    if (calls++ == 0) throw std::length_error("payload too odd");
  };
  auto dead = std::make_shared<ScriptedSink>();
  Retrying retrying(dest, backoff(milliseconds(1), milliseconds(1)), {.dead_letter = dead});
  const Status s = retrying.write(event());
  EXPECT_EQ(s.code(), Code::kRejected);
  EXPECT_EQ(s.message(), "gave up after 1 attempt: the destination threw: payload too odd");
  EXPECT_EQ(dead->events().size(), 1u);
  EXPECT_TRUE(retrying.write(event()).is_ok());
  EXPECT_EQ(retrying.stats().gave_up, 1u);
  EXPECT_EQ(retrying.stats().delivered, 1u);
  EXPECT_EQ(calls, 2);  // not retried
}

TEST(RetryingTest, DelaysNeverCollapseWithAnUnboundedBackoff) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  Delays delays;
  Retrying retrying(dest, backoff(milliseconds(200), Clock::Duration::max()),
                    {.max_attempts = 100,
                     .clock = clock,
                     .on_retry = [&](const Event&, const Status&, std::uint32_t,
                                     Clock::Duration delay) { delays.push_back(delay); }});
  EXPECT_EQ(retrying.write(event()).code(), Code::kUnavailable);
  ASSERT_EQ(delays.size(), 99u);
  for (std::size_t i = 1; i < delays.size(); ++i) {
    ASSERT_GE(delays[i], delays[i - 1]) << "retry " << i + 1;
  }
  EXPECT_EQ(delays.back(), Clock::Duration::max());
}

TEST(ExponentialBackoffTest, JitterStaysWithinBoundsAndNeverBelowBase) {
  for (double jitter : {0.2, 0.5, 1.0}) {
    auto b = backoff(milliseconds(100), seconds(10), jitter, 42);
    bool varied = false;
    for (int round = 0; round < 50; ++round) {
      for (int n = 1; n <= 20; ++n) {
        const double full = std::min(1e10, 1e8 * std::pow(2.0, n - 1));  // ns
        const double low = std::max(1e8, (1.0 - jitter) * full);
        const auto d = static_cast<double>(b->on_failure(down(), {}).count());
        ASSERT_GE(d, std::floor(low)) << "jitter " << jitter << " n " << n;
        ASSERT_LE(d, full) << "jitter " << jitter << " n " << n;
        varied = varied || d < full - 1e6;
      }
      b->on_success();
    }
    EXPECT_TRUE(varied) << "jitter " << jitter << " never reduced a delay";
  }
}

TEST(ExponentialBackoffTest, SameSeedSameDelays) {
  auto a = backoff(milliseconds(10), seconds(5), 0.5, 7),
       b = backoff(milliseconds(10), seconds(5), 0.5, 7);
  for (int i = 0; i < 30; ++i) ASSERT_EQ(a->on_failure(down(), {}), b->on_failure(down(), {}));
}

// Full jitter: each wait is uniform in [0, d], so waits below `base` happen, and the spread covers
// the whole range (checked in quarters over many draws; with a fixed seed this is deterministic).
TEST(ExponentialBackoffTest, FullJitterIsUniformFromZeroToTheDelay) {
  ExponentialBackoff b({.base = milliseconds(100),
                        .factor = 2.0,
                        .max = seconds(1),
                        .seed = 42,
                        .full_jitter = true});
  std::array<int, 4> quarters{};
  for (int round = 0; round < 400; ++round) {
    for (int n = 1; n <= 6; ++n) {
      const double full = std::min(1e9, 1e8 * std::pow(2.0, n - 1));  // ns
      const auto d = static_cast<double>(b.on_failure(down(), {}).count());
      ASSERT_GE(d, 0.0);
      ASSERT_LE(d, full) << "n " << n;
      ++quarters[std::min(3, static_cast<int>(4 * d / full))];
    }
    b.on_success();
  }
  for (int q : quarters) EXPECT_GT(q, 400 * 6 / 8) << "a quarter of [0, d] is under-used";
}

// Retrying under full jitter, on a FakeClock: the waits it takes are exactly the strategy's draws
// for that seed (a twin strategy with the same seed predicts them), none sleeps for real.
TEST(RetryingTest, FullJitterWaitsAreReproducibleWithASeed) {
  const ExponentialBackoff::Options options{
      .base = milliseconds(100), .factor = 2.0, .max = seconds(10), .seed = 7, .full_jitter = true};
  ExponentialBackoff twin(options);
  Delays expected;
  for (int i = 0; i < 4; ++i) expected.push_back(twin.on_failure(down(), {}));
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>(4, down()));
  Retrying r(dest, std::make_shared<ExponentialBackoff>(options),
             {.max_attempts = 10, .clock = clock});
  ASSERT_TRUE(r.write(event()).is_ok());
  Delays slept = clock->sleeps();
  EXPECT_EQ(slept.size() + std::count(expected.begin(), expected.end(), Clock::Duration::zero()),
            expected.size());
  expected.erase(std::remove(expected.begin(), expected.end(), Clock::Duration::zero()),
                 expected.end());
  EXPECT_EQ(slept, expected);
  EXPECT_EQ(dest->writes(), 5);
}

TEST(ExponentialBackoffTest, RejectsBadOptions) {
  EXPECT_THROW(backoff(seconds(2), seconds(1)), std::invalid_argument);
  EXPECT_THROW(backoff(milliseconds(1), seconds(1), 1.5), std::invalid_argument);
  EXPECT_THROW(ExponentialBackoff({.factor = 0.5}), std::invalid_argument);
}

TEST(RetryStrategyTest, CombinedWaitsForTheLongestDelay) {
  auto breaker = std::make_shared<Breaker>(2, seconds(5));
  auto b = backoff(milliseconds(100), seconds(1));
  CombinedStrategy combined({breaker, b});
  EXPECT_EQ(combined.on_failure(down(), {}), milliseconds(100));
  EXPECT_EQ(combined.on_failure(down(), {}), seconds(5));
  EXPECT_EQ(combined.on_failure(down(), {}), seconds(5));
  combined.on_success();
  EXPECT_FALSE(breaker->is_open());
  EXPECT_EQ(combined.on_failure(down(), {}), milliseconds(100));  // both were reset
}

TEST(RetryingTest, BacksOffThenGivesUpAfterMaxAttempts) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  Retrying retrying(dest, backoff(milliseconds(100), seconds(1)),
                    {.max_attempts = 4, .clock = clock});
  Status s = retrying.write(event());
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.message(), "gave up after 4 attempts: down");
  EXPECT_EQ(clock->sleeps(), (Delays{milliseconds(100), milliseconds(200), milliseconds(400)}));
  EXPECT_EQ(dest->writes(), 4);
  const auto stats = retrying.stats();
  EXPECT_EQ(stats.retries, 3u);
  EXPECT_EQ(stats.gave_up, 1u);
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(stats.dead_lettered, 0u);
}

TEST(RetryingTest, GivesUpRatherThanWaitPastMaxElapsed) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  Retrying retrying(dest, backoff(milliseconds(100), seconds(10)),
                    {.max_attempts = 0, .max_elapsed = seconds(1), .clock = clock});
  // Attempts at 0, 100, 300, 700 ms; the next would be at 1500 ms.
  EXPECT_EQ(retrying.write(event()).message(), "gave up after 4 attempts: down");
  EXPECT_EQ(clock->sleeps(), (Delays{milliseconds(100), milliseconds(200), milliseconds(400)}));
}

TEST(RetryingTest, MaxElapsedCountsTheAttemptsOwnTime) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  dest->on_write = [&] { clock->advance(milliseconds(300)); };  // a slow destination
  Retrying retrying(dest, backoff(milliseconds(100), seconds(10)),
                    {.max_attempts = 0, .max_elapsed = seconds(1), .clock = clock});
  // Attempts during 0-300, 400-700, 900-1200 ms; the bound is then past.
  EXPECT_EQ(retrying.write(event()).message(), "gave up after 3 attempts: down");
  EXPECT_EQ(clock->sleeps(), (Delays{milliseconds(100), milliseconds(200)}));
}

TEST(RetryingTest, HandsGivenUpEventsToTheDeadLetterSink) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  auto dead = std::make_shared<ScriptedSink>(std::vector<Status>{Status::ok(), down()});
  Retrying retrying(dest, backoff(milliseconds(1), milliseconds(1)),
                    {.max_attempts = 2, .clock = clock, .dead_letter = dead});
  Event e = event();
  EXPECT_FALSE(retrying.write(e).is_ok());
  ASSERT_EQ(dead->events().size(), 1u);
  EXPECT_TRUE(dead->events()[0].same_as(e));
  EXPECT_FALSE(retrying.write(e).is_ok());  // the dead-letter sink refuses this one
  EXPECT_EQ(retrying.stats().gave_up, 2u);
  EXPECT_EQ(retrying.stats().dead_lettered, 1u);
}

TEST(RetryingTest, NonRetryableFailureGivesUpAfterOneAttempt) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, Status::rejected("bad"));
  auto dead = std::make_shared<ScriptedSink>();
  int retries = 0;
  std::uint32_t give_up_attempts = 0;
  Retrying retrying(dest, backoff(milliseconds(100), seconds(1)),
                    {.clock = clock,
                     .dead_letter = dead,
                     .on_retry = [&](auto&&...) { ++retries; },
                     .on_give_up =
                         [&](const Event&, const Status& s, std::uint32_t attempts) {
                           EXPECT_EQ(s.code(), Code::kRejected);
                           give_up_attempts = attempts;
                         }});
  Status s = retrying.write(event());
  EXPECT_EQ(s.code(), Code::kRejected);
  EXPECT_EQ(s.message(), "gave up after 1 attempt: bad");
  EXPECT_EQ(dest->writes(), 1);
  EXPECT_TRUE(clock->sleeps().empty());
  EXPECT_EQ(retries, 0);
  EXPECT_EQ(give_up_attempts, 1u);
  EXPECT_EQ(retrying.stats().dead_lettered, 1u);
}

TEST(RetryingTest, HonoursAndClampsRetryAfter) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{
      Status::unavailable("429").with_retry_after(seconds(3)),
      Status::unavailable("503").with_retry_after(std::chrono::hours(10)),
      Status::unavailable("429").with_retry_after(milliseconds(50)),  // less than the backoff
  });
  auto constant = std::make_shared<ExponentialBackoff>(ExponentialBackoff::Options{
      .base = milliseconds(100), .factor = 1.0, .max = milliseconds(100), .jitter = 0.0});
  Retrying retrying(
      dest, constant,
      {.max_attempts = 0, .max_retry_after = std::chrono::minutes(1), .clock = clock});
  EXPECT_TRUE(retrying.write(event()).is_ok());
  EXPECT_EQ(clock->sleeps(), (Delays{seconds(3), std::chrono::minutes(1), milliseconds(100)}));
}

TEST(RetryingTest, SuccessResetsTheStrategy) {
  auto clock = std::make_shared<FakeClock>();
  auto dest =
      std::make_shared<ScriptedSink>(std::vector<Status>{down(), down(), Status::ok(), down()});
  Retrying retrying(dest, backoff(milliseconds(100), seconds(10)), {.clock = clock});
  EXPECT_TRUE(retrying.write(event()).is_ok());
  EXPECT_TRUE(retrying.write(event()).is_ok());
  EXPECT_TRUE(retrying.write(event()).is_ok());  // no failure in between: nothing to reset
  EXPECT_EQ(clock->sleeps(), (Delays{milliseconds(100), milliseconds(200), milliseconds(100)}));
  EXPECT_EQ(retrying.stats().delivered, 3u);
  EXPECT_EQ(retrying.stats().retries, 3u);
}

TEST(RetryingTest, ClosedDestinationReturnsClosedWithoutGivingUp) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{down(), Status::closed()});
  auto dead = std::make_shared<ScriptedSink>();
  Retrying retrying(dest, backoff(milliseconds(100), seconds(1)),
                    {.clock = clock, .dead_letter = dead});
  EXPECT_EQ(retrying.write(event()).code(), Code::kClosed);
  EXPECT_EQ(retrying.stats().gave_up, 0u);
  EXPECT_TRUE(dead->events().empty());
  EXPECT_EQ(retrying.write(Event()).code(), Code::kInvalidArgument);
}

TEST(RetryingTest, CloseClosesTheDestinationOnceAndRefusesWrites) {
  auto dest = std::make_shared<ScriptedSink>();
  Retrying retrying(dest, backoff(milliseconds(100), seconds(1)), {});
  EXPECT_TRUE(retrying.close().is_ok());
  EXPECT_TRUE(retrying.close().is_ok());
  EXPECT_EQ(dest->closes(), 1);  // go-events' RetryingSink never closed what it wrapped
  EXPECT_EQ(retrying.write(event()).code(), Code::kClosed);
  EXPECT_EQ(dest->writes(), 0);
}

TEST(RetryingTest, HooksSeeEveryAttempt) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  struct Call {
    std::uint32_t attempt;
    Clock::Duration delay;
  };
  std::vector<Call> retries;
  std::uint32_t gave_up_after = 0;
  Event e = event();
  Retrying retrying(
      dest, backoff(milliseconds(100), seconds(1)),
      {.max_attempts = 3,
       .clock = clock,
       .on_retry =
           [&](const Event& ev, const Status& s, std::uint32_t attempt, Clock::Duration delay) {
             EXPECT_TRUE(ev.same_as(e));
             EXPECT_EQ(s.message(), "down");
             retries.push_back({attempt, delay});
           },
       .on_give_up = [&](const Event&, const Status&, std::uint32_t n) { gave_up_after = n; }});
  EXPECT_FALSE(retrying.write(e).is_ok());
  ASSERT_EQ(retries.size(), 2u);
  EXPECT_EQ(retries[0].attempt, 1u);
  EXPECT_EQ(retries[0].delay, milliseconds(100));
  EXPECT_EQ(retries[1].attempt, 2u);
  EXPECT_EQ(retries[1].delay, milliseconds(200));
  EXPECT_EQ(gave_up_after, 3u);
}

TEST(RetryingTest, HooksRunWithoutLocksHeld) {
  auto clock = std::make_shared<FakeClock>();
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  std::unique_ptr<Retrying> retrying;
  retrying = std::make_unique<Retrying>(
      dest, backoff(milliseconds(100), seconds(1)),
      Retrying::Options{.clock = clock, .on_retry = [&](auto&&...) { retrying->close(); }});
  EXPECT_EQ(retrying->write(event()).code(), Code::kClosed);  // close() took the lock: no deadlock
  EXPECT_EQ(retrying->stats().gave_up, 0u);
  EXPECT_EQ(dest->closes(), 1);
  EXPECT_TRUE(clock->sleeps().empty());
}

TEST(RetryingTest, CloseWakesARealBackoffWaitAtOnce) {
  auto dest = std::make_shared<ScriptedSink>(std::vector<Status>{}, down());
  std::promise<void> waiting;
  auto retrying = std::make_shared<Retrying>(
      dest, std::make_shared<Breaker>(1, std::chrono::hours(1)),
      Retrying::Options{.max_attempts = 0, .on_retry = [&](auto&&...) { waiting.set_value(); }});
  auto result = std::make_shared<std::promise<Status>>();
  std::future<Status> done = result->get_future();
  std::thread writer([retrying, result] { result->set_value(retrying->write(event())); });
  waiting.get_future().wait();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(retrying->close().is_ok());
  if (done.wait_for(seconds(5)) != std::future_status::ready) {
    writer.detach();  // stuck for an hour: fail rather than hang
    FAIL() << "close() did not wake the backoff wait";
  }
  writer.join();
  EXPECT_EQ(done.get().code(), Code::kClosed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  EXPECT_EQ(retrying->stats().gave_up, 0u);
  EXPECT_EQ(dest->closes(), 1);
}

TEST(RetryingTest, ConcurrentWritersShareTheStrategy) {
  // Every third write fails, across all writers.
  struct Flaky final : Sink {
    std::atomic<int> writes{0};
    Status write(const Event&) override {
      return writes.fetch_add(1) % 3 == 0 ? Status::unavailable("flaky") : Status::ok();
    }
    Status close() override { return Status::ok(); }
  };
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<Flaky>();
  std::atomic<int> failed{0};
  auto breaker = std::make_shared<Breaker>(2, seconds(1));
  Retrying retrying(sink, breaker, {.max_attempts = 0, .clock = clock});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        if (!retrying.write(event()).is_ok()) failed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  const auto stats = retrying.stats();
  EXPECT_EQ(stats.delivered, 1200u);
  EXPECT_EQ(stats.delivered + stats.retries, static_cast<std::uint64_t>(sink->writes.load()));
  EXPECT_EQ(stats.gave_up, 0u);
}

}  // namespace
}  // namespace evroute
