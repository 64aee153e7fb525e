// Per-endpoint flow control through the real evrouted and a real webhook receiver: rate_limit
// paces deliveries, concurrency puts several requests in flight, batch posts arrays and a poison
// event in a batch is the only one that fails, with /metrics counting events.
#include <gtest/gtest.h>

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

std::unique_ptr<DaemonProcess> start_with_hook(const std::string& url,
                                               const std::string& hook_keys) {
  return DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
shutdown_timeout: 10s
sinks:
  hook:
    type: http
    url: )" + url + R"(
    retry: { max_attempts: 5, initial_backoff: 10ms, max_backoff: 50ms, breaker: false }
)" + hook_keys);
}

// POSTs n events in one request ({"type":"t","n":i}, ids "e<i>" unless `id_of` says otherwise).
void post_events(DaemonProcess& d, int n, const std::function<std::string(int)>& id_of = {}) {
  Json batch = Json::array();
  for (int i = 0; i < n; ++i) {
    batch.push_back({{"id", id_of ? id_of(i) : "e" + std::to_string(i)}, {"type", "t"}, {"n", i}});
  }
  auto res = d.client().Post("/v1/events", batch.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
}

// The value of one sample of /metrics, e.g.
// metric("evroute_sink_events_failed_total{sink=\"hook\"}").
double metric(DaemonProcess& d, const std::string& sample) {
  auto res = d.client().Get("/metrics");
  if (!res) return -1;
  const std::string& text = res->body;
  const auto at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + sample.size() + 2));
}

// Polls /metrics until `sample` has `value` (the sink counts an event just after the receiver
// answered it); returns the last value seen.
double wait_metric(DaemonProcess& d, const std::string& sample, double value) {
  double v = -1;
  eventually(
      [&] {
        v = metric(d, sample);
        return v == value;
      },
      10s, 10ms);
  return v;
}

TEST(Flow, RateLimitPacesDeliveries) {
  Receiver hook;
  auto d = start_with_hook(hook.url(), "    rate_limit: { per_second: 20, burst: 2 }\n");
  ASSERT_TRUE(d);
  const auto start = std::chrono::steady_clock::now();
  post_events(*d, 32);
  ASSERT_TRUE(hook.wait_delivered(32, 30s));
  // 2 at once, then 30 at 20/s: at least 1.5 s whatever the machine's speed (a slow one only
  // takes longer). Unlimited, 32 local requests take milliseconds.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1400ms);
  EXPECT_EQ(wait_metric(*d, "evroute_sink_events_delivered_total{sink=\"hook\"}", 32), 32);
  EXPECT_GT(metric(*d, "evroute_sink_throttled_seconds_total{sink=\"hook\"}"), 0.5);
}

TEST(Flow, ConcurrencyPutsSeveralRequestsInFlight) {
  Receiver hook;
  hook.close_gate();  // a slow endpoint: requests wait at the receiver
  auto d = start_with_hook(hook.url(), "    concurrency: 4\n    timeout: 30s\n");
  ASSERT_TRUE(d);
  post_events(*d, 12);
  EXPECT_TRUE(hook.wait_in_flight(4));  // four at once: all the concurrency allows
  hook.open_gate();
  ASSERT_TRUE(hook.wait_delivered(12));
  EXPECT_EQ(hook.max_in_flight(), 4u);
  std::set<std::string> ids;
  for (const auto& r : hook.delivered()) ids.insert(r.header("webhook-id"));
  EXPECT_EQ(ids.size(), 12u);  // each event once
}

TEST(Flow, WithoutConcurrencyOneRequestAtATime) {
  Receiver hook;
  hook.close_gate();
  auto d = start_with_hook(hook.url(), "    timeout: 30s\n");
  ASSERT_TRUE(d);
  post_events(*d, 3);
  ASSERT_TRUE(hook.wait_in_flight(1));
  hook.open_gate();
  ASSERT_TRUE(hook.wait_delivered(3));
  EXPECT_EQ(hook.max_in_flight(), 1u);
}

TEST(Flow, BatchesArriveAsArraysAndOnlyThePoisonEventFails) {
  Receiver hook;
  hook.set_respond_to_body([](const std::string& body) {
    return body.find("\"poison\"") != std::string::npos ? 422 : 200;
  });
  auto d = start_with_hook(hook.url(), "    batch: { max_events: 5, max_wait: 100ms }\n");
  ASSERT_TRUE(d);
  post_events(*d, 10, [](int i) { return i == 3 ? "poison" : "e" + std::to_string(i); });

  // 9 good events delivered, in arrays; the poison one given up on and logged by its id.
  ASSERT_TRUE(d->wait_err_contains("gave up on event poison"));
  // Waits for the ids of 9 events (the requests are checked below, once).
  const auto delivered_so_far = [&] {
    std::set<std::string> ids;
    for (const auto& r : hook.delivered()) {
      const Json body = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      if (!body.is_array()) continue;
      for (const auto& e : body) {
        if (e.is_object() && e.contains("id") && e["id"].is_string())
          ids.insert(e["id"].get<std::string>());
      }
    }
    return ids;
  };
  eventually([&] { return delivered_so_far().size() >= 9; }, 10s, 10ms);
  std::set<std::string> delivered;
  std::size_t largest = 0;
  for (const auto& r : hook.delivered()) {
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    const Json body = Json::parse(r.body);
    ASSERT_TRUE(body.is_array()) << r.body;
    largest = std::max(largest, body.size());
    for (const auto& e : body) delivered.insert(e["id"].get<std::string>());
  }
  EXPECT_EQ(delivered.size(), 9u);
  EXPECT_EQ(delivered.count("poison"), 0u);
  EXPECT_GT(largest, 1u);  // batches, not one event per request
  EXPECT_EQ(wait_metric(*d, "evroute_sink_events_delivered_total{sink=\"hook\"}", 9), 9);
  EXPECT_EQ(metric(*d, "evroute_sink_events_failed_total{sink=\"hook\"}"), 1);
  EXPECT_EQ(metric(*d, "evroute_sink_events_retried_total{sink=\"hook\"}"), 0);
  // Refused were the batch with the poison in it and the poison alone; nothing else.
  std::size_t refused = 0;
  for (const auto& r : hook.requests()) {
    if (r.status != 422) continue;
    ++refused;
    EXPECT_NE(r.body.find("\"poison\""), std::string::npos);
  }
  EXPECT_EQ(refused, 2u);
}

TEST(Flow, NdjsonBatchesWithARetriedBatchCountedPerEvent) {
  Receiver hook;
  hook.set_respond([](std::size_t n) { return n == 0 ? 503 : 200; });
  auto d = start_with_hook(hook.url(),
                           "    batch: { max_events: 4, max_wait: 50ms, encoding: ndjson }\n");
  ASSERT_TRUE(d);
  post_events(*d, 4);
  ASSERT_TRUE(hook.wait_delivered(1));
  const auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 2u);  // the 503, then the same batch again
  EXPECT_EQ(reqs[0].body, reqs[1].body);
  EXPECT_EQ(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"));
  EXPECT_EQ(reqs[1].header("Content-Type"), "application/x-ndjson");
  EXPECT_EQ(std::count(reqs[1].body.begin(), reqs[1].body.end(), '\n'), 4);
  EXPECT_EQ(wait_metric(*d, "evroute_sink_events_delivered_total{sink=\"hook\"}", 4), 4);
  EXPECT_EQ(metric(*d, "evroute_sink_events_retried_total{sink=\"hook\"}"), 4);
}

}  // namespace
}  // namespace evtest
