// Queue: FIFO delivery on its own thread, bounded with overflow policies, close with a deadline.
#include "evroute/queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "evroute/channel.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;

Event ev(const std::string& id) { return Event::make(id, "{}"); }

// Records every event; optionally holds each write until released (a slow or dead destination).
class TestSink final : public Sink {
 public:
  explicit TestSink(bool gated = false) : gated_(gated) {}

  Status write(const Event& e) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !gated_ || closed_ || permits_ > 0; });
    if (closed_) return Status::closed();
    if (gated_) --permits_;
    if (!answer_.is_ok()) return answer_;
    ids_.push_back(std::string(e.id()));
    cv_.notify_all();
    return Status::ok();
  }
  Status close() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++closes_;
    closed_ = true;
    cv_.notify_all();
    return Status::ok();
  }
  void release(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    permits_ += n;
    cv_.notify_all();
  }
  void fail_with(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = std::move(s);
  }
  bool wait_entered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return entered_ >= n; });
  }
  bool wait_ids(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return ids_.size() >= n; });
  }
  std::vector<std::string> ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  int closes() {
    std::lock_guard<std::mutex> lock(mu_);
    return closes_;
  }

 private:
  const bool gated_;
  std::mutex mu_;
  std::condition_variable cv_;
  int permits_ = 0, entered_ = 0, closes_ = 0;
  bool closed_ = false;
  Status answer_;
  std::vector<std::string> ids_;
};

TEST(QueueTest, DeliversInOrderAndCloseDrains) {
  auto sink = std::make_shared<TestSink>();
  Queue q(sink, {.capacity = 0});
  std::vector<std::string> sent;
  for (int i = 0; i < 1000; ++i) {
    sent.push_back(std::to_string(i));
    ASSERT_TRUE(q.write(ev(sent.back())).is_ok());
  }
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), sent);
  EXPECT_EQ(sink->closes(), 1);
  const auto s = q.stats();
  EXPECT_EQ(s.enqueued, 1000u);
  EXPECT_EQ(s.delivered, 1000u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_GE(s.high_water, 1u);
}

TEST(QueueTest, ConcurrentProducersKeepTheirOrderAndLoseNothing) {
  auto sink = std::make_shared<TestSink>();
  Queue q(sink, {.capacity = 64, .when_full = OverflowPolicy::kBlock});
  constexpr int kProducers = 4, kEach = 5000;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(q.write(ev(std::to_string(p) + ":" + std::to_string(i))).is_ok());
      }
    });
  }
  for (auto& t : producers) t.join();
  q.close();
  auto ids = sink->ids();
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kProducers * kEach));
  std::vector<int> next(kProducers, 0);
  for (const auto& id : ids) {
    const int p = std::stoi(id.substr(0, id.find(':')));
    const int i = std::stoi(id.substr(id.find(':') + 1));
    ASSERT_EQ(i, next[p]) << "producer " << p << " out of order";
    ++next[p];
  }
  EXPECT_LE(q.stats().high_water, 64u);
}

TEST(QueueTest, BlockWaitsForRoomThenTimesOutWithFull) {
  auto sink = std::make_shared<TestSink>(/*gated=*/true);
  Queue q(sink, {.capacity = 2, .when_full = OverflowPolicy::kBlock, .block_timeout = 50ms});
  ASSERT_TRUE(q.write(ev("a")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));  // "a" is in flight: it still counts as pending
  ASSERT_TRUE(q.write(ev("b")).is_ok());
  const Status s = q.write(ev("c"));
  EXPECT_EQ(s.code(), Code::kFull) << s;
  EXPECT_EQ(q.stats().rejected_full, 1u);
  EXPECT_EQ(q.stats().pending, 2u);

  sink->release(1);  // "a" done
  ASSERT_TRUE(sink->wait_ids(1));
  sink->release(100);
  ASSERT_TRUE(sink->wait_ids(2));
  q.close();
}

