// Hostile input against the real evrouted: every byte it reads is hostile until parsed. Each case
// gets a 4xx with a JSON body that is valid UTF-8 — never a crash, a 500 or a byte passed on raw —
// and an event that cannot be delivered is dead-lettered with its reason instead of taking the
// daemon down (also when it was stored by an earlier run and is recovered at start).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "evroute/disk_log.h"
#include "evroute/event.h"
#include "support/daemon_process.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

std::string nested(std::size_t levels) {
  return std::string(levels, '[') + "1" + std::string(levels, ']');
}

// The reply is `status` with a JSON error body (valid UTF-8) containing `needle`.
void expect_error(const httplib::Result& res, int status, const std::string& needle) {
  ASSERT_TRUE(res) << "no answer: evrouted died?";
  EXPECT_EQ(res->status, status) << res->body.substr(0, 300);
  const Json body = Json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(body.is_object()) << "not JSON (or not UTF-8): " << res->body.substr(0, 300);
  EXPECT_NE(body.value("error", "").find(needle), std::string::npos) << res->body.substr(0, 300);
}

void expect_alive(DaemonProcess& d) {
  auto res = d.client().Get("/healthz");
  ASSERT_TRUE(res) << "evrouted stopped answering";
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(d.running());
}

std::string webhook_config(const Receiver& receiver, const std::string& extra = "") {
  return R"(
server:
  listen: "127.0.0.1:0"
sinks:
  hook:
    type: http
    url: ")" +
         receiver.url() +
         R"("
    retry: { max_attempts: 1 }
)" + extra;
}

TEST(HostileInput, DeepNestingIsA400InEveryFormatAndTheDaemonLives) {
  Receiver receiver;
  auto d = DaemonProcess::start(webhook_config(receiver));
  ASSERT_TRUE(d);
  auto c = d->client();
  const std::string deep = "{\"a\":" + nested(100000) + "}";  // ~200 KB: crashed evrouted before
  expect_error(c.Post("/v1/events", deep, "application/json"), 400, "nested deeper than 64 levels");
  expect_error(c.Post("/v1/events", "[" + deep + "]", "application/json"), 400, "nested deeper");
  expect_error(c.Post("/v1/events", "{\n\"a\":" + nested(100000) + "}", "application/json"), 400,
               "nested deeper");
  expect_error(c.Post("/v1/events", deep + "\r\n", "application/x-ndjson"), 400, "nested deeper");
  const std::string ce =
      R"({"specversion":"1.0","id":"c1","source":"/s","type":"t","data":)" + nested(100000) + "}";
  expect_error(c.Post("/v1/events", ce, "application/cloudevents+json"), 400, "nested deeper");
  httplib::Headers binary = {
      {"ce-specversion", "1.0"}, {"ce-id", "b1"}, {"ce-source", "/s"}, {"ce-type", "t"}};
  expect_error(c.Post("/v1/events", binary, nested(100000), "application/json"), 400,
               "nested deeper");
  expect_alive(*d);
  // What is within the limit still goes through.
  auto ok = c.Post("/v1/events", "{\"id\":\"fine\",\"a\":" + nested(63) + "}", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 202);
  ASSERT_TRUE(receiver.wait_delivered(1));
  EXPECT_EQ(receiver.delivered()[0].header("webhook-id"), "fine");
}

TEST(HostileInput, ClientErrorsAre4xxWithUtf8Bodies) {
  Receiver receiver;
  auto d = DaemonProcess::start(webhook_config(receiver));
  ASSERT_TRUE(d);
  auto c = d->client();
  expect_error(c.Post("/v1/events", R"({"n":1e99999})", "application/json"), 400,
               "number overflow");
  expect_error(c.Post("/v1/events", "{\"n\":" + std::string(400, '9') + "}", "application/json"),
               400, "number overflow");
  expect_error(c.Post("/v1/events", "{\"s\":\"\xff\xfe\"}", "application/json"), 400,
               "malformed JSON");
  expect_error(
      c.Post("/v1/events", "{\"s\":\"ok\"}\n{\"s\":\"\xc3\x28\"}\n", "application/x-ndjson"), 400,
      "line 2: malformed JSON");
  httplib::Headers binary = {
      {"ce-specversion", "1.0"}, {"ce-id", "b1"}, {"ce-source", "/s"}, {"ce-type", "t"}};
  expect_error(c.Post("/v1/events", binary, "hello", "text/plain\xff"), 400, "not printable ASCII");
  expect_error(
      c.Post("/v1/events", "{\"type\":\"" + std::string(70000, 't') + "\"}", "application/json"),
      400, "longer than 65535 bytes");
  expect_alive(*d);
  EXPECT_EQ(receiver.requests().size(), 0u);
}

