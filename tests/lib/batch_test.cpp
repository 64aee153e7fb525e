// Batching: a Queue handing a BatchSink batches (by count, bytes and max_wait), Retrying retrying a
// batch whole and splitting one the destination refuses, and per-event accounting throughout.
// max_wait runs on a FakeClock; the other tests set it to an hour so only count, bytes or close can
// send a batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "evroute/batch_sink.h"
#include "evroute/queue.h"
#include "evroute/rate_limit.h"
#include "evroute/retry.h"

#include "support/events.h"
#include "support/eventually.h"
#include "support/fake_sinks.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;
using Ids = std::vector<std::string>;
using Batches = std::vector<Ids>;

// Payload {"id":ID}.
inline Event ev(const std::string& id) { return evtest::json_ev(id); }

using evtest::eventually;

using evtest::RecordingBatchSink;  // records every batch; `answer` decides its outcome

std::vector<std::size_t> sizes(const Batches& batches) {
  std::vector<std::size_t> out;
  for (const Ids& b : batches) out.push_back(b.size());
  return out;
}

TEST(QueueBatchTest, SendsFullBatchesInOrderAndTheRestAtClose) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, {.capacity = 0, .batch = {.max_events = 3, .max_wait = 1h}});
  for (const char* id : {"a", "b", "c", "d", "e", "f", "g"}) ASSERT_TRUE(q.write(ev(id)).is_ok());
  ASSERT_TRUE(eventually([&] { return sink->batches().size() == 2; }));
  ASSERT_TRUE(q.close().is_ok());  // "g" waits for more until close sends it
  EXPECT_EQ(sink->batches(), (Batches{{"a", "b", "c"}, {"d", "e", "f"}, {"g"}}));
  const auto s = q.stats();
  EXPECT_EQ(s.delivered, 7u);
  EXPECT_EQ(s.batches, 3u);
  EXPECT_EQ(s.pending, 0u);
}

TEST(QueueBatchTest, MaxBytesBoundsABatchAndAnOversizedEventGoesAlone) {
  auto sink = std::make_shared<RecordingBatchSink>();
  // ev("x") has a 10-byte payload: 11 bytes with its separator; two fit in 25.
  Queue q(sink, {.capacity = 0, .batch = {.max_events = 100, .max_bytes = 25, .max_wait = 1h}});
  for (const char* id : {"a", "b", "c", "d"}) ASSERT_TRUE(q.write(ev(id)).is_ok());
  ASSERT_TRUE(q.write(Event::make("big", std::string(100, 'x'))).is_ok());
  ASSERT_TRUE(q.write(ev("e")).is_ok());
  ASSERT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->batches(), (Batches{{"a", "b"}, {"c", "d"}, {"big"}, {"e"}}));
}

TEST(QueueBatchTest, MaxWaitSendsAPartialBatch) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, {.capacity = 0, .batch = {.max_events = 10, .max_wait = 250ms}, .clock = clock});
  ASSERT_TRUE(q.write(ev("lonely")).is_ok());
  ASSERT_TRUE(eventually([&] { return q.stats().delivered == 1; }));
  EXPECT_EQ(sink->batches(), (Batches{{"lonely"}}));
  EXPECT_EQ(clock->sleeps(), (std::vector<Clock::Duration>{250ms}));
  ASSERT_TRUE(q.close().is_ok());
}

TEST(QueueBatchTest, AFullQueueSendsAtOnceRatherThanWaitForMaxWait) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, {.capacity = 3, .batch = {.max_events = 10, .max_wait = 1h}});
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(q.write(ev(id)).is_ok());
  ASSERT_TRUE(eventually([&] { return q.stats().delivered == 3; }));  // long before an hour
  EXPECT_EQ(sink->batches(), (Batches{{"a", "b", "c"}}));
  ASSERT_TRUE(q.close().is_ok());
}

TEST(QueueBatchTest, CountsEachEventByItsOwnResult) {
  // A destination that takes a batch but refuses one event of it (as Retrying does after a split).
  class Picky final : public BatchSink {
   public:
    Status write(const Event&) override { return Status::ok(); }
    Status write_batch(std::span<const Event> events, std::span<Status> results) override {
      Status first;
      for (std::size_t i = 0; i < events.size(); ++i) {
        results[i] = events[i].id() == "bad" ? Status::rejected("no") : Status::ok();
        if (first.is_ok()) first = results[i];
      }
      return first;
    }
    Status close() override { return Status::ok(); }
  };
  Queue q(std::make_shared<Picky>(), {.capacity = 0, .batch = {.max_events = 3, .max_wait = 1h}});
  for (const char* id : {"a", "bad", "c"}) ASSERT_TRUE(q.write(ev(id)).is_ok());
  ASSERT_TRUE(q.close().is_ok());
  const auto s = q.stats();
  EXPECT_EQ(s.delivered, 2u);
  EXPECT_EQ(s.failed, 1u);
}

