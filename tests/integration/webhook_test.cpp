// Webhook etiquette on the real evrouted with real receivers: signatures checked by the
// standardwebhooks npm package (an independent implementation), Retry-After clamped by
// retry.max_retry_after, and 410 Gone disabling a sink (visible in /v1/sinks, /metrics and the log)
// until an admin call or SIGHUP re-enables it, without losing or stalling anything; a hostile
// receiver (endless response headers) costs evrouted no memory and stalls no other sink.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "support/command.h"
#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/raw_server.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

const std::string kSecretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string kSecretB = "whsec_c2VjcmV0LWtleS1mb3Itcm90YXRpb24tdGVzdHM=";
const std::string kWrongSecret = "whsec_d3Jvbmctc2VjcmV0LW5vdC11c2VkLWJ5LWV2cm91dGU=";

// One http sink `hook` (plus sink_extra: its keys, or further sinks), with extra server keys and
// top-level keys.
std::string hook_yaml(const std::string& url, const std::string& sink_extra,
                      const std::string& top_extra = "", const std::string& server_extra = "") {
  return R"(
server:
  listen: "127.0.0.1:0"
)" + server_extra +
         top_extra +
         R"(
sinks:
  hook:
    type: http
    url: )" +
         url + "\n" + sink_extra;
}

// eventually()'s pace here: its conditions ask evrouted (or /proc) each time.
constexpr auto kPoll = 10ms;

// The body of the i-th event the webhook tests post: {"type":"t","n":i}.
std::string typed_event(int i) { return R"({"type":"t","n":)" + std::to_string(i) + "}"; }

// Runs `node verify_webhooks.js` on the captured requests; returns its exit code and output.
std::pair<int, std::string> verify_with_node(const std::vector<ReceivedRequest>& requests,
                                             const std::vector<std::string>& secrets) {
  Json capture{{"secrets", secrets}, {"wrong_secret", kWrongSecret}, {"requests", Json::array()}};
  for (const auto& r : requests) {
    Json headers = Json::object();
    for (const char* h : {"webhook-id", "webhook-timestamp", "webhook-signature"}) {
      headers[h] = r.header(h);
    }
    capture["requests"].push_back({{"body", r.body}, {"headers", headers}});
  }
  const auto dir = make_temp_dir();
  const auto file = dir / "capture.json";
  std::ofstream(file) << capture.dump();
  const std::string cmd = std::string("'") + EVROUTE_NODE + "' '" + EVROUTE_INTEROP_DIR +
                          "/verify_webhooks.js' '" + file.string() + "' 2>&1";
  CommandResult r = run_command(cmd);
  std::filesystem::remove_all(dir);
  return {r.exit_code, std::move(r.out)};
}

void expect_node_verifies(const std::vector<ReceivedRequest>& requests,
                          const std::vector<std::string>& secrets) {
  ASSERT_TRUE(std::filesystem::exists(EVROUTE_NODE))
      << "node not found (cmake's find_program): the independent verifier cannot run";
  ASSERT_TRUE(
      std::filesystem::exists(std::string(EVROUTE_INTEROP_DIR) + "/node_modules/standardwebhooks"))
      << "run scripts/install-deps --test to install tests/interop/node_modules";
  const auto [code, out] = verify_with_node(requests, secrets);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("verified " + std::to_string(requests.size()) + " request(s) with " +
                     std::to_string(secrets.size()) + " secret(s)"),
            std::string::npos)
      << out;
}

TEST(Webhook, StandardWebhooksLibraryVerifiesEverySignature) {
  Receiver hook;
  auto d = DaemonProcess::start(hook_yaml(hook.url(), "    secret: " + kSecretA + "\n"));
  ASSERT_TRUE(d);
  post_n(*d, 5, typed_event);
  ASSERT_TRUE(hook.wait_delivered(5));
  expect_node_verifies(hook.requests(), {kSecretA});
}

