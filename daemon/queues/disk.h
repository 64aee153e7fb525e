// queue.type: disk: events wait in an evroute::DurableQueue under <data_dir>/queues/<sink>/,
// bounded by queue.max_bytes and synced by queue.fsync; what is not delivered at shutdown (or a
// crash) is delivered after the next start.
#pragma once

#include "queues/queue_kind.h"

namespace evrouted {

const QueueKind& disk_queue_kind();

}  // namespace evrouted
