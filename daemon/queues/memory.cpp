// queue.type: memory — an evroute::Queue (evroute/queue.h).
#include "queues/memory.h"

#include <chrono>

#include "evroute/queue.h"

namespace evrouted {
namespace {

std::shared_ptr<evroute::Queue> open_memory_queue(const QueueParts& parts) {
  const QueueConfig& q = parts.sink.queue;
  evroute::Queue::Options o;
  o.capacity = q.capacity;
  o.when_full = q.when_full;
  o.block_timeout = q.block_timeout;
  o.dead_letter = parts.drop_log;
  o.workers = parts.delivery.concurrency;
  o.batch = queue_batch(parts);
  if (!parts.delivery.batch && o.batch.max_events > 1) o.linger = DeliveryConfig::kLinger;
  return std::make_shared<evroute::Queue>(parts.destination, o);
}

class MemoryKind final : public QueueKind {
 public:
  QueueConfig::Type type() const override { return QueueConfig::Type::kMemory; }
  std::string_view name() const override { return "memory"; }

  evroute::Result<std::shared_ptr<evroute::SinkQueue>> open(
      const QueueParts& parts) const override {
    return std::shared_ptr<evroute::SinkQueue>(open_memory_queue(parts));
  }

  // The old queue's backlog (and its write in flight, interrupted) goes to the new queue, oldest
  // first, before the new queue receives anything else: those events were accepted already, so
  // the new queue adopts them past its capacity (Queue::adopt).
  evroute::Result<std::shared_ptr<evroute::SinkQueue>> take_over(
      evroute::SinkQueue& old, DropLog& old_drops, const QueueParts& next,
      std::atomic<std::uint64_t>* adopted) const override {
    auto fresh = open_memory_queue(next);
    old_drops.hand_over_to(fresh, adopted);
    old.close_until(std::chrono::steady_clock::now());
    return std::shared_ptr<evroute::SinkQueue>(std::move(fresh));
  }

  std::vector<std::pair<std::string_view, std::uint64_t>> fields(
      const QueueConfig& config, const evroute::SinkQueue::Stats& stats) const override {
    return {{"capacity", config.capacity},
            {"block_timeout_ms", whole_ms(config.block_timeout)},
            {"pending", stats.pending},
            {"high_water", stats.high_water},
            {"rejected_full", stats.rejected_full}};
  }
  std::vector<std::pair<std::string_view, std::string_view>> settings(
      const QueueConfig& config) const override {
    return {{"when_full", when_full_name(config.when_full)}};
  }
  std::uint64_t capacity(const QueueConfig& config) const override { return config.capacity; }
};

}  // namespace

const QueueKind& memory_queue_kind() {
  static const MemoryKind kind;
  return kind;
}

}  // namespace evrouted
