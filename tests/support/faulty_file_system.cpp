#include "support/faulty_file_system.h"

#include <cstring>

namespace evtest {

using evroute::Status;

Status injected_error(const char* what, const std::filesystem::path& path, int error) {
  Status status = Status::unavailable(std::string(what) + " " + path.string() + ": " +
                                      std::strerror(error) + " (injected)");
  errno = error;
  return status;
}

namespace {

class FaultyWritableFile final : public evroute::WritableFile {
 public:
  FaultyWritableFile(FaultyFileSystem* fs, std::unique_ptr<evroute::WritableFile> base)
      : WritableFile(base->path()), fs_(fs), base_(std::move(base)) {}

  Status append(std::span<const std::string_view> pieces, std::uint64_t* written) override {
    std::size_t bytes = 0;
    for (auto p : pieces) bytes += p.size();
    std::size_t partial = 0;
    const int error = fs_->check(FaultyFileSystem::Op::kWrite, path(), bytes, &partial);
    if (error == 0) return base_->append(pieces, written);
    // Let `partial` bytes through, then fail: what a disk that fills up mid-write does.
    std::vector<std::string_view> prefix;
    std::size_t left = partial;
    for (auto p : pieces) {
      if (left == 0) break;
      prefix.push_back(p.substr(0, std::min(left, p.size())));
      left -= prefix.back().size();
    }
    std::uint64_t done = 0;
    if (!prefix.empty()) (void)base_->append(prefix, &done);
    if (written) *written = done;
    return injected_error("cannot write", path(), error);
  }
  Status sync() override {
    if (int e = fs_->check(FaultyFileSystem::Op::kSync, path())) {
      return injected_error("cannot sync", path(), e);
    }
    return base_->sync();
  }
  Status truncate(std::uint64_t size) override {
    if (int e = fs_->check(FaultyFileSystem::Op::kTruncate, path())) {
      return injected_error("cannot truncate", path(), e);
    }
    return base_->truncate(size);
  }
  Status stat(Info* info) override { return base_->stat(info); }

 private:
  FaultyFileSystem* const fs_;
  const std::unique_ptr<evroute::WritableFile> base_;
};

}  // namespace

void FaultyFileSystem::inject(Fault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.push_back(Active{std::move(fault)});
}

void FaultyFileSystem::fail_always(Op op, int error, std::string path_contains) {
  Fault f = fault(op, error);
  f.times = 0;
  f.path_contains = std::move(path_contains);
  inject(std::move(f));
}

void FaultyFileSystem::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.clear();
}

std::uint64_t FaultyFileSystem::calls(Op op) const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_[static_cast<int>(op)];
}

std::uint64_t FaultyFileSystem::injected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return injected_;
}

int FaultyFileSystem::check(Op op, const std::filesystem::path& path, std::size_t bytes,
                            std::size_t* partial) {
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_[static_cast<int>(op)];
  int error = 0;
  for (Active& a : faults_) {
    if (a.fault.op != op) continue;
    if (!a.fault.path_contains.empty() &&
        path.string().find(a.fault.path_contains) == std::string::npos) {
      continue;
    }
    ++a.seen;
    if (error != 0 || a.seen < a.fault.nth) continue;
    if (a.fault.times != 0 && a.failed >= a.fault.times) continue;
    ++a.failed;
    error = a.fault.error;
    if (partial) {
      *partial =
          a.fault.partial_bytes == kHalf ? bytes / 2 : std::min(a.fault.partial_bytes, bytes);
    }
  }
  if (error != 0) ++injected_;
  return error;
}

Status FaultyFileSystem::open_writable(const std::filesystem::path& path, OpenMode mode,
                                       mode_t permissions,
                                       std::unique_ptr<evroute::WritableFile>* file) {
  if (int e = check(Op::kOpen, path)) return injected_error("cannot open", path, e);
  std::unique_ptr<evroute::WritableFile> base;
  if (Status s = base_->open_writable(path, mode, permissions, &base); !s.is_ok()) return s;
  *file = std::make_unique<FaultyWritableFile>(this, std::move(base));
  return Status::ok();
}

Status FaultyFileSystem::open_readable(const std::filesystem::path& path,
                                       std::unique_ptr<evroute::ReadableFile>* file) {
  return base_->open_readable(path, file);
}

Status FaultyFileSystem::rename(const std::filesystem::path& from,
                                const std::filesystem::path& to) {
  if (int e = check(Op::kRename, to)) return injected_error("cannot rename to", to, e);
  return base_->rename(from, to);
}

Status FaultyFileSystem::rename_no_replace(const std::filesystem::path& from,
                                           const std::filesystem::path& to) {
  if (int e = check(Op::kRename, to)) return injected_error("cannot rename to", to, e);
  return base_->rename_no_replace(from, to);
}

Status FaultyFileSystem::remove(const std::filesystem::path& path) {
  if (int e = check(Op::kRemove, path)) return injected_error("cannot delete", path, e);
  return base_->remove(path);
}

Status FaultyFileSystem::sync_dir(const std::filesystem::path& dir) {
  if (int e = check(Op::kSyncDir, dir)) return injected_error("cannot sync", dir, e);
  return base_->sync_dir(dir);
}

Status FaultyFileSystem::create_dirs(const std::filesystem::path& dir) {
  return base_->create_dirs(dir);
}

Status FaultyFileSystem::list_files(const std::filesystem::path& dir,
                                    std::vector<std::string>* names) {
  return base_->list_files(dir, names);
}

}  // namespace evtest
