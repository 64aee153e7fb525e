#include "evroute/budget.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "evroute/queue.h"
#include "evroute/sink.h"
#include "support/fake_sinks.h"

namespace evroute {
namespace {

using evtest::GatedSink;  // keeps ids, not Event handles: it holds no charged memory

Event make_event(const std::string& id, std::size_t payload_bytes = 100) {
  return Event::make(id, std::string(payload_bytes, 'x'), {{"type", "t"}});
}

TEST(MemoryBudgetTest, ChargesFootprintAndReleasesWhenTheLastHandleGoes) {
  MemoryBudget budget(1 << 20);
  Event e = make_event("a");
  const std::size_t bytes = e.footprint();
  EXPECT_FALSE(e.charged());
  ASSERT_TRUE(budget.try_charge({&e, 1}));
  EXPECT_TRUE(e.charged());
  EXPECT_EQ(budget.in_use(), bytes);
  {
    Event copy = e;  // a second handle (e.g. another sink's queue) shares the one allocation
    e = Event();
    EXPECT_EQ(budget.in_use(), bytes);
  }
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(MemoryBudgetTest, AnEventIsChargedOnceHoweverOftenItIsOffered) {
  MemoryBudget budget(0);  // no limit: counts only
  Event e = make_event("a");
  std::vector<Event> twice{e, e};
  ASSERT_TRUE(budget.try_charge(twice));
  EXPECT_EQ(budget.in_use(), e.footprint());
  ASSERT_TRUE(budget.try_charge({&e, 1}));
  EXPECT_EQ(budget.in_use(), e.footprint());
  MemoryBudget other(1 << 20);
  ASSERT_TRUE(other.try_charge({&e, 1}));  // already charged elsewhere: nothing to add
  EXPECT_EQ(other.in_use(), 0u);
  twice.clear();
  e = Event();
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(MemoryBudgetTest, RefusesAllOrNothingAndCountsRejections) {
  const std::size_t one = make_event("x").footprint();
  MemoryBudget budget(3 * one);
  std::vector<Event> two{make_event("a"), make_event("b")};
  ASSERT_TRUE(budget.try_charge(two));
  std::vector<Event> next{make_event("c"), make_event("d")};
  EXPECT_FALSE(budget.try_charge(next));
  EXPECT_FALSE(next[0].charged());
  EXPECT_FALSE(next[1].charged());
  EXPECT_EQ(budget.in_use(), 2 * one);
  EXPECT_EQ(budget.rejections(), 1u);
  EXPECT_EQ(MemoryBudget::uncharged_bytes(next), 2 * one);
  two.pop_back();  // room again
  EXPECT_TRUE(budget.try_charge(next));
  EXPECT_EQ(budget.in_use(), 3 * one);
}

TEST(MemoryBudgetTest, ARequestLargerThanTheLimitNeverFits) {
  Event big = make_event("big", 4096);
  MemoryBudget budget(1024);
  EXPECT_FALSE(budget.try_charge({&big, 1}));
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(MemoryBudgetTest, QueuedEventsStayChargedUntilEveryQueueIsDoneWithThem) {
  MemoryBudget budget(1 << 20);
  auto gate = std::make_shared<GatedSink>();
  auto slow = std::make_shared<Queue>(gate, Queue::Options{.capacity = 100});
  auto dropping = std::make_shared<Queue>(
      gate, Queue::Options{.capacity = 1, .when_full = OverflowPolicy::kDropNewest});
  std::size_t bytes = 0;
  for (int i = 0; i < 10; ++i) {
    Event e = make_event("e" + std::to_string(i));
    bytes += e.footprint();
    ASSERT_TRUE(budget.try_charge({&e, 1}));
    ASSERT_TRUE(slow->write(e).is_ok());
    ASSERT_TRUE(dropping->write(e).is_ok());  // most are dropped: the other queue still holds them
  }
  EXPECT_EQ(budget.in_use(), bytes);
  gate->open();
  slow->close();
  dropping->close();
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(MemoryBudgetTest, UndeliveredAtTheCloseDeadlineIsReleased) {
  MemoryBudget budget(0);
  auto gate = std::make_shared<GatedSink>();
  auto q = std::make_shared<Queue>(gate, Queue::Options{.capacity = 100});
  for (int i = 0; i < 5; ++i) {
    Event e = make_event("e" + std::to_string(i));
    ASSERT_TRUE(budget.try_charge({&e, 1}));
    ASSERT_TRUE(q->write(e).is_ok());
  }
  EXPECT_GT(budget.in_use(), 0u);
  const auto report = q->close_until(std::chrono::steady_clock::now());
  EXPECT_GT(report.undelivered, 0u);
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(MemoryBudgetTest, ConcurrentChargesAndReleasesBalance) {
  MemoryBudget budget(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&budget, t] {
      for (int i = 0; i < 2000; ++i) {
        Event e = make_event(std::to_string(t) + "-" + std::to_string(i));
        Event copy = e;
        ASSERT_TRUE(budget.try_charge({&e, 1}));
        std::thread([c = std::move(copy)]() mutable { c = Event(); }).join();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(budget.in_use(), 0u);
}

}  // namespace
}  // namespace evroute