// Two secrets (rotation): each request carries a signature by each, and a retried request is
// signed anew (its own timestamp) and still verifies.
TEST(Webhook, RotatedSecretsAndRetriedRequestsVerify) {
  Receiver hook;
  hook.set_respond([](std::size_t n) { return n == 1 ? 503 : 200; });
  auto d = DaemonProcess::start(
      hook_yaml(hook.url(), "    secret: [" + kSecretA + ", " + kSecretB +
                                "]\n    retry: { initial_backoff: 10ms, max_backoff: 20ms }\n"));
  ASSERT_TRUE(d);
  post_n(*d, 3, typed_event);
  ASSERT_TRUE(hook.wait_delivered(3));
  const auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[1].status, 503);
  EXPECT_EQ(reqs[2].header("webhook-id"), reqs[1].header("webhook-id"));  // the retry
  expect_node_verifies(reqs, {kSecretA, kSecretB});
}

// A receiver answering 503 with Retry-After: 3600 once, then 200: retry.max_retry_after: 100ms
// clamps the wait, so the event arrives long before the hour the receiver asked for.
TEST(Webhook, RetryAfterIsClampedByMaxRetryAfter) {
  std::atomic<int> calls{0};
  httplib::Server server;
  server.Post("/hooks", [&](const httplib::Request&, httplib::Response& res) {
    if (calls++ == 0) {
      res.status = 503;
      res.set_header("Retry-After", "3600");
    } else {
      res.status = 200;
    }
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  {
    auto d = DaemonProcess::start(
        hook_yaml("http://127.0.0.1:" + std::to_string(port) + "/hooks",
                  "    retry: { initial_backoff: 10ms, max_retry_after: 100ms }\n"));
    ASSERT_TRUE(d);
    post_n(*d, 1, typed_event);
    EXPECT_TRUE(eventually([&] { return calls.load() >= 2; }, 20s, kPoll));  // not in an hour
    EXPECT_EQ(calls.load(), 2);
    EXPECT_TRUE(d->wait_err_contains("retrying in 100 ms"));
  }
  server.stop();
  t.join();
}

// GET /v1/sinks as seen with `headers` (webhook URLs are shown in full only to an admin).
Json sink_state(DaemonProcess& d, const std::string& name, const httplib::Headers& headers = {}) {
  auto res = d.client().Get("/v1/sinks", headers);
  if (!res || res->status != 200) return Json::object();
  const Json all = Json::parse(res->body);
  for (const Json& s : all["sinks"]) {
    if (s["name"] == name) return s;
  }
  return Json::object();
}

bool wait_state(DaemonProcess& d, const std::string& name, const std::string& state) {
  return eventually([&] { return sink_state(d, name).value("state", "") == state; }, 10s, kPoll);
}

double metric(DaemonProcess& d, const std::string& series) {
  auto res = d.client().Get("/metrics");
  if (!res) return -1;
  std::istringstream in(res->body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// 410 Gone: the sink stops (state, metric, log), keeps its events queued, and an authorized
// POST /v1/sinks/hook/enable resumes it: every event arrives, in order, the 410'd one included.
TEST(Webhook, GoneDisablesTheSinkUntilTheAdminCallEnablesIt) {
  Receiver hook;
  std::atomic<bool> gone{true};
  hook.set_respond([&](std::size_t) { return gone.load() ? 410 : 200; });
  auto d = DaemonProcess::start(hook_yaml(hook.url(), "", "", "  auth: { tokens: [t0k] }\n"));
  ASSERT_TRUE(d);
  const httplib::Headers auth{{"Authorization", "Bearer t0k"}};
  const auto ids = post_n(*d, 5, typed_event, auth);
  ASSERT_EQ(ids.size(), 5u);
  ASSERT_TRUE(wait_state(*d, "hook", "disabled"));
  const Json s = sink_state(*d, "hook", auth);
  EXPECT_EQ(s["disabled"]["reason"], "POST " + hook.url() + ": HTTP 410 Gone");
  EXPECT_EQ(s["disabled"]["since"].get<std::string>().size(), 20u);  // 2026-11-26T10:02:03Z
  EXPECT_EQ(s["queue"]["pending"], 5);                               // nothing lost
  EXPECT_EQ(s["counters"]["failed"], 0);
  EXPECT_EQ(metric(*d, "evroute_sink_up{sink=\"hook\"}"), 0);
  EXPECT_TRUE(
      d->wait_err_contains("sink 'hook': disabled (POST " + hook.url() + ": HTTP 410 Gone)"));
  EXPECT_EQ(hook.requests().size(), 1u);  // no hammering while disabled

  auto c = d->client();
  auto denied = c.Post("/v1/sinks/hook/enable", "", "application/json");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 401);
  auto unknown = c.Post("/v1/sinks/nope/enable", auth, "", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(Json::parse(unknown->body)["error"], "no sink named 'nope'");
  EXPECT_EQ(sink_state(*d, "hook")["state"], "disabled");

  gone = false;
  auto enabled = c.Post("/v1/sinks/hook/enable", auth, "", "application/json");
  ASSERT_TRUE(enabled);
  EXPECT_EQ(enabled->status, 200);
  EXPECT_EQ(Json::parse(enabled->body),
            (Json{{"name", "hook"}, {"state", "open"}, {"was_disabled", true}}));
  ASSERT_TRUE(hook.wait_delivered(5));
  std::vector<std::string> got;
  for (const auto& r : hook.delivered()) got.push_back(r.header("webhook-id"));
  EXPECT_EQ(got, ids);
  EXPECT_EQ(sink_state(*d, "hook")["state"], "open");
  EXPECT_FALSE(sink_state(*d, "hook").contains("disabled"));
  EXPECT_EQ(metric(*d, "evroute_sink_up{sink=\"hook\"}"), 1);
  EXPECT_TRUE(d->wait_err_contains("sink 'hook': re-enabled"));
}

TEST(Webhook, SighupReenablesADisabledSink) {
  Receiver hook;
  std::atomic<bool> gone{true};
  hook.set_respond([&](std::size_t) { return gone.load() ? 410 : 200; });
  auto d = DaemonProcess::start(hook_yaml(hook.url(), ""));
  ASSERT_TRUE(d);
  const auto ids = post_n(*d, 3, typed_event);
  ASSERT_TRUE(wait_state(*d, "hook", "disabled"));
  gone = false;
  d->signal(SIGHUP);
  ASSERT_TRUE(hook.wait_delivered(3));
  EXPECT_TRUE(wait_state(*d, "hook", "open"));
  EXPECT_TRUE(d->wait_err_contains("sink 'hook': re-enabled"));
}

// While disabled the sink's queue fills; then its when_full policy applies as usual: every event is
// delivered after the enable call, or counted as dropped (and logged) — none is lost silently.
TEST(Webhook, ADisabledSinksFullQueueDropsByItsPolicy) {
  Receiver hook;
  std::atomic<bool> gone{true};
  hook.set_respond([&](std::size_t) { return gone.load() ? 410 : 200; });
  auto d = DaemonProcess::start(
      hook_yaml(hook.url(), "    queue: { capacity: 2, when_full: drop_newest }\n"));
  ASSERT_TRUE(d);
  post_n(*d, 1, typed_event);
  ASSERT_TRUE(wait_state(*d, "hook", "disabled"));
  post_n(*d, 5, typed_event);  // all accepted (drop_newest never refuses)
  const Json s = sink_state(*d, "hook");
  EXPECT_EQ(s["queue"]["pending"], 2);
  EXPECT_EQ(s["counters"]["dropped_newest"], 4);
  EXPECT_TRUE(d->wait_err_contains("dropped by the queue's when_full policy"));
  gone = false;
  auto enabled = d->client().Post("/v1/sinks/hook/enable", "", "application/json");
  ASSERT_TRUE(enabled);
  EXPECT_EQ(enabled->status, 200);
  ASSERT_TRUE(hook.wait_delivered(2));
  EXPECT_TRUE(eventually(
      [&] { return metric(*d, "evroute_sink_events_delivered_total{sink=\"hook\"}") == 2; }, 10s,
      kPoll));
}

// A disabled sink cannot drain: SIGTERM does not wait shutdown_timeout (60 s here) for it; its
// queued events are counted and logged as undelivered, and the other sinks still drain.
TEST(Webhook, ShutdownDoesNotWaitForADisabledSink) {
  Receiver hook;
  hook.set_respond([](std::size_t) { return 410; });
  auto d = DaemonProcess::start(hook_yaml(hook.url(), R"(
  archive:
    type: file
    path: ./data/events.ndjson
)",
                                          "shutdown_timeout: 60s\n"));
  ASSERT_TRUE(d);
  post_n(*d, 4, typed_event);
  ASSERT_TRUE(wait_state(*d, "hook", "disabled"));
  ASSERT_TRUE(wait_lines(d->workdir() / "data/events.ndjson", 4));
  d->signal(SIGTERM);
  const auto code = d->wait_exit(20s);
  ASSERT_TRUE(code.has_value()) << "evrouted waited for the disabled sink";
  EXPECT_EQ(*code, 0);
  EXPECT_NE(d->err().find("sink 'hook': 4 event(s) undelivered at the shutdown deadline (the "
                          "sink is disabled)"),
            std::string::npos)
      << d->err();
  EXPECT_NE(d->err().find("stopped: 4 event(s) undelivered"), std::string::npos) << d->err();
}

// A hostile webhook receiver's answer: it reads a request's head, then answers "HTTP/1.1 200 OK"
// followed by header lines without end, as fast as they are read, for up to 10 s per connection.
void flood_headers(int fd, const std::atomic<bool>& stopping) {
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    head.append(buf, static_cast<std::size_t>(n));
  }
  std::string lines = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 256; ++i) lines += "X-Flood: " + std::string(200, 'f') + "\r\n";
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!stopping && std::chrono::steady_clock::now() < until) {
    if (!send_all(fd, lines)) return;
  }
}

