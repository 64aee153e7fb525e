#include "evroute/broadcaster.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_sinks.h"

namespace evroute {
namespace {

using evtest::RecordingSink;

std::shared_ptr<RecordingSink> recorder(Status answer = Status::ok()) {
  return std::make_shared<RecordingSink>(std::move(answer));
}

TEST(BroadcasterTest, FansOutToEverySinkSharingOnePayload) {
  auto a = recorder(), b = recorder(), c = recorder();
  Broadcaster broadcaster({a, b, c});
  Event event = Event::make("id", std::string(500, 'x'));
  ASSERT_TRUE(broadcaster.write(event).is_ok());
  for (const auto& sink : {a, b, c}) {
    ASSERT_EQ(sink->events().size(), 1u);
    EXPECT_TRUE(sink->events()[0].same_as(event));
  }
  EXPECT_EQ(event.use_count(), 4u);  // the original plus one handle per sink, no copies
  const auto stats = broadcaster.stats();
  EXPECT_EQ(stats.events, 1u);
  EXPECT_EQ(stats.sink_errors, 0u);
  EXPECT_EQ(stats.sinks, 3u);
}

// go-events removed a closed sink from the slice it was iterating: the next sink was skipped and
// the last one got the event twice.
TEST(BroadcasterTest, ClosedSinkIsRemovedAndLaterSinksStillGetTheEventOnce) {
  auto a = recorder(), closed1 = recorder(Status::closed()), closed2 = recorder(Status::closed());
  auto c = recorder(), d = recorder();
  Broadcaster broadcaster({a, closed1, c, closed2, d});
  Event e1 = Event::make("1", "p"), e2 = Event::make("2", "p");
  EXPECT_TRUE(broadcaster.write(e1).is_ok());  // kClosed is not a failure
  EXPECT_EQ(broadcaster.stats().sinks, 3u);
  EXPECT_TRUE(broadcaster.write(e2).is_ok());
  for (const auto& sink : {a, c, d}) {
    const auto events = sink->events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_TRUE(events[0].same_as(e1));
    EXPECT_TRUE(events[1].same_as(e2));
  }
  EXPECT_EQ(closed1->writes(), 1);  // asked once, then gone
  EXPECT_EQ(closed2->writes(), 1);
  EXPECT_EQ(closed1->closes(), 0);  // it closed itself; it was not removed with remove()
  EXPECT_EQ(broadcaster.stats().sink_errors, 0u);
}

TEST(BroadcasterTest, WriteThatNoSinkTookReportsClosed) {
  auto a = recorder(), b = recorder();
  Broadcaster broadcaster({a, b});
  a->close();
  b->close();
  EXPECT_EQ(broadcaster.write(Event::make("1", "x")).code(), Code::kClosed);
  EXPECT_EQ(broadcaster.stats().sinks, 0u);
  // With one live sink left, a write is a success again.
  auto c = recorder();
  broadcaster.add(c);
  EXPECT_TRUE(broadcaster.write(Event::make("2", "x")).is_ok());
  EXPECT_EQ(c->events().size(), 1u);
}

TEST(BroadcasterTest, FailuresAreCountedAndTheFirstIsReturned) {
  auto a = recorder(), b = recorder(Status::unavailable("b is down"));
  auto c = recorder(Status::rejected("c says no")), d = recorder();
  Broadcaster broadcaster({a, b, c, d});
  Status status = broadcaster.write(Event::make("id", "p"));
  EXPECT_EQ(status.code(), Code::kUnavailable);
  EXPECT_NE(status.message().find("2 of 4"), std::string::npos) << status;
  EXPECT_NE(status.message().find("b is down"), std::string::npos) << status;
  EXPECT_EQ(a->events().size(), 1u);
  EXPECT_EQ(d->events().size(), 1u);
  EXPECT_EQ(broadcaster.stats().sink_errors, 2u);
  EXPECT_EQ(broadcaster.stats().sinks, 4u);  // failing sinks stay
}

TEST(BroadcasterTest, ABatchReachesEverySinkAfterAFailedAndAClosedOne) {
  auto a = recorder(), failing = recorder(Status::unavailable("down"));
  auto closed = recorder(Status::closed()), d = recorder();
  Broadcaster broadcaster({a, failing, closed, d});
  const std::vector<Event> batch = {Event::make("1", "p"), Event::make("2", "p")};
  Status status = broadcaster.write_all(batch);
  EXPECT_EQ(status.code(), Code::kUnavailable);
  EXPECT_NE(status.message().find("1 of 4"), std::string::npos) << status;
  for (const auto& sink : {a, d}) {
    const auto events = sink->events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_TRUE(events[0].same_as(batch[0]));
    EXPECT_TRUE(events[1].same_as(batch[1]));
  }
  EXPECT_EQ(broadcaster.stats().sinks, 3u);  // the closed one is gone, the failing one stays
  EXPECT_EQ(broadcaster.stats().sink_errors, 1u);
  // Only closed sinks left: a batch nobody took is reported as closed.
  Broadcaster all_closed({recorder(Status::closed()), recorder(Status::closed())});
  EXPECT_EQ(all_closed.write_all(batch).code(), Code::kClosed);
}

TEST(BroadcasterTest, AddingASinkTwiceIsANoOp) {
  auto a = recorder();
  Broadcaster broadcaster({a, a});
  EXPECT_EQ(broadcaster.stats().sinks, 1u);
  EXPECT_TRUE(broadcaster.add(a).is_ok());
  EXPECT_EQ(broadcaster.stats().sinks, 1u);
  ASSERT_TRUE(broadcaster.write(Event::make("id", "p")).is_ok());
  EXPECT_EQ(a->events().size(), 1u);
  EXPECT_EQ(broadcaster.add(nullptr).code(), Code::kInvalidArgument);
  EXPECT_EQ(broadcaster.write(Event()).code(), Code::kInvalidArgument);
}

TEST(BroadcasterTest, RemoveClosesTheSinkAndStopsDelivery) {
  auto a = recorder(), b = recorder();
  Broadcaster broadcaster({a, b});
  ASSERT_TRUE(broadcaster.remove(a).is_ok());
  EXPECT_EQ(a->closes(), 1);
  ASSERT_TRUE(broadcaster.write(Event::make("id", "p")).is_ok());
  EXPECT_EQ(a->writes(), 0);
  EXPECT_EQ(b->events().size(), 1u);
  EXPECT_EQ(broadcaster.remove(a).code(), Code::kInvalidArgument);
  EXPECT_EQ(a->closes(), 1);
}

TEST(BroadcasterTest, DetachStopsDeliveryButLeavesTheSinkOpenAndNotClosedByClose) {
  auto a = recorder(), b = recorder();
  Broadcaster broadcaster({a, b});
  ASSERT_TRUE(broadcaster.detach(a).is_ok());
  ASSERT_TRUE(broadcaster.write(Event::make("id", "p")).is_ok());
  EXPECT_EQ(a->writes(), 0);
  EXPECT_EQ(b->events().size(), 1u);
  EXPECT_EQ(broadcaster.detach(a).code(), Code::kInvalidArgument);
  ASSERT_TRUE(broadcaster.close().is_ok());
  EXPECT_EQ(a->closes(), 0);  // the caller took it over
  EXPECT_EQ(b->closes(), 1);
  EXPECT_TRUE(a->write(Event::make("id2", "p")).is_ok());
}

TEST(BroadcasterTest, CloseClosesEverySinkOnceThenRefusesWritesAndAdds) {
  auto a = recorder(), b = recorder(), late = recorder();
  {
    Broadcaster broadcaster({a, b});
    ASSERT_TRUE(broadcaster.close().is_ok());
    EXPECT_TRUE(broadcaster.close().is_ok());
    EXPECT_EQ(broadcaster.write(Event::make("id", "p")).code(), Code::kClosed);
    EXPECT_EQ(broadcaster.add(late).code(), Code::kClosed);
    EXPECT_EQ(late->closes(), 1);  // add after close closes the sink it was given
    EXPECT_FALSE(broadcaster.remove(a).is_ok());
    EXPECT_EQ(broadcaster.stats().sinks, 0u);
  }  // the destructor must not close them again
  EXPECT_EQ(a->closes(), 1);
  EXPECT_EQ(b->closes(), 1);
  EXPECT_EQ(a->writes(), 0);
}

TEST(BroadcasterTest, DestructorClosesSinks) {
  auto a = recorder();
  { Broadcaster broadcaster({a}); }
  EXPECT_EQ(a->closes(), 1);
}

TEST(BroadcasterTest, CloseRacingRemoveClosesEverySinkExactlyOnce) {
  for (int round = 0; round < 50; ++round) {
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    auto broadcaster = std::make_shared<Broadcaster>();
    for (int i = 0; i < 8; ++i) {
      sinks.push_back(recorder());
      ASSERT_TRUE(broadcaster->add(sinks.back()).is_ok());
    }
    std::latch start(6);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {  // each remover takes every fourth sink
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        for (std::size_t i = t; i < sinks.size(); i += 4) broadcaster->remove(sinks[i]);
      });
    }
    threads.emplace_back([&] {
      start.arrive_and_wait();
      broadcaster->write(Event::make("id", "p"));
    });
    threads.emplace_back([&] {
      start.arrive_and_wait();
      broadcaster->close();
    });
    for (auto& t : threads) t.join();
    broadcaster.reset();
    for (const auto& sink : sinks) ASSERT_EQ(sink->closes(), 1) << "round " << round;
  }
}

