// Channel: a bounded hand-off to consumers, with go-events' write-after-close bug fixed.
#include "evroute/channel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace evroute {
namespace {

using namespace std::chrono_literals;

Event ev(const std::string& id) { return Event::make(id, "{}"); }

TEST(ChannelTest, ReceiveGetsEventsInOrderAndTimesOutWhenEmpty) {
  Channel ch(4);
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  ASSERT_TRUE(ch.write(ev("b")).is_ok());
  Event e;
  ASSERT_TRUE(ch.receive(&e, 1s).is_ok());
  EXPECT_EQ(e.id(), "a");
  ASSERT_TRUE(ch.receive(&e, 1s).is_ok());
  EXPECT_EQ(e.id(), "b");
  EXPECT_EQ(ch.receive(&e, 10ms).code(), Code::kTimeout);
}

TEST(ChannelTest, BufferedEventsOutliveCloseThenReceiveSaysClosed) {
  Channel ch(4);
  ch.write(ev("a"));
  ch.close();
  EXPECT_TRUE(ch.closed());
  Event e;
  ASSERT_TRUE(ch.receive(&e, 1s).is_ok());
  EXPECT_EQ(e.id(), "a");
  EXPECT_EQ(ch.receive(&e, 1s).code(), Code::kClosed);
}

TEST(ChannelTest, WriteAfterCloseFailsEvenWithRoom) {
  Channel ch(4);
  ch.close();
  EXPECT_EQ(ch.write(ev("a")).code(), Code::kClosed);
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_EQ(ch.write(Event()).code(), Code::kInvalidArgument);
}

TEST(ChannelTest, FullChannelTimesOutOrWakesOnClose) {
  Channel timed(1, 20ms);
  ASSERT_TRUE(timed.write(ev("a")).is_ok());
  EXPECT_EQ(timed.write(ev("b")).code(), Code::kFull);

  Channel blocking(1);
  ASSERT_TRUE(blocking.write(ev("a")).is_ok());
  Status blocked_result;
  std::thread writer([&] { blocked_result = blocking.write(ev("b")); });
  std::this_thread::sleep_for(20ms);
  blocking.close();
  writer.join();
  EXPECT_EQ(blocked_result.code(), Code::kClosed);
}

TEST(ChannelTest, ABlockedWriterProceedsWhenAConsumerTakesOne) {
  Channel ch(1);
  ASSERT_TRUE(ch.write(ev("a")).is_ok());
  std::thread writer([&] { EXPECT_TRUE(ch.write(ev("b")).is_ok()); });
  Event e;
  ASSERT_TRUE(ch.receive(&e, 5s).is_ok());
  writer.join();
  ASSERT_TRUE(ch.receive(&e, 5s).is_ok());
  EXPECT_EQ(e.id(), "b");
}

TEST(ChannelTest, SeveralConsumersGetEachEventExactlyOnce) {
  Channel ch(8);
  constexpr int kEvents = 2000;
  std::mutex mu;
  std::multiset<std::string> got;
  std::vector<std::thread> consumers;
  for (int c = 0; c < 3; ++c) {
    consumers.emplace_back([&] {
      Event e;
      while (ch.receive(&e, 5s).is_ok()) {
        std::lock_guard<std::mutex> g(mu);
        got.insert(std::string(e.id()));
      }
    });
  }
  for (int i = 0; i < kEvents; ++i) ASSERT_TRUE(ch.write(ev(std::to_string(i))).is_ok());
  ch.close();
  for (auto& t : consumers) t.join();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(got.count(std::to_string(i)), 1u);
}

}  // namespace
}  // namespace evroute
