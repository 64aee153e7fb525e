// The nats sink of the real evrouted on a real 3-node nats-server cluster, read back by an
// independent client (the npm NATS client, support/nats_reader.h): with `jetstream: true` what it
// publishes is in the stream with its Nats-Msg-Id and Evroute-Type headers, stored once however
// often a client resends; with core NATS a subscriber receives it.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "support/command.h"
#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/nats_cluster.h"
#include "support/nats_reader.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

std::string servers_arg(const NatsCluster& cluster) {
  std::string out;
  for (const auto& u : cluster.urls()) out += (out.empty() ? "" : ",") + u;
  return out;
}

// Creates stream `name` capturing `subjects` with the libnats client.
bool add_stream(const NatsCluster& cluster, const char* name, const char* subjects, int replicas) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, cluster.url(0).c_str()) != NATS_OK) return false;
  jsCtx* js = nullptr;
  bool ok = natsConnection_JetStream(&js, nc, nullptr) == NATS_OK;
  if (ok) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = &subjects;
    cfg.SubjectsLen = 1;
    cfg.Replicas = replicas;
    jsStreamInfo* si = nullptr;
    ok = js_AddStream(&si, js, &cfg, nullptr, nullptr) == NATS_OK;
    if (si) jsStreamInfo_Destroy(si);
  }
  if (js) jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return ok;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

TEST(NatsSinkCluster, WithJetStreamTheStreamHoldsEachEventOnceWithItsHeaders) {
  ASSERT_TRUE(nats_reader_ready());
  auto cluster = NatsCluster::start(3);
  ASSERT_TRUE(cluster);
  ASSERT_TRUE(add_stream(*cluster, "ORDERS", "orders.>", 3)) << cluster->logs();
  auto d = DaemonProcess::start(
      "server: { listen: \"127.0.0.1:0\" }\nnats:\n  servers: " + cluster->yaml_servers() +
      "\nsinks:\n  bus:\n    type: nats\n    subject: orders.created\n"
      "    jetstream: true\n");
  ASSERT_TRUE(d);
  auto c = d->client();
  for (int i = 0; i < 3; ++i) {
    const std::string body = R"({"id":"o-)" + std::to_string(i) + R"(","type":"order.created"})";
    for (int resend = 0; resend < 2; ++resend) {  // a client's resend: stored once
      auto res = c.Post("/v1/events", body, "application/json");
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 202) << res->body;
    }
  }
  ASSERT_TRUE(eventually(
      [&] {
        auto res = c.Get("/v1/sinks");
        return res && Json::parse(res->body)["sinks"][0]["counters"]["delivered"] == 6;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(50)))
      << d->err();

  const auto [status, out] = run_command(nats_reader_command(
      "--servers " + servers_arg(*cluster) +
      " --stream ORDERS --subject orders.created --count 3 --timeout-ms 15000"));
  ASSERT_EQ(status, 0) << out;
  const auto msgs = parse_reader_lines(lines_of(out));
  ASSERT_EQ(msgs.size(), 3u) << out;
  for (int i = 0; i < 3; ++i) {
    const std::string id = "o-" + std::to_string(i);
    EXPECT_EQ(msgs[i]["subject"], "orders.created");
    EXPECT_EQ(Json::parse(msgs[i]["data"].get<std::string>())["id"], id) << msgs[i];
    EXPECT_EQ(msgs[i]["headers"]["Nats-Msg-Id"], id) << msgs[i];
    EXPECT_EQ(msgs[i]["headers"]["Evroute-Type"], "order.created") << msgs[i];
  }
  // Nothing more: the resends were deduplicated by Nats-Msg-Id.
  const auto [timed_out, more] = run_command(
      nats_reader_command("--servers " + servers_arg(*cluster) +
                          " --stream ORDERS --subject orders.created --count 4 --timeout-ms 1500"));
  EXPECT_EQ(timed_out, 1) << more;
  EXPECT_EQ(lines_of(more).size(), 3u) << more;
}

TEST(NatsSinkCluster, WithCoreNatsASubscriberReceivesEachEvent) {
  ASSERT_TRUE(nats_reader_ready());
  auto cluster = NatsCluster::start(3);
  ASSERT_TRUE(cluster);
  // evrouted and the reader on the same node: the reader's interest is there once it is READY.
  auto d = DaemonProcess::start("server: { listen: \"127.0.0.1:0\" }\nnats:\n  servers: [\"" +
                                cluster->url(1) +
                                "\"]\nsinks:\n  bus: { type: nats, subject: core.events }\n");
  ASSERT_TRUE(d);
  const std::string cmd =
      nats_reader_command("--core --servers " + cluster->url(1) +
                          " --subject core.events --count 2 --timeout-ms 15000");
  std::FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_TRUE(pipe) << cmd;
  char line[65536];
  ASSERT_TRUE(std::fgets(line, sizeof line, pipe)) << cmd;
  ASSERT_EQ(std::string(line), "READY\n");
  const std::vector<std::string> ids = post_n(*d, 2);
  ASSERT_EQ(ids.size(), 2u);
  std::vector<std::string> lines;
  while (std::fgets(line, sizeof line, pipe)) lines.emplace_back(line);
  const int status = pclose(pipe);
  ASSERT_EQ(status, 0) << cmd << "\n" << d->err();
  const auto msgs = parse_reader_lines(lines);
  ASSERT_EQ(msgs.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(msgs[i]["subject"], "core.events");
    EXPECT_EQ(msgs[i]["headers"]["Nats-Msg-Id"], ids[i]) << msgs[i];
    EXPECT_EQ(Json::parse(msgs[i]["data"].get<std::string>())["n"], i) << msgs[i];
  }
}

}  // namespace
}  // namespace evtest
