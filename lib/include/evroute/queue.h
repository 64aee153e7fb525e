// Queue: decouples producers from a slow destination sink; the in-memory SinkQueue (sink_queue.h).
//
// write() appends the event and returns at once; `workers` threads (default one), owned by the
// queue, deliver events to the destination. With one worker, events reach the destination in FIFO
// order, one write at a time. With N > 1 workers, up to N writes (or batches) are in flight at once
// and order is not promised: the destination gets concurrent writes (every Sink must take them,
// see sink.h; one that serializes them internally gains nothing). The queue is bounded by
// `capacity` pending events (pending = waiting + handed to the destination and not yet finished;
// 0 = unbounded, as go-events, and not recommended). When full, the overflow policy decides:
//  * Block: the writer waits for room, up to `block_timeout` (zero: forever), then gets kFull.
//  * DropNewest: the new event is dropped (counted) and write() returns OK.
//  * DropOldest: the oldest event not yet handed to the destination is dropped (counted) and the
//    new one is queued; if every pending event is already with the destination, the new event is
//    dropped instead. write() returns OK.
// Dropped events are handed to the optional `dead_letter` sink, so nothing vanishes unaccounted.
//
// Batching (`batch.max_events` > 1; the destination must be a BatchSink, see batch_sink.h): a
// worker hands the destination batches through write_batch(). It starts a batch when an event is
// waiting and sends it when it holds `batch.max_events` events or `batch.max_bytes` bytes (the sum
// of the payload sizes plus one separator byte each; 0 = no byte bound; an event larger than that
// goes alone), or `batch.max_wait` after it started waiting for the batch to fill, or at once when
// the queue is full (at `capacity`) or closing. With `batch.max_wait` zero it never waits: a batch
// is whatever is waiting when the worker takes it (up to the bounds). Time comes from `clock`
// (FakeClock in tests). Each event's own result counts it as delivered or failed.
//
// Wake-ups: a worker that finishes a write and finds events waiting takes them at once. One that
// finds none spins for up to `spin` (pause instructions, no lock held) before it parks on its
// condition variable, but only when that has paid off lately: when, in a moving average over its
// recent run-outs, at least half of the next events came within `spin` (for a parked worker, the
// writer that wakes it notes when, so a worker that does not spin keeps learning). A writer that
// finds a worker spinning wakes nobody; one that finds it parked wakes it (counted in
// stats().wakeups). A burst of events thus costs a worker one wake-up rather than one per event,
// and a trickle too sparse for a spin to catch costs no spinning. A spin takes a core: at most a
// quarter of the machine's cores spin (or settle, below) at once, over every queue in the process
// (none on fewer than four cores), so that the writers and other queues' workers keep theirs. A
// worker for which a spin would pay but that finds no core to spin on dozes instead: it sleeps for
// up to `spin` (at most kMaxDoze, 50 us), and writers wake it early only for a full take (as a
// lingering worker, below), a full queue, a writer waiting for room, or close; what came meanwhile
// is taken together. So under a steady flow an event may wait up to 50 us more, and a worker costs
// one timed sleep per run-out instead of a wake-up per event. Each queue's workers spin, doze and
// park on their own, so a slow destination holds back only its own queue.
//
// Settling (`settle` > 0, the default; with one worker, takes of more than one event, and neither
// lingering nor batches that wait to fill): a worker whose last take was not full waits `settle`
// (a few microseconds) before it looks at the queue again, so that what the producers write
// meanwhile is taken together. It waits busily and looks at nothing the producers write: a worker
// that looks while they write pulls their cache lines over at every look, and a worker that takes
// one or two events at a time as fast as they come costs each write a cache-line transfer or a
// wake-up; settling costs an event at most `settle` of latency. It stops early for close or a
// writer waiting for room, and is skipped when the queue is at half its capacity or more, or when
// it has not paid off lately (a moving average, as for spinning: did events come within `settle`
// of the last take?), so a trickle does not pay for it. Waiting busily takes a core, as spinning
// does, and counts against the same quarter of the cores: a worker that finds no core to settle
// on sleeps instead, for `settle` but at least kMaxDoze (50 us, which pays for the two context
// switches; the kernel's timer slack may lengthen it), until then unless close or a writer
// waiting for room wakes it (writers do not wake it for events), so that the producers keep the
// core and what they write meanwhile is taken together; an event may then wait that much longer.
// (On 2 cores, with four queues behind one producer, settling busily took a quarter of the machine;
// dozing delivered a quarter more.)
//
// Lingering (`linger` > 0): a worker that has just delivered waits up to `linger` before it takes
// the next events, unless a full take (`max_batch` events, or `batch.max_events` when batching) is
// waiting already, the queue is at capacity, a writer waits for room, or the queue closes; writers
// do not wake a lingering worker for less. What came meanwhile goes to the destination together:
// under load, one destination write per `linger` instead of one per few events, and no spinning
// (linger replaces `spin`). An event that finds the worker parked (the queue was idle) is still
// taken at once, so a trickle is not delayed; under load an event waits at most `linger` longer.
// Measured on the real steady clock, not `clock`.
//
// A destination write that fails is counted as failed and not retried here: put a Retrying sink in
// front of the destination for that.
//
// close_until(deadline) stops accepting (writers blocked for room get kClosed), keeps delivering
// what is pending until the deadline, then closes the destination (which must make a write in
// flight return promptly, see sink.h), joins every worker, and reports how many events were left
// undelivered; those are handed to `dead_letter` if set. close() is close_until(now +
// options.close_timeout) and returns OK, or kTimeout naming how many events were left undelivered
// (the destination's own close() result is not part of it). Both are idempotent: later calls, and
// calls concurrent with the first (they wait for it), return the first call's report.
//
// Ownership: the queue owns its worker threads and shares ownership of the destination and the
// dead-letter sink.
//
// Thread-safety: write(), close(), close_until() and stats() are safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "evroute/batch_sink.h"
#include "evroute/clock.h"
#include "evroute/sink_queue.h"

