#include "queues/queue_kind.h"

#include <filesystem>

#include "queues/disk.h"
#include "queues/jetstream.h"
#include "queues/memory.h"

namespace evrouted {
namespace {

// Every queue kind. A new backing is its file in queues/ and one line here.
const QueueKind* const kKinds[] = {&memory_queue_kind(), &disk_queue_kind(),
                                   &jetstream_queue_kind()};

}  // namespace

std::shared_ptr<DeadLetterStore> QueueKind::open_dead_letters(const SinkConfig& sink,
                                                              const std::string& data_dir) const {
  return std::make_shared<DeadLetters>(std::filesystem::path(data_dir) / "dead-letters" /
                                       (sink.name + ".ndjson"));
}

evroute::Queue::Options::Batch queue_batch(const QueueParts& parts) {
  if (const auto& batch = parts.delivery.batch) {
    return {.max_events = batch->max_events,
            .max_bytes = batch->max_bytes,
            .max_wait = batch->max_wait};
  }
  if (parts.delivery.write_batches && parts.leaf.batch) {
    // A lingering worker is woken early for a full take: at 256 events that was every 2.5 requests
    // of 100 events per sink under load, most of scenario 2's context switches (bench/README.md).
    return {.max_events = 4096, .max_bytes = std::uint64_t{1} << 20, .max_wait = {}};
  }
  return {.max_events = 0, .max_bytes = 0, .max_wait = {}};
}

const QueueKind& queue_kind(QueueConfig::Type type) {
  for (const QueueKind* kind : kKinds) {
    if (kind->type() == type) return *kind;
  }
  return memory_queue_kind();
}

bool queue_change_needs_restart(const QueueConfig& running, const QueueConfig& next) {
  return running.type != next.type;
}

void warn_orphaned_queues(const Config& config) {
  for (const QueueKind* kind : kKinds) kind->warn_orphaned(config);
}

}  // namespace evrouted
