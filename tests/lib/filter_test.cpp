#include "evroute/filter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/fake_sinks.h"

namespace evroute {
namespace {

using evtest::RecordingSink;

Matcher type_is(std::string type) {
  return [type = std::move(type)](const Event& e) { return e.type() == type; };
}

TEST(FilterTest, ForwardsMatchingEventsAndCountsTheRest) {
  auto dest = std::make_shared<RecordingSink>();
  Filter filter(dest, type_is("push"));
  Event push = Event::make("1", "p", {{"type", "push"}});
  Event pull = Event::make("2", "p", {{"type", "pull"}});
  EXPECT_TRUE(filter.write(push).is_ok());
  EXPECT_TRUE(filter.write(pull).is_ok());  // filtered out, yet accepted
  EXPECT_TRUE(filter.write(Event::make("3", "p")).is_ok());
  ASSERT_EQ(dest->events().size(), 1u);
  EXPECT_TRUE(dest->events()[0].same_as(push));
  EXPECT_EQ(filter.stats().matched, 1u);
  EXPECT_EQ(filter.stats().filtered_out, 2u);
  EXPECT_TRUE(filter.matches(push));
  EXPECT_FALSE(filter.matches(pull));
}

TEST(FilterTest, PassesTheDestinationsAnswerThrough) {
  auto dest = std::make_shared<RecordingSink>();
  Filter filter(dest, type_is("push"));
  dest->answer(Status::unavailable("down"));
  Status s = filter.write(Event::make("1", "p", {{"type", "push"}}));
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.message(), "down");
}

TEST(FilterTest, RejectsEmptyEventWithoutAskingTheMatcher) {
  auto dest = std::make_shared<RecordingSink>();
  bool asked = false;
  Filter filter(dest, [&](const Event&) { return asked = true; });
  EXPECT_EQ(filter.write(Event()).code(), Code::kInvalidArgument);
  EXPECT_FALSE(asked);
  EXPECT_TRUE(dest->events().empty());
}

TEST(FilterTest, CloseClosesTheDestinationOnceAndRefusesLaterWrites) {
  auto dest = std::make_shared<RecordingSink>();
  Filter filter(dest, [](const Event&) { return false; });
  EXPECT_TRUE(filter.close().is_ok());
  EXPECT_TRUE(filter.close().is_ok());
  EXPECT_EQ(dest->closes(), 1);
  // Even an event the matcher would discard: a closed sink takes nothing.
  EXPECT_EQ(filter.write(Event::make("1", "p")).code(), Code::kClosed);
  EXPECT_EQ(filter.stats().filtered_out, 0u);
}

TEST(FilterTest, ConcurrentCloseClosesTheDestinationOnce) {
  auto dest = std::make_shared<RecordingSink>();
  Filter filter(dest, type_is("push"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      filter.write(Event::make("1", "p", {{"type", "push"}}));
      filter.close();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(dest->closes(), 1);
}

TEST(FilterTest, NullDestinationOrMatcherThrows) {
  EXPECT_THROW(Filter(nullptr, type_is("push")), std::invalid_argument);
  EXPECT_THROW(Filter(std::make_shared<RecordingSink>(), Matcher()), std::invalid_argument);
}

}  // namespace
}  // namespace evroute
