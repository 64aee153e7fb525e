#include "metrics.h"

#include <fmt/format.h>

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
    case Endpoint::kStatus:
      return "/v1/status";
    case Endpoint::kConsole:
      return "/ui";  // the page and its files
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
  if (path == "/v1/status") return Endpoint::kStatus;
  if (path == "/ui" || path.starts_with("/ui/")) return Endpoint::kConsole;
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

void HttpMetrics::render(std::string& out) const {
  auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  out += "# HELP evroute_http_requests_total HTTP requests answered, by endpoint and status.\n";
  out += "# TYPE evroute_http_requests_total counter\n";
  for (std::size_t e = 0; e < endpoints_.size(); ++e) {
    const auto label = endpoint_label(static_cast<Endpoint>(e));
    for (std::size_t s = 0; s < endpoints_[e].by_status.size(); ++s) {
      if (auto n = load(endpoints_[e].by_status[s]); n > 0) {
        out += fmt::format("evroute_http_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n", label,
                           s, n);
      }
    }
  }
  out +=
      "# HELP evroute_http_requests_blocking_total Requests that had to wait (a full block "
      "queue, a disk queue, dead letters), answered from the pool, not an event loop.\n";
  out += "# TYPE evroute_http_requests_blocking_total counter\n";
  out += fmt::format("evroute_http_requests_blocking_total {}\n", load(blocking_));
  out += "# HELP evroute_http_request_duration_seconds Time to handle a request, by endpoint.\n";
  out += "# TYPE evroute_http_request_duration_seconds histogram\n";
  for (std::size_t e = 0; e < endpoints_.size(); ++e) {
    const PerEndpoint& p = endpoints_[e];
    const auto label = endpoint_label(static_cast<Endpoint>(e));
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += load(p.buckets[i]);
      out += fmt::format(
          "evroute_http_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{}\"}} {}\n", label,
          kBuckets[i], cumulative);
    }
    const auto count = load(p.count);
    out += fmt::format(
        "evroute_http_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"+Inf\"}} {}\n", label,
        count);
    out += fmt::format("evroute_http_request_duration_seconds_sum{{endpoint=\"{}\"}} {:.9f}\n",
                       label, static_cast<double>(load(p.sum_ns)) / 1e9);
    out += fmt::format("evroute_http_request_duration_seconds_count{{endpoint=\"{}\"}} {}\n", label,
                       count);
  }
}

