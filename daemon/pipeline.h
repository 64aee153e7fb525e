// Pipeline: one configured sink, running — everything an event passes through on its way to it:
//
//   accept() -> filter -> queue (a SinkQueue: memory, disk...) -> Retrying -> [RateLimited] -> leaf
//
// The same path for every queue kind: accept(events) keeps the events the sink's filter matches
// and writes them to its queue together (one write_all). The queue's workers hand them to Retrying
// (the sink's retry policy; what it gives up on goes to the sink's dead-letter log), which paces
// every attempt through the rate limit, if the sink has one, to the leaf that does the I/O
// (sinks/<type>/). What the queue itself lets go of (a drop policy, a close deadline) goes to its
// DropLog (queues/drop_log.h). The queue is built by its kind (queues/queue_kind.h): the pipeline
// never looks at which one it is.
//
// Readers get a SinkSnapshot: plain values, copied, nothing to reach into.
//
// Lifetime: built by Pipeline::build, published in a Topology (topology.h), closed once by
// close_until() (shutdown, or a reload retiring it, or a reload handing its queue over to the
// pipeline replacing it: take_queue_from()). Thread-safety: every member from any thread, but
// take_queue_from() and close_until() from one thread at a time (the reload or shutdown).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.h"
#include "dead_letters.h"
#include "evroute/rate_limit.h"
#include "evroute/result.h"
#include "evroute/retry.h"
#include "evroute/sink_queue.h"
#include "queues/drop_log.h"
#include "queues/queue_kind.h"
#include "sinks/registry.h"

namespace evrouted {

// What /v1/sinks and /metrics show of one sink, copied at one moment.
struct SinkSnapshot {
  enum class State { kOpen, kDisabled, kClosed };
  std::string name, type, description;
  State state = State::kOpen;
  Disableable::State disabled;  // why and since when, while kDisabled
  std::string_view queue_type;  // "memory", "disk": the queue kind's name
  // The queue's settings and counters for /v1/sinks' "queue" object, after "type", in order.
  std::vector<std::pair<std::string_view, std::uint64_t>> queue_fields;
  std::uint64_t queue_capacity = 0;  // events (0: unbounded, or not counted in events)
  std::vector<std::pair<std::string_view, std::string_view>> queue_settings;  // QueueKind::settings
  std::vector<FieldFilter> filter;  // the sink's settings, as configured
  RetryConfig retry_settings;
  evroute::SinkQueue::Stats queue;
  std::optional<bool> storage_ok;  // a stored queue: whether its storage takes writes now
  evroute::Retrying::Stats retry;
  std::uint64_t events_in = 0;  // routed to the sink (after its filter), plus adopted ones
  std::uint64_t dead_lettered = 0;
  std::uint64_t dead_letter_errors = 0;
  std::optional<std::chrono::nanoseconds> throttled;  // with a rate_limit: time spent waiting
};

class Pipeline {
 public:
  // Builds the sink's leaf, retry policy and rate limit, and its queue unless `open_queue` is false
  // (a reload opens it later, with take_queue_from(), once the old queue has let go of its
  // storage). `dead_letters`: the log to keep (a rebuilt sink keeps its predecessor's); null: a new
  // one under data_dir. Fails with a message naming the sink when the sink cannot start.
  static evroute::Result<std::shared_ptr<Pipeline>> build(
      const SinkConfig& config, const std::string& data_dir,
      std::shared_ptr<DeadLetterStore> dead_letters = nullptr, bool open_queue = true);
  ~Pipeline();

  const std::string& name() const { return config_.name; }
  const SinkConfig& config() const { return config_; }
  const QueueKind& queue_kind() const { return *kind_; }

  // The events of `events` the filter matches, written to the queue at once. OK when there were
  // none. A pipeline whose queue could not be reopened by a reload takes nothing (and says OK: it
  // was logged as stopped then).
  evroute::Status accept(std::span<const evroute::Event> events);
  bool matches(const evroute::Event& event) const;
  std::size_t count_matching(std::span<const evroute::Event> events) const;

  // The queue, for admission (room, health); null when a reload could not reopen it.
  evroute::SinkQueue* queue() const { return queue_.get(); }
  // Room in a `block` queue claimed by requests being admitted and not written yet (Admission).
  std::atomic<std::uint64_t>& reserved() { return reserved_; }
  // Set while a stored queue fails to store (logged once), cleared when it stores again.
  std::atomic<bool>& storage_failing() { return storage_failing_; }

  // Replaces the queue of `old` (the pipeline this one is rebuilt from; it closes at once) by one
  // of this pipeline's settings that continues where it stopped (queue_kind.h: take_over).
  // Counts what it takes over in events_in. On failure the pipeline is closed and logged.
  evroute::Status take_queue_from(Pipeline& old);
  // Events moved over from the old queue's memory by take_queue_from() (a stored queue's are
  // still in its storage: not counted).
  std::uint64_t adopted() const { return adopted_.load(std::memory_order_relaxed); }
  // Closes the queue at `until` (see SinkQueue::close_until): left events go to the DropLog, or
  // stay in storage. The pipeline is closed afterwards.
  evroute::SinkQueue::CloseReport close_until(std::chrono::steady_clock::time_point until);
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  // Why events left in the queue from now on are not delivered (the DropLog's log line).
  void set_drop_reason(const char* reason) { drop_log_->set_reason(reason); }

  // Capabilities of the leaf (sinks/registry.h).
  bool disabled() const;
  bool enable();                            // false when it was not disabled (or cannot be)
  std::optional<evroute::Status> reopen();  // nullopt when the leaf has no file to reopen

  DeadLetterStore& dead_letters() const { return *dead_letters_; }
  std::shared_ptr<DeadLetterStore> shared_dead_letters() const { return dead_letters_; }
  // Moves `events` into the queue (replay): those it refuses are returned.
  std::vector<evroute::Event> requeue(std::vector<evroute::Event> events);

  SinkSnapshot snapshot() const;

 private:
  explicit Pipeline(const SinkConfig& config);
  QueueParts queue_parts() const;
  evroute::Status build_delivery(const std::string& data_dir,
                                 std::shared_ptr<DeadLetterStore> dead_letters);

  const SinkConfig config_;
  const QueueKind* kind_;
  std::string data_dir_;
  std::string description_;
  Leaf leaf_;
  DeliveryConfig delivery_;
  std::shared_ptr<evroute::RateLimited> rate_limited_;  // null without a rate_limit
  std::shared_ptr<evroute::Retrying> retrying_;
  std::shared_ptr<DropLog> drop_log_;
  std::shared_ptr<DeadLetterStore> dead_letters_;
  std::shared_ptr<evroute::SinkQueue> queue_;
  std::atomic<std::uint64_t> routed_{0};   // events accept() wrote to the queue
  std::atomic<std::uint64_t> adopted_{0};  // events taken over from the pipeline this replaced
  std::atomic<std::uint64_t> reserved_{0};
  std::atomic<bool> storage_failing_{false};
  std::atomic<bool> closed_{false};
};

}  // namespace evrouted
