#include "sinks/file/file_sink.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>

#include "sinks/fd_writer.h"
#include "sinks/file/file_rotation.h"

namespace evrouted {

FileSink::FileSink(FileSinkConfig config, WallClock now, std::shared_ptr<evroute::FileSystem> fs)
    : config_(std::move(config)),
      now_(now ? std::move(now) : WallClock([] { return std::chrono::system_clock::now(); })),
      fs_(fs ? std::move(fs) : evroute::FileSystem::posix()),
      templated_(config_.path.find('%') != std::string::npos) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (evroute::Status s = open_locked(expand_path_template(config_.path, now_())); !s.is_ok()) {
      throw std::runtime_error(s.message());
    }
  }
  if (config_.rotate || config_.fsync == evroute::SyncPolicy::kInterval) {
    if (config_.rotate) recover(current_);
    worker_ = std::thread([this] { work(); });
  }
}

FileSink::~FileSink() { close(); }

evroute::Status FileSink::open_locked(const std::string& path) {
  const std::filesystem::path p(path);
  if (evroute::Status s = fs_->create_dirs(p.parent_path()); !s.is_ok()) return s;
  std::unique_ptr<evroute::WritableFile> file;
  evroute::WritableFile::Info info;
  evroute::Status status =
      fs_->open_writable(p, evroute::FileSystem::OpenMode::kAppend, 0644, &file);
  if (status.is_ok()) status = file->stat(&info);
  if (!status.is_ok()) return status;
  // Reopening the same file (SIGHUP without logrotate) keeps its age for rotate.interval.
  const bool same_file = file_ && info.device == dev_ && info.inode == ino_;
  if (file_) sync_locked();
  file_ = std::move(file);
  dev_ = info.device;
  ino_ = info.inode;
  current_ = path;
  size_ = info.size;
  if (!same_file) opened_at_ = now_();
  next_index_ = 0;
  return evroute::Status::ok();
}

void FileSink::sync_locked() {
  if (config_.fsync == evroute::SyncPolicy::kNever || !file_) return;
  if (evroute::Status s = file_->sync(); !s.is_ok()) {
    spdlog::error("file sink: {}", s.message());  // before a rotation or close: nothing to retry
  }
  dirty_ = false;
}

evroute::Status FileSink::rotate_locked(std::chrono::system_clock::time_point now) {
  sync_locked();  // the rotated file is complete on disk before anyone compresses it
  if (next_index_ == 0) next_index_ = next_rotation_index(current_);
  std::string rotated = current_ + "." + std::to_string(next_index_);
  // Never replace a file: if someone else created PATH.N meanwhile, look again.
  evroute::Status moved = fs_->rename_no_replace(current_, rotated);
  if (!moved.is_ok() && errno == EEXIST) {
    next_index_ = next_rotation_index(current_);
    rotated = current_ + "." + std::to_string(next_index_);
    moved = fs_->rename_no_replace(current_, rotated);
  }
  if (!moved.is_ok() && errno != ENOENT) {
    return evroute::Status::unavailable("cannot rotate " + current_ + ": " + moved.message());
  }
  // (ENOENT: someone else moved the file away, e.g. logrotate before its SIGUSR1: just reopen.)
  const std::string path = current_;
  const std::uint64_t index = next_index_;
  if (evroute::Status s = open_locked(path); !s.is_ok()) {
    if (moved.is_ok()) (void)fs_->rename(rotated, path);  // keep writing where we were
    return s;
  }
  opened_at_ = now;
  next_index_ = index + 1;
  if (config_.fsync != evroute::SyncPolicy::kNever) {
    (void)fs_->sync_dir(std::filesystem::path(path).parent_path());
  }
  enqueue({moved.is_ok() && config_.compress == FileCompression::kGzip ? rotated : "", path});
  return evroute::Status::ok();
}

evroute::Status FileSink::prepare_locked(std::uint64_t line_bytes) {
  const bool timed = config_.rotate && config_.rotate->interval.count() > 0;
  const auto now = templated_ || timed ? now_() : std::chrono::system_clock::time_point();
  if (templated_) {
    if (std::string path = expand_path_template(config_.path, now); path != current_) {
      if (evroute::Status s = open_locked(path); !s.is_ok()) return s;
      if (config_.rotate) enqueue({"", path});  // a restart may have left rotated files to prune
    }
  }
  if (config_.rotate && size_ > 0) {
    const FileRotation& r = *config_.rotate;
    if ((r.max_bytes > 0 && size_ + line_bytes > r.max_bytes) ||
        (timed && now - opened_at_ >= r.interval)) {
      if (evroute::Status s = rotate_locked(now); !s.is_ok()) return s;
    }
  }
  return evroute::Status::ok();
}

evroute::Status FileSink::finish_append_locked(evroute::Status written, std::uint64_t bytes,
                                               std::uint64_t reached) {
  if (written.is_ok()) {
    size_ += bytes;
    if (config_.fsync != evroute::SyncPolicy::kAlways) {
      dirty_ = true;
      return written;
    }
    written = file_->sync();
    if (written.is_ok()) return written;
    reached = bytes;  // written but maybe never on disk: cut, and let the retry write it again
  }
  // Cut off what reached the file, so that the retry writes the lines once, after whole lines.
  evroute::WritableFile::Info info;
  if (file_->stat(&info).is_ok()) {
    size_ = info.size;
    if (reached > 0 && info.size >= reached && file_->truncate(info.size - reached).is_ok()) {
      size_ = info.size - reached;
    }
  }
  return written;
}

