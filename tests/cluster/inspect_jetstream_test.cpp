// `evrouted --inspect-queues` on jetstream queues, against a real nats-server (support/
// nats_server.h): the stream's messages and each sink's consumer counts (pending, ack pending), a
// sink without a consumer yet, no stream or consumer created by inspecting, and NATS down reported
// per queue (not corruption).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/nats_server.h"
#include "support/receiver.h"

namespace evtest {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string config(const std::string& nats_url, const Receiver& hook, bool with_later) {
  std::string yaml =
      "server: { listen: \"127.0.0.1:0\" }\n"
      "shutdown_timeout: 2s\n"
      "data_dir: ./state\n"
      "nats:\n"
      "  servers: [\"" +
      nats_url +
      "\"]\n"
      "sinks:\n"
      "  hook:\n"
      "    type: http\n"
      "    url: " +
      hook.url() +
      "\n"
      "    concurrency: 1\n"
      "    queue: { type: jetstream, ack_wait: 30s }\n"
      "    retry: { max_attempts: 0, max_elapsed: 1h, initial_backoff: 50ms, "
      "max_backoff: 200ms }\n";
  if (with_later) {
    yaml +=
        "  later:\n"
        "    type: http\n"
        "    url: " +
        hook.url() + "\n    queue: { type: jetstream }\n";
  }
  return yaml;
}

// The number of consumers on stream EVROUTE (~0 when there is no such stream).
std::int64_t consumers(const std::string& url) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  std::int64_t n = -1;
  jsStreamInfo* info = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK &&
      natsConnection_JetStream(&js, nc, nullptr) == NATS_OK &&
      js_GetStreamInfo(&info, js, "EVROUTE", nullptr, nullptr) == NATS_OK) {
    n = info->State.Consumers;
    jsStreamInfo_Destroy(info);
  }
  if (js) jsCtx_Destroy(js);
  if (nc) natsConnection_Destroy(nc);
  return n;
}

struct Inspection {
  int code;
  std::string out, err;
  Json doc;
};

Inspection inspect(const fs::path& dir, bool json) {
  std::vector<std::string> args = {"--inspect-queues", "--config", (dir / "config.yaml").string()};
  if (json) args.push_back("--json");
  DaemonProcess p(args, dir);
  const auto code = p.wait_exit(20s);
  EXPECT_TRUE(code) << "evrouted --inspect-queues did not exit";
  Inspection r{code.value_or(-1), p.out(), p.err(), nullptr};
  if (json) r.doc = Json::parse(r.out, nullptr, false);
  return r;
}

Json queue(const Json& doc, const std::string& sink) {
  if (doc.is_object()) {
    for (const Json& q : doc["queues"]) {
      if (q["sink"] == sink) return q;
    }
  }
  ADD_FAILURE() << "no queue " << sink << " in " << doc.dump();
  return Json::object();
}

TEST(InspectJetStream, ShowsTheStreamAndTheConsumersCountsAndNatsDownIsNotCorruption) {
  NatsServer nats;
  nats.start();
  Receiver hook;
  hook.set_respond([](std::size_t n) { return n < 2 ? 200 : 503; });
  const fs::path dir = make_temp_dir();
  {
    auto d = DaemonProcess::start_in(dir, config(nats.url(), hook, false));
    ASSERT_TRUE(d);
    ASSERT_TRUE(eventually(
        [&] {
          auto res = d->client().Get("/readyz");
          return res && res->status == 200;
        },
        30s, 50ms))
        << d->err();
    ASSERT_EQ(post_n(*d, 2).size(), 2u);
    ASSERT_TRUE(hook.wait_delivered(2));
    ASSERT_EQ(post_n(*d, 3).size(), 3u);  // the first of them is retried (NAKs), the rest wait
    ASSERT_TRUE(eventually([&] { return hook.requests().size() > 3; }, 10s));
    d->signal(SIGTERM);
    ASSERT_EQ(d->wait_exit(20s), 0) << d->err();
  }
  // The config now also has a sink no evrouted started: it has no consumer yet.
  std::ofstream(dir / "config.yaml") << config(nats.url(), hook, true);
  const std::int64_t consumers_before = consumers(nats.url());
  EXPECT_EQ(consumers_before, 1);

  const Inspection json = inspect(dir, true);
  EXPECT_EQ(json.code, 0) << json.out << json.err;
  const Json q = queue(json.doc, "hook");
  EXPECT_EQ(q["type"], "jetstream");
  EXPECT_EQ(q["state"], "ok");
  EXPECT_EQ(q["subject"], "EVROUTE.sink.hook");
  EXPECT_EQ(q["consumer"], "hook");
  EXPECT_EQ(q["stored"], 3);  // a WorkQueue stream: the 2 acknowledged are gone
  EXPECT_EQ(q["pending"].get<int>() + q["ack_pending"].get<int>(), 3) << q.dump();
  EXPECT_GE(q["redelivered"].get<int>(), 0);
  EXPECT_EQ(json.doc["stream"]["name"], "EVROUTE");
  EXPECT_EQ(json.doc["stream"]["exists"], true);
  EXPECT_EQ(json.doc["stream"]["messages"], 3);
  const Json later = queue(json.doc, "later");
  EXPECT_EQ(later["state"], "no_consumer");
  EXPECT_EQ(later["stored"], 0);
  EXPECT_EQ(consumers(nats.url()), consumers_before) << "inspection created a consumer";

  const Inspection text = inspect(dir, false);
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("jetstream queue 'hook' (stream EVROUTE, subject EVROUTE.sink.hook, "
                          "consumer hook): ok"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("stored       3 message(s) in the stream"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("jetstream queue 'later'"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("none yet"), std::string::npos) << text.out;

  // Without 'hook' in the config, its events in the stream are an orphaned queue (not corruption).
  const std::string full = config(nats.url(), hook, true);
  std::string without_hook = full;
  without_hook.erase(without_hook.find("  hook:\n"),
                     without_hook.find("  later:\n") - without_hook.find("  hook:\n"));
  std::ofstream(dir / "config.yaml") << without_hook;
  const Inspection orphan = inspect(dir, true);
  EXPECT_EQ(orphan.code, 0) << orphan.out << orphan.err;
  const Json o = queue(orphan.doc, "hook");
  EXPECT_EQ(o["orphaned"], true);
  EXPECT_EQ(o["stored"], 3);
  EXPECT_EQ(queue(orphan.doc, "later")["orphaned"], false);
  const Inspection orphan_text = inspect(dir, false);
  EXPECT_NE(orphan_text.out.find("no configured sink 'hook' has a jetstream queue"),
            std::string::npos)
      << orphan_text.out;
  std::ofstream(dir / "config.yaml") << full;

  nats.kill();
  const auto start = std::chrono::steady_clock::now();
  const Inspection down = inspect(dir, true);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  EXPECT_EQ(down.code, 2) << "incomplete, not corrupt";
  EXPECT_EQ(down.doc["verdict"], "incomplete");
  EXPECT_TRUE(down.doc["stream"]["exists"].is_null()) << down.out;
  const Json unavailable = queue(down.doc, "hook");
  EXPECT_EQ(unavailable["state"], "unavailable");
  EXPECT_EQ(unavailable["error"].get<std::string>().rfind("nats unavailable: ", 0), 0u)
      << unavailable.dump();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace evtest