namespace {

// Sink names come from YAML keys: escape them for a label value.
std::string label_value(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The samples of family `name` for one sink.
void render_sink(std::string& out, std::string_view name, const SinkSnapshot& s) {
  const std::string sink = label_value(s.name);
  const auto& q = s.queue;
  if (name == "evroute_sink_events_dropped_total") {
    out +=
        fmt::format("{}{{sink=\"{}\",reason=\"drop_newest\"}} {}\n", name, sink, q.dropped_newest);
    out +=
        fmt::format("{}{{sink=\"{}\",reason=\"drop_oldest\"}} {}\n", name, sink, q.dropped_oldest);
    out += fmt::format("{}{{sink=\"{}\",reason=\"shutdown\"}} {}\n", name, sink,
                       q.undelivered_at_close);
    return;
  }
  if (name.starts_with("evroute_sink_jetstream_")) {
    if (s.queue_type != "jetstream") return;
    std::uint64_t v = 0;
    if (name == "evroute_sink_jetstream_ok") v = s.storage_ok.value_or(false) ? 1 : 0;
    if (name == "evroute_sink_jetstream_ack_pending") v = q.ack_pending;
    if (name == "evroute_sink_jetstream_redelivered") v = q.redelivered;
    if (name == "evroute_sink_jetstream_naks_total") v = q.naks;
    if (name == "evroute_sink_jetstream_terminated_total") v = q.terminated;
    out += fmt::format("{}{{sink=\"{}\"}} {}\n", name, sink, v);
    return;
  }
  const bool disk = s.storage_ok && s.queue_type == "disk";
  if (name == "evroute_sink_disk_ok") {
    if (disk) out += fmt::format("{}{{sink=\"{}\"}} {}\n", name, sink, *s.storage_ok ? 1 : 0);
    return;
  }
  if (name == "evroute_sink_disk_errors_total") {
    if (disk) {
      out += fmt::format("{}{{sink=\"{}\",file=\"queue\"}} {}\n", name, sink, q.disk_errors);
    }
    out += fmt::format("{}{{sink=\"{}\",file=\"dead_letters\"}} {}\n", name, sink,
                       s.dead_letter_errors);
    return;
  }
  if (name == "evroute_sink_throttled_seconds_total") {
    if (s.throttled) {
      out += fmt::format("{}{{sink=\"{}\"}} {:.6f}\n", name, sink,
                         std::chrono::duration<double>(*s.throttled).count());
    }
    return;
  }
  std::uint64_t v = 0;
  if (name == "evroute_sink_events_in_total") v = s.events_in;
  if (name == "evroute_sink_events_delivered_total") v = s.retry.delivered;
  if (name == "evroute_sink_events_failed_total") v = s.retry.gave_up;
  if (name == "evroute_sink_events_retried_total") v = s.retry.retries;
  if (name == "evroute_sink_queue_depth") v = q.pending;
  if (name == "evroute_sink_queue_high_water") v = q.high_water;
  if (name == "evroute_sink_queue_capacity") v = s.queue_capacity;
  if (name == "evroute_sink_up") v = s.state == SinkSnapshot::State::kOpen ? 1 : 0;
  if (name == "evroute_sink_queue_disk_bytes") v = q.disk_bytes;
  if (name == "evroute_sink_dead_letters_total") v = s.dead_lettered;
  out += fmt::format("{}{{sink=\"{}\"}} {}\n", name, sink, v);
}

}  // namespace

std::string render_prometheus(const Router& router, const HttpMetrics& http) {
  std::string out;
  out.reserve(16 * 1024);
  out += "# HELP evroute_build_info evrouted's version.\n# TYPE evroute_build_info gauge\n";
  out += fmt::format("evroute_build_info{{version=\"{}\"}} 1\n", EVROUTE_VERSION);
  out += "# HELP evroute_events_accepted_total Events acknowledged with 202.\n";
  out += "# TYPE evroute_events_accepted_total counter\n";
  out += fmt::format("evroute_events_accepted_total {}\n", router.events_accepted());
  const evroute::MemoryBudget& memory = router.memory();
  out += "# HELP evroute_memory_queued_bytes Bytes of queued events (each allocation once).\n";
  out += "# TYPE evroute_memory_queued_bytes gauge\n";
  out += fmt::format("evroute_memory_queued_bytes {}\n", memory.in_use());
  out += "# HELP evroute_memory_limit_bytes limits.memory (0: no limit).\n";
  out += "# TYPE evroute_memory_limit_bytes gauge\n";
  out += fmt::format("evroute_memory_limit_bytes {}\n", memory.limit());
  out +=
      "# HELP evroute_memory_rejected_requests_total Requests refused by limits.memory (503; 413 "
      "when larger than the whole limit).\n";
  out += "# TYPE evroute_memory_rejected_requests_total counter\n";
  out += fmt::format("evroute_memory_rejected_requests_total {}\n", memory.rejections());

  struct Family {
    const char* name;
    const char* type;
    const char* help;
  };
  const Family families[] = {
      {"evroute_sink_events_in_total", "counter", "Events routed to the sink (after its filter)."},
      {"evroute_sink_events_delivered_total", "counter", "Events the sink delivered."},
      {"evroute_sink_events_failed_total", "counter",
       "Events the sink gave up on (retries exhausted or not retryable)."},
      {"evroute_sink_events_dropped_total", "counter",
       "Events dropped by the queue policy or left undelivered at shutdown, by reason."},
      {"evroute_sink_events_retried_total", "counter", "Delivery attempts after the first."},
      {"evroute_sink_queue_depth", "gauge", "Events waiting or in flight in the sink's queue."},
      {"evroute_sink_queue_high_water", "gauge", "Largest queue depth seen."},
      {"evroute_sink_queue_capacity", "gauge", "The queue's capacity (0: unbounded)."},
      {"evroute_sink_up", "gauge",
       "1 while the sink is open; 0 once closed, or while disabled by its destination (410 Gone)."},
      {"evroute_sink_dead_letters_total", "counter",
       "Events given up on and written to the sink's dead-letter log."},
      {"evroute_sink_queue_disk_bytes", "gauge",
       "Bytes of a disk queue's log on disk (0: memory queue)."},
      {"evroute_sink_disk_ok", "gauge",
       "1 while the sink's disk queue can store events; 0 after a failed write or sync, until one "
       "succeeds (disk queues only)."},
      {"evroute_sink_disk_errors_total", "counter",
       "Failed disk writes and syncs, by file: the disk queue (its log and cursor) and the "
       "dead-letter log."},
      {"evroute_sink_jetstream_ok", "gauge",
       "1 while NATS JetStream stores the sink's events; 0 while it is unreachable or its streams "
       "are not set up (jetstream queues only)."},
      {"evroute_sink_jetstream_ack_pending", "gauge",
       "Events of the sink's consumer handed out to a replica and not acknowledged yet."},
      {"evroute_sink_jetstream_redelivered", "gauge",
       "Events of the sink's consumer delivered more than once and not acknowledged yet."},
      {"evroute_sink_jetstream_naks_total", "counter",
       "Failed attempts this replica gave back to JetStream to be retried after a delay."},
      {"evroute_sink_jetstream_terminated_total", "counter",
       "Events this replica gave up on (dead-lettered into JetStream, then terminated)."},
      {"evroute_sink_throttled_seconds_total", "counter",
       "Time deliveries waited for the sink's rate_limit (summed over concurrent requests)."},
  };
  const std::vector<SinkSnapshot> sinks = router.snapshot();  // a reload may swap meanwhile
  for (const Family& f : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    for (const SinkSnapshot& s : sinks) render_sink(out, f.name, s);
  }
  http.render(out);
  return out;
}

}  // namespace evrouted
