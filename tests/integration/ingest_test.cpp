// POST /v1/events end to end: the real evrouted, real HTTP, a real webhook receiver; events reach
// stdout, the file and the webhook with the ids the 202 reply named.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/daemon_process.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

std::string fanout_config(const Receiver& hook) {
  return R"(
server:
  listen: "127.0.0.1:0"
sinks:
  console:
    type: stdout
  archive:
    type: file
    path: ./data/events.ndjson
  hook:
    type: http
    url: )" +
         hook.url() +
         R"(
    retry: { initial_backoff: 10ms, max_backoff: 50ms }
)";
}

std::vector<std::string> ids_of(const httplib::Result& res) {
  const Json reply = Json::parse(res->body);  // kept alive: the loop iterates a member of it
  std::vector<std::string> ids;
  for (auto& id : reply.at("ids")) ids.push_back(id.get<std::string>());
  return ids;
}

// Every sink got exactly `ids`, each event carrying its id.
void expect_everywhere(DaemonProcess& d, Receiver& hook, const std::vector<std::string>& ids) {
  const auto file = d.workdir() / "data/events.ndjson";
  ASSERT_TRUE(wait_lines(file, ids.size()));
  ASSERT_TRUE(hook.wait_delivered(ids.size()));
  ASSERT_TRUE(d.wait_out([&](const std::string& out) {
    return static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n')) >= ids.size();
  }));

  std::vector<std::string> file_ids, stdout_ids, hook_ids, hook_header_ids;
  for (auto& line : read_lines(file)) file_ids.push_back(Json::parse(line).at("id"));
  std::istringstream out(d.out());
  for (std::string line; std::getline(out, line);) stdout_ids.push_back(Json::parse(line).at("id"));
  for (auto& r : hook.delivered()) {
    hook_ids.push_back(Json::parse(r.body).at("id"));
    hook_header_ids.push_back(r.header("webhook-id"));
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_FALSE(r.header("webhook-timestamp").empty());
  }
  EXPECT_EQ(file_ids, ids);
  EXPECT_EQ(stdout_ids, ids);
  EXPECT_EQ(hook_ids, ids);
  EXPECT_EQ(hook_header_ids, ids);
}

TEST(Ingest, OneObjectReachesEverySinkWithItsGeneratedId) {
  Receiver hook;
  auto d = DaemonProcess::start(fanout_config(hook));
  ASSERT_TRUE(d);
  auto res =
      d->client().Post("/v1/events", R"({"type":"user.signup","user":"ada"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  const Json reply = Json::parse(res->body);
  EXPECT_EQ(reply.at("accepted"), 1);
  const auto ids = ids_of(res);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0].size(), 36u);  // a UUID
  expect_everywhere(*d, hook, ids);
  // The payload is the object as sent, plus its id.
  const Json line = Json::parse(read_lines(d->workdir() / "data/events.ndjson").at(0));
  EXPECT_EQ(line.at("user"), "ada");
  EXPECT_EQ(line.at("type"), "user.signup");
}

TEST(Ingest, ArrayKeepsClientIdsAndOrder) {
  Receiver hook;
  auto d = DaemonProcess::start(fanout_config(hook));
  ASSERT_TRUE(d);
  auto res = d->client().Post("/v1/events",
                              R"([{"id":"evt-1","n":1},
                                  {"n":2},
                                  {"id":"evt-3","n":3,"nested":{"a":[1,2]}}])",
                              "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  const auto ids = ids_of(res);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], "evt-1");
  EXPECT_EQ(ids[2], "evt-3");
  expect_everywhere(*d, hook, ids);
  // Pretty-printed input is written as one line per event.
  const Json third = Json::parse(read_lines(d->workdir() / "data/events.ndjson").at(2));
  EXPECT_EQ(third.at("nested").at("a"), Json::array({1, 2}));
}

