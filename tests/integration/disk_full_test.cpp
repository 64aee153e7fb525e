// A disk queue on a full file system, through the real evrouted: while the disk is full, POST
// /v1/events answers 503 with Retry-After, /readyz answers 503 naming the sink and the error, and
// /metrics shows it; once space is freed, requests are accepted again without a restart, /readyz is
// 200, and every event acknowledged before, during and after is delivered.
//
// The data_dir is a 1 MiB tmpfs mounted for the test (which needs root, or CAP_SYS_ADMIN): without
// it, the test is skipped, saying so.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/daemon_process.h"
#include "support/durable_config.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    state_ = dir_ / "state";
    fs::create_directories(state_);
    if (::mount("tmpfs", state_.c_str(), "tmpfs", 0, "size=1m,mode=0755") != 0) {
      GTEST_SKIP() << "cannot mount a 1 MiB tmpfs at " << state_ << " (" << std::strerror(errno)
                   << "): this test needs root to fill a file system";
    }
    mounted_ = true;
  }
  void TearDown() override {
    daemon_.reset();  // before the unmount: it holds files there
    if (mounted_ && ::umount2(state_.c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "cannot unmount " << state_ << ": " << std::strerror(errno);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Fills the tmpfs with a file until the kernel says ENOSPC.
  void fill_disk() {
    std::FILE* f = std::fopen((state_ / "filler").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::setvbuf(f, nullptr, _IONBF, 0);
    const std::string chunk(4096, 'x');
    while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) {
    }
    EXPECT_EQ(errno, ENOSPC);
    std::fclose(f);
  }

  fs::path dir_, state_;
  bool mounted_ = false;
  std::unique_ptr<DaemonProcess> daemon_;
};

// POSTs one event with the given id and a payload of `pad` bytes; returns the response.
httplib::Result post(httplib::Client& client, const std::string& id, std::size_t pad = 16) {
  const Json event = {{"id", id}, {"type", "disk.full"}, {"data", std::string(pad, 'p')}};
  return client.Post("/v1/events", Json::array({event}).dump(), "application/json");
}

std::set<std::string> delivered_id_set(const Receiver& hook) {
  std::set<std::string> ids;
  for (const auto& r : hook.delivered()) ids.insert(r.header("webhook-id"));
  return ids;
}

// eventually()'s bound and pace here: a disk queue on a full disk recovers by its probes, and the
// conditions ask evrouted or the receiver each time.
constexpr auto kWait = std::chrono::seconds(15);
constexpr auto kPoll = std::chrono::milliseconds(20);

// The value of the first sample of /metrics starting with `prefix` (-1 if there is none).
double metric(httplib::Client& client, const std::string& prefix) {
  const auto res = client.Get("/metrics");
  if (!res) return -1;
  const auto at = res->body.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  return std::stod(res->body.substr(at + 1 + prefix.size()));
}

TEST_F(DiskFullTest, FullDiskRefusesWith503AndReportsItThenRecoversWithoutARestart) {
  Receiver hook;
  daemon_ = DaemonProcess::start_in(dir_, durable_config(hook.port()));
  ASSERT_TRUE(daemon_);
  auto c = daemon_->client();
  std::set<std::string> acknowledged, refused;

  for (int i = 0; i < 20; ++i) {
    const std::string id = "before-" + std::to_string(i);
    auto res = post(c, id);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    acknowledged.insert(id);
  }
  ASSERT_TRUE(eventually([&] { return delivered_id_set(hook).size() >= acknowledged.size(); },
                         kWait, kPoll));
  ASSERT_EQ(c.Get("/readyz")->status, 200);

  fill_disk();
  // The log's last page may still take a few events: post until the disk refuses.
  int status = 0;
  std::string retry_after, body;
  for (int i = 0; i < 200 && status != 503; ++i) {
    const std::string id = "during-" + std::to_string(i);
    auto res = post(c, id, 1024);
    ASSERT_TRUE(res);
    status = res->status;
    retry_after = res->get_header_value("Retry-After");
    body = res->body;
    if (status == 202) acknowledged.insert(id);
    if (status == 503) refused.insert(id);
    if (status != 202 && status != 503) FAIL() << status << " " << body;
  }
  ASSERT_EQ(status, 503) << body;
  EXPECT_EQ(retry_after, "5");
  EXPECT_NE(body.find("sink 'hook' cannot store events"), std::string::npos) << body;
  {
    auto again = post(c, "during-again", 4096);  // more than a page: cannot fit in any slack
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 503);
    refused.insert("during-again");
  }

  // Not ready, and why; the metrics say so too. (It stays so: the disk is still full.)
  for (int probe = 0; probe < 3; ++probe) {
    auto ready = c.Get("/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 503) << ready->body;
    const Json body = Json::parse(ready->body);
    EXPECT_EQ(body["status"], "disk_error");
    ASSERT_EQ(body["sinks"].size(), 1u) << ready->body;
    EXPECT_EQ(body["sinks"][0]["sink"], "hook");
    EXPECT_NE(body["sinks"][0]["error"].get<std::string>().find("No space left on device"),
              std::string::npos)
        << ready->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // across the queue's probes
  }
  EXPECT_EQ(metric(c, "evroute_sink_disk_ok{sink=\"hook\"} "), 0);
  EXPECT_GE(metric(c, "evroute_sink_disk_errors_total{sink=\"hook\",file=\"queue\"} "), 2);
  EXPECT_TRUE(daemon_->wait_err_contains("cannot store events, requests are refused until it can"));

  // Space is back: ready again by itself (the queue probes its disk), and requests are accepted.
  fs::remove(state_ / "filler");
  EXPECT_TRUE(eventually(
      [&] {
        auto ready = c.Get("/readyz");
        return ready && ready->status == 200;
      },
      kWait, kPoll));
  EXPECT_EQ(metric(c, "evroute_sink_disk_ok{sink=\"hook\"} "), 1);
  for (int i = 0; i < 20; ++i) {
    const std::string id = "after-" + std::to_string(i);
    auto res = post(c, id, 1024);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    acknowledged.insert(id);
  }
  EXPECT_TRUE(daemon_->wait_err_contains("its disk queue stores events again"));

  // Every acknowledged event arrives; no refused one does (nothing of a failed write stays).
  EXPECT_TRUE(eventually(
      [&] {
        const auto got = delivered_id_set(hook);
        return std::includes(got.begin(), got.end(), acknowledged.begin(), acknowledged.end());
      },
      kWait, kPoll))
      << "delivered " << delivered_id_set(hook).size() << " of " << acknowledged.size();
  for (const auto& id : delivered_id_set(hook)) {
    EXPECT_TRUE(acknowledged.count(id)) << id << " was refused, yet delivered";
  }
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(), 0);
}

}  // namespace
}  // namespace evtest
