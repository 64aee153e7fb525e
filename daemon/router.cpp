#include "router.h"

#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <stdexcept>

namespace evrouted {

// The dead-letter sink of every queue until durable dead letters exist: it accounts for events a
// queue drops (overflow policy, or left undelivered at the shutdown deadline) in the log. To keep
// an overloaded daemon's log readable it writes at most one line per second per sink, with the
// count since the last line.
class DropLog final : public evroute::Sink {
 public:
  explicit DropLog(std::string sink) : sink_(std::move(sink)) {}
  void set_reason(const char* reason) { reason_.store(reason, std::memory_order_release); }

  evroute::Status write(const evroute::Event& event) override {
    std::lock_guard<std::mutex> g(mu_);
    ++unlogged_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_line_ >= std::chrono::seconds(1)) {
      spdlog::error("sink '{}': {} event(s) not delivered ({}); latest id {}", sink_, unlogged_,
                    reason_.load(std::memory_order_acquire), event.id());
      unlogged_ = 0;
      last_line_ = now;
    }
    return {};
  }
  evroute::Status close() override {
    std::lock_guard<std::mutex> g(mu_);
    if (unlogged_ > 0) {
      spdlog::error("sink '{}': {} more event(s) not delivered ({})", sink_, unlogged_,
                    reason_.load(std::memory_order_acquire));
      unlogged_ = 0;
    }
    return {};
  }

 private:
  const std::string sink_;
  std::atomic<const char*> reason_{"dropped by the queue's when_full policy"};
  std::mutex mu_;
  std::uint64_t unlogged_ = 0;
  std::chrono::steady_clock::time_point last_line_{};
};

