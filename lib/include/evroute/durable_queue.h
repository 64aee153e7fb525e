// DurableQueue: a SinkQueue (sink_queue.h) whose pending events live on disk (a DiskLog), so they
// survive a restart or a crash.
//
// write() (or write_all() for several events: one append, one sync) returns OK once the events are
// in the log under its sync policy (DiskLog::Sync). One worker thread, owned by the queue, reads
// them back in order and delivers them to the destination; after each event is finished (the
// destination returned, success or final failure — put a Retrying with a dead-letter sink in front
// of the destination to retry and account for failures) it advances the queue's cursor, which is
// stored in `<dir>/cursor` every `cursor_interval` and at close. Segments wholly behind the cursor
// are deleted, so disk use stays under the log's max_bytes.
//
// With options.log.cache_bytes > 0 (DiskLog's write cache) the worker is handed the events this
// process appended from memory, the same events the producers wrote, as long as it follows within
// that many bytes of the log's end; further behind, and after a restart, it reads them from the
// files. Either way the cursor, the counts and the delivery are the same.
//
// Delivery is at-least-once: after a crash, the events after the last stored cursor are delivered
// again (at most `cursor_interval` worth, plus what was in flight). Nothing acknowledged is lost:
// open() resumes from the stored cursor and recovers the log (DiskLog cuts a torn tail).
//
// Disk errors. A write_all() whose append fails (ENOSPC, EIO, a failed fsync) returns kUnavailable
// and none of its events is accepted; the log cuts off what it wrote, so the next write_all()
// simply tries again, and succeeds once the disk does: no restart is needed. Meanwhile health()
// reports the error, and the worker probes the disk every `probe_interval` (DiskLog::probe), so
// health() turns OK again as soon as the disk takes writes, even when no one appends. A cursor that
// cannot be stored is counted (stats().disk_errors) and stored again later; the segments wholly
// behind the worker are released all the same (a restart then resumes at the oldest segment left,
// still behind the real progress: duplicates, never losses), so a disk filled by the queue itself
// can drain.
//
// Batching (`batch.max_events` > 1; the destination must be a BatchSink, see batch_sink.h): the
// worker hands the destination the events it reads in batches through write_batch(), each of up
// to `batch.max_events` events and `batch.max_bytes` bytes (the payload sizes plus one separator
// byte each; 0 = no byte bound; a larger event goes alone). With `batch.max_wait` > 0, a batch the
// log cannot fill yet waits up to that long (from when the worker read its first event) for more,
// unless the queue is closing; zero: a batch is what the log holds. One stats and cursor update
// per batch. A batch cut off at the close deadline counts its events up to the first that was not
// finished (a kClosed result once the deadline passed) as delivered or failed; that one and the
// rest are kept for the next open (some may come again: at-least-once).
//
// When the log is full (max_bytes), the overflow policy decides:
//  * Block: wait for room up to `block_timeout` (zero: forever), then kFull.
//  * DropNewest: the new event is dropped (counted, handed to `dead_letter`); write() returns OK.
// (DropOldest is not offered: evicting from the middle of a durable log would cost a rewrite.)
//
// close_until(deadline) stops accepting, keeps delivering until the log is drained or the deadline
// passes, then closes the destination (a write in flight must return promptly), joins the worker,
// stores the cursor and closes the log. What is not delivered by then stays on disk and is
// delivered by the next open(): the report counts it as `kept`. close() is close_until(now +
// options.close_timeout) and returns OK (what is left is kept, not lost). Both are idempotent:
// later calls, and calls concurrent with the first (they wait for it), return the first call's
// report.
//
// Ownership: the queue owns its DiskLog and worker, and shares the destination, the dead-letter
// sink and options.log.fs (the file system under the log and the cursor file).
// Thread-safety: write(), write_all(), close(), close_until(), stats() and health() are safe from
// any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "evroute/disk_log.h"
#include "evroute/queue.h"
#include "evroute/sink_queue.h"

