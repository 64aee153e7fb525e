// Channel: a bounded hand-off to consumers, with go-events' write-after-close bug fixed.
#include "evroute/channel.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include "support/events.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

using evtest::ev;

// Runs `f` on its own thread; the future tells whether (and with what) it returned. A thread
// that has announced itself is given a moment to block; the assertions hold either way.
template <class F>
std::future<Status> start(F f) {
  std::promise<void> started;
  auto announced = started.get_future();
  auto result = std::async(std::launch::async, [f, started = std::move(started)]() mutable {
    started.set_value();
    return f();
  });
  announced.wait();
  std::this_thread::sleep_for(10ms);
  return result;
}

TEST(ChannelTest, ReceiveGetsEventsInOrderAndTimesOutWhenEmpty) {
  Channel ch(4);
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  ASSERT_TRUE(ch.write(ev("b")).is_ok());
  EXPECT_EQ(ch.size(), 2u);
  Event e;
  ASSERT_TRUE(ch.receive(&e, 1s).is_ok());
  EXPECT_EQ(e.id(), "a");
  ASSERT_TRUE(ch.receive(&e, 1s).is_ok());
  EXPECT_EQ(e.id(), "b");
  const auto start = SteadyClock::now();
  EXPECT_EQ(ch.receive(&e, 20ms).code(), Code::kTimeout);
  EXPECT_GE(SteadyClock::now() - start, 20ms);
  EXPECT_EQ(ch.size(), 0u);
}

TEST(ChannelTest, ReceiversGetBufferedEventsAfterCloseThenClosed) {
  Channel ch(4);
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  ASSERT_TRUE(ch.write(ev("b")).is_ok());
  EXPECT_FALSE(ch.closed());
  EXPECT_TRUE(ch.close().is_ok());
  EXPECT_TRUE(ch.closed());
  EXPECT_TRUE(ch.close().is_ok());  // idempotent
  Event e;
  ASSERT_TRUE(ch.receive(&e, 1s).is_ok());
  EXPECT_EQ(e.id(), "a");
  ASSERT_TRUE(ch.receive(&e, 1s).is_ok());
  EXPECT_EQ(e.id(), "b");
  EXPECT_EQ(ch.receive(&e, 0s).code(), Code::kClosed);
  EXPECT_EQ(ch.receive(&e, 1h).code(), Code::kClosed);  // at once, not after the timeout
}

TEST(ChannelTest, WriteAfterCloseFailsEvenWithRoom) {
  // go-events accepted this write as long as the buffer had room.
  Channel ch(4);
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  ch.close();
  EXPECT_EQ(ch.write(ev("b")).code(), Code::kClosed);
  EXPECT_EQ(ch.size(), 1u);
}

TEST(ChannelTest, RejectsEmptyEventsAndNullOutput) {
  Channel ch(4);
  EXPECT_EQ(ch.write(Event()).code(), Code::kInvalidArgument);
  EXPECT_EQ(ch.size(), 0u);
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  EXPECT_EQ(ch.receive(nullptr, 0s).code(), Code::kInvalidArgument);
  EXPECT_EQ(ch.size(), 1u);
}

// channel.h: capacity 0 throws std::invalid_argument (no unbuffered hand-over); 1 is the smallest.
TEST(ChannelTest, ZeroCapacityThrowsInvalidArgument) {
  try {
    Channel ch(0);
    FAIL() << "Channel(0) did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "Channel: capacity must be > 0");
  }
  Channel one(1, 1ms);
  EXPECT_TRUE(one.write(ev("a")).is_ok());
  EXPECT_EQ(one.write(ev("b")).code(), Code::kFull);
}

TEST(ChannelTest, FullChannelWriteTimesOutWithFull) {
  Channel ch(1, 20ms);
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  const auto start = SteadyClock::now();
  EXPECT_EQ(ch.write(ev("b")).code(), Code::kFull);
  EXPECT_GE(SteadyClock::now() - start, 20ms);
  EXPECT_EQ(ch.size(), 1u);
  Event e;
  ASSERT_TRUE(ch.receive(&e, 0s).is_ok());
  EXPECT_EQ(e.id(), "a");
}

TEST(ChannelTest, CloseWakesABlockedWriterWithClosed) {
  Channel ch(1);  // no write timeout: only close() can end the wait
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  auto blocked = start([&] { return ch.write(ev("b")); });
  EXPECT_EQ(blocked.wait_for(0s), std::future_status::timeout);
  ch.close();
  ASSERT_EQ(blocked.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(blocked.get().code(), Code::kClosed);
  EXPECT_EQ(ch.size(), 1u);  // "b" never got in
}

TEST(ChannelTest, CloseWakesABlockedReceiverWithClosed) {
  Channel ch(1);
  auto blocked = start([&] {
    Event e;
    return ch.receive(&e, 1h);
  });
  ch.close();
  ASSERT_EQ(blocked.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(blocked.get().code(), Code::kClosed);
}

TEST(ChannelTest, ABlockedWriterProceedsWhenAConsumerTakesOne) {
  Channel ch(1);
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  auto blocked = start([&] { return ch.write(ev("b")); });
  Event e;
  ASSERT_TRUE(ch.receive(&e, 10s).is_ok());
  EXPECT_EQ(e.id(), "a");
  ASSERT_EQ(blocked.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(blocked.get().is_ok());
  ASSERT_TRUE(ch.receive(&e, 10s).is_ok());
  EXPECT_EQ(e.id(), "b");
}

TEST(ChannelTest, SeveralConsumersGetEachEventExactlyOnce) {
  Channel ch(8);
  constexpr int kProducers = 2, kEach = 1000;
  std::mutex mu;
  std::multiset<std::string> got;
  std::vector<std::thread> consumers;
  for (int c = 0; c < 3; ++c) {
    consumers.emplace_back([&] {
      Event e;
      Status s;
      while ((s = ch.receive(&e, 10s)).is_ok()) {
        std::lock_guard<std::mutex> lock(mu);
        got.insert(std::string(e.id()));
      }
      EXPECT_EQ(s.code(), Code::kClosed);  // the loop ends on close, not on a timeout
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(ch.write(ev(std::to_string(p) + ":" + std::to_string(i))).is_ok());
      }
    });
  }
  for (auto& t : producers) t.join();
  ch.close();
  for (auto& t : consumers) t.join();
  ASSERT_EQ(got.size(), std::size_t{kProducers * kEach});
  for (int p = 0; p < kProducers; ++p) {
    for (int i = 0; i < kEach; ++i) {
      EXPECT_EQ(got.count(std::to_string(p) + ":" + std::to_string(i)), 1u);
    }
  }
}

}  // namespace
}  // namespace evroute