namespace {

std::shared_ptr<evroute::RetryStrategy> make_strategy(const RetryConfig& retry) {
  evroute::ExponentialBackoff::Options backoff;
  backoff.base = retry.initial_backoff;
  backoff.max = retry.max_backoff;
  backoff.factor = retry.multiplier;
  backoff.jitter = retry.jitter;
  backoff.full_jitter = retry.full_jitter;
  auto exponential = std::make_shared<evroute::ExponentialBackoff>(backoff);
  if (!retry.breaker) return exponential;
  auto breaker =
      std::make_shared<evroute::Breaker>(retry.breaker->threshold, retry.breaker->cooldown);
  return std::make_shared<evroute::CombinedStrategy>(
      std::vector<std::shared_ptr<evroute::RetryStrategy>>{exponential, breaker});
}

std::unique_ptr<evroute::DurableQueue> open_durable_queue(const SinkConfig& sc,
                                                          const std::string& data_dir,
                                                          std::shared_ptr<evroute::Sink> destination,
                                                          std::shared_ptr<DropLog> drop_log) {
  evroute::DurableQueue::Options o;
  o.log.dir = std::filesystem::path(data_dir) / "queues" / sc.name;
  o.log.max_bytes = sc.queue.max_bytes;
  o.log.segment_bytes = std::clamp<std::uint64_t>(sc.queue.max_bytes / 8, 4096, 64u << 20);
  o.log.sync = sc.queue.fsync;
  o.log.sync_interval = std::chrono::duration_cast<std::chrono::milliseconds>(sc.queue.fsync_interval);
  o.when_full = sc.queue.when_full;
  o.block_timeout = sc.queue.block_timeout;
  o.dead_letter = std::move(drop_log);
  evroute::Status error;
  evroute::DiskLog::RecoveryReport report;
  auto queue = evroute::DurableQueue::open(std::move(destination), o, &error, &report);
  if (!queue) {
    throw std::runtime_error("sink '" + sc.name + "': cannot open its disk queue in " +
                             o.log.dir.string() + ": " + error.message());
  }
  for (const std::string& problem : report.problems) {
    spdlog::warn("sink '{}': disk queue recovery: {}", sc.name, problem);
  }
  const auto stats = queue->stats();
  spdlog::info("sink '{}': disk queue {} ({} bytes on disk, {} event(s) to deliver from the last run{})",
               sc.name, o.log.dir.string(), stats.disk_bytes, stats.recovered,
               report.truncated_bytes > 0
                   ? ", " + std::to_string(report.truncated_bytes) + " corrupt byte(s) cut off"
                   : std::string());
  return queue;
}

std::unique_ptr<Route> build_route(const SinkConfig& sc, const std::string& data_dir) {
  auto route = std::make_unique<Route>();
  route->name = sc.name;
  route->type = sc.type;
  route->description = sc.spec->describe();
  route->queue_config = sc.queue;
  route->filter = sc.filter;
  try {
    route->leaf = sc.spec->build();
  } catch (const std::exception& e) {
    throw std::runtime_error("sink '" + sc.name + "': " + e.what());
  }

  evroute::Retrying::Options ro;
  ro.max_attempts = sc.retry.max_attempts;
  ro.max_elapsed = sc.retry.max_elapsed;
  ro.max_retry_after = sc.retry.max_retry_after;
  const std::string name = sc.name;
  ro.on_retry = [name](const evroute::Event& e, const evroute::Status& s, std::uint32_t attempt,
                       evroute::Clock::Duration delay) {
    spdlog::warn("sink '{}': attempt {} for event {} failed ({}); retrying in {} ms", name, attempt,
                 e.id(), s.to_string(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  };
  route->dead_letters = std::make_shared<DeadLetters>(std::filesystem::path(data_dir) /
                                                      "dead-letters" / (sc.name + ".ndjson"));
  ro.on_give_up = [name, dead_letters = route->dead_letters](
                      const evroute::Event& e, const evroute::Status& s, std::uint32_t attempts) {
    const evroute::Status written = dead_letters->add(e, s, attempts);
    if (written.is_ok()) {
      spdlog::error("sink '{}': gave up on event {} after {} attempt(s): {}; dead-lettered to {}",
                    name, e.id(), attempts, s.to_string(), dead_letters->path().string());
    } else {
      spdlog::error("sink '{}': gave up on event {} after {} attempt(s): {}; and could not "
                    "dead-letter it: {}",
                    name, e.id(), attempts, s.to_string(), written.to_string());
    }
  };
  if (Disableable* d = route->disableable()) {
    d->on_disabled([name](const Disableable::State& s) {
      spdlog::error(
          "sink '{}': disabled ({}); its events stay queued until it is re-enabled by SIGHUP or "
          "POST /v1/sinks/{}/enable",
          name, s.reason, name);
    });
  }
  route->delivery = sc.spec->delivery();
  std::shared_ptr<evroute::Sink> attempts = route->leaf;
  if (const auto& limit = route->delivery.rate_limit) {
    route->rate_limited = std::make_shared<evroute::RateLimited>(
        route->leaf,
        evroute::RateLimited::Options{.per_second = limit->per_second, .burst = limit->burst});
    attempts = route->rate_limited;
  }
  route->retrying =
      std::make_shared<evroute::Retrying>(attempts, make_strategy(sc.retry), std::move(ro));

  route->drop_log = std::make_shared<DropLog>(sc.name);
  if (sc.queue.type == QueueConfig::Type::kDisk) {
    try {
      route->durable = open_durable_queue(sc, data_dir, route->retrying, route->drop_log);
    } catch (...) {
      route->retrying->close();
      throw;
    }
    return route;
  }
  evroute::Queue::Options qo;
  qo.capacity = sc.queue.capacity;
  qo.when_full = sc.queue.when_full;
  qo.block_timeout = sc.queue.block_timeout;
  qo.dead_letter = route->drop_log;
  qo.workers = route->delivery.concurrency;
  if (const auto& batch = route->delivery.batch) {
    qo.batch = {.max_events = batch->max_events,
                .max_bytes = batch->max_bytes,
                .max_wait = batch->max_wait};
  }
  route->queue = std::make_shared<evroute::Queue>(route->retrying, qo);

  if (!sc.filter.empty()) {
    const Route* r = route.get();
    route->filter_sink = std::make_shared<evroute::Filter>(
        route->queue, [r](const evroute::Event& e) { return r->matches(e); });
  }
  return route;
}

}  // namespace

Route::QueueStats Route::queue_stats() const {
  QueueStats out;
  if (durable) {
    const auto d = durable->stats();
    out.pending = d.pending;
    out.high_water = d.high_water;
    out.rejected_full = d.rejected_full;
    out.dropped_newest = d.dropped_newest;
    out.disk_bytes = d.disk_bytes;
    out.recovered = d.recovered;
    return out;
  }
  const auto q = queue->stats();
  out.pending = q.pending;
  out.high_water = q.high_water;
  out.rejected_full = q.rejected_full;
  out.dropped_newest = q.dropped_newest;
  out.dropped_oldest = q.dropped_oldest;
  out.undelivered_at_close = q.undelivered_at_close;
  return out;
}

const std::string* matching_glob(const FieldFilter& filter, std::string_view value) {
  const std::string v(value);
  for (const std::string& glob : filter.globs) {
    if (fnmatch(glob.c_str(), v.c_str(), 0) == 0) return &glob;
  }
  return nullptr;
}

std::vector<std::string> attribute_fields(const Config& config) {
  std::vector<std::string> fields{"type"};
  for (const SinkConfig& sc : config.sinks) {
    for (const FieldFilter& f : sc.filter) {
      if (std::find(fields.begin(), fields.end(), f.field) == fields.end()) {
        fields.push_back(f.field);
      }
    }
  }
  return fields;
}

bool Route::matches(const evroute::Event& event) const {
  for (const FieldFilter& f : filter) {
    auto value = event.attribute(f.field);
    if (!value || !matching_glob(f, *value)) return false;
  }
  return true;
}

Router::Router(const Config& config)
    : budget_(config.limits.memory), attribute_fields_(evrouted::attribute_fields(config)) {
  try {
    for (const SinkConfig& sc : config.sinks) routes_.push_back(build_route(sc, config.data_dir));
  } catch (...) {
    for (auto& r : routes_) {
      if (r->queue) r->queue->close();
      if (r->durable) r->durable->close_until(std::chrono::steady_clock::now());
    }
    throw;
  }
  for (auto& r : routes_) {
    if (r->durable) continue;  // submit() writes to disk queues itself
    has_memory_queue_ = true;
    if (r->queue_config.when_full == evroute::OverflowPolicy::kBlock &&
        r->queue_config.capacity > 0) {
      has_blocking_queue_ = true;
    }
    broadcaster_.add(r->filter_sink ? std::shared_ptr<evroute::Sink>(r->filter_sink)
                                    : std::shared_ptr<evroute::Sink>(r->queue));
  }
}

Router::~Router() { shutdown(std::chrono::seconds(0)); }

Router::Admission Router::submit(std::span<const evroute::Event> events) {
  if (!accepting()) return {Outcome::kClosed, "evrouted is shutting down"};
  // Disk queues first, without the admission lock, so that concurrent requests share fsyncs.
  std::vector<evroute::Event> matching;
  for (const auto& r : routes_) {
    if (!r->durable) continue;
    std::span<const evroute::Event> mine = events;
    if (!r->filter.empty()) {
      matching.clear();
      for (const evroute::Event& e : events) {
        if (r->matches(e)) matching.push_back(e);
      }
      mine = matching;
    }
    if (mine.empty()) continue;
    const evroute::Status s = r->durable->write_all(mine);
    if (s.is_closed()) return {Outcome::kClosed, "evrouted is shutting down"};
    if (s.code() == evroute::Code::kFull) {
      spdlog::warn("sink '{}': disk queue full ({}); request refused", r->name, s.message());
      return {Outcome::kFull, "sink '" + r->name + "' disk queue is full; retry later"};
    }
    if (!s.is_ok()) {
      spdlog::error("sink '{}': cannot store events: {}", r->name, s.to_string());
      return {Outcome::kUnavailable, "sink '" + r->name + "' cannot store events; retry later"};
    }
    r->routed.fetch_add(mine.size(), std::memory_order_relaxed);
  }
  if (!has_memory_queue_) {
    accepted_.fetch_add(events.size(), std::memory_order_relaxed);
    return {};
  }

  std::unique_lock<std::shared_mutex> exclusive(admission_mu_, std::defer_lock);
  std::shared_lock<std::shared_mutex> shared(admission_mu_, std::defer_lock);
  if (has_blocking_queue_) {
    exclusive.lock();
  } else {
    shared.lock();
  }
  if (!accepting()) return {Outcome::kClosed, "evrouted is shutting down"};

  if (has_blocking_queue_) {
    for (const auto& r : routes_) {
      const QueueConfig& q = r->queue_config;
      if (!r->queue || q.when_full != evroute::OverflowPolicy::kBlock || q.capacity == 0) continue;
      const auto n = static_cast<std::size_t>(std::count_if(
          events.begin(), events.end(), [&](const auto& e) { return r->matches(e); }));
      if (n == 0) continue;
      if (n > q.capacity) {
        return {Outcome::kTooLarge, "batch routes " + std::to_string(n) + " events to sink '" +
                                        r->name + "', more than its queue capacity (" +
                                        std::to_string(q.capacity) + ")"};
      }
      const auto wait =
          q.block_timeout.count() > 0 ? q.block_timeout : Duration(std::chrono::hours(24 * 365));
      if (!r->queue->wait_for_room(n, std::chrono::steady_clock::now() + wait)) {
        if (!accepting()) return {Outcome::kClosed, "evrouted is shutting down"};
        spdlog::warn("sink '{}': queue full ({} pending); request refused", r->name,
                     r->queue->stats().pending);
        return {Outcome::kFull, "sink '" + r->name + "' queue is full; retry later"};
      }
    }
  }

  if (!budget_.try_charge(events)) {
    const std::size_t need = evroute::MemoryBudget::uncharged_bytes(events);
    if (need > budget_.limit()) {
      return {Outcome::kTooLarge, "request needs " + std::to_string(need) +
                                      " bytes of queue memory, more than limits.memory (" +
                                      std::to_string(budget_.limit()) + ")"};
    }
    // One line per second at most: under overload every request would log otherwise.
    const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    std::int64_t last = budget_logged_ns_.load(std::memory_order_relaxed);
    if (now - last >= std::int64_t{1000000000} &&
        budget_logged_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      spdlog::warn("limits.memory reached ({} of {} bytes in use); refusing requests ({} so far)",
                   budget_.in_use(), budget_.limit(), budget_.rejections());
    }
    return {Outcome::kOverBudget, "evrouted's queue memory limit is reached; retry later"};
  }
  for (const evroute::Event& e : events) {
    if (evroute::Status s = broadcaster_.write(e); !s.is_ok()) {
      spdlog::warn("event {}: {}", e.id(), s.to_string());
    }
  }
  accepted_.fetch_add(events.size(), std::memory_order_relaxed);
  return {};
}

Router::ShutdownReport Router::shutdown(Duration timeout) {
  {
    std::lock_guard<std::shared_mutex> g(admission_mu_);
    if (!accepting_.exchange(false)) return {};
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ShutdownReport report;
  for (auto& r : routes_) r->drop_log->set_reason("left in the queue at the shutdown deadline");
  // Disabled sinks first, at once: waiting cannot drain them (see the header).
  std::vector<Route*> order;
  for (auto& r : routes_) {
    if (r->disabled()) order.push_back(r.get());
  }
  const std::size_t disabled = order.size();
  for (auto& r : routes_) {
    if (std::find(order.begin(), order.begin() + disabled, r.get()) == order.begin() + disabled) {
      order.push_back(r.get());
    }
  }
  for (std::size_t i = 0; i < order.size(); ++i) {
    Route* r = order[i];
    const auto until = i < disabled ? std::chrono::steady_clock::now() : deadline;
    if (r->durable) {
      const evroute::DurableQueue::CloseReport dr = r->durable->close_until(until);
      r->closed_.store(true, std::memory_order_release);
      report.kept_on_disk += dr.kept;
      report.timed_out = report.timed_out || dr.timed_out;
      if (dr.kept > 0) {
        spdlog::warn("sink '{}': {} event(s) kept in its disk queue, delivered after the next start",
                     r->name, dr.kept);
      }
      continue;
    }
    evroute::Queue::CloseReport qr = r->queue->close_until(until);
    r->closed_.store(true, std::memory_order_release);
    report.undelivered += qr.undelivered;
    report.timed_out = report.timed_out || qr.timed_out;
    if (qr.undelivered > 0) {
      spdlog::error("sink '{}': {} event(s) undelivered at the shutdown deadline{}", r->name,
                    qr.undelivered, i < disabled ? " (the sink is disabled)" : "");
    }
  }
  broadcaster_.close();
  return report;
}

const Route* Router::find(const std::string& sink) const {
  for (const auto& r : routes_) {
    if (r->name == sink) return r.get();
  }
  return nullptr;
}

Router::Replay Router::replay(const std::string& sink,
                              const std::optional<std::set<std::string>>& ids) {
  Replay result;
  const Route* route = find(sink);
  if (!route) return result;
  result.found = true;
  std::vector<evroute::Event> events;
  if (evroute::Status s = route->dead_letters->take(ids, &events); !s.is_ok()) {
    result.error = s.to_string();
    return result;
  }
  std::vector<evroute::Event> refused;
  if (route->durable) {
    if (!events.empty() && !route->durable->write_all(events).is_ok()) refused = events;
  } else {
    for (const evroute::Event& e : events) {
      if (!route->queue->write(e).is_ok()) refused.push_back(e);
    }
  }
  if (!refused.empty()) route->dead_letters->restore(refused, "replay refused: queue full or closed");
  result.replayed = events.size() - refused.size();
  result.refused = refused.size();
  spdlog::info("sink '{}': replayed {} dead letter(s){}", sink, result.replayed,
               refused.empty() ? "" : fmt::format(", {} refused and kept", refused.size()));
  return result;
}

int Router::reopen() {
  int failed = 0;
  for (auto& r : routes_) {
    auto* reopenable = dynamic_cast<Reopenable*>(r->leaf.get());
    if (!reopenable) continue;
    if (evroute::Status s = reopenable->reopen(); !s.is_ok()) {
      spdlog::error("sink '{}': reopen failed: {}", r->name, s.to_string());
      ++failed;
    } else {
      spdlog::info("sink '{}': reopened", r->name);
    }
  }
  return failed;
}

int Router::enable_disabled() {
  int enabled = 0;
  for (auto& r : routes_) {
    if (Disableable* d = r->disableable(); d && d->enable()) {
      spdlog::info("sink '{}': re-enabled", r->name);
      ++enabled;
    }
  }
  return enabled;
}

std::optional<bool> Router::enable(std::string_view name) {
  for (auto& r : routes_) {
    if (r->name != name) continue;
    Disableable* d = r->disableable();
    const bool was_disabled = d && d->enable();
    if (was_disabled) spdlog::info("sink '{}': re-enabled by POST /v1/sinks/{}/enable", name, name);
    return was_disabled;
  }
  return std::nullopt;
}

}  // namespace evrouted
