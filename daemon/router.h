// Router: the running topology — one Broadcaster feeding, for every configured sink,
//   [Filter] -> Queue -> Retrying -> [RateLimited] -> leaf sink (stdout, file, http...)
// so every sink has its own queue and workers (its `concurrency`, default one), and a slow or dead
// sink never delays the others. The sink's `batch` makes the queue hand batches down the chain
// (see sinks/delivery.h); `rate_limit` paces every attempt, retries included.
//
// submit() admits a request's events whole or not at all: for every sink whose queue blocks when
// full, it first waits (up to that sink's block_timeout) for room for all the events routed to it;
// only when every such sink has room are the events written. When some sink's queue blocks,
// admission is serialized (an exclusive lock), which makes "check for room, then write" atomic;
// otherwise requests are admitted concurrently (a shared lock). Drop policies (drop_newest,
// drop_oldest) never refuse: they count. shutdown() takes the lock exclusively, so a request is
// either admitted whole before the queues close or refused.
//
// A sink with a disk queue (queue.type: disk) is not behind the Broadcaster: submit() first
// appends the request's events for it with one DurableQueue::write_all (one write and, with
// fsync: always, one fsync shared with concurrent requests — group commit), outside the admission
// lock, then admits the events for the in-memory queues as above. So a 202 means: on disk for
// every disk-queued sink, queued in memory for the others. A request refused after a disk queue
// stored it (another sink was full) may be delivered to that sink anyway: resending it is safe
// when events carry their own ids (receivers deduplicate on webhook-id).
//
// Memory: every admitted event is charged to one MemoryBudget of `limits.memory` bytes (see
// evroute/budget.h: an event fanned out to N sinks is one allocation, charged once, released when
// the last queue is done with it). A request whose events do not fit in what is left of it is
// refused whole (kOverBudget, 503) after the queue checks; one that could never fit gets kTooLarge.
// Events already admitted are never dropped for it.
//
// shutdown() stops admission, then closes every queue against one common deadline — each queue
// keeps delivering until it drains or the deadline passes — and reports what was left undelivered.
// A sink disabled by its destination (410 Gone: its leaf holds its events, see Disableable) cannot
// drain, so its queue is closed first, at once: its events count as undelivered without using up
// the others' time.
// Events left in a disk queue are not lost: they are kept on disk and delivered after a restart.
//
// Thread-safety: submit(), routes() and the stats are safe from any thread; shutdown() and
// reopen() from any one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "dead_letters.h"
#include "evroute/broadcaster.h"
#include "evroute/durable_queue.h"
#include "evroute/budget.h"
#include "evroute/filter.h"
#include "evroute/queue.h"
#include "evroute/rate_limit.h"
#include "evroute/retry.h"

namespace evrouted {

class DropLog;

struct Route {
  std::string name;
  std::string type;
  std::string description;
  QueueConfig queue_config;
  std::vector<FieldFilter> filter;
  std::shared_ptr<evroute::Sink> leaf;
  DeliveryConfig delivery;
  std::shared_ptr<evroute::RateLimited> rate_limited;  // null without a rate_limit
  std::shared_ptr<evroute::Retrying> retrying;
  std::shared_ptr<evroute::Queue> queue;           // in-memory queue; null for a disk queue
  std::shared_ptr<evroute::DurableQueue> durable;  // disk queue (queue.type: disk); else null
  std::shared_ptr<evroute::Filter> filter_sink;  // null when the sink has no filter (memory only)
  std::shared_ptr<DropLog> drop_log;
  std::shared_ptr<DeadLetters> dead_letters;  // what the sink gave up on, for listing and replay
  std::atomic<std::uint64_t> routed{0};  // disk queues: events submit() routed to this sink

