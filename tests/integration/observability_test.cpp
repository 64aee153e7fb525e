// /healthz, /readyz, /metrics and /v1/sinks agree with what a test sent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using namespace std::chrono_literals;

using Json = nlohmann::json;

// The value of one sample line of a Prometheus text page, or -1.
double sample(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// Polls /metrics until `series` has `value` (the receiver sees a delivery before evrouted has read
// the response and counted it). Returns the last page.
std::string wait_metric(httplib::Client& c, const std::string& series, double value) {
  std::string page;
  eventually(
      [&] {
        auto m = c.Get("/metrics");
        if (!m || m->status != 200) return false;
        page = m->body;
        return sample(page, series) == value;
      },
      10s, 10ms);
  return page;
}

TEST(Observability, HealthAndReadiness) {
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks: { console: { type: stdout } }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto r = c.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Json::parse(r->body).at("status"), "ready");
}

TEST(Observability, MetricsAndSinksCountWhatWasSent) {
  Receiver hook;
  hook.set_respond([](std::size_t n) { return n == 0 ? 503 : 200; });  // one retry
  Receiver rejecting;
  rejecting.set_respond([](std::size_t) { return 400; });  // not retryable: failed
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive: { type: file, path: ./data/events.ndjson }
  hook:
    type: http
    url: )" + hook.url() + R"(
    filter: { type: ["order.*"] }
    retry: { initial_backoff: 10ms }
  rejecting:
    type: http
    url: )" + rejecting.url() + R"(
    filter: { type: ["refund"] }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  auto res =
      c.Post("/v1/events",
             R"([{"type":"order.new"},{"type":"order.paid"},{"type":"refund"},{"type":"x"}])",
             "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202);
  auto bad = c.Post("/v1/events", "{", "application/json");
  ASSERT_TRUE(bad);
  ASSERT_EQ(bad->status, 400);
  ASSERT_TRUE(hook.wait_delivered(2));
  ASSERT_TRUE(wait_lines(d->workdir() / "data/events.ndjson", 4));
  ASSERT_TRUE(d->wait_err_contains("gave up on event"));

  wait_metric(c, R"(evroute_sink_events_failed_total{sink="rejecting"})", 1);
  wait_metric(c, R"(evroute_sink_events_delivered_total{sink="archive"})", 4);
  const std::string page = wait_metric(c, R"(evroute_sink_events_delivered_total{sink="hook"})", 2);
  EXPECT_EQ(sample(page, "evroute_events_accepted_total"), 4);
  EXPECT_EQ(sample(page, R"(evroute_sink_events_in_total{sink="archive"})"), 4);
  EXPECT_EQ(sample(page, R"(evroute_sink_events_delivered_total{sink="archive"})"), 4);
  EXPECT_EQ(sample(page, R"(evroute_sink_events_in_total{sink="hook"})"), 2);
  EXPECT_EQ(sample(page, R"(evroute_sink_events_delivered_total{sink="hook"})"), 2);
  EXPECT_EQ(sample(page, R"(evroute_sink_events_retried_total{sink="hook"})"), 1);
  EXPECT_EQ(sample(page, R"(evroute_sink_events_in_total{sink="rejecting"})"), 1);
  EXPECT_EQ(sample(page, R"(evroute_sink_events_failed_total{sink="rejecting"})"), 1);
  EXPECT_EQ(sample(page, R"(evroute_sink_queue_depth{sink="hook"})"), 0);
  EXPECT_EQ(sample(page, R"(evroute_http_requests_total{endpoint="/v1/events",code="202"})"), 1);
  EXPECT_EQ(sample(page, R"(evroute_http_requests_total{endpoint="/v1/events",code="400"})"), 1);
  EXPECT_EQ(sample(page, R"(evroute_http_request_duration_seconds_count{endpoint="/v1/events"})"),
            2);

  auto s = c.Get("/v1/sinks");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  const Json sinks = Json::parse(s->body).at("sinks");
  ASSERT_EQ(sinks.size(), 3u);
  EXPECT_EQ(sinks[0].at("name"), "archive");
  EXPECT_EQ(sinks[0].at("type"), "file");
  EXPECT_EQ(sinks[0].at("state"), "open");
  EXPECT_EQ(sinks[0].at("counters").at("delivered"), 4);
  EXPECT_EQ(sinks[1].at("counters").at("events_in"), 2);
  EXPECT_EQ(sinks[1].at("counters").at("retried"), 1);
  EXPECT_EQ(sinks[2].at("counters").at("failed"), 1);
  EXPECT_EQ(sinks[1].at("queue").at("capacity"), 10000);
}

}  // namespace
}  // namespace evtest
