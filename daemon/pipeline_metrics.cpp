// Pipeline::Collect: one sink's samples of the evroute_sink_* families on /metrics.
#include <chrono>

#include "metric_families.h"
#include "pipeline.h"

namespace evrouted {

std::vector<prometheus::MetricFamily> Pipeline::Collect() const {
  using prometheus::MetricType;
  const SinkSnapshot s = snapshot();
  const auto& q = s.queue;
  auto n = [](std::uint64_t v) { return static_cast<double>(v); };
  auto sink = [&s](MetricLabels more = {}) {
    MetricLabels labels{{"sink", s.name}};
    labels.insert(labels.end(), more.begin(), more.end());
    return labels;
  };
  auto one = [&](const char* name, MetricType type, const char* help, double value) {
    auto f = metric_family(name, help, type);
    add_sample(f, value, sink());
    return f;
  };

  std::vector<prometheus::MetricFamily> out;
  out.push_back(one("evroute_sink_events_in_total", MetricType::Counter,
                    "Events routed to the sink (after its filter).", n(s.events_in)));
  out.push_back(one("evroute_sink_events_delivered_total", MetricType::Counter,
                    "Events the sink delivered.", n(s.retry.delivered)));
  out.push_back(one("evroute_sink_events_failed_total", MetricType::Counter,
                    "Events the sink gave up on (retries exhausted or not retryable).",
                    n(s.retry.gave_up)));
  auto dropped = metric_family(
      "evroute_sink_events_dropped_total",
      "Events dropped by the queue policy or left undelivered at shutdown, by reason.",
      MetricType::Counter);
  add_sample(dropped, n(q.dropped_newest), sink({{"reason", "drop_newest"}}));
  add_sample(dropped, n(q.dropped_oldest), sink({{"reason", "drop_oldest"}}));
  add_sample(dropped, n(q.undelivered_at_close), sink({{"reason", "shutdown"}}));
  out.push_back(std::move(dropped));
  out.push_back(one("evroute_sink_events_retried_total", MetricType::Counter,
                    "Delivery attempts after the first.", n(s.retry.retries)));
  out.push_back(one("evroute_sink_queue_depth", MetricType::Gauge,
                    "Events waiting or in flight in the sink's queue.", n(q.pending)));
  out.push_back(one("evroute_sink_queue_high_water", MetricType::Gauge, "Largest queue depth seen.",
                    n(q.high_water)));
  out.push_back(one("evroute_sink_queue_capacity", MetricType::Gauge,
                    "The queue's capacity (0: unbounded).", n(s.queue_capacity)));
  out.push_back(one(
      "evroute_sink_up", MetricType::Gauge,
      "1 while the sink is open; 0 once closed, or while disabled by its destination (410 Gone).",
      s.state == SinkSnapshot::State::kOpen ? 1 : 0));
  out.push_back(one("evroute_sink_dead_letters_total", MetricType::Counter,
                    "Events given up on and written to the sink's dead-letter log.",
                    n(s.dead_lettered)));
  out.push_back(one("evroute_sink_queue_disk_bytes", MetricType::Gauge,
                    "Bytes of a disk queue's log on disk (0: memory queue).", n(q.disk_bytes)));
  auto disk_ok = metric_family("evroute_sink_disk_ok",
                               "1 while the sink's disk queue can store events; 0 after a failed "
                               "write or sync, until one succeeds (disk queues only).",
                               MetricType::Gauge);
  if (s.storage_ok) add_sample(disk_ok, *s.storage_ok ? 1 : 0, sink());
  out.push_back(std::move(disk_ok));
  auto disk_errors = metric_family(
      "evroute_sink_disk_errors_total",
      "Failed disk writes and syncs, by file: the disk queue (its log and cursor) and the "
      "dead-letter log.",
      MetricType::Counter);
  if (s.storage_ok) add_sample(disk_errors, n(q.disk_errors), sink({{"file", "queue"}}));
  add_sample(disk_errors, n(s.dead_letter_errors), sink({{"file", "dead_letters"}}));
  out.push_back(std::move(disk_errors));
  auto throttled = metric_family(
      "evroute_sink_throttled_seconds_total",
      "Time deliveries waited for the sink's rate_limit (summed over concurrent requests).",
      MetricType::Counter);
  if (s.throttled) {
    add_sample(throttled, std::chrono::duration<double>(*s.throttled).count(), sink());
  }
  out.push_back(std::move(throttled));

  if (leaf_.metrics) {
    for (prometheus::MetricFamily& f : leaf_.metrics->Collect()) {
      for (prometheus::ClientMetric& m : f.metric)
        m.label.insert(m.label.begin(), {"sink", s.name});
      out.push_back(std::move(f));
    }
  }
  return out;
}

}  // namespace evrouted
