// Queue inspection (`evrouted --inspect-queues [--json] --config PATH`): what every queue with
// storage holds, read without starting the daemon and without modifying anything.
//
// Disk queues: every sink configured with `queue.type: disk` (its directory not there yet: "empty")
// and every directory under <data_dir>/queues that belongs to no such sink ("orphaned",
// queues/disk.h orphaned_disk_queue_dirs: its events wait until a sink of that name has a disk
// queue again), each read by evroute::inspect_disk_log (never DiskLog::open, whose recovery cuts
// torn tails): records, bytes, the oldest, newest and next pending event, pending and delivered
// counts from the cursor, and every torn or corrupt tail with its file, offset and bytes.
//
// JetStream queues: when sinks have `queue.type: jetstream`, a connection of its own to `nats:`
// (no stream or consumer is created; waits `nats_timeout` at most) reads the stream's state and
// each sink's durable consumer: pending, ack pending, redelivered; a sink subject holding events of
// a sink not configured with a jetstream queue is "orphaned" (as for disk queues). NATS not
// answering is reported per queue ("nats unavailable: ...") and is not corruption.
//
// The verdict (exit code): 0 when every queue is clean (orphans included: an orphan is not
// corruption, it is said in the text), 1 when a queue is torn or corrupt, 2 when nothing could be
// inspected or a queue could not be read (an unreadable directory, a config error: main) and none
// is corrupt. Thread-safety: none needed (one call at a time).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "evroute/disk_log_inspection.h"
#include "evroute/status.h"
#include "queues/jetstream.h"

namespace evrouted {

inline constexpr int kInspectClean = 0;
inline constexpr int kInspectCorrupt = 1;
inline constexpr int kInspectFailed = 2;  // a config error, or a queue that could not be read

struct DiskQueueReport {
  std::string sink;
  std::filesystem::path dir;
  bool orphaned = false;  // no configured sink has this disk queue
  evroute::Status error;  // the queue could not be read (then `log` is empty)
  evroute::DiskLogInspection log;
};

struct JetStreamQueueReport {
  std::string sink;
  std::string subject;       // <stream>.sink.<sink>
  std::string consumer;      // its durable consumer
  bool orphaned = false;     // events in the stream of a sink not configured with a jetstream queue
  evroute::Status error;     // "nats unavailable: ..." (not corruption)
  std::uint64_t stored = 0;  // messages of the subject in the stream
  std::optional<JetStreamConsumerState> state;  // nullopt: no consumer yet (never started)
};

struct QueuesReport {
  std::string data_dir;
  std::vector<DiskQueueReport> disk;  // configured ones in config order, then the orphans
  std::string stream;                 // nats.stream (when there are jetstream queues)
  evroute::Status stream_error;       // NATS did not answer (then every jetstream queue says so)
  std::optional<JetStreamStreamState> stream_state;  // nullopt: no stream yet, or stream_error
  std::vector<JetStreamQueueReport> jetstream;
  int exit_code() const;  // kInspectClean, kInspectCorrupt or kInspectFailed
};

QueuesReport inspect_queues(const Config& config,
                            std::chrono::milliseconds nats_timeout = std::chrono::seconds(3));

// Human-readable: one aligned block per queue, then a summary line.
std::string queues_text(const QueuesReport& report);
// One JSON document with stable keys (README "Inspecting queues offline").
nlohmann::ordered_json queues_json(const QueuesReport& report);

}  // namespace evrouted
