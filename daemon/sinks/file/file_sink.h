// The file sink (`type: file`): appends each event as one JSON line to `path`.
//
// One writev(2) per line (one write(2) per run of a batch's lines) on an O_APPEND descriptor,
// under a mutex, so lines never interleave or
// split. Parent directories are created. reopen() (SIGUSR1/SIGHUP) closes and reopens the path
// under the same mutex, so logrotate can move the file away without a line being lost or split.
//
// Optional, all decided under that same mutex, between two lines (a line is never split):
//   - path templates: strftime conversions in `path` (UTC, at the time of the write) choose the
//     file; when the expanded name changes, the sink opens the new file (the old one is left as
//     is).
//   - rotation (`rotate`): before a line that would take the file past max_bytes, or at the first
//     line after `interval` since the file was opened, the file is renamed PATH.N (see
//     file_rotation.h for the naming) and a new PATH is opened. An empty file is never rotated; a
//     line longer than max_bytes gets a file of its own. Then at most `keep` rotated files of PATH
//     are kept: older ones are deleted.
//   - compression (`compress: gzip`): rotated files are gzip'ed to PATH.N.gz.
//   - fsync: `always` fdatasync(2)s after every line, before write() returns OK (the event counts
//     as delivered only then); `interval` fdatasync(2)s every fsync_interval when something was
//     written; `never` leaves it to the kernel. With `always` or `interval` a file is also synced
//     before it is rotated or closed, and its directory after a rotation.
// A write that fails (ENOSPC, EIO; or a failed fdatasync under `always`) returns a retryable
// kUnavailable, and what it put in the file is cut off again, so the retry writes the line once and
// no torn line stays behind. (Only if that cut fails too may a line be written twice, or a torn
// one precede it: never lost.) The cut assumes that nothing else appends to the file meanwhile.
// Files go through an evroute::FileSystem (POSIX unless a test injects faults); rotated files are
// compressed and pruned with plain POSIX calls (see file_rotation.h).
// Compression, pruning and interval fsyncs run on a background thread owned by the sink, off the
// write path; it exists only when `rotate` or `fsync: interval` is set. close() lets it finish the
// rotated files already queued, then joins it. At start, the sink removes temporaries a crash left,
// compresses rotated files left uncompressed, and prunes.
//
// Time comes from an injectable wall clock (for the template and `interval`), so tests never sleep.
// Its settings, and the keys they come from: file_config.h.
// Thread-safety: write(), reopen(), close() and current_path() from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "evroute/batch_sink.h"
#include "evroute/file_system.h"
#include "sinks/file/file_config.h"
#include "sinks/registry.h"

namespace evrouted {

class FileSink final : public evroute::BatchSink, public Reopenable {
 public:
  using WallClock = std::function<std::chrono::system_clock::time_point()>;

  // Opens (creating) the file; throws std::runtime_error("cannot open PATH: why"). `now` defaults
  // to std::chrono::system_clock::now, `fs` to evroute::FileSystem::posix().
  explicit FileSink(FileSinkConfig config, WallClock now = {},
                    std::shared_ptr<evroute::FileSystem> fs = nullptr);
  ~FileSink() override;

  evroute::Status write(const evroute::Event& event) override;
  // The lines of a batch with one write(2) per run of lines that go to the same file (a rotation
  // or a new templated path starts a new run), and with fsync: always one fdatasync per run. Each
  // event gets its run's outcome.
  evroute::Status write_batch(std::span<const evroute::Event> events,
                              std::span<evroute::Status> results) override;
  // Waits for the background thread to finish the rotated files already queued.
  evroute::Status close() override;
  evroute::Status reopen() override;

  // The file lines go to now ("" once closed).
  std::string current_path() const;

 private:
  struct Job {
    std::string rotated;  // a rotated file to compress; "" for none
    std::string path;     // the live PATH whose rotated files to prune
  };

  // All *_locked() run under mu_.
  // Rotates or switches to the templated path if the next `line_bytes` bytes call for it.
  evroute::Status prepare_locked(std::uint64_t line_bytes);
  // Accounts for `bytes` just written (whole lines) with outcome `written` (`reached`: the bytes
  // that reached the file), then syncs under fsync: always. A failure cuts off what reached it.
  evroute::Status finish_append_locked(evroute::Status written, std::uint64_t bytes,
                                       std::uint64_t reached);
  evroute::Status open_locked(const std::string& path);
  evroute::Status rotate_locked(std::chrono::system_clock::time_point now);
  void sync_locked();
  void enqueue(Job job);
  void recover(const std::string& path);  // a previous run's leftovers, at start
  void work();                            // the background thread

  const FileSinkConfig config_;
  const WallClock now_;
  const std::shared_ptr<evroute::FileSystem> fs_;
  const bool templated_;

  mutable std::mutex mu_;
  // Null once closed. Shared: the background thread syncs a copy outside mu_.
  std::shared_ptr<evroute::WritableFile> file_;
  std::string current_;     // the expanded path fd_ was opened at
  std::uint64_t size_ = 0;  // bytes in the file (from fstat at open, then counted)
  dev_t dev_ = 0;           // which file file_ is (to tell a reopen of the same file)
  ino_t ino_ = 0;
  std::chrono::system_clock::time_point opened_at_{};
  std::uint64_t next_index_ = 0;  // 0: look it up on disk at the next rotation
  bool dirty_ = false;            // written since the last fsync (fsync: interval)
  std::string buffer_;            // a batch's run of lines

  std::mutex work_mu_;
  std::condition_variable work_cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace evrouted
