#include "sinks/file_sink.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // renameat2
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "sinks/fd_writer.h"
#include "sinks/file_rotation.h"

namespace evrouted {

namespace {

// rename(2) that fails with EEXIST instead of replacing `to` (where the file system cannot do that
// atomically, a check just before).
bool rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno != EINVAL && errno != ENOSYS) return false;
  if (::access(to.c_str(), F_OK) == 0) {
    errno = EEXIST;
    return false;
  }
  return ::rename(from.c_str(), to.c_str()) == 0;
}

}  // namespace

FileSink::FileSink(FileSinkConfig config, WallClock now)
    : config_(std::move(config)),
      now_(now ? std::move(now) : WallClock([] { return std::chrono::system_clock::now(); })),
      templated_(config_.path.find('%') != std::string::npos) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (evroute::Status s = open_locked(expand_path_template(config_.path, now_())); !s.is_ok()) {
      throw std::runtime_error(s.message());
    }
  }
  if (config_.rotate || config_.fsync == FileFsync::kInterval) {
    if (config_.rotate) recover(current_);
    worker_ = std::thread([this] { work(); });
  }
}

FileSink::~FileSink() { close(); }

evroute::Status FileSink::open_locked(const std::string& path) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) {
    return evroute::Status::unavailable("cannot create " + p.parent_path().string() + ": " +
                                        ec.message());
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return evroute::Status::unavailable("cannot open " + path + ": " + why);
  }
  // Reopening the same file (SIGHUP without logrotate) keeps its age for rotate.interval.
  const bool same_file = fd_ >= 0 && st.st_dev == dev_ && st.st_ino == ino_;
  if (fd_ >= 0) {
    sync_locked();
    ::close(fd_);
  }
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  current_ = path;
  size_ = static_cast<std::uint64_t>(st.st_size);
  if (!same_file) opened_at_ = now_();
  next_index_ = 0;
  return evroute::Status::ok();
}

void FileSink::sync_locked() {
  if (config_.fsync == FileFsync::kNever || fd_ < 0) return;
  ::fdatasync(fd_);
  dirty_ = false;
}

evroute::Status FileSink::rotate_locked(std::chrono::system_clock::time_point now) {
  sync_locked();  // the rotated file is complete on disk before anyone compresses it
  if (next_index_ == 0) next_index_ = next_rotation_index(current_);
  std::string rotated = current_ + "." + std::to_string(next_index_);
  // Never replace a file: if someone else created PATH.N meanwhile, look again.
  bool moved = rename_no_replace(current_, rotated);
  if (!moved && errno == EEXIST) {
    next_index_ = next_rotation_index(current_);
    rotated = current_ + "." + std::to_string(next_index_);
    moved = rename_no_replace(current_, rotated);
  }
  if (!moved && errno != ENOENT) {
    return evroute::Status::unavailable("cannot rotate " + current_ + ": " + std::strerror(errno));
  }
  // (ENOENT: someone else moved the file away, e.g. logrotate before its SIGUSR1: just reopen.)
  const std::string path = current_;
  const std::uint64_t index = next_index_;
  if (evroute::Status s = open_locked(path); !s.is_ok()) {
    if (moved) ::rename(rotated.c_str(), path.c_str());  // keep writing where we were
    return s;
  }
  opened_at_ = now;
  next_index_ = index + 1;
  if (config_.fsync != FileFsync::kNever) sync_parent_directory(path);
  enqueue({moved && config_.compress == FileCompression::kGzip ? rotated : "", path});
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

evroute::Status FileSink::finish_append_locked(evroute::Status written, std::uint64_t bytes) {
  if (!written.is_ok()) {
    struct stat st {};
    if (::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
    return written;
  }
  size_ += bytes;
  if (config_.fsync == FileFsync::kAlways) {
    if (::fdatasync(fd_) != 0) {
      return evroute::Status::unavailable("fsync " + current_ + ": " + std::strerror(errno));
    }
  } else {
    dirty_ = true;
  }
  return evroute::Status::ok();
}

evroute::Status FileSink::write(const evroute::Event& event) {
  if (!event) return evroute::Status::invalid_argument("empty event");
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return evroute::Status::closed();
  const std::uint64_t line = event.payload().size() + 1;
  if (evroute::Status s = prepare_locked(line); !s.is_ok()) return s;
  return finish_append_locked(write_line(fd_, event.payload(), current_), line);
}

evroute::Status FileSink::write_batch(std::span<const evroute::Event> events,
                                      std::span<evroute::Status> results) {
  if (evroute::Status s = evroute::check_batch(events, results); !s.is_ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  evroute::Status first;
  std::size_t i = 0;
  while (i < events.size()) {
    evroute::Status s = fd_ < 0 ? evroute::Status::closed() : prepare_locked(events[i].payload().size() + 1);
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
      s = finish_append_locked(write_all(fd_, buffer_, current_), buffer_.size());
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
  if (fd_ < 0) return evroute::Status::closed();
  // On failure open_locked() keeps the old descriptor: lines keep going to the old file.
  return open_locked(templated_ ? expand_path_template(config_.path, now_()) : current_);
}

std::string FileSink::current_path() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fd_ < 0 ? "" : current_;
}

evroute::Status FileSink::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ >= 0) {
      sync_locked();
      ::close(fd_);
      fd_ = -1;
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
  const bool interval_sync = config_.fsync == FileFsync::kInterval;
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
      // Sync a duplicate outside mu_, so writers never wait for the disk.
      int fd = -1;
      {
        std::lock_guard<std::mutex> g(mu_);
        if (dirty_ && fd_ >= 0) fd = ::dup(fd_);
        dirty_ = false;
      }
      if (fd >= 0) {
        ::fdatasync(fd);
        ::close(fd);
      }
    }
    lock.lock();
  }
}