namespace evroute {

enum class OverflowPolicy { kBlock, kDropNewest, kDropOldest };

class Queue final : public SinkQueue {
 public:
  struct Options {
    std::size_t capacity = 10000;  // pending events; 0 = unbounded
    OverflowPolicy when_full = OverflowPolicy::kBlock;
    std::chrono::nanoseconds block_timeout{0};  // kBlock only; zero = wait forever
    std::chrono::nanoseconds close_timeout = std::chrono::seconds(30);  // used by close()
    std::size_t max_batch = 256;  // most events one worker takes at once (unbatched, 1 worker)
    std::shared_ptr<Sink> dead_letter{};  // receives dropped and undelivered events; may be null
    std::size_t workers = 1;              // writes in flight at once; > 1 gives up FIFO order
    struct Batch {
      std::size_t max_events = 0;   // 0 or 1: no batching
      std::uint64_t max_bytes = 0;  // 0: no byte bound
      std::chrono::nanoseconds max_wait = std::chrono::seconds(1);
    } batch{};
    std::shared_ptr<Clock> clock{};  // measures batch.max_wait; null: Clock::system()
    // Longest a worker that ran out of events spins (or, with no core to spin on, dozes: at most
    // kMaxDoze) before it parks (see "Wake-ups" above); zero: it parks at once.
    std::chrono::nanoseconds spin = std::chrono::microseconds(20);
    // How long a worker that has just delivered gathers events before its next write (see
    // "Lingering" above); zero: it takes what is waiting at once.
    std::chrono::nanoseconds linger{0};
    // How long a worker whose last take was not full lets events arrive before it looks again
    // (see "Settling" above); zero: it looks again at once.
    std::chrono::nanoseconds settle = std::chrono::microseconds(5);
  };

