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
    kFull,      // a blocking queue stayed full past its block_timeout (503)
    kTooLarge,  // more events for one sink than its queue can ever hold (413)
    kClosed,    // shutting down (503)
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
  // Events routed to `route` (after its filter): what its Filter forwarded, or, without a filter,
  // every accepted event.
  std::uint64_t events_in(const Route& route) const {
    return route.filter_sink ? route.filter_sink->stats().matched : events_accepted();
  }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
  std::vector<std::string> attribute_fields_;
  evroute::Broadcaster broadcaster_;
  std::shared_mutex admission_mu_;
  bool has_blocking_queue_ = false;
  std::atomic<bool> accepting_{true};
  std::atomic<std::uint64_t> accepted_{0};
};

}  // namespace evrouted
