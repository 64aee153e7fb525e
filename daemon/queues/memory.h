// queue.type: memory (the default): events wait in an evroute::Queue, bounded by queue.capacity.
// Fast, and lost with the process: a shutdown delivers what it can until shutdown_timeout and
// counts the rest as undelivered.
#pragma once

#include "queues/queue_kind.h"

namespace evrouted {

const QueueKind& memory_queue_kind();

}  // namespace evrouted
