// Queue wake-ups (queue.h, "Wake-ups"): a worker that keeps catching up spins (on four cores or
// more) or dozes (fewer: no core to spin on) instead of being woken per event, one that gives up
// parks and is woken by the next event, and spinning never keeps another queue's worker from being
// woken (a slow destination holds back only its own queue).
//
// Sequencing, not timing: stats().delivered is updated under the queue's lock in the same hold in
// which the worker then either starts spinning or parks, so once a test sees an event delivered,
// the worker is spinning or parked when the next write comes. The spins are long (seconds) so that
// none ends by itself within a test; close() ends them.
#include "evroute/queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/events.h"
#include "support/eventually.h"
#include "support/fake_sinks.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;

using evtest::ev;

using evtest::eventually;

using evtest::GatedSink;
using evtest::RecordingSink;

// Writes `n` events, each once the previous one is delivered: the worker runs out of events
// before every write.
::testing::AssertionResult write_one_at_a_time(Queue& q, int n) {
  const std::uint64_t base = q.stats().delivered;
  for (int i = 0; i < n; ++i) {
    if (!q.write(ev(i)).is_ok()) return ::testing::AssertionFailure() << "write " << i;
    if (!eventually([&] { return q.stats().delivered == base + i + 1; })) {
      return ::testing::AssertionFailure() << "event " << i << " not delivered";
    }
  }
  return ::testing::AssertionSuccess();
}

bool can_spin() { return std::thread::hardware_concurrency() >= 2; }

Queue::Options spinning(std::chrono::nanoseconds spin) {
  Queue::Options o;
  o.spin = spin;
  return o;
}

TEST(QueueWakeupsTest, WithoutSpinningEveryEventAfterARunOutWakesTheWorker) {
  auto sink = std::make_shared<RecordingSink>();
  Queue q(sink, spinning(0ns));
  ASSERT_TRUE(eventually([&] { return q.stats().parked_workers == 1; }));  // the thread started
  ASSERT_TRUE(write_one_at_a_time(q, 50));
  EXPECT_EQ(q.stats().wakeups, 50u);
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->count(), 50);
}

// A request's events handed over at once (write_all, as the daemon's router does through the
// Broadcaster) wake a parked worker once, not once per event.
TEST(QueueWakeupsTest, WriteAllWakesAParkedWorkerOnceForAllItsEvents) {
  auto sink = std::make_shared<RecordingSink>();
  Queue q(sink, spinning(0ns));
  ASSERT_TRUE(eventually([&] { return q.stats().parked_workers == 1; }));
  std::vector<Event> events;
  for (int i = 0; i < 100; ++i) events.push_back(ev(i));
  ASSERT_TRUE(q.write_all(events).is_ok());
  ASSERT_TRUE(eventually([&] { return sink->count() == 100; }));
  EXPECT_EQ(q.stats().wakeups, 1u);
  EXPECT_EQ(q.stats().enqueued, 100u);
  EXPECT_TRUE(q.close().is_ok());
}

TEST(QueueWakeupsTest, AWorkerThatKeepsCatchingUpSpinsOrDozesInsteadOfBeingWokenPerEvent) {
  if (!can_spin()) GTEST_SKIP() << "one core: workers never spin";
  // The first few run-outs teach it that spinning pays (about six); then no writer wakes it. A
  // spin (four cores or more) lasts until the next write: sequencing. A doze (two or three cores)
  // catches the next write only within 50 us of the run-out, which a writer that loses its core
  // to another process (ctest -j2 under TSan) misses: the best of three tries counts.
  std::uint64_t fewest = ~std::uint64_t{0};
  for (int attempt = 0; attempt < 3 && fewest >= 10; ++attempt) {
    auto sink = std::make_shared<RecordingSink>();
    Queue q(sink, spinning(10s));
    ASSERT_TRUE(write_one_at_a_time(q, 50));
    fewest = std::min(fewest, q.stats().wakeups);
    EXPECT_TRUE(q.close().is_ok());  // ends the spin at once, not after 10 s
    EXPECT_EQ(sink->count(), 50);
  }
  EXPECT_LT(fewest, 10u);
}

TEST(QueueWakeupsTest, AWorkerThatGivesUpSpinningParksAndTheNextEventWakesIt) {
  auto sink = std::make_shared<RecordingSink>();
  Queue q(sink, spinning(50ms));
  ASSERT_TRUE(write_one_at_a_time(q, 20));
  if (can_spin()) {
    EXPECT_LT(q.stats().wakeups, 20u);  // it did spin
  }
  ASSERT_TRUE(eventually([&] { return q.stats().parked_workers == 1; }));
  const std::uint64_t woken = q.stats().wakeups;
  ASSERT_TRUE(q.write(ev(20)).is_ok());
  ASSERT_TRUE(eventually([&] { return sink->count() == 21; }));
  EXPECT_EQ(q.stats().wakeups, woken + 1);
  EXPECT_TRUE(q.close().is_ok());
}

TEST(QueueWakeupsTest, ASpinningQueueAndASlowOneDelayNoOtherQueue) {
  // `idle` learns to spin and then spins on (on two cores it holds the only spinning slot);
  // `slow`'s destination holds its first write until the end.
  auto idle_sink = std::make_shared<RecordingSink>();
  auto slow_sink = std::make_shared<GatedSink>();
  auto fast_sink = std::make_shared<RecordingSink>();
  Queue idle(idle_sink, spinning(10s));
  Queue slow(slow_sink, spinning(10s));
  Queue fast(fast_sink, spinning(10s));
  ASSERT_TRUE(write_one_at_a_time(idle, 20));

  // Every event goes to both `slow` and `fast`, as a Broadcaster would: `fast` delivers each one
  // while `slow` is stuck on its first.
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(slow.write(ev(i)).is_ok());
    ASSERT_TRUE(fast.write(ev(i)).is_ok());
    ASSERT_TRUE(eventually([&] { return fast_sink->count() == i + 1; })) << "event " << i;
  }
  EXPECT_EQ(slow_sink->count(), 0);
  EXPECT_EQ(slow.stats().pending, 50u);

  slow_sink->open();
  ASSERT_TRUE(eventually([&] { return slow_sink->count() == 50; }));
  for (Queue* q : {&idle, &slow, &fast}) EXPECT_TRUE(q->close().is_ok());
}

}  // namespace
}  // namespace evroute