evroute::Status FileSink::write(const evroute::Event& event) {
  if (!event) return evroute::Status::invalid_argument("empty event");
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_) return evroute::Status::closed();
  const std::uint64_t line = event.payload().size() + 1;
  if (evroute::Status s = prepare_locked(line); !s.is_ok()) return s;
  const std::string_view pieces[] = {event.payload(), "\n"};
  std::uint64_t reached = 0;
  const evroute::Status written = file_->append(pieces, &reached);
  return finish_append_locked(written, line, reached);
}

evroute::Status FileSink::write_batch(std::span<const evroute::Event> events,
                                      std::span<evroute::Status> results) {
  if (evroute::Status s = evroute::check_batch(events, results); !s.is_ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  evroute::Status first;
  std::size_t i = 0;
  while (i < events.size()) {
    evroute::Status s =
        !file_ ? evroute::Status::closed() : prepare_locked(events[i].payload().size() + 1);
    std::size_t end = i + 1;
    if (s.is_ok()) {
      // A run: the lines that fit before the next rotation (a templated path is expanded once
      // per run: a run is written within a moment).
      buffer_.clear();
      std::uint64_t bytes = events[i].payload().size() + 1;
      const std::uint64_t max = config_.rotate ? config_.rotate->max_bytes : 0;
      while (end < events.size() &&
             (max == 0 || size_ + bytes + events[end].payload().size() + 1 <= max)) {
        bytes += events[end].payload().size() + 1;
        ++end;
      }
      append_lines(buffer_, events.subspan(i, end - i));
      std::uint64_t reached = 0;
      const evroute::Status written = file_->append(buffer_, &reached);
      s = finish_append_locked(written, buffer_.size(), reached);
    }
    for (std::size_t k = i; k < end; ++k) results[k] = s;
    if (!s.is_ok() && first.is_ok()) first = s;
    i = end;
  }
  if (buffer_.capacity() > (std::size_t{1} << 20)) std::string().swap(buffer_);
  return first;
}

evroute::Status FileSink::reopen() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_) return evroute::Status::closed();
  // On failure open_locked() keeps the old descriptor: lines keep going to the old file.
  return open_locked(templated_ ? expand_path_template(config_.path, now_()) : current_);
}

std::string FileSink::current_path() const {
  std::lock_guard<std::mutex> lock(mu_);
  return file_ ? current_ : "";
}

evroute::Status FileSink::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (file_) {
      sync_locked();
      file_.reset();
    }
  }
  std::thread worker;
  {
    std::lock_guard<std::mutex> lock(work_mu_);
    stopping_ = true;
    worker = std::move(worker_);
  }
  work_cv_.notify_all();
  if (worker.joinable()) worker.join();
  return evroute::Status::ok();
}

void FileSink::enqueue(Job job) {
  {
    std::lock_guard<std::mutex> lock(work_mu_);
    jobs_.push_back(std::move(job));
  }
  work_cv_.notify_all();
}

void FileSink::recover(const std::string& path) {
  remove_stale_temporaries(path);
  if (config_.compress == FileCompression::kGzip) {
    for (const RotatedFile& f : list_rotated(path)) {
      if (!f.gzipped) jobs_.push_back({f.path, path});
    }
  }
  jobs_.push_back({"", path});
}

void FileSink::work() {
  const bool interval_sync = config_.fsync == evroute::SyncPolicy::kInterval;
  auto next_sync = std::chrono::steady_clock::now() + config_.fsync_interval;
  std::unique_lock<std::mutex> lock(work_mu_);
  for (;;) {
    if (!jobs_.empty()) {
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      // (A rotated file may already be pruned when rotations outpace compression.)
      if (!job.rotated.empty() && ::access(job.rotated.c_str(), F_OK) == 0) {
        if (evroute::Status s = gzip_file(job.rotated); !s.is_ok()) {
          spdlog::error("file sink: cannot compress {} (left uncompressed): {}", job.rotated,
                        s.message());
        }
      }
      if (config_.rotate) {
        for (const std::string& removed : prune_rotated(job.path, config_.rotate->keep)) {
          spdlog::info("file sink: removed {} (rotate.keep is {})", removed, config_.rotate->keep);
        }
      }
      lock.lock();
      continue;
    }
    if (stopping_) return;
    if (!interval_sync) {
      work_cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      continue;
    }
    if (work_cv_.wait_until(lock, next_sync, [this] { return stopping_ || !jobs_.empty(); })) {
      continue;
    }
    next_sync = std::chrono::steady_clock::now() + config_.fsync_interval;
    lock.unlock();
    {
      // Sync outside mu_ (the file is shared), so writers never wait for the disk.
      std::shared_ptr<evroute::WritableFile> file;
      {
        std::lock_guard<std::mutex> g(mu_);
        if (dirty_) file = file_;
        dirty_ = false;
      }
      if (file) {
        if (evroute::Status s = file->sync(); !s.is_ok()) {
          spdlog::error("file sink: {}", s.message());
          std::lock_guard<std::mutex> g(mu_);
          dirty_ = true;  // the next interval tries again
        }
      }
    }
    lock.lock();
  }
}

}  // namespace evrouted
