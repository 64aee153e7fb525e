// FileSystem: the file operations evroute's storage does (the disk log and its cursor file, the
// daemon's dead-letter logs and file sink), behind one small interface, in the spirit of LevelDB's
// Env: production code uses FileSystem::posix(); tests substitute an implementation that makes the
// Nth write or sync fail (ENOSPC, EIO, a short write) to prove that a failure is reported, that
// nothing acknowledged is lost and that the code recovers once the disk does.
//
// The interface is the system calls those users make, one virtual call each (a negligible cost
// next to the system call): open a file to append to (WritableFile: append, fdatasync, truncate,
// stat) or to read from (ReadableFile: pread), rename, unlink, create and list directories, and
// fsync a directory. Errors are Code::kUnavailable naming the operation, the path and strerror,
// and leave `errno` set as the system call did, for callers that must tell ENOENT or EEXIST from
// the rest.
//
// Ownership: a FileSystem is shared (std::shared_ptr) by everything that uses it and outlives the
// files it opened. A WritableFile or ReadableFile owns its descriptor and closes it when destroyed.
// Thread-safety: FileSystem methods are safe from any thread. A file's methods may be called from
// several threads at once where the system calls they make may (e.g. fdatasync from a sync thread
// while another appends), but destroying a file while another thread uses it is not allowed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "evroute/status.h"

namespace evroute {

class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Writes all of `pieces`, in order, at the end of the file (O_APPEND): one writev(2) where the
  // kernel takes it whole, retrying short writes and EINTR. On failure, *written (optional) gets
  // the bytes that did reach the file (a prefix of the pieces): the caller decides whether to cut
  // them off again with truncate().
  virtual Status append(std::span<const std::string_view> pieces, std::uint64_t* written) = 0;
  Status append(std::string_view data, std::uint64_t* written = nullptr) {
    return append(std::span<const std::string_view>(&data, 1), written);
  }
  // fdatasync(2).
  virtual Status sync() = 0;
  // ftruncate(2): cuts the file to `size` bytes (appends continue from there).
  virtual Status truncate(std::uint64_t size) = 0;

  struct Info {
    std::uint64_t size = 0;
    dev_t device = 0;
    ino_t inode = 0;
  };
  // fstat(2).
  virtual Status stat(Info* info) = 0;
  const std::filesystem::path& path() const { return path_; }

 protected:
  explicit WritableFile(std::filesystem::path path) : path_(std::move(path)) {}

 private:
  const std::filesystem::path path_;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `size` bytes at `offset` into *out (fewer at the end of the file).
  virtual Status read_at(std::uint64_t offset, std::size_t size, std::string* out) = 0;
  virtual Status size(std::uint64_t* size) = 0;
};

class FileSystem {
 public:
  // The default: plain POSIX system calls. Stateless and shared by everyone.
  static std::shared_ptr<FileSystem> posix();

  virtual ~FileSystem() = default;

  enum class OpenMode {
    kAppend,           // create if missing, keep what is there
    kAppendExisting,   // fail (ENOENT) if missing
    kCreateExclusive,  // fail (EEXIST) if it exists
    kTruncate,         // create if missing, empty it
  };
  // `permissions`: of a file it creates (before the umask), e.g. 0640.
  virtual Status open_writable(const std::filesystem::path& path, OpenMode mode, mode_t permissions,
                               std::unique_ptr<WritableFile>* file) = 0;
  virtual Status open_readable(const std::filesystem::path& path,
                               std::unique_ptr<ReadableFile>* file) = 0;

  // rename(2), replacing `to`.
  virtual Status rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  // Fails with EEXIST instead of replacing `to` (renameat2 RENAME_NOREPLACE; where the file system
  // cannot do that atomically, a check just before).
  virtual Status rename_no_replace(const std::filesystem::path& from,
                                   const std::filesystem::path& to) = 0;
  // unlink(2). A missing file is an error (ENOENT): callers that do not mind check for it.
  virtual Status remove(const std::filesystem::path& path) = 0;
  // fsync(2) of a directory: makes the creation, renaming and removal of its entries durable.
  virtual Status sync_dir(const std::filesystem::path& dir) = 0;
  // mkdir -p.
  virtual Status create_dirs(const std::filesystem::path& dir) = 0;
  // The names of the regular files in `dir`.
  virtual Status list_files(const std::filesystem::path& dir, std::vector<std::string>* names) = 0;

  // The whole file in *contents. A missing file is OK with *found false (and *contents empty).
  Status read_file(const std::filesystem::path& path, std::string* contents, bool* found);
};

// The one EINTR-safe write loop: writes all of `pieces`, in order, to `fd` with writev(2) (one
// call where the kernel takes it whole), retrying short writes and EINTR. Returns 0, or the errno
// of the failed call; *written (optional) gets the bytes written either way. Used by the POSIX
// WritableFile and by the daemon's writers to descriptors (stdout).
int write_fully(int fd, std::span<const std::string_view> pieces, std::uint64_t* written = nullptr);

}  // namespace evroute
