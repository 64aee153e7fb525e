// SIGHUP on the real evrouted, under load, with real webhook receivers: it re-reads the
// configuration file and applies it in place. A broken file is rejected with every problem logged
// as FILE:LINE:COL (as --check prints them) and changes nothing; a valid one adds, removes and
// rebuilds sinks: a removed sink drains what it was given, an added one gets what is accepted after
// the reload, a changed one keeps its queued events (memory backlog handed over, disk queue
// resumed). Server settings are reported as needing a restart. Throughout, no request fails and
// every 202'd event reaches every sink it was routed to.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// eventually()'s pace here: its conditions ask evrouted or a busy receiver each time.
constexpr auto kPoll = 10ms;

// The webhook sink `hook`: order.* to `url`, retried for as long as it takes.
std::string hook_sink(const std::string& url) {
  return R"(
  hook:
    type: http
    url: )" +
         url + R"(
    filter: { type: ["order.*"] }
    queue: { capacity: 200000 }
    retry: { max_attempts: 0, max_elapsed: 10m, initial_backoff: 20ms, max_backoff: 100ms }
)";
}

// Every accepted event goes to archive; order.* to orders and to the webhook `hook`.
std::string config_v1(const std::string& hook_url) {
  return R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive:
    type: file
    path: ./archive.ndjson
  orders:
    type: file
    path: ./orders.ndjson
    filter: { type: ["order.*"] }
)" + hook_sink(hook_url);
}

// Sends batches of two events (one order.*, one other) until told to stop; records the 202'd ids
// and counts every request that did not get a 202.
class Load {
 public:
  explicit Load(const DaemonProcess& d) : client_(d.client()) {
    thread_ = std::thread([this] {
      for (int i = 0; !stop_.load() && i < 100000; ++i) {
        const std::string n = std::to_string(i);
        const std::string body = R"({"type":"order.created","n":)" + n + "}\n" +
                                 R"({"type":"user.seen","n":)" + n + "}\n";
        auto res = client_.Post("/v1/events", body, "application/x-ndjson");
        std::lock_guard<std::mutex> g(mu_);
        if (!res || res->status != 202) {
          ++failed_;
          continue;
        }
        const Json ids = Json::parse(res->body)["ids"];
        acked_.push_back(ids[0]);
        acked_.push_back(ids[1]);
        orders_.push_back(ids[0]);
        users_.push_back(ids[1]);
      }
    });
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::size_t acked() {
    std::lock_guard<std::mutex> g(mu_);
    return acked_.size();
  }
  // Waits (bounded) until `more` further events are acknowledged: the daemon serves.
  bool wait_progress(std::size_t more) {
    const std::size_t target = acked() + more;
    return eventually([&] { return acked() >= target; }, 10s, kPoll);
  }

  httplib::Client client_;
  std::mutex mu_;
  // acked_[2k] = orders_[k] (order.created), acked_[2k+1] = users_[k] (user.seen).
  std::vector<std::string> acked_, orders_, users_;
  int failed_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The ids in a file sink's file; fails the test if one is there twice (a file sink's write is
// not interrupted by a reload, so nothing is written again).
std::set<std::string> ids_in(const fs::path& file) {
  std::set<std::string> out;
  for (const std::string& line : read_lines(file)) {
    const std::string id = Json::parse(line)["id"];
    EXPECT_TRUE(out.insert(id).second) << id << " twice in " << file;
  }
  return out;
}

std::set<std::string> webhook_ids(const Receiver& r) {
  std::set<std::string> out;
  for (const auto& req : r.delivered()) out.insert(req.header("webhook-id"));
  return out;
}

std::uint64_t sink_counter(const DaemonProcess& d, const std::string& sink,
                           const std::string& key) {
  auto res = d.client().Get("/v1/sinks");
  if (!res || res->status != 200) return 0;
  const Json reply = Json::parse(res->body);
  for (const auto& s : reply["sinks"]) {
    if (s["name"] == sink) return s["counters"][key].get<std::uint64_t>();
  }
  return 0;
}

std::vector<std::string> sink_names(const DaemonProcess& d) {
  auto res = d.client().Get("/v1/sinks");
  std::vector<std::string> names;
  if (!res || res->status != 200) {
    ADD_FAILURE() << "GET /v1/sinks: " << (res ? res->body : httplib::to_string(res.error()));
    return names;
  }
  const Json reply = Json::parse(res->body);
  for (const auto& s : reply["sinks"]) names.push_back(s["name"]);
  return names;
}

void rewrite_config(const DaemonProcess& d, const std::string& yaml) {
  std::ofstream(d.workdir() / "config.yaml", std::ios::trunc) << yaml;
}

TEST(Reload, SighupAppliesTheTopologyInPlaceUnderLoadAndLosesNothing) {
  Receiver down;  // the webhook's first URL: answers 503 to everything
  down.set_respond([](std::size_t) { return 503; });
  Receiver up;
  auto d = DaemonProcess::start(config_v1(down.url()));
  ASSERT_TRUE(d);
  const std::string path = (d->workdir() / "config.yaml").string();
  Load load(*d);
  ASSERT_TRUE(load.wait_progress(200));
  // hook is retrying: its queue holds a backlog.
  ASSERT_TRUE(eventually([&] { return down.requests().size() > 3; }, 10s, kPoll));

  // Unchanged file: reported as such, and file sinks are reopened as before.
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("SIGHUP: " + path + " is valid and unchanged")) << d->err();
  EXPECT_TRUE(d->wait_err_contains("sink 'archive': reopened"));

  // Broken YAML, then a semantic error: each rejected with its FILE:LINE:COL, nothing changes.
  rewrite_config(*d, "server: { listen: \"127.0.0.1:0\"\nsinks:\n  archive: [\n");
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("problem(s) in " + path +
                                   "; configuration not reloaded, still running the previous one"))
      << d->err();
  EXPECT_NE(d->err().find(path + ":"), std::string::npos);
  EXPECT_NE(d->err().find("YAML syntax error"), std::string::npos) << d->err();
  ASSERT_TRUE(load.wait_progress(50));

