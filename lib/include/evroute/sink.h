// Sink: the one interface every evroute component implements.
//
// Contract:
//  * write(event) returns OK once the sink has taken responsibility for the event (delivered it, or
//    queued it under its own bounded policy). Any other Status means the sink did not take it; the
//    code says why (see status.h): retryable, rejected, full, closed...
//  * close() releases the sink's resources and, for sinks that wrap another sink, closes that one
//    too. It is idempotent: only the first call closes anything, and every later call returns the
//    first call's Status again (so a sink whose close cannot fail returns OK every time; a wrapper
//    whose destination failed to close reports that failure each time). Every sink in lib/ also
//    makes a call that overlaps the first one wait until the first has finished. After close()
//    every write returns Code::kClosed.
//  * close() may be called while a write is in flight on another thread; it must make that write
//    return promptly (with kClosed or the write's own result) rather than wait for it without
//    bound.
//  * An empty Event is rejected with Code::kInvalidArgument.
//  * write_all(events) is write() of each event in order, in one call: a sink that can take
//    several events more cheaply at once (a queue: one lock and at most one wake-up of its worker)
//    overrides it. It returns OK when every event was taken, else the first failure; an event
//    after a failed one is still offered (as separate write() calls would), unless the sink says
//    otherwise (a disk queue takes all or none).
//
// Thread-safety: unless a class says otherwise, write() and close() are safe to call from any
// thread concurrently.
#pragma once

#include <span>

#include "evroute/event.h"
#include "evroute/status.h"

namespace evroute {

class BatchSink;

class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status write(const Event& event) = 0;
  virtual Status write_all(std::span<const Event> events) {
    Status first;
    for (const Event& e : events) {
      if (Status s = write(e); !s.is_ok() && first.is_ok()) first = std::move(s);
    }
    return first;
  }
  virtual Status close() = 0;
  // The sink as a BatchSink (batch_sink.h) when it is one, else null: a sink says whether it takes
  // batches; callers never guess it with a cast.
  virtual BatchSink* as_batch_sink() { return nullptr; }
};

}  // namespace evroute
