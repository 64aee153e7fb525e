// Who may read and do what: ingest tokens post events; admin tokens (when set) alone enable sinks
// and read or replay dead letters; webhook URLs (whose path and query can be secrets) are shown in
// full only to an authenticated admin. And the shutdown log says what happened to the events.
#include <gtest/gtest.h>

#include <signal.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

const httplib::Headers kIngest{{"Authorization", "Bearer ingest-t0k"}};
const httplib::Headers kAdmin{{"Authorization", "Bearer admin-t0k"}};

std::string config(const Receiver& hook, const std::string& auth) {
  return R"(
server:
  listen: "127.0.0.1:0"
)" + auth +
         R"(
sinks:
  hook:
    type: http
    url: ")" +
         hook.url("/hooks/T0SECRETPATH") +
         R"(?token=S3CRETQUERY"
    retry: { max_attempts: 1 }
)";
}

int status_of(const httplib::Result& res) { return res ? res->status : -1; }

TEST(Auth, AdminTokensAloneGrantTheAdminActions) {
  Receiver hook;
  hook.set_respond([](std::size_t n) { return n == 0 ? 400 : 200; });  // one dead letter
  auto d = DaemonProcess::start(
      config(hook, "  auth: { tokens: [ingest-t0k], admin_tokens: [admin-t0k] }"));
  ASSERT_TRUE(d);
  auto c = d->client();
  EXPECT_EQ(status_of(c.Post("/v1/events", R"({"id":"e0"})", "application/json")), 401);
  EXPECT_EQ(status_of(c.Post("/v1/events", kIngest, R"({"id":"e1"})", "application/json")), 202);
  EXPECT_EQ(status_of(c.Post("/v1/events", kAdmin, R"({"id":"e2"})", "application/json")), 202);
  ASSERT_TRUE(hook.wait_delivered(1));
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/sinks/hook/dead-letters"},
           {"POST", "/v1/sinks/hook/enable"},
           {"POST", "/v1/sinks/hook/dead-letters/replay"}}) {
    auto as_ingest = method == "GET" ? c.Get(path, kIngest) : c.Post(path, kIngest, "", "");
    EXPECT_EQ(status_of(as_ingest), 401) << path;
    if (as_ingest) {
      EXPECT_NE(as_ingest->body.find("needs an admin token"), std::string::npos);
    }
    EXPECT_EQ(status_of(method == "GET" ? c.Get(path) : c.Post(path, "", "")), 401) << path;
  }
  auto letters = c.Get("/v1/sinks/hook/dead-letters", kAdmin);
  ASSERT_EQ(status_of(letters), 200);
  EXPECT_EQ(Json::parse(letters->body)["total"], 1);
  EXPECT_EQ(status_of(c.Post("/v1/sinks/hook/enable", kAdmin, "", "")), 200);
  auto replay = c.Post("/v1/sinks/hook/dead-letters/replay", kAdmin, "", "");
  ASSERT_EQ(status_of(replay), 200);
  EXPECT_EQ(Json::parse(replay->body)["replayed"], 1);
  ASSERT_TRUE(hook.wait_delivered(2));

  // Without admin_tokens, the ingest tokens grant the admin actions (as before admin_tokens).
  auto d2 = DaemonProcess::start(config(hook, "  auth: { tokens: [ingest-t0k] }"));
  ASSERT_TRUE(d2);
  EXPECT_EQ(status_of(d2->client().Get("/v1/sinks/hook/dead-letters", kIngest)), 200);
  EXPECT_EQ(status_of(d2->client().Get("/v1/sinks/hook/dead-letters")), 401);
}

TEST(Auth, WebhookUrlsAreShownInFullOnlyToAnAuthenticatedAdmin) {
  Receiver hook;
  hook.set_respond([](std::size_t) { return 410; });  // disabled: the reason names the URL
  for (const std::string auth : {"", "  auth: { tokens: [ingest-t0k] }",
                                 "  auth: { tokens: [ingest-t0k], admin_tokens: [admin-t0k] }"}) {
    auto d = DaemonProcess::start(config(hook, auth));
    ASSERT_TRUE(d);
    auto c = d->client();
    ASSERT_EQ(status_of(c.Post("/v1/events", kAdmin, R"({"id":"x"})", "application/json")),
              auth.empty() ? 202 : (auth.find("admin") == std::string::npos ? 401 : 202));
    if (auth.find("admin") == std::string::npos && !auth.empty()) {
      ASSERT_EQ(status_of(c.Post("/v1/events", kIngest, R"({"id":"x"})", "application/json")), 202);
    }
    const httplib::Headers* full = auth.empty()                              ? nullptr
                                   : auth.find("admin") == std::string::npos ? &kIngest
                                                                             : &kAdmin;
    // Wait until the sink is disabled (its reason then holds the URL too).
    Json sink;
    int status = 0;
    eventually(
        [&] {
          auto res = c.Get("/v1/sinks");
          status = status_of(res);
          if (status != 200) return true;  // stop: asserted below
          sink = Json::parse(res->body)["sinks"][0];
          return sink["state"] == "disabled";
        },
        10s, 10ms);
    ASSERT_EQ(status, 200);
    ASSERT_EQ(sink["state"], "disabled") << sink;
    for (const httplib::Headers* who : {static_cast<const httplib::Headers*>(nullptr), &kIngest}) {
      if (full && who == full) continue;
      auto res = who ? c.Get("/v1/sinks", *who) : c.Get("/v1/sinks");
      ASSERT_EQ(status_of(res), 200);
      EXPECT_EQ(res->body.find("T0SECRETPATH"), std::string::npos) << auth << ": " << res->body;
      EXPECT_EQ(res->body.find("S3CRETQUERY"), std::string::npos) << auth << ": " << res->body;
      const Json shown = Json::parse(res->body)["sinks"][0];
      EXPECT_EQ(shown["description"],
                "http POST http://127.0.0.1:" + std::to_string(hook.port()) + "/\u2026");
      EXPECT_EQ(shown["disabled"]["reason"],
                "POST http://127.0.0.1:" + std::to_string(hook.port()) + "/\u2026: HTTP 410 Gone");
    }
    if (full) {
      auto res = c.Get("/v1/sinks", *full);
      ASSERT_EQ(status_of(res), 200);
      EXPECT_NE(res->body.find("/hooks/T0SECRETPATH?token=S3CRETQUERY"), std::string::npos)
          << res->body;
    }
    // Metrics hold no URL.
    auto metrics = c.Get("/metrics");
    ASSERT_EQ(status_of(metrics), 200);
    EXPECT_EQ(metrics->body.find("T0SECRETPATH"), std::string::npos);
  }
}

// The last log line says what happened: delivered, and how many failed and were dead-lettered —
// not "every accepted event was delivered" when one was not.
TEST(Auth, ShutdownLogCountsWhatWasNotDelivered) {
  Receiver hook;
  hook.set_respond([](std::size_t n) { return n == 0 ? 400 : 200; });
  auto d = DaemonProcess::start(config(hook, ""));
  ASSERT_TRUE(d);
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_EQ(status_of(d->client().Post("/v1/events", std::string(R"({"id":")") + id + "\"}",
                                         "application/json")),
              202);
  }
  ASSERT_TRUE(hook.wait_delivered(2));
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait_exit(), 0);
  EXPECT_NE(d->err().find("stopped: 2 delivered, 1 failed (1 dead-lettered)"), std::string::npos)
      << d->err();
  EXPECT_EQ(d->err().find("every accepted event was delivered"), std::string::npos) << d->err();
}

}  // namespace
}  // namespace evtest