TEST(HostileInput, NoHeaderInjectionIntoWebhooks) {
  Receiver receiver;
  auto d = DaemonProcess::start(webhook_config(receiver));
  ASSERT_TRUE(d);
  auto c = d->client();
  expect_error(c.Post("/v1/events", R"({"id":"a\r\nX-Injected: 1\r\n\r\nPOST /smuggled HTTP/1.1"})",
                      "application/json"),
               400, "control characters");
  // The binding percent-decodes ce-* values: %0D%0A would be CR LF.
  httplib::Headers binary = {{"ce-specversion", "1.0"},
                             {"ce-id", "x%0D%0AX-Injected:%201"},
                             {"ce-source", "/s"},
                             {"ce-type", "t"}};
  expect_error(c.Post("/v1/events", binary, "hi", "text/plain"), 400, "control characters");
  expect_error(
      c.Post(
          "/v1/events",
          R"({"specversion":"1.0","id":"c","source":"/s","type":"t","datacontenttype":"a\r\nX-Injected: 1"})",
          "application/cloudevents+json"),
      400, "control characters");
  // A sentinel sent last: once it arrived, nothing else can still be on its way.
  auto ok = c.Post("/v1/events", R"({"id":"sentinel"})", "application/json");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 202);
  ASSERT_TRUE(receiver.wait_delivered(1));
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].header("webhook-id"), "sentinel");
  EXPECT_FALSE(requests[0].headers.count("X-Injected"));
}

TEST(HostileInput, ByteOrderMarkAndDuplicateIds) {
  Receiver receiver;
  auto d = DaemonProcess::start(webhook_config(receiver));
  ASSERT_TRUE(d);
  auto c = d->client();
  expect_error(c.Post("/v1/events", R"({"id":"A","id":"B"})", "application/json"), 400,
               "duplicate field \"id\"");
  auto bom = c.Post("/v1/events", "\xEF\xBB\xBF{\"type\":\"t\"}", "application/json");
  ASSERT_TRUE(bom);
  ASSERT_EQ(bom->status, 202) << bom->body;
  ASSERT_TRUE(receiver.wait_delivered(1));
  const auto got = receiver.delivered();
  ASSERT_EQ(got.size(), 1u);
  const Json body = Json::parse(got[0].body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << got[0].body;
  EXPECT_EQ(body["id"], got[0].header("webhook-id"));
  EXPECT_EQ(body["type"], "t");
}

// An event that cannot be rendered (here: one that nests 100,000 levels, stored in the disk queue
// by an evrouted that did not bound nesting) is recovered at start, dead-lettered with its reason,
// and the daemon goes on delivering — at this start and the next.
TEST(HostileInput, PoisonPillInTheDiskQueueIsDeadLetteredNotACrashLoop) {
  Receiver receiver;
  const auto dir = make_temp_dir();
  {
    evroute::DiskLog::Options o;
    o.dir = dir / "data" / "queues" / "hook";
    evroute::Status error;
    auto log = evroute::DiskLog::open(o, &error);
    ASSERT_TRUE(log) << error.to_string();
    const std::string ce =
        R"({"specversion":"1.0","id":"poison","source":"/s","type":"t","data":)" + nested(100000) +
        "}";
    std::vector<evroute::DiskLog::Record> records;
    records.push_back({evroute::Event::make("poison", ce, {{"type", "t"}}), ""});
    records.push_back({evroute::Event::make("after", R"({"id":"after","type":"t"})"), ""});
    ASSERT_TRUE(log->append(records).is_ok());
    ASSERT_TRUE(log->close().is_ok());
  }
  const std::string yaml = webhook_config(receiver, R"(    format: cloudevents-binary
    queue: { type: disk }
data_dir: ./data
)");
  for (int run = 0; run < 2; ++run) {
    auto d = DaemonProcess::start_in(dir, yaml);
    ASSERT_TRUE(d);
    if (run == 0) {
      ASSERT_TRUE(receiver.wait_delivered(1));
      EXPECT_EQ(receiver.delivered()[0].header("ce-id"), "after");
    }
    auto res = d->client().Get("/v1/sinks/hook/dead-letters");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const Json page = Json::parse(res->body);
    ASSERT_EQ(page["total"], 1) << res->body.substr(0, 500);
    EXPECT_EQ(page["dead_letters"][0]["id"], "poison");
    EXPECT_NE(page["dead_letters"][0]["last_status"].get<std::string>().find("nests deeper"),
              std::string::npos)
        << page["dead_letters"][0]["last_status"];
    // New events still flow.
    auto ok = d->client().Post("/v1/events", R"({"id":"new)" + std::to_string(run) + R"("})",
                               "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 202);
    ASSERT_TRUE(receiver.wait_delivered(2 + static_cast<std::size_t>(run)));
    expect_alive(*d);
    d->signal(SIGTERM);
    EXPECT_EQ(d->wait_exit(), 0);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace evtest
