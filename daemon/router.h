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
// Disk errors: when a disk queue cannot store a request's events (ENOSPC, EIO, a failed fsync),
// submit() refuses the request (kUnavailable: 503 with Retry-After) and nothing of it is
// acknowledged; the queue recovers by itself once its disk takes writes again (see
// evroute/durable_queue.h). disk_problems() names the sinks whose disk queue is failing and why
// (GET /readyz answers 503 with them), and the failure and the recovery are logged once each.
//
// reload(next, diff) applies a new configuration's sinks in place (SIGHUP), while requests keep
// being served:
//  * unchanged sinks (same fingerprint) keep their Route: queue, connections, counters;
//  * added sinks are built before anything changes (a sink that cannot start fails the reload,
//    which then changes nothing);
//  * changed sinks are rebuilt without losing what was queued for them: a memory queue's backlog
//    (and the write in flight, interrupted) is handed to the new queue ahead of any newer event
//    (Queue::adopt, past its capacity: those events were accepted already); a disk queue is closed
//    (its cursor stored) and reopened on the same directory with the new settings, so the new sink
//    resumes where the old one stopped (at-least-once: the interrupted event may come again). Its
//    dead-letter log stays the same. Counters of a rebuilt sink start again from zero. A change of
//    queue.type (memory <-> disk) is not applied: the sink keeps running on its old settings;
//  * removed sinks stop receiving at once and drain in the background for up to
//    shutdown_timeout, then close: what a memory queue still holds then is counted and logged as
//    undelivered; a disk queue keeps it on disk (delivered if the sink is configured again).
// The swap itself happens while no request is being admitted (an exclusive lock that submit()
// takes shared for the whole request, disk writes included): a request is routed entirely by the
// old topology or entirely by the new one. A request parsed with the old attribute fields (see
// attribute_fields()) but admitted under a new topology that needs others gets kReparse.
//
// Thread-safety: submit(), replay(), routes(), find() and the stats are safe from any thread;
// shutdown(), reload() and reopen() from one thread at a time (evrouted's main thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config.h"
#include "config_diff.h"
#include "dead_letters.h"
#include "evroute/broadcaster.h"
#include "evroute/budget.h"
#include "evroute/durable_queue.h"
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
  Leaf capabilities;  // the leaf's capability interfaces (see sinks/registry.h)
  DeliveryConfig delivery;
  std::shared_ptr<evroute::RateLimited> rate_limited;  // null without a rate_limit
  std::shared_ptr<evroute::Retrying> retrying;
  std::shared_ptr<evroute::Queue> queue;           // in-memory queue; null for a disk queue
  std::shared_ptr<evroute::DurableQueue> durable;  // disk queue (queue.type: disk); else null
  std::shared_ptr<evroute::Filter> filter_sink;    // null when the sink has no filter (memory only)
  std::shared_ptr<DropLog> drop_log;
  std::shared_ptr<DeadLetters> dead_letters;  // what the sink gave up on, for listing and replay
  std::atomic<std::uint64_t> routed{0};       // disk queues: events submit() routed to this sink
  std::atomic<std::uint64_t> adopted{0};      // events taken over from the sink this one replaced
  std::atomic<bool> disk_failing{false};      // submit() logged a disk error, not yet the recovery
  // Room in this sink's `block` queue that requests being admitted without waiting have claimed
  // and not yet written (see Router::submit).
  std::atomic<std::uint64_t> reserved{0};
  std::uint64_t accepted_at_start = 0;  // Router::events_accepted() when this route started

  bool matches(const evroute::Event& event) const;
  // The leaf's disabled state (410 Gone), or null when the leaf cannot be disabled.
  Disableable* disableable() const { return capabilities.disableable; }
  bool disabled() const {
    const Disableable* d = disableable();
    return d && d->state().disabled;
  }
  // The queue's counters, whichever kind it is (a disk queue's disk_bytes in `disk_bytes`).
  struct QueueStats {
    std::uint64_t pending = 0, high_water = 0, rejected_full = 0;
    std::uint64_t dropped_newest = 0, dropped_oldest = 0, undelivered_at_close = 0;
    std::uint64_t disk_bytes = 0, recovered = 0;
    std::uint64_t disk_errors = 0;  // the disk queue's failed writes, syncs and cursor stores
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

// One generation of the running topology: immutable once published.
struct Topology {
  std::vector<std::shared_ptr<Route>> routes;
  // Top-level event fields that filters test, plus "type": ingest copies them into attributes.
  std::shared_ptr<const std::vector<std::string>> attribute_fields;
  bool has_blocking_queue = false;  // some memory queue blocks when full (admission serialized)
  bool has_memory_queue = false;
  bool has_disk_queue = false;

  // The route named `name`, or null.
  std::shared_ptr<Route> find(std::string_view name) const;
};

// A sink that cannot start (its file cannot be opened, its disk queue is unreadable...).
struct SinkStartError : std::runtime_error {
  SinkStartError(std::string sink_name, const std::string& what)
      : std::runtime_error(what), sink(std::move(sink_name)) {}
  std::string sink;
};

class Router {
 public:
  enum class Outcome {
    kAccepted,
    kFull,         // a blocking queue stayed full past its block_timeout (503)
    kTooLarge,     // more events for one sink than its queue can ever hold, or more bytes than
                   // limits.memory (413)
    kClosed,       // shutting down (503)
    kOverBudget,   // the events do not fit in what limits.memory has left now (503)
    kUnavailable,  // a disk queue could not store the events (I/O error) (503)
    kReparse,      // a reload changed the attribute fields: parse the request again and resubmit
    kWouldBlock,   // Wait::kNever, and admitting would wait: nothing was admitted
  };
  // Whether submit() may wait: for a disk queue's write (and its fsync), for room in a `block`
  // queue, or for a lock held by a request that waits. An event-loop thread must not: with
  // kNever, submit() returns kWouldBlock instead, having admitted nothing, and the caller submits
  // again from a thread that may wait.
  enum class Wait { kAllowed, kNever };
  struct Admission {
    Outcome outcome = Outcome::kAccepted;
    std::string message;
  };
  struct ShutdownReport {
    std::uint64_t undelivered = 0;   // in memory queues at the deadline: lost, counted, logged
    std::uint64_t kept_on_disk = 0;  // in disk queues at the deadline: delivered after restart
    bool timed_out = false;
    // Since start, over the sinks configured at shutdown (events x sinks):
    std::uint64_t delivered = 0;
    std::uint64_t failed = 0;              // given up on (retries exhausted or not retryable)
    std::uint64_t dead_lettered = 0;       // written to the dead-letter logs
    std::uint64_t dead_letter_errors = 0;  // give-ups the dead-letter log could not store
    std::uint64_t dropped = 0;             // by a queue's drop_newest / drop_oldest policy
  };

  // Builds every sink. Throws SinkStartError (naming the sink) if one cannot start; sinks
  // already built are closed first.
  explicit Router(const Config& config);
  ~Router();

  // `parsed_with`: the attribute_fields() snapshot the events were parsed with; when a reload has
  // replaced it since, nothing is admitted and the outcome is kReparse. Null: not checked.
  Admission submit(std::span<const evroute::Event> events,
                   const std::vector<std::string>* parsed_with = nullptr,
                   Wait wait = Wait::kAllowed);
  ShutdownReport shutdown(Duration timeout);

  struct ReloadReport {
    std::vector<std::string> added, removed, changed;  // applied
    // Changed sinks kept on their old settings (queue.type changed: see diff.restart_needed).
    std::vector<std::string> not_applied;
    std::string error;  // non-empty: nothing was applied (a new sink could not be built)
  };
  // Applies `next`'s sinks (see the header comment); `diff` is diff_configs(running, next).
  // data_dir and limits stay those the router was built with.
  ReloadReport reload(const Config& next, const ConfigDiff& diff);
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
  std::shared_ptr<const Route> find(const std::string& sink) const;

  bool accepting() const { return accepting_.load(std::memory_order_acquire); }
  // The sinks whose disk queue cannot store events now, with the error (DurableQueue::health).
  struct DiskProblem {
    std::string sink;
    std::string error;
  };
  std::vector<DiskProblem> disk_problems() const;
  // The current topology's sinks, in configuration order (a copy: a reload does not disturb it).
  std::vector<std::shared_ptr<const Route>> routes() const;
  // Top-level event fields that filters test, plus "type": ingest copies them into attributes.
  // Pass it back to submit() as `parsed_with`.
  std::shared_ptr<const std::vector<std::string>> attribute_fields() const;
  std::uint64_t events_accepted() const { return accepted_.load(std::memory_order_relaxed); }
  // limits.memory: bytes in use, the limit (0: none), and requests refused for it.
  const evroute::MemoryBudget& memory() const { return budget_; }
  // Events routed to `route` (after its filter): what its Filter forwarded, or, without a filter,
  // every accepted event.
  // Plus, for a sink rebuilt by a reload, the events it took over from its predecessor.
  std::uint64_t events_in(const Route& route) const {
    const std::uint64_t adopted = route.adopted.load(std::memory_order_relaxed);
    if (route.durable) return route.routed.load(std::memory_order_relaxed) + adopted;
    if (route.filter_sink) return route.filter_sink->stats().matched + adopted;
    return events_accepted() - route.accepted_at_start + adopted;
  }

 private:
  std::shared_ptr<const Topology> topology() const;
  void publish(std::shared_ptr<const Topology> next);
  // Drains and closes routes taken out of the topology, on a background thread.
  void retire(std::vector<std::shared_ptr<Route>> routes, Duration timeout, const char* why);
  void join_retiring(const std::vector<std::string>& names);  // empty: all

  evroute::MemoryBudget budget_;  // declared first: outlives the queues holding charged events
  std::atomic<std::int64_t> budget_logged_ns_{0};  // last "over budget" log line (steady clock)
  const std::string data_dir_;
  mutable std::mutex topology_mu_;            // guards topology_ (readers copy the pointer)
  std::shared_ptr<const Topology> topology_;  // replaced only with reload_mu_ held exclusively
  evroute::Broadcaster broadcaster_;          // the memory routes of topology_
  // submit() and replay() hold it shared for the whole request; reload() exclusively to swap.
  std::shared_mutex reload_mu_;
  std::shared_mutex admission_mu_;
  std::atomic<bool> accepting_{true};
  std::atomic<std::uint64_t> accepted_{0};
  struct Retiring {
    std::vector<std::string> names;
    std::thread thread;
  };
  std::mutex retiring_mu_;
  std::vector<Retiring> retiring_;
};

}  // namespace evrouted
