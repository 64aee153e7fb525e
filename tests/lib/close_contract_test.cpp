// sink.h's close() contract, for every sink of the library: only the first call closes anything;
// later calls, and calls overlapping the first (they wait for it), return the first call's Status.
// A wrapper whose destination fails to close reports that failure every time, not OK the second
// time.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>

#include "evroute/broadcaster.h"
#include "evroute/channel.h"
#include "evroute/durable_queue.h"
#include "evroute/filter.h"
#include "evroute/queue.h"
#include "evroute/rate_limit.h"
#include "evroute/retry.h"

namespace evroute {
namespace {

using namespace std::chrono_literals;

// A destination whose close() fails with `report`. With hold(), close() waits until release();
// entered() tells when a close() is under way.
class FailingClose final : public Sink {
 public:
  explicit FailingClose(Status report) : report_(std::move(report)) {}
  Status write(const Event&) override {
    std::lock_guard<std::mutex> lock(mu_);
    return closes_ > 0 ? Status::closed() : Status::ok();
  }
  Status close() override {
    std::unique_lock<std::mutex> lock(mu_);
    ++closes_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !held_; });
    return report_;
  }
  void hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  bool wait_entered() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return closes_ > 0; });
  }
  int closes() {
    std::lock_guard<std::mutex> lock(mu_);
    return closes_;
  }

 private:
  const Status report_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  int closes_ = 0;
};

using MakeWrapper = std::function<std::shared_ptr<Sink>(std::shared_ptr<Sink> destination)>;

struct Wrapper {
  const char* name;
  MakeWrapper make;
};

std::vector<Wrapper> wrappers() {
  return {
      {"Filter",
       [](std::shared_ptr<Sink> d) {
         return std::make_shared<Filter>(std::move(d), [](const Event&) { return true; });
       }},
      {"RateLimited",
       [](std::shared_ptr<Sink> d) {
         return std::make_shared<RateLimited>(std::move(d), RateLimited::Options{});
       }},
      {"Retrying",
       [](std::shared_ptr<Sink> d) {
         return std::make_shared<Retrying>(std::move(d), std::make_shared<Breaker>(5, 1s),
                                           Retrying::Options{});
       }},
      {"Broadcaster",
       [](std::shared_ptr<Sink> d) {
         return std::make_shared<Broadcaster>(std::vector<std::shared_ptr<Sink>>{std::move(d)});
       }},
  };
}

Status flush_failed() { return Status::unavailable("flush failed"); }

TEST(CloseContractTest, AWrapperRepeatsItsDestinationsCloseFailure) {
  for (const Wrapper& w : wrappers()) {
    SCOPED_TRACE(w.name);
    auto destination = std::make_shared<FailingClose>(flush_failed());
    std::shared_ptr<Sink> sink = w.make(destination);
    const Status first = sink->close();
    EXPECT_EQ(first.code(), Code::kUnavailable);
    EXPECT_EQ(first.message(), "flush failed");
    for (int i = 0; i < 2; ++i) {
      const Status again = sink->close();
      EXPECT_EQ(again.code(), first.code());
      EXPECT_EQ(again.message(), first.message());
    }
    EXPECT_EQ(destination->closes(), 1);
    EXPECT_EQ(sink->write(Event::make("a", "{}")).code(), Code::kClosed);
  }
}

TEST(CloseContractTest, ABroadcasterReportsItsFirstFailingSinkEveryTime) {
  auto ok = std::make_shared<FailingClose>(Status::ok());
  auto bad = std::make_shared<FailingClose>(flush_failed());
  auto worse = std::make_shared<FailingClose>(Status::rejected("worse"));
  Broadcaster b({ok, bad, worse});
  EXPECT_EQ(b.close().message(), "flush failed");
  EXPECT_EQ(b.close().message(), "flush failed");
  EXPECT_EQ(ok->closes() + bad->closes() + worse->closes(), 3);
}

// A close() that overlaps the first one waits for it and returns its report (it must not return
// OK while the destination is still being closed). The second call is checked not to have
// returned while the first is held; it can only be seen too late, never too early.
TEST(CloseContractTest, AnOverlappingCloseWaitsForTheFirstAndSharesItsReport) {
  for (const Wrapper& w : wrappers()) {
    SCOPED_TRACE(w.name);
    auto destination = std::make_shared<FailingClose>(flush_failed());
    destination->hold();
    std::shared_ptr<Sink> sink = w.make(destination);
    std::future<Status> first = std::async(std::launch::async, [sink] { return sink->close(); });
    ASSERT_TRUE(destination->wait_entered());
    std::future<Status> second = std::async(std::launch::async, [sink] { return sink->close(); });
    EXPECT_EQ(second.wait_for(20ms), std::future_status::timeout)
        << "the second close() returned while the first was still closing the destination";
    destination->release();
    EXPECT_EQ(first.get().message(), "flush failed");
    EXPECT_EQ(second.get().message(), "flush failed");
    EXPECT_EQ(destination->closes(), 1);
  }
}

TEST(CloseContractTest, AQueueRepeatsItsCloseReport) {
  // The destination takes nothing until it is closed: one event in flight, one waiting.
  class Stuck final : public Sink {
   public:
    Status write(const Event&) override {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return closed_; });
      return Status::closed();
    }
    Status close() override {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      cv_.notify_all();
      return Status::ok();
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool closed_ = false;
  };
  Queue q(std::make_shared<Stuck>(), {.close_timeout = 10ms});
  ASSERT_TRUE(q.write(Event::make("a", "{}")).is_ok());
  ASSERT_TRUE(q.write(Event::make("b", "{}")).is_ok());
  const Status first = q.close();
  EXPECT_EQ(first.code(), Code::kTimeout);
  EXPECT_EQ(first.message(), "2 event(s) left undelivered at the close deadline");
  const Status again = q.close();
  EXPECT_EQ(again.code(), first.code());
  EXPECT_EQ(again.message(), first.message());
  EXPECT_EQ(q.close_until(std::chrono::steady_clock::now()).undelivered, 2u);
}

TEST(CloseContractTest, SinksWhoseCloseCannotFailReturnOkEveryTime) {
  Channel channel(1);
  EXPECT_TRUE(channel.close().is_ok());
  EXPECT_TRUE(channel.close().is_ok());

  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("evroute_close_contract_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  Status error;
  DurableQueue::Options options;
  options.log.dir = dir;
  auto durable = DurableQueue::open(std::make_shared<FailingClose>(Status::ok()), options, &error);
  ASSERT_TRUE(durable) << error;
  EXPECT_TRUE(durable->close().is_ok());
  EXPECT_TRUE(durable->close().is_ok());
  durable.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace evroute
