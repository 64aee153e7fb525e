// The Broadcaster's per-thread sink set (broadcaster.h): a writing thread keeps the set it last
// used and checks its version at every write. These tests show that the kept set never stands in
// for a newer one or another broadcaster's: a sink added or removed on another thread is seen by
// the next write, one thread writing to two broadcasters reaches each one's own sinks, and a write
// nested in another (a sink that writes to a broadcaster, the same one included) delivers once.
// And the counters that no longer take a locked instruction per event (counter.h) stay exact with
// several writers.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "evroute/broadcaster.h"
#include "evroute/counter.h"
#include "evroute/filter.h"
#include "support/fake_sinks.h"

namespace evroute {
namespace {

using evtest::RecordingSink;

Event event(int i) { return Event::make("e-" + std::to_string(i), "{}", {{"type", "t"}}); }

TEST(BroadcasterSnapshotTest, ASinkAddedOrRemovedOnAnotherThreadIsSeenByTheNextWrite) {
  auto a = std::make_shared<RecordingSink>();
  auto b = std::make_shared<RecordingSink>();
  Broadcaster broadcaster({a});
  ASSERT_TRUE(broadcaster.write(event(1)).is_ok());  // this thread now keeps the set {a}
  std::thread([&] { ASSERT_TRUE(broadcaster.add(b).is_ok()); }).join();
  ASSERT_TRUE(broadcaster.write(event(2)).is_ok());
  EXPECT_EQ(a->count(), 2);
  EXPECT_EQ(b->count(), 1);
  std::thread([&] { ASSERT_TRUE(broadcaster.remove(a).is_ok()); }).join();
  ASSERT_TRUE(broadcaster.write(event(3)).is_ok());
  EXPECT_EQ(a->count(), 2);
  EXPECT_EQ(b->count(), 2);
  std::thread([&] { ASSERT_TRUE(broadcaster.close().is_ok()); }).join();
  EXPECT_TRUE(broadcaster.write(event(4)).is_closed());
}

TEST(BroadcasterSnapshotTest, OneThreadWritingToTwoBroadcastersReachesEachOnesOwnSinks) {
  auto a = std::make_shared<RecordingSink>();
  auto b = std::make_shared<RecordingSink>();
  Broadcaster first({a});
  Broadcaster second({b});
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(first.write(event(i)).is_ok());
    ASSERT_TRUE(second.write(event(i)).is_ok());
    ASSERT_TRUE(second.write(event(i)).is_ok());
  }
  EXPECT_EQ(a->count(), 10);
  EXPECT_EQ(b->count(), 20);
}

// Writes each event it takes to `next` (a broadcaster), once.
class ForwardingSink final : public Sink {
 public:
  explicit ForwardingSink(Broadcaster* next) : next_(next) {}
  Status write(const Event& e) override {
    if (depth_++ == 0) {
      Status s = next_->write(e);
      --depth_;
      return s;
    }
    --depth_;
    return Status::ok();
  }
  Status close() override { return Status::ok(); }

 private:
  Broadcaster* next_;
  int depth_ = 0;
};

TEST(BroadcasterSnapshotTest, AWriteNestedInAnotherDeliversOnceToEachSink) {
  auto inner_sink = std::make_shared<RecordingSink>();
  auto outer_sink = std::make_shared<RecordingSink>();
  Broadcaster inner({inner_sink});
  Broadcaster outer({outer_sink});
  ASSERT_TRUE(outer.add(std::make_shared<ForwardingSink>(&inner)).is_ok());
  auto after = std::make_shared<RecordingSink>();  // after the nested write, in the outer set
  ASSERT_TRUE(outer.add(after).is_ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(outer.write(event(i)).is_ok());
  EXPECT_EQ(outer_sink->count(), 5);
  EXPECT_EQ(inner_sink->count(), 5);
  EXPECT_EQ(after->count(), 5);
}

TEST(BroadcasterSnapshotTest, AWriteNestedInAWriteToTheSameBroadcasterDeliversToEachSinkOnce) {
  auto sink = std::make_shared<RecordingSink>();
  Broadcaster broadcaster({sink});
  auto loop = std::make_shared<ForwardingSink>(&broadcaster);  // writes each event back, once
  ASSERT_TRUE(broadcaster.add(loop).is_ok());
  ASSERT_TRUE(broadcaster.write(event(1)).is_ok());
  EXPECT_EQ(sink->count(), 2);  // the write, and the one nested in it
}

TEST(BroadcasterSnapshotTest, CountsStayExactWithSeveralWriters) {
  auto sink = std::make_shared<RecordingSink>();
  auto filter =
      std::make_shared<Filter>(sink, [](const Event& e) { return e.id().ends_with("0"); });
  Broadcaster broadcaster({filter});
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) ASSERT_TRUE(broadcaster.write(event(i)).is_ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(broadcaster.stats().events, std::uint64_t{kThreads * kEach});
  EXPECT_EQ(filter->stats().matched, std::uint64_t{kThreads * kEach / 10});
  EXPECT_EQ(filter->stats().filtered_out, std::uint64_t{kThreads * kEach * 9 / 10});
  EXPECT_EQ(sink->count(), kThreads * kEach / 10);
}

TEST(OwnedCounterTest, AddsFromTheOwnerAndFromOtherThreadsAllCount) {
  detail::OwnedCounter counter;
  counter.add(5);  // this thread owns it now
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) counter.add();
    });
  }
  for (int i = 0; i < 10000; ++i) counter.add(2);
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.value(), 5u + 30000u + 20000u);
}

}  // namespace
}  // namespace evroute
