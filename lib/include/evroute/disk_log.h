// DiskLog: a durable, append-only log of events in segment files under one directory — the storage
// under a durable queue.
//
// append() writes a batch of records (an Event plus an opaque `meta` string, stored and returned
// as is; DurableQueue leaves it empty) and returns once they are in the log under the sync policy:
//   * kAlways:   fdatasync'ed before append() returns. Group commit: appends that arrive while a
//                write+sync is under way are written and synced together by the next one, so
//                concurrent callers share syncs.
//   * kInterval: written (in the page cache) before append() returns; a background thread syncs
//                every `sync_interval` (the active segment, and the segments completed since its
//                last sync: appends never wait for a sync). A crash of the process loses nothing;
//                a power loss may lose the last interval.
//   * kNever:    written; the kernel syncs when it likes.
// A batch is written with one WritableFile::append (on POSIX one writev(), continued only after a
// short write) and is readable as soon as it is written.
//
// Each record is framed as [u32 body length][u32 CRC-32 of the body][body], little-endian, and a
// segment file holds whole records. open() scans every segment: a torn or corrupt record (a torn
// header or body, an impossible length, a bad checksum, a body that does not decode) ends that
// segment — the file is cut there and the cut is reported in the RecoveryReport, never skipped
// silently and never a reason to fail to start. A batch is never split across segments: once the
// active one holds `segment_bytes` or more, the next batch starts a new one (so a segment may
// exceed `segment_bytes` by one batch).
//
// Space: live bytes are the sizes of the segment files. append() refuses with kFull a batch that
// would take them, with the batches admitted but not yet written, over `max_bytes`; release(floor)
// deletes the segments wholly before `floor` (the lowest position every consumer has finished
// with), which makes room again. Positions are (segment, offset) pairs and order records; the log
// itself keeps no consumer state: a consumer persists its own position (see CursorFile).
//
// Reading: read(from, ...) returns the records from `from` up to what has been written, moving on
// to the next segment at the end of one; wait_beyond() blocks until something past a position is
// written, the deadline passes, or close().
//
// The write cache (`cache_bytes` > 0): the records this process wrote are also kept in memory (the
// events themselves, shared, not copies), the newest up to `cache_bytes` framed bytes, and read()
// hands a reader that follows the log those instead of reading the file back (pread, checksum,
// decode, one allocation per record). Each is handed out once: read(from) takes the cached records
// from `from` on out of the cache and drops those before it; a record it no longer holds (a second
// reader, a reader further behind than the cache holds, what a previous run wrote) is read from the
// file as without the cache. The events are the same either way: a record holds all of an event.
// Only records whose write (and sync, under kAlways) succeeded are cached.
//
// Errors and recovery: I/O failures are Code::kUnavailable with the path and errno text. A batch
// whose write or sync fails (ENOSPC, EIO...) fails every append() in it — none of them is
// acknowledged — and is cut off again: the segment is truncated back to the end of the last good
// record, so no reader ever sees a torn or unacknowledged record, and the next append() simply
// tries again (if the cut itself fails, the next append first retries it, and fails until it
// works). So a full disk costs the appends made while it is full, never the log: once space is
// freed, appends succeed again without a reopen. Meanwhile health() reports the failure (the last
// write or sync error; OK again after the next successful one), and probe() can test the disk
// without an event to append (see below). A failed background sync (kInterval) is reported by
// health() too and retried at the next interval.
//
// Thread-safety: every method is safe from any thread. append() and probe() may block for disk I/O.
// Ownership: the log owns its files and its sync thread, and shares options.fs (the file system it
// uses; tests inject faults through it); close() (or the destructor) syncs, stops the thread and
// wakes waiters.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
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
#include "evroute/file_system.h"
#include "evroute/status.h"
#include "evroute/sync_policy.h"

namespace evroute {

class DiskLog {
 public:
  using Sync = SyncPolicy;  // the one fsync policy (sync_policy.h), by its older name here

  struct Options {
    std::filesystem::path dir;                              // created if missing
    std::uint64_t max_bytes = std::uint64_t{1} << 30;       // live segment bytes at most
    std::uint64_t segment_bytes = std::uint64_t{64} << 20;  // start a new segment past this
    Sync sync = Sync::kAlways;
    std::chrono::milliseconds sync_interval{1000};  // kInterval only
    std::shared_ptr<FileSystem> fs;                 // null: FileSystem::posix()
    std::uint64_t cache_bytes = 0;                  // the write cache (see above); 0 = none
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
    // Syncs of written batches (kAlways; group commit: fewer than appends) and rounds of the
    // background thread (kInterval) or close() that had something to sync; not the sync of a
    // full segment before the next one starts (kAlways).
    std::uint64_t syncs = 0;
    std::uint64_t writes = 0;  // batches written
    std::uint64_t live_bytes = 0;
    std::uint64_t segments = 0;
    std::uint64_t rejected_full = 0;
    std::uint64_t write_errors = 0;  // batches whose write or sync failed, and failed syncs
    std::uint64_t cache_hits = 0;    // records read() took from the write cache
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

