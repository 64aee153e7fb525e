// How the topology feeds a sink's leaf: rate limit, concurrency and batching.
//
// A sink type that supports these reads them with read_delivery() from its own keys and reports
// them through SinkSpec::delivery(); the router then builds
//   Queue (concurrency workers, batching) -> Retrying -> [RateLimited] -> leaf.
// The defaults (no limit, one request at a time, no batches) are exactly a sink without them.
//
//   rate_limit: 50                          # events/s, or
//   rate_limit: { per_second: 50, burst: 10 }
//   concurrency: 4                          # requests in flight; > 1: order is not promised
//   batch: { max_events: 100, max_bytes: 1MiB, max_wait: 1s, encoding: json }   # or ndjson
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "config_reader.h"

namespace evrouted {

struct RateLimitConfig {
  double per_second = 0;  // > 0
  double burst = 1;       // >= 1
};

struct BatchConfig {
  enum class Encoding { kJsonArray, kNdjson };
  std::size_t max_events = 100;       // >= 1
  std::uint64_t max_bytes = 1 << 20;  // body bytes; 0: no byte bound
  Duration max_wait = std::chrono::seconds(1);
  Encoding encoding = Encoding::kJsonArray;
};

struct DeliveryConfig {
  std::optional<RateLimitConfig> rate_limit;  // none: no limit
  unsigned concurrency = 1;                   // 1 keeps order
  std::optional<BatchConfig> batch;           // none: one event per request
  // Set by sinks whose batch write changes nothing but the number of system calls (file, stdout:
  // the same lines, written at once). Without `batch`, the queue then hands the leaf whatever is
  // waiting (up to 4,096 events, 1 MiB): no waiting for a batch to fill, but after each write the
  // worker gathers for kLinger (Queue's `linger`) before the next: under load one write(2) per
  // millisecond instead of one per few events (issue 12: the two workers of file + stdout cost 11
  // µs per request in wake-ups and spinning, 0.9 after); an event arriving at an idle queue is
  // still written at once.
  bool write_batches = false;
  static constexpr std::chrono::microseconds kLinger{1000};
};

// Reads `rate_limit`, `concurrency` and `batch` from `r` (errors recorded in it).
DeliveryConfig read_delivery(ConfigReader& r);

}  // namespace evrouted
