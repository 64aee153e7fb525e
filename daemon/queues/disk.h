// queue.type: disk: events wait in an evroute::DurableQueue under <data_dir>/queues/<sink>/,
// bounded by queue.max_bytes and synced by queue.fsync; what is not delivered at shutdown (or a
// crash) is delivered after the next start.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "queues/queue_kind.h"

namespace evrouted {

const QueueKind& disk_queue_kind();

// Where the disk queue of sink `sink` lives: <data_dir>/queues/<sink>.
std::filesystem::path disk_queue_dir(const std::string& data_dir, const std::string& sink);

// The directories under <data_dir>/queues that belong to no sink configured with a disk queue (a
// sink removed, or moved to another kind, since they were written), in name order. Reads the
// directory only.
std::vector<std::filesystem::path> orphaned_disk_queue_dirs(const Config& config);

}  // namespace evrouted