struct Tag {
  int producer;
  int seq;
};
Tag tag_of(const Event& e) {
  return {std::stoi(std::string(*e.attribute("producer"))),
          std::stoi(std::string(*e.attribute("seq")))};
}
// Per producer, the sequence numbers a sink received, in the order it received them.
std::map<int, std::vector<int>> by_producer(const RecordingSink& sink) {
  std::map<int, std::vector<int>> out;
  for (const Event& e : sink.events()) {
    Tag t = tag_of(e);
    out[t.producer].push_back(t.seq);
  }
  return out;
}

TEST(BroadcasterTest, ConcurrentProducersWithSinksAddedAndRemovedMidStream) {
  constexpr int kProducers = 4, kEvents = 2000, kStable = 8;
  Broadcaster broadcaster;
  std::vector<std::shared_ptr<RecordingSink>> stable, churned;
  for (int i = 0; i < kStable; ++i) {
    stable.push_back(recorder());
    broadcaster.add(stable.back());
  }
  auto self_closing = recorder();  // producer 0 closes it mid-stream: the broadcaster must drop it
  broadcaster.add(self_closing);

  std::atomic<int> producers_left{kProducers};
  std::atomic<int> failed_writes{0};
  // The first churned sink is in before any producer starts, so churn always sees events however
  // the threads are scheduled.
  auto sink = recorder();
  churned.push_back(sink);
  EXPECT_TRUE(broadcaster.add(sink).is_ok());
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      const std::string producer = std::to_string(p);
      for (int seq = 0; seq < kEvents; ++seq) {
        if (p == 0 && seq == kEvents / 2) self_closing->close();
        const std::string s = std::to_string(seq);
        Event e = Event::make(producer + "-" + s, "{}", {{"producer", producer}, {"seq", s}});
        if (!broadcaster.write(e).is_ok()) failed_writes.fetch_add(1);
      }
      producers_left.fetch_sub(1);
    });
  }
  // Churn: let the sink receive some events, remove it, add another; repeat while producers run.
  for (;;) {
    while (sink->writes() < 20 && producers_left.load() > 0) std::this_thread::yield();
    EXPECT_TRUE(broadcaster.remove(sink).is_ok());
    if (producers_left.load() == 0) break;
    sink = recorder();
    churned.push_back(sink);
    EXPECT_TRUE(broadcaster.add(sink).is_ok());
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(failed_writes.load(), 0);
  EXPECT_EQ(broadcaster.stats().events, std::uint64_t{kProducers * kEvents});
  EXPECT_EQ(broadcaster.stats().sinks, std::size_t{kStable});
  for (const auto& sink : stable) {  // present throughout: everything, once, in order
    auto seqs = by_producer(*sink);
    ASSERT_EQ(seqs.size(), std::size_t{kProducers});
    for (auto& [p, got] : seqs) {
      ASSERT_EQ(got.size(), std::size_t{kEvents}) << "producer " << p;
      for (int i = 0; i < kEvents; ++i) ASSERT_EQ(got[i], i) << "producer " << p;
    }
  }
  std::size_t churned_events = 0;
  for (const auto& sink : churned) {  // present for a while: a contiguous run per producer
    EXPECT_EQ(sink->closes(), 1);
    for (auto& [p, got] : by_producer(*sink)) {
      churned_events += got.size();
      for (std::size_t i = 1; i < got.size(); ++i) ASSERT_EQ(got[i], got[i - 1] + 1);
    }
  }
  EXPECT_GT(churned_events, 0u);
  auto self_closed = by_producer(*self_closing);  // a prefix: 0, 1, ... until it closed
  EXPECT_EQ(self_closed[0].size(), std::size_t{kEvents / 2});
  for (auto& [p, got] : self_closed) {
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<int>(i));
  }
  EXPECT_EQ(self_closing->closes(), 1);  // by producer 0 only: dropping it does not close it
}

}  // namespace
}  // namespace evroute