  bool matches(const evroute::Event& event) const;
  // The leaf's disabled state (410 Gone), or null when the leaf cannot be disabled.
  Disableable* disableable() const { return dynamic_cast<Disableable*>(leaf.get()); }
  bool disabled() const {
    const Disableable* d = disableable();
    return d && d->state().disabled;
  }
  // The queue's counters, whichever kind it is (a disk queue's disk_bytes in `disk_bytes`).
  struct QueueStats {
    std::uint64_t pending = 0, high_water = 0, rejected_full = 0;
    std::uint64_t dropped_newest = 0, dropped_oldest = 0, undelivered_at_close = 0;
    std::uint64_t disk_bytes = 0, recovered = 0;
  };
  QueueStats queue_stats() const;
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  std::atomic<bool> closed_{false};
};

// The first of `filter`'s globs that `value` matches (fnmatch), or nullptr.
const std::string* matching_glob(const FieldFilter& filter, std::string_view value);
// The top-level event fields ingest must copy into attributes for `config`: "type", then every
// field a filter tests.
std::vector<std::string> attribute_fields(const Config& config);

class Router {
 public:
  enum class Outcome {
    kAccepted,
    kFull,        // a blocking queue stayed full past its block_timeout (503)
    kTooLarge,    // more events for one sink than its queue can ever hold, or more bytes than
                  // limits.memory (413)
    kClosed,      // shutting down (503)
    kOverBudget,  // the events do not fit in what limits.memory has left now (503)
    kUnavailable,  // a disk queue could not store the events (I/O error) (503)
  };
  struct Admission {
    Outcome outcome = Outcome::kAccepted;
    std::string message;
  };
  struct ShutdownReport {
    std::uint64_t undelivered = 0;   // in memory queues at the deadline: lost, counted, logged
    std::uint64_t kept_on_disk = 0;  // in disk queues at the deadline: delivered after restart
    bool timed_out = false;
  };

  // Builds every sink. Throws std::runtime_error (naming the sink) if one cannot start; sinks
  // already built are closed first.
  explicit Router(const Config& config);
  ~Router();

  Admission submit(std::span<const evroute::Event> events);
  ShutdownReport shutdown(Duration timeout);
  // Reopens every file-backed sink (logrotate). Returns how many failed (each logged).
  int reopen();
  // Re-enables every disabled sink (SIGHUP). Returns how many were disabled (each logged).
  int enable_disabled();
  // Re-enables the sink named `name` (POST /v1/sinks/NAME/enable): nullopt when there is no such
  // sink, else whether it was disabled.
  std::optional<bool> enable(std::string_view name);

  // Moves a sink's dead letters (all, or those with the given ids) back into its queue, with their
  // ids. Those its queue refuses (full, shutting down) go back to the dead-letter log.
  struct Replay {
    bool found = false;  // a sink of that name exists
    std::uint64_t replayed = 0;
    std::uint64_t refused = 0;
    std::string error;  // the dead-letter log could not be read or rewritten
  };
  Replay replay(const std::string& sink, const std::optional<std::set<std::string>>& ids);
  const Route* find(const std::string& sink) const;

  bool accepting() const { return accepting_.load(std::memory_order_acquire); }
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }
  // Top-level event fields that filters test, plus "type": ingest copies them into attributes.
  std::span<const std::string> attribute_fields() const { return attribute_fields_; }
  std::uint64_t events_accepted() const { return accepted_.load(std::memory_order_relaxed); }
  // limits.memory: bytes in use, the limit (0: none), and requests refused for it.
  const evroute::MemoryBudget& memory() const { return budget_; }
  // Events routed to `route` (after its filter): what its Filter forwarded, or, without a filter,
  // every accepted event.
  std::uint64_t events_in(const Route& route) const {
    if (route.durable) return route.routed.load(std::memory_order_relaxed);
    return route.filter_sink ? route.filter_sink->stats().matched : events_accepted();
  }

 private:
  evroute::MemoryBudget budget_;  // declared first: outlives the queues holding charged events
  std::atomic<std::int64_t> budget_logged_ns_{0};  // last "over budget" log line (steady clock)
  std::vector<std::unique_ptr<Route>> routes_;
  std::vector<std::string> attribute_fields_;
  evroute::Broadcaster broadcaster_;
  std::shared_mutex admission_mu_;
  bool has_blocking_queue_ = false;
  bool has_memory_queue_ = false;
  std::atomic<bool> accepting_{true};
  std::atomic<std::uint64_t> accepted_{0};
};

}  // namespace evrouted
