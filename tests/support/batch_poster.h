// BatchPoster: the client of the kill -9 tests. A thread posts batches of 20 events (ids
// "<prefix><batch>-<i>") to whatever port `port_of(batch)` names, until stop(), and records which
// events were acknowledged (202): the ones evrouted promised to deliver. A request refused or cut
// by a kill is counted as unacknowledged (not promised) and the next one follows 5 ms later.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace evtest {

class BatchPoster {
 public:
  BatchPoster(std::string prefix, std::string type, std::function<int(int batch)> port_of,
              std::chrono::seconds read_timeout = std::chrono::seconds(10))
      : prefix_(std::move(prefix)), type_(std::move(type)), port_of_(std::move(port_of)) {
    thread_ = std::thread([this, read_timeout] {
      for (int batch = 0; !stop_.load(); ++batch) {
        httplib::Client c("127.0.0.1", port_of_(batch));
        c.set_read_timeout(read_timeout);
        std::vector<std::string> ids;
        nlohmann::json body = nlohmann::json::array();
        for (int i = 0; i < 20; ++i) {
          ids.push_back(prefix_ + std::to_string(batch) + "-" + std::to_string(i));
          body.push_back({{"id", ids.back()}, {"type", type_}});
        }
        auto res = c.Post("/v1/events", body.dump(), "application/json");
        std::lock_guard lock(mu_);
        if (res && res->status == 202) {
          acknowledged_.insert(ids.begin(), ids.end());
        } else {
          ++unacknowledged_;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
    });
  }
  ~BatchPoster() { stop(); }
  BatchPoster(const BatchPoster&) = delete;
  BatchPoster& operator=(const BatchPoster&) = delete;

  // Stops posting and waits for the request in flight.
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::set<std::string> acknowledged() const {
    std::lock_guard lock(mu_);
    return acknowledged_;
  }
  std::size_t unacknowledged() const {
    std::lock_guard lock(mu_);
    return unacknowledged_;
  }

 private:
  const std::string prefix_, type_;
  const std::function<int(int)> port_of_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::set<std::string> acknowledged_;
  std::size_t unacknowledged_ = 0;
  std::thread thread_;
};

}  // namespace evtest
