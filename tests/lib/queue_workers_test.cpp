// Queue with several workers: up to `workers` writes in flight at once, every event delivered once,
// close() draining and joining every worker, and Retrying + Breaker shared by concurrent writers
// (run under TSan by .ci/run). Tests sequence on the test sink, never on time.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "evroute/queue.h"
#include "evroute/retry.h"
#include "support/events.h"
#include "support/fake_sinks.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;

using evtest::ev;

using evtest::GatedSink;
using evtest::RecordingSink;

TEST(QueueWorkersTest, UpToNWritesAreInFlightAndEveryEventIsDeliveredOnce) {
  auto sink = std::make_shared<GatedSink>();
  Queue q(sink, {.capacity = 0, .workers = 4});
  std::set<std::string> sent;
  for (int i = 0; i < 40; ++i) {
    sent.insert(std::to_string(i));
    ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  }
  ASSERT_TRUE(sink->wait_inside(4));  // four writes at once...
  EXPECT_EQ(q.stats().pending, 40u);
  sink->open();
  ASSERT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->max_inside(), 4);  // ...and never more
  const auto ids = sink->ids();
  EXPECT_EQ(ids.size(), 40u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), sent);
  EXPECT_EQ(q.stats().delivered, 40u);
  EXPECT_EQ(sink->closes(), 1);
}

TEST(QueueWorkersTest, OneWorkerKeepsOneWriteAtATimeInOrder) {
  auto sink = std::make_shared<GatedSink>();
  sink->open();
  Queue q(sink, {.capacity = 0});
  std::vector<std::string> sent;
  for (int i = 0; i < 200; ++i) {
    sent.push_back(std::to_string(i));
    ASSERT_TRUE(q.write(ev(sent.back())).is_ok());
  }
  ASSERT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), sent);
  EXPECT_EQ(sink->max_inside(), 1);
}

TEST(QueueWorkersTest, CloseDeadlineInterruptsEveryWorkerAndCountsTheRest) {
  auto sink = std::make_shared<GatedSink>();  // never released: a dead endpoint
  auto dead = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 0, .dead_letter = dead, .workers = 3});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  ASSERT_TRUE(sink->wait_inside(3));
  const auto report = q.close_until(std::chrono::steady_clock::now());
  EXPECT_TRUE(report.timed_out);
  EXPECT_EQ(report.undelivered, 10u);  // 7 waiting + 3 interrupted in flight
  EXPECT_EQ(dead->ids().size(), 10u);
  const auto s = q.stats();
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.delivered + s.failed, 0u);
}

TEST(QueueWorkersTest, RetryingAndBreakerAreSharedSafelyByConcurrentWriters) {
  // Fails every third write (retryably); the breaker and backoff see failures from all workers.
  class Flaky final : public Sink {
   public:
    Status write(const Event&) override {
      if (++writes % 3 == 0) return Status::unavailable("flaky");
      ++delivered;
      return Status::ok();
    }
    Status close() override { return Status::ok(); }
    std::atomic<int> writes{0}, delivered{0};
  };
  auto clock = std::make_shared<FakeClock>();
  auto flaky = std::make_shared<Flaky>();
  auto breaker = std::make_shared<Breaker>(2, 1s);
  auto strategy = std::make_shared<CombinedStrategy>(std::vector<std::shared_ptr<RetryStrategy>>{
      std::make_shared<ExponentialBackoff>(ExponentialBackoff::Options{.base = 10ms, .jitter = 0}),
      breaker});
  Retrying::Options ro;
  ro.max_attempts = 0;
  ro.max_elapsed = 24h;
  ro.clock = clock;
  auto retrying = std::make_shared<Retrying>(flaky, strategy, ro);
  Queue q(retrying, {.capacity = 0, .workers = 4});
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  ASSERT_TRUE(q.close().is_ok());
  EXPECT_EQ(flaky->delivered.load(), 300);
  EXPECT_EQ(retrying->stats().delivered, 300u);
  EXPECT_EQ(retrying->stats().gave_up, 0u);
  EXPECT_EQ(retrying->stats().retries, static_cast<std::uint64_t>(flaky->writes.load() - 300));
  EXPECT_EQ(q.stats().delivered, 300u);
}

TEST(QueueWorkersTest, ZeroWorkersIsRefused) {
  EXPECT_THROW(Queue(std::make_shared<GatedSink>(), {.workers = 0}), std::invalid_argument);
}

}  // namespace
}  // namespace evroute
