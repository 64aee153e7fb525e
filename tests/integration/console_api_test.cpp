// What the console is served with, over real HTTP (the browser itself: tests/ui): GET / redirects
// to /ui, the page and its files come from the binary with a policy that allows nothing but
// them, GET /v1/status and the settings GET /v1/sinks shows of each sink.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/daemon_process.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

TEST(ConsoleApi, TheRootRedirectsToTheConsoleAndItsFilesComeWithAStrictPolicy) {
  auto d = DaemonProcess::start(R"(
server:
  listen: "127.0.0.1:0"
sinks:
  out: { type: stdout }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  auto root = c.Get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 302);
  EXPECT_EQ(root->get_header_value("Location"), "ui");  // relative: works behind a path prefix
  auto slash = c.Get("/ui/");
  ASSERT_TRUE(slash);
  EXPECT_EQ(slash->status, 302);
  EXPECT_EQ(slash->get_header_value("Location"), "../ui");

  auto page = c.Get("/ui");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script src=\"ui/console.js\" defer></script>"), std::string::npos);
  const std::string policy = page->get_header_value("Content-Security-Policy");
  EXPECT_NE(policy.find("default-src 'none'"), std::string::npos) << policy;
  EXPECT_NE(policy.find("script-src 'self'"), std::string::npos) << policy;
  EXPECT_NE(policy.find("frame-ancestors 'none'"), std::string::npos) << policy;
  EXPECT_EQ(policy.find("unsafe"), std::string::npos) << policy;
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");

  for (const auto& [path, type] : {std::pair{"/ui/console.js", "text/javascript; charset=utf-8"},
                                   std::pair{"/ui/console.css", "text/css; charset=utf-8"},
                                   std::pair{"/ui/icon.svg", "image/svg+xml"}}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 200) << path;
    EXPECT_EQ(res->get_header_value("Content-Type"), type) << path;
    EXPECT_GT(res->body.size(), 100u) << path;
  }
  // The page never builds markup from what it shows (descriptions, reasons, events are text).
  auto js = c.Get("/ui/console.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->body.find("innerHTML"), std::string::npos);
  EXPECT_EQ(js->body.find("insertAdjacentHTML"), std::string::npos);

  for (const char* missing : {"/ui/nope.js", "/ui/../config.yaml", "/uix", "/ui/console.js/"}) {
    auto res = c.Get(missing);
    ASSERT_TRUE(res) << missing;
    EXPECT_EQ(res->status, 404) << missing;
  }
  auto post = c.Post("/ui", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);

  // The console's requests have their own label in /metrics (bounded: not one per path).
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find(R"(evroute_http_requests_total{endpoint="/ui",code="200"} 5)"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find(R"(evroute_http_requests_total{endpoint="/ui",code="404"} 3)"),
            std::string::npos)
      << metrics->body;
}

TEST(ConsoleApi, StatusSaysVersionUptimeMemoryReadinessAndWhoNeedsATokenWithoutOne) {
  auto d = DaemonProcess::start(R"(
server:
  listen: "127.0.0.1:0"
  auth: { tokens: [ingest-secret], admin_tokens: [admin-secret] }
limits: { memory: 8MiB }
sinks:
  out: { type: stdout }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  auto posted = c.Post("/v1/events", {{"Authorization", "Bearer ingest-secret"}},
                       R"([{"type":"a"},{"type":"b"}])", "application/json");
  ASSERT_TRUE(posted);
  ASSERT_EQ(posted->status, 202);
  auto res = c.Get("/v1/status");  // no token: it holds no event data
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Json s = Json::parse(res->body);
  EXPECT_EQ(s["version"], EVROUTE_VERSION);
  EXPECT_EQ(s["started_at"].get<std::string>().size(), 20u);  // 2026-12-02T10:02:03Z
  EXPECT_GE(s["uptime_seconds"].get<std::int64_t>(), 0);
  EXPECT_EQ(s["ready"], true);
  EXPECT_EQ(s["readiness"], (Json{{"status", "ready"}}));
  EXPECT_EQ(s["events_accepted"], 2);
  EXPECT_EQ(s["memory"]["limit_bytes"], 8 << 20);
  EXPECT_TRUE(s["memory"]["queued_bytes"].is_number_unsigned());
  EXPECT_EQ(s["memory"]["rejected_requests"], 0);
  EXPECT_EQ(s["auth"], (Json{{"ingest_needs_token", true}, {"admin_needs_token", true}}));
  EXPECT_EQ(s.dump().find("secret"), std::string::npos);  // never a token
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body.find(R"(evroute_http_requests_total{endpoint="/v1/status",code="200"} 1)"),
      std::string::npos)
      << metrics->body;
}

TEST(ConsoleApi, SinksShowTheirFilterQueueAndRetrySettings) {
  auto d = DaemonProcess::start(R"(
server:
  listen: "127.0.0.1:0"
data_dir: ./state
sinks:
  mem:
    type: stdout
    filter: { type: ["order.*", "user.created"], source: [shop] }
    queue: { capacity: 50, when_full: drop_oldest, block_timeout: 250ms }
    retry: { max_attempts: 3, initial_backoff: 100ms, max_backoff: 2s, jitter: full,
             breaker: { threshold: 4, cooldown: 1m } }
  stored:
    type: file
    path: ./out.ndjson
    queue: { type: disk, max_bytes: 1MiB, fsync: interval, fsync_interval: 500ms }
    retry: { breaker: false, max_elapsed: 1h }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  auto res = c.Get("/v1/sinks");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const Json sinks = Json::parse(res->body)["sinks"];
  ASSERT_EQ(sinks.size(), 2u);
  const Json& mem = sinks[0];
  EXPECT_EQ(mem["filter"], (Json{{"type", {"order.*", "user.created"}}, {"source", {"shop"}}}));
  EXPECT_EQ(mem["queue"]["when_full"], "drop_oldest");
  EXPECT_EQ(mem["queue"]["capacity"], 50);
  EXPECT_EQ(mem["queue"]["block_timeout_ms"], 250);
  EXPECT_EQ(mem["retry"], (Json{{"max_attempts", 3},
                                {"max_elapsed_ms", 0},
                                {"initial_backoff_ms", 100},
                                {"max_backoff_ms", 2000},
                                {"multiplier", 2.0},
                                {"jitter", "full"},
                                {"breaker", {{"threshold", 4}, {"cooldown_ms", 60000}}}}));
  const Json& stored = sinks[1];
  EXPECT_EQ(stored["filter"], Json::object());  // every event
  EXPECT_EQ(stored["queue"]["type"], "disk");
  EXPECT_EQ(stored["queue"]["max_bytes"], 1 << 20);
  EXPECT_EQ(stored["queue"]["fsync"], "interval");
  EXPECT_EQ(stored["queue"]["fsync_interval_ms"], 500);
  EXPECT_EQ(stored["queue"]["when_full"], "block");
  EXPECT_EQ(stored["retry"]["breaker"], false);
  EXPECT_EQ(stored["retry"]["max_elapsed_ms"], 3600000);
}

}  // namespace
}  // namespace evtest
