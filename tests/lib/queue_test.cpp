// Queue: FIFO delivery on its own thread, bounded with overflow policies, close with a deadline.
//
// Tests never sleep to assert timing: they sequence on the test sink (a write has entered or
// returned) and on Queue::stats() (a writer is blocked), and bound only the waits that a deadline
// governs.
#include "evroute/queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "evroute/channel.h"

#include "support/events.h"
#include "support/eventually.h"
#include "support/fake_sinks.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

using evtest::ev;

using evtest::eventually;

using evtest::GatedSink;
using evtest::RecordingSink;

using Ids = std::vector<std::string>;

TEST(QueueTest, DeliversInFifoOrderAndCloseDrainsEverything) {
  auto sink = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 0});
  Ids sent;
  for (int i = 0; i < 1000; ++i) {
    sent.push_back(std::to_string(i));
    ASSERT_TRUE(q.write(ev(sent.back())).is_ok());
  }
  const auto report = q.close_until(SteadyClock::now() + 60s);
  EXPECT_FALSE(report.timed_out);
  EXPECT_EQ(report.undelivered, 0u);
  EXPECT_EQ(sink->ids(), sent);
  EXPECT_EQ(sink->closes(), 1);
  const auto s = q.stats();
  EXPECT_EQ(s.enqueued, 1000u);
  EXPECT_EQ(s.delivered, 1000u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_GE(s.high_water, 1u);
}

TEST(QueueTest, PendingCountsWaitingAndInFlightEvents) {
  auto sink = std::make_shared<GatedSink>();
  Queue q(sink, {.capacity = 0});
  for (const char* id : {"a", "b", "c", "d", "e"}) ASSERT_TRUE(q.write(ev(id)).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  auto s = q.stats();
  EXPECT_EQ(s.enqueued, 5u);
  EXPECT_EQ(s.pending, 5u);  // four waiting, one with the destination
  EXPECT_EQ(s.high_water, 5u);
  EXPECT_EQ(s.delivered, 0u);

  sink->release(5);
  EXPECT_TRUE(q.close().is_ok());
  s = q.stats();
  EXPECT_EQ(s.delivered, 5u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.high_water, 5u);
  EXPECT_EQ(sink->ids(), (Ids{"a", "b", "c", "d", "e"}));
}

TEST(QueueTest, ConcurrentProducersKeepTheirOrderAndLoseNothing) {
  auto sink = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 64, .when_full = OverflowPolicy::kBlock, .max_batch = 16});
  constexpr int kProducers = 4, kEach = 2500;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(q.write(ev(std::to_string(p) + ":" + std::to_string(i))).is_ok());
      }
    });
  }
  for (auto& t : producers) t.join();
  EXPECT_TRUE(q.close().is_ok());

  const Ids ids = sink->ids();
  ASSERT_EQ(ids.size(), std::size_t{kProducers * kEach});
  std::vector<int> next(kProducers, 0);
  for (const auto& id : ids) {
    const int p = std::stoi(id.substr(0, id.find(':')));
    const int i = std::stoi(id.substr(id.find(':') + 1));
    ASSERT_EQ(i, next[p]) << "producer " << p << " out of order (or an event twice)";
    ++next[p];
  }
  const auto s = q.stats();
  EXPECT_EQ(s.enqueued, std::uint64_t{kProducers * kEach});
  EXPECT_EQ(s.delivered, s.enqueued);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.rejected_full, 0u);
  EXPECT_GE(s.high_water, 1u);
  EXPECT_LE(s.high_water, 64u);
}