namespace evroute {

class DurableQueue final : public SinkQueue {
 public:
  struct Options {
    DiskLog::Options log;                               // log.dir holds the segments and the cursor
    OverflowPolicy when_full = OverflowPolicy::kBlock;  // kBlock or kDropNewest
    std::chrono::nanoseconds block_timeout{0};          // kBlock only; zero = wait forever
    std::chrono::nanoseconds close_timeout = std::chrono::seconds(30);  // used by close()
    std::size_t max_batch = 256;  // most events the worker reads from the log at once
    std::chrono::milliseconds cursor_interval{200};
    std::chrono::milliseconds probe_interval{1000};  // how often a failing disk is probed
    std::shared_ptr<Sink> dead_letter{};  // receives events dropped by kDropNewest; may be null
    Queue::Options::Batch batch{.max_events = 0, .max_bytes = 0, .max_wait = {}};  // see above
  };

  using Stats = SinkQueue::Stats;  // the disk queue fills enqueued .. high_water but
                                   // dropped_oldest and undelivered_at_close, and recovered ..
                                   // disk_errors
  using CloseReport = SinkQueue::CloseReport;  // `kept`; never `undelivered`

  // Opens (or recovers) the log and the cursor in options.log.dir and starts delivering what a
  // previous run left. Returns null and sets *error when it cannot; *report gets what recovery
  // found (torn or corrupt tails cut off). Throws std::invalid_argument on a null destination, a
  // max_batch of 0, or batching with a destination that is not a BatchSink.
  static std::unique_ptr<DurableQueue> open(std::shared_ptr<Sink> destination, Options options,
                                            Status* error,
                                            DiskLog::RecoveryReport* report = nullptr);
  ~DurableQueue() override;  // close() if not yet closed

  Status write(const Event& event) override;
  // Appends all of them with one write and one sync: accepted all, or (kFull, kClosed, I/O error)
  // none. With kDropNewest a batch that does not fit is dropped whole (counted) and OK is returned.
  Status write_all(std::span<const Event> events) override;
  Status close() override;
  CloseReport close_until(std::chrono::steady_clock::time_point deadline) override;
  bool stored() const override { return true; }

  Stats stats() const override;
  // OK while the log's disk takes writes; else the last write or sync error (DiskLog::health).
  Status health() const override;
  const Options& options() const { return options_; }

 private:
  DurableQueue(std::shared_ptr<Sink> destination, Options options, std::unique_ptr<DiskLog> log,
               DiskLog::Position cursor, std::uint64_t pending);
  void run();
  // Reads more records after `records` (nonempty) into it until it holds batch.max_events, the
  // queue closes, or batch.max_wait after `started` passes (worker thread).
  void fill_batch(std::vector<DiskLog::ReadRecord>& records,
                  std::chrono::steady_clock::time_point started);
  // Delivers `records` in batches (worker thread); moves *pos past each finished event, and stops
  // at the first one the close deadline left unfinished.
  void deliver_batches(std::vector<DiskLog::ReadRecord>& records, DiskLog::Position* pos);
  // Counts `delivered` and `failed` finished events (and one destination write_batch() when
  // `batch`), moves cursor_ to `pos` and wakes a close waiting for the queue to drain (one lock).
  void finish(std::uint64_t delivered, std::uint64_t failed, DiskLog::Position pos, bool batch);
  bool closing() const;  // takes mu_
  Status store_cursor(DiskLog::Position position);

  const std::shared_ptr<Sink> destination_;
  const Options options_;
  BatchSink* const batch_destination_;  // non-null when batching
  const std::unique_ptr<DiskLog> log_;
  CursorFile cursor_file_;  // worker thread only (and close_until after the join)

  mutable std::mutex mu_;
  std::condition_variable closed_cv_;
  bool closing_ = false;
  bool closed_ = false;
  std::atomic<bool> stop_{false};  // the deadline passed: the worker stops now
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  DiskLog::Position cursor_;  // guarded by mu_: the worker's progress
  CloseReport report_;
  Stats stats_;
  std::thread worker_;
};

}  // namespace evroute
