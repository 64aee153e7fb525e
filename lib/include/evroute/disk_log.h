// DiskLog: a durable, append-only log of events in segment files under one directory — the storage
// under a durable queue.
//
// append() writes a batch of records (an Event plus an opaque `meta` string, e.g. the names of the
// sinks the event is for) and returns once they are in the log under the sync policy:
//   * kAlways:   fdatasync'ed before append() returns. Group commit: appends that arrive while a
//                write+sync is under way are written and synced together by the next one, so
//                concurrent callers share syncs.
//   * kInterval: written (in the page cache) before append() returns; a background thread syncs
//                every `sync_interval`. A crash of the process loses nothing; a power loss may lose
//                the last interval.
//   * kNever:    written; the kernel syncs when it likes.
// A batch is written with one write() call and is readable as soon as it is written.
//
// Each record is framed as [u32 body length][u32 CRC-32 of the body][body], little-endian, and a
// segment file holds whole records. open() scans every segment: a torn or corrupt record (bad
// length, bad checksum, short read) ends that segment — the file is cut there and the cut is
// reported in the RecoveryReport, never skipped silently and never a reason to fail to start. A
// record is never split across segments; a new segment starts once the current one reaches
// `segment_bytes`.
//
// Space: live bytes are the sizes of the segment files. append() refuses with kFull a batch that
// would take them over `max_bytes`; release(floor) deletes the segments wholly before `floor` (the
// lowest position every consumer has finished with), which makes room again. Positions are
// (segment, offset) pairs and order records; the log itself keeps no consumer state: a consumer
// persists its own position (see CursorFile).
//
// Reading: read(from, ...) returns the records from `from` up to what has been written, moving on to
// the next segment at the end of one; wait_beyond() blocks until something past a position is
// written, the deadline passes, or close().
//
// Errors: I/O failures are Code::kUnavailable with the path and errno text. After a failed write
// the log refuses further appends (the segment's tail is unknown); reopening recovers it.
//
// Thread-safety: every method is safe from any thread. append() may block for disk I/O.
// Ownership: the log owns its files' descriptors and its sync thread; close() (or the destructor)
// syncs, stops the thread and wakes waiters.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "evroute/event.h"
#include "evroute/status.h"

namespace evroute {

class DiskLog {
 public:
  enum class Sync { kAlways, kInterval, kNever };

  struct Options {
    std::filesystem::path dir;                             // created if missing
    std::uint64_t max_bytes = std::uint64_t{1} << 30;      // live segment bytes at most
    std::uint64_t segment_bytes = std::uint64_t{64} << 20;  // start a new segment past this
    Sync sync = Sync::kAlways;
    std::chrono::milliseconds sync_interval{1000};  // kInterval only
  };

  struct Position {
    std::uint64_t segment = 0;
    std::uint64_t offset = 0;
    auto operator<=>(const Position&) const = default;
  };

  struct Record {
    Event event;
    std::string meta;  // opaque to the log
  };

  struct ReadRecord {
    Position position;  // where the record starts
    Position next;      // where the next one starts: a consumer that is done stores this
    Event event;
    std::string meta;
  };

  struct RecoveryReport {
    std::uint64_t segments = 0;
    std::uint64_t records = 0;          // good records found
    std::uint64_t bytes = 0;            // live bytes after recovery
    std::uint64_t truncated_bytes = 0;  // bytes cut off (torn or corrupt tails)
    std::vector<std::string> problems;  // one line per cut: file, offset, what was wrong
  };

  struct Stats {
    std::uint64_t appended_records = 0;
    std::uint64_t appended_bytes = 0;
    std::uint64_t syncs = 0;   // fdatasync calls (group commit: fewer than appends)
    std::uint64_t writes = 0;  // write() batches
    std::uint64_t live_bytes = 0;
    std::uint64_t segments = 0;
    std::uint64_t rejected_full = 0;
  };

