#include "evroute/durable_queue.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "support/eventually.h"
#include "support/fake_sinks.h"
#include "support/faulty_file_system.h"

namespace evroute {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using evtest::eventually;
using evtest::GatedSink;
using evtest::RecordingSink;

class DurableQueueTest : public ::testing::Test {
 public:  // event() and expected_ids() serve the helpers below the fixture too
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("evroute-durable-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  DurableQueue::Options options() {
    DurableQueue::Options o;
    o.log.dir = dir_;
    o.log.sync = DiskLog::Sync::kNever;  // these tests are about the queue, not the disk
    o.cursor_interval = std::chrono::milliseconds(1);
    return o;
  }

  std::unique_ptr<DurableQueue> open(std::shared_ptr<Sink> destination, DurableQueue::Options o,
                                     DiskLog::RecoveryReport* report = nullptr) {
    Status error;
    auto q = DurableQueue::open(std::move(destination), std::move(o), &error, report);
    EXPECT_TRUE(error.is_ok()) << error.message();
    return q;
  }

  static Event event(int i) {
    return Event::make("e" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}");
  }

  static std::vector<std::string> expected_ids(int from, int to) {
    std::vector<std::string> ids;
    for (int i = from; i < to; ++i) ids.push_back("e" + std::to_string(i));
    return ids;
  }

  fs::path dir_;
};

TEST_F(DurableQueueTest, DeliversInOrder) {
  auto sink = std::make_shared<RecordingSink>();
  auto q = open(sink, options());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(q->write(event(i)).is_ok());
  ASSERT_TRUE(sink->wait_for_count(100));
  const auto report = q->close_until(Clock::now() + std::chrono::seconds(30));
  EXPECT_EQ(report.kept, 0u);
  EXPECT_FALSE(report.timed_out);
  EXPECT_EQ(sink->ids(), expected_ids(0, 100));
  const auto stats = q->stats();
  EXPECT_EQ(stats.enqueued, 100u);
  EXPECT_EQ(stats.delivered, 100u);
  EXPECT_EQ(stats.pending, 0u);
}

TEST_F(DurableQueueTest, WhatIsNotDeliveredAtCloseIsDeliveredByTheNextOpen) {
  auto stuck = std::make_shared<GatedSink>();
  auto q = open(stuck, options());
  std::vector<Event> batch;
  for (int i = 0; i < 50; ++i) batch.push_back(event(i));
  ASSERT_TRUE(q->write_all(batch).is_ok());
  const auto report = q->close_until(Clock::now() + std::chrono::milliseconds(50));
  EXPECT_TRUE(report.timed_out);
  EXPECT_EQ(report.kept, 50u);
  EXPECT_EQ(q->write(event(99)).code(), Code::kClosed);
  q.reset();

  auto sink = std::make_shared<RecordingSink>();
  q = open(sink, options());
  EXPECT_EQ(q->stats().recovered, 50u);
  ASSERT_TRUE(sink->wait_for_count(50));
  q->close();
  EXPECT_EQ(sink->ids(), expected_ids(0, 50));
}

TEST_F(DurableQueueTest, ProcessKilledWithoutCloseLosesNothing) {
  // A child process appends events, lets some be delivered, and dies without closing anything
  // (as with kill -9): no cursor store at close, no sync at close.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto sink = std::make_shared<GatedSink>();
    sink->release(20);
    auto o = options();
    o.log.sync = DiskLog::Sync::kAlways;
    Status error;
    auto q = DurableQueue::open(sink, o, &error);
    if (!q) ::_exit(2);
    for (int i = 0; i < 200; ++i) {
      if (!q->write(event(i)).is_ok()) ::_exit(3);
    }
    sink->wait_for_count(20);  // 20 delivered, the rest waiting
    ::_exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0);

  auto sink = std::make_shared<RecordingSink>();
  auto q = open(sink, options());
  const auto recovered = q->stats().recovered;
  EXPECT_GE(recovered, 180u);  // the cursor is never ahead of what was delivered
  EXPECT_LE(recovered, 200u);
  ASSERT_TRUE(sink->wait_for_count(recovered));
  q->close();
  // At least once: every event not known delivered comes again, in order, ending with the last.
  const auto ids = sink->ids();
  ASSERT_EQ(ids.size(), recovered);
  EXPECT_EQ(ids, expected_ids(200 - static_cast<int>(recovered), 200));
}

