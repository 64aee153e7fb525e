// Metrics: HTTP request counters and latency histograms, and the Prometheus text rendering of them
// together with every sink's counters (GET /metrics).
//
// Thread-safety: observe() and render_prometheus() are safe from any thread; the counters are
// relaxed atomics, so a scrape sees each counter's recent value (not one consistent snapshot).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace evrouted {

class Router;

enum class Endpoint {
  kEvents,
  kHealthz,
  kReadyz,
  kMetrics,
  kSinks,
  kStatus,
  kConsole,
  kOther,
  kCount
};
std::string_view endpoint_label(Endpoint e);
Endpoint endpoint_of(std::string_view method, std::string_view path);

class HttpMetrics {
 public:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
  void observe(Endpoint endpoint, int status, std::chrono::nanoseconds latency);
  // A request that had to wait (a full `block` queue, a disk queue, dead letters) and was
  // answered from the HTTP server's pool rather than its event loop.
  void count_blocking() { blocking_.fetch_add(1, std::memory_order_relaxed); }
  void render(std::string& out) const;

 private:
  struct PerEndpoint {
    std::array<std::atomic<std::uint64_t>, 600> by_status{};            // index = HTTP status
    std::array<std::atomic<std::uint64_t>, kBuckets.size()> buckets{};  // non-cumulative
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_ns{0};
  };
  std::array<PerEndpoint, static_cast<std::size_t>(Endpoint::kCount)> endpoints_;
  std::atomic<std::uint64_t> blocking_{0};
};

// The whole /metrics page.
std::string render_prometheus(const Router& router, const HttpMetrics& http);

}  // namespace evrouted