  // Opens (creating or recovering) the log in options.dir. On failure returns null and sets
  // *error; `report` (optional) receives what recovery found.
  static std::unique_ptr<DiskLog> open(Options options, Status* error,
                                       RecoveryReport* report = nullptr);
  ~DiskLog();
  DiskLog(const DiskLog&) = delete;
  DiskLog& operator=(const DiskLog&) = delete;

  // Appends the records as one batch. kFull when they do not fit under max_bytes (nothing is
  // written), kClosed after close(), kUnavailable on an I/O error, kInvalidArgument for an empty
  // event or a record too large to frame.
  Status append(std::span<const Record> records);

  // Reads up to `max_records` records starting at `from` (a position returned earlier, or
  // begin()). Appends them to *out; returns OK with nothing added when there is nothing new yet.
  // A position before begin() (reclaimed) reads from begin().
  Status read(Position from, std::size_t max_records, std::vector<ReadRecord>* out) const;

  // Blocks until a record at or after `from` is readable (true), or until the deadline passes or
  // the log closes (false).
  bool wait_beyond(Position from, std::chrono::steady_clock::time_point deadline) const;

  // The first readable position (start of the oldest live segment) and the end of what is written.
  Position begin() const;
  Position end() const;

  // Deletes the segments that end at or before `floor` (never the one being written).
  Status release(Position floor);

  // Blocks until there is room for `bytes` more (true), or the deadline passes or the log closes.
  bool wait_for_room(std::uint64_t bytes, std::chrono::steady_clock::time_point deadline) const;

  // Syncs what is written, stops the sync thread, wakes waiters. Idempotent.
  Status close();

  Stats stats() const;
  const Options& options() const { return options_; }

  // The size of a record once framed; append() needs this many bytes of room.
  static std::uint64_t framed_size(const Record& record);

 private:
  struct Segment {
    std::uint64_t number = 0;
    std::uint64_t bytes = 0;
  };

  explicit DiskLog(Options options);
  Status recover(RecoveryReport* report);
  Status open_active(std::uint64_t number, bool create);
  Status write_batch(const std::string& bytes);  // leader only, without mu_
  Status sync_active();                          // without mu_
  void sync_loop();
  std::filesystem::path segment_path(std::uint64_t number) const;

  const Options options_;

  mutable std::mutex mu_;
  mutable std::condition_variable written_cv_;  // end_ moved, a batch became durable, or closed
  mutable std::condition_variable room_cv_;     // segments released, or closed
  std::map<std::uint64_t, Segment> segments_;   // live segments by number; the last is active
  int active_fd_ = -1;
  Position end_;
  std::uint64_t live_bytes_ = 0;
  std::string pending_;               // framed records waiting for the leader
  std::uint64_t pending_bytes_ = 0;   // their size (reserved against max_bytes)
  std::uint64_t next_batch_ = 1;      // number of the batch pending_ belongs to
  std::uint64_t durable_batch_ = 0;   // every batch up to this one is done
  Status failed_;                     // sticky write failure
  bool leader_active_ = false;
  bool closed_ = false;
  bool dirty_ = false;  // written since the last sync
  Stats stats_;

  std::mutex sync_mu_;  // serializes fdatasync with segment rotation
  std::condition_variable sync_cv_;
  bool stop_sync_ = false;  // guarded by sync_mu_
  std::thread sync_thread_;
};

// CursorFile: one consumer's position in a DiskLog, persisted in a small file (written to a
// temporary file, synced, renamed over the old one: a crash leaves the old or the new position,
// never a torn one). A consumer that stores its position after finishing records gets
// at-least-once delivery: after a crash it resumes from the last stored position.
// Thread-safety: external synchronization required.
class CursorFile {
 public:
  explicit CursorFile(std::filesystem::path path) : path_(std::move(path)) {}
  // The stored position, or {0, 0} (meaning: from the log's begin) when there is none yet.
  Status load(DiskLog::Position* position) const;
  Status store(DiskLog::Position position);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace evroute