  using Stats = SinkQueue::Stats;              // the memory queue fills enqueued .. parked_workers
  using CloseReport = SinkQueue::CloseReport;  // `undelivered`; never `kept`

  // Throws std::invalid_argument on a null destination, max_batch or workers of 0, or batching
  // with a destination that is not a BatchSink.
  Queue(std::shared_ptr<Sink> destination, Options options);
  explicit Queue(std::shared_ptr<Sink> destination) : Queue(std::move(destination), Options{}) {}
  ~Queue() override;  // close() if not yet closed

  Status write(const Event& event) override;
  // Each event as write() would take it, in one hold of the producers' lock and one publish,
  // waking a parked worker at most once (with one worker).
  Status write_all(std::span<const Event> events) override;
  // Queues `event` whatever the capacity and overflow policy: for events accepted elsewhere that
  // must be neither refused nor dropped, such as a rebuilt sink taking over its predecessor's
  // backlog. It may take `pending` past `capacity`; write() then blocks or drops as usual until
  // the queue is below capacity again. Fails only when the queue is closed (kClosed).
  Status adopt(const Event& event);
  Status close() override;
  CloseReport close_until(std::chrono::steady_clock::time_point deadline) override;
  bool stored() const override { return false; }

  // Blocks until the queue has room for `n` more events without dropping or blocking, the deadline
  // passes, or the queue closes. Returns true when there was room. A producer that must not have a
  // batch split (accepted whole or rejected whole) checks this first. Always true when unbounded
  // or n == 0; false at once when n > capacity (it could never fit).
  bool wait_for_room(std::size_t n, std::chrono::steady_clock::time_point deadline) override;
  // options().capacity with kBlock, else 0 (see sink_queue.h).
  std::size_t blocking_capacity() const override {
    return options_.when_full == OverflowPolicy::kBlock ? options_.capacity : 0;
  }

  Stats stats() const override;
  std::uint64_t pending() const override;  // no lock taken
  const Options& options() const { return options_; }

 private:
  class Fifo;  // the waiting events (queue.cpp): appended under pmu_, taken under cmu_
  // pmu_'s type: the producers' lock and the count of published events in one word, so that a
  // write releases the lock and publishes its events in one exchange (sequentially consistent:
  // see "How it works" in queue.cpp). A mutex for short holds, without a condition variable:
  // uncontended, one `lock bts` to take it and the exchange to release it; contended, it spins
  // briefly, then sleeps on the word.
  class ProducerLock {
   public:
    void lock() noexcept {
      if ((word_.fetch_or(kHeld, std::memory_order_acquire) & kHeld) != 0) lock_contended();
    }
    // Releases the lock and makes the first `appended` events published, in one exchange.
    void unlock_publishing(std::uint64_t appended) noexcept {
      if ((word_.exchange(appended << kShift, std::memory_order_seq_cst) & kSleepers) != 0) {
        word_.notify_one();
      }
    }
    // Releases the lock, publishing nothing more (for holders that appended nothing).
    void unlock() noexcept {
      if ((word_.fetch_and(~(kHeld | kSleepers), std::memory_order_release) & kSleepers) != 0) {
        word_.notify_one();
      }
    }
    // Held: makes the first `appended` events published, keeping the lock.
    void publish_held(std::uint64_t appended) noexcept {
      const std::uint64_t published = word_.load(std::memory_order_relaxed) >> kShift;
      if (appended != published) {
        word_.fetch_add((appended - published) << kShift, std::memory_order_seq_cst);
      }
    }
    std::uint64_t published() const noexcept {
      return word_.load(std::memory_order_seq_cst) >> kShift;
    }