// The 202 body is written by hand (server.cpp): ids that need escaping come back as the same
// strings, and the body is exactly what nlohmann would have written.
TEST(Ingest, TheAcceptedBodyQuotesIdsAsJson) {
  Receiver hook;
  auto d = DaemonProcess::start(fanout_config(hook));
  ASSERT_TRUE(d);
  auto res = d->client().Post("/v1/events",
                              R"([{"id":"q\"uote"},{"id":"back\\slash"},{"id":"caf\u00e9 \/ ok"}])",
                              "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  const Json expected = {{"accepted", 3}, {"ids", {"q\"uote", "back\\slash", "caf\u00e9 / ok"}}};
  EXPECT_EQ(res->body, expected.dump());
  EXPECT_EQ(Json::parse(res->body), expected);
}

TEST(Ingest, NdjsonLinesBecomeEvents) {
  Receiver hook;
  auto d = DaemonProcess::start(fanout_config(hook));
  ASSERT_TRUE(d);
  auto res = d->client().Post("/v1/events", "{\"a\":1}\n\n{\"id\":\"x-2\",\"a\":2}\n{\"a\":3}\n",
                              "application/x-ndjson");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  const auto ids = ids_of(res);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], "x-2");
  expect_everywhere(*d, hook, ids);
}

TEST(Ingest, FiltersRouteOnlyMatchingEvents) {
  Receiver billing, everything;
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  billing:
    type: http
    url: )" + billing.url() + R"(
    filter:
      type: ["invoice.*", "payment.failed"]
  everything:
    type: http
    url: )" + everything.url() + R"(
)");
  ASSERT_TRUE(d);
  auto res = d->client().Post("/v1/events", R"([
      {"id":"1","type":"invoice.paid"},
      {"id":"2","type":"user.signup"},
      {"id":"3","type":"payment.failed"},
      {"id":"4","type":"payment.ok"},
      {"id":"5"},
      {"id":"6","type":"invoice.created"}])",
                              "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  ASSERT_TRUE(everything.wait_delivered(6));
  ASSERT_TRUE(billing.wait_delivered(3));
  std::vector<std::string> got;
  for (auto& r : billing.delivered()) got.push_back(r.header("webhook-id"));
  EXPECT_EQ(got, (std::vector<std::string>{"1", "3", "6"}));
  // Nothing more arrives: a sentinel that billing's filter takes, sent afterwards, is the next
  // request billing gets (its queue delivers in order, so a stray event would come first).
  auto sentinel = d->client().Post("/v1/events", R"({"id":"sentinel","type":"invoice.sentinel"})",
                                   "application/json");
  ASSERT_TRUE(sentinel);
  ASSERT_EQ(sentinel->status, 202) << sentinel->body;
  ASSERT_TRUE(billing.wait_delivered(4));
  got.clear();
  for (auto& r : billing.delivered()) got.push_back(r.header("webhook-id"));
  EXPECT_EQ(got, (std::vector<std::string>{"1", "3", "6", "sentinel"}));
  EXPECT_EQ(billing.requests().size(), 4u);
}

TEST(Ingest, DefaultConfigServesTheReadmeExample) {
  // config/evroute.yaml as shipped, on a free port instead of 8080.
  std::ifstream in(source_dir() / "config/evroute.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto pos = yaml.find("127.0.0.1:8080");
  ASSERT_NE(pos, std::string::npos) << "config/evroute.yaml should listen on 127.0.0.1:8080";
  yaml.replace(pos, std::string("127.0.0.1:8080").size(), "127.0.0.1:0");
  auto d = DaemonProcess::start(yaml);
  ASSERT_TRUE(d);
  auto res =
      d->client().Post("/v1/events", R"({"type":"order.created","order":42})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  const auto id = ids_of(res).at(0);
  ASSERT_TRUE(
      d->wait_out([&](const std::string& out) { return out.find(id) != std::string::npos; }));
  ASSERT_TRUE(wait_lines(d->workdir() / "data/events.ndjson", 1));
  EXPECT_NE(read_lines(d->workdir() / "data/events.ndjson")[0].find(id), std::string::npos);
}

}  // namespace
}  // namespace evtest
