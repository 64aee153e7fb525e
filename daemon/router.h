// Router: the running topology, and what evrouted does with it — admit requests, stop, and the
// sink operations of the API (replay, enable, reopen) — for the HTTP server and main().
//
//   ingest -> Router::submit -> Admission (admission.h) -> every Pipeline of the current Topology
//             (pipeline.h: filter -> queue -> retry -> rate limit -> leaf)
//
// Every sink has its own pipeline: its own queue and workers (its `concurrency`, default one), so
// a slow or dead sink never delays the others.
//
// The topology is swapped whole by a reload (reloader.h) while no request is being admitted: an
// exclusive lock that submit() and replay() take shared for the whole request, so a request is
// routed entirely by the old topology or entirely by the new one. A request parsed with the old
// attribute fields (see attribute_fields()) but admitted under a new topology that needs others
// gets kReparse. Pipelines a reload takes out drain on a background thread (retire()).
//
// shutdown() stops admission, then closes every queue against one common deadline — each queue
// keeps delivering until it drains or the deadline passes — and reports what was left: undelivered
// (memory queues: counted and logged) or kept (stored queues: delivered after a restart). A sink
// disabled by its destination (410 Gone: its leaf holds its events, see Disableable) cannot drain,
// so its queue is closed first, at once: its events are left without using up the others' time.
//
// Thread-safety: submit(), replay(), enable(), snapshots and stats are safe from any thread;
// shutdown(), reopen(), enable_disabled() and the reload primitives from one thread at a time
// (evrouted's main thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admission.h"
#include "config.h"
#include "evroute/result.h"
#include "pipeline.h"
#include "topology.h"

namespace evrouted {

class Router {
 public:
  struct ShutdownReport {
    std::uint64_t undelivered = 0;        // in memory queues at the deadline: lost, counted, logged
    std::uint64_t kept_on_disk = 0;       // in disk queues at the deadline: delivered after restart
    std::uint64_t kept_in_jetstream = 0;  // given back to JetStream: another replica delivers
    bool timed_out = false;
    // Since start, over the sinks configured at shutdown (events x sinks):
    std::uint64_t delivered = 0;
    std::uint64_t failed = 0;              // given up on (retries exhausted or not retryable)
    std::uint64_t dead_lettered = 0;       // written to the dead-letter logs
    std::uint64_t dead_letter_errors = 0;  // give-ups the dead-letter log could not store
    std::uint64_t dropped = 0;             // by a queue's drop_newest / drop_oldest policy
  };

  // Builds every sink's pipeline. Fails, naming the sink in the message and in *failed_sink, if one
  // cannot start; pipelines already built are closed first.
  static evroute::Result<std::unique_ptr<Router>> start(const Config& config,
                                                        std::string* failed_sink = nullptr);
  ~Router();

  // `parsed_with`: the attribute_fields() snapshot the events were parsed with; when a reload has
  // replaced it since, nothing is admitted and the outcome is kReparse. Null: not checked.
  Decision submit(std::span<const evroute::Event> events,
                  const std::vector<std::string>* parsed_with = nullptr,
                  Wait wait = Wait::kAllowed);
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
  // The dead-letter log of the sink named `sink`, or null.
  std::shared_ptr<DeadLetterStore> dead_letters(const std::string& sink) const;

  bool accepting() const { return admission_.accepting(); }
  // The sinks whose stored queue cannot store events now, with the error (SinkQueue::health).
  struct StorageProblem {
    std::string sink;
    std::string error;
    std::string_view queue_type;  // the queue kind's name: "disk", "jetstream"
  };
  std::vector<StorageProblem> storage_problems() const;
  // Every sink of the current topology, in configuration order, copied.
  std::vector<SinkSnapshot> snapshot() const;
  std::size_t sink_count() const { return topology()->pipelines.size(); }
  // Whether the current topology has a stored queue (disk, JetStream), whose write submit() waits
  // for: then every submit() that may not wait is kWouldBlock.
  bool stores() const { return topology()->has_stored_queue; }
  // Top-level event fields that filters test, plus "type": ingest copies them into attributes.
  // Pass it back to submit() as `parsed_with`.
  std::shared_ptr<const std::vector<std::string>> attribute_fields() const;
  std::uint64_t events_accepted() const { return admission_.events_accepted(); }
  const evroute::MemoryBudget& memory() const { return admission_.memory(); }

  // Reload primitives (reloader.h).
  const std::string& data_dir() const { return data_dir_; }
  std::shared_ptr<const Topology> topology() const;
  // Runs `swap` while no request is being admitted, and publishes the topology it returns (null:
  // none). Returns false, running nothing, once shutdown has begun.
  bool swap(const std::function<std::shared_ptr<const Topology>(const Topology& current)>& swap);
  // Drains and closes pipelines taken out of the topology, on a background thread, for up to
  // `timeout`.
  void retire(std::vector<std::shared_ptr<Pipeline>> pipelines, Duration timeout, const char* why);
  // Waits for the retiring pipelines among `names` (empty: all) to finish closing.
  void join_retiring(const std::vector<std::string>& names);

 private:
  explicit Router(const Config& config);

  Admission admission_;  // declared first: its memory budget outlives the queues' events
  const std::string data_dir_;
  mutable std::mutex topology_mu_;            // guards topology_ (readers copy the pointer)
  std::shared_ptr<const Topology> topology_;  // replaced only with reload_mu_ held exclusively
  // submit() and replay() hold it shared for the whole request; swap() exclusively.
  std::shared_mutex reload_mu_;
  struct Retiring {
    std::vector<std::string> names;
    std::thread thread;
  };
  std::mutex retiring_mu_;
  std::vector<Retiring> retiring_;
};

}  // namespace evrouted