TEST(QueueTest, BlockTimesOutWithFullAndCountsIt) {
  auto sink = std::make_shared<GatedSink>();
  auto dead = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 2,
                 .when_full = OverflowPolicy::kBlock,
                 .block_timeout = 50ms,
                 .dead_letter = dead});
  ASSERT_TRUE(q.write(ev("a")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));  // "a" is in flight: it still counts as pending
  ASSERT_TRUE(q.write(ev("b")).is_ok());
  const Status s = q.write(ev("c"));
  EXPECT_EQ(s.code(), Code::kFull) << s;
  auto stats = q.stats();
  EXPECT_EQ(stats.rejected_full, 1u);
  EXPECT_EQ(stats.enqueued, 2u);
  EXPECT_EQ(stats.pending, 2u);
  EXPECT_EQ(stats.blocked_writers, 0u);

  sink->release(2);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), (Ids{"a", "b"}));
  EXPECT_TRUE(dead->ids().empty());  // the writer got "c" back: it is not the queue's to drop
}

TEST(QueueTest, BlockedWriterProceedsOnlyAfterTheInFlightWriteReturns) {
  auto sink = std::make_shared<GatedSink>();
  Queue q(sink, {.capacity = 1, .when_full = OverflowPolicy::kBlock});
  ASSERT_TRUE(q.write(ev("a")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  int returned_before_b = -1;
  std::thread writer([&] {
    EXPECT_TRUE(q.write(ev("b")).is_ok());
    returned_before_b = sink->returned();
  });
  ASSERT_TRUE(eventually([&] { return q.stats().blocked_writers == 1; }));
  EXPECT_EQ(sink->returned(), 0);
  sink->release(1);  // "a" returns: room for "b"
  writer.join();
  EXPECT_EQ(returned_before_b, 1);
  sink->release(1);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), (Ids{"a", "b"}));
  EXPECT_EQ(q.stats().high_water, 1u);
}

TEST(QueueTest, DropNewestKeepsTheQueuedEventsAndDeadLettersTheNewOnes) {
  auto sink = std::make_shared<GatedSink>();
  auto dead = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 2, .when_full = OverflowPolicy::kDropNewest, .dead_letter = dead});
  ASSERT_TRUE(q.write(ev("1")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  ASSERT_TRUE(q.write(ev("2")).is_ok());
  ASSERT_TRUE(q.write(ev("3")).is_ok());  // dropped, but accounted for
  ASSERT_TRUE(q.write(ev("4")).is_ok());  // dropped
  sink->release(10);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), (Ids{"1", "2"}));
  EXPECT_EQ(dead->ids(), (Ids{"3", "4"}));
  const auto s = q.stats();
  EXPECT_EQ(s.enqueued, 2u);
  EXPECT_EQ(s.dropped_newest, 2u);
  EXPECT_EQ(s.dropped_oldest, 0u);
  EXPECT_EQ(s.dead_lettered, 2u);
}

TEST(QueueTest, AdoptQueuesPastCapacityWithoutDroppingAndFailsOnlyWhenClosed) {
  auto sink = std::make_shared<GatedSink>();
  auto dead = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 2, .when_full = OverflowPolicy::kDropNewest, .dead_letter = dead});
  ASSERT_TRUE(q.write(ev("1")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  ASSERT_TRUE(q.write(ev("2")).is_ok());
  // Full: write() drops, adopt() queues anyway.
  ASSERT_TRUE(q.write(ev("3")).is_ok());
  ASSERT_TRUE(q.adopt(ev("a")).is_ok());
  ASSERT_TRUE(q.adopt(ev("b")).is_ok());
  EXPECT_EQ(q.stats().pending, 4u);
  EXPECT_EQ(q.stats().high_water, 4u);
  ASSERT_TRUE(q.write(ev("4")).is_ok());  // still over capacity: dropped
  EXPECT_EQ(q.adopt(Event()).code(), Code::kInvalidArgument);
  sink->release(10);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), (Ids{"1", "2", "a", "b"}));
  EXPECT_EQ(dead->ids(), (Ids{"3", "4"}));
  EXPECT_EQ(q.stats().enqueued, 4u);
  EXPECT_EQ(q.adopt(ev("c")).code(), Code::kClosed);
}