  rewrite_config(*d, R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive:
    type: file
  orders:
    type: nosuch
)");
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("2 problem(s) in " + path)) << d->err();
  EXPECT_NE(d->err().find(path + ":5:5: "), std::string::npos) << d->err();  // archive: no path
  EXPECT_NE(d->err().find(path + ":7:11: sink 'orders': unknown type 'nosuch'"), std::string::npos)
      << d->err();
  EXPECT_EQ(sink_names(*d), (std::vector<std::string>{"archive", "orders", "hook"}));

  // Valid, but a new sink cannot start (its file cannot be created): nothing is applied.
  rewrite_config(*d, config_v1(down.url()) + R"(
  broken:
    type: file
    path: /proc/evroute-no/x.ndjson
)");
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("SIGHUP: sink 'broken': ")) << d->err();
  ASSERT_TRUE(d->wait_err_contains("configuration not reloaded, still running the previous one"));
  EXPECT_EQ(sink_names(*d), (std::vector<std::string>{"archive", "orders", "hook"}));
  ASSERT_TRUE(load.wait_progress(200));

  // The real change: archive removed, audit added, orders' filter widened, hook pointed at a
  // receiver that answers, a server setting changed (reported, not applied).
  rewrite_config(*d, R"(
shutdown_timeout: 5s
server: { listen: "127.0.0.1:0", threads: 3 }
sinks:
  orders:
    type: file
    path: ./orders.ndjson
    filter: { type: ["order.*", "user.*"] })" +
                         hook_sink(up.url()) + R"(
  audit:
    type: file
    path: ./audit.ndjson
)");
  const std::size_t before = load.acked();  // acknowledged before the reload: old topology
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("SIGHUP: reloaded " + path +
                                   ": sinks added: audit; removed: archive; changed: orders, hook; "
                                   "unchanged: none"))
      << d->err();
  // The request in flight when the reload was seen may have been admitted before it; every later
  // one after it (Load sends one request at a time, two events each).
  const std::size_t after = load.acked() + 2;
  EXPECT_NE(d->err().find("SIGHUP: server.threads changed: needs a restart; not applied"),
            std::string::npos)
      << d->err();
  EXPECT_TRUE(d->wait_err_contains("sink 'archive' (removed by a reload): drained and closed"))
      << d->err();
  EXPECT_NE(d->err().find("queued event(s) handed to its new settings"), std::string::npos)
      << d->err();
  EXPECT_EQ(sink_names(*d), (std::vector<std::string>{"orders", "hook", "audit"}));
  ASSERT_TRUE(load.wait_progress(400));

  load.stop();
  EXPECT_EQ(load.failed_, 0);
  ASSERT_GT(load.acked(), after);
  // The hook's backlog (every order since the start) reaches the new URL.
  ASSERT_TRUE(up.wait_delivered(load.orders_.size(), 30s))
      << up.delivered().size() << " of " << load.orders_.size();
  // Its counters start again with the new settings: in = the backlog handed over + new orders.
  // (The receiver counts a request before the sink has its answer: wait for the counter.)
  EXPECT_TRUE(eventually(
      [&] {
        return sink_counter(*d, "hook", "events_in") == sink_counter(*d, "hook", "delivered");
      },
      10s, kPoll))
      << d->client().Get("/v1/sinks")->body;
  EXPECT_GE(sink_counter(*d, "hook", "events_in"), load.orders_.size() - before / 2);
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait_exit(), 0) << d->err();
  EXPECT_NE(d->err().find("stopped: every accepted event was delivered"), std::string::npos)
      << d->err();

  const auto archive = ids_in(d->workdir() / "archive.ndjson");
  const auto orders = ids_in(d->workdir() / "orders.ndjson");
  const auto audit = ids_in(d->workdir() / "audit.ndjson");
  const auto hooked = webhook_ids(up);
  // Removed: everything accepted before the reload was delivered before it closed.
  for (std::size_t i = 0; i < before; ++i) ASSERT_TRUE(archive.count(load.acked_[i])) << i;
  // Added: everything accepted after the reload.
  for (std::size_t i = after; i < load.acked_.size(); ++i) {
    ASSERT_TRUE(audit.count(load.acked_[i])) << i;
  }
  // Changed filter: every order throughout; users only once the new filter runs.
  for (const std::string& id : load.orders_) ASSERT_TRUE(orders.count(id)) << id;
  for (std::size_t k = 0; k < before / 2; ++k) EXPECT_FALSE(orders.count(load.users_[k])) << k;
  for (std::size_t k = after / 2; k < load.users_.size(); ++k) {
    ASSERT_TRUE(orders.count(load.users_[k])) << k;
  }
  // Changed URL: every order, including the backlog queued while the old URL answered 503.
  for (const std::string& id : load.orders_) ASSERT_TRUE(hooked.count(id)) << id;
  EXPECT_TRUE(down.delivered().empty());
}

