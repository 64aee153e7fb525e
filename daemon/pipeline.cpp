#include "pipeline.h"

#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "queues/queue_kind.h"
#include "topology.h"

namespace evrouted {
namespace {

std::shared_ptr<evroute::RetryStrategy> make_strategy(const RetryConfig& retry) {
  auto exponential = std::make_shared<evroute::ExponentialBackoff>(retry.backoff());
  if (!retry.breaker) return exponential;
  auto breaker =
      std::make_shared<evroute::Breaker>(retry.breaker->threshold, retry.breaker->cooldown);
  return std::make_shared<evroute::CombinedStrategy>(
      std::vector<std::shared_ptr<evroute::RetryStrategy>>{exponential, breaker});
}

// The Retrying options of sink `name`: every retry logged, every give-up dead-lettered.
evroute::Retrying::Options retry_options(const SinkConfig& sc,
                                         std::shared_ptr<DeadLetterStore> dead_letters) {
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
  ro.on_give_up = [name, dead_letters = std::move(dead_letters)](
                      const evroute::Event& e, const evroute::Status& s, std::uint32_t attempts) {
    const evroute::Status written = dead_letters->add(e, s, attempts);
    if (written.is_ok()) {
      spdlog::error("sink '{}': gave up on event {} after {} attempt(s): {}; dead-lettered to {}",
                    name, e.id(), attempts, s.to_string(), dead_letters->where());
    } else {
      spdlog::error(
          "sink '{}': gave up on event {} after {} attempt(s): {}; and could not "
          "dead-letter it: {}",
          name, e.id(), attempts, s.to_string(), written.to_string());
    }
  };
  return ro;
}

}  // namespace

Pipeline::Pipeline(const SinkConfig& config)
    : config_(config), kind_(&evrouted::queue_kind(config.queue.type)) {}

Pipeline::~Pipeline() {
  if (!closed()) close_until(std::chrono::steady_clock::now());
}

evroute::Result<std::shared_ptr<Pipeline>> Pipeline::build(
    const SinkConfig& config, const std::string& data_dir,
    std::shared_ptr<DeadLetterStore> dead_letters, bool open_queue) {
  std::shared_ptr<Pipeline> p(new Pipeline(config));
  p->data_dir_ = data_dir;
  if (evroute::Status s = p->build_delivery(data_dir, std::move(dead_letters)); !s.is_ok()) {
    p->closed_.store(true, std::memory_order_release);  // nothing was started
    return s;
  }
  if (!open_queue) return p;
  auto queue = p->kind_->open(p->queue_parts());
  if (!queue.ok()) {
    p->retrying_->close();
    p->closed_.store(true, std::memory_order_release);
    return queue.status();
  }
  p->queue_ = std::move(*queue);
  return p;
}

// Leaf, rate limit, retry policy, dead-letter log and drop log: everything behind the queue.
evroute::Status Pipeline::build_delivery(const std::string& data_dir,
                                         std::shared_ptr<DeadLetterStore> dead_letters) {
  const SinkConfig& sc = config_;
  description_ = sc.spec->describe();
  try {
    leaf_ = sc.spec->build();
  } catch (const std::exception& e) {  // a sink type's build() throws what stops it starting
    return evroute::Status::unavailable("sink '" + sc.name + "': " + e.what());
  }
  const std::string name = sc.name;
  if (leaf_.disableable) {
    leaf_.disableable->on_disabled([name](const Disableable::State& s) {
      spdlog::error(
          "sink '{}': disabled ({}); its events stay queued until it is re-enabled by SIGHUP or "
          "POST /v1/sinks/{}/enable",
          name, s.reason, name);
    });
  }
  dead_letters_ = dead_letters ? std::move(dead_letters) : kind_->open_dead_letters(sc, data_dir);
  delivery_ = sc.spec->delivery();
  std::shared_ptr<evroute::Sink> attempts = leaf_.sink;
  if (const auto& limit = delivery_.rate_limit) {
    rate_limited_ = std::make_shared<evroute::RateLimited>(
        leaf_.sink,
        evroute::RateLimited::Options{.per_second = limit->per_second, .burst = limit->burst});
    attempts = rate_limited_;
  }
  retrying_ = std::make_shared<evroute::Retrying>(attempts, make_strategy(sc.retry),
                                                  retry_options(sc, dead_letters_));
  drop_log_ = std::make_shared<DropLog>(name);
  return {};
}

QueueParts Pipeline::queue_parts() const {
  return {config_,       data_dir_, retrying_, rate_limited_ ? rate_limited_ : leaf_.sink,
          dead_letters_, drop_log_, leaf_,     delivery_};
}

bool Pipeline::matches(const evroute::Event& event) const {
  for (const FieldFilter& f : config_.filter) {
    auto value = event.attribute(f.field);
    if (!value || !matching_glob(f, *value)) return false;
  }
  return true;
}

std::size_t Pipeline::count_matching(std::span<const evroute::Event> events) const {
  if (config_.filter.empty()) return events.size();
  std::size_t n = 0;
  for (const evroute::Event& e : events) n += matches(e) ? 1 : 0;
  return n;
}

evroute::Status Pipeline::accept(std::span<const evroute::Event> events) {
  if (!queue_) return {};  // stopped by a reload that could not reopen its queue (logged)
  std::vector<evroute::Event> matching;
  std::span<const evroute::Event> mine = events;
  if (!config_.filter.empty()) {
    matching.reserve(events.size());
    for (const evroute::Event& e : events) {
      if (matches(e)) matching.push_back(e);
    }
    mine = matching;
  }
  if (mine.empty()) return {};
  evroute::Status s = queue_->write_all(mine);
  if (s.is_ok()) routed_.fetch_add(mine.size(), std::memory_order_relaxed);
  return s;
}

evroute::Status Pipeline::take_queue_from(Pipeline& old) {
  const QueueParts parts = queue_parts();
  auto next = old.queue_ ? kind_->take_over(*old.queue_, *old.drop_log_, parts, &adopted_)
                         : kind_->open(parts);
  old.closed_.store(true, std::memory_order_release);
  if (!next.ok()) {
    spdlog::error("{}; the sink stops until the next reload or restart (its events stay queued)",
                  next.status().message());
    retrying_->close();
    closed_.store(true, std::memory_order_release);
    return next.status();
  }
  queue_ = std::move(*next);
  return {};
}

evroute::SinkQueue::CloseReport Pipeline::close_until(std::chrono::steady_clock::time_point until) {
  evroute::SinkQueue::CloseReport report;
  if (queue_) {
    report = queue_->close_until(until);
  } else if (retrying_) {
    retrying_->close();  // no queue to close it: built without one, or its reopening failed
  }
  closed_.store(true, std::memory_order_release);
  return report;
}

bool Pipeline::disabled() const { return leaf_.disableable && leaf_.disableable->state().disabled; }

bool Pipeline::enable() { return leaf_.disableable && leaf_.disableable->enable(); }

std::optional<evroute::Status> Pipeline::reopen() {
  if (!leaf_.reopenable) return std::nullopt;
  return leaf_.reopenable->reopen();
}

std::vector<evroute::Event> Pipeline::requeue(std::vector<evroute::Event> events) {
  if (!queue_ || events.empty()) return events;
  if (queue_->stored()) {  // takes all or none, with one write (and one sync)
    if (!queue_->requeue(events).is_ok()) return events;
    return {};
  }
  std::vector<evroute::Event> refused;
  for (const evroute::Event& e : events) {
    if (!queue_->write(e).is_ok()) refused.push_back(e);
  }
  return refused;
}

SinkSnapshot Pipeline::snapshot() const {
  SinkSnapshot s;
  s.name = config_.name;
  s.type = config_.type;
  s.description = description_;
  if (leaf_.disableable) s.disabled = leaf_.disableable->state();
  s.state = closed()              ? SinkSnapshot::State::kClosed
            : s.disabled.disabled ? SinkSnapshot::State::kDisabled
                                  : SinkSnapshot::State::kOpen;
  if (queue_) {
    s.queue = queue_->stats();
    if (queue_->stored()) s.storage_ok = queue_->health().is_ok();
  }
  s.queue_type = kind_->name();
  s.queue_fields = kind_->fields(config_.queue, s.queue);
  s.queue_capacity = kind_->capacity(config_.queue);
  s.queue_settings = kind_->settings(config_.queue);
  s.filter = config_.filter;
  s.retry_settings = config_.retry;
  s.retry = retrying_->stats();
  if (kind_->retries_itself()) {
    s.retry = {.delivered = s.queue.delivered,
               .retries = s.queue.naks,
               .gave_up = s.queue.terminated,
               .dead_lettered = s.queue.dead_lettered};
  }
  s.events_in = routed_.load(std::memory_order_relaxed) + adopted_.load(std::memory_order_relaxed);
  s.dead_lettered = dead_letters_->added();
  s.dead_letter_errors = dead_letters_->write_errors();
  if (rate_limited_) s.throttled = rate_limited_->stats().throttled_time;
  return s;
}

}  // namespace evrouted
