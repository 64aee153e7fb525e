#include "evroute/disk_log.h"

#include <cerrno>
#include <cstdio>

#include "disk_log_record.h"

namespace evroute {

// How it works. Appenders frame their records without the lock, then add them to `pending_` and
// wait. One of them at a time is the leader: it takes everything pending as one batch, writes it
// (rotating to a new segment first when the active one is full) and, under kAlways, syncs it — with
// no lock held, so more appenders queue up meanwhile and the next leader writes and syncs all of
// them at once (group commit). Readers open segment files by path and read up to `end_`, which the
// leader advances only after a batch is wholly written. A batch that fails is cut off again before
// the next one is written (see repair_tail), so end_ is always the end of the last good record.
//
// The files: disk_log_record.h frames and checks a record, the one format of the writer, the
// reader and recovery; disk_log_writer.cpp appends (group commit, repair_tail, probe, the
// background sync); disk_log_reader.cpp reads; disk_log_recovery.cpp scans and cuts the segments
// at open(). This file opens and closes the log and keeps its segments and space. CursorFile is in
// cursor_file.cpp.

std::uint64_t DiskLog::framed_size(const Record& record) {
  return internal::framed_record_size(record.event, record.meta);
}

DiskLog::DiskLog(Options options)
    : options_([&] {
        if (!options.fs) options.fs = FileSystem::posix();
        return std::move(options);
      }()),
      fs_(*options_.fs) {}

std::filesystem::path DiskLog::segment_path(std::uint64_t number) const {
  return options_.dir / internal::segment_file_name(number);
}

std::unique_ptr<DiskLog> DiskLog::open(Options options, Status* error, RecoveryReport* report) {
  if (options.max_bytes == 0 || options.segment_bytes == 0) {
    *error = Status::invalid_argument("DiskLog: max_bytes and segment_bytes must be > 0");
    return nullptr;
  }
  std::unique_ptr<DiskLog> log(new DiskLog(std::move(options)));
  RecoveryReport local;
  Status status = log->recover(report ? report : &local);
  if (!status.is_ok()) {
    *error = std::move(status);
    return nullptr;
  }
  if (log->options_.sync == Sync::kInterval) {
    log->sync_thread_ = std::thread([raw = log.get()] { raw->sync_loop(); });
  }
  *error = Status::ok();
  return log;
}

Status DiskLog::open_active(std::uint64_t number, bool create) {
  const auto path = segment_path(number);
  std::unique_ptr<WritableFile> file;
  // A new segment's number is past every live one: a file by that name can only be what a failed
  // creation could not remove, so it is emptied rather than a reason to fail for good.
  const auto mode =
      create ? FileSystem::OpenMode::kTruncate : FileSystem::OpenMode::kAppendExisting;
  if (Status s = fs_.open_writable(path, mode, 0640, &file); !s.is_ok()) return s;
  if (create) {
    if (Status s = fs_.sync_dir(options_.dir); !s.is_ok()) {
      file.reset();
      (void)fs_.remove(path);  // not in segments_: never used
      return s;
    }
  }
  // Only now, when nothing can fail any more, does the new segment replace the old one.
  std::lock_guard<std::mutex> lock(mu_);
  if (create) segments_[number] = Segment{number, 0};
  active_ = std::move(file);
  end_ = Position{number, segments_[number].bytes};
  stats_.segments = segments_.size();
  stats_.live_bytes = live_bytes_;
  return Status::ok();
}

DiskLog::~DiskLog() { close(); }

DiskLog::Position DiskLog::begin() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Position{segments_.begin()->first, 0};
}

DiskLog::Position DiskLog::end() const {
  std::lock_guard<std::mutex> lock(mu_);
  return end_;
}

Status DiskLog::release(Position floor) {
  std::lock_guard<std::mutex> lock(mu_);
  Status status = Status::ok();
  for (auto it = segments_.begin(); it != segments_.end();) {
    const Segment& segment = it->second;
    const bool finished = segment.number < floor.segment ||
                          (segment.number == floor.segment && floor.offset >= segment.bytes);
    if (!finished || segment.number == end_.segment) break;
    if (Status s = fs_.remove(segment_path(segment.number)); !s.is_ok() && errno != ENOENT) {
      status = s;
      break;
    }
    live_bytes_ -= segment.bytes;
    it = segments_.erase(it);
  }
  stats_.live_bytes = live_bytes_;
  stats_.segments = segments_.size();
  room_cv_.notify_all();
  return status;
}

bool DiskLog::wait_for_room(std::uint64_t bytes,
                            std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return room_cv_.wait_until(lock, deadline, [&] {
    return closed_ || live_bytes_ + writing_bytes_ + pending_bytes_ + bytes <= options_.max_bytes;
  }) && !closed_;
}

Status DiskLog::close() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) return Status::ok();
    closed_ = true;
    written_cv_.notify_all();
    room_cv_.notify_all();
    // Appends already admitted still get written: wait for them.
    written_cv_.wait(lock, [&] { return !leader_active_ && !pending_; });
    dirty_ = true;
    cache_.clear();  // reads go on, from the files
    cache_held_ = 0;
  }
  {
    std::lock_guard<std::mutex> sync_lock(sync_mu_);
    stop_sync_ = true;
    sync_cv_.notify_all();
  }
  if (sync_thread_.joinable()) sync_thread_.join();
  Status status = sync_active();
  std::lock_guard<std::mutex> sync_lock(sync_mu_);
  if (tail_dirty_ && active_) (void)active_->truncate(end_.offset);  // a last try
  active_.reset();
  return status;
}

DiskLog::Stats DiskLog::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace evroute