TEST(QueueTest, CloseHandsInFlightAndWaitingEventsToTheDeadLetterSinkInOrder) {
  // What a reload relies on to hand a rebuilt sink's backlog over: close_until(now) interrupts the
  // write in flight and passes it, then everything waiting, to dead_letter, oldest first.
  auto sink = std::make_shared<GatedSink>();
  auto handoff = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 0, .dead_letter = handoff});
  for (const char* id : {"1", "2", "3"}) ASSERT_TRUE(q.write(ev(id)).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  const auto report = q.close_until(SteadyClock::now());
  EXPECT_EQ(report.undelivered, 3u);
  EXPECT_EQ(handoff->ids(), (Ids{"1", "2", "3"}));
}

TEST(QueueTest, DropOldestEvictsTheOldestWaitingEvent) {
  auto sink = std::make_shared<GatedSink>();
  auto dead = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 3, .when_full = OverflowPolicy::kDropOldest, .dead_letter = dead});
  ASSERT_TRUE(q.write(ev("1")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));  // "1" is in flight: not evictable
  for (const char* id : {"2", "3", "4", "5"}) ASSERT_TRUE(q.write(ev(id)).is_ok());
  EXPECT_EQ(q.stats().pending, 3u);
  sink->release(10);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), (Ids{"1", "4", "5"}));
  EXPECT_EQ(dead->ids(), (Ids{"2", "3"}));
  const auto s = q.stats();
  EXPECT_EQ(s.enqueued, 5u);
  EXPECT_EQ(s.dropped_oldest, 2u);
  EXPECT_EQ(s.dropped_newest, 0u);
  EXPECT_EQ(s.dead_lettered, 2u);
}

TEST(QueueTest, DropOldestWithEverythingInFlightDropsTheNewEvent) {
  auto sink = std::make_shared<GatedSink>();
  auto dead = std::make_shared<RecordingSink>();
  Queue q(sink, {.capacity = 1, .when_full = OverflowPolicy::kDropOldest, .dead_letter = dead});
  ASSERT_TRUE(q.write(ev("1")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  ASSERT_TRUE(q.write(ev("2")).is_ok());
  EXPECT_EQ(q.stats().dropped_newest, 1u);
  EXPECT_EQ(q.stats().dropped_oldest, 0u);
  sink->release(10);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), (Ids{"1"}));
  EXPECT_EQ(dead->ids(), (Ids{"2"}));
}

TEST(QueueTest, DropOldestQueuesANewEventThatSharesTheEvictedOnesAllocation) {
  // Fan-out writes one Event handle to many places; writing it twice must still queue it.
  auto sink = std::make_shared<GatedSink>();
  Queue q(sink, {.capacity = 2, .when_full = OverflowPolicy::kDropOldest});
  const Event shared = ev("s");
  ASSERT_TRUE(q.write(ev("1")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  ASSERT_TRUE(q.write(shared).is_ok());
  ASSERT_TRUE(q.write(shared).is_ok());  // evicts the first "s", queues the second
  EXPECT_EQ(q.stats().dropped_oldest, 1u);
  EXPECT_EQ(q.stats().pending, 2u);
  sink->release(10);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->ids(), (Ids{"1", "s"}));
}

TEST(QueueTest, CloseWakesBlockedWritersWithClosedWithoutWaitingForTheDestination) {
  auto sink = std::make_shared<GatedSink>();
  Queue q(sink, {.capacity = 1, .when_full = OverflowPolicy::kBlock});
  ASSERT_TRUE(q.write(ev("a")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));

  std::mutex mu;
  std::condition_variable cv;
  int closed_answers = 0, other_answers = 0;
  std::vector<std::thread> writers;
  for (int i = 0; i < 3; ++i) {
    writers.emplace_back([&] {
      const Status s = q.write(ev("x"));
      std::lock_guard<std::mutex> lock(mu);
      ++(s.is_closed() ? closed_answers : other_answers);
      cv.notify_all();
    });
  }
  ASSERT_TRUE(eventually([&] { return q.stats().blocked_writers == 3; }));

  Queue::CloseReport report;
  std::thread closer([&] { report = q.close_until(SteadyClock::now() + 60s); });
  {
    // "a" is still held by the destination: the writers must not wait for it.
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return closed_answers + other_answers == 3; }));
    EXPECT_EQ(closed_answers, 3);
  }
  EXPECT_EQ(sink->returned(), 0);
  sink->release(1);
  closer.join();
  for (auto& t : writers) t.join();
  EXPECT_FALSE(report.timed_out);
  EXPECT_EQ(report.undelivered, 0u);
  EXPECT_EQ(sink->ids(), (Ids{"a"}));
}

