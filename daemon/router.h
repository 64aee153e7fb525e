// Router: the running topology — one Broadcaster feeding, for every configured sink,
//   [Filter] -> Queue -> Retrying -> leaf sink (stdout, file, http...)
// so every sink has its own queue and worker, and a slow or dead sink never delays the others.
//
// submit() admits a request's events whole or not at all: for every sink whose queue blocks when
// full, it first waits (up to that sink's block_timeout) for room for all the events routed to it;
// only when every such sink has room are the events written. When some sink's queue blocks,
// admission is serialized (an exclusive lock), which makes "check for room, then write" atomic;
// otherwise requests are admitted concurrently (a shared lock). Drop policies (drop_newest,
// drop_oldest) never refuse: they count. shutdown() takes the lock exclusively, so a request is
// either admitted whole before the queues close or refused.
//
// Memory: every admitted event is charged to one MemoryBudget of `limits.memory` bytes (see
// evroute/budget.h: an event fanned out to N sinks is one allocation, charged once, released when
// the last queue is done with it). A request whose events do not fit in what is left of it is
// refused whole (kOverBudget, 503) after the queue checks; one that could never fit gets kTooLarge.
// Events already admitted are never dropped for it.
//
// shutdown() stops admission, then closes every queue against one common deadline — each queue
// keeps delivering until it drains or the deadline passes — and reports what was left undelivered.
//
// Thread-safety: submit(), routes() and the stats are safe from any thread; shutdown() and
// reopen() from any one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "config.h"
#include "evroute/broadcaster.h"
#include "evroute/budget.h"
#include "evroute/filter.h"
#include "evroute/queue.h"
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
  std::shared_ptr<evroute::Retrying> retrying;
  std::shared_ptr<evroute::Queue> queue;
  std::shared_ptr<evroute::Filter> filter_sink;  // null when the sink has no filter
  std::shared_ptr<DropLog> drop_log;

  bool matches(const evroute::Event& event) const;
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  std::atomic<bool> closed_{false};
};

class Router {
 public:
  enum class Outcome {
    kAccepted,
    kFull,        // a blocking queue stayed full past its block_timeout (503)
    kTooLarge,    // more events for one sink than its queue can ever hold, or more bytes than
                  // limits.memory (413)
    kClosed,      // shutting down (503)
    kOverBudget,  // the events do not fit in what limits.memory has left now (503)
  };
  struct Admission {
    Outcome outcome = Outcome::kAccepted;
    std::string message;
  };
  struct ShutdownReport {
    std::uint64_t undelivered = 0;
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
  std::atomic<bool> accepting_{true};
  std::atomic<std::uint64_t> accepted_{0};
};

}  // namespace evrouted
