// QueueKind: what backs a sink's queue — one per `queue.type` value (memory, disk). Each kind opens
// an evroute::SinkQueue for a sink and knows what only it knows: how a rebuilt sink's new queue
// takes over from the old one, and how its settings are shown. Admission, reload, /metrics and
// /v1/sinks see only the SinkQueue contract and these members, so a new backing is one more kind
// (queues/<kind>.cpp and one line in queue_kind.cpp's table) and touches none of them.
//
// Thread-safety: kinds are stateless; every member from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.h"
#include "dead_letters.h"
#include "evroute/queue.h"
#include "evroute/result.h"
#include "evroute/sink_queue.h"
#include "queues/drop_log.h"
#include "sinks/registry.h"

namespace evrouted {

// What a sink's queue is opened with.
struct QueueParts {
  const SinkConfig& sink;
  const std::string& data_dir;
  std::shared_ptr<evroute::Sink> destination;  // the sink's Retrying
  // One attempt at the leaf (through the sink's rate limit, if any), for a queue that retries by
  // itself (jetstream: a retry is a redelivery), and where it puts what it gives up on.
  std::shared_ptr<evroute::Sink> attempt;
  std::shared_ptr<DeadLetterStore> dead_letters;
  std::shared_ptr<DropLog> drop_log;  // the queue's dead_letter
  const Leaf& leaf;                   // its capabilities (a batch-capable leaf...)
  const DeliveryConfig& delivery;     // concurrency and batching
};

// How the sink's queue hands its leaf batches (max_events 0: one event per write): the sink's
// `batch` settings, or, for a leaf whose batch write changes nothing but the number of system
// calls (file, stdout: DeliveryConfig::write_batches), whatever is waiting, up to 4,096 events and
// 1 MiB, without waiting for more.
evroute::Queue::Options::Batch queue_batch(const QueueParts& parts);

// A setting's duration in whole milliseconds, for fields() ("block_timeout_ms").
inline std::uint64_t whole_ms(Duration d) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

class QueueKind {
 public:
  virtual ~QueueKind() = default;
  virtual QueueConfig::Type type() const = 0;
  virtual std::string_view name() const = 0;  // the queue.type value: "memory", "disk"

  // Opens the sink's queue, recovering what its storage holds. Fails with a message naming the
  // sink.
  virtual evroute::Result<std::shared_ptr<evroute::SinkQueue>> open(
      const QueueParts& parts) const = 0;
  // A reload rebuilt the sink: closes `old` at once and returns the queue `next` describes, which
  // continues where `old` stopped — nothing accepted is lost, nothing is delivered twice but the
  // write that was interrupted. What it moves over from `old`'s memory is counted in `*adopted`.
  virtual evroute::Result<std::shared_ptr<evroute::SinkQueue>> take_over(
      evroute::SinkQueue& old, DropLog& old_drops, const QueueParts& next,
      std::atomic<std::uint64_t>* adopted) const = 0;

  // /v1/sinks' "queue" fields (after "type") for these settings and counters.
  virtual std::vector<std::pair<std::string_view, std::uint64_t>> fields(
      const QueueConfig& config, const evroute::SinkQueue::Stats& stats) const = 0;
  // /v1/sinks' "queue" settings that are words, not numbers ("when_full": "block").
  virtual std::vector<std::pair<std::string_view, std::string_view>> settings(
      const QueueConfig& /*config*/) const {
    return {};
  }
  // Where the events a close leaves `kept` (SinkQueue::CloseReport) go next, for the shutdown log.
  virtual std::string_view kept_until() const { return "delivered after the next start"; }
  // Whether the queue makes the sink's attempts and retries itself (QueueParts::attempt) instead of
  // handing events to the sink's Retrying: its Stats then count deliveries, retries and give-ups.
  virtual bool retries_itself() const { return false; }
  // The evroute_sink_queue_capacity gauge: events the queue holds at most (0: no such bound).
  virtual std::uint64_t capacity(const QueueConfig& config) const = 0;
  // The store for the dead letters of a sink with this kind of queue: by default a file under
  // data_dir (dead_letters.h).
  virtual std::shared_ptr<DeadLetterStore> open_dead_letters(const SinkConfig& sink,
                                                             const std::string& data_dir) const;
  // Logs what this kind's storage under data_dir holds for sinks not configured with this kind.
  virtual void warn_orphaned(const Config& /*config*/) const {}
};

const QueueKind& queue_kind(QueueConfig::Type type);

// Whether a sink whose queue was `running` can take `next` without a restart: its kind cannot
// change (the events stored by one kind would wait, unseen, in the other's storage). The one place
// this rule is decided: config_diff reports it, the reload keeps such a sink on its running
// settings.
bool queue_change_needs_restart(const QueueConfig& running, const QueueConfig& next);

// Logs, for every kind with storage under data_dir (QueueKind::warn_orphaned), what it holds for
// sinks not configured with it (a sink removed, or moved to another kind, while events were left):
// they are not delivered until such a sink is configured again, and must not be forgotten silently.
void warn_orphaned_queues(const Config& config);

}  // namespace evrouted