// A disk-queued sink across reloads: removed, its events stay on disk; added again, it resumes
// and delivers them; changed while its receiver fails, it is reopened on the same queue with the
// new settings and delivers everything with them.
TEST(Reload, DiskQueuedSinkKeepsItsEventsWhenRemovedChangedAndAddedAgain) {
  Receiver hook;
  std::atomic<int> status{503};
  hook.set_respond([&](std::size_t) { return status.load(); });
  // Without the spool sink:
  const std::string base = R"(
shutdown_timeout: 1s
server: { listen: "127.0.0.1:0" }
sinks:
  archive:
    type: file
    path: ./archive.ndjson
)";
  auto config = [&](const std::string& extra_header) {
    return base + R"(
  spool:
    type: http
    url: )" +
           hook.url() + R"(
    headers: { X-Run: ")" +
           extra_header + R"(" }
    queue: { type: disk, max_bytes: 16MiB, fsync: always }
    retry: { max_attempts: 0, max_elapsed: 10m, initial_backoff: 20ms, max_backoff: 100ms }
)";
  };
  auto d = DaemonProcess::start(config("1"));
  ASSERT_TRUE(d);
  auto post = [&](int from, int n) {
    std::vector<std::string> ids;
    std::string body;
    for (int i = from; i < from + n; ++i) body += R"({"type":"t","n":)" + std::to_string(i) + "}\n";
    auto res = d->client().Post("/v1/events", body, "application/x-ndjson");
    EXPECT_TRUE(res && res->status == 202) << (res ? res->body : "no answer");
    if (res && res->status == 202) {
      const Json reply = Json::parse(res->body);
      for (const auto& id : reply["ids"]) ids.push_back(id);
    }
    return ids;
  };
  const auto first = post(0, 100);
  ASSERT_TRUE(
      eventually([&] { return !hook.requests().empty(); }, 10s, kPoll));  // failing: kept on disk

  // Removed: drains for shutdown_timeout (the receiver still fails), then keeps the rest on disk.
  rewrite_config(*d, base);
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("removed: spool")) << d->err();
  ASSERT_TRUE(
      d->wait_err_contains("event(s) kept in its disk queue; they are delivered if the sink "
                           "is configured again"))
      << d->err();
  EXPECT_EQ(sink_names(*d), (std::vector<std::string>{"archive"}));

  // Added again (with the receiver still failing), then changed (a new header) while more events
  // wait: the change reopens the same queue; once the receiver answers, everything arrives with
  // the new header.
  rewrite_config(*d, config("2"));
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("added: spool")) << d->err();
  const auto second = post(100, 100);
  rewrite_config(*d, config("3"));
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("changed: spool")) << d->err();
  const std::size_t failed_before = hook.requests().size();
  status = 200;
  ASSERT_TRUE(hook.wait_delivered(200, 30s)) << hook.delivered().size();
  std::set<std::string> got;
  for (const auto& r : hook.delivered()) {
    got.insert(r.header("webhook-id"));
    EXPECT_EQ(r.header("X-Run"), "3");
  }
  for (const auto& id : first) EXPECT_TRUE(got.count(id)) << id;
  for (const auto& id : second) EXPECT_TRUE(got.count(id)) << id;
  EXPECT_GT(failed_before, 0u);
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait_exit(), 0) << d->err();
  EXPECT_EQ(ids_in(d->workdir() / "archive.ndjson").size(), 200u);
}

