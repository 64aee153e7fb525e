// FaultyFileSystem: a FileSystem for tests that passes every call to a real one (POSIX by default)
// except those a test told it to fail: the Nth write, sync, truncate, open, rename, remove or
// directory sync from now (optionally only on paths containing a given string) fails with a chosen
// errno (ENOSPC, EIO...), once, several times in a row, or until clear(). A failing write may first
// write part of its bytes (a short write followed by the error, as a full disk does).
//
// Thread-safety: every method is safe from any thread (one mutex), as are the files it opens.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "evroute/file_system.h"

namespace evtest {

class FaultyFileSystem final : public evroute::FileSystem {
 public:
  enum class Op { kWrite, kSync, kTruncate, kOpen, kRename, kRemove, kSyncDir, kCount };

  static constexpr std::size_t kHalf = static_cast<std::size_t>(-1);
  struct Fault {
    Op op = Op::kWrite;
    int error = ENOSPC;
    std::uint64_t nth = 1;          // the nth matching call from now fails (1: the next one)
    std::uint64_t times = 1;        // and so do the times-1 matching calls after it (0: all)
    std::size_t partial_bytes = 0;  // kWrite: bytes written before the error (kHalf: half)
    std::string path_contains;      // matches calls on paths containing it ("": every path)
  };

  // Shorthand: the nth matching call of `op` from now fails with `error` (after `partial_bytes`).
  static Fault fault(Op op, int error, std::uint64_t nth = 1, std::size_t partial_bytes = 0) {
    Fault f;
    f.op = op;
    f.error = error;
    f.nth = nth;
    f.partial_bytes = partial_bytes;
    return f;
  }

  explicit FaultyFileSystem(
      std::shared_ptr<evroute::FileSystem> base = evroute::FileSystem::posix())
      : base_(std::move(base)) {}

  void inject(Fault fault);
  // Every matching call fails from now until clear() (a full disk).
  void fail_always(Op op, int error, std::string path_contains = "");
  void clear();                      // no more faults
  std::uint64_t calls(Op op) const;  // calls made of that kind (failed ones included)
  std::uint64_t injected() const;    // calls failed on purpose

  // Called by the files: the error to fail a call with (0: none), and for writes, the bytes to
  // let through first.
  int check(Op op, const std::filesystem::path& path, std::size_t bytes = 0,
            std::size_t* partial = nullptr);
  evroute::FileSystem& base() { return *base_; }

  evroute::Status open_writable(const std::filesystem::path& path, OpenMode mode,
                                mode_t permissions,
                                std::unique_ptr<evroute::WritableFile>* file) override;
  evroute::Status open_readable(const std::filesystem::path& path,
                                std::unique_ptr<evroute::ReadableFile>* file) override;
  evroute::Status rename(const std::filesystem::path& from,
                         const std::filesystem::path& to) override;
  evroute::Status rename_no_replace(const std::filesystem::path& from,
                                    const std::filesystem::path& to) override;
  evroute::Status remove(const std::filesystem::path& path) override;
  evroute::Status sync_dir(const std::filesystem::path& dir) override;
  evroute::Status create_dirs(const std::filesystem::path& dir) override;
  evroute::Status list_files(const std::filesystem::path& dir,
                             std::vector<std::string>* names) override;

 private:
  struct Active {
    Fault fault;
    std::uint64_t seen = 0;    // matching calls so far
    std::uint64_t failed = 0;  // of them failed
  };
  const std::shared_ptr<evroute::FileSystem> base_;
  mutable std::mutex mu_;
  std::vector<Active> faults_;
  std::uint64_t calls_[static_cast<int>(Op::kCount)] = {};
  std::uint64_t injected_ = 0;
};

// The Status a FaultyFileSystem returns for an injected failure (errno set to `error`).
evroute::Status injected_error(const char* what, const std::filesystem::path& path, int error);

}  // namespace evtest