namespace {

class FileSpec final : public SinkSpec {
 public:
  explicit FileSpec(FileSinkConfig config) : config_(std::move(config)) {}
  std::shared_ptr<evroute::Sink> build() const override {
    return std::make_shared<FileSink>(config_);
  }
  std::string describe() const override { return "file " + config_.path; }
  DeliveryConfig delivery() const override {
    DeliveryConfig d;
    d.write_batches = true;
    return d;
  }
  std::string preview(const evroute::Event& event,
                      std::chrono::system_clock::time_point now) const override {
    return "append to " + expand_path_template(config_.path, now) + ":\n" +
           std::string(event.payload()) + "\n";
  }

 private:
  const FileSinkConfig config_;
};

}  // namespace

namespace {

// What makes `path` unusable as a file to append to, as far as can be told without creating
// anything (so --check finds it as the daemon would): it is a directory, or a component of its
// directory is a file.
std::optional<std::string> path_place_problem(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) return path + " is a directory";
  for (fs::path dir = p.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir, ec)) {
      if (!fs::is_directory(dir, ec)) return dir.string() + " is not a directory";
      break;
    }
    if (dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

}  // namespace

std::unique_ptr<SinkSpec> parse_file_sink(ConfigReader& reader) {
  FileSinkConfig config;
  const std::size_t before = reader.errors().all().size();
  const std::string prefix = reader.what().empty() ? "" : reader.what() + ": ";
  if (auto path = reader.required_string("path")) {
    config.path = *path;
    if (auto why = path_template_problem(*path)) {
      reader.error("path", prefix + "'path': " + *why);
    } else if (const std::string now =
                   expand_path_template(*path, std::chrono::system_clock::now());
               now.empty()) {
      reader.error("path", prefix + "'path' expands to nothing");
    } else if (auto problem = path_place_problem(now)) {
      reader.error("path", prefix + "'path': " + *problem);
    }
  }
  if (auto rotate = reader.map("rotate"); rotate && rotate->valid()) {
    const std::string rprefix = rotate->what() + ": ";
    FileRotation r;
    if (auto v = rotate->size("max_bytes")) {
      if (*v == 0) rotate->error("max_bytes", rprefix + "'max_bytes' must be more than 0");
      r.max_bytes = *v;
    }
    if (auto v = rotate->duration("interval")) {
      if (v->count() <= 0) rotate->error("interval", rprefix + "'interval' must be more than 0");
      r.interval = *v;
    }
    if (auto v = rotate->unsigned_integer("keep", 1, 1000000)) r.keep = *v;
    if (!rotate->has("max_bytes") && !rotate->has("interval")) {
      rotate->error_here(rprefix + "set 'max_bytes', 'interval' or both");
    }
    rotate->finish();
    config.rotate = r;
  }
  if (auto c = reader.choice("compress", {"none", "gzip"})) {
    config.compress = *c == "gzip" ? FileCompression::kGzip : FileCompression::kNone;
    if (config.compress != FileCompression::kNone && !reader.has("rotate")) {
      reader.error("compress", prefix + "'compress' applies to rotated files: set 'rotate' too");
    }
  }
  if (auto f = reader.choice("fsync", {"always", "interval", "never"})) {
    config.fsync = *f == "always"     ? FileFsync::kAlways
                   : *f == "interval" ? FileFsync::kInterval
                                      : FileFsync::kNever;
  }
  if (auto i = reader.duration("fsync_interval")) {
    if (i->count() <= 0) {
      reader.error("fsync_interval", prefix + "'fsync_interval' must be more than 0");
    } else if (config.fsync != FileFsync::kInterval) {
      reader.error("fsync_interval", prefix + "'fsync_interval' applies to 'fsync: interval' only");
    }
    config.fsync_interval = *i;
  }
  if (reader.errors().all().size() != before) return nullptr;
  return std::make_unique<FileSpec>(std::move(config));
}

}  // namespace evrouted
