#include "queues/queue_kind.h"

#include "queues/disk.h"
#include "queues/memory.h"

namespace evrouted {
namespace {

// Every queue kind. A new backing is its file in queues/ and one line here.
const QueueKind* const kKinds[] = {&memory_queue_kind(), &disk_queue_kind()};

}  // namespace

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
