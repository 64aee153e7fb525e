// Queue settling (queue.h, "Settling"): a worker whose last take was not full waits `settle`
// before it looks at the queue again, so what comes meanwhile is taken together and wakes nobody;
// close and a writer waiting for room end the wait; a queue at half its capacity, one with
// several workers, and one that lingers do not settle.
//
// Sequencing, not timing: the settles are long (an hour), so none ends by itself within a test;
// each test waits for the condition that ends it early, or shows that the worker did not settle
// (the next event is delivered while an hour's settle would still be running).
#include "evroute/queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "support/events.h"
#include "support/eventually.h"
#include "support/fake_sinks.h"
#include "support/waiting_worker.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;
using evtest::ev;
using evtest::eventually;
using evtest::RecordingBatchSink;
using evtest::RecordingSink;

Queue::Options settling(std::chrono::nanoseconds settle) {
  Queue::Options o;
  o.settle = settle;
  o.batch = {.max_events = 256, .max_bytes = 0, .max_wait = {}};  // take what is waiting
  return o;
}

TEST(QueueSettleTest, EventsWrittenWhileTheWorkerSettlesAreTakenTogetherAndWakeNobody) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, settling(1h));
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(q.write(ev(i)).is_ok());
  EXPECT_EQ(q.stats().wakeups, 1u);  // only the first event, which found the worker parked
  EXPECT_EQ(sink->total(), 1u);      // the worker does not look until its settle ends
  // close ends the settle (an hour otherwise): the twenty go in one write.
  const Queue::CloseReport report = q.close_until(std::chrono::steady_clock::now() + 1h);
  EXPECT_EQ(report.undelivered, 0u);
  EXPECT_EQ(sink->sizes(), (std::vector<std::size_t>{1, 20}));
}

TEST(QueueSettleTest, AnUnbatchedQueueSettlesToo) {
  Queue::Options o;
  o.settle = 1h;
  evtest::expect_an_unbatched_queue_waits(o);
}

TEST(QueueSettleTest, AWriterWaitingForRoomEndsTheSettle) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue::Options o = settling(1h);
  o.capacity = 4;  // one pending at the first take: under half, so the worker settles
  o.when_full = OverflowPolicy::kBlock;
  Queue q(sink, o);
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(q.write(ev(i)).is_ok());  // full now
  // The fifth must wait for room, which only the settling worker can make.
  evtest::expect_a_blocked_writer_ends_the_wait(q, *sink, 1, ev(5));
}

// A settle could let a small queue fill and drop what a prompt worker would have delivered.
TEST(QueueSettleTest, AQueueAtHalfItsCapacityDoesNotSettle) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue::Options o = settling(1h);
  o.capacity = 2;  // the first take leaves one pending: half
  o.when_full = OverflowPolicy::kDropNewest;
  Queue q(sink, o);
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  ASSERT_TRUE(q.write(ev(1)).is_ok());
  EXPECT_TRUE(eventually([&] { return sink->total() == 2; }));  // not an hour later
  EXPECT_EQ(q.stats().dropped_newest, 0u);
  EXPECT_TRUE(q.close().is_ok());
}

TEST(QueueSettleTest, AQueueWithSeveralWorkersDoesNotSettle) {
  auto sink = std::make_shared<RecordingSink>();
  Queue::Options o;
  o.settle = 1h;
  o.workers = 2;  // takes of one event: each is full
  Queue q(sink, o);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(q.write(ev(i)).is_ok());
    ASSERT_TRUE(eventually([&] { return sink->count() == i + 1; })) << "event " << i;
  }
  EXPECT_TRUE(q.close().is_ok());
}

TEST(QueueSettleTest, ALingeringQueueDoesNotSettle) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue::Options o = settling(1h);
  o.linger = 1ms;  // a linger passes; a settle would hold the next event for an hour
  Queue q(sink, o);
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  ASSERT_TRUE(eventually([&] { return q.stats().parked_workers == 1; }));
  ASSERT_TRUE(q.write(ev(1)).is_ok());
  EXPECT_TRUE(eventually([&] { return sink->total() == 2; }));
  EXPECT_TRUE(q.close().is_ok());
}

TEST(QueueSettleTest, WithoutSettlingTheNextEventGoesAtOnce) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, settling(0ns));
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  ASSERT_TRUE(q.write(ev(1)).is_ok());
  EXPECT_TRUE(eventually([&] { return sink->total() == 2; }));
  EXPECT_TRUE(q.close().is_ok());
}

}  // namespace
}  // namespace evroute