TEST_F(DurableQueueTest, BlockPolicyWaitsForRoomThenRefusesWithFull) {
  auto o = options();
  o.log.max_bytes = 20 * DiskLog::framed_size({event(0), {}});
  o.log.segment_bytes = 4 * DiskLog::framed_size({event(0), {}});
  o.block_timeout = std::chrono::milliseconds(20);
  auto gate = std::make_shared<GatedSink>();
  auto q = open(gate, o);
  int accepted = 0;
  Status last;
  for (int i = 0; i < 100; ++i) {
    last = q->write(event(i));
    if (!last.is_ok()) break;
    ++accepted;
  }
  EXPECT_EQ(last.code(), Code::kFull) << last.message();
  EXPECT_LE(accepted, 20);
  EXPECT_EQ(q->stats().rejected_full, 1u);
  EXPECT_LE(q->stats().disk_bytes, o.log.max_bytes);

  // Once delivery moves, segments are reclaimed and writes fit again (waiting for room as needed).
  gate->open();
  ASSERT_TRUE(gate->wait_for_count(static_cast<std::size_t>(accepted)));
  q->close();
  o.block_timeout = std::chrono::nanoseconds(0);  // wait as long as it takes
  auto sink = std::make_shared<RecordingSink>();
  q = open(sink, o);
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(q->write(event(1000 + i)).is_ok()) << i;
  ASSERT_TRUE(sink->wait_for_count(60));
  q->close();
  EXPECT_EQ(sink->ids(), expected_ids(1000, 1060));
  EXPECT_LE(q->stats().disk_bytes, o.log.max_bytes);
}

TEST_F(DurableQueueTest, DropNewestCountsAndDeadLettersWhatDoesNotFit) {
  auto o = options();
  o.log.max_bytes = 5 * DiskLog::framed_size({event(0), {}});
  o.when_full = OverflowPolicy::kDropNewest;
  auto dead = std::make_shared<RecordingSink>();
  o.dead_letter = dead;
  auto gate = std::make_shared<GatedSink>();
  auto q = open(gate, o);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(q->write(event(i)).is_ok());
  const auto stats = q->stats();
  EXPECT_EQ(stats.enqueued, 5u);
  EXPECT_EQ(stats.dropped_newest, 3u);
  EXPECT_EQ(stats.dead_lettered, 3u);
  EXPECT_EQ(dead->ids(), expected_ids(5, 8));
  gate->open();
  ASSERT_TRUE(gate->wait_for_count(5));
  q->close();
  EXPECT_EQ(gate->ids(), expected_ids(0, 5));
}

TEST_F(DurableQueueTest, DropOldestIsRefused) {
  auto o = options();
  o.when_full = OverflowPolicy::kDropOldest;
  Status error;
  EXPECT_EQ(DurableQueue::open(std::make_shared<RecordingSink>(), o, &error), nullptr);
  EXPECT_EQ(error.code(), Code::kInvalidArgument);
}

TEST_F(DurableQueueTest, ConcurrentWritersLoseNothing) {
  auto o = options();
  o.log.sync = DiskLog::Sync::kAlways;
  auto sink = std::make_shared<RecordingSink>();
  auto q = open(sink, o);
  constexpr int kThreads = 4, kEach = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) EXPECT_TRUE(q->write(event(t * kEach + i)).is_ok());
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(sink->wait_for_count(kThreads * kEach));
  q->close();
  const auto ids = sink->ids();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(),
            static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(q->stats().pending, 0u);
}

// --- Disk errors, injected through the FileSystem seam -------------------------------------------

using evtest::FaultyFileSystem;
using Op = FaultyFileSystem::Op;

