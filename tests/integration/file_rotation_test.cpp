// The file sink through the real evrouted: rotation by size with gzip while events stream in over
// HTTP from several clients and SIGUSR1 reopens the file; after SIGTERM every acknowledged event is
// in exactly one line of the rotated (decompressed) files or the current one.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/daemon_process.h"

namespace evtest {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

TEST(FileRotation, RotatesAndGzipsUnderLoadAndReopenWithoutLosingALine) {
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive:
    type: file
    path: ./data/events.ndjson
    rotate: { max_bytes: 4KiB, keep: 100000 }
    compress: gzip
    fsync: interval
    fsync_interval: 50ms
)");
  ASSERT_TRUE(d);
  constexpr int kClients = 3, kRequests = 40, kPerRequest = 10;
  std::mutex ids_mu;
  std::vector<std::string> acked;
  std::atomic<int> done{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = d->client();
      for (int r = 0; r < kRequests; ++r) {
        std::string body;
        for (int i = 0; i < kPerRequest; ++i) {
          body += R"({"type":"t","client":)" + std::to_string(c) + R"(,"pad":")" +
                  std::string(static_cast<std::size_t>(r * 3 + i), 'x') + "\"}\n";
        }
        auto res = client.Post("/v1/events", body, "application/x-ndjson");
        if (!res || res->status != 202) {
          ADD_FAILURE() << "POST failed: " << (res ? res->body : "no response");
          break;
        }
        const Json reply = Json::parse(res->body);
        std::lock_guard<std::mutex> g(ids_mu);
        for (const auto& id : reply["ids"]) acked.push_back(id);
      }
      ++done;
    });
  }
  while (done < kClients) {  // SIGUSR1 (logrotate's signal) while rotating
    d->signal(SIGUSR1);
    std::this_thread::sleep_for(20ms);
  }
  for (auto& c : clients) c.join();
  d->signal(SIGUSR1);
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait_exit(), 0) << d->err();
  EXPECT_NE(d->err().find("sink 'archive': reopened"), std::string::npos);
  EXPECT_EQ(d->err().find("reopen failed"), std::string::npos) << d->err();

  const fs::path data = d->workdir() / "data";
  std::size_t gz = 0;
  for (const auto& e : fs::directory_iterator(data)) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "events.ndjson" || name.ends_with(".gz")) << name;  // all compressed
    gz += name.ends_with(".gz");
  }
  EXPECT_GE(gz, 10u);
  const auto lines = read_rotated_lines(data / "events.ndjson");
  ASSERT_EQ(acked.size(), static_cast<std::size_t>(kClients * kRequests * kPerRequest));
  ASSERT_EQ(lines.size(), acked.size());
  std::set<std::string> seen;
  for (const auto& line : lines) {
    const Json j = Json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "torn line: " << line;
    seen.insert(j["id"].get<std::string>());
  }
  EXPECT_EQ(seen, std::set<std::string>(acked.begin(), acked.end()));  // none lost or doubled
  for (const auto& e : fs::directory_iterator(data)) {
    if (e.path().extension() == ".gz") {
      EXPECT_LE(read_gzip_lines(e.path()).size(), 4096u / 40);
    }
  }
}

}  // namespace
}  // namespace evtest