TEST(QueueTest, CloseWithADeadDestinationReturnsByItsDeadlineAndAccountsForEverything) {
  auto sink = std::make_shared<GatedSink>();  // never releases: dead
  auto dead = std::make_shared<RecordingSink>();
  {
    Queue q(sink, {.capacity = 0, .dead_letter = dead});
    Ids sent;
    for (int i = 0; i < 10; ++i) {
      sent.push_back(std::to_string(i));
      ASSERT_TRUE(q.write(ev(sent.back())).is_ok());
    }
    ASSERT_TRUE(sink->wait_entered(1));

    const auto start = SteadyClock::now();
    const auto report = q.close_until(start + 200ms);
    EXPECT_LT(SteadyClock::now() - start, 200ms + 2s);
    EXPECT_TRUE(report.timed_out);
    EXPECT_EQ(report.undelivered, 10u);  // one in flight, nine waiting
    EXPECT_EQ(dead->ids(), sent);        // oldest first
    EXPECT_EQ(sink->closes(), 1);
    EXPECT_EQ(sink->entered(), 1);  // nothing more was tried on the closed destination
    const auto s = q.stats();
    EXPECT_EQ(s.undelivered_at_close, 10u);
    EXPECT_EQ(s.dead_lettered, 10u);
    EXPECT_EQ(s.delivered, 0u);
    EXPECT_EQ(s.failed, 0u);
    EXPECT_EQ(s.pending, 0u);

    // Idempotent: the first report again, and the destination is not closed twice.
    const auto again = q.close_until(SteadyClock::now());
    EXPECT_EQ(again.undelivered, 10u);
    EXPECT_TRUE(again.timed_out);
    const Status closed = q.close();
    EXPECT_EQ(closed.code(), Code::kTimeout) << closed;
    EXPECT_NE(closed.message().find("10"), std::string::npos) << closed;
  }  // the destructor does not close again either
  EXPECT_EQ(sink->closes(), 1);
  EXPECT_EQ(dead->ids().size(), 10u);
  EXPECT_EQ(dead->closes(), 0);  // shared: the queue does not close its dead-letter sink
}

TEST(QueueTest, DestructorDrainsAndClosesTheDestinationOnce) {
  auto sink = std::make_shared<RecordingSink>();
  {
    Queue q(sink, {.capacity = 0});
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  }
  EXPECT_EQ(sink->ids().size(), 100u);
  EXPECT_EQ(sink->closes(), 1);
}

TEST(QueueTest, MaximalCloseTimeoutMeansNoDeadlineRatherThanOverflow) {
  auto sink = std::make_shared<GatedSink>();
  Queue q(sink, {.capacity = 100, .close_timeout = std::chrono::nanoseconds::max()});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  std::thread releaser([&] {
    // wait_for_room answers false once close() has begun; only then let the destination go.
    EXPECT_TRUE(eventually([&] { return !q.wait_for_room(1, SteadyClock::now()); }));
    sink->release(10);
  });
  EXPECT_TRUE(q.close().is_ok());
  releaser.join();
  EXPECT_EQ(q.stats().delivered, 10u);
}

TEST(QueueTest, RejectsEmptyEventsAndWritesAfterClose) {
  auto sink = std::make_shared<RecordingSink>();
  Queue q(sink);
  EXPECT_EQ(q.write(Event()).code(), Code::kInvalidArgument);  // go-events crashed here
  EXPECT_EQ(q.stats().enqueued, 0u);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(q.write(ev("late")).code(), Code::kClosed);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->closes(), 1);
  EXPECT_TRUE(sink->ids().empty());
}

