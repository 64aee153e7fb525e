// Disk queues through the real evrouted: kill -9 at random moments loses no acknowledged event, a
// corrupt tail is reported and cut, a full disk queue refuses with 503 (or drops, as configured),
// and SIGTERM keeps what it could not deliver on disk for the next start.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "support/batch_poster.h"
#include "support/daemon_process.h"
#include "support/durable_config.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// POSTs a batch of events with the given ids; true on 202.
bool post_batch(httplib::Client& client, const std::vector<std::string>& ids,
                int* status = nullptr) {
  Json batch = Json::array();
  for (const auto& id : ids) batch.push_back({{"id", id}, {"type", "durable.test"}});
  auto res = client.Post("/v1/events", batch.dump(), "application/json");
  if (status) *status = res ? res->status : 0;
  return res && res->status == 202;
}

std::vector<fs::path> segments(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class DurableTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(DurableTest, KillNineAtRandomMomentsLosesNoAcceptedEvent) {
  const int hook_port = free_port();  // the receiver is down until the end
  const std::string yaml = durable_config(hook_port);
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  RecordProperty("seed", static_cast<int>(seed));
  std::set<std::string> accepted;
  std::size_t refused_or_cut = 0;

  for (int round = 0; round < 4; ++round) {
    auto d = DaemonProcess::start_in(dir_, yaml);
    ASSERT_TRUE(d) << "round " << round;
    BatchPoster client(
        "r" + std::to_string(round) + "-", "durable.test", [port = d->port()](int) { return port; },
        std::chrono::seconds(5));
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(150, 700)(rng)));
    d->signal(SIGKILL);
    EXPECT_EQ(d->wait_exit(std::chrono::seconds(10)), 128 + SIGKILL);
    client.stop();
    const auto acked = client.acknowledged();
    accepted.insert(acked.begin(), acked.end());
    refused_or_cut += client.unacknowledged();  // in flight when killed: not promised
  }
  ASSERT_GT(accepted.size(), 0u);

  // The receiver comes up; a fifth start delivers everything the four killed runs acknowledged.
  Receiver hook(hook_port);
  auto d = DaemonProcess::start_in(dir_, yaml);
  ASSERT_TRUE(d);
  const bool all = wait_for_all(hook, accepted, std::chrono::seconds(120));
  const DeliveryTally t = tally(hook, accepted);
  std::printf(
      "crash test (seed %u): 4 x kill -9; accepted %zu, delivered %zu distinct, "
      "duplicates %zu, lost %zu; %zu requests unacknowledged\n",
      seed, accepted.size(), t.distinct, t.duplicates, t.lost, refused_or_cut);
  RecordProperty("accepted", static_cast<int>(accepted.size()));
  RecordProperty("duplicates", static_cast<int>(t.duplicates));
  EXPECT_TRUE(all);
  EXPECT_EQ(t.lost, 0u);
  EXPECT_TRUE(d->wait_err_contains("to deliver from the last run"));
}

