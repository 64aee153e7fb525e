#include "evroute/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // renameat2
#include <cstring>

namespace evroute {

namespace {

// A kUnavailable status for a failed call on `path`, with errno left as the call set it.
Status io_error(const char* what, const std::filesystem::path& path, int err) {
  Status status =
      Status::unavailable(std::string(what) + " " + path.string() + ": " + std::strerror(err));
  errno = err;
  return status;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::filesystem::path path, int fd) : WritableFile(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override { ::close(fd_); }

  Status append(std::span<const std::string_view> pieces, std::uint64_t* written) override {
    std::uint64_t total = 0;
    const int err = write_fully(fd_, pieces, &total);
    if (written) *written = total;
    if (err != 0) return io_error("cannot write", path(), err);
    return Status::ok();
  }

  Status sync() override {
    if (::fdatasync(fd_) != 0) return io_error("cannot sync", path(), errno);
    return Status::ok();
  }

  Status truncate(std::uint64_t size) override {
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return io_error("cannot truncate", path(), errno);
    }
    return Status::ok();
  }

  Status stat(Info* info) override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return io_error("cannot stat", path(), errno);
    info->size = static_cast<std::uint64_t>(st.st_size);
    info->device = st.st_dev;
    info->inode = st.st_ino;
    return Status::ok();
  }

 private:
  const int fd_;
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Status read_at(std::uint64_t offset, std::size_t size, std::string* out) override {
    out->resize(size);
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n =
          ::pread(fd_, out->data() + done, size - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        out->resize(done);
        return io_error("cannot read", path_, err);
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    out->resize(done);
    return Status::ok();
  }

  Status size(std::uint64_t* size) override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return io_error("cannot stat", path_, errno);
    *size = static_cast<std::uint64_t>(st.st_size);
    return Status::ok();
  }

 private:
  const std::filesystem::path path_;
  const int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Status open_writable(const std::filesystem::path& path, OpenMode mode, mode_t permissions,
                       std::unique_ptr<WritableFile>* file) override {
    int flags = O_WRONLY | O_APPEND | O_CLOEXEC;
    switch (mode) {
      case OpenMode::kAppend:
        flags |= O_CREAT;
        break;
      case OpenMode::kAppendExisting:
        break;
      case OpenMode::kCreateExclusive:
        flags |= O_CREAT | O_EXCL;
        break;
      case OpenMode::kTruncate:
        flags |= O_CREAT | O_TRUNC;
        break;
    }
    const int fd = ::open(path.c_str(), flags, permissions);
    if (fd < 0) return io_error("cannot open", path, errno);
    *file = std::make_unique<PosixWritableFile>(path, fd);
    return Status::ok();
  }

  Status open_readable(const std::filesystem::path& path,
                       std::unique_ptr<ReadableFile>* file) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error("cannot open", path, errno);
    *file = std::make_unique<PosixReadableFile>(path, fd);
    return Status::ok();
  }

  Status rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return io_error(("cannot rename " + from.string() + " to").c_str(), to, errno);
    }
    return Status::ok();
  }

  Status rename_no_replace(const std::filesystem::path& from,
                           const std::filesystem::path& to) override {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
      return Status::ok();
    }
    if (errno != EINVAL && errno != ENOSYS) {
      return io_error(("cannot rename " + from.string() + " to").c_str(), to, errno);
    }
    if (::access(to.c_str(), F_OK) == 0) {
      return io_error(("cannot rename " + from.string() + " to").c_str(), to, EEXIST);
    }
    return rename(from, to);
  }

  Status remove(const std::filesystem::path& path) override {
    if (::unlink(path.c_str()) != 0) return io_error("cannot delete", path, errno);
    return Status::ok();
  }

  Status sync_dir(const std::filesystem::path& dir) override {
    const std::filesystem::path d = dir.empty() ? "." : dir;
    const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_error("cannot open", d, errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return io_error("cannot sync", d, err);
    return Status::ok();
  }

  Status create_dirs(const std::filesystem::path& dir) override {
    if (dir.empty()) return Status::ok();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return io_error("cannot create", dir, ec.value());
    return Status::ok();
  }

  Status list_files(const std::filesystem::path& dir, std::vector<std::string>* names) override {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return io_error("cannot list", dir, errno);
    errno = 0;
    while (const dirent* entry = ::readdir(d)) {
      bool regular = entry->d_type == DT_REG;
      if (entry->d_type == DT_UNKNOWN) {
        struct stat st {};
        regular = ::fstatat(::dirfd(d), entry->d_name, &st, 0) == 0 && S_ISREG(st.st_mode);
      }
      if (regular) names->emplace_back(entry->d_name);
      errno = 0;
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return io_error("cannot list", dir, err);
    return Status::ok();
  }
};

}  // namespace

int write_fully(int fd, std::span<const std::string_view> pieces, std::uint64_t* written) {
  constexpr std::size_t kMaxPieces = 16;
  iovec iov[kMaxPieces];
  std::size_t done = 0;  // pieces wholly written
  std::uint64_t total = 0;
  std::size_t skip = 0;  // bytes of pieces[done] already written
  while (done < pieces.size()) {
    std::size_t n = 0;
    for (std::size_t i = done; i < pieces.size() && n < kMaxPieces; ++i, ++n) {
      const std::size_t offset = i == done ? skip : 0;
      iov[n] = {const_cast<char*>(pieces[i].data()) + offset, pieces[i].size() - offset};
    }
    const ssize_t w = ::writev(fd, iov, static_cast<int>(n));
    if (w < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      if (written) *written = total;
      return err;
    }
    total += static_cast<std::uint64_t>(w);
    auto left = static_cast<std::size_t>(w);
    while (done < pieces.size() && left >= pieces[done].size() - skip) {
      left -= pieces[done].size() - skip;
      skip = 0;
      ++done;
    }
    skip += left;
  }
  if (written) *written = total;
  return 0;
}

std::shared_ptr<FileSystem> FileSystem::posix() {
  static const std::shared_ptr<FileSystem> fs = std::make_shared<PosixFileSystem>();
  return fs;
}

Status FileSystem::read_file(const std::filesystem::path& path, std::string* contents,
                             bool* found) {
  contents->clear();
  *found = false;
  std::unique_ptr<ReadableFile> file;
  if (Status s = open_readable(path, &file); !s.is_ok()) {
    return errno == ENOENT ? Status::ok() : s;
  }
  *found = true;
  std::uint64_t size = 0;
  if (Status s = file->size(&size); !s.is_ok()) return s;
  return file->read_at(0, static_cast<std::size_t>(size), contents);
}

}  // namespace evroute