TEST_F(DurableQueueTest, AFullDiskRefusesWritesAndTheQueueRecoversWithoutAReopen) {
  auto faults = std::make_shared<FaultyFileSystem>();
  auto sink = std::make_shared<RecordingSink>();
  DurableQueue::Options o = options();
  o.log.sync = DiskLog::Sync::kAlways;
  o.log.fs = faults;
  o.probe_interval = std::chrono::milliseconds(5);
  auto q = open(sink, o);
  ASSERT_TRUE(q->write(event(0)).is_ok());

  faults->fail_always(Op::kWrite, ENOSPC, ".seg");
  std::vector<Event> refused = {event(1), event(2)};
  EXPECT_EQ(q->write_all(refused).code(), Code::kUnavailable);
  EXPECT_EQ(q->write(event(3)).code(), Code::kUnavailable);
  EXPECT_EQ(q->health().code(), Code::kUnavailable);
  EXPECT_NE(q->health().message().find("No space left on device"), std::string::npos);
  EXPECT_GE(q->stats().disk_errors, 2u);
  EXPECT_EQ(q->stats().enqueued, 1u);

  // Space is back: the worker's probe notices without anyone writing, and writes work again.
  faults->clear();
  EXPECT_TRUE(eventually([&] { return q->health().is_ok(); }));
  ASSERT_TRUE(q->write(event(4)).is_ok());
  ASSERT_TRUE(sink->wait_for_count(2));
  q->close();
  EXPECT_EQ(sink->ids(), (std::vector<std::string>{"e0", "e4"}));  // never a refused one
  const auto stats = q->stats();
  EXPECT_EQ(stats.pending, 0u);
  EXPECT_EQ(stats.delivered, 2u);
  q.reset();

  auto again = std::make_shared<RecordingSink>();
  q = open(again, options());
  EXPECT_EQ(q->stats().recovered, 0u);
}

TEST_F(DurableQueueTest, SegmentsAreReleasedEvenWhileTheCursorCannotBeStored) {
  auto faults = std::make_shared<FaultyFileSystem>();
  auto sink = std::make_shared<RecordingSink>();
  DurableQueue::Options o = options();
  o.log.fs = faults;
  o.log.segment_bytes = 256;  // a few events per segment
  faults->fail_always(Op::kWrite, ENOSPC, "/cursor");
  auto q = open(sink, o);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(q->write(event(i)).is_ok());
  ASSERT_TRUE(sink->wait_for_count(100));
  // Every segment but the one being written goes, though no cursor was stored.
  EXPECT_TRUE(eventually([&] { return q->stats().disk_bytes <= 256 + 64; }));
  EXPECT_GT(q->stats().disk_errors, 0u);
  EXPECT_EQ(q->stats().cursor_stores, 0u);
  q->close();
  q.reset();

  // A restart resumes at the oldest segment left: what it redelivers is a part of the last one.
  auto again = std::make_shared<RecordingSink>();
  q = open(again, options());
  EXPECT_LT(q->stats().recovered, 10u);
  q->close();
  for (const auto& id : again->ids()) EXPECT_GE(std::stoi(id.substr(1)), 90) << id;
}

// Batching (durable_queue.h, "Batching"): batches to a BatchSink, bounded by events and bytes,
// filled from later writes within max_wait, and kept when the close deadline cuts one off.

DurableQueue::Options batching(DurableQueue::Options o, std::size_t max_events,
                               std::uint64_t max_bytes = 0,
                               std::chrono::nanoseconds max_wait = {}) {
  o.batch = {.max_events = max_events, .max_bytes = max_bytes, .max_wait = max_wait};
  return o;
}

std::vector<std::string> flatten(const std::vector<evtest::RecordingBatchSink::Ids>& batches) {
  std::vector<std::string> ids;
  for (const auto& b : batches) ids.insert(ids.end(), b.begin(), b.end());
  return ids;
}

// Writes e0..e9 in one write_all, waits until the sink has them, closes, and checks their order.
void deliver_ten(DurableQueue& q, const evtest::RecordingBatchSink& sink) {
  std::vector<Event> events;
  for (int i = 0; i < 10; ++i) events.push_back(DurableQueueTest::event(i));
  ASSERT_TRUE(q.write_all(events).is_ok());
  ASSERT_TRUE(eventually([&] { return sink.total() == 10; }));
  q.close();
  EXPECT_EQ(flatten(sink.batches()), DurableQueueTest::expected_ids(0, 10));
}

TEST_F(DurableQueueTest, BatchesGoToABatchSinkInOrderWithinTheEventBound) {
  auto sink = std::make_shared<evtest::RecordingBatchSink>();
  auto q = open(sink, batching(options(), 4));
  ASSERT_NO_FATAL_FAILURE(deliver_ten(*q, *sink));
  for (std::size_t size : sink->sizes()) EXPECT_LE(size, 4u);
  EXPECT_GE(sink->sizes().size(), 3u);
  const auto stats = q->stats();
  EXPECT_EQ(stats.batches, sink->sizes().size());
  EXPECT_EQ(stats.delivered, 10u);
  EXPECT_EQ(stats.pending, 0u);
}