TEST_F(DurableTest, SigtermKeepsUndeliveredEventsOnDiskForTheNextStart) {
  const int hook_port = free_port();
  const std::string yaml = durable_config(hook_port);
  std::set<std::string> ids;
  {
    auto d = DaemonProcess::start_in(dir_, yaml);
    ASSERT_TRUE(d);
    auto c = d->client();
    for (int b = 0; b < 5; ++b) {
      std::vector<std::string> batch;
      for (int i = 0; i < 10; ++i)
        batch.push_back("t-" + std::to_string(b) + "-" + std::to_string(i));
      ASSERT_TRUE(post_batch(c, batch));
      ids.insert(batch.begin(), batch.end());
    }
    d->signal(SIGTERM);
    EXPECT_EQ(d->wait_exit(std::chrono::seconds(20)), 0);
    EXPECT_NE(d->err().find("kept in its disk queue"), std::string::npos) << d->err();
    EXPECT_NE(d->err().find("kept in disk queues for the next start"), std::string::npos);
  }
  // Started without the sink (or with it on a memory queue), the events wait on disk: said at
  // start.
  const std::string without_hook = R"(
server: { listen: "127.0.0.1:0" }
data_dir: ./state
sinks:
  hook: { type: file, path: ./other.ndjson }
)";
  const std::string orphan_warning =
      "holds undelivered events of sink 'hook', which is not "
      "configured with a disk queue";
  {
    auto d = DaemonProcess::start_in(dir_, without_hook);
    ASSERT_TRUE(d);
    EXPECT_NE(d->err().find(orphan_warning), std::string::npos) << d->err();
    d->signal(SIGTERM);
    EXPECT_EQ(d->wait_exit(), 0);
  }
  Receiver hook(hook_port);
  auto d = DaemonProcess::start_in(dir_, yaml);
  ASSERT_TRUE(d);
  ASSERT_TRUE(wait_for_all(hook, ids, std::chrono::seconds(60)));
  // Delivered once each: the clean stop stored the cursor.
  for (const auto& [id, n] : delivered_ids(hook)) EXPECT_EQ(n, 1) << id;
  // Reclaimed: once delivered and the cursor stored, the log holds nothing old.
  auto c = d->client();
  bool answered = false;
  eventually(
      [&] {
        auto res = c.Get("/v1/sinks");
        answered = static_cast<bool>(res);
        if (!answered) return true;  // stop: asserted below
        const Json q = Json::parse(res->body)["sinks"][0]["queue"];
        EXPECT_EQ(q["type"], "disk");
        return q["pending"] == 0;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
  ASSERT_TRUE(answered);
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait_exit(), 0);
  // Everything delivered: nothing to warn about any more.
  auto again = DaemonProcess::start_in(dir_, without_hook);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->err().find(orphan_warning), std::string::npos) << again->err();
}

TEST_F(DurableTest, CorruptTailIsReportedCutAndTheRestDelivered) {
  const int hook_port = free_port();
  const std::string yaml = durable_config(hook_port);
  {
    auto d = DaemonProcess::start_in(dir_, yaml);
    ASSERT_TRUE(d);
    auto c = d->client();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(post_batch(c, {"c-" + std::to_string(i)}));
    d->signal(SIGKILL);
    d->wait_exit();
  }
  // Garble the last record's final bytes, as a torn write would.
  const auto files = segments(dir_ / "state" / "queues" / "hook");
  ASSERT_FALSE(files.empty());
  {
    std::fstream f(files.back(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(files.back()) - 4));
    f.write("\xde\xad\xbe\xef", 4);
  }
  Receiver hook(hook_port);
  auto d = DaemonProcess::start_in(dir_, yaml);
  ASSERT_TRUE(d) << "a corrupt tail must not stop evrouted from starting";
  EXPECT_TRUE(d->wait_err_contains("checksum mismatch"));
  EXPECT_TRUE(d->wait_err_contains("corrupt byte(s) cut off"));
  std::set<std::string> good;
  for (int i = 0; i < 9; ++i) good.insert("c-" + std::to_string(i));
  ASSERT_TRUE(wait_for_all(hook, good, std::chrono::seconds(60)));
  EXPECT_EQ(delivered_ids(hook).count("c-9"), 0u);  // the cut record, reported above
  // And it keeps working.
  auto c = d->client();
  ASSERT_TRUE(post_batch(c, {"after"}));
  ASSERT_TRUE(wait_for_all(hook, {"after"}, std::chrono::seconds(30)));
}