   private:
    static constexpr std::uint64_t kHeld = 1;      // someone holds the lock
    static constexpr std::uint64_t kSleepers = 2;  // someone may sleep on the word
    static constexpr int kShift = 2;               // the published count is the rest
    void lock_contended() noexcept;
    std::atomic<std::uint64_t> word_{0};
  };
  class Producers;  // pmu_ for std::unique_lock in write(): unlocking publishes (queue.cpp)
  struct Worker {
    std::condition_variable wake;  // events arrived, or close (waits on cmu_)
    bool idle = false;             // waits on `wake` (a producer that clears it notifies); cmu_
    bool lingering = false;        // waits on `wake` for `linger` (cleared and notified for a
                                   // full take, a full queue, a writer waiting for room, close)
    // The worker's own: a moving average (0..kSpinScoreMax) of how often the next event came
    // within options.spin of running out.
    int spin_score = 0;
    // The worker's own: a moving average (0..kSpinScoreMax) of how often events came within
    // options.settle of a take that was not full. It starts where settling begins to pay.
    int settle_score = kSpinWorthIt;
    bool settling = false;  // asleep in settle() (cmu_): close, stopping or a writer waiting for
                            // room wakes it
    std::chrono::steady_clock::time_point woken_at{};  // when a producer cleared `idle` (cmu_)
    std::thread thread;
  };
  static constexpr int kSpinScoreMax = 256;
  static constexpr int kSpinWorthIt = kSpinScoreMax / 2;  // half the recent run-outs were short
  // Longest doze (see doze()): what an event may wait for a worker that has no core to spin on;
  // and the shortest settle of a worker with no core to settle on (see settle()).
  static constexpr std::chrono::microseconds kMaxDoze{50};
  void run(Worker& self);
  // Waits options_.settle busily, with no lock held and looking only at closing_, stopping_ and
  // writers_waiting_ (see "Settling"); or, with no core to wait busily on, asleep (self.settling)
  // for at least kMaxDoze, until one of those wakes it. Called and returns with `lock` released.
  void settle(Worker& self, std::unique_lock<std::mutex>& lock);
  std::uint64_t waiting() const;   // events appended and not yet taken by a worker (cmu_ held)
  bool batch_ready() const;        // the waiting events fill a batch (cmu_ held)
  std::size_t take_limit() const;  // most events one take() moves
  bool take_now() const;           // a lingering worker should stop gathering (cmu_ held)
  // Waits (cmu_ held by `lock`) up to options_.linger, or until take_now().
  void linger(Worker& self, std::unique_lock<std::mutex>& lock);
  // linger's and doze's wait: lingering until `until`, or until take_now() (cmu_ held).
  void gather(Worker& self, std::unique_lock<std::mutex>& lock,
              std::chrono::steady_clock::time_point until);
  // Clears every lingering flag and notifies, and wakes settling workers (takes cmu_).
  void wake_lingering();
  void take(std::vector<Event>& batch);  // moves the next events to deliver into batch (cmu_ held)
  void set_idle(Worker& w, bool idle);   // w.idle and idle_workers_ (cmu_ held)
  void set_lingering(Worker& w, bool lingering);  // w.lingering and lingering_workers_ (cmu_ held)
  // Appends (pmu_ held); the event is visible to workers once published.
  void enqueue_locked(const Event& event);
  // Makes what the producers appended visible to the workers (pmu_ held), with its bytes.
  void publish_locked();
  // Counts the bytes appended as waiting (pmu_ held), before the events they belong to are
  // published: a worker that sees the events sees their bytes.
  void publish_bytes_locked();
  // After a release of pmu_ that published events: wakes parked or lingering workers for them if
  // there are any (takes cmu_ only then).
  void wake_for_published();
  // write()'s admission of one event, pmu_ held by `lock` (a `block` wait releases it): the
  // events dropped by the overflow policy are added to `dropped`, for after the unlock.
  Status admit_locked(const Event& event, std::unique_lock<Producers>& lock,
                      std::vector<Event>* dropped);
  // Blocks (no lock held) until `n` more events fit, closing, or `deadline` (null: none) passes;
  // true when they fit and the queue is open. Counts the caller in writers_waiting_.
  bool await_room(std::size_t n, const std::chrono::steady_clock::time_point* deadline);
  bool has_room(std::size_t n) const;  // pending() + n <= capacity
  // Returns (cmu_ held) once there is something to do: an event waiting, or closing. Spins first
  // when spinning has paid off lately, then parks; updates self.spin_score.
  void park(Worker& self, std::unique_lock<std::mutex>& lock);
  // With cmu_ released, watches for a published event or a close (a look and a clock read after
  // every 64 pause instructions) until `until` passes. Returns with cmu_ held:
  // kCaught when an event or a close came, kTimedOut, or kNoSlot at once when a quarter of the
  // cores spin already.
  enum class SpinResult { kCaught, kTimedOut, kNoSlot };
  SpinResult spin(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point until);
  // Instead of a spin when no core is free for one: sleeps (cmu_ held by `lock`) until `until`
  // unless a full take is waiting, the queue is full, a writer waits for room or the queue
  // closes; producers do not wake it for less. Returns whether events came meanwhile.
  bool doze(Worker& self, std::unique_lock<std::mutex>& lock,
            std::chrono::steady_clock::time_point until);
  void dead_letter(const Event& event);  // hands an unaccounted event to options_.dead_letter