TEST_F(DurableQueueTest, BatchesStayWithinTheByteBound) {
  auto sink = std::make_shared<evtest::RecordingBatchSink>();
  // Payloads {"n":0} .. {"n":9} are 7 bytes, 8 with the separator: two fit in 16, three do not.
  auto q = open(sink, batching(options(), 100, 16));
  ASSERT_NO_FATAL_FAILURE(deliver_ten(*q, *sink));
  for (std::size_t size : sink->sizes()) EXPECT_LE(size, 2u);
}

TEST_F(DurableQueueTest, ABatchWaitsWithinMaxWaitForLaterWritesToFillIt) {
  auto sink = std::make_shared<evtest::RecordingBatchSink>();
  auto q = open(sink, batching(options(), 5, 0, std::chrono::hours(1)));
  ASSERT_TRUE(q->write(event(0)).is_ok());
  // The worker reads it at once and waits for four more: nothing goes out meanwhile (without
  // max_wait it would go within microseconds).
  EXPECT_FALSE(eventually([&] { return sink->total() > 0; }, std::chrono::milliseconds(100)));
  for (int i = 1; i < 5; ++i) ASSERT_TRUE(q->write(event(i)).is_ok());  // four more appends
  ASSERT_TRUE(eventually([&] { return sink->total() == 5; }));
  EXPECT_EQ(sink->sizes(), (std::vector<std::size_t>{5}));  // not sent before it was full
  q->close();
}

TEST_F(DurableQueueTest, CloseEndsTheWaitForABatchToFillAndDeliversIt) {
  auto sink = std::make_shared<evtest::RecordingBatchSink>();
  auto q = open(sink, batching(options(), 5, 0, std::chrono::hours(1)));
  ASSERT_TRUE(q->write(event(0)).is_ok());
  ASSERT_TRUE(q->write(event(1)).is_ok());
  const auto report = q->close_until(Clock::now() + std::chrono::seconds(30));
  EXPECT_FALSE(report.timed_out);  // an hour's max_wait did not hold the close
  EXPECT_EQ(report.kept, 0u);
  EXPECT_EQ(flatten(sink->batches()), expected_ids(0, 2));
}

// A batch sink that holds every batch until it is closed, then fails it with kClosed.
class StuckBatchSink final : public BatchSink {
 public:
  Status write(const Event&) override { return Status::rejected("batches only"); }
  Status write_batch(std::span<const Event> events, std::span<Status> results) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return closed_; });
    std::fill(results.begin(), results.end(), Status::closed());
    return events.empty() ? Status::ok() : Status::closed();
  }
  Status close() override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
    return Status::ok();
  }
  bool wait_entered() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool closed_ = false;
};

TEST_F(DurableQueueTest, ABatchCutOffAtTheCloseDeadlineIsKeptForTheNextOpen) {
  auto stuck = std::make_shared<StuckBatchSink>();
  auto q = open(stuck, batching(options(), 4));
  std::vector<Event> events;
  for (int i = 0; i < 6; ++i) events.push_back(event(i));
  ASSERT_TRUE(q->write_all(events).is_ok());
  ASSERT_TRUE(stuck->wait_entered());
  const auto report = q->close_until(Clock::now() + std::chrono::milliseconds(50));
  EXPECT_TRUE(report.timed_out);
  EXPECT_EQ(report.kept, 6u);
  EXPECT_EQ(q->stats().failed, 0u);  // interrupted, not failed
  q.reset();

  auto sink = std::make_shared<evtest::RecordingBatchSink>();
  q = open(sink, batching(options(), 4));
  ASSERT_TRUE(eventually([&] { return sink->total() == 6; }));
  q->close();
  EXPECT_EQ(flatten(sink->batches()), expected_ids(0, 6));
}

TEST_F(DurableQueueTest, BatchingNeedsABatchSink) {
  Status error;
  EXPECT_THROW(
      DurableQueue::open(std::make_shared<RecordingSink>(), batching(options(), 4), &error),
      std::invalid_argument);
}

}  // namespace
}  // namespace evroute
