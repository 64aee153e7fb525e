#include "sinks/delivery.h"

namespace evrouted {

DeliveryConfig read_delivery(ConfigReader& r) {
  DeliveryConfig d;
  const std::string prefix = r.what().empty() ? "" : r.what() + ": ";
  constexpr double kMaxRate = 1e9;
  if (YAML::Node rl = r.node("rate_limit"); rl.IsDefined()) {
    if (rl.IsScalar()) {
      if (auto v = r.number("rate_limit", 0, kMaxRate)) {
        if (*v <= 0) {
          r.error("rate_limit", prefix + "'rate_limit' must be more than 0 (events per second)");
        } else {
          d.rate_limit = RateLimitConfig{*v, 1};
        }
      }
    } else if (auto m = r.map("rate_limit"); m && m->valid()) {
      RateLimitConfig limit;
      if (auto v = m->number("per_second", 0, kMaxRate)) limit.per_second = *v;
      if (!m->has("per_second")) {
        m->error_here(m->what() + ": needs 'per_second' (events per second)");
      } else if (limit.per_second <= 0) {
        m->error("per_second", m->what() + ": 'per_second' must be more than 0");
      }
      if (auto v = m->number("burst", 1, kMaxRate)) limit.burst = *v;
      m->finish();
      if (limit.per_second > 0) d.rate_limit = limit;
    }
  }
  if (auto v = r.unsigned_integer("concurrency", 1, 256)) d.concurrency = static_cast<unsigned>(*v);
  if (auto b = r.map("batch"); b && b->valid()) {
    BatchConfig batch;
    if (auto v = b->unsigned_integer("max_events", 1, 100000)) batch.max_events = *v;
    if (auto v = b->size("max_bytes")) batch.max_bytes = *v;
    if (auto v = b->duration("max_wait")) batch.max_wait = *v;
    if (auto v = b->choice("encoding", {"json", "ndjson"})) {
      batch.encoding =
          *v == "ndjson" ? BatchConfig::Encoding::kNdjson : BatchConfig::Encoding::kJsonArray;
    }
    b->finish();
    d.batch = batch;
  }
  return d;
}

}  // namespace evrouted