TEST(QueueTest, FailedDestinationWritesAreCountedNotRetriedNorDeadLettered) {
  auto sink = std::make_shared<RecordingSink>();
  sink->answer(Status::rejected("no"));
  auto dead = std::make_shared<RecordingSink>();
  Queue q(sink, {.dead_letter = dead});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  EXPECT_TRUE(q.close().is_ok());  // failures are outcomes, not events left undelivered
  const auto s = q.stats();
  EXPECT_EQ(s.failed, 3u);
  EXPECT_EQ(s.delivered, 0u);
  EXPECT_EQ(s.dead_lettered, 0u);
  EXPECT_EQ(sink->writes(), 3);  // one attempt each
  EXPECT_TRUE(dead->ids().empty());
}

TEST(QueueTest, QueueFeedingAnUnreadChannelStillCloses) {
  // go-events deadlocked here: Close waited forever for a consumer that never came.
  auto channel = std::make_shared<Channel>(1);
  Queue q(channel, {.capacity = 0});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.write(ev(std::to_string(i))).is_ok());
  const auto start = SteadyClock::now();
  const auto report = q.close_until(start + 100ms);
  EXPECT_LT(SteadyClock::now() - start, 100ms + 2s);
  EXPECT_TRUE(report.timed_out);
  EXPECT_EQ(report.undelivered, 4u);  // "0" sits in the channel's buffer; "1" was interrupted
  EXPECT_EQ(q.stats().delivered, 1u);
  EXPECT_TRUE(channel->closed());
  EXPECT_EQ(channel->size(), 1u);
}

TEST(QueueTest, WaitForRoom) {
  auto sink = std::make_shared<GatedSink>();
  Queue q(sink, {.capacity = 3});
  EXPECT_TRUE(q.wait_for_room(3, SteadyClock::now()));
  EXPECT_TRUE(q.wait_for_room(0, SteadyClock::now()));
  EXPECT_FALSE(q.wait_for_room(4, SteadyClock::now() + 60s));  // can never fit: answers at once
  ASSERT_TRUE(q.write(ev("a")).is_ok());
  ASSERT_TRUE(sink->wait_entered(1));
  ASSERT_TRUE(q.write(ev("b")).is_ok());
  EXPECT_TRUE(q.wait_for_room(1, SteadyClock::now()));
  const auto start = SteadyClock::now();
  EXPECT_FALSE(q.wait_for_room(2, start + 20ms));
  EXPECT_GE(SteadyClock::now() - start, 20ms);  // it waited for its deadline
  EXPECT_EQ(q.stats().pending, 2u);             // waiting for room never takes any

  bool room = false;
  std::thread waiter([&] { room = q.wait_for_room(3, SteadyClock::now() + 60s); });
  ASSERT_TRUE(eventually([&] { return q.stats().blocked_writers == 1; }));
  sink->release(2);
  waiter.join();
  EXPECT_TRUE(room);

  // Close wakes a waiter, which then has no room.
  ASSERT_TRUE(q.write(ev("c")).is_ok());
  ASSERT_TRUE(sink->wait_entered(3));
  std::thread closing_waiter([&] { room = q.wait_for_room(3, SteadyClock::now() + 60s); });
  ASSERT_TRUE(eventually([&] { return q.stats().blocked_writers == 1; }));
  std::thread closer([&] { q.close_until(SteadyClock::now() + 60s); });
  closing_waiter.join();
  EXPECT_FALSE(room);
  sink->release(1);
  closer.join();
  EXPECT_FALSE(q.wait_for_room(1, SteadyClock::now()));

  Queue unbounded(std::make_shared<RecordingSink>(), {.capacity = 0});
  EXPECT_TRUE(unbounded.wait_for_room(1000000, SteadyClock::now()));
}

}  // namespace
}  // namespace evroute
