#include "router.h"

#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
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
  auto exponential = std::make_shared<evroute::ExponentialBackoff>(backoff);
  if (!retry.breaker) return exponential;
  auto breaker =
      std::make_shared<evroute::Breaker>(retry.breaker->threshold, retry.breaker->cooldown);
  return std::make_shared<evroute::CombinedStrategy>(
      std::vector<std::shared_ptr<evroute::RetryStrategy>>{exponential, breaker});
}

std::unique_ptr<Route> build_route(const SinkConfig& sc) {
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
  const std::string name = sc.name;
  ro.on_retry = [name](const evroute::Event& e, const evroute::Status& s, std::uint32_t attempt,
                       evroute::Clock::Duration delay) {
    spdlog::warn("sink '{}': attempt {} for event {} failed ({}); retrying in {} ms", name, attempt,
                 e.id(), s.to_string(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  };
  ro.on_give_up = [name](const evroute::Event& e, const evroute::Status& s,
                         std::uint32_t attempts) {
    spdlog::error("sink '{}': gave up on event {} after {} attempt(s): {}", name, e.id(), attempts,
                  s.to_string());
  };
  route->retrying =
      std::make_shared<evroute::Retrying>(route->leaf, make_strategy(sc.retry), std::move(ro));

  route->drop_log = std::make_shared<DropLog>(sc.name);
  evroute::Queue::Options qo;
  qo.capacity = sc.queue.capacity;
  qo.when_full = sc.queue.when_full;
  qo.block_timeout = sc.queue.block_timeout;
  qo.dead_letter = route->drop_log;
  route->queue = std::make_shared<evroute::Queue>(route->retrying, qo);

  if (!sc.filter.empty()) {
    const Route* r = route.get();
    route->filter_sink = std::make_shared<evroute::Filter>(
        route->queue, [r](const evroute::Event& e) { return r->matches(e); });
  }
  return route;
}

}  // namespace

bool Route::matches(const evroute::Event& event) const {
  for (const FieldFilter& f : filter) {
    auto value = event.attribute(f.field);
    if (!value) return false;
    const std::string v(*value);
    const bool any = std::any_of(f.globs.begin(), f.globs.end(), [&](const std::string& glob) {
      return fnmatch(glob.c_str(), v.c_str(), 0) == 0;
    });
    if (!any) return false;
  }
  return true;
}

Router::Router(const Config& config) : budget_(config.limits.memory) {
  attribute_fields_.push_back("type");
  try {
    for (const SinkConfig& sc : config.sinks) {
      routes_.push_back(build_route(sc));
      for (const FieldFilter& f : sc.filter) {
        if (std::find(attribute_fields_.begin(), attribute_fields_.end(), f.field) ==
            attribute_fields_.end()) {
          attribute_fields_.push_back(f.field);
        }
      }
    }
  } catch (...) {
    for (auto& r : routes_) r->queue->close();
    throw;
  }
  for (auto& r : routes_) {
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
      if (q.when_full != evroute::OverflowPolicy::kBlock || q.capacity == 0) continue;
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
  for (auto& r : routes_) {
    evroute::Queue::CloseReport qr = r->queue->close_until(deadline);
    r->closed_.store(true, std::memory_order_release);
    report.undelivered += qr.undelivered;
    report.timed_out = report.timed_out || qr.timed_out;
    if (qr.undelivered > 0) {
      spdlog::error("sink '{}': {} event(s) undelivered at the shutdown deadline", r->name,
                    qr.undelivered);
    }
  }
  broadcaster_.close();
  return report;
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

}  // namespace evrouted
