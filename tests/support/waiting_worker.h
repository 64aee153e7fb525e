// Helpers shared by the queue tests whose worker waits on purpose after a delivery (lingering,
// settling): starting that wait, and checking that a writer blocked for room ends it.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>

#include "evroute/queue.h"
#include "support/events.h"
#include "support/eventually.h"
#include "support/fake_sinks.h"

namespace evtest {

// Writes ev(0) into an idle queue and waits until it is delivered: a take of one, after which the
// worker waits (lingers or settles).
inline void deliver_first(evroute::Queue& q, RecordingBatchSink& sink) {
  ASSERT_TRUE(eventually([&] { return q.stats().parked_workers == 1; }));
  ASSERT_TRUE(q.write(ev(0)).is_ok());
  ASSERT_TRUE(eventually([&] { return sink.total() == 1; }));
}

// A writer blocked for room in a full kBlock queue must end the wait, get its event in, and be
// counted as neither rejected nor dropped. `q` is full, its worker waiting by itself for much
// longer than the test runs, and `sink` has `delivered` events. Writes `next` from another thread
// and expects it to get in, then everything (delivered + capacity + 1) to reach the sink by
// close().
inline void expect_a_blocked_writer_ends_the_wait(evroute::Queue& q, RecordingBatchSink& sink,
                                                  std::size_t delivered, evroute::Event next) {
  std::atomic<bool> written{false};
  std::thread writer([&] {
    EXPECT_TRUE(q.write(next).is_ok());
    written = true;
  });
  EXPECT_TRUE(eventually([&] { return written.load(); }));
  EXPECT_GE(sink.total(), delivered + 1);  // at most `capacity` pending once it got in
  EXPECT_TRUE(q.close().is_ok());          // (ends the wait, if the worker never made room)
  writer.join();
  EXPECT_EQ(sink.total(), delivered + q.options().capacity + 1);
  EXPECT_EQ(q.stats().rejected_full, 0u);
}

// A queue of a plain Sink (not a BatchSink) with `options` (a linger or settle of an hour) waits
// too: after its first delivery, ten writes wake nobody and stay with the queue until close().
inline void expect_an_unbatched_queue_waits(const evroute::Queue::Options& options) {
  auto sink = std::make_shared<RecordingSink>();
  evroute::Queue q(sink, options);
  ASSERT_TRUE(eventually([&] { return q.stats().parked_workers == 1; }));
  ASSERT_TRUE(q.write(ev(0)).is_ok());
  ASSERT_TRUE(eventually([&] { return sink->count() == 1; }));
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(q.write(ev(i)).is_ok());
  EXPECT_EQ(q.stats().wakeups, 1u);
  EXPECT_EQ(sink->count(), 1);  // gathered, not yet delivered (the wait is an hour)
  EXPECT_TRUE(q.close().is_ok());
  EXPECT_EQ(sink->count(), 11);
}

}  // namespace evtest
