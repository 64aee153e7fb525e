// Queue lingering (queue.h, "Lingering"): a worker that has just delivered gathers what comes
// within `linger` into its next destination write, unless a full take is waiting, the queue is
// full, a writer waits for room, or the queue closes; the first event after an idle spell goes at
// once.
//
// Sequencing, not timing: the lingers are long (seconds), so none ends by itself before the test
// has written what it gathers; each test then waits for the condition that ends the linger early
// (or for the linger to pass, where that is the behaviour under test).
#include "evroute/queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/events.h"
#include "support/eventually.h"
#include "support/fake_sinks.h"
#include "support/waiting_worker.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;
using evtest::eventually;

using evtest::ev;

using evtest::RecordingBatchSink;
using evtest::RecordingSink;

Queue::Options lingering(std::chrono::nanoseconds linger, std::size_t batch = 256) {
  Queue::Options o;
  o.linger = linger;
  o.batch = {.max_events = batch, .max_bytes = 0, .max_wait = {}};
  return o;
}

TEST(QueueLingerTest, EventsWrittenWhileTheWorkerLingersGoToTheDestinationTogether) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, lingering(2s));
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  EXPECT_EQ(q.stats().wakeups, 1u);  // the idle worker was woken for the first event
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(q.write(ev(i)).is_ok());
  // Twenty writes woke nobody; when the linger ends, one write takes all of them.
  EXPECT_EQ(q.stats().wakeups, 1u);
  ASSERT_TRUE(eventually([&] { return sink->total() == 21; }));
  EXPECT_EQ(sink->sizes(), (std::vector<std::size_t>{1, 20}));
  EXPECT_TRUE(q.close().is_ok());
}

TEST(QueueLingerTest, AFullTakeWaitingEndsTheLingerAtOnce) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, lingering(1h, /*batch=*/4));
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(q.write(ev(i)).is_ok());
  EXPECT_EQ(q.stats().wakeups, 1u);
  ASSERT_TRUE(q.write(ev(4)).is_ok());  // the fourth fills a take: the worker goes now
  ASSERT_TRUE(eventually([&] { return sink->total() == 5; }));
  EXPECT_EQ(sink->sizes(), (std::vector<std::size_t>{1, 4}));
  // Woken for the fourth, unless it was still writing the first then (it sees the full take
  // when it starts to linger).
  EXPECT_LE(q.stats().wakeups, 2u);
  EXPECT_TRUE(q.close().is_ok());
}

TEST(QueueLingerTest, CloseEndsTheLingerAndDeliversWhatWasGathered) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, lingering(1h));
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(q.write(ev(i)).is_ok());
  const Queue::CloseReport report = q.close_until(std::chrono::steady_clock::now() + 1h);
  EXPECT_EQ(report.undelivered, 0u);
  EXPECT_FALSE(report.timed_out);
  EXPECT_EQ(sink->total(), 6u);
}

// The longest linger there is: the deadline saturates instead of overflowing (UBSan would say),
// and close still ends it.
TEST(QueueLingerTest, AnEndlessLingerIsEndedByClose) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, lingering(std::chrono::nanoseconds::max()));
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  ASSERT_TRUE(q.write(ev(1)).is_ok());
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->total(), 2u);
}

TEST(QueueLingerTest, AWriterWaitingForRoomEndsTheLinger) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue::Options o = lingering(1h);
  o.capacity = 3;
  o.when_full = OverflowPolicy::kBlock;
  Queue q(sink, o);
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(q.write(ev(i)).is_ok());  // the queue is full now
  // A fourth write must wait for room, which only the lingering worker can make: it must not
  // gather for an hour while a writer waits.
  evtest::expect_a_blocked_writer_ends_the_wait(q, *sink, 1, ev(4));
}

TEST(QueueLingerTest, AfterAQuietLingerTheWorkerParksAndTheNextEventGoesAtOnce) {
  auto sink = std::make_shared<RecordingBatchSink>();
  Queue q(sink, lingering(20ms));
  ASSERT_NO_FATAL_FAILURE(evtest::deliver_first(q, *sink));
  // Nothing comes within the linger: the worker parks, and the next event wakes it.
  ASSERT_TRUE(eventually([&] { return q.stats().parked_workers == 1; }));
  ASSERT_TRUE(q.write(ev(1)).is_ok());
  ASSERT_TRUE(eventually([&] { return sink->total() == 2; }));
  EXPECT_EQ(q.stats().wakeups, 2u);
  EXPECT_EQ(sink->sizes(), (std::vector<std::size_t>{1, 1}));
  EXPECT_TRUE(q.close().is_ok());
}

TEST(QueueLingerTest, AnUnbatchedQueueLingersToo) {
  Queue::Options o;
  o.linger = 1h;
  evtest::expect_an_unbatched_queue_waits(o);
}

}  // namespace
}  // namespace evroute