TEST(QueueBatchTest, BatchingNeedsABatchSink) {
  class Plain final : public Sink {
    Status write(const Event&) override { return Status::ok(); }
    Status close() override { return Status::ok(); }
  };
  EXPECT_THROW(Queue(std::make_shared<Plain>(), {.batch = {.max_events = 2}}),
               std::invalid_argument);
  // max_events 1 is no batching: any sink will do.
  EXPECT_NO_THROW(Queue(std::make_shared<Plain>(), {.batch = {.max_events = 1}}));
}

Retrying::Options retry_options(std::shared_ptr<Clock> clock, std::uint32_t max_attempts = 5) {
  Retrying::Options o;
  o.max_attempts = max_attempts;
  o.clock = std::move(clock);
  return o;
}

std::shared_ptr<RetryStrategy> backoff() {
  return std::make_shared<ExponentialBackoff>(
      ExponentialBackoff::Options{.base = 100ms, .max = 1s, .jitter = 0});
}

TEST(RetryingBatchTest, RetryableFailureRetriesTheWholeBatch) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<RecordingBatchSink>();
  int calls = 0;
  sink->answer = [&](const Ids&) {
    return ++calls == 1 ? Status::unavailable("HTTP 503") : Status::ok();
  };
  Retrying retrying(sink, backoff(), retry_options(clock));
  const std::vector<Event> batch{ev("a"), ev("b"), ev("c")};
  std::vector<Status> results(3);
  ASSERT_TRUE(retrying.write_batch(batch, results).is_ok());
  for (const Status& r : results) EXPECT_TRUE(r.is_ok());
  EXPECT_EQ(sink->batches(), (Batches{{"a", "b", "c"}, {"a", "b", "c"}}));
  EXPECT_EQ(clock->sleeps(), (std::vector<Clock::Duration>{100ms}));
  const auto s = retrying.stats();
  EXPECT_EQ(s.delivered, 3u);
  EXPECT_EQ(s.retries, 3u);  // events, not requests
  EXPECT_EQ(s.gave_up, 0u);
}

TEST(RetryingBatchTest, RejectedBatchIsSplitSoOnlyThePoisonEventFails) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<RecordingBatchSink>();
  sink->answer = [](const Ids& ids) {
    return std::find(ids.begin(), ids.end(), "poison") != ids.end() ? Status::rejected("HTTP 400")
                                                                    : Status::ok();
  };
  auto dead = std::make_shared<RecordingBatchSink>();
  auto options = retry_options(clock);
  options.dead_letter = dead;
  Ids given_up;
  options.on_give_up = [&](const Event& e, const Status&, std::uint32_t) {
    given_up.emplace_back(e.id());
  };
  Retrying retrying(sink, backoff(), options);
  const std::vector<Event> batch{ev("a"), ev("poison"), ev("c")};
  std::vector<Status> results(3);
  const Status status = retrying.write_batch(batch, results);
  EXPECT_EQ(status.code(), Code::kRejected);
  EXPECT_TRUE(results[0].is_ok());
  EXPECT_EQ(results[1].code(), Code::kRejected);
  EXPECT_TRUE(results[2].is_ok());
  EXPECT_EQ(sink->batches(), (Batches{{"a", "poison", "c"}, {"a"}, {"poison"}, {"c"}}));
  EXPECT_EQ(given_up, (Ids{"poison"}));
  EXPECT_EQ(dead->batches(), (Batches{{"poison"}}));
  const auto s = retrying.stats();
  EXPECT_EQ(s.delivered, 2u);
  EXPECT_EQ(s.gave_up, 1u);
  EXPECT_EQ(s.dead_lettered, 1u);
  EXPECT_TRUE(clock->sleeps().empty());  // a refusal is not waited on
}

TEST(RetryingBatchTest, RetriesExhaustedGiveUpOnEveryEventOfTheBatch) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<RecordingBatchSink>();
  sink->answer = [](const Ids&) { return Status::unavailable("down"); };
  Ids given_up;
  auto options = retry_options(clock, 2);
  options.on_give_up = [&](const Event& e, const Status&, std::uint32_t attempts) {
    EXPECT_EQ(attempts, 2u);
    given_up.emplace_back(e.id());
  };
  Retrying retrying(sink, backoff(), options);
  const std::vector<Event> batch{ev("a"), ev("b")};
  std::vector<Status> results(2);
  EXPECT_EQ(retrying.write_batch(batch, results).code(), Code::kUnavailable);
  EXPECT_EQ(results[0].code(), Code::kUnavailable);
  EXPECT_EQ(results[1].code(), Code::kUnavailable);
  EXPECT_EQ(given_up, (Ids{"a", "b"}));
  EXPECT_EQ(sink->batches().size(), 2u);  // no split after retryable failures
  EXPECT_EQ(retrying.stats().gave_up, 2u);
  EXPECT_EQ(retrying.stats().retries, 2u);
}

