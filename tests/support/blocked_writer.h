// A check shared by the queue tests whose worker waits on purpose (lingering, settling): a writer
// blocked for room in a full kBlock queue must end the wait, get its event in, and be counted as
// neither rejected nor dropped.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <thread>

#include "evroute/queue.h"
#include "support/eventually.h"
#include "support/fake_sinks.h"

namespace evtest {

// `q` (kBlock) is full, its worker waiting by itself for much longer than the test runs, and
// `sink` has `delivered` events. Writes `next` from another thread and expects it to get in, then
// everything (delivered + capacity + 1) to reach the sink by close().
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

}  // namespace evtest