  const std::shared_ptr<Sink> destination_;
  const Options options_;
  BatchSink* const batch_destination_;  // non-null when batching
  const std::shared_ptr<Clock> clock_;
  const bool counts_bytes_;  // batching with a byte bound: waiting_bytes_ is kept

  // Producers (write, write_all, adopt) and workers do not share a lock on the hot path: pmu_
  // orders the producers, cmu_ the workers (and what they share with a parked worker); a producer
  // takes cmu_ only to wake a parked or lingering worker or to evict the oldest event. Lock order:
  // pmu_, then cmu_, then room_mu_.
  // Producers' and workers' state on cache lines of their own: neither side's hot path writes a
  // line the other reads per event.
  alignas(64) mutable ProducerLock pmu_;
  Stats produced_;  // pmu_: enqueued, dropped_newest, dropped_oldest, rejected_full, high_water
  std::uint64_t unpublished_bytes_ = 0;  // pmu_: batch bytes appended, not yet in waiting_bytes_
  std::uint64_t finished_seen_ = 0;      // pmu_: finished_ when a producer last read it
  alignas(64) mutable std::mutex cmu_;
  Stats consumed_;  // cmu_: delivered, failed, batches, undelivered_at_close, dead_lettered,
                    // wakeups
  std::condition_variable drained_;    // close waits for the queue to empty (cmu_)
  std::condition_variable closed_cv_;  // a second close waits for the first to finish (cmu_)
  bool closed_ = false;                // close finished (cmu_)
  CloseReport report_;                 // cmu_
  alignas(64) std::atomic<std::uint64_t> finished_{0};  // taken and done with (delivered,
                                                        // failed, evicted, undelivered): pending =
                                                        // published - finished_
  std::atomic<std::uint64_t> waiting_bytes_{0};         // payload sizes + 1 of the waiting events
                                                        // (counts_bytes_ only)
  // Rarely written; read by producers at every write.
  alignas(64) std::atomic<std::size_t> idle_workers_{0};  // workers with `idle` set
  std::atomic<std::size_t> lingering_workers_{0};         // workers with `lingering` set
  std::atomic<std::size_t> settling_workers_{0};          // workers with `settling` set
  std::atomic<std::size_t> spinners_{0};                  // workers spinning now
  std::atomic<std::size_t> writers_waiting_{0};  // writers blocked for room (notify when > 0)
  std::atomic<bool> closing_{false};   // no more writes accepted (set under pmu_ and cmu_)
  std::atomic<bool> stopping_{false};  // workers must stop now: the close deadline passed (cmu_)
  alignas(64) std::mutex room_mu_;     // writers blocked for room wait on has_room_ with it
  std::condition_variable has_room_;   // writers wait for room
  std::unique_ptr<Fifo> fifo_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace evroute
