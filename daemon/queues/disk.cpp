// queue.type: disk — an evroute::DurableQueue (evroute/durable_queue.h).
#include "queues/disk.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "evroute/disk_log_inspection.h"
#include "evroute/durable_queue.h"

namespace evrouted {
namespace {

constexpr std::uint64_t kDiskQueueCacheBytes = 4u << 20;

evroute::Result<std::shared_ptr<evroute::SinkQueue>> open_disk_queue(const QueueParts& parts) {
  const SinkConfig& sc = parts.sink;
  evroute::DurableQueue::Options o;
  o.log.dir = disk_queue_dir(parts.data_dir, sc.name);
  o.log.max_bytes = sc.queue.max_bytes;
  o.log.segment_bytes = std::clamp<std::uint64_t>(sc.queue.max_bytes / 8, 4096, 64u << 20);
  o.log.sync = sc.queue.fsync;
  o.log.sync_interval =
      std::chrono::duration_cast<std::chrono::milliseconds>(sc.queue.fsync_interval);
  // The worker is handed what this process appended from memory (DiskLog's write cache) rather
  // than reading it back from the file: up to 4 MiB of the newest records per disk queue.
  o.log.cache_bytes = kDiskQueueCacheBytes;
  o.when_full = sc.queue.when_full;
  o.block_timeout = sc.queue.block_timeout;
  o.dead_letter = parts.drop_log;
  // Batches as the memory queue hands them (a disk-queued file sink wrote one line per write(2)).
  o.batch = queue_batch(parts);
  evroute::Status error;
  evroute::DiskLog::RecoveryReport report;
  std::shared_ptr<evroute::DurableQueue> queue =
      evroute::DurableQueue::open(parts.destination, o, &error, &report);
  if (!queue) {
    return evroute::Status::unavailable("sink '" + sc.name + "': cannot open its disk queue in " +
                                        o.log.dir.string() + ": " + error.message());
  }
  for (const std::string& problem : report.problems) {
    spdlog::warn("sink '{}': disk queue recovery: {}", sc.name, problem);
  }
  const auto stats = queue->stats();
  spdlog::info(
      "sink '{}': disk queue {} ({} bytes on disk, {} event(s) to deliver from the last run{})",
      sc.name, o.log.dir.string(), stats.disk_bytes, stats.recovered,
      report.truncated_bytes > 0
          ? ", " + std::to_string(report.truncated_bytes) + " corrupt byte(s) cut off"
          : std::string());
  return std::shared_ptr<evroute::SinkQueue>(std::move(queue));
}

// Whether the disk queue in `dir` holds events not delivered yet (past its stored cursor). Read
// only (evroute/disk_log_inspection.h): a queue no sink owns is left exactly as it is.
bool holds_undelivered(const std::filesystem::path& dir) {
  evroute::Result<evroute::DiskLogInspection> inspection = evroute::inspect_disk_log(dir);
  if (!inspection.ok()) {
    spdlog::warn("disk queue {} belongs to no configured disk-queued sink and cannot be read: {}",
                 dir.string(), inspection.status().to_string());
    return false;
  }
  return inspection->pending > 0;
}

class DiskKind final : public QueueKind {
 public:
  QueueConfig::Type type() const override { return QueueConfig::Type::kDisk; }
  std::string_view name() const override { return "disk"; }

  evroute::Result<std::shared_ptr<evroute::SinkQueue>> open(
      const QueueParts& parts) const override {
    return open_disk_queue(parts);
  }

  // The old queue stores its cursor and lets go of the directory; the new one reopens it with the
  // new settings and resumes where the old one stopped (at-least-once: the interrupted event may
  // come again).
  evroute::Result<std::shared_ptr<evroute::SinkQueue>> take_over(
      evroute::SinkQueue& old, DropLog&, const QueueParts& next,
      std::atomic<std::uint64_t>*) const override {
    old.close_until(std::chrono::steady_clock::now());
    return open_disk_queue(next);
  }

  std::vector<std::pair<std::string_view, std::uint64_t>> fields(
      const QueueConfig& config, const evroute::SinkQueue::Stats& stats) const override {
    return {{"max_bytes", config.max_bytes},
            {"block_timeout_ms", whole_ms(config.block_timeout)},
            {"fsync_interval_ms", whole_ms(config.fsync_interval)},
            {"disk_bytes", stats.disk_bytes},
            {"recovered", stats.recovered},
            {"pending", stats.pending},
            {"high_water", stats.high_water},
            {"rejected_full", stats.rejected_full}};
  }
  std::vector<std::pair<std::string_view, std::string_view>> settings(
      const QueueConfig& config) const override {
    return {{"when_full", when_full_name(config.when_full)}, {"fsync", fsync_name(config.fsync)}};
  }
  std::uint64_t capacity(const QueueConfig&) const override { return 0; }

  void warn_orphaned(const Config& config) const override {
    for (const std::filesystem::path& dir : orphaned_disk_queue_dirs(config)) {
      if (!holds_undelivered(dir)) continue;
      spdlog::warn(
          "disk queue {} holds undelivered events of sink '{}', which is not configured "
          "with a disk queue: they wait until it is again",
          dir.string(), dir.filename().string());
    }
  }
};

}  // namespace

const QueueKind& disk_queue_kind() {
  static const DiskKind kind;
  return kind;
}

std::filesystem::path disk_queue_dir(const std::string& data_dir, const std::string& sink) {
  return std::filesystem::path(data_dir) / "queues" / sink;
}

std::vector<std::filesystem::path> orphaned_disk_queue_dirs(const Config& config) {
  namespace fs = std::filesystem;
  std::vector<fs::path> orphans;
  std::error_code ec;
  const fs::path dir = fs::path(config.data_dir) / "queues";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const std::string name = it->path().filename().string();
    const bool used =
        std::any_of(config.sinks.begin(), config.sinks.end(), [&](const SinkConfig& sc) {
          return sc.name == name && sc.queue.type == QueueConfig::Type::kDisk;
        });
    if (!used) orphans.push_back(it->path());
  }
  std::sort(orphans.begin(), orphans.end());
  return orphans;
}

}  // namespace evrouted
