#include "router.h"

#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <thread>

namespace evrouted {

// The `dead_letter` sink of every memory queue: it accounts, in the log, for events the queue drops
// (its when_full policy, or left undelivered at the shutdown deadline); they are counted in the
// queue's stats too. (Events a sink's Retrying gives up on go to the dead-letter files instead:
// dead_letters.h.) To keep an overloaded daemon's log readable it writes at most one line per
// second per sink, with the count since the last line.
class DropLog final : public evroute::Sink {
 public:
  explicit DropLog(std::string sink) : sink_(std::move(sink)) {}
  void set_reason(const char* reason) { reason_.store(reason, std::memory_order_release); }
  // From now on, events are handed to `successor` (Queue::adopt) instead of being logged as not
  // delivered: a reload closing this sink's queue passes its backlog to the sink replacing it.
  // Counts them in `adopted`.
  void hand_over_to(std::shared_ptr<evroute::Queue> successor,
                    std::atomic<std::uint64_t>* adopted) {
    std::lock_guard<std::mutex> g(mu_);
    successor_ = std::move(successor);
    adopted_ = adopted;
  }

  evroute::Status write(const evroute::Event& event) override {
    std::lock_guard<std::mutex> g(mu_);
    if (successor_) {
      if (successor_->adopt(event).is_ok()) {
        adopted_->fetch_add(1, std::memory_order_relaxed);
        return {};
      }
      // The successor is closed already (shutdown right after the reload): account below.
    }
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
  std::shared_ptr<evroute::Queue> successor_;
  std::atomic<std::uint64_t>* adopted_ = nullptr;
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

std::unique_ptr<evroute::DurableQueue> open_durable_queue(
    const SinkConfig& sc, const std::string& data_dir, std::shared_ptr<evroute::Sink> destination,
    std::shared_ptr<DropLog> drop_log) {
  evroute::DurableQueue::Options o;
  o.log.dir = std::filesystem::path(data_dir) / "queues" / sc.name;
  o.log.max_bytes = sc.queue.max_bytes;
  o.log.segment_bytes = std::clamp<std::uint64_t>(sc.queue.max_bytes / 8, 4096, 64u << 20);
  o.log.sync = sc.queue.fsync;
  o.log.sync_interval =
      std::chrono::duration_cast<std::chrono::milliseconds>(sc.queue.fsync_interval);
  o.when_full = sc.queue.when_full;
  o.block_timeout = sc.queue.block_timeout;
  o.dead_letter = std::move(drop_log);
  evroute::Status error;
  evroute::DiskLog::RecoveryReport report;
  auto queue = evroute::DurableQueue::open(std::move(destination), o, &error, &report);
  if (!queue) {
    throw SinkStartError(sc.name, "sink '" + sc.name + "': cannot open its disk queue in " +
                                      o.log.dir.string() + ": " + error.message());
  }
  for (const std::string& problem : report.problems) {
    spdlog::warn("sink '{}': disk queue recovery: {}", sc.name, problem);
  }
  const auto stats = queue->stats();
  spdlog::info(
      "sink '{}': disk queue {} ({} bytes on disk, {} event(s) to deliver from the last run{})",
      sc.name, o.log.dir.string(), stats.disk_bytes, stats.recovered,
      report.truncated_bytes > 0
          ? ", " + std::to_string(report.truncated_bytes) + " corrupt byte(s) cut off"
          : std::string());
  return queue;
}

// Builds a sink's route. `dead_letters`: the dead-letter log to keep (a rebuilt sink keeps its
// predecessor's); null: a new one. Without `open_disk_queue`, a disk-queued route is returned
// without its DurableQueue (the caller opens it with open_durable_queue once the directory is
// free).
std::shared_ptr<Route> build_route(const SinkConfig& sc, const std::string& data_dir,
                                   std::shared_ptr<DeadLetters> dead_letters = nullptr,
                                   bool open_disk_queue = true) {
  auto route = std::make_shared<Route>();
  route->name = sc.name;
  route->type = sc.type;
  route->description = sc.spec->describe();
  route->queue_config = sc.queue;
  route->filter = sc.filter;
  try {
    route->capabilities = sc.spec->build();
    route->leaf = route->capabilities.sink;
  } catch (const std::exception& e) {
    throw SinkStartError(sc.name, "sink '" + sc.name + "': " + e.what());
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
  route->dead_letters = dead_letters
                            ? std::move(dead_letters)
                            : std::make_shared<DeadLetters>(std::filesystem::path(data_dir) /
                                                            "dead-letters" / (sc.name + ".ndjson"));
  ro.on_give_up = [name, dead_letters = route->dead_letters](
                      const evroute::Event& e, const evroute::Status& s, std::uint32_t attempts) {
    const evroute::Status written = dead_letters->add(e, s, attempts);
    if (written.is_ok()) {
      spdlog::error("sink '{}': gave up on event {} after {} attempt(s): {}; dead-lettered to {}",
                    name, e.id(), attempts, s.to_string(), dead_letters->path().string());
    } else {
      spdlog::error(
          "sink '{}': gave up on event {} after {} attempt(s): {}; and could not "
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
    if (!open_disk_queue) return route;
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
  } else if (route->delivery.write_batches && route->capabilities.batch) {
    qo.batch = {.max_events = 256, .max_bytes = std::uint64_t{1} << 20, .max_wait = {}};
    qo.linger = DeliveryConfig::kLinger;
  }
  route->queue = std::make_shared<evroute::Queue>(route->retrying, qo);

  if (!sc.filter.empty()) {
    const Route* r = route.get();
    route->filter_sink = std::make_shared<evroute::Filter>(
        route->queue, [r](const evroute::Event& e) { return r->matches(e); });
  }
  return route;
}

// What the Broadcaster writes to for a memory route.
std::shared_ptr<evroute::Sink> entry_of(const Route& r) {
  return r.filter_sink ? std::shared_ptr<evroute::Sink>(r.filter_sink)
                       : std::shared_ptr<evroute::Sink>(r.queue);
}

std::shared_ptr<Topology> make_topology(std::vector<std::shared_ptr<Route>> routes,
                                        std::shared_ptr<const std::vector<std::string>> fields) {
  auto t = std::make_shared<Topology>();
  t->routes = std::move(routes);
  t->attribute_fields = std::move(fields);
  for (const auto& r : t->routes) {
    if (r->durable) t->has_disk_queue = true;
    if (r->durable || !r->queue) continue;
    t->has_memory_queue = true;
    if (r->queue_config.when_full == evroute::OverflowPolicy::kBlock &&
        r->queue_config.capacity > 0) {
      t->has_blocking_queue = true;
    }
  }
  return t;
}

// Stops a route at `until`: closes its queue (memory: what is left goes to its drop log, or to
// the successor it was handed over to; disk: kept on disk). Returns the events left.
std::uint64_t close_route(Route& r, std::chrono::steady_clock::time_point until, bool* timed_out) {
  std::uint64_t left = 0;
  if (r.durable) {
    const evroute::DurableQueue::CloseReport dr = r.durable->close_until(until);
    left = dr.kept;
    if (timed_out) *timed_out = *timed_out || dr.timed_out;
  } else if (r.queue) {
    const evroute::Queue::CloseReport qr = r.queue->close_until(until);
    left = qr.undelivered;
    if (timed_out) *timed_out = *timed_out || qr.timed_out;
  }
  r.closed_.store(true, std::memory_order_release);
  return left;
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
    out.disk_errors = d.disk_errors;
    return out;
  }
  if (!queue) return out;  // a disk queue that a reload could not reopen
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

// Disk queues under data_dir that no configured disk-queued sink uses (a sink removed from the
// configuration, or switched to a memory queue, while events were left in it): their events are
// not delivered until such a sink is configured again. Logged, so that they are never forgotten
// silently.
void warn_orphaned_queues(const Config& config) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::path(config.data_dir) / "queues";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const std::string name = it->path().filename().string();
    const bool used =
        std::any_of(config.sinks.begin(), config.sinks.end(), [&](const SinkConfig& sc) {
          return sc.name == name && sc.queue.type == QueueConfig::Type::kDisk;
        });
    if (used) continue;
    evroute::DiskLog::Options o;
    o.dir = it->path();
    o.sync = evroute::DiskLog::Sync::kNever;
    evroute::Status error;
    auto log = evroute::DiskLog::open(o, &error);
    if (!log) {
      spdlog::warn("disk queue {} belongs to no configured disk-queued sink and cannot be read: {}",
                   it->path().string(), error.to_string());
      continue;
    }
    evroute::DiskLog::Position cursor = log->begin();
    if (evroute::DiskLog::Position stored;
        evroute::CursorFile(it->path() / "cursor").load(&stored).is_ok()) {
      cursor = std::max(cursor, stored);
    }
    if (cursor >= log->end()) continue;  // everything in it was delivered
    spdlog::warn(
        "disk queue {} holds undelivered events of sink '{}', which is not configured "
        "with a disk queue: they wait until it is again",
        it->path().string(), name);
  }
}

Router::Router(const Config& config) : budget_(config.limits.memory), data_dir_(config.data_dir) {
  warn_orphaned_queues(config);
  std::vector<std::shared_ptr<Route>> routes;
  try {
    for (const SinkConfig& sc : config.sinks) routes.push_back(build_route(sc, config.data_dir));
  } catch (...) {
    for (auto& r : routes) close_route(*r, std::chrono::steady_clock::now(), nullptr);
    throw;
  }
  for (auto& r : routes) {
    if (!r->durable) broadcaster_.add(entry_of(*r));  // submit() writes to disk queues itself
  }
  topology_ = make_topology(std::move(routes), std::make_shared<const std::vector<std::string>>(
                                                   evrouted::attribute_fields(config)));
}

Router::~Router() { shutdown(std::chrono::seconds(0)); }

std::shared_ptr<const Topology> Router::topology() const {
  std::lock_guard<std::mutex> g(topology_mu_);
  return topology_;
}

void Router::publish(std::shared_ptr<const Topology> next) {
  std::lock_guard<std::mutex> g(topology_mu_);
  topology_ = std::move(next);
}

std::vector<std::shared_ptr<const Route>> Router::routes() const {
  const auto t = topology();
  return {t->routes.begin(), t->routes.end()};
}

std::vector<Router::DiskProblem> Router::disk_problems() const {
  std::vector<DiskProblem> problems;
  for (const auto& r : topology()->routes) {
    if (!r->durable || r->closed()) continue;
    if (evroute::Status s = r->durable->health(); !s.is_ok()) {
      problems.push_back({r->name, s.message()});
    }
  }
  return problems;
}

std::shared_ptr<const std::vector<std::string>> Router::attribute_fields() const {
  return topology()->attribute_fields;
}

namespace {

// Takes `m` (shared or exclusive, through `try_lock`) without waiting for long: a holder on the
// fast path lets go within microseconds, one that waits for room may hold it for a block_timeout.
template <typename TryLock>
bool lock_briefly(TryLock try_lock) {
  for (int i = 0; i < 200; ++i) {
    if (try_lock()) return true;
    if (i >= 20) std::this_thread::yield();
  }
  return false;
}

}  // namespace

Router::Admission Router::submit(std::span<const evroute::Event> events,
                                 const std::vector<std::string>* parsed_with, Wait wait) {
  if (!accepting()) return {Outcome::kClosed, "evrouted is shutting down"};
  const bool may_wait = wait == Wait::kAllowed;
  static const Admission would_block{Outcome::kWouldBlock, "the request would wait"};
  // Held for the whole request: a reload swaps the topology between requests, never during one.
  std::shared_lock<std::shared_mutex> reload_guard(reload_mu_, std::defer_lock);
  if (may_wait) {
    reload_guard.lock();
  } else if (!lock_briefly([&] { return reload_guard.try_lock(); })) {
    return would_block;
  }
  const Topology& t = *topology_;  // stable while reload_mu_ is held
  if (parsed_with && parsed_with != t.attribute_fields.get()) {
    return {Outcome::kReparse, "the configuration was reloaded; parse the request again"};
  }
  // A disk queue's write syncs to disk (fsync: always) or may find the disk full: never on a
  // caller that must not wait.
  if (!may_wait && t.has_disk_queue) return would_block;
  // Disk queues first, without the admission lock, so that concurrent requests share fsyncs.
  std::vector<evroute::Event> matching;
  for (const auto& r : t.routes) {
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
      // Logged once per failure, not once per refused request (a client may retry every second).
      if (!r->disk_failing.exchange(true, std::memory_order_relaxed)) {
        spdlog::error("sink '{}': cannot store events, requests are refused until it can: {}",
                      r->name, s.to_string());
      }
      return {Outcome::kUnavailable, "sink '" + r->name + "' cannot store events; retry later"};
    }
    if (r->disk_failing.load(std::memory_order_relaxed) &&
        r->disk_failing.exchange(false, std::memory_order_relaxed)) {
      spdlog::info("sink '{}': its disk queue stores events again", r->name);
    }
    r->routed.fetch_add(mine.size(), std::memory_order_relaxed);
  }
  if (!t.has_memory_queue) {
    accepted_.fetch_add(events.size(), std::memory_order_relaxed);
    return {};
  }

  // Admission with `block` queues: a request that may wait holds admission_mu_ exclusively while
  // it waits for room in all of them, then writes (whole or nothing). One that must not wait (an
  // event loop) holds it shared instead and claims its room in each such queue (Route::reserved)
  // before it writes, so that concurrent requests never fill a queue past its capacity (a write
  // into a full `block` queue would wait); when the room is not there now it claims nothing and
  // returns kWouldBlock, to be submitted again where waiting is allowed.
  const bool exclusive_admission = t.has_blocking_queue && may_wait;
  std::unique_lock<std::shared_mutex> exclusive(admission_mu_, std::defer_lock);
  std::shared_lock<std::shared_mutex> shared(admission_mu_, std::defer_lock);
  if (exclusive_admission) {
    exclusive.lock();
  } else if (may_wait) {
    shared.lock();
  } else if (!lock_briefly([&] { return shared.try_lock(); })) {
    return would_block;
  }
  if (!accepting()) return {Outcome::kClosed, "evrouted is shutting down"};

  struct Claims {  // room claimed in `block` queues, given back once the events are written
    std::vector<std::pair<Route*, std::uint64_t>> claimed;
    ~Claims() {
      for (auto [route, n] : claimed) route->reserved.fetch_sub(n, std::memory_order_relaxed);
    }
  } claims;
  if (t.has_blocking_queue) {
    for (const auto& r : t.routes) {
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
      if (!may_wait) {
        const std::uint64_t others = r->reserved.fetch_add(n, std::memory_order_relaxed);
        claims.claimed.emplace_back(r.get(), n);
        if (r->queue->stats().pending + others + n > q.capacity) return would_block;
        continue;
      }
      const auto now = std::chrono::steady_clock::now();
      const auto wait =
          q.block_timeout.count() > 0 ? q.block_timeout : Duration(std::chrono::hours(24 * 365));
      if (!r->queue->wait_for_room(n, now + wait)) {
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
  // At once: each queue takes the request's events under one lock and wakes its worker at most
  // once, which then takes them as one batch.
  if (evroute::Status s = broadcaster_.write_all(events); !s.is_ok()) {
    spdlog::warn("{} event(s) from {}: {}", events.size(), events.front().id(), s.to_string());
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
  const auto t = topology();
  for (auto& r : t->routes) r->drop_log->set_reason("left in the queue at the shutdown deadline");
  // Disabled sinks first, at once: waiting cannot drain them (see the header).
  std::vector<Route*> order;
  for (auto& r : t->routes) {
    if (r->disabled()) order.push_back(r.get());
  }
  const std::size_t disabled = order.size();
  for (auto& r : t->routes) {
    if (std::find(order.begin(), order.begin() + disabled, r.get()) == order.begin() + disabled) {
      order.push_back(r.get());
    }
  }
  for (std::size_t i = 0; i < order.size(); ++i) {
    Route* r = order[i];
    const auto until = i < disabled ? std::chrono::steady_clock::now() : deadline;
    const std::uint64_t left = close_route(*r, until, &report.timed_out);
    if (r->durable) {
      report.kept_on_disk += left;
      if (left > 0) {
        spdlog::warn(
            "sink '{}': {} event(s) kept in its disk queue, delivered after the next start",
            r->name, left);
      }
      continue;
    }
    report.undelivered += left;
    if (left > 0) {
      spdlog::error("sink '{}': {} event(s) undelivered at the shutdown deadline{}", r->name, left,
                    i < disabled ? " (the sink is disabled)" : "");
    }
  }
  broadcaster_.close();
  join_retiring({});  // sinks removed by a reload: their drain ends by its own deadline
  for (const auto& r : t->routes) {
    const auto rs = r->retrying->stats();
    const auto q = r->queue_stats();
    report.delivered += rs.delivered;
    report.failed += rs.gave_up;
    report.dead_lettered += r->dead_letters->added();
    report.dead_letter_errors += r->dead_letters->write_errors();
    report.dropped += q.dropped_newest + q.dropped_oldest;
  }
  return report;
}

std::shared_ptr<Route> Topology::find(std::string_view name) const {
  for (const auto& r : routes) {
    if (r->name == name) return r;
  }
  return nullptr;
}

std::shared_ptr<const Route> Router::find(const std::string& sink) const {
  return topology()->find(sink);
}

Router::Replay Router::replay(const std::string& sink,
                              const std::optional<std::set<std::string>>& ids) {
  Replay result;
  std::shared_lock<std::shared_mutex> reload_guard(reload_mu_);  // the route stays current
  const std::shared_ptr<const Route> route = topology_->find(sink);
  if (!route) return result;
  result.found = true;
  std::vector<evroute::Event> events;
  if (evroute::Status s = route->dead_letters->take(ids, &events); !s.is_ok()) {
    result.error = s.to_string();
    return result;
  }
  std::vector<evroute::Event> refused;
  if (!route->durable && !route->queue) {
    refused = events;  // a disk queue that a reload could not reopen
  } else if (route->durable) {
    if (!events.empty() && !route->durable->write_all(events).is_ok()) refused = events;
  } else {
    for (const evroute::Event& e : events) {
      if (!route->queue->write(e).is_ok()) refused.push_back(e);
    }
  }
  if (!refused.empty())
    route->dead_letters->restore(refused, "replay refused: queue full or closed");
  result.replayed = events.size() - refused.size();
  result.refused = refused.size();
  spdlog::info("sink '{}': replayed {} dead letter(s){}", sink, result.replayed,
               refused.empty() ? "" : fmt::format(", {} refused and kept", refused.size()));
  return result;
}

int Router::reopen() {
  int failed = 0;
  const auto t = topology();
  for (auto& r : t->routes) {
    Reopenable* reopenable = r->capabilities.reopenable;
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
  const auto t = topology();
  for (auto& r : t->routes) {
    if (Disableable* d = r->disableable(); d && d->enable()) {
      spdlog::info("sink '{}': re-enabled", r->name);
      ++enabled;
    }
  }
  return enabled;
}

std::optional<bool> Router::enable(std::string_view name) {
  const auto r = topology()->find(name);
  if (!r) return std::nullopt;
  Disableable* d = r->disableable();
  const bool was_disabled = d && d->enable();
  if (was_disabled) spdlog::info("sink '{}': re-enabled by POST /v1/sinks/{}/enable", name, name);
  return was_disabled;
}

Router::ReloadReport Router::reload(const Config& next, const ConfigDiff& diff) {
  ReloadReport report;
  if (!accepting()) {
    report.error = "evrouted is shutting down";
    return report;
  }
  const auto current = topology();
  auto contains = [](const std::vector<std::string>& v, const std::string& name) {
    return std::find(v.begin(), v.end(), name) != v.end();
  };

  // A sink removed by an earlier reload may still be draining; one added again under the same
  // name must wait for it (its disk queue directory and dead-letter log are the same).
  join_retiring(diff.added);

  // 1. Build what can be built while requests flow: added sinks and changed memory sinks (a
  //    changed disk sink's queue is opened once the old one has let go of its directory).
  struct Change {
    const SinkConfig* config;
    std::shared_ptr<Route> old, fresh;
  };
  std::vector<Change> changes;
  std::vector<std::shared_ptr<Route>> built;  // to close if the reload fails
  std::map<std::string, std::shared_ptr<Route>> fresh_by_name;
  try {
    for (const SinkConfig& sc : next.sinks) {
      if (contains(diff.added, sc.name)) {
        auto r = build_route(sc, data_dir_);
        built.push_back(r);
        fresh_by_name[sc.name] = r;
        report.added.push_back(sc.name);
      } else if (contains(diff.changed, sc.name)) {
        std::shared_ptr<Route> old = current->find(sc.name);
        if (!old) continue;
        const bool was_disk = old->durable != nullptr;
        const bool is_disk = sc.queue.type == QueueConfig::Type::kDisk;
        if (was_disk != is_disk) {
          report.not_applied.push_back(sc.name);  // diff.restart_needed says why
          continue;
        }
        auto r = build_route(sc, data_dir_, old->dead_letters, /*open_disk_queue=*/false);
        built.push_back(r);
        changes.push_back({&sc, old, r});
        report.changed.push_back(sc.name);
      }
    }
  } catch (const std::exception& e) {
    for (auto& r : built) {
      if (r->retrying) r->retrying->close();
      close_route(*r, std::chrono::steady_clock::now(), nullptr);
    }
    report = {};
    report.error = e.what();
    return report;
  }

  // 2. Swap, with no request in flight.
  std::vector<std::shared_ptr<Route>> removed;
  {
    std::unique_lock<std::shared_mutex> exclusive(reload_mu_);
    if (!accepting()) {
      report = {};
      report.error = "evrouted is shutting down";
      for (auto& r : built) close_route(*r, std::chrono::steady_clock::now(), nullptr);
      return report;
    }
    const std::uint64_t accepted = accepted_.load(std::memory_order_relaxed);
    for (Change& c : changes) {
      Route& old = *c.old;
      Route& fresh = *c.fresh;
      fresh_by_name[fresh.name] = c.fresh;
      if (old.durable) {
        // Store the old queue's cursor and let go of the directory, then reopen it.
        close_route(old, std::chrono::steady_clock::now(), nullptr);
        try {
          fresh.durable = open_durable_queue(*c.config, data_dir_, fresh.retrying, fresh.drop_log);
        } catch (const std::exception& e) {
          spdlog::error(
              "{}; the sink stops until the next reload or restart (its events stay on "
              "disk)",
              e.what());
          fresh.retrying->close();
          fresh.closed_.store(true, std::memory_order_release);
        }
        continue;
      }
      // Memory: the old queue's backlog (and its write in flight, interrupted) goes to the new
      // queue, oldest first, before the new queue receives anything else.
      broadcaster_.detach(entry_of(old));
      old.drop_log->hand_over_to(fresh.queue, &fresh.adopted);
      close_route(old, std::chrono::steady_clock::now(), nullptr);
      fresh.accepted_at_start = accepted;
      broadcaster_.add(entry_of(fresh));
    }
    std::vector<std::shared_ptr<Route>> routes;
    for (const SinkConfig& sc : next.sinks) {
      if (auto it = fresh_by_name.find(sc.name); it != fresh_by_name.end()) {
        routes.push_back(it->second);
        if (contains(diff.added, sc.name) && !it->second->durable) {
          it->second->accepted_at_start = accepted;
          broadcaster_.add(entry_of(*it->second));
        }
      } else if (auto r = current->find(sc.name)) {
        routes.push_back(r);  // unchanged, or a change not applied
      }
    }
    for (const auto& r : current->routes) {
      if (!contains(diff.removed, r->name)) continue;
      if (!r->durable) broadcaster_.detach(entry_of(*r));
      removed.push_back(r);
      report.removed.push_back(r->name);
    }
    auto fields =
        std::make_shared<const std::vector<std::string>>(evrouted::attribute_fields(next));
    if (*fields == *current->attribute_fields) fields = current->attribute_fields;
    publish(make_topology(std::move(routes), std::move(fields)));
  }
  for (const Change& c : changes) {
    if (c.old->durable) continue;
    // The new route started at zero: what it adopted is what the old one handed over.
    const std::uint64_t n = c.fresh->adopted.load(std::memory_order_relaxed);
    if (n > 0)
      spdlog::info("sink '{}': {} queued event(s) handed to its new settings", c.old->name, n);
  }
  if (!removed.empty()) retire(std::move(removed), next.shutdown_timeout, "removed by a reload");
  return report;
}

void Router::retire(std::vector<std::shared_ptr<Route>> routes, Duration timeout, const char* why) {
  std::vector<std::string> names;
  for (const auto& r : routes) names.push_back(r->name);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::thread thread([routes = std::move(routes), deadline, why] {
    for (const auto& r : routes) {
      r->drop_log->set_reason("left in the queue when the sink was removed");
      const bool disabled = r->disabled();  // cannot drain: close at once
      const std::uint64_t left =
          close_route(*r, disabled ? std::chrono::steady_clock::now() : deadline, nullptr);
      if (left == 0) {
        spdlog::info("sink '{}' ({}): drained and closed", r->name, why);
      } else if (r->durable) {
        spdlog::warn(
            "sink '{}' ({}): {} event(s) kept in its disk queue; they are delivered if "
            "the sink is configured again",
            r->name, why, left);
      } else {
        spdlog::error("sink '{}' ({}): {} event(s) undelivered when it closed{}", r->name, why,
                      left, disabled ? " (the sink is disabled)" : " (shutdown_timeout passed)");
      }
    }
  });
  std::lock_guard<std::mutex> g(retiring_mu_);
  retiring_.push_back({std::move(names), std::move(thread)});
}

void Router::join_retiring(const std::vector<std::string>& names) {
  std::vector<std::thread> to_join;
  {
    std::lock_guard<std::mutex> g(retiring_mu_);
    for (auto it = retiring_.begin(); it != retiring_.end();) {
      const bool wanted =
          names.empty() || std::any_of(it->names.begin(), it->names.end(), [&](const auto& n) {
            return std::find(names.begin(), names.end(), n) != names.end();
          });
      if (wanted) {
        to_join.push_back(std::move(it->thread));
        it = retiring_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& t : to_join) t.join();
}

}  // namespace evrouted