// VmRSS of process `pid`, in bytes (0 if unreadable).
std::size_t rss_of(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  return 0;
}

// One partner endpoint answering with endless headers: each attempt fails fast (the head is
// bounded at 64 KiB) and is retried, evrouted's memory stays flat, and the other sink gets every
// event meanwhile.
TEST(Webhook, AReceiverFloodingHeadersCostsNoMemoryAndStallsNoOtherSink) {
  RawServer flood(flood_headers);
  Receiver good;
  auto d = DaemonProcess::start(
      hook_yaml(flood.url(),
                "    timeout: 2s\n    retry: { initial_backoff: 10ms, max_backoff: "
                "50ms }\n  good:\n    type: http\n    url: " +
                    good.url() + "\n"));
  ASSERT_TRUE(d);
  const std::size_t base = rss_of(d->pid());
  ASSERT_GT(base, 0u);
  std::size_t peak = base;
  post_n(*d, 3, typed_event);
  EXPECT_TRUE(good.wait_delivered(3));
  EXPECT_TRUE(eventually(
      [&] {
        peak = std::max(peak, rss_of(d->pid()));
        return flood.connections() >= 4;  // the first attempt and three retries at least
      },
      20s, kPoll));
  peak = std::max(peak, rss_of(d->pid()));
  EXPECT_LT(peak - base, std::size_t{50} << 20)
      << "evrouted grew by " << ((peak - base) >> 20) << " MiB";
  EXPECT_TRUE(d->wait_err_contains("response headers exceed 64 KiB")) << d->err();
}

}  // namespace
}  // namespace evtest