  // OK while the disk takes the log's writes. After a failed append (its write or sync), that
  // error until a later append or probe() succeeds; else after a failed background sync
  // (kInterval), that error until a later background sync (or close()'s) succeeds.
  Status health() const;
  // Tests the disk after a failure, without an event to append: cuts a torn tail left by a failed
  // write if that is still to do, then writes, syncs and deletes a small scratch file (`probe` in
  // the log's directory). Success clears a write failure from health() (a fault of the segment
  // file itself shows again at the next append); returns health(). Does nothing while the log is
  // healthy or only a background sync failed (the sync thread retries that itself), or while an
  // append is being written (that tells as much).
  Status probe();

  Stats stats() const;
  const Options& options() const { return options_; }

  // The size of a record once framed; append() needs this many bytes of room.
  static std::uint64_t framed_size(const Record& record);

 private:
  struct Segment {
    std::uint64_t number = 0;
    std::uint64_t bytes = 0;
  };
  // A record of the write cache.
  struct Cached {
    Position position;
    std::uint64_t size = 0;  // framed
    Event event;
    std::string meta;
  };
  // The records of one group commit, shared by the appenders that wait for it.
  struct Batch {
    std::string bytes;  // framed records
    std::uint64_t records = 0;
    std::vector<Cached> cached;  // with the write cache: the records, positions still unknown
    bool done = false;           // written (and synced under kAlways), or failed
    Status status;               // the outcome, once done
  };

  explicit DiskLog(Options options);
  Status recover(RecoveryReport* report);
  Status recover_segment(std::uint64_t number, RecoveryReport* report);  // scans it, cuts its tail
  Status open_active(std::uint64_t number, bool create);
  void lead(std::unique_lock<std::mutex>& lock);  // with mu_: writes everything pending, as leader
  Status write_batch(const std::string& bytes);   // leader only, without mu_
  Status repair_tail();                           // leader only, without mu_
  Status write_probe();                           // leader only, without mu_
  Status sync_active();                           // without mu_
  void sync_loop();
  void cache_written(Batch& batch, Position start);  // with mu_: batch was written at start
  // With mu_: drops the cached records before `from`; true when the cache holds the one at `from`.
  bool cache_serves(Position from) const;
  std::filesystem::path segment_path(std::uint64_t number) const;

  const Options options_;
  FileSystem& fs_;  // *options_.fs

  mutable std::mutex mu_;
  mutable std::condition_variable written_cv_;  // end_ moved, a batch or probe is done, or closed
  mutable std::condition_variable room_cv_;     // segments released, or closed
  std::map<std::uint64_t, Segment> segments_;   // live segments by number; the last is active
  // Replaced by the leader with sync_mu_ held; the sync thread syncs a copy taken under sync_mu_,
  // without holding it, so a rotation never waits for a background sync.
  std::shared_ptr<WritableFile> active_;
  bool tail_dirty_ = false;  // leader only: the active segment may hold bytes past end_
  Position end_;
  std::uint64_t live_bytes_ = 0;
  std::shared_ptr<Batch> pending_;   // the batch appenders join; null when none
  std::uint64_t pending_bytes_ = 0;  // its size (reserved against max_bytes)
  std::uint64_t writing_bytes_ = 0;  // the size of the batch being written (reserved too)
  Status write_error_;  // the last write failed: this is why (cleared by a successful write)
  Status sync_error_;   // the last background sync failed (cleared by a successful one)
  bool leader_active_ = false;
  bool closed_ = false;
  bool dirty_ = false;                    // written since the last sync
  mutable std::deque<Cached> cache_;      // the write cache, in log order (guarded by mu_)
  mutable std::uint64_t cache_held_ = 0;  // its framed bytes
  mutable Stats stats_;

  std::mutex sync_mu_;  // guards active_'s replacement, retired_ and stop_sync_
  // kInterval: segments completed since the last background sync, which syncs (then closes) them.
  std::vector<std::shared_ptr<WritableFile>> retired_;
  std::condition_variable sync_cv_;
  bool stop_sync_ = false;  // guarded by sync_mu_
  std::thread sync_thread_;
};

// CursorFile: one consumer's position in a DiskLog, persisted in a small file (written to a
// temporary file, synced, renamed over the old one: a crash leaves the old or the new position,
// never a torn one; the directory is synced after the rename). A consumer that stores its position
// after finishing records gets at-least-once delivery: after a crash it resumes from the last
// stored position. A failed store() leaves the old file as it was and removes the temporary.
// Thread-safety: external synchronization required.
class CursorFile {
 public:
  explicit CursorFile(std::filesystem::path path, std::shared_ptr<FileSystem> fs = nullptr)
      : path_(std::move(path)), fs_(fs ? std::move(fs) : FileSystem::posix()) {}
  // The stored position, or {0, 0} (meaning: from the log's begin) when there is none yet.
  Status load(DiskLog::Position* position) const;
  Status store(DiskLog::Position position);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::shared_ptr<FileSystem> fs_;
};

}  // namespace evroute
