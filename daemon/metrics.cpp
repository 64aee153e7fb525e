#include "metrics.h"

#include <prometheus/text_serializer.h>

#include <limits>
#include <string>
#include <utility>

#include "metric_families.h"
#include "router.h"

namespace evrouted {

std::string_view endpoint_label(Endpoint e) {
  switch (e) {
    case Endpoint::kEvents:
      return "/v1/events";
    case Endpoint::kHealthz:
      return "/healthz";
    case Endpoint::kReadyz:
      return "/readyz";
    case Endpoint::kMetrics:
      return "/metrics";
    case Endpoint::kSinks:
      return "/v1/sinks";
    default:
      return "other";
  }
}

Endpoint endpoint_of(std::string_view method, std::string_view path) {
  if (path == "/v1/events" && method == "POST") return Endpoint::kEvents;
  if (method != "GET") return Endpoint::kOther;
  if (path == "/healthz") return Endpoint::kHealthz;
  if (path == "/readyz") return Endpoint::kReadyz;
  if (path == "/metrics") return Endpoint::kMetrics;
  if (path == "/v1/sinks") return Endpoint::kSinks;
  return Endpoint::kOther;
}

void HttpMetrics::observe(Endpoint endpoint, int status, std::chrono::nanoseconds latency) {
  PerEndpoint& p = endpoints_[static_cast<std::size_t>(endpoint)];
  if (status >= 0 && status < static_cast<int>(p.by_status.size())) {
    p.by_status[status].fetch_add(1, std::memory_order_relaxed);
  }
  const double seconds = std::chrono::duration<double>(latency).count();
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      p.buckets[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  p.count.fetch_add(1, std::memory_order_relaxed);
  p.sum_ns.fetch_add(static_cast<std::uint64_t>(latency.count()), std::memory_order_relaxed);
}

std::vector<prometheus::MetricFamily> HttpMetrics::Collect() const {
  using prometheus::MetricType;
  auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  auto requests =
      metric_family("evroute_http_requests_total",
                    "HTTP requests answered, by endpoint and status.", MetricType::Counter);
  for (std::size_t e = 0; e < endpoints_.size(); ++e) {
    const std::string label(endpoint_label(static_cast<Endpoint>(e)));
    for (std::size_t s = 0; s < endpoints_[e].by_status.size(); ++s) {
      if (auto n = load(endpoints_[e].by_status[s]); n > 0) {
        add_sample(requests, static_cast<double>(n),
                   {{"endpoint", label}, {"code", std::to_string(s)}});
      }
    }
  }
  auto blocking = metric_family(
      "evroute_http_requests_blocking_total",
      "Requests that had to wait (a full block queue, a disk queue, dead letters), answered from "
      "the pool, not an event loop.",
      MetricType::Counter);
  add_sample(blocking, static_cast<double>(load(blocking_)));
  auto duration = metric_family("evroute_http_request_duration_seconds",
                                "Time to handle a request, by endpoint.", MetricType::Histogram);
  for (std::size_t e = 0; e < endpoints_.size(); ++e) {
    const PerEndpoint& p = endpoints_[e];
    prometheus::ClientMetric& m = duration.metric.emplace_back();
    m.label = {{"endpoint", std::string(endpoint_label(static_cast<Endpoint>(e)))}};
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += load(p.buckets[i]);
      m.histogram.bucket.push_back({.cumulative_count = cumulative, .upper_bound = kBuckets[i]});
    }
    // count is read after the buckets: with requests observed meanwhile, +Inf stays >= every
    // bucket (observe() adds to a bucket before the count).
    const std::uint64_t count = load(p.count);
    m.histogram.bucket.push_back(
        {.cumulative_count = count, .upper_bound = std::numeric_limits<double>::infinity()});
    m.histogram.sample_count = count;
    m.histogram.sample_sum = static_cast<double>(load(p.sum_ns)) / 1e9;
  }
  std::vector<prometheus::MetricFamily> out;
  out.push_back(std::move(requests));
  out.push_back(std::move(blocking));
  out.push_back(std::move(duration));
  return out;
}

std::string render_prometheus(const Router& router, const HttpMetrics& http) {
  auto build_info =
      metric_family("evroute_build_info", "evrouted's version.", prometheus::MetricType::Gauge);
  add_sample(build_info, 1, {{"version", EVROUTE_VERSION}});
  std::vector<prometheus::MetricFamily> families;
  families.push_back(std::move(build_info));
  merge_families(families, router.Collect());  // a reload may swap the topology meanwhile
  merge_families(families, http.Collect());
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace evrouted