TEST(RetryingBatchTest, WithoutABatchSinkEachEventIsWrittenAndRetriedAlone) {
  class Flaky final : public Sink {
   public:
    Status write(const Event& e) override {
      std::lock_guard<std::mutex> lock(mu_);
      seen.emplace_back(e.id());
      return e.id() == "b" && seen.size() < 3 ? Status::unavailable("x") : Status::ok();
    }
    Status close() override { return Status::ok(); }
    std::mutex mu_;
    Ids seen;
  };
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<Flaky>();
  Retrying retrying(sink, backoff(), retry_options(clock));
  const std::vector<Event> batch{ev("a"), ev("b"), ev("c")};
  std::vector<Status> results(3);
  ASSERT_TRUE(retrying.write_batch(batch, results).is_ok());
  EXPECT_EQ(sink->seen, (Ids{"a", "b", "b", "c"}));
  EXPECT_EQ(retrying.stats().retries, 1u);
}

// A batch, like a single event, waits out an open breaker before its first attempt: both when the
// destination takes batches (one hold-off for the batch) and when each event is written alone.
TEST(RetryingBatchTest, AnOpenBreakerHoldsOffTheNextBatch) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<RecordingBatchSink>();
  std::vector<Clock::TimePoint> attempts;
  int failures = 2;
  sink->answer = [&](const Ids&) {
    attempts.push_back(clock->now());
    return failures-- > 0 ? Status::unavailable("down") : Status::ok();
  };
  Retrying retrying(sink, std::make_shared<Breaker>(2, 10s), retry_options(clock, 2));
  const std::vector<Event> batch{ev("a"), ev("b")};
  std::vector<Status> results(2);
  EXPECT_EQ(retrying.write_batch(batch, results).code(), Code::kUnavailable);  // opens, gives up
  ASSERT_TRUE(retrying.write_batch(batch, results).is_ok());
  EXPECT_EQ(attempts, (std::vector<Clock::TimePoint>{Clock::TimePoint(), Clock::TimePoint(),
                                                     Clock::TimePoint(10s)}));
  EXPECT_EQ(clock->sleeps(), (std::vector<Clock::Duration>{10s}));
}

TEST(RetryingBatchTest, AnOpenBreakerHoldsOffTheNextBatchWithoutABatchSink) {
  class Down final : public Sink {
   public:
    explicit Down(std::shared_ptr<FakeClock> clock) : clock_(std::move(clock)) {}
    Status write(const Event&) override {
      attempts.push_back(clock_->now());
      return attempts.size() <= 2 ? Status::unavailable("down") : Status::ok();
    }
    Status close() override { return Status::ok(); }
    std::vector<Clock::TimePoint> attempts;

   private:
    const std::shared_ptr<FakeClock> clock_;
  };
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<Down>(clock);
  Retrying retrying(sink, std::make_shared<Breaker>(2, 10s), retry_options(clock, 2));
  const std::vector<Event> batch{ev("a"), ev("b"), ev("c")};
  std::vector<Status> results(3);
  // "a" fails twice (the breaker opens) and is given up on; "b" waits for the cooldown first.
  EXPECT_EQ(retrying.write_batch(batch, results).code(), Code::kUnavailable);
  EXPECT_EQ(results[0].code(), Code::kUnavailable);
  EXPECT_TRUE(results[1].is_ok());
  EXPECT_TRUE(results[2].is_ok());
  EXPECT_EQ(sink->attempts,
            (std::vector<Clock::TimePoint>{Clock::TimePoint(), Clock::TimePoint(),
                                           Clock::TimePoint(10s), Clock::TimePoint(10s)}));
}

TEST(RetryingBatchTest, ArgumentsAreChecked) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Retrying retrying(sink, backoff(), retry_options(std::make_shared<FakeClock>()));
  const std::vector<Event> batch{ev("a"), Event()};
  std::vector<Status> results(2);
  EXPECT_EQ(retrying.write_batch(batch, results).code(), Code::kInvalidArgument);
  EXPECT_EQ(results[0].code(), Code::kInvalidArgument);
  std::vector<Status> too_few(1);
  EXPECT_EQ(retrying.write_batch(batch, too_few).code(), Code::kInvalidArgument);
  EXPECT_TRUE(sink->batches().empty());
  EXPECT_TRUE(retrying.write_batch({}, {}).is_ok());
}

TEST(BatchPipelineTest, BatchesTravelQueueRetryingRateLimitedWhole) {
  auto clock = std::make_shared<FakeClock>();
  auto leaf = std::make_shared<RecordingBatchSink>();
  auto limited = std::make_shared<RateLimited>(
      leaf, RateLimited::Options{.per_second = 10, .burst = 1, .clock = clock});
  auto retrying = std::make_shared<Retrying>(limited, backoff(), retry_options(clock));
  Queue q(retrying, {.capacity = 0, .batch = {.max_events = 4, .max_wait = 1h}});
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  ASSERT_TRUE(q.close().is_ok());
  EXPECT_EQ(sizes(leaf->batches()), (std::vector<std::size_t>{4, 4}));
  EXPECT_EQ(retrying->stats().delivered, 8u);
  // The first batch takes 4 tokens of a bucket of 1: the second waits from -3 to 1 token, 400 ms.
  EXPECT_EQ(clock->sleeps(), (std::vector<Clock::Duration>{400ms}));
}

}  // namespace
}  // namespace evroute