TEST_F(DurableTest, FullDiskQueueRefusesWith503OrDropsAsConfigured) {
  const int hook_port = free_port();  // down: nothing drains
  {
    auto d = DaemonProcess::start_in(
        dir_, durable_config(hook_port, ", when_full: block, block_timeout: 100ms", "16KiB"));
    ASSERT_TRUE(d);
    auto c = d->client();
    int status = 0, accepted = 0;
    for (int i = 0; i < 1000 && post_batch(c, {"f-" + std::to_string(i)}, &status); ++i) ++accepted;
    EXPECT_EQ(status, 503);
    EXPECT_GT(accepted, 10);
    auto res = c.Post("/v1/events", R"({"id":"one-more"})", "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->get_header_value("Retry-After"), "1");
    EXPECT_NE(res->body.find("disk queue is full"), std::string::npos) << res->body;
    auto sinks = Json::parse(c.Get("/v1/sinks")->body)["sinks"][0]["queue"];
    EXPECT_LE(sinks["disk_bytes"].get<std::uint64_t>(), 16u * 1024);
    EXPECT_GE(sinks["rejected_full"].get<std::uint64_t>(), 2u);
  }
  fs::remove_all(dir_ / "state");
  {
    auto d = DaemonProcess::start_in(
        dir_, durable_config(hook_port, ", when_full: drop_newest", "16KiB"));
    ASSERT_TRUE(d);
    auto c = d->client();
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(post_batch(c, {"d-" + std::to_string(i)})) << i;
    auto metrics = c.Get("/metrics");
    ASSERT_TRUE(metrics);
    const std::string needle =
        "evroute_sink_events_dropped_total{sink=\"hook\",reason=\"drop_newest\"} ";
    const auto at = metrics->body.find(needle);
    ASSERT_NE(at, std::string::npos);
    EXPECT_GT(std::stoi(metrics->body.substr(at + needle.size())), 100);
    EXPECT_TRUE(d->wait_err_contains("not delivered (dropped by the queue's when_full policy)"));
  }
}

TEST_F(DurableTest, ADiskQueuedHttpSinkGetsItsBatches) {
  Receiver hook;
  auto d = DaemonProcess::start_in(dir_, R"(
server: { listen: "127.0.0.1:0" }
data_dir: ./state
sinks:
  hook:
    type: http
    url: )" + hook.url() + R"(
    queue: { type: disk }
    batch: { max_events: 5, max_wait: 50ms }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back("b-" + std::to_string(i));
  ASSERT_TRUE(post_batch(c, ids));
  const auto delivered_ids = [&] {
    std::vector<std::string> got;
    for (const auto& r : hook.delivered()) {
      const Json body = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      if (!body.is_array()) continue;
      for (const auto& e : body) got.push_back(e.value("id", ""));
    }
    return got;
  };
  ASSERT_TRUE(eventually([&] { return delivered_ids().size() == 12; }, std::chrono::seconds(10),
                         std::chrono::milliseconds(10)));
  EXPECT_EQ(delivered_ids(), ids);  // once each, in order
  std::size_t requests = 0;
  for (const auto& r : hook.delivered()) {
    const Json body = Json::parse(r.body);
    ASSERT_TRUE(body.is_array()) << r.body;
    EXPECT_LE(body.size(), 5u);
    ++requests;
  }
  EXPECT_LE(requests, 4u);  // batches of up to five (12 = 5 + 5 + 2), not one request per event
}

TEST_F(DurableTest, BadDiskQueueConfigIsRefusedWithItsLine) {
  const std::string yaml = R"(server: { listen: "127.0.0.1:0" }
sinks:
  hook:
    type: stdout
    queue: { type: disk, when_full: drop_oldest, capacity: 5 }
  other:
    type: stdout
    queue: { fsync: always }
)";
  std::ofstream(dir_ / "bad.yaml") << yaml;
  DaemonProcess d({"--check", "--config", (dir_ / "bad.yaml").string()}, dir_);
  EXPECT_EQ(d.wait_exit(), 1);
  const std::string err = d.err();
  EXPECT_NE(err.find("bad.yaml:5:"), std::string::npos) << err;
  EXPECT_NE(err.find("cannot drop its oldest events"), std::string::npos) << err;
  EXPECT_NE(err.find("bounded by 'max_bytes', not 'capacity'"), std::string::npos) << err;
  EXPECT_NE(err.find("bad.yaml:8:"), std::string::npos) << err;
  EXPECT_NE(err.find("'fsync' applies to disk queues only"), std::string::npos) << err;
}

}  // namespace
}  // namespace evtest
