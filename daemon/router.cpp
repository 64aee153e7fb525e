#include "router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "queues/queue_kind.h"

namespace evrouted {

Router::Router(const Config& config)
    : admission_(config.limits.memory), data_dir_(config.data_dir) {}

evroute::Result<std::unique_ptr<Router>> Router::start(const Config& config,
                                                       std::string* failed_sink) {
  warn_orphaned_queues(config);
  std::vector<std::shared_ptr<Pipeline>> pipelines;
  for (const SinkConfig& sc : config.sinks) {
    auto p = Pipeline::build(sc, config.data_dir);
    if (!p.ok()) {
      for (auto& built : pipelines) built->close_until(std::chrono::steady_clock::now());
      if (failed_sink) *failed_sink = sc.name;
      return p.status();
    }
    pipelines.push_back(std::move(*p));
  }
  std::unique_ptr<Router> router(new Router(config));
  router->topology_ = Topology::make(
      std::move(pipelines),
      std::make_shared<const std::vector<std::string>>(evrouted::attribute_fields(config)));
  return router;
}

Router::~Router() { shutdown(std::chrono::seconds(0)); }

std::shared_ptr<const Topology> Router::topology() const {
  std::lock_guard<std::mutex> g(topology_mu_);
  return topology_;
}

std::shared_ptr<const std::vector<std::string>> Router::attribute_fields() const {
  return topology()->attribute_fields;
}

std::vector<SinkSnapshot> Router::snapshot() const {
  const auto t = topology();
  std::vector<SinkSnapshot> out;
  out.reserve(t->pipelines.size());
  for (const auto& p : t->pipelines) out.push_back(p->snapshot());
  return out;
}

std::vector<Router::StorageProblem> Router::storage_problems() const {
  std::vector<StorageProblem> problems;
  // Held for the loop: a range-for does not keep topology()'s temporary alive.
  const std::shared_ptr<const Topology> t = topology();
  for (const auto& p : t->pipelines) {
    const evroute::SinkQueue* q = p->queue();
    if (!q || p->closed()) continue;
    if (evroute::Status s = q->health(); !s.is_ok())
      problems.push_back({p->name(), s.message(), p->queue_kind().name()});
  }
  return problems;
}

Decision Router::submit(std::span<const evroute::Event> events,
                        const std::vector<std::string>* parsed_with, Wait wait) {
  if (!accepting()) return {Outcome::kClosed, "evrouted is shutting down"};
  // Held for the whole request: a reload swaps the topology between requests, never during one.
  std::shared_lock<std::shared_mutex> reload_guard(reload_mu_, std::defer_lock);
  if (wait == Wait::kAllowed) {
    reload_guard.lock();
  } else if (!lock_briefly([&] { return reload_guard.try_lock(); })) {
    return {Outcome::kWouldBlock, "the request would wait"};
  }
  const Topology& t = *topology_;  // stable while reload_mu_ is held
  if (parsed_with && parsed_with != t.attribute_fields.get()) {
    return {Outcome::kReparse, "the configuration was reloaded; parse the request again"};
  }
  return admission_.admit(t, events, wait);
}

namespace {

// Closes `p` at `until`, logging what it leaves; adds it to `report`.
void close_for_shutdown(Pipeline& p, std::chrono::steady_clock::time_point until, bool disabled,
                        Router::ShutdownReport& report) {
  const evroute::SinkQueue::CloseReport r = p.close_until(until);
  report.timed_out = report.timed_out || r.timed_out;
  (p.queue_kind().type() == QueueConfig::Type::kJetStream ? report.kept_in_jetstream
                                                          : report.kept_on_disk) += r.kept;
  report.undelivered += r.undelivered;
  if (r.kept > 0) {
    spdlog::warn("sink '{}': {} event(s) kept in its {} queue, {}", p.name(), r.kept,
                 p.queue_kind().name(), p.queue_kind().kept_until());
  }
  if (r.undelivered > 0) {
    spdlog::error("sink '{}': {} event(s) undelivered at the shutdown deadline{}", p.name(),
                  r.undelivered, disabled ? " (the sink is disabled)" : "");
  }
}

}  // namespace

Router::ShutdownReport Router::shutdown(Duration timeout) {
  if (!admission_.stop()) return {};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ShutdownReport report;
  const auto t = topology();
  for (auto& p : t->pipelines) p->set_drop_reason("left in the queue at the shutdown deadline");
  // Disabled sinks first, at once: waiting cannot drain them (see the header).
  std::vector<Pipeline*> disabled, others;
  for (auto& p : t->pipelines) (p->disabled() ? disabled : others).push_back(p.get());
  for (Pipeline* p : disabled) {
    close_for_shutdown(*p, std::chrono::steady_clock::now(), true, report);
  }
  for (Pipeline* p : others) close_for_shutdown(*p, deadline, false, report);
  join_retiring({});  // sinks removed by a reload: their drain ends by its own deadline
  for (const auto& p : t->pipelines) {
    const SinkSnapshot s = p->snapshot();
    report.delivered += s.retry.delivered;
    report.failed += s.retry.gave_up;
    report.dead_lettered += s.dead_lettered;
    report.dead_letter_errors += s.dead_letter_errors;
    report.dropped += s.queue.dropped_newest + s.queue.dropped_oldest;
  }
  return report;
}

std::shared_ptr<DeadLetterStore> Router::dead_letters(const std::string& sink) const {
  const auto p = topology()->find(sink);
  return p ? p->shared_dead_letters() : nullptr;
}

Router::Replay Router::replay(const std::string& sink,
                              const std::optional<std::set<std::string>>& ids) {
  Replay result;
  std::shared_lock<std::shared_mutex> reload_guard(reload_mu_);  // the pipeline stays current
  const std::shared_ptr<Pipeline> p = topology_->find(sink);
  if (!p) return result;
  result.found = true;
  std::vector<evroute::Event> events;
  if (evroute::Status s = p->dead_letters().take(ids, &events); !s.is_ok()) {
    result.error = s.to_string();
    return result;
  }
  const std::size_t taken = events.size();
  const std::vector<evroute::Event> refused = p->requeue(std::move(events));
  if (!refused.empty()) {
    p->dead_letters().restore(refused, "replay refused: queue full or closed");
  }
  result.replayed = taken - refused.size();
  result.refused = refused.size();
  spdlog::info("sink '{}': replayed {} dead letter(s){}", sink, result.replayed,
               refused.empty() ? "" : fmt::format(", {} refused and kept", refused.size()));
  return result;
}

int Router::reopen() {
  int failed = 0;
  // Held for the loop: a range-for does not keep topology()'s temporary alive.
  const std::shared_ptr<const Topology> t = topology();
  for (auto& p : t->pipelines) {
    const std::optional<evroute::Status> s = p->reopen();
    if (!s) continue;
    if (!s->is_ok()) {
      spdlog::error("sink '{}': reopen failed: {}", p->name(), s->to_string());
      ++failed;
    } else {
      spdlog::info("sink '{}': reopened", p->name());
    }
  }
  return failed;
}

int Router::enable_disabled() {
  int enabled = 0;
  // Held for the loop: a range-for does not keep topology()'s temporary alive.
  const std::shared_ptr<const Topology> t = topology();
  for (auto& p : t->pipelines) {
    if (p->enable()) {
      spdlog::info("sink '{}': re-enabled", p->name());
      ++enabled;
    }
  }
  return enabled;
}

std::optional<bool> Router::enable(std::string_view name) {
  const auto p = topology()->find(name);
  if (!p) return std::nullopt;
  const bool was_disabled = p->enable();
  if (was_disabled) spdlog::info("sink '{}': re-enabled by POST /v1/sinks/{}/enable", name, name);
  return was_disabled;
}

bool Router::swap(
    const std::function<std::shared_ptr<const Topology>(const Topology& current)>& swap) {
  std::unique_lock<std::shared_mutex> exclusive(reload_mu_);
  if (!accepting()) return false;
  std::shared_ptr<const Topology> next = swap(*topology_);
  if (next) {
    std::lock_guard<std::mutex> g(topology_mu_);
    topology_ = std::move(next);
  }
  return true;
}

void Router::retire(std::vector<std::shared_ptr<Pipeline>> pipelines, Duration timeout,
                    const char* why) {
  std::vector<std::string> names;
  for (const auto& p : pipelines) names.push_back(p->name());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::thread thread([pipelines = std::move(pipelines), deadline, why] {
    for (const auto& p : pipelines) {
      p->set_drop_reason("left in the queue when the sink was removed");
      const bool disabled = p->disabled();  // cannot drain: close at once
      const evroute::SinkQueue::CloseReport r =
          p->close_until(disabled ? std::chrono::steady_clock::now() : deadline);
      if (r.kept == 0 && r.undelivered == 0) {
        spdlog::info("sink '{}' ({}): drained and closed", p->name(), why);
      }
      if (r.kept > 0) {
        spdlog::warn(
            "sink '{}' ({}): {} event(s) kept in its {} queue; they are delivered if "
            "the sink is configured again",
            p->name(), why, r.kept, p->queue_kind().name());
      }
      if (r.undelivered > 0) {
        spdlog::error("sink '{}' ({}): {} event(s) undelivered when it closed{}", p->name(), why,
                      r.undelivered,
                      disabled ? " (the sink is disabled)" : " (shutdown_timeout passed)");
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
