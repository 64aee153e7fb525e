// Bad requests get a precise status and a JSON {"error": ...} body — never a crash or a hang —
// and nothing of a rejected request reaches a sink.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

const char* kFileConfig = R"(
server:
  listen: "127.0.0.1:0"
  max_body_bytes: 1024
sinks:
  archive:
    type: file
    path: ./data/events.ndjson
)";

// The reply has this status and a JSON error containing `needle`.
void expect_error(const httplib::Result& res, int status, const std::string& needle) {
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, status) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  Json body = Json::parse(res->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << res->body;
  EXPECT_NE(body.value("error", "").find(needle), std::string::npos) << res->body;
}

TEST(Errors, BadBodiesAreRejectedWholeWithTheirPosition) {
  auto d = DaemonProcess::start(kFileConfig);
  ASSERT_TRUE(d);
  auto c = d->client();
  expect_error(c.Post("/v1/events", R"({"a":)", "application/json"), 400, "malformed JSON");
  expect_error(c.Post("/v1/events", "{\n\"a\": tru }", "application/json"), 400, "line 2");
  expect_error(c.Post("/v1/events", "42", "application/json"), 400, "not number");
  expect_error(c.Post("/v1/events", R"([{"a":1}, 7])", "application/json"), 400,
               "element 1: not a JSON object");
  expect_error(c.Post("/v1/events", "{\"a\":1}\n{oops}\n", "application/x-ndjson"), 400,
               "line 2: malformed JSON");
  expect_error(c.Post("/v1/events", R"({"id": 5})", "application/json"), 400,
               "\"id\" must be a string");
  expect_error(c.Post("/v1/events", "", "application/json"), 400, "empty body");
  // The valid first element of a rejected batch was not delivered.
  auto ok = c.Post("/v1/events", R"({"id":"only"})", "application/json");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 202);
  // "only" is a sentinel: the file sink writes in order, so anything a rejected body had let
  // through would be written before it.
  const auto path = d->workdir() / "data/events.ndjson";
  ASSERT_TRUE(evtest::eventually([&] {
    const auto lines = read_lines(path);
    return !lines.empty() && Json::parse(lines.back()).at("id") == "only";
  }));
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(Json::parse(lines[0]).at("id"), "only");
}

TEST(Errors, ContentTypeAndSize) {
  auto d = DaemonProcess::start(kFileConfig);
  ASSERT_TRUE(d);
  auto c = d->client();
  expect_error(c.Post("/v1/events", R"({"a":1})", "text/plain"), 415, "Content-Type");
  expect_error(c.Post("/v1/events", R"({"a":1})", "application/xml"), 415, "application/json");
  const std::string big = R"({"pad":")" + std::string(2000, 'x') + R"("})";
  expect_error(c.Post("/v1/events", big, "application/json"), 413, "max_body_bytes");
  // Parameters and case in the media type are fine.
  auto res = c.Post("/v1/events", R"({"a":1})", "Application/JSON; charset=utf-8");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  expect_error(c.Get("/v1/nope"), 404, "no such endpoint");
}

TEST(Errors, BearerTokenIsRequiredWhenConfigured) {
  auto d = DaemonProcess::start(R"(
server:
  listen: "127.0.0.1:0"
  auth:
    tokens: ["${TEST_TOKEN}", "second-token"]
sinks:
  archive: { type: file, path: ./data/events.ndjson }
)",
                                {{"TEST_TOKEN", "s3cret-token"}});
  ASSERT_TRUE(d);
  auto c = d->client();
  expect_error(c.Post("/v1/events", R"({"a":1})", "application/json"), 401, "missing");
  expect_error(
      c.Post("/v1/events", {{"Authorization", "Bearer wrong"}}, R"({"a":1})", "application/json"),
      401, "invalid token");
  expect_error(c.Post("/v1/events", {{"Authorization", "Bearer s3cret-tok"}}, R"({"a":1})",
                      "application/json"),
               401, "invalid token");
  expect_error(
      c.Post("/v1/events", {{"Authorization", "Basic czNjcmV0"}}, R"({"a":1})", "application/json"),
      401, "invalid token");
  std::string last_id;
  for (const char* token : {"s3cret-token", "second-token"}) {
    auto res = c.Post("/v1/events", {{"Authorization", std::string("Bearer ") + token}},
                      R"({"a":1})", "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 202) << res->body;
    last_id = Json::parse(res->body).at("ids").at(0).get<std::string>();
  }
  // The last accepted event is a sentinel: what a refused request had let through would be
  // written before it (the file sink writes in order).
  const auto path = d->workdir() / "data/events.ndjson";
  ASSERT_TRUE(evtest::eventually([&] {
    const auto lines = read_lines(path);
    return !lines.empty() && Json::parse(lines.back()).at("id") == last_id;
  }));
  EXPECT_EQ(read_lines(path).size(), 2u);
}

TEST(Errors, FullBlockingQueueAnswers503WithRetryAfter) {
  Receiver slow;
  slow.close_gate();  // the webhook hangs: its queue fills up
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  slow:
    type: http
    url: )" + slow.url() + R"(
    timeout: 30s
    queue: { capacity: 2, when_full: block, block_timeout: 200ms }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  // One event in flight plus one waiting fills capacity 2.
  for (int i = 0; i < 2; ++i) {
    auto res = c.Post("/v1/events", R"({"a":1})", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
  }
  auto full = c.Post("/v1/events", R"({"a":2})", "application/json");
  expect_error(full, 503, "queue is full");
  EXPECT_EQ(full->get_header_value("Retry-After"), "1");
  // A batch larger than the queue can ever hold is a 413, not a retry loop.
  expect_error(c.Post("/v1/events", R"([{"a":1},{"a":2},{"a":3}])", "application/json"), 413,
               "capacity");
  slow.open_gate();
  ASSERT_TRUE(slow.wait_delivered(2));
  // Room again: accepted.
  auto res = c.Post("/v1/events", R"({"a":3})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  ASSERT_TRUE(slow.wait_delivered(3));
}

}  // namespace
}  // namespace evtest