// A sink's queue.type (memory <-> disk) is not changed in place: said, and the sink runs on.
TEST(Reload, QueueTypeChangeNeedsARestartAndTheSinkKeepsItsSettings) {
  const std::string yaml = R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive: { type: file, path: ./archive.ndjson }
)";
  auto d = DaemonProcess::start(yaml);
  ASSERT_TRUE(d);
  rewrite_config(*d, R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive: { type: file, path: ./archive.ndjson, queue: { type: disk } }
)");
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains(
      "SIGHUP: sink 'archive': queue.type changed (memory -> disk): needs a restart; not applied"))
      << d->err();
  ASSERT_TRUE(d->wait_err_contains("changed: none; unchanged: none")) << d->err();
  auto res = d->client().Get("/v1/sinks");
  ASSERT_TRUE(res);
  EXPECT_EQ(Json::parse(res->body)["sinks"][0]["queue"]["type"], "memory") << res->body;
  auto post = d->client().Post("/v1/events", R"({"type":"t"})", "application/json");
  ASSERT_TRUE(post && post->status == 202);
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait_exit(), 0) << d->err();
  EXPECT_EQ(read_lines(d->workdir() / "archive.ndjson").size(), 1u);
  EXPECT_FALSE(fs::exists(d->workdir() / "data" / "queues" / "archive"));
}

// Bearer tokens are replaced in place (rotation without a restart), also turned on and off.
TEST(Reload, TokensAreReplacedInPlace) {
  auto config = [](const std::string& tokens) {
    return R"(
server:
  listen: "127.0.0.1:0"
  auth: { tokens: )" +
           tokens + R"( }
sinks:
  archive: { type: file, path: ./archive.ndjson }
)";
  };
  auto d = DaemonProcess::start(config(R"(["old-token"])"));
  ASSERT_TRUE(d);
  auto status_with = [&](const std::string& token) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    auto res = d->client().Post("/v1/events", headers, R"({"type":"t"})", "application/json");
    return res ? res->status : 0;
  };
  EXPECT_EQ(status_with("old-token"), 202);
  EXPECT_EQ(status_with("new-token"), 401);

  rewrite_config(*d, config(R"(["new-token", "spare-token"])"));
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("SIGHUP: server.auth.tokens: 2 token(s) accepted from now on"))
      << d->err();
  EXPECT_EQ(status_with("old-token"), 401);
  EXPECT_EQ(status_with("new-token"), 202);
  EXPECT_EQ(status_with("spare-token"), 202);
  EXPECT_EQ(status_with(""), 401);

  rewrite_config(*d, config("[]"));
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_err_contains("requests are no longer authenticated")) << d->err();
  EXPECT_EQ(status_with(""), 202);
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait_exit(), 0) << d->err();
  EXPECT_EQ(read_lines(d->workdir() / "archive.ndjson").size(), 4u);
}

}  // namespace
}  // namespace evtest
