// DiskLog's writing side: append() and its group commit (one leader writes and syncs every pending
// batch at once), the cut of a failed batch (repair_tail), probe(), and the background sync of
// kInterval.
#include <iterator>
#include <memory>
#include <string>

#include "disk_log_record.h"
#include "evroute/disk_log.h"

namespace evroute {

Status DiskLog::append(std::span<const Record> records) {
  if (records.empty()) return Status::ok();
  std::string framed;
  std::uint64_t size = 0;
  for (const Record& record : records) {
    if (!record.event) return Status::invalid_argument("empty event");
    size += framed_size(record);
  }
  if (size <= internal::kMaxRecordBodyBytes) framed.reserve(static_cast<std::size_t>(size));
  std::vector<Cached> cached;
  if (options_.cache_bytes > 0) cached.reserve(records.size());
  for (const Record& record : records) {
    const std::size_t before = framed.size();
    if (Status s = internal::append_record(record.event, record.meta, &framed); !s.is_ok()) {
      return s;
    }
    if (options_.cache_bytes > 0) {
      cached.push_back(Cached{{}, framed.size() - before, record.event, record.meta});
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return Status::closed("disk log is closed");
  if (live_bytes_ + writing_bytes_ + pending_bytes_ + framed.size() > options_.max_bytes) {
    ++stats_.rejected_full;
    return Status::full("disk log " + options_.dir.string() + " is full (max_bytes " +
                        std::to_string(options_.max_bytes) + ")");
  }
  if (!pending_) pending_ = std::make_shared<Batch>();
  const std::shared_ptr<Batch> mine = pending_;
  pending_bytes_ += framed.size();
  if (mine->bytes.empty()) {
    mine->bytes = std::move(framed);  // the first appender's records are not copied again
  } else {
    mine->bytes += framed;
  }
  mine->records += records.size();
  if (mine->cached.empty()) {
    mine->cached = std::move(cached);
  } else {
    std::move(cached.begin(), cached.end(), std::back_inserter(mine->cached));
  }

  for (;;) {
    if (mine->done) return mine->status;
    if (leader_active_) {
      written_cv_.wait(lock);
      continue;
    }
    lead(lock);
  }
}

void DiskLog::lead(std::unique_lock<std::mutex>& lock) {
  // Write everything pending as one batch (which includes the caller's: a batch is taken only by
  // a leader, and is done before the next leader can start).
  leader_active_ = true;
  const std::shared_ptr<Batch> batch = std::move(pending_);
  pending_.reset();
  writing_bytes_ = pending_bytes_;
  pending_bytes_ = 0;
  lock.unlock();

  const Status status = write_batch(batch->bytes);

  lock.lock();
  leader_active_ = false;
  writing_bytes_ = 0;
  if (status.is_ok()) {
    if (!batch->cached.empty()) cache_written(*batch, end_);
    segments_[end_.segment].bytes = end_.offset + batch->bytes.size();
    end_.offset += batch->bytes.size();
    live_bytes_ += batch->bytes.size();
    stats_.live_bytes = live_bytes_;
    stats_.segments = segments_.size();
    stats_.appended_records += batch->records;
    stats_.appended_bytes += batch->bytes.size();
    ++stats_.writes;
    if (options_.sync == Sync::kAlways)
      ++stats_.syncs;
    else
      dirty_ = true;
    write_error_ = Status::ok();
  } else {
    ++stats_.write_errors;
    write_error_ = status;
    room_cv_.notify_all();  // the failed batch's reservation is free again
  }
  batch->status = status;
  batch->done = true;
  written_cv_.notify_all();
}

void DiskLog::cache_written(Batch& batch, Position start) {
  for (Cached& record : batch.cached) {
    record.position = start;
    start.offset += record.size;
    cache_held_ += record.size;
    cache_.push_back(std::move(record));
  }
  batch.cached.clear();
  while (cache_held_ > options_.cache_bytes) {  // the oldest go: their reader is behind them
    cache_held_ -= cache_.front().size;
    cache_.pop_front();
  }
}

Status DiskLog::repair_tail() {
  if (!tail_dirty_) return Status::ok();
  // end_ changes only under the leader, which is us.
  if (Status s = active_->truncate(end_.offset); !s.is_ok()) return s;
  tail_dirty_ = false;
  return Status::ok();
}

Status DiskLog::write_batch(const std::string& bytes) {
  // A failed batch before this one may have left part of itself behind.
  if (Status s = repair_tail(); !s.is_ok()) return s;
  if (end_.offset > 0 && end_.offset >= options_.segment_bytes) {
    std::lock_guard<std::mutex> sync_lock(sync_mu_);
    // The old segment is complete. kAlways: make it durable before moving on (its batches were
    // synced already: this is cheap). On failure nothing changes (the old segment stays active)
    // and the next batch tries again. kInterval: the background thread syncs it with the next
    // interval, as it would have synced its tail (a sync of up to an interval's writes here held
    // every append for tens of milliseconds).
    if (options_.sync == Sync::kAlways) {
      if (Status s = active_->sync(); !s.is_ok()) return s;
    }
    std::shared_ptr<WritableFile> old = active_;
    if (Status s = open_active(end_.segment + 1, /*create=*/true); !s.is_ok()) return s;
    if (options_.sync == Sync::kInterval) {
      retired_.push_back(std::move(old));
      std::lock_guard<std::mutex> lock(mu_);
      dirty_ = true;
    }
  }
  std::uint64_t written = 0;
  Status status = active_->append(bytes, &written);
  if (status.is_ok() && options_.sync == Sync::kAlways) status = active_->sync();
  if (!status.is_ok()) {
    // Nothing of this batch may stay: its appenders are told it failed. (Records that were written
    // but not synced would be readable after a restart: a retry would then duplicate them.)
    tail_dirty_ = true;
    (void)repair_tail();  // if this fails too, the next batch tries again before writing
  }
  return status;
}

Status DiskLog::write_probe() {
  if (Status s = repair_tail(); !s.is_ok()) return s;
  const auto path = options_.dir / "probe";
  std::unique_ptr<WritableFile> file;
  Status status = fs_.open_writable(path, FileSystem::OpenMode::kTruncate, 0640, &file);
  if (status.is_ok()) status = file->append(std::string(4096, '\0'));
  if (status.is_ok()) status = file->sync();
  file.reset();
  (void)fs_.remove(path);
  return status;
}

Status DiskLog::probe() {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return Status::closed("disk log is closed");
  const auto health_locked = [&] { return write_error_.is_ok() ? sync_error_ : write_error_; };
  if (write_error_.is_ok() || leader_active_) return health_locked();
  leader_active_ = true;  // keeps appenders' leaders away while the tail may be cut
  lock.unlock();
  const Status status = write_probe();
  lock.lock();
  leader_active_ = false;
  if (status.is_ok()) write_error_ = Status::ok();
  written_cv_.notify_all();  // appenders that queued meanwhile need a leader
  return health_locked();
}

Status DiskLog::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!write_error_.is_ok()) return write_error_;
  return sync_error_;
}

Status DiskLog::sync_active() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dirty_) return Status::ok();
    dirty_ = false;
    ++stats_.syncs;
  }
  std::shared_ptr<WritableFile> active;
  std::vector<std::shared_ptr<WritableFile>> retired;
  {
    std::lock_guard<std::mutex> sync_lock(sync_mu_);
    active = active_;
    retired.swap(retired_);
  }
  // Without sync_mu_: the leader may append to `active` and rotate meanwhile. The completed
  // segments first, oldest first; one that fails stays for the next round, with those after it.
  Status status;
  std::size_t synced = 0;
  while (synced < retired.size() && (status = retired[synced]->sync()).is_ok()) ++synced;
  if (status.is_ok() && active) status = active->sync();
  if (synced < retired.size()) {
    std::lock_guard<std::mutex> sync_lock(sync_mu_);
    retired_.insert(retired_.begin(), retired.begin() + static_cast<std::ptrdiff_t>(synced),
                    retired.end());
  }
  retired.clear();  // closes the synced ones
  std::lock_guard<std::mutex> lock(mu_);
  if (!status.is_ok()) {
    dirty_ = true;  // the next interval tries again
    ++stats_.write_errors;
  }
  sync_error_ = status;
  return status;
}

void DiskLog::sync_loop() {
  std::unique_lock<std::mutex> lock(sync_mu_);
  for (;;) {
    if (sync_cv_.wait_for(lock, options_.sync_interval, [&] { return stop_sync_; })) return;
    lock.unlock();
    (void)sync_active();  // a failure shows in health() and at close(); appends go on
    lock.lock();
  }
}

}  // namespace evroute
