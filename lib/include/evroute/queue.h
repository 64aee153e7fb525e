// Queue: decouples producers from a slow destination sink.
//
// write() appends the event and returns at once; one worker thread, owned by the queue, delivers
// events to the destination in FIFO order. The queue is bounded by `capacity` pending events
// (pending = waiting + handed to the destination and not yet finished; 0 = unbounded, as
// go-events, and not recommended). When full, the overflow policy decides:
//  * Block: the writer waits for room, up to `block_timeout` (zero: forever), then gets kFull.
//  * DropNewest: the new event is dropped (counted) and write() returns OK.
//  * DropOldest: the oldest event not yet handed to the destination is dropped (counted) and the
//    new one is queued; if every pending event is already with the destination, the new event is
//    dropped instead. write() returns OK.
// Dropped events are handed to the optional `dead_letter` sink, so nothing vanishes unaccounted.
//
// A destination write that fails is counted as failed and not retried here: put a Retrying sink in
// front of the destination for that.
//
// close_until(deadline) stops accepting (writers blocked for room get kClosed), keeps delivering
// what is pending until the deadline, then closes the destination (which must make a write in
// flight return promptly, see sink.h), joins the worker, and reports how many events were left
// undelivered; those are handed to `dead_letter` if set. close() is close_until(now +
// options.close_timeout). Both are idempotent; later calls return the first call's report.
//
// Ownership: the queue owns its worker thread and shares ownership of the destination and the
// dead-letter sink.
//
// Thread-safety: write(), close(), close_until() and stats() are safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "evroute/sink.h"

namespace evroute {

enum class OverflowPolicy { kBlock, kDropNewest, kDropOldest };

class Queue final : public Sink {
 public:
  struct Options {
    std::size_t capacity = 10000;  // pending events; 0 = unbounded
    OverflowPolicy when_full = OverflowPolicy::kBlock;
    std::chrono::nanoseconds block_timeout{0};  // kBlock only; zero = wait forever
    std::chrono::nanoseconds close_timeout = std::chrono::seconds(30);  // used by close()
    std::size_t max_batch = 256;          // most events the worker takes from the queue at once
    std::shared_ptr<Sink> dead_letter{};  // receives dropped and undelivered events; may be null
  };

  struct Stats {
    std::uint64_t enqueued = 0;        // accepted by write()
    std::uint64_t delivered = 0;       // destination write returned OK
    std::uint64_t failed = 0;          // destination write returned an error
    std::uint64_t dropped_newest = 0;  // dropped by kDropNewest (or kDropOldest, see above)
    std::uint64_t dropped_oldest = 0;  // evicted by kDropOldest
    std::uint64_t rejected_full = 0;   // write() returned kFull after block_timeout
    std::uint64_t undelivered_at_close = 0;
    std::uint64_t dead_lettered = 0;  // handed to dead_letter successfully
    std::uint64_t pending = 0;        // waiting + in flight now
    std::uint64_t high_water = 0;     // largest `pending` seen
    // Writers (and wait_for_room callers) blocked for room now.
    std::uint64_t blocked_writers = 0;
  };

  struct CloseReport {
    std::uint64_t undelivered = 0;  // pending events not delivered by the deadline
    bool timed_out = false;         // the deadline passed before the queue drained
  };

  Queue(std::shared_ptr<Sink> destination, Options options);
  explicit Queue(std::shared_ptr<Sink> destination) : Queue(std::move(destination), Options{}) {}
  ~Queue() override;  // close() if not yet closed

  Status write(const Event& event) override;
  Status close() override;
  CloseReport close_until(std::chrono::steady_clock::time_point deadline);

  // Blocks until the queue has room for `n` more events without dropping or blocking, the deadline
  // passes, or the queue closes. Returns true when there was room. A producer that must not have a
  // batch split (accepted whole or rejected whole) checks this first. Always true when unbounded
  // or n == 0.
  bool wait_for_room(std::size_t n, std::chrono::steady_clock::time_point deadline);

  Stats stats() const;
  const Options& options() const { return options_; }

 private:
  void run();
  void dead_letter(const Event& event);  // hands an unaccounted event to options_.dead_letter

  const std::shared_ptr<Sink> destination_;
  const Options options_;

  mutable std::mutex mu_;
  std::condition_variable has_events_;  // worker waits for events or close
  std::condition_variable has_room_;    // writers wait for room
  std::condition_variable drained_;     // close waits for the queue to empty
  std::condition_variable closed_cv_;   // a second close waits for the first to finish
  std::deque<Event> waiting_;
  std::size_t in_flight_ = 0;
  std::size_t writers_waiting_ = 0;         // writers blocked for room (notify only when > 0)
  bool worker_waiting_ = false;             // the worker sleeps (notify only when true)
  bool closing_ = false;                    // no more writes accepted
  bool stopping_ = false;                   // worker must stop now (deadline passed)
  std::atomic<bool> stopping_flag_{false};  // stopping_, readable without the lock
  bool closed_ = false;                     // close finished
  CloseReport report_;
  Stats stats_;  // guarded by mu_ (stats() copies it under the lock)
  std::thread worker_;
};

}  // namespace evroute
