// The Queue under concurrency (queue.h; issue 15's lock-free hand-over between producers and
// workers): several producers at once, write() and write_all(), every overflow policy, one and
// several workers, more events than a FIFO segment holds; every event is delivered or accounted
// for exactly once. And the hand-over's one race: a worker that parks (or dozes) just as a
// producer publishes must still get the event (a lost wake-up would leave it waiting forever).
#include "evroute/queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/events.h"
#include "support/eventually.h"
#include "support/fake_sinks.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;
using evtest::eventually;
using evtest::RecordingSink;

// Counts each event id it takes; a second take of one id is a failure.
class CountingSink final : public Sink {
 public:
  Status write(const Event& event) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!seen_.insert(std::string(event.id())).second) ++duplicates_;
    return Status::ok();
  }
  Status close() override { return Status::ok(); }
  std::size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.size();
  }
  int duplicates() const {
    std::lock_guard<std::mutex> lock(mu_);
    return duplicates_;
  }
  bool has(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.count(id) > 0;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::string> seen_;
  int duplicates_ = 0;
};

struct Case {
  const char* name;
  std::size_t capacity;
  OverflowPolicy when_full;
  std::size_t workers;
};

class QueueStressTest : public ::testing::TestWithParam<Case> {};

// 4 producers x 3,000 events (half by write(), half by write_all() in tens): ~47 FIFO segments.
TEST_P(QueueStressTest, EveryEventIsDeliveredOrDeadLetteredExactlyOnce) {
  const Case c = GetParam();
  auto sink = std::make_shared<CountingSink>();
  auto dead = std::make_shared<CountingSink>();
  Queue::Options o;
  o.capacity = c.capacity;
  o.when_full = c.when_full;
  o.workers = c.workers;
  o.dead_letter = dead;
  Queue q(sink, o);

  constexpr int kProducers = 4, kPerProducer = 3000;
  std::vector<std::thread> producers;
  std::atomic<int> refused{0};
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::vector<Event> batch;
      for (int i = 0; i < kPerProducer; ++i) {
        Event e = evtest::ev("p" + std::to_string(p) + "-" + std::to_string(i));
        if (i % 2 == 0) {
          if (!q.write(e).is_ok()) refused.fetch_add(1);
          continue;
        }
        batch.push_back(std::move(e));
        if (batch.size() == 10) {
          if (!q.write_all(batch).is_ok()) refused.fetch_add(1);
          batch.clear();
        }
      }
      if (!batch.empty() && !q.write_all(batch).is_ok()) refused.fetch_add(1);
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_TRUE(q.close().is_ok());

  const std::size_t total = kProducers * kPerProducer;
  const Queue::Stats s = q.stats();
  EXPECT_EQ(refused.load(), 0);  // Block waits forever here; the drop policies answer OK
  EXPECT_EQ(sink->duplicates(), 0);
  EXPECT_EQ(dead->duplicates(), 0);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(sink->count(), s.delivered);
  EXPECT_EQ(dead->count(), s.dropped_newest + s.dropped_oldest);
  EXPECT_EQ(s.enqueued, total - s.dropped_newest);
  EXPECT_EQ(s.delivered + s.dropped_newest + s.dropped_oldest, total);
  EXPECT_EQ(sink->count() + dead->count(), total);  // and no id in both (ids are distinct)
  if (c.when_full == OverflowPolicy::kBlock) {
    EXPECT_EQ(s.delivered, total);
  }
  if (c.capacity > 0) {
    EXPECT_LE(s.high_water, c.capacity);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Policies, QueueStressTest,
    ::testing::Values(Case{"Unbounded", 0, OverflowPolicy::kBlock, 1},
                      Case{"Block", 64, OverflowPolicy::kBlock, 1},
                      Case{"BlockThreeWorkers", 64, OverflowPolicy::kBlock, 3},
                      Case{"DropNewest", 16, OverflowPolicy::kDropNewest, 1},
                      Case{"DropOldest", 16, OverflowPolicy::kDropOldest, 1},
                      Case{"DropOldestThreeWorkers", 16, OverflowPolicy::kDropOldest, 3}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// Batching with a byte bound: the producers count a call's bytes once when they publish it and the
// worker once per take, so the bound must still hold for every batch and nothing be lost.
TEST(QueueStressBatchTest, ConcurrentProducersIntoByteBoundedBatchesLoseNothingAndKeepTheBound) {
  auto sink = std::make_shared<evtest::RecordingBatchSink>();
  Queue::Options o;
  o.capacity = 64;
  o.batch = {.max_events = 32, .max_bytes = 100, .max_wait = {}};
  Queue q(sink, o);
  constexpr int kProducers = 4, kPerProducer = 1500;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::vector<Event> batch;
      for (int i = 0; i < kPerProducer; ++i) {
        // 10-byte payloads: 11 bytes each as the bound counts them, so at most 9 per batch.
        batch.push_back(
            evtest::ev("p" + std::to_string(p) + "-" + std::to_string(i), "0123456789"));
        if (batch.size() == 7 || i + 1 == kPerProducer) {
          ASSERT_TRUE(q.write_all(batch).is_ok());
          batch.clear();
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_TRUE(q.close().is_ok());
  std::set<std::string> ids;
  for (const auto& b : sink->batches()) {
    EXPECT_LE(b.size(), 9u);
    for (const auto& id : b) EXPECT_TRUE(ids.insert(id).second) << id << " twice";
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kProducers * kPerProducer));
  EXPECT_EQ(q.stats().delivered, ids.size());
}

// One event at a time, each written only once the previous one is delivered, after gaps of
// nothing, a yield, or a few microseconds: the worker is running out, spinning, dozing or parking
// just as the next event is published. Each event must arrive without any further write.
TEST(QueueHandOverTest, AnEventPublishedAsTheWorkerParksIsNeverLeftWaiting) {
  for (auto spin : {0ns, std::chrono::nanoseconds(20us)}) {
    auto sink = std::make_shared<CountingSink>();
    Queue::Options o;
    o.spin = spin;
    Queue q(sink, o);
    for (int i = 0; i < 3000; ++i) {
      switch (i % 3) {
        case 0:
          break;
        case 1:
          std::this_thread::yield();
          break;
        default: {
          const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(i % 60);
          while (std::chrono::steady_clock::now() < until) {
          }
        }
      }
      ASSERT_TRUE(q.write(evtest::ev(i)).is_ok());
      ASSERT_TRUE(eventually([&] { return sink->count() == static_cast<std::size_t>(i) + 1; }))
          << "event " << i << " (spin " << spin.count() << " ns) was not delivered";
    }
    EXPECT_TRUE(q.close().is_ok());
  }
}

}  // namespace
}  // namespace evroute