TEST(QueueTest, CapacityOneBlocksUntilTheInFlightWriteReturns) {
  auto sink = std::make_shared<TestSink>(/*gated=*/true);
  Queue q(sink, {.capacity = 1, .when_full = OverflowPolicy::kBlock});
  ASSERT_TRUE(q.write(ev("a")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  std::atomic<bool> second_done{false};
  std::thread writer([&] {
    EXPECT_TRUE(q.write(ev("b")).is_ok());
    second_done = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(second_done.load());  // still blocked: "a" is pending
  sink->release(2);
  writer.join();
  EXPECT_TRUE(second_done.load());
  q.close();
  EXPECT_EQ(sink->ids(), (std::vector<std::string>{"a", "b"}));
}

TEST(QueueTest, DropNewestKeepsTheQueuedEventsAndDeadLettersTheNewOne) {
  auto sink = std::make_shared<TestSink>(/*gated=*/true);
  auto dead = std::make_shared<TestSink>();
  Queue q(sink, {.capacity = 2, .when_full = OverflowPolicy::kDropNewest, .dead_letter = dead});
  ASSERT_TRUE(q.write(ev("1")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  ASSERT_TRUE(q.write(ev("2")).is_ok());
  ASSERT_TRUE(q.write(ev("3")).is_ok());  // dropped, but accounted for
  ASSERT_TRUE(q.write(ev("4")).is_ok());  // dropped
  sink->release(10);
  q.close();
  EXPECT_EQ(sink->ids(), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(dead->ids(), (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(q.stats().dropped_newest, 2u);
  EXPECT_EQ(q.stats().dead_lettered, 2u);
}

TEST(QueueTest, DropOldestEvictsTheOldestWaitingEvent) {
  auto sink = std::make_shared<TestSink>(/*gated=*/true);
  auto dead = std::make_shared<TestSink>();
  Queue q(sink, {.capacity = 3, .when_full = OverflowPolicy::kDropOldest, .dead_letter = dead});
  ASSERT_TRUE(q.write(ev("1")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));  // "1" in flight: not evictable
  for (const char* id : {"2", "3", "4", "5"}) ASSERT_TRUE(q.write(ev(id)).is_ok());
  sink->release(10);
  q.close();
  EXPECT_EQ(sink->ids(), (std::vector<std::string>{"1", "4", "5"}));
  EXPECT_EQ(dead->ids(), (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(q.stats().dropped_oldest, 2u);
}

TEST(QueueTest, DropOldestWithEverythingInFlightDropsTheNewEvent) {
  auto sink = std::make_shared<TestSink>(/*gated=*/true);
  Queue q(sink, {.capacity = 1, .when_full = OverflowPolicy::kDropOldest});
  ASSERT_TRUE(q.write(ev("1")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  ASSERT_TRUE(q.write(ev("2")).is_ok());
  EXPECT_EQ(q.stats().dropped_newest, 1u);
  sink->release(10);
  q.close();
  EXPECT_EQ(sink->ids(), (std::vector<std::string>{"1"}));
}

TEST(QueueTest, CloseWakesBlockedProducersWithClosed) {
  auto sink = std::make_shared<TestSink>(/*gated=*/true);
  auto q = std::make_shared<Queue>(sink, Queue::Options{.capacity = 1});
  ASSERT_TRUE(q->write(ev("a")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  std::vector<std::thread> blocked;
  std::atomic<int> closed_answers{0};
  for (int i = 0; i < 3; ++i) {
    blocked.emplace_back([&] {
      if (q->write(ev("x")).is_closed()) ++closed_answers;
    });
  }
  std::this_thread::sleep_for(50ms);
  const auto report = q->close_until(std::chrono::steady_clock::now() + 100ms);
  for (auto& t : blocked) t.join();
  EXPECT_EQ(closed_answers.load(), 3);
  EXPECT_EQ(report.undelivered, 1u);  // "a" never finished
}

TEST(QueueTest, CloseWithADeadDestinationReturnsByItsDeadlineAndAccountsForEverything) {
  auto sink = std::make_shared<TestSink>(/*gated=*/true);  // never releases: dead
  auto dead = std::make_shared<TestSink>();
  Queue q(sink, {.capacity = 0, .dead_letter = dead});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  const auto start = std::chrono::steady_clock::now();
  const auto report = q.close_until(start + 200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms + 2s);
  EXPECT_TRUE(report.timed_out);
  EXPECT_EQ(report.undelivered, 10u);
  EXPECT_EQ(dead->ids().size(), 10u);
  EXPECT_EQ(sink->closes(), 1);
  EXPECT_EQ(q.stats().undelivered_at_close, 10u);
  // Idempotent: the same report, the destination not closed again.
  EXPECT_EQ(q.close_until(std::chrono::steady_clock::now()).undelivered, 10u);
  EXPECT_EQ(q.close().code(), Code::kTimeout);
  EXPECT_EQ(sink->closes(), 1);
}

TEST(QueueTest, RejectsEmptyEventsAndWritesAfterClose) {
  auto sink = std::make_shared<TestSink>();
  Queue q(sink);
  EXPECT_EQ(q.write(Event()).code(), Code::kInvalidArgument);  // go-events crashed here
  q.close();
  EXPECT_EQ(q.write(ev("late")).code(), Code::kClosed);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->closes(), 1);
}

TEST(QueueTest, FailedDestinationWritesAreCountedNotRetried) {
  auto sink = std::make_shared<TestSink>();
  sink->fail_with(Status::rejected("no"));
  Queue q(sink);
  for (int i = 0; i < 3; ++i) q.write(ev(std::to_string(i)));
  q.close();
  EXPECT_EQ(q.stats().failed, 3u);
  EXPECT_EQ(q.stats().delivered, 0u);
}

TEST(QueueTest, QueueFeedingAnUnreadChannelStillCloses) {
  // go-events deadlocked here: Close waited forever for a consumer that never came.
  auto channel = std::make_shared<Channel>(1);
  Queue q(channel, {.capacity = 0});
  for (int i = 0; i < 5; ++i) q.write(ev(std::to_string(i)));
  const auto report = q.close_until(std::chrono::steady_clock::now() + 100ms);
  EXPECT_TRUE(report.timed_out);
  EXPECT_GE(report.undelivered, 3u);  // one or two sit in the channel's buffer
  EXPECT_TRUE(channel->closed());
}

TEST(QueueTest, WaitForRoom) {
  auto sink = std::make_shared<TestSink>(/*gated=*/true);
  Queue q(sink, {.capacity = 3});
  EXPECT_TRUE(q.wait_for_room(3, std::chrono::steady_clock::now()));
  ASSERT_TRUE(q.write(ev("a")).is_ok());
  ASSERT_TRUE(q.write(ev("b")).is_ok());
  EXPECT_TRUE(q.wait_for_room(1, std::chrono::steady_clock::now()));
  EXPECT_FALSE(q.wait_for_room(2, std::chrono::steady_clock::now() + 20ms));
  std::thread releaser([&] {
    std::this_thread::sleep_for(20ms);
    sink->release(2);
  });
  EXPECT_TRUE(q.wait_for_room(3, std::chrono::steady_clock::now() + 10s));
  releaser.join();
  Queue unbounded(sink, {.capacity = 0});
  EXPECT_TRUE(unbounded.wait_for_room(1000000, std::chrono::steady_clock::now()));
  sink->release(100);
}

}  // namespace
}  // namespace evroute
