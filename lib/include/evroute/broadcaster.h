// Broadcaster: fans each event out to a set of sinks.
//
// write(event) writes the event to every sink present when the write starts, in the order the
// sinks were added, and returns OK when every sink took it. If some sinks failed, it returns the
// first failure (its code, and a message naming how many sinks failed); the other sinks still got
// the event. A sink that answers kClosed is removed from the set (and not counted as a failure);
// if every sink answered kClosed, write() returns kClosed: nobody took the event.
// Fan-out shares the one Event allocation; the payload is never copied.
//
// The sink set is copy-on-write: add() and remove() publish a new set and never wait for writes in
// flight, and a write in flight finishes against the set it started with. So a sink present
// throughout a stream of writes receives every one of them exactly once, in each producer's order.
//
// Ownership: the broadcaster shares ownership of its sinks (std::shared_ptr). remove() closes the
// removed sink, detach() hands it back open; close() closes every sink exactly once and returns the
// first failure of their close() calls, or OK (later calls return it again, see sink.h). After
// close(), write() returns kClosed and add() closes the sink it is given and returns kClosed.
//
// The broadcaster writes to its sinks on the caller's thread, one after another: a sink that blocks
// delays the others. Put a Queue in front of any sink that may be slow.
//
// A writing thread keeps the sink set it last used (the current one, checked by a version number
// at every write) so that a write takes no lock and changes no reference count: a thread may keep
// a replaced set, and the sinks in it, alive until it next writes to a broadcaster or exits.
//
// Thread-safety: every method is safe to call from any thread, concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "evroute/counter.h"
#include "evroute/sink.h"

namespace evroute {

class Broadcaster final : public Sink {
 public:
  struct Stats {
    std::uint64_t events = 0;       // write() calls that fanned out
    std::uint64_t sink_errors = 0;  // sink writes that failed (not counting kClosed)
    std::size_t sinks = 0;          // sinks in the set now
  };

  Broadcaster() = default;
  explicit Broadcaster(std::vector<std::shared_ptr<Sink>> sinks);
  ~Broadcaster() override;  // closes the sinks if close() was not called

  Status write(const Event& event) override;
  // The events to every sink at once (each sink's write_all: a queue takes them under one lock).
  // With several events, "N of M sinks failed" counts sinks, not events. An empty event in
  // `events`: kInvalidArgument, and no sink gets any of them.
  Status write_all(std::span<const Event> events) override;
  Status close() override;

  // Adds a sink; adding a sink already present does nothing and returns OK.
  Status add(std::shared_ptr<Sink> sink);
  // Removes the sink and closes it. Returns kInvalidArgument when it was not present.
  Status remove(const std::shared_ptr<Sink>& sink);
  // Removes the sink without closing it: the caller takes it over (to drain or close it on its own
  // schedule, e.g. when a topology is reloaded). A write in flight may still deliver to it.
  // Returns kInvalidArgument when it was not present.
  Status detach(const std::shared_ptr<Sink>& sink);

  Stats stats() const;

 private:
  using SinkList = std::vector<std::shared_ptr<Sink>>;
  class Snapshot;  // the set a write fans out to (broadcaster.cpp)
  // Replaces sinks_ (mu_ held) and gives it a new version; returns the old set, to be released
  // after mu_.
  std::shared_ptr<const SinkList> publish_locked(std::shared_ptr<const SinkList> sinks);
  void drop_closed(const std::shared_ptr<Sink>& sink);

  mutable std::mutex mu_;  // guards sinks_ and closed_
  std::shared_ptr<const SinkList> sinks_ = std::make_shared<const SinkList>();
  bool closed_ = false;
  // sinks_'s version (unique in the process; changed under mu_ with sinks_ and closed_): a writer
  // whose thread holds that version's set uses it without taking mu_.
  std::atomic<std::uint64_t> version_{next_version()};
  static std::uint64_t next_version() noexcept;
  std::once_flag close_once_;  // close() runs once; later calls return close_report_
  Status close_report_;        // the first failure of the sinks' close(), or OK
  detail::OwnedCounter events_;
  std::atomic<std::uint64_t> sink_errors_{0};
};

}  // namespace evroute
