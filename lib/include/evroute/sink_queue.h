// SinkQueue: the one contract of a queue in front of a destination sink, whatever backs it.
//
// A SinkQueue takes events (write(), write_all()) and delivers them to its destination on threads
// of its own; its caller holds "a queue" and need not know whether the events wait in memory
// (Queue), in a log on disk (DurableQueue), or elsewhere. On top of the Sink contract (sink.h):
//  * write_all(events) takes a request's events together. A queue that stores events (stored()
//    is true) takes all of them or none; a memory queue offers each (see queue.h).
//  * close_until(deadline) stops accepting, keeps delivering until it drains or the deadline
//    passes, closes the destination and reports, in one CloseReport, what was left: `undelivered`
//    (handed to the queue's dead-letter sink: gone from this process) or `kept` (still stored, to
//    be delivered by the next queue opened on the same storage). close() is close_until() with
//    the queue's own close_timeout. Idempotent, as close() is (sink.h).
//  * stats() fills one Stats for every backing: a field a backing has no use for stays 0.
//  * health() is OK while the queue can store events; a stored queue's failing storage (a disk
//    that refuses writes) reports its error here until it recovers.
//  * Admission: writers wait for room only in a queue whose blocking_capacity() is non-zero: the
//    caller that must accept a request whole or not at all calls wait_for_room() for each such
//    queue first (see wait_for_room), and pending() tells how much room is claimed now. A stored
//    queue waits for room inside write_all() itself (it takes all or none, so nothing is split).
//
// Thread-safety: every member is safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "evroute/sink.h"

namespace evroute {

class SinkQueue : public Sink {
 public:
  struct Stats {
    std::uint64_t enqueued = 0;              // accepted by write(), write_all() or adopt()
    std::uint64_t delivered = 0;             // destination write returned OK
    std::uint64_t failed = 0;                // destination write returned an error
    std::uint64_t dropped_newest = 0;        // dropped by kDropNewest (or kDropOldest, see queue.h)
    std::uint64_t dropped_oldest = 0;        // evicted by kDropOldest
    std::uint64_t rejected_full = 0;         // write() returned kFull after block_timeout
    std::uint64_t undelivered_at_close = 0;  // memory queues: handed to dead_letter at close
    std::uint64_t dead_lettered = 0;         // handed to dead_letter successfully
    std::uint64_t pending = 0;               // waiting + in flight now
    std::uint64_t high_water = 0;            // largest `pending` seen
    // Memory queues (Queue):
    std::uint64_t blocked_writers = 0;  // writers (and wait_for_room callers) blocked for room now
    std::uint64_t batches = 0;          // write_batch() calls made (batching only)
    std::uint64_t wakeups = 0;          // times a writer woke a parked worker
    std::uint64_t parked_workers = 0;   // workers parked now, waiting for an event
    // Stored queues (DurableQueue):
    std::uint64_t recovered = 0;        // pending at open(): left by the previous run
    std::uint64_t corrupt_skipped = 0;  // unreadable segment tails skipped by the worker
    std::uint64_t disk_bytes = 0;       // live bytes of the log
    std::uint64_t cursor_stores = 0;
    std::uint64_t disk_errors = 0;  // failed log writes and syncs, and cursors not stored
    // Stored queues shared by several processes (a stream every replica consumes):
    std::uint64_t ack_pending = 0;  // handed out, by any process, not acknowledged yet
    std::uint64_t redelivered = 0;  // handed out again (a retry, or a holder that died)
    std::uint64_t naks = 0;         // by this process: given back to be retried later
    std::uint64_t terminated = 0;   // by this process: given up on, after dead-lettering
  };

  struct CloseReport {
    std::uint64_t undelivered = 0;  // not delivered by the deadline, and not kept: accounted
                                    // for by the queue's dead-letter sink
    std::uint64_t kept = 0;         // not delivered by the deadline, kept in storage for the
                                    // next queue opened on it
    bool timed_out = false;         // the deadline passed before the queue drained
  };

  // Whether write_all() stores the events where they outlive this process (a log on disk...):
  // such a write may wait for I/O, and takes all of a request's events or none.
  virtual bool stored() const = 0;
  virtual CloseReport close_until(std::chrono::steady_clock::time_point deadline) = 0;
  virtual Stats stats() const = 0;
  // stats().pending, for a caller that needs nothing else (may be cheaper).
  virtual std::uint64_t pending() const { return stats().pending; }
  virtual Status health() const { return Status::ok(); }
  // Writes events again that were given up on before (a dead-letter replay): as write_all(), but a
  // queue that drops a resend of an event it stored recently (by id) must take these.
  virtual Status requeue(std::span<const Event> events) { return write_all(events); }

  // The capacity writers wait against when the queue is full (when_full: block, bounded); 0 when
  // write() never waits for room (a drop policy, no bound, or a stored queue: see above).
  virtual std::size_t blocking_capacity() const { return 0; }
  // Blocks until there is room for `n` more events without dropping or blocking, the deadline
  // passes, or the queue closes; returns whether there was room. True at once when write() never
  // waits for room.
  virtual bool wait_for_room(std::size_t /*n*/, std::chrono::steady_clock::time_point) {
    return true;
  }
};

}  // namespace evroute
