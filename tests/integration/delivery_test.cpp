// Delivery guarantees with real failing webhooks: retries, an endpoint that is down then back, a
// slow endpoint next to a fast sink, and draining on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <set>
#include <thread>

#include "support/daemon_process.h"
#include "support/receiver.h"

namespace evtest {
namespace {

std::string hook_config(const std::string& url, const std::string& extra = "") {
  return R"(
server: { listen: "127.0.0.1:0" }
shutdown_timeout: 10s
sinks:
  archive:
    type: file
    path: ./data/events.ndjson
  hook:
    type: http
    url: )" +
         url + R"(
    timeout: 10s
    retry: { max_attempts: 50, initial_backoff: 10ms, max_backoff: 100ms, breaker: { threshold: 100, cooldown: 50ms } }
)" + extra;
}

TEST(Delivery, WebhookFailingTwiceGetsTheEventOnTheThirdAttempt) {
  Receiver hook;
  hook.set_respond([](std::size_t n) { return n < 2 ? 500 : 200; });
  auto d = DaemonProcess::start(hook_config(hook.url()));
  ASSERT_TRUE(d);
  auto ids = post_n(*d, 1);
  ASSERT_TRUE(hook.wait_delivered(1));
  auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (auto& r : reqs) EXPECT_EQ(r.header("webhook-id"), ids[0]);  // same id on every retry
  EXPECT_TRUE(d->wait_err_contains("retrying"));
}

TEST(Delivery, WebhookDownThenBackGetsEveryQueuedEventInOrder) {
  const int port = free_port();
  auto d = DaemonProcess::start(hook_config("http://127.0.0.1:" + std::to_string(port) + "/h"));
  ASSERT_TRUE(d);
  auto ids = post_n(*d, 20);
  ASSERT_EQ(ids.size(), 20u);
  ASSERT_TRUE(wait_lines(d->workdir() / "data/events.ndjson", 20));  // the file sink is unaffected
  std::this_thread::sleep_for(300ms);                                // some retries fail
  Receiver hook(port);
  ASSERT_TRUE(hook.wait_delivered(20, 20s));
  std::vector<std::string> got;
  for (auto& r : hook.delivered()) got.push_back(r.header("webhook-id"));
  EXPECT_EQ(got, ids);
}

TEST(Delivery, SlowWebhookDoesNotDelayTheFileSink) {
  Receiver hook;
  hook.close_gate();
  auto d = DaemonProcess::start(hook_config(hook.url()));
  ASSERT_TRUE(d);
  auto ids = post_n(*d, 50);
  ASSERT_EQ(ids.size(), 50u);
  // All 50 are in the file while the webhook has not answered even the first one.
  ASSERT_TRUE(wait_lines(d->workdir() / "data/events.ndjson", 50, 5s));
  EXPECT_EQ(hook.requests().size(), 0u);
  hook.open_gate();
  ASSERT_TRUE(hook.wait_delivered(50, 20s));
}

TEST(Delivery, SigtermDrainsQueuedEventsToASlowWebhook) {
  Receiver hook;
  hook.set_respond([](std::size_t) {
    std::this_thread::sleep_for(20ms);  // slow: 50 events take ~1 s
    return 200;
  });
  auto d = DaemonProcess::start(hook_config(hook.url()));
  ASSERT_TRUE(d);
  auto ids = post_n(*d, 50);
  ASSERT_EQ(ids.size(), 50u);
  d->signal(SIGTERM);
  ASSERT_TRUE(d->wait_err_contains("draining"));
  // New events are refused while draining (or the listener is already gone).
  auto late = d->client().Post("/v1/events", R"({"late":true})", "application/json");
  if (late) {
    EXPECT_EQ(late->status, 503);
  }
  auto code = d->wait_exit(15s);
  ASSERT_TRUE(code.has_value()) << "evrouted did not exit";
  EXPECT_EQ(*code, 0) << d->err();
  std::set<std::string> got;
  for (auto& r : hook.delivered()) got.insert(r.header("webhook-id"));
  EXPECT_EQ(got, std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_NE(d->err().find("every accepted event was delivered"), std::string::npos) << d->err();
}

TEST(Delivery, SigtermWithADeadWebhookStopsAtTheDeadlineAndCountsTheRest) {
  const int port = free_port();  // nothing ever listens here
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
shutdown_timeout: 500ms
sinks:
  hook:
    type: http
    url: http://127.0.0.1:)" + std::to_string(port) +
                                R"(/h
    retry: { max_attempts: 0, max_elapsed: 1h, initial_backoff: 50ms, max_backoff: 100ms }
)");
  ASSERT_TRUE(d);
  ASSERT_EQ(post_n(*d, 5).size(), 5u);
  const auto t0 = std::chrono::steady_clock::now();
  d->signal(SIGTERM);
  auto code = d->wait_exit(15s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // bounded by shutdown_timeout, not hung
  EXPECT_NE(d->err().find("5 event(s) undelivered at the shutdown deadline"), std::string::npos)
      << d->err();
}

TEST(Delivery, SigtermRightAfterStartStillStopsPromptly) {
  // A stop request that raced the HTTP server's start used to be lost, and evrouted ran on.
  for (int i = 0; i < 5; ++i) {
    auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks: { console: { type: stdout } }
)");
    ASSERT_TRUE(d);
    d->signal(SIGTERM);
    EXPECT_EQ(d->wait_exit(10s), 0) << d->err();
  }
}

TEST(Delivery, Sigusr1ReopensTheFileForLogrotate) {
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive: { type: file, path: ./data/events.ndjson }
)");
  ASSERT_TRUE(d);
  const auto file = d->workdir() / "data/events.ndjson";
  ASSERT_EQ(post_n(*d, 3).size(), 3u);
  ASSERT_TRUE(wait_lines(file, 3));
  std::filesystem::rename(file, d->workdir() / "data/events.ndjson.1");
  d->signal(SIGUSR1);
  ASSERT_TRUE(d->wait_err_contains("reopened"));
  ASSERT_EQ(post_n(*d, 2).size(), 2u);
  ASSERT_TRUE(wait_lines(file, 2));
  EXPECT_EQ(read_lines(d->workdir() / "data/events.ndjson.1").size(), 3u);
}

}  // namespace
}  // namespace evtest
