// limits.memory: pushing far past the budget with a dead webhook gets 503 + Retry-After instead of
// growing; evrouted's peak RSS stays bounded; once the webhook comes up, every event that was
// acknowledged with 202 is delivered.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

// VmHWM (peak resident set) of a process, in bytes; 0 if unreadable.
std::size_t peak_rss(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// The value of an unlabelled metric in Prometheus text, or -1.
double metric(DaemonProcess& d, const std::string& name) {
  auto res = d.client().Get("/metrics");
  if (!res) return -1;
  const std::string& text = res->body;
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

constexpr std::size_t kLimit = 1 << 20;  // 1 MiB
constexpr int kEventsPerRequest = 50;
constexpr std::size_t kPayloadBytes = 2000;  // ~100 KB per request
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Parsing is ~50x slower under sanitizers; 4x the budget still shows the refusals and the delivery.
constexpr std::size_t kPushFactor = 4;
#else
constexpr std::size_t kPushFactor = 24;
#endif

std::string batch_body(int request) {
  std::string body = "[";
  for (int i = 0; i < kEventsPerRequest; ++i) {
    if (i > 0) body += ",";
    body += R"({"type":"load","r":)" + std::to_string(request) + R"(,"i":)" + std::to_string(i) +
            R"(,"pad":")" + std::string(kPayloadBytes, 'x') + "\"}";
  }
  return body + "]";
}

TEST(MemoryBudget, FarPastTheLimitRequestsGet503RssStaysBoundedAndAcceptedEventsArrive) {
  const int port = free_port();  // the webhook is down: nothing listens here yet
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
limits: { memory: 1MiB }
sinks:
  hook:
    type: http
    url: http://127.0.0.1:)" + std::to_string(port) +
                                R"(/hooks
    timeout: 5s
    queue: { capacity: 1000000 }   # the queue alone would take everything
    retry: { max_attempts: 0, max_elapsed: 10m, initial_backoff: 10ms, max_backoff: 100ms, breaker: false }
)");
  ASSERT_TRUE(d);
  EXPECT_EQ(metric(*d, "evroute_memory_limit_bytes"), static_cast<double>(kLimit));
  const std::size_t rss_before = peak_rss(d->pid());
  ASSERT_GT(rss_before, 0u);

  // kPushFactor x the budget of events (24 MiB plain).
  const int requests = static_cast<int>(kPushFactor * kLimit / (kEventsPerRequest * kPayloadBytes));
  std::set<std::string> accepted;
  int refused = 0;
  auto c = d->client();
  for (int r = 0; r < requests; ++r) {
    auto res = c.Post("/v1/events", batch_body(r), "application/json");
    ASSERT_TRUE(res) << "request " << r << ": no response";
    if (res->status == 202) {
      const Json answer = Json::parse(res->body);
      for (const auto& id : answer["ids"]) accepted.insert(id.get<std::string>());
    } else {
      ASSERT_EQ(res->status, 503) << res->body;
      EXPECT_EQ(res->get_header_value("Retry-After"), "1");
      EXPECT_NE(Json::parse(res->body)["error"].get<std::string>().find("memory limit"),
                std::string::npos);
      ++refused;
    }
  }
  // Some fit (about 1 MiB worth), most were refused, and nothing beyond the limit was held.
  EXPECT_GT(accepted.size(), 0u);
  EXPECT_LT(accepted.size() * kPayloadBytes, kLimit + kPayloadBytes);
  EXPECT_GT(refused, requests / 2);
  std::cout << requests << " requests: " << accepted.size() << " events accepted, " << refused
            << " requests refused\n";
  EXPECT_EQ(metric(*d, "evroute_memory_rejected_requests_total"), refused);
  const double queued = metric(*d, "evroute_memory_queued_bytes");
  EXPECT_GT(queued, 0);
  EXPECT_LE(queued, static_cast<double>(kLimit));

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // Without the budget the queue would hold all 24 MiB (and more: each event's JSON is copied).
  // Sanitizers keep freed memory in quarantine, so RSS says nothing there.
  const std::size_t growth = peak_rss(d->pid()) - rss_before;
  EXPECT_LT(growth, 12 * kLimit) << "peak RSS grew by " << growth << " bytes";
  std::cout << "evrouted's peak RSS grew by " << growth / 1024 << " KiB\n";
#endif

  // The webhook comes up: every acknowledged event arrives (at least once), then the budget is
  // free.
  Receiver hook(port);
  ASSERT_TRUE(hook.wait_delivered(accepted.size(), 60s));
  std::set<std::string> delivered;
  for (const auto& req : hook.delivered()) delivered.insert(req.header("webhook-id"));
  for (const auto& id : accepted) EXPECT_TRUE(delivered.count(id)) << "never delivered: " << id;

  eventually([&] { return metric(*d, "evroute_memory_queued_bytes") == 0; }, 10s, 10ms);
  EXPECT_EQ(metric(*d, "evroute_memory_queued_bytes"), 0);
  auto again = c.Post("/v1/events", batch_body(requests), "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 202) << again->body;
}

TEST(MemoryBudget, ARequestLargerThanTheWholeLimitGets413) {
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
limits: { memory: 64KiB }
sinks:
  console: { type: stdout }
)");
  ASSERT_TRUE(d);
  auto res = d->client().Post("/v1/events", batch_body(0), "application/json");  // ~100 KB
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413) << res->body;
  EXPECT_NE(res->body.find("limits.memory"), std::string::npos) << res->body;
}

TEST(MemoryBudget, DefaultLimitIs32MiBAndZeroMeansNoLimit) {
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  console: { type: stdout }
)");
  ASSERT_TRUE(d);
  EXPECT_EQ(metric(*d, "evroute_memory_limit_bytes"), 32.0 * 1024 * 1024);
  auto unlimited = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
limits: { memory: 0 }
sinks:
  console: { type: stdout }
)");
  ASSERT_TRUE(unlimited);
  EXPECT_EQ(metric(*unlimited, "evroute_memory_limit_bytes"), 0);
  auto res = unlimited->client().Post("/v1/events", batch_body(0), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202);
}

}  // namespace
}  // namespace evtest
