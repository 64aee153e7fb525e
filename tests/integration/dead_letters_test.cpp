// Dead letters through the real evrouted: a receiver answering 400 sends events to the sink's
// dead-letter log (NDJSON under data_dir), the API lists them, and a replay after the receiver is
// fixed delivers them with their ids.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

std::string config(const std::string& url, const std::string& queue) {
  return R"(
server:
  listen: "127.0.0.1:0"
  auth: { tokens: ["sekret"] }
data_dir: ./state
sinks:
  hook:
    type: http
    url: )" +
         url + R"(
    queue: )" +
         queue + R"(
    retry: { max_attempts: 3, initial_backoff: 10ms, max_backoff: 20ms, breaker: false }
)";
}

httplib::Headers auth() { return {{"Authorization", "Bearer sekret"}}; }

Json get_json(httplib::Client& c, const std::string& path) {
  auto res = c.Get(path, auth());
  if (!res || res->status != 200) {
    ADD_FAILURE() << path << ": "
                  << (res ? std::to_string(res->status) + " " + res->body : "no answer");
    return Json();
  }
  return Json::parse(res->body);
}

bool wait_dead_letters(httplib::Client& c, std::uint64_t n) {
  return eventually(
      [&] {
        const Json page = get_json(c, "/v1/sinks/hook/dead-letters");
        return page.is_object() && page["total"].get<std::uint64_t>() >= n;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
}

class DeadLetters : public ::testing::TestWithParam<std::string> {};

TEST_P(DeadLetters, RejectedEventsAreDeadLetteredListedAndReplayedWithTheirIds) {
  Receiver hook;
  std::atomic<bool> fixed{false};
  hook.set_respond([&](std::size_t) { return fixed ? 200 : 400; });
  auto d = DaemonProcess::start(config(hook.url(), GetParam()));
  ASSERT_TRUE(d);
  auto c = d->client();
  auto res = c.Post(
      "/v1/events", auth(),
      R"([{"id":"a","type":"t"},{"id":"b","type":"t"},{"id":"c","type":"t"},{"id":"d"},{"id":"e"}])",
      "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  ASSERT_TRUE(wait_dead_letters(c, 5));
  EXPECT_EQ(hook.requests().size(), 5u);  // 400 is not retryable: one attempt each

  // Listed, paged, with the reason, attempts and last status, and the event itself.
  Json page = get_json(c, "/v1/sinks/hook/dead-letters?limit=2");
  ASSERT_EQ(page["dead_letters"].size(), 2u);
  EXPECT_EQ(page["total"], 5);
  EXPECT_EQ(page["next_offset"], 2);
  const Json first = page["dead_letters"][0];
  EXPECT_EQ(first["id"], "a");
  EXPECT_EQ(first["reason"], "not retryable");
  EXPECT_EQ(first["attempts"], 1);
  EXPECT_NE(first["last_status"].get<std::string>().find("HTTP 400"), std::string::npos);
  EXPECT_EQ(first["event"]["type"], "t");
  page = get_json(c, "/v1/sinks/hook/dead-letters?offset=4&limit=2");
  ASSERT_EQ(page["dead_letters"].size(), 1u);
  EXPECT_EQ(page["dead_letters"][0]["id"], "e");
  EXPECT_FALSE(page.contains("next_offset"));

  // The file is NDJSON under data_dir, and /metrics counts it.
  EXPECT_EQ(read_lines(d->workdir() / "state" / "dead-letters" / "hook.ndjson").size(), 5u);
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("evroute_sink_dead_letters_total{sink=\"hook\"} 5"),
            std::string::npos);

  // The receiver is fixed. Replay one by id, then the rest.
  fixed = true;
  res =
      c.Post("/v1/sinks/hook/dead-letters/replay", auth(), R"({"ids":["c"]})", "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error()) << "\n" << d->err();
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["replayed"], 1);
  ASSERT_TRUE(hook.wait_delivered(1));
  EXPECT_EQ(hook.delivered()[0].header("webhook-id"), "c");
  EXPECT_EQ(Json::parse(hook.delivered()[0].body)["id"], "c");
  EXPECT_EQ(get_json(c, "/v1/sinks/hook/dead-letters")["total"], 4);

  res = c.Post("/v1/sinks/hook/dead-letters/replay", auth(), "", "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error()) << "\n" << d->err();
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["replayed"], 4);
  ASSERT_TRUE(hook.wait_delivered(5));
  std::set<std::string> ids;
  for (const auto& r : hook.delivered()) ids.insert(r.header("webhook-id"));
  EXPECT_EQ(ids, (std::set<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(get_json(c, "/v1/sinks/hook/dead-letters")["total"], 0);
}

INSTANTIATE_TEST_SUITE_P(Queues, DeadLetters,
                         ::testing::Values("{ type: memory }", "{ type: disk, fsync: always }"),
                         [](const auto& info) { return info.index == 0 ? "Memory" : "Disk"; });

TEST(DeadLetterApi, NeedsTheTokenAndNamesUnknownSinksAndBadParameters) {
  Receiver hook;
  auto d = DaemonProcess::start(config(hook.url(), "{ type: memory }"));
  ASSERT_TRUE(d);
  auto c = d->client();
  auto res = c.Get("/v1/sinks/hook/dead-letters");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = c.Post("/v1/sinks/hook/dead-letters/replay", "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = c.Get("/v1/sinks/nope/dead-letters", auth());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(res->body.find("no sink named 'nope'"), std::string::npos);
  res = c.Get("/v1/sinks/hook/dead-letters?limit=-1", auth());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  res = c.Post("/v1/sinks/hook/dead-letters/replay", auth(), R"({"ids":"a"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  res = c.Get("/v1/sinks/hook/dead-letters", auth());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(Json::parse(res->body)["total"], 0);
}

}  // namespace
}  // namespace evtest
